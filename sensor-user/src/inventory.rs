//! The declared inventory against what the network shows: which devices are declared,
//! which are new, which went missing.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    addr,
    config::{Config, Criticality},
    devices::{AddressMove, Device, DeviceTable},
};

/// What the inventory says about one MAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declared {
    /// Its name.
    pub name: Option<String>,
    /// Its declared category.
    pub category: Option<String>,
    /// Its declared criticality.
    pub criticality: Option<Criticality>,
}

/// An inventory finding that becomes an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finding {
    /// A MAC that is not declared showed up.
    NewDevice([u8; 6]),
    /// A declared MAC has not been seen for `missing_after`.
    Missing([u8; 6]),
    /// A device took an address another device held, or a declared device moved.
    AddressChange(AddressMove),
}

/// The declared devices and what has been reported about them.
#[derive(Debug, Default)]
pub struct Inventory {
    declared: BTreeMap<[u8; 6], Declared>,
    reported_new: BTreeSet<[u8; 6]>,
    reported_missing: BTreeSet<[u8; 6]>,
    reported_moves: BTreeSet<([u8; 6], std::net::IpAddr)>,
    missing_after_ns: u64,
    started_kernel_ns: u64,
}

impl Inventory {
    /// From `[[device]]` and `[inventory]`; `started_kernel_ns` is when watching began.
    pub fn new(config: &Config, started_kernel_ns: u64) -> Self {
        let declared = config
            .devices
            .iter()
            .filter_map(|d| {
                Some((
                    addr::parse_mac(d.mac.get_ref())?,
                    Declared {
                        name: d.name.clone(),
                        category: d.category.as_ref().map(|c| c.get_ref().clone()),
                        criticality: d.criticality,
                    },
                ))
            })
            .collect();
        Self {
            declared,
            missing_after_ns: config.inventory.missing_after.get_ref().as_nanos() as u64,
            started_kernel_ns,
            ..Self::default()
        }
    }

    /// The declaration of a MAC, if any.
    pub fn declared(&self, mac: &[u8; 6]) -> Option<&Declared> {
        self.declared.get(mac)
    }

    /// A device was seen (first sight or a change): a new-device finding, once per MAC.
    pub fn on_device(&mut self, d: &Device) -> Option<Finding> {
        self.reported_missing.remove(&d.mac);
        if self.declared.contains_key(&d.mac) || !self.reported_new.insert(d.mac) {
            return None;
        }
        Some(Finding::NewDevice(d.mac))
    }

    /// An address a device started using: a finding when another device held it, or when
    /// a declared device took a new address beside one of the same family; once per
    /// device and address.
    pub fn on_move(&mut self, m: AddressMove) -> Option<Finding> {
        let declared_moved = self.declared.contains_key(&m.mac) && m.had_same_family;
        if (m.previous_owner.is_some() || declared_moved)
            && self.reported_moves.insert((m.mac, m.addr))
        {
            return Some(Finding::AddressChange(m));
        }
        None
    }

    /// Declared devices unseen for `missing_after` at kernel time `now`, each reported
    /// once until it shows up again.
    pub fn check_missing(&mut self, now: u64, devices: &DeviceTable) -> Vec<Finding> {
        let mut out = Vec::new();
        for mac in self.declared.keys() {
            let last = devices
                .get(mac)
                .map_or(self.started_kernel_ns, |d| d.last_seen_ns);
            if now.saturating_sub(last) >= self.missing_after_ns
                && self.reported_missing.insert(*mac)
            {
                out.push(Finding::Missing(*mac));
            }
        }
        out
    }
}
