//! What each device was told by DNS: name -> addresses with their expiry, and back. Domain
//! allow entries become kernel entries for exactly these addresses, and alerts name the
//! domain a device resolved for a destination.

use sensor_common::MacAddr;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
};

/// Names kept per device; the oldest expire first when a device resolves more.
pub const MAX_NAMES_PER_DEVICE: usize = 4096;

/// One answer a device received: `name` (the name it asked for, and each name of the
/// CNAME chain) resolves to `addr` for `ttl_s` seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The device.
    pub mac: MacAddr,
    /// Names: the question, then the CNAME chain.
    pub names: Vec<String>,
    /// Addresses the answer gave.
    pub addrs: Vec<IpAddr>,
    /// The smallest TTL along the chain.
    pub ttl_s: u32,
}

/// One name a device was told about: its addresses with their expiry (kernel ns), and
/// whether the device asked for it (the head of a chain) or met it as a CNAME target.
#[derive(Debug, Default)]
struct Told {
    addrs: BTreeMap<IpAddr, u64>,
    asked: bool,
}

/// Per device: name -> addresses and expiry.
#[derive(Debug, Default)]
pub struct Resolved {
    by_device: HashMap<MacAddr, BTreeMap<String, Told>>,
    grace_ns: u64,
    /// Names dropped because a device held too many.
    pub dropped: u64,
}

impl Resolved {
    /// `grace_ns`: how long past its TTL an address stays allowed.
    pub fn new(grace_ns: u64) -> Self {
        Self {
            grace_ns,
            ..Self::default()
        }
    }

    /// Takes in an answer at kernel time `now`; returns whether anything new was learned
    /// (a name or address not known before).
    pub fn on_answer(&mut self, a: &Answer, now: u64) -> bool {
        let expires = now + u64::from(a.ttl_s) * 1_000_000_000 + self.grace_ns;
        let names = self.by_device.entry(a.mac).or_default();
        let mut new = false;
        for (i, n) in a.names.iter().enumerate() {
            if !names.contains_key(n) && names.len() >= MAX_NAMES_PER_DEVICE {
                self.dropped += 1;
                continue;
            }
            let told = names.entry(n.clone()).or_default();
            told.asked |= i == 0;
            for addr in &a.addrs {
                match told.addrs.insert(*addr, expires) {
                    None => new = true,
                    Some(old) if old > expires => {
                        told.addrs.insert(*addr, old);
                    }
                    Some(_) => {}
                }
            }
        }
        new
    }

    /// Forgets what expired before `now`; returns whether anything did.
    pub fn expire(&mut self, now: u64) -> bool {
        let mut any = false;
        for names in self.by_device.values_mut() {
            for told in names.values_mut() {
                let before = told.addrs.len();
                told.addrs.retain(|_, e| *e > now);
                any |= told.addrs.len() != before;
            }
            names.retain(|_, t| !t.addrs.is_empty());
        }
        self.by_device.retain(|_, n| !n.is_empty());
        any
    }

    /// Addresses `mac` holds for names matching `pred`.
    pub fn addrs_for(&self, mac: &MacAddr, pred: impl Fn(&str) -> bool) -> BTreeSet<IpAddr> {
        self.by_device
            .get(mac)
            .into_iter()
            .flatten()
            .filter(|(n, _)| pred(n))
            .flat_map(|(_, t)| t.addrs.keys().copied())
            .collect()
    }

    /// The names `mac` resolved to `addr`: the names it asked for first, then the CNAME
    /// targets (a load balancer's name at the tail of a chain changes with the provider's
    /// whims; the name the device asked for is what its firmware holds).
    pub fn names_for(&self, mac: &MacAddr, addr: IpAddr) -> Vec<&str> {
        let mut out: Vec<(bool, &str)> = self
            .by_device
            .get(mac)
            .into_iter()
            .flatten()
            .filter(|(_, t)| t.addrs.contains_key(&addr))
            .map(|(n, t)| (!t.asked, n.as_str()))
            .collect();
        out.sort();
        out.into_iter().map(|(_, n)| n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

    fn answer(names: &[&str], addrs: &[&str], ttl_s: u32) -> Answer {
        Answer {
            mac: M,
            names: names.iter().map(|s| s.to_string()).collect(),
            addrs: addrs.iter().map(|s| s.parse().unwrap()).collect(),
            ttl_s,
        }
    }

    #[test]
    fn addresses_expire_after_ttl_and_grace() {
        let mut r = Resolved::new(5_000_000_000);
        assert!(r.on_answer(&answer(&["cloud.example.com"], &["203.0.113.10"], 60), 0));
        assert!(!r.on_answer(&answer(&["cloud.example.com"], &["203.0.113.10"], 60), 1));
        let a = r.addrs_for(&M, |n| n == "cloud.example.com");
        assert_eq!(a.len(), 1);
        assert!(!r.expire(64_000_000_000), "inside TTL + grace");
        assert!(r.expire(65_000_000_001));
        assert!(r.addrs_for(&M, |_| true).is_empty());
    }

    #[test]
    fn a_cname_chain_gives_every_name_the_addresses() {
        let mut r = Resolved::new(0);
        r.on_answer(
            &answer(
                &["cam.example.com", "edge.cdn.example.net"],
                &["203.0.113.20"],
                30,
            ),
            0,
        );
        assert_eq!(
            r.names_for(&M, "203.0.113.20".parse().unwrap()),
            vec!["cam.example.com", "edge.cdn.example.net"]
        );
        assert!(
            r.names_for(&MacAddr([9; 6]), "203.0.113.20".parse().unwrap())
                .is_empty(),
            "per device"
        );
    }

    #[test]
    fn the_name_asked_for_comes_first_whatever_its_spelling() {
        // The chain's tail sorts first alphabetically; the device asked for the head.
        let mut r = Resolved::new(0);
        r.on_answer(
            &answer(
                &["zz-device.vendor.example", "a1.lb.cloud.example"],
                &["203.0.113.21"],
                30,
            ),
            0,
        );
        assert_eq!(
            r.names_for(&M, "203.0.113.21".parse().unwrap()),
            vec!["zz-device.vendor.example", "a1.lb.cloud.example"]
        );
    }
}
