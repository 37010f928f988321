//! The device table: every source MAC seen on the LAN, the addresses it used, and when.
//! A device is written as a `device` event on first sight and whenever its addresses change.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use sensor_common::MacAddr;

use crate::{
    discover::profile::Profile,
    discover::{Decoded, Facts},
    model::device::{Assessment, Device, DeviceTotals, MAX_ADDRESSES, MAX_PEERS, Peers},
};

/// Devices seen on the LAN.
#[derive(Debug, Default)]
pub struct DeviceTable {
    devices: BTreeMap<MacAddr, Device>,
    changed: BTreeSet<MacAddr>,
    /// Which device last used each address.
    owners: std::collections::HashMap<IpAddr, MacAddr>,
    moves: Vec<AddressMove>,
    /// Devices whose peers changed since the last call to [`DeviceTable::take_peer_changes`].
    peers_changed: BTreeSet<MacAddr>,
    /// Devices first seen in this run since the last call to [`DeviceTable::take_fresh`].
    fresh: Vec<MacAddr>,
    /// Devices that left the kernel map (LRU eviction).
    pub evicted: u64,
    /// At most this many devices (0: no limit).
    cap: usize,
    /// Sightings of devices not tracked because the table was full.
    pub dropped: u64,
}

/// A device started using an address: one another device held, or a new one of its own
/// beside an address of the same family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressMove {
    /// The device.
    pub mac: MacAddr,
    /// The address it now uses.
    pub addr: IpAddr,
    /// The device that used it before, if another did.
    pub previous_owner: Option<MacAddr>,
    /// Whether the device already had an address of this family (it moved or added one).
    pub had_same_family: bool,
}

impl DeviceTable {
    /// Devices known now.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether no device is known.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// A device by MAC.
    pub fn get(&self, mac: &MacAddr) -> Option<&Device> {
        self.devices.get(mac)
    }

    /// A table holding at most `cap` devices (the kernel's device-table size): a flood of
    /// new MACs between two polls cannot grow it past that; the rest are counted.
    pub fn with_capacity(cap: usize) -> Self {
        Self {
            cap,
            ..Self::default()
        }
    }

    /// Whether the table is full.
    pub fn full(&self) -> bool {
        self.cap != 0 && self.devices.len() >= self.cap
    }

    fn entry(&mut self, mac: MacAddr, ts_ns: u64) -> Option<&mut Device> {
        if !self.devices.contains_key(&mac) && self.full() {
            return None;
        }
        let changed = &mut self.changed;
        let fresh = &mut self.fresh;
        Some(self.devices.entry(mac).or_insert_with(|| {
            changed.insert(mac);
            fresh.push(mac);
            Device {
                mac,
                first_seen_ns: ts_ns,
                last_seen_ns: ts_ns,
                addresses: BTreeSet::new(),
                addresses_dropped: 0,
                totals: DeviceTotals::default(),
                profile: Profile::default(),
                peers: Peers::default(),
                assessment: None,
                first_seen_epoch_ns: None,
            }
        }))
    }

    /// A frame from `mac` at kernel time `ts_ns` (first sight when unknown).
    pub fn on_seen(&mut self, mac: MacAddr, ts_ns: u64) {
        match self.entry(mac, ts_ns) {
            Some(d) => d.last_seen_ns = d.last_seen_ns.max(ts_ns),
            None => self.dropped += 1,
        }
    }

    /// `mac` used source address `addr`.
    pub fn on_address(&mut self, mac: MacAddr, addr: IpAddr, ts_ns: u64) {
        if !crate::model::addr::is_host_address(addr) {
            return;
        }
        let Some(d) = self.entry(mac, ts_ns) else {
            return;
        };
        if d.addresses.contains(&addr) {
            return;
        }
        if d.addresses.len() >= MAX_ADDRESSES {
            d.addresses_dropped += 1;
            return;
        }
        let had_same_family = d
            .addresses
            .iter()
            .any(|a| a.is_ipv4() == addr.is_ipv4() && !is_link_local(*a));
        d.addresses.insert(addr);
        self.changed.insert(mac);
        let previous_owner = self.owners.insert(addr, mac).filter(|o| *o != mac);
        if !is_link_local(addr) {
            self.moves.push(AddressMove {
                mac,
                addr,
                previous_owner,
                had_same_family,
            });
        }
    }

