//! `kettlewatch devices` and `kettlewatch baseline`: the stored inventory and learned
//! baseline, as tables for people, JSON lines or TOML for tools.

use std::io::Write;

use crate::store::state::StoredDevice;

/// One JSON object a line.
pub fn json(out: &mut impl Write, devices: &[StoredDevice]) -> std::io::Result<()> {
    for d in devices {
        serde_json::to_writer(&mut *out, d)?;
        writeln!(out)?;
    }
    Ok(())
}

/// A fixed-width table; network text is already sanitized, and cut to fit its column.
pub fn table(
    out: &mut impl Write,
    devices: &[StoredDevice],
    states: &std::collections::BTreeMap<String, String>,
) -> std::io::Result<()> {
    writeln!(out, "{HEADER}")?;
    for d in devices {
        writeln!(out, "{}", row(d, states.get(&d.mac).map(String::as_str)))?;
    }
    writeln!(out, "{} devices", devices.len())
}

/// The same table for a fleet, each row led by its gateway's host name.
pub fn fleet_table(
    out: &mut impl Write,
    devices: &[(String, StoredDevice)],
) -> std::io::Result<()> {
    writeln!(out, "{:<16}  {HEADER}", "HOST")?;
    for (host, d) in devices {
        // A gateway's operator states stay in its own store.
        writeln!(out, "{:<16}  {}", cut(host, 16), row(d, None))?;
    }
    let hosts: std::collections::BTreeSet<&str> = devices.iter().map(|d| d.0.as_str()).collect();
    writeln!(out, "{} devices on {} gateways", devices.len(), hosts.len())
}

const HEADER: &str = "MAC                STATUS    STATE          NAME                CATEGORY           FROM      CONF  CRIT      ADDRESS          LAST SEEN             VENDOR                    SOFTWARE";

/// One device's row; `state` is the operator's (authorised, investigating).
fn row(d: &StoredDevice, state: Option<&str>) -> String {
    let name = d
        .name
        .clone()
        .or_else(|| d.profile.hostname.clone())
        .unwrap_or_else(|| "-".into());
    let last = crate::model::clock::eve_timestamp(d.last_seen_ns);
    // Versioned entries first: they are what a vulnerability is matched on.
    let mut sw: Vec<String> = d
        .profile
        .software
        .iter()
        .filter(|e| e.version.is_some())
        .chain(d.profile.software.iter().filter(|e| e.version.is_none()))
        .map(|e| match &e.version {
            Some(v) => format!("{} {v}", e.product),
            None => e.product.clone(),
        })
        .collect();
    if sw.is_empty() {
        sw.push("-".into());
    }
    format!(
        "{:<17}  {:<8}  {:<13}  {:<18}  {:<17}  {:<8}  {:>4.2}  {:<8}  {:<15}  {:<20}  {:<24}  {}",
        d.mac,
        d.inventory_status,
        state.unwrap_or("-"),
        cut(&name, 18),
        d.category,
        if d.category_source.is_empty() {
            "-"
        } else {
            &d.category_source
        },
        d.confidence,
        d.criticality,
        cut(d.addresses.first().map_or("-", String::as_str), 15),
        &last[..19],
        cut(d.vendor.as_deref().unwrap_or("-"), 24),
        cut(&sw.join(", "), 60),
    )
}

