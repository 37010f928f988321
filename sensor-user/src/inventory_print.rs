//! `kettlewatch devices`: the stored inventory as a table for people or JSON lines for tools.

use std::io::Write;

use crate::state::StoredDevice;

/// One JSON object a line.
pub fn json(out: &mut impl Write, devices: &[StoredDevice]) -> std::io::Result<()> {
    for d in devices {
        serde_json::to_writer(&mut *out, d)?;
        writeln!(out)?;
    }
    Ok(())
}

/// A fixed-width table; network text is already sanitized, and cut to fit its column.
pub fn table(out: &mut impl Write, devices: &[StoredDevice]) -> std::io::Result<()> {
    writeln!(
        out,
        "MAC                STATUS    NAME                CATEGORY           CONF  CRIT      ADDRESS          LAST SEEN             VENDOR"
    )?;
    for d in devices {
        let name = d
            .name
            .clone()
            .or_else(|| d.profile.hostname.clone())
            .unwrap_or_else(|| "-".into());
        let last = crate::clock::eve_timestamp(d.last_seen_ns);
        writeln!(
            out,
            "{:<17}  {:<8}  {:<18}  {:<17}  {:>4.2}  {:<8}  {:<15}  {:<20}  {}",
            d.mac,
            d.inventory_status,
            cut(&name, 18),
            d.category,
            d.confidence,
            d.criticality,
            cut(d.addresses.first().map_or("-", String::as_str), 15),
            &last[..19],
            d.vendor.as_deref().unwrap_or("-"),
        )?;
    }
    writeln!(out, "{} devices", devices.len())
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}
