//! The declared inventory against what the network shows: which devices are declared,
//! which are new, which went missing.

use sensor_common::MacAddr;

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    config::Config,
    model::vocab::Declared,
    track::devices::{AddressMove, Device, DeviceTable},
};

/// An inventory finding that becomes an alert.
#[derive(Clone, Debug, PartialEq)]
pub enum Finding {
    /// A MAC that is not declared showed up.
    NewDevice(MacAddr),
    /// A declared MAC has not been seen for `missing_after`.
    Missing(MacAddr),
    /// A device took an address another device held, or a declared device moved.
    AddressChange(AddressMove),
    /// A declared device's facts say, with strong confidence, that it is something else.
    CategoryMismatch {
        /// The device.
        mac: MacAddr,
        /// Its declared category.
        declared: String,
        /// What its facts say.
        observed: String,
        /// How sure the classification is.
        confidence: f64,
    },
}

impl Finding {
    /// The rule it raises.
    pub fn rule(&self) -> &'static crate::judge::rules::Rule {
        use crate::judge::rules;
        match self {
            Finding::NewDevice(_) => &rules::NEW_DEVICE,
            Finding::Missing(_) => &rules::MISSING_DEVICE,
            Finding::AddressChange(_) => &rules::ADDRESS_CHANGE,
            Finding::CategoryMismatch { .. } => &rules::CATEGORY_MISMATCH,
        }
    }

    /// The device the finding is about.
    pub fn mac(&self) -> MacAddr {
        match self {
            Finding::NewDevice(m) | Finding::Missing(m) => *m,
            Finding::AddressChange(m) => m.mac,
            Finding::CategoryMismatch { mac, .. } => *mac,
        }
    }
}

/// The declared devices and what has been reported about them.
#[derive(Debug, Default)]
pub struct Inventory {
    declared: BTreeMap<MacAddr, Declared>,
    reported_new: BTreeSet<MacAddr>,
    reported_missing: BTreeSet<MacAddr>,
    reported_moves: BTreeSet<(MacAddr, std::net::IpAddr)>,
    reported_mismatch: BTreeSet<(MacAddr, String)>,
    /// Randomised MACs waiting to say who they are, with the kernel time their wait ends.
    held: BTreeMap<MacAddr, u64>,
    missing_after_ns: u64,
    identity_grace_ns: u64,
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
                    d.mac.get_ref().parse::<MacAddr>().ok()?,
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
            identity_grace_ns: config.inventory.identity_grace.get_ref().as_nanos() as u64,
            started_kernel_ns,
            ..Self::default()
        }
    }

    /// The declaration of a MAC, if any.
    pub fn declared(&self, mac: &MacAddr) -> Option<&Declared> {
        self.declared.get(mac)
    }

    /// `new_device` was raised for `mac` in an earlier run: not again.
    pub fn already_reported_new(&mut self, mac: MacAddr) {
        self.reported_new.insert(mac);
    }

    /// Whether `new_device` has been raised for `mac`.
    pub fn reported_new(&self, mac: &MacAddr) -> bool {
        self.reported_new.contains(mac)
    }

    /// A device's classification: a mismatch finding when it is declared as another
    /// category and the evidence is at least `strong`; once per device and observed category.
    pub fn on_classified(
        &mut self,
        mac: MacAddr,
        observed: &crate::model::vocab::Classification,
        strong: f64,
    ) -> Option<Finding> {
        let declared = self.declared.get(&mac)?.category.clone()?;
        if observed.category == "unknown"
            || observed.category == declared
            || observed.confidence < strong
            || !self
                .reported_mismatch
                .insert((mac, observed.category.clone()))
        {
            return None;
        }
        Some(Finding::CategoryMismatch {
            mac,
            declared,
            observed: observed.category.clone(),
            confidence: observed.confidence,
        })
    }

    /// A device was seen (first sight or a change): a new-device finding, once per
    /// identity. A MAC tied to an earlier identity (`tied`) is not new; a randomised MAC
    /// that has said nothing to tie it by yet (`has_keys` false) waits up to
    /// `identity_grace` (see [`Inventory::release_held`]).
    pub fn on_device(&mut self, d: &Device, tied: bool, has_keys: bool) -> Option<Finding> {
        self.reported_missing.remove(&d.mac);
        if self.declared.contains_key(&d.mac) || self.reported_new.contains(&d.mac) {
            return None;
        }
        if !tied && !has_keys && d.mac.is_locally_administered() && self.identity_grace_ns > 0 {
            self.held
                .entry(d.mac)
                .or_insert(d.first_seen_ns.saturating_add(self.identity_grace_ns));
            return None;
        }
        self.held.remove(&d.mac);
        self.reported_new.insert(d.mac);
        (!tied).then_some(Finding::NewDevice(d.mac))
    }

    /// Randomised MACs whose wait has ended at kernel time `now` (all of them with
    /// `u64::MAX`, when the run ends) without a tie: new after all.
    pub fn release_held(&mut self, now: u64) -> Vec<Finding> {
        let due: Vec<MacAddr> = self
            .held
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(m, _)| *m)
            .collect();
        due.into_iter()
            .filter_map(|m| {
                self.held.remove(&m);
                self.reported_new.insert(m).then_some(Finding::NewDevice(m))
            })
            .collect()
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
