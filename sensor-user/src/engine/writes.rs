//! Where the judge stage's decisions are written: the kernel's policy maps and intel
//! trie, and the state store. The judge returns what it decided (a `PolicyUpdate`, the
//! intel prefixes, `LearnedChanges`); these adapters write it, count what failed, and say
//! the first failure once.

use std::collections::BTreeMap;

use ipnet::IpNet;
use sensor_common::policy::IntelEntry;
use serde_json::Value;

use crate::{
    judge::baseline::{LearnedChanges, PolicyUpdate},
    kernel::maps::{intel::IntelMaps, policy::PolicyMaps},
    model::clock::TimeBase,
    store::state::{StateError, Store},
};

/// The maps the sensor writes, when a kernel program runs (not in unit tests).
pub struct KernelWrites {
    policy: PolicyMaps,
    intel: IntelMaps,
    /// Policy writes that failed (`policy.apply_errors`).
    policy_errors: u64,
    /// Intel trie writes that failed (`intel.apply_errors`).
    intel_errors: u64,
}

impl KernelWrites {
    /// Around the policy maps and the intel trie of a loaded object.
    pub fn new(policy: PolicyMaps, intel: IntelMaps) -> Self {
        Self {
            policy,
            intel,
            policy_errors: 0,
            intel_errors: 0,
        }
    }

    /// Writes each recompiled device's policy; a device whose entry appeared or changed
    /// mode, or an update that asks for it, makes every flow take its verdict again.
    pub fn policy(&mut self, update: PolicyUpdate) {
        let mut reevaluate = update.new_generation;
        for (mac, value, entries) in update.devices {
            match self.policy.apply_device(mac, Some((value, &entries))) {
                Ok(a) => reevaluate |= a.reevaluate,
                Err(e) => self.policy_failed(&e),
            }
        }
        if reevaluate && let Err(e) = self.policy.bump_generation() {
            self.policy_failed(&e);
        }
    }

    fn policy_failed(&mut self, e: &dyn std::error::Error) {
        if self.policy_errors == 0 {
            tracing::error!(error = %e, "writing the policy to the kernel failed (counted as policy.apply_errors)");
        }
        self.policy_errors += 1;
    }

    /// Makes the intel trie hold `want`, as a diff.
    pub fn intel(&mut self, want: &BTreeMap<IpNet, IntelEntry>) {
        match self.intel.apply(want) {
            Ok((written, removed)) if written + removed > 0 => tracing::info!(
                entries = self.intel.len(),
                written,
                removed,
                "intel: kernel trie updated"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "intel: writing the kernel trie failed (counted as intel.apply_errors)");
                self.intel_errors += 1;
            }
        }
    }

    /// Adds what the kernel holds to the `policy` and `intel` sections of `stats` (zeros
    /// where no kernel program runs).
    pub fn stats(this: Option<&Self>, policy: &mut Value, intel: &mut Value) {
        policy["allow_entries"] = this.map_or(0, |k| k.policy.allow_entries()).into();
        policy["generation"] = this.map_or(0, |k| k.policy.generation()).into();
        policy["apply_errors"] = this.map_or(0, |k| k.policy_errors).into();
        intel["kernel_entries"] = this.map_or(0, |k| k.intel.len()).into();
        intel["apply_errors"] = this.map_or(0, |k| k.intel_errors).into();
    }
}

/// Writes what was learned to the store.
pub fn save_learned(
    store: &mut Store,
    changes: LearnedChanges,
    now_epoch_ns: u64,
    time: &TimeBase,
) -> Result<(), StateError> {
    let rows: Vec<(String, String)> = changes
        .learned
        .into_iter()
        .map(|(m, r)| (m.to_string(), r))
        .collect();
    let renamed: Vec<(String, String, String)> = changes
        .renamed
        .into_iter()
        .map(|(m, old, new)| (m.to_string(), old, new))
        .collect();
    let forgotten: Vec<(String, String)> = changes
        .forgotten
        .into_iter()
        .map(|(m, r)| (m.to_string(), r))
        .collect();
    store.save_learned(&rows, &renamed, &forgotten, now_epoch_ns)?;
    if !changes.windows.is_empty() {
        let rows: Vec<(String, Option<u64>)> = changes
            .windows
            .into_iter()
            .map(|(m, until)| (m.to_string(), until.map(|u| time.to_epoch_ns(u))))
            .collect();
        store.save_windows(&rows)?;
    }
    Ok(())
}
