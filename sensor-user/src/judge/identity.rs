//! One device, many MACs. Phones, tablets and some IoT devices use locally administered
//! (randomised) MACs and change them, per network or every few weeks. A MAC that is
//! locally administered is tied to the identity an earlier MAC had when what the device
//! says of itself agrees: the same DHCP client identifier (option 61) or DHCPv6 DUID, or
//! the same DHCP or mDNS host name from a MAC that has gone quiet. Ties are never made
//! when the two disagree on an identifier both have, and a universally administered MAC
//! is never tied: it is its own identity.

use std::collections::{BTreeMap, HashMap};

use sensor_common::MacAddr;

use crate::discover::profile::Profile;

use crate::model::identity::{Key, Tie};

/// A name tie needs the earlier MAC to have gone quiet: it last spoke no later than this
/// after the new MAC first did. Two devices that talk at once are two devices.
const QUIET_NS: u64 = 5_000_000_000;

/// Names that defaults and firmware give many devices alike: never an identity.
const GENERIC_NAMES: &[&str] = &[
    "localhost",
    "android",
    "iphone",
    "ipad",
    "espressif",
    "esp32",
    "esp8266",
    "raspberrypi",
    "unknown",
    "none",
    "(none)",
    "host",
    "device",
    "client",
    "dhcpcd",
    "udhcpc",
];