    /// Addresses devices started using since the last call.
    pub fn take_moves(&mut self) -> Vec<AddressMove> {
        std::mem::take(&mut self.moves)
    }

    /// Facts a discovery frame gave about a device, at kernel time `ts_ns`.
    pub fn on_facts(&mut self, d: Decoded, ts_ns: u64) {
        match d.facts {
            Facts::Address(a)
            | Facts::ArpRequest {
                claimed: Some(a), ..
            } => return self.on_address(d.mac, a, ts_ns),
            Facts::ArpRequest { claimed: None, .. } => return self.on_seen(d.mac, ts_ns),
            _ => {}
        }
        let Some(dev) = self.entry(d.mac, ts_ns) else {
            return;
        };
        if dev.profile.merge(d.facts) {
            self.changed.insert(d.mac);
        }
    }

    /// What a flow's first payload from `mac` said (`serving`: on a flow it serves), at
    /// kernel time `ts_ns`.
    pub fn on_payload(
        &mut self,
        mac: MacAddr,
        facts: &crate::discover::payload::PayloadFacts,
        serving: bool,
        ts_ns: u64,
    ) {
        let Some(dev) = self.entry(mac, ts_ns) else {
            return;
        };
        if dev.profile.merge_payload(facts, serving) {
            self.changed.insert(mac);
        }
    }

    /// What a flow's first payload to `mac` said (`serving`: a client's request to it;
    /// else the greeting of a server it connected to).
    pub fn on_payload_in(
        &mut self,
        mac: MacAddr,
        facts: &crate::discover::payload::PayloadFacts,
        serving: bool,
        ts_ns: u64,
    ) {
        let Some(dev) = self.entry(mac, ts_ns) else {
            return;
        };
        if dev.profile.merge_payload_in(facts, serving) {
            self.changed.insert(mac);
        }
    }

    /// Software `mac` named at `at` (an EVE timestamp).
    pub fn on_software(
        &mut self,
        mac: MacAddr,
        named: Vec<crate::discover::software::Named>,
        at: &str,
    ) {
        if named.is_empty() {
            return;
        }
        if let Some(dev) = self.devices.get_mut(&mac)
            && dev.profile.saw_software(named, at)
        {
            self.changed.insert(mac);
        }
    }

    /// `mac` opened a flow to `dst` (`serving`: it answers a client there). Links it to
    /// the device that uses `dst`, or counts `dst` as an external destination.
    pub fn on_flow(&mut self, mac: MacAddr, dst: IpAddr, serving: bool) {
        if !crate::model::addr::is_host_address(dst) || !self.devices.contains_key(&mac) {
            return;
        }
        match self.owners.get(&dst).copied().filter(|o| *o != mac) {
            Some(other) if self.devices.contains_key(&other) => {
                // A client depends on the server it talks to, whichever side we saw.
                let (client, server) = if serving { (other, mac) } else { (mac, other) };
                let grew = self.devices.get_mut(&server).is_some_and(|d| {
                    d.peers.dependents.len() < MAX_PEERS && d.peers.dependents.insert(client)
                });
                let grew2 = self.devices.get_mut(&client).is_some_and(|d| {
                    d.peers.internal.len() < MAX_PEERS && d.peers.internal.insert(server)
                });
                if grew {
                    self.peers_changed.insert(server);
                }
                if grew2 {
                    self.peers_changed.insert(client);
                }
            }
            Some(_) => {}
            None => {
                let d = self.devices.get_mut(&mac).expect("checked above");
                if d.peers.external.contains(&dst) {
                    return;
                }
                if d.peers.external.len() < MAX_PEERS {
                    d.peers.external.insert(dst);
                } else {
                    d.peers.external_more += 1;
                }
                self.peers_changed.insert(mac);
            }
        }
    }

