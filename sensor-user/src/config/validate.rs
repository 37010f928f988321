//! The checks a configuration's values must pass beyond their types (positive
//! intervals, power-of-two sizes, known categories, valid MACs and prefixes), each
//! pointing at the value's span.

use sensor_common::MacAddr;

use std::ops::Range;

use super::Config;
use crate::model::vocab::CATEGORIES;

impl Config {
    /// The first value that fails a check: its span and why.
    pub(super) fn validate(&self) -> Result<(), (Range<usize>, String)> {
        let s = &self.sensor;
        for (d, what) in [
            (&s.poll_interval, "poll_interval"),
            (&s.stats_interval, "stats_interval"),
            (&s.flow_report, "flow_report"),
        ] {
            if d.get_ref().is_zero() {
                return Err((d.span(), format!("{what} must be longer than zero")));
            }
        }
        for (n, what, min) in [
            (&s.max_flows, "max_flows", 1),
            (&s.max_devices, "max_devices", 1),
        ] {
            if *n.get_ref() < min {
                return Err((n.span(), format!("{what} must be at least {min}")));
            }
        }
        let ring = *s.ring_buffer_bytes.get_ref();
        if !ring.is_power_of_two() || ring < 4096 {
            return Err((
                s.ring_buffer_bytes.span(),
                format!("ring_buffer_bytes must be a power of two of at least 4096, not {ring}"),
            ));
        }
        if s.name.is_empty() {
            return Err((0..0, "[sensor] name must not be empty".into()));
        }
        if self.inventory.missing_after.get_ref().is_zero() {
            return Err((
                self.inventory.missing_after.span(),
                "missing_after must be longer than zero".into(),
            ));
        }
        let policy_windows = self.policies.iter().filter_map(|p| p.learn_for.as_ref());
        for w in std::iter::once(&self.baseline.learn_for).chain(policy_windows) {
            if w.get_ref().is_zero() {
                return Err((w.span(), "learn_for must be longer than zero".into()));
            }
        }
        for l in &self.baseline.local {
            if l.get_ref().parse::<ipnet::IpNet>().is_err()
                && l.get_ref().parse::<std::net::IpAddr>().is_err()
            {
                return Err((
                    l.span(),
                    format!("{:?} is not an address or prefix", l.get_ref()),
                ));
            }
        }
        let an = &self.anomaly;
        for (d, what) in [
            (&an.window, "window"),
            (&an.volume_interval, "volume_interval"),
        ] {
            if d.get_ref().is_zero() {
                return Err((d.span(), format!("{what} must be longer than zero")));
            }
        }
        for s in an.dns_servers.iter().chain(&an.ntp_servers) {
            if s.get_ref().parse::<ipnet::IpNet>().is_err()
                && s.get_ref().parse::<std::net::IpAddr>().is_err()
            {
                return Err((
                    s.span(),
                    format!("{:?} is not an address or prefix", s.get_ref()),
                ));
            }
        }
        for a in &self.canary.addresses {
            if a.get_ref().parse::<std::net::IpAddr>().is_err() {
                return Err((a.span(), format!("{:?} is not an IP address", a.get_ref())));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for p in &self.policies {
            if !names.insert(p.name.get_ref().clone()) {
                return Err((
                    p.name.span(),
                    format!("policy {:?} is defined twice", p.name.get_ref()),
                ));
            }
            for c in &p.categories {
                if !CATEGORIES.contains(&c.get_ref().as_str()) {
                    return Err((
                        c.span(),
                        format!(
                            "unknown category {:?}; one of {}",
                            c.get_ref(),
                            CATEGORIES.join(", ")
                        ),
                    ));
                }
            }
            for m in &p.devices {
                if m.get_ref().parse::<MacAddr>().ok().is_none() {
                    return Err((m.span(), format!("{:?} is not a MAC address", m.get_ref())));
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for d in &self.devices {
            if let Some(p) = &d.policy
                && !names.contains(p.get_ref())
            {
                return Err((p.span(), format!("no [[policy]] named {:?}", p.get_ref())));
            }
            let Some(mac) = d.mac.get_ref().parse::<MacAddr>().ok() else {
                return Err((
                    d.mac.span(),
                    format!(
                        "{:?} is not a MAC address like 02:00:5e:10:00:0a",
                        d.mac.get_ref()
                    ),
                ));
            };
            if !seen.insert(mac) {
                return Err((
                    d.mac.span(),
                    format!("{} is declared twice", d.mac.get_ref()),
                ));
            }
            if let Some(c) = &d.category
                && !CATEGORIES.contains(&c.get_ref().as_str())
            {
                return Err((
                    c.span(),
                    format!(
                        "unknown category {:?}; one of {}",
                        c.get_ref(),
                        CATEGORIES.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}
