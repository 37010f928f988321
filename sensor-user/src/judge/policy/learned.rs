//! The learned baseline: every destination a learning device used, as allow entries
//! (by domain when the device resolved one for the address, so CDN address changes don't
//! break it; else by address), with when it was first used.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use ipnet::IpNet;
use sensor_common::{MacAddr, proto};

use super::allow::{AllowRule, Dest};

/// Entries kept per device; a device using more while learning has the rest counted.
pub const MAX_PER_DEVICE: usize = 1024;

/// Learned entries per device.
#[derive(Debug, Default)]
pub struct Learned {
    by_device: BTreeMap<MacAddr, BTreeSet<AllowRule>>,
    /// Entries not yet persisted.
    pending: Vec<(MacAddr, AllowRule)>,
    /// Address entries turned into name entries, not yet persisted: (device, old, new).
    renamed: Vec<(MacAddr, AllowRule, AllowRule)>,
    /// Entries taken back, not yet persisted.
    forgotten: Vec<(MacAddr, AllowRule)>,
    /// Entries not kept because a device had [`MAX_PER_DEVICE`].
    pub dropped: u64,
}

/// The allow entry that covers one flow: the resolved name if any, the port, the protocol.
pub fn rule_for(addr: IpAddr, port: u16, proto_nr: u8, name: Option<&str>) -> AllowRule {
    let dest = match name {
        Some(n) => Dest::Domain(n.to_string()),
        None => Dest::Net(IpNet::from(addr)),
    };
    let icmp = proto_nr == proto::ICMP || proto_nr == proto::ICMPV6;
    AllowRule {
        dest,
        port: (!icmp && port != 0).then_some(port),
        proto: Some(if icmp { proto::ICMP } else { proto_nr }),
    }
}

impl Learned {
    /// Puts back entries from the state store.
    pub fn restore(&mut self, mac: MacAddr, rule: AllowRule) {
        self.by_device.entry(mac).or_default().insert(rule);
    }

    /// Records a rule; returns whether it is new.
    pub fn record(&mut self, mac: MacAddr, rule: AllowRule) -> bool {
        let set = self.by_device.entry(mac).or_default();
        if set.contains(&rule) {
            return false;
        }
        if set.len() >= MAX_PER_DEVICE {
            self.dropped += 1;
            return false;
        }
        set.insert(rule.clone());
        self.pending.push((mac, rule));
        true
    }

    /// Takes an entry back: a destination that turned out to be one no device may learn.
    /// Returns whether it was there.
    pub fn forget(&mut self, mac: MacAddr, rule: &AllowRule) -> bool {
        if !self.by_device.get_mut(&mac).is_some_and(|s| s.remove(rule)) {
            return false;
        }
        let before = self.pending.len();
        self.pending.retain(|(m, r)| !(*m == mac && r == rule));
        if self.pending.len() == before {
            self.forgotten.push((mac, rule.clone()));
        }
        true
    }

    /// The device was told `addr` is `name`: its entries for exactly that address become
    /// entries for the name (same port and protocol), so the name is allowed wherever the
    /// cloud moves it. Learning can see a first connection before any DNS answer (the
    /// device resolved before the sensor started); this is how such an entry gets its name.
    /// Returns how many entries changed.
    pub fn rekey(&mut self, mac: MacAddr, addr: IpAddr, name: &str) -> usize {
        let Some(set) = self.by_device.get_mut(&mac) else {
            return 0;
        };
        let host = Dest::Net(IpNet::from(addr));
        let old: Vec<AllowRule> = set.iter().filter(|r| r.dest == host).cloned().collect();
        for r in &old {
            set.remove(r);
            let new = AllowRule {
                dest: Dest::Domain(name.to_string()),
                ..r.clone()
            };
            set.insert(new.clone());
            self.renamed.push((mac, r.clone(), new));
        }
        old.len()
    }

    /// A device's learned entries.
    pub fn rules(&self, mac: &MacAddr) -> impl Iterator<Item = &AllowRule> {
        self.by_device.get(mac).into_iter().flatten()
    }