    /// Devices whose peers changed since the last call.
    pub fn take_peer_changes(&mut self) -> BTreeSet<MacAddr> {
        std::mem::take(&mut self.peers_changed)
    }

    /// Sets a device's assessment; a change of it is a change of the device.
    pub fn assess(&mut self, mac: &MacAddr, a: Assessment) {
        if let Some(d) = self.devices.get_mut(mac)
            && d.assessment.as_ref() != Some(&a)
        {
            d.assessment = Some(a);
            self.changed.insert(*mac);
        }
    }

    /// Puts back what an earlier run knew of a device seen again: its first sight and
    /// profile. Call on first sight in this run.
    pub fn restore(&mut self, mac: MacAddr, first_seen_epoch_ns: u64, profile: Profile) {
        if let Some(d) = self.devices.get_mut(&mac) {
            d.first_seen_epoch_ns = Some(first_seen_epoch_ns);
            if d.profile == Profile::default() {
                d.profile = profile;
            }
        }
    }

    /// Something another stage keeps changed (its learning window ended): the device is
    /// reported again.
    pub fn touch(&mut self, mac: &MacAddr) {
        if self.devices.contains_key(mac) {
            self.changed.insert(*mac);
        }
    }

    /// Every device is to be assessed and written again (a reloaded feed changes what
    /// every device carries).
    pub fn mark_all_changed(&mut self) {
        self.changed.extend(self.devices.keys().copied());
    }

    /// Devices changed since the last [`DeviceTable::take_changed`].
    pub fn changed_macs(&self) -> Vec<MacAddr> {
        self.changed.iter().copied().collect()
    }

    /// Devices first seen (in this run) since the last call.
    pub fn take_fresh(&mut self) -> Vec<MacAddr> {
        std::mem::take(&mut self.fresh)
    }

    /// Every device.
    pub fn iter(&self) -> impl Iterator<Item = &Device> {
        self.devices.values()
    }

    /// A poll of the kernel maps, read from kernel time `read_at` on: device counters, and
    /// the latest frame time of each device's flows (a device's IP frames only show
    /// there). A device missing from it has left the kernel's map, unless it was seen at
    /// or after `read_at`: the map is read on another thread, and a device whose first
    /// frame came while it was read is not in it yet.
    pub fn on_poll(
        &mut self,
        snapshot: impl IntoIterator<Item = (MacAddr, DeviceTotals)>,
        flow_last_seen: &BTreeMap<MacAddr, u64>,
        read_at: u64,
    ) {
        let mut present = BTreeSet::new();
        for (mac, totals) in snapshot {
            present.insert(mac);
            let last = totals
                .last_seen_ns
                .max(flow_last_seen.get(&mac).copied().unwrap_or(0));
            if let Some(d) = self.entry(mac, last) {
                d.totals = totals;
                d.last_seen_ns = d.last_seen_ns.max(last);
            }
        }
        let before = self.devices.len();
        self.devices
            .retain(|mac, d| present.contains(mac) || d.last_seen_ns >= read_at);
        self.evicted += (before - self.devices.len()) as u64;
    }

    /// Devices first seen or changed since the last call, in MAC order.
    pub fn take_changed(&mut self) -> Vec<Device> {
        let macs = std::mem::take(&mut self.changed);
        macs.iter()
            .filter_map(|m| self.devices.get(m).cloned())
            .collect()
    }
}

