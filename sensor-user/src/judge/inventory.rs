//! The declared inventory against what the network shows: which devices are declared,
//! which are new, which went missing.

use sensor_common::MacAddr;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use crate::{
    config::Config,
    judge::rules,
    model::alert::{About, Alert},
    model::clock::{TimeBase, eve_timestamp},
    model::device::Device,
    model::rule::Rule,
    model::vocab::Declared,
    track::devices::{AddressMove, DeviceTable},
};

/// An inventory alert about `mac`.
fn finding(rule: &'static Rule, mac: MacAddr, metadata: serde_json::Value) -> Alert {
    Alert::new(rule, About::Device(mac), "inventory").with_metadata(metadata)
}

/// `new_device` for `mac`.
fn new_device(mac: MacAddr) -> Alert {
    finding(&rules::NEW_DEVICE, mac, json!({}))
}

/// The declared devices and what has been reported about them.
#[derive(Debug, Default)]
pub struct Inventory {
    declared: BTreeMap<MacAddr, Declared>,
    /// The declarations with what operators set by hand laid over them: what the other
    /// stages see of a device (`declared`). Membership (new, missing, moves) stays the
    /// configuration's.
    effective: BTreeMap<MacAddr, Declared>,
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
        let declared: BTreeMap<MacAddr, Declared> = config
            .devices
            .iter()
            .filter_map(|d| {
                Some((
                    d.mac.get_ref().parse::<MacAddr>().ok()?,
                    Declared {
                        name: d.name.clone(),
                        category: d.category.as_ref().map(|c| c.get_ref().clone()),
                        criticality: d.criticality,
                        listed: true,
                        set_by: None,
                        state: None,
                    },
                ))
            })
            .collect();
        Self {
            effective: declared.clone(),
            declared,
            missing_after_ns: config.inventory.missing_after.get_ref().as_nanos() as u64,
            identity_grace_ns: config.inventory.identity_grace.get_ref().as_nanos() as u64,
            started_kernel_ns,
            ..Self::default()
        }
    }

    /// The declaration of a MAC, if any.
    pub fn declared(&self, mac: &MacAddr) -> Option<&Declared> {
        self.effective.get(mac)
    }

    /// Lays operators' settings (mac, category, name, who; mac, state) over the
    /// declarations; returns
    /// the devices whose declaration changed, to be assessed and reported again.
    pub fn set_operator(
        &mut self,
        overrides: impl IntoIterator<Item = (MacAddr, Option<String>, Option<String>, String)>,
        states: impl IntoIterator<Item = (MacAddr, String)>,
    ) -> Vec<MacAddr> {
        let mut next = self.declared.clone();
        let blank = || Declared {
            name: None,
            category: None,
            criticality: None,
            listed: false,
            set_by: None,
            state: None,
        };
        for (mac, state) in states {
            next.entry(mac).or_insert_with(blank).state = Some(state);
        }
        for (mac, category, name, by) in overrides {
            let d = next.entry(mac).or_insert_with(blank);
            if category.is_some() {
                d.category = category;
                d.set_by = Some(by);
            }
            if name.is_some() {
                d.name = name;
            }
        }
        let changed = super::changed_keys(&self.effective, &next);
        self.effective = next;
        changed
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
    ) -> Option<Alert> {
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
        let meta = json!({
            "declared_category": [declared],
            "observed_category": [observed.category],
            "confidence": [format!("{:.2}", observed.confidence)],
        });
        Some(finding(&rules::CATEGORY_MISMATCH, mac, meta))
    }

    /// A device was seen (first sight or a change): a new-device finding, once per
    /// identity. A MAC tied to an earlier identity (`tied`) is not new; a randomised MAC
    /// that has said nothing to tie it by yet (`has_keys` false) waits up to
    /// `identity_grace` (see [`Inventory::release_held`]).
    pub fn on_device(&mut self, d: &Device, tied: bool, has_keys: bool) -> Option<Alert> {
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
        (!tied).then(|| new_device(d.mac))
    }

    /// Randomised MACs whose wait has ended at kernel time `now` (all of them with
    /// `u64::MAX`, when the run ends) without a tie: new after all.
    pub fn release_held(&mut self, now: u64) -> Vec<Alert> {
        let due: Vec<MacAddr> = self
            .held
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(m, _)| *m)
            .collect();
        due.into_iter()
            .filter_map(|m| {
                self.held.remove(&m);
                self.reported_new.insert(m).then(|| new_device(m))
            })
            .collect()
    }

    /// An address a device started using: a finding when another device held it, or when
    /// a declared device took a new address beside one of the same family; once per
    /// device and address.
    pub fn on_move(&mut self, m: AddressMove) -> Option<Alert> {
        let declared_moved = self.declared.contains_key(&m.mac) && m.had_same_family;
        if (m.previous_owner.is_some() || declared_moved)
            && self.reported_moves.insert((m.mac, m.addr))
        {
            let mut meta = json!({ "address": [m.addr.to_string()] });
            if let Some(prev) = m.previous_owner {
                meta["previous_mac"] = json!([prev.to_string()]);
            }
            return Some(finding(&rules::ADDRESS_CHANGE, m.mac, meta));
        }
        None
    }

    /// Declared devices unseen for `missing_after` at kernel time `now`, each reported
    /// once until it shows up again; `time` dates their last sight.
    pub fn check_missing(
        &mut self,
        now: u64,
        devices: &DeviceTable,
        time: &TimeBase,
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        for mac in self.declared.keys() {
            let last = devices
                .get(mac)
                .map_or(self.started_kernel_ns, |d| d.last_seen_ns);
            if now.saturating_sub(last) >= self.missing_after_ns
                && self.reported_missing.insert(*mac)
            {
                let last = devices.get(mac).map_or("never".to_string(), |d| {
                    eve_timestamp(time.to_epoch_ns(d.last_seen_ns))
                });
                let meta = json!({ "last_seen": [last] });
                out.push(finding(&rules::MISSING_DEVICE, *mac, meta));
            }
        }
        out
    }
}