/// The identity keys a profile carries.
pub fn keys(mac: MacAddr, p: &Profile) -> Vec<(Key, String)> {
    let mut out = Vec::new();
    if let Some(id) = p.dhcp.as_ref().and_then(|d| d.client_id.as_deref()) {
        // Type 1 plus the sending MAC is no identity: it changes with the MAC.
        let own = format!("01{}", mac.to_string().replace(':', ""));
        if !id.eq_ignore_ascii_case(&own) && !id.eq_ignore_ascii_case(&own[2..]) {
            out.push((Key::DhcpClientId, id.to_ascii_lowercase()));
        }
    }
    if let Some(d) = p.dhcpv6.as_ref().and_then(|f| f.duid.as_deref()) {
        out.push((Key::Duid, d.to_ascii_lowercase()));
    }
    let name = |n: &str| {
        let n = n
            .trim_end_matches('.')
            .trim_end_matches(".local")
            .to_ascii_lowercase();
        (n.len() >= 3 && !GENERIC_NAMES.contains(&n.as_str())).then_some(n)
    };
    for h in p.hostnames.iter().chain(p.hostname.iter()) {
        if let Some(n) = name(h) {
            out.push((Key::Hostname, n));
        }
    }
    for h in &p.mdns.hostnames {
        if let Some(n) = name(h) {
            out.push((Key::MdnsHostname, n));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The identities seen so far.
#[derive(Default)]
pub struct Identities {
    /// Each key, the identity that first had it.
    index: HashMap<(Key, String), MacAddr>,
    /// Each MAC's keys, to check that a tie's two sides do not disagree.
    by_mac: HashMap<MacAddr, Vec<(Key, String)>>,
    /// The ties made.
    ties: BTreeMap<MacAddr, Tie>,
}

impl Identities {
    /// A device as known from an earlier run: its keys (and its tie, if it had one) count.
    pub fn remember(&mut self, mac: MacAddr, p: &Profile, tie: Option<Tie>) {
        if let Some(t) = tie {
            self.ties.insert(mac, t);
        }
        self.register(mac, keys(mac, p));
    }

    fn root(&self, mac: MacAddr) -> MacAddr {
        self.ties.get(&mac).map_or(mac, |t| t.identity)
    }

    fn register(&mut self, mac: MacAddr, keys: Vec<(Key, String)>) {
        let root = self.root(mac);
        for k in &keys {
            self.index.entry(k.clone()).or_insert(root);
        }
        self.by_mac.insert(mac, keys);
    }

    /// Whether two MACs' keys disagree on an identifier both have.
    fn disagree(&self, a: &[(Key, String)], b: MacAddr) -> bool {
        let Some(bk) = self.by_mac.get(&b) else {
            return false;
        };
        [Key::DhcpClientId, Key::Duid].into_iter().any(|kind| {
            let va: Vec<&String> = a.iter().filter(|k| k.0 == kind).map(|k| &k.1).collect();
            let vb: Vec<&String> = bk.iter().filter(|k| k.0 == kind).map(|k| &k.1).collect();
            !va.is_empty() && !vb.is_empty() && !va.iter().any(|v| vb.contains(v))
        })
    }

    /// A device changed: its tie (made now or earlier), if any. `first_seen_ns` is when
    /// it first spoke; `last_seen` says when another MAC last did (kernel ns).
    pub fn observe(
        &mut self,
        mac: MacAddr,
        p: &Profile,
        first_seen_ns: u64,
        last_seen: impl Fn(&MacAddr) -> Option<u64>,
    ) -> Option<Tie> {
        let keys = keys(mac, p);
        if !self.ties.contains_key(&mac) && mac.is_locally_administered() {
            let found = keys.iter().find_map(|k| {
                let other = *self.index.get(k)?;
                if other == mac || self.root(other) == mac || self.disagree(&keys, other) {
                    return None;
                }
                let quiet = || {
                    // Some MAC of that identity spoke too recently.
                    !self
                        .by_mac
                        .keys()
                        .filter(|m| **m != mac && self.root(**m) == other)
                        .filter_map(&last_seen)
                        .any(|t| t > first_seen_ns + QUIET_NS)
                };
                (k.0.strong() || quiet()).then_some(Tie {
                    identity: other,
                    by: k.0,
                })
            });
            if let Some(t) = found {
                tracing::info!(
                    mac = %mac,
                    identity = %t.identity,
                    by = t.by.as_str(),
                    "a randomised MAC tied to an earlier identity"
                );
                self.ties.insert(mac, t);
            }
        }
        self.register(mac, keys);
        self.ties.get(&mac).copied()
    }

    /// Whether a MAC carries any identity key yet.
    pub fn has_keys(&self, mac: &MacAddr) -> bool {
        self.by_mac.get(mac).is_some_and(|k| !k.is_empty())
    }

    /// Whether two MACs are one identity.
    pub fn same(&self, a: &MacAddr, b: &MacAddr) -> bool {
        self.root(*a) == self.root(*b)
    }

    /// The tie of a MAC, if any.
    pub fn tie(&self, mac: &MacAddr) -> Option<Tie> {
        self.ties.get(mac).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::{Facts, dhcp::DhcpFacts};

    fn dhcp(mac: MacAddr, client_id: Option<&str>, host: Option<&str>) -> Profile {
        let mut p = Profile::default();
        p.merge(Facts::Dhcp(DhcpFacts {
            client_mac: mac,
            hostname: host.map(str::to_string),
            vendor_class: None,
            parameter_request_list: vec![1, 3, 6],
            client_id: client_id.map(str::to_string),
            mud_url: None,
        }));
        p
    }

    const OLD: MacAddr = MacAddr([0x02, 0x11, 0x22, 0x33, 0x44, 0x01]);
    const NEW: MacAddr = MacAddr([0x06, 0x11, 0x22, 0x33, 0x44, 0x02]);
    const REAL: MacAddr = MacAddr([0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e]);

    #[test]
    fn a_new_randomised_mac_with_the_same_client_id_is_the_same_identity() {
        let mut ids = Identities::default();
        assert_eq!(
            ids.observe(
                OLD,
                &dhcp(OLD, Some("ff0a0b0c0d"), Some("pixel-7")),
                0,
                |_| None
            ),
            None
        );
        let t = ids.observe(
            NEW,
            &dhcp(NEW, Some("ff0a0b0c0d"), Some("pixel-7")),
            100,
            |_| Some(200),
        );
        assert_eq!(
            t,
            Some(Tie {
                identity: OLD,
                by: Key::DhcpClientId
            })
        );
        // A third MAC ties to the first, not to the second.
        let third = MacAddr([0x0a, 0, 0, 0, 0, 3]);
        let t = ids.observe(third, &dhcp(third, Some("ff0a0b0c0d"), None), 300, |_| {
            Some(0)
        });
        assert_eq!(t.map(|t| t.identity), Some(OLD));
    }

    #[test]
    fn a_host_name_ties_only_a_mac_that_went_quiet_and_never_against_the_client_id() {
        let mut ids = Identities::default();
        ids.observe(OLD, &dhcp(OLD, None, Some("Living-Room-Tablet")), 0, |_| {
            None
        });
        let busy = |_: &MacAddr| Some(60_000_000_000);
        assert_eq!(
            ids.observe(
                NEW,
                &dhcp(NEW, None, Some("living-room-tablet")),
                50_000_000_000,
                busy
            ),
            None,
            "both talk at once: two devices"
        );
        let other = MacAddr([0x0e, 0, 0, 0, 0, 9]);
        let quiet = |_: &MacAddr| Some(1_000_000_000);
        assert_eq!(
            ids.observe(
                other,
                &dhcp(other, None, Some("living-room-tablet")),
                50_000_000_000,
                quiet
            )
            .map(|t| t.by),
            Some(Key::Hostname)
        );
        let mut ids = Identities::default();
        ids.observe(
            OLD,
            &dhcp(OLD, Some("aa01"), Some("kitchen-tablet")),
            0,
            |_| None,
        );
        assert_eq!(
            ids.observe(
                NEW,
                &dhcp(NEW, Some("bb02"), Some("kitchen-tablet")),
                50_000_000_000,
                quiet
            ),
            None,
            "different client ids: different devices"
        );
    }

    #[test]
    fn universal_macs_generic_names_and_mac_derived_client_ids_tie_nothing() {
        let mut ids = Identities::default();
        ids.observe(
            OLD,
            &dhcp(OLD, Some("01021122334401"), Some("android")),
            0,
            |_| None,
        );
        assert!(
            !ids.has_keys(&OLD),
            "type-1 client id of its own MAC and a generic name"
        );
        let new_own = format!("01{}", NEW.to_string().replace(':', ""));
        assert_eq!(
            ids.observe(NEW, &dhcp(NEW, Some(&new_own), Some("android")), 10, |_| {
                Some(0)
            }),
            None
        );
        ids.observe(OLD, &dhcp(OLD, Some("cafe"), None), 0, |_| None);
        assert_eq!(
            ids.observe(REAL, &dhcp(REAL, Some("cafe"), None), 10, |_| Some(0)),
            None,
            "a universal MAC is its own identity"
        );
    }
}
