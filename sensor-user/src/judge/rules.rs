//! The alert rules: each has a stable id and a fixed signature_id, so SIEM rules keyed on
//! either keep working across versions. The whole registry is here, including rules that
//! later stages raise.

use crate::model::rule::{Rule, rule};

/// Traffic to a destination outside the device's baseline.
pub const UNEXPECTED_DESTINATION: Rule = rule(
    "unexpected_destination",
    9_100_001,
    "kettlewatch: unexpected destination for device",
    "Policy Violation",
    2,
);
/// An allowed destination on a port or protocol outside the baseline.
pub const NEW_PORT: Rule = rule(
    "new_port",
    9_100_002,
    "kettlewatch: unexpected port for device",
    "Policy Violation",
    2,
);
/// A destination address on a threat-intelligence feed.
pub const THREAT_INTEL_IP: Rule = rule(
    "threat_intel_ip",
    9_100_003,
    "kettlewatch: device contacted a threat-intelligence address",
    "Potentially Bad Traffic",
    1,
);
/// A name on a threat-intelligence feed.
pub const THREAT_INTEL_DOMAIN: Rule = rule(
    "threat_intel_domain",
    9_100_004,
    "kettlewatch: device looked up a threat-intelligence domain",
    "Potentially Bad Traffic",
    1,
);
/// Traffic to a canary address.
pub const CANARY_CONTACT: Rule = rule(
    "canary_contact",
    9_100_005,
    "kettlewatch: device contacted a canary",
    "Attempted Information Leak",
    1,
);
/// A MAC not in the declared inventory.
pub const NEW_DEVICE: Rule = rule(
    "new_device",
    9_100_006,
    "kettlewatch: device not in the inventory",
    "Potential Corporate Privacy Violation",
    2,
);
/// A declared device not seen for `[inventory] missing_after`.
pub const MISSING_DEVICE: Rule = rule(
    "missing_device",
    9_100_007,
    "kettlewatch: declared device missing",
    "Not Suspicious Traffic",
    3,
);
/// Declared and observed categories disagree.
pub const CATEGORY_MISMATCH: Rule = rule(
    "category_mismatch",
    9_100_008,
    "kettlewatch: device category differs from the inventory",
    "Potential Corporate Privacy Violation",
    2,
);
/// A MAC took another's address, or a declared device changed address.
pub const ADDRESS_CHANGE: Rule = rule(
    "address_change",
    9_100_009,
    "kettlewatch: device address changed",
    "Potentially Bad Traffic",
    2,
);
/// Many destinations or ports in a short window.
pub const SCAN_FANOUT: Rule = rule(
    "scan_fanout",
    9_100_010,
    "kettlewatch: device scanning",
    "Attempted Information Leak",
    1,
);
/// Volume far above the device's learned rate.
pub const VOLUME_SPIKE: Rule = rule(
    "volume_spike",
    9_100_011,
    "kettlewatch: device traffic volume spike",
    "Potentially Bad Traffic",
    2,
);
/// Many SYNs, few handshakes, to one destination.
pub const SYN_FLOOD_PARTICIPATION: Rule = rule(
    "syn_flood_participation",
    9_100_012,
    "kettlewatch: device taking part in a SYN flood",
    "Attempted Denial of Service",
    1,
);
/// A resolver other than the gateway or the declared ones.
pub const UNEXPECTED_DNS_SERVER: Rule = rule(
    "unexpected_dns_server",
    9_100_013,
    "kettlewatch: device uses an unexpected DNS server",
    "Policy Violation",
    2,
);
/// A time server other than the gateway or the declared ones.
pub const UNEXPECTED_NTP_SERVER: Rule = rule(
    "unexpected_ntp_server",
    9_100_014,
    "kettlewatch: device uses an unexpected NTP server",
    "Policy Violation",
    3,
);
/// A protocol or port class never used before.
pub const NEW_PROTOCOL: Rule = rule(
    "new_protocol",
    9_100_015,
    "kettlewatch: device uses a new protocol",
    "Policy Violation",
    3,
);
/// The device table is filling up (MAC flooding).
pub const DEVICE_TABLE_PRESSURE: Rule = rule(
    "device_table_pressure",
    9_100_016,
    "kettlewatch: device table under pressure",
    "Attempted Denial of Service",
    2,
);

/// While learning, a flow to a service no IoT device should use (telnet, SMTP, IRC, Tor,
/// mining stratum): alerted, and never learned.
pub const SUSPICIOUS_SERVICE: Rule = rule(
    "suspicious_service",
    9_100_017,
    "kettlewatch: device contacts a service no IoT device should use",
    "A Network Trojan was detected",
    1,
);