    /// Entries over all devices.
    pub fn len(&self) -> usize {
        self.by_device.values().map(BTreeSet::len).sum()
    }

    /// Whether nothing was learned.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries recorded since the last call (to persist).
    pub fn take_pending(&mut self) -> Vec<(MacAddr, AllowRule)> {
        std::mem::take(&mut self.pending)
    }

    /// Entries taken back since the last call (to persist).
    pub fn take_forgotten(&mut self) -> Vec<(MacAddr, AllowRule)> {
        std::mem::take(&mut self.forgotten)
    }

    /// Entries renamed since the last call (to persist): (device, old, new).
    pub fn take_renamed(&mut self) -> Vec<(MacAddr, AllowRule, AllowRule)> {
        std::mem::take(&mut self.renamed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_taken_back_is_deleted_once_persisted_or_never_written() {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let irc = rule_for("203.0.113.6".parse().unwrap(), 8000, proto::TCP, None);
        let mut l = Learned::default();
        assert!(l.record(mac, irc.clone()));
        assert!(l.forget(mac, &irc));
        assert!(
            l.take_pending().is_empty() && l.take_forgotten().is_empty(),
            "never written"
        );
        assert!(l.record(mac, irc.clone()));
        assert_eq!(l.take_pending().len(), 1);
        assert!(l.forget(mac, &irc));
        assert!(!l.forget(mac, &irc), "once");
        assert_eq!(l.take_forgotten(), vec![(mac, irc)]);
        assert_eq!(l.rules(&mac).count(), 0);
    }

    #[test]
    fn a_resolved_name_is_learned_instead_of_its_address() {
        let r = rule_for(
            "203.0.113.10".parse().unwrap(),
            443,
            proto::TCP,
            Some("cloud.example.com"),
        );
        assert_eq!(r.to_string(), "cloud.example.com:443/tcp");
        let r = rule_for("203.0.113.10".parse().unwrap(), 123, proto::UDP, None);
        assert_eq!(r.to_string(), "203.0.113.10:123/udp");
        let r = rule_for("203.0.113.10".parse().unwrap(), 8 << 8, proto::ICMP, None);
        assert_eq!(r.to_string(), "203.0.113.10/icmp");
    }

    #[test]
    fn entries_are_recorded_once_and_bounded() {
        let mut l = Learned::default();
        let m = MacAddr([2, 0, 0, 0, 0, 1]);
        let r = rule_for("203.0.113.10".parse().unwrap(), 443, proto::TCP, None);
        assert!(l.record(m, r.clone()));
        assert!(!l.record(m, r));
        assert_eq!(l.take_pending().len(), 1);
        for i in 0..2000u16 {
            l.record(
                m,
                rule_for("203.0.113.10".parse().unwrap(), i + 1, proto::UDP, None),
            );
        }
        assert_eq!(l.rules(&m).count(), MAX_PER_DEVICE);
        assert!(l.dropped > 0);
    }

    #[test]
    fn an_address_entry_becomes_the_name_the_device_is_told() {
        let mut l = Learned::default();
        let m = MacAddr([2, 0, 0, 0, 0, 1]);
        let a: IpAddr = "203.0.113.10".parse().unwrap();
        l.record(m, rule_for(a, 8883, proto::TCP, None));
        l.record(m, rule_for(a, 443, proto::TCP, None));
        l.record(
            m,
            rule_for("203.0.113.11".parse().unwrap(), 443, proto::TCP, None),
        );
        l.take_pending();
        assert_eq!(l.rekey(m, a, "lock.iot.example.com"), 2);
        let now: Vec<String> = l.rules(&m).map(ToString::to_string).collect();
        assert_eq!(
            now,
            [
                "203.0.113.11:443/tcp",
                "lock.iot.example.com:443/tcp",
                "lock.iot.example.com:8883/tcp"
            ]
        );
        assert_eq!(l.take_renamed().len(), 2);
        assert_eq!(l.rekey(m, a, "lock.iot.example.com"), 0, "once");
        assert_eq!(
            l.rekey(MacAddr([9; 6]), a, "x.example.com"),
            0,
            "per device"
        );
    }
}