/// One JSON object a line, each with its gateway's `host` first.
pub fn fleet_json(out: &mut impl Write, devices: &[(String, StoredDevice)]) -> std::io::Result<()> {
    for (host, d) in devices {
        let mut m = serde_json::Map::new();
        m.insert("host".into(), host.clone().into());
        if let serde_json::Value::Object(fields) = serde_json::to_value(d)? {
            m.extend(fields);
        }
        serde_json::to_writer(&mut *out, &m)?;
        writeln!(out)?;
    }
    Ok(())
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

/// Learned entries by device: `MAC  ENTRY  FIRST USED`.
pub fn baseline_table(
    out: &mut impl Write,
    rows: &[(String, String, u64)],
    windows: &[(String, u64)],
    now_epoch_ns: u64,
) -> std::io::Result<()> {
    if !windows.is_empty() {
        writeln!(out, "MAC                PHASE       WINDOW ENDS")?;
        for (mac, until) in windows {
            let phase = if *until > now_epoch_ns {
                "learning"
            } else {
                "monitoring"
            };
            let t = crate::model::clock::eve_timestamp(*until);
            writeln!(out, "{mac:<17}  {phase:<10}  {}", &t[..19])?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "MAC                ENTRY                                        FIRST USED"
    )?;
    for (mac, rule, first) in rows {
        let t = crate::model::clock::eve_timestamp(*first);
        writeln!(out, "{mac:<17}  {rule:<43}  {}", &t[..19])?;
    }
    let devices: std::collections::BTreeSet<&String> = rows.iter().map(|r| &r.0).collect();
    writeln!(out, "{} entries for {} devices", rows.len(), devices.len())
}

/// One `[[policy]]` per device with its learned entries: valid configuration to edit and
/// declare (`kettlewatch check-config` accepts it).
pub fn baseline_toml(out: &mut impl Write, rows: &[(String, String, u64)]) -> std::io::Result<()> {
    writeln!(
        out,
        "# Learned by kettlewatch; review, then add to the configuration."
    )?;
    let mut by_mac: std::collections::BTreeMap<&str, Vec<&str>> = std::collections::BTreeMap::new();
    for (mac, rule, _) in rows {
        by_mac.entry(mac).or_default().push(rule);
    }
    for (mac, rules) in by_mac {
        let mut t = toml::Table::new();
        t.insert(
            "name".into(),
            format!("learned-{}", mac.replace(':', "")).into(),
        );
        t.insert("devices".into(), toml::Value::Array(vec![mac.into()]));
        t.insert(
            "allow".into(),
            toml::Value::Array(rules.iter().map(|r| (*r).into()).collect()),
        );
        writeln!(out, "\n[[policy]]")?;
        write!(out, "{}", toml::to_string(&t).expect("a table serializes"))?;
    }
    Ok(())
}

/// `kettlewatch alerts --json`: the EVE lines as written.
pub fn alerts_json(
    out: &mut impl Write,
    alerts: &[crate::store::alerts::StoredAlert],
) -> std::io::Result<()> {
    for a in alerts {
        writeln!(out, "{}", a.line)?;
    }
    Ok(())
}

/// `kettlewatch alerts`: one row an alert, newest first.
pub fn alerts_table(
    out: &mut impl Write,
    alerts: &[crate::store::alerts::StoredAlert],
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<20}  SEV  {:<24}  {:<17}  SIGNATURE",
        "TIME (UTC)", "RULE", "DEVICE"
    )?;
    for a in alerts {
        let t = chrono::DateTime::from_timestamp_nanos(a.ts_ns as i64).format("%Y-%m-%d %H:%M:%S");
        writeln!(
            out,
            "{t:<20}  {:<3}  {:<24}  {:<17}  {}",
            a.severity,
            cut(&a.rule, 24),
            a.mac.as_deref().unwrap_or("-"),
            a.signature
        )?;
    }
    writeln!(out, "{} alerts", alerts.len())
}

/// `kettlewatch audit`: who did what to which device, newest first.
pub fn audit_table(
    out: &mut impl Write,
    trail: &[crate::store::actions::AuditEntry],
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<20}  {:<12}  {:<7}  {:<17}  DETAIL",
        "TIME (UTC)", "BY", "ACTION", "DEVICE"
    )?;
    for e in trail {
        let t = chrono::DateTime::from_timestamp_nanos(e.at_ns as i64).format("%Y-%m-%d %H:%M:%S");
        writeln!(
            out,
            "{t:<20}  {:<12}  {:<7}  {:<17}  {}",
            cut(&e.by, 12),
            e.action,
            e.mac,
            e.detail
        )?;
    }
    writeln!(out, "{} actions", trail.len())
}