/// Every rule.
/// Many distinct encoded names under one registered domain: data carried in DNS.
pub const DNS_TUNNEL: Rule = rule(
    "dns_tunnel",
    9_100_018,
    "kettlewatch: device tunnels data through DNS",
    "Potentially Bad Traffic",
    1,
);
/// A burst of NXDOMAIN for random-looking domains: a domain-generation algorithm.
pub const DGA_ACTIVITY: Rule = rule(
    "dga_activity",
    9_100_019,
    "kettlewatch: device looks up generated domain names",
    "Potentially Bad Traffic",
    1,
);

/// Many connections to one login service in a window: password guessing, by the device
/// or against it.
pub const BRUTE_FORCE: Rule = rule(
    "brute_force",
    9_100_020,
    "kettlewatch: repeated connections to a login service (password guessing)",
    "Attempted Administrator Privilege Gain",
    1,
);

/// One destination and port retried, never answered, poll after poll: a bot's command
/// server that is gone.
pub const UNANSWERED_RETRIES: Rule = rule(
    "unanswered_retries",
    9_100_021,
    "kettlewatch: device keeps retrying a destination that never answers",
    "Potentially Bad Traffic",
    2,
);

/// A device runs software (or is a model) with a vulnerability on CISA's Known Exploited
/// Vulnerabilities catalog: raised once per device and CVE.
pub const KNOWN_EXPLOITED_VULNERABILITY: Rule = rule(
    "known_exploited_vulnerability",
    9_100_022,
    "kettlewatch: device runs software with a known exploited vulnerability",
    "Potentially Bad Traffic",
    1,
);

/// A device checks in with one outside address at a steady rhythm with like-sized
/// messages (`judge/anomaly/beacon.rs`): an implant or bot waiting for orders.
pub const BEACON: Rule = rule(
    "beacon",
    9_100_023,
    "kettlewatch: device beacons to an address at a steady rhythm",
    "A Network Trojan was detected",
    2,
);

/// A TLS client on the device has a JA4 fingerprint an intel feed lists (`format =
/// "ja4"`): a tool's or a malware family's client, whatever address it reaches.
pub const THREAT_INTEL_JA4: Rule = rule(
    "threat_intel_ja4",
    9_100_024,
    "kettlewatch: device's TLS client matches a listed JA4 fingerprint",
    "A Network Trojan was detected",
    2,
);

pub const ALL: [Rule; 24] = [
    UNEXPECTED_DESTINATION,
    NEW_PORT,
    THREAT_INTEL_IP,
    THREAT_INTEL_DOMAIN,
    CANARY_CONTACT,
    NEW_DEVICE,
    MISSING_DEVICE,
    CATEGORY_MISMATCH,
    ADDRESS_CHANGE,
    SCAN_FANOUT,
    VOLUME_SPIKE,
    SYN_FLOOD_PARTICIPATION,
    UNEXPECTED_DNS_SERVER,
    UNEXPECTED_NTP_SERVER,
    NEW_PROTOCOL,
    DEVICE_TABLE_PRESSURE,
    SUSPICIOUS_SERVICE,
    DNS_TUNNEL,
    DGA_ACTIVITY,
    BRUTE_FORCE,
    UNANSWERED_RETRIES,
    KNOWN_EXPLOITED_VULNERABILITY,
    BEACON,
    THREAT_INTEL_JA4,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_signature_ids_are_unique() {
        let mut ids: Vec<_> = ALL.iter().map(|r| r.id).collect();
        let mut sids: Vec<_> = ALL.iter().map(|r| r.signature_id).collect();
        ids.sort();
        ids.dedup();
        sids.sort();
        sids.dedup();
        assert_eq!((ids.len(), sids.len()), (ALL.len(), ALL.len()));
        assert!(ALL.iter().all(|r| (1..=3).contains(&r.severity)));
    }

    #[test]
    fn the_event_schema_knows_every_rule() {
        let schema: serde_json::Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schema/eve.schema.json"
        )))
        .unwrap();
        let text = schema.to_string();
        let sid = text
            .find("\"signature_id\":{")
            .expect("signature_id in the schema");
        let bounds: serde_json::Value =
            serde_json::from_str(&text[sid + 15..=sid + text[sid..].find('}').unwrap()]).unwrap();
        for r in ALL {
            assert!(
                text.contains(&format!("\"{}\"", r.id)),
                "{} is not in the schema's rule ids",
                r.id
            );
            let sid = u64::from(r.signature_id);
            assert!(
                bounds["minimum"].as_u64() <= Some(sid) && Some(sid) <= bounds["maximum"].as_u64(),
                "{} ({sid}) is outside the schema's signature_id range {bounds}",
                r.id
            );
        }
    }
}
