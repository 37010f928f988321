//! Criticality: how much a device matters. The declared value wins; otherwise it starts
//! from what the device is (its category) and rises with how many assets depend on it or
//! it reaches. The reasoning is returned as a sentence for the `why` field.

use crate::{model::device::Peers, model::vocab::Criticality};

/// Thresholds at which the number of peers raises criticality by one level
/// (`[inventory]` keys of the same names).
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    /// LAN devices that depend on it (connect to it, or that it serves).
    pub critical_dependents: u64,
    /// LAN devices it reaches.
    pub critical_peers: u64,
    /// External destinations it reaches.
    pub critical_destinations: u64,
}

impl Default for Thresholds {
    /// The `[inventory]` defaults.
    fn default() -> Self {
        Self::from_config(&crate::config::InventoryConfig::default())
    }
}

impl Thresholds {
    /// The thresholds an `[inventory]` section sets (each at least 1).
    pub fn from_config(c: &crate::config::InventoryConfig) -> Self {
        Self {
            critical_dependents: c.critical_dependents.max(1),
            critical_peers: c.critical_peers.max(1),
            critical_destinations: c.critical_destinations.max(1),
        }
    }
}

/// The level a category starts at: infrastructure, health, locks and alarms high (others
/// depend on them, or people's safety does); devices with cameras, microphones-in-the-home sensors,
/// general-purpose computers and unidentified devices medium; single-purpose gadgets low.
pub fn base(category: &str) -> Criticality {
    match category {
        "network" | "hub-bridge" | "health" | "lock" | "alarm" => Criticality::High,
        "speaker" | "tv-media" | "plug-switch" | "light" | "appliance" => Criticality::Low,
        _ => Criticality::Medium,
    }
}

fn raise(c: Criticality) -> Criticality {
    match c {
        Criticality::Low => Criticality::Medium,
        Criticality::Medium => Criticality::High,
        Criticality::High | Criticality::Critical => Criticality::Critical,
    }
}

/// The criticality of a device and why.
pub fn derive(
    declared: Option<Criticality>,
    category: &str,
    peers: &Peers,
    t: &Thresholds,
) -> (Criticality, String) {
    let (deps, internal, external) = (
        peers.dependents.len() as u64,
        peers.internal.len() as u64,
        peers.external_count(),
    );
    let counts = format!(
        "{deps} LAN devices depend on it, it reaches {internal} LAN devices and {external} external destinations"
    );
    if let Some(d) = declared {
        return (d, format!("declared {}; {counts}", d.as_str()));
    }
    let mut c = base(category);
    let mut why = vec![format!("{category}: {}", c.as_str())];
    for (n, limit, what) in [
        (deps, t.critical_dependents, "devices depend on it"),
        (internal, t.critical_peers, "LAN devices reached"),
        (external, t.critical_destinations, "external destinations"),
    ] {
        if n >= limit {
            c = raise(c);
            why.push(format!("{n} {what} (>= {limit}): raised to {}", c.as_str()));
        }
    }
    (c, format!("{}; {counts}", why.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sensor_common::MacAddr;

    fn peers(deps: u8, internal: u8, external: u8) -> Peers {
        Peers {
            dependents: (0..deps).map(|i| MacAddr([2, 0, 0, 0, 1, i])).collect(),
            internal: (0..internal).map(|i| MacAddr([2, 0, 0, 0, 2, i])).collect(),
            external: (0..external)
                .map(|i| std::net::IpAddr::from([203, 0, 113, i]))
                .collect(),
            external_more: 0,
        }
    }

    #[test]
    fn declared_wins() {
        let (c, why) = derive(
            Some(Criticality::Critical),
            "light",
            &peers(0, 0, 0),
            &Thresholds::default(),
        );
        assert_eq!(c, Criticality::Critical);
        assert!(why.starts_with("declared critical"), "{why}");
    }

    #[test]
    fn category_sets_the_base() {
        let t = Thresholds::default();
        assert_eq!(
            derive(None, "plug-switch", &peers(0, 0, 0), &t).0,
            Criticality::Low
        );
        assert_eq!(
            derive(None, "camera", &peers(0, 0, 0), &t).0,
            Criticality::Medium
        );
        assert_eq!(
            derive(None, "hub-bridge", &peers(0, 0, 0), &t).0,
            Criticality::High
        );
    }

    #[test]
    fn dependents_and_reach_raise_it_at_the_thresholds() {
        let t = Thresholds::default();
        assert_eq!(
            derive(None, "plug-switch", &peers(2, 4, 49), &t).0,
            Criticality::Low,
            "just under each"
        );
        let (c, why) = derive(None, "plug-switch", &peers(3, 0, 0), &t);
        assert_eq!(c, Criticality::Medium);
        assert!(why.contains("3 devices depend on it (>= 3)"), "{why}");
        assert_eq!(
            derive(None, "plug-switch", &peers(3, 5, 0), &t).0,
            Criticality::High
        );
        assert_eq!(
            derive(None, "hub-bridge", &peers(3, 5, 50), &t).0,
            Criticality::Critical
        );
    }
}