/// Link-local addresses are per link and self-assigned (IPv6 from the MAC, IPv4 by
/// collision avoidance): a device adding one says nothing about moving.
fn is_link_local(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taking_another_devices_address_is_a_move_with_its_previous_owner() {
        let b = MacAddr([2, 0, 0, 0, 0, 0xb]);
        let mut t = DeviceTable::default();
        t.on_address(A, "198.51.100.10".parse().unwrap(), 1);
        let first = t.take_moves();
        assert_eq!(first.len(), 1);
        assert_eq!(
            (first[0].previous_owner, first[0].had_same_family),
            (None, false)
        );
        t.on_address(b, "198.51.100.10".parse().unwrap(), 2);
        let m = t.take_moves();
        assert_eq!(m[0].previous_owner, Some(A));
        t.on_address(A, "198.51.100.50".parse().unwrap(), 3);
        let m = t.take_moves();
        assert_eq!((m[0].previous_owner, m[0].had_same_family), (None, true));
        t.on_address(A, "fe80::1".parse().unwrap(), 4);
        assert!(
            t.take_moves().is_empty(),
            "link-local addresses are not moves"
        );
    }

    const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);

    #[test]
    fn first_sight_and_new_address_are_changes_once() {
        let mut t = DeviceTable::default();
        t.on_seen(A, 10);
        t.on_address(A, "198.51.100.10".parse().unwrap(), 11);
        let c = t.take_changed();
        assert_eq!(c.len(), 1, "first sight and its address coalesce");
        assert_eq!(c[0].addresses.len(), 1);
        t.on_address(A, "198.51.100.10".parse().unwrap(), 12);
        assert!(
            t.take_changed().is_empty(),
            "same address again is no change"
        );
        t.on_address(A, "2001:db8::10".parse().unwrap(), 13);
        assert_eq!(t.take_changed().len(), 1);
    }

    #[test]
    fn unspecified_and_multicast_sources_are_not_addresses() {
        let mut t = DeviceTable::default();
        t.on_address(A, "0.0.0.0".parse().unwrap(), 1);
        t.on_address(A, "ff02::1".parse().unwrap(), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn address_list_is_bounded() {
        let mut t = DeviceTable::default();
        for i in 0..40u8 {
            t.on_address(A, IpAddr::from([198, 51, 100, i]), 1);
        }
        let d = t.get(&A).unwrap();
        assert_eq!(d.addresses.len(), MAX_ADDRESSES);
        assert_eq!(d.addresses_dropped, 40 - MAX_ADDRESSES as u64);
    }

    #[test]
    fn poll_updates_counters_and_drops_evicted() {
        let mut t = DeviceTable::default();
        let b = MacAddr([2, 0, 0, 0, 0, 0xb]);
        t.on_seen(A, 1);
        t.on_seen(b, 1);
        let tot = DeviceTotals {
            non_ip_packets: 2,
            non_ip_bytes: 120,
            new_flows: 3,
            last_seen_ns: 50,
        };
        t.on_poll([(A, tot)], &BTreeMap::from([(A, 70)]), 60);
        assert_eq!(t.get(&A).unwrap().totals, tot);
        assert_eq!(
            t.get(&A).unwrap().last_seen_ns,
            70,
            "a flow's frame is newer"
        );
        assert!(t.get(&b).is_none());
        assert_eq!(t.evicted, 1);
    }

    #[test]
    fn a_device_seen_while_the_map_was_read_is_not_evicted_by_that_read() {
        let mut t = DeviceTable::default();
        t.on_seen(A, 100);
        t.on_address(A, "198.51.100.7".parse().unwrap(), 100);
        // A read that began before its first frame does not have it.
        t.on_poll([], &BTreeMap::new(), 90);
        let d = t.get(&A).expect("kept");
        assert_eq!(d.addresses.len(), 1, "with what it said");
        // A read that began after it does speak for it: it left the kernel's map.
        t.on_poll([], &BTreeMap::new(), 101);
        assert!(t.get(&A).is_none());
        assert_eq!(t.evicted, 1);
    }
}
