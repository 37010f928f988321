//! Writing the compiled policy into the kernel: the device-policy map, the allow-list
//! trie and the policy generation. Changes go in as a diff (additions and updates before
//! removals), so the maps are never empty in between.

use std::collections::BTreeMap;

use aya::{
    Ebpf,
    maps::{HashMap, LpmTrie, MapData, lpm_trie::Key},
};
use ipnet::IpNet;
use sensor_common::{
    DeviceKey, MacAddr, maps,
    policy::{AllowData, AllowEntry, DevicePolicy, GROUP_BITS},
};

use super::{
    generations::Generations,
    lpm,
    object::{MapsError, map_err},
};

/// The trie key of a group and prefix.
pub fn allow_key(group: u32, net: IpNet) -> Key<AllowData> {
    let (addr, bits) = lpm::mapped(net);
    Key::new(
        GROUP_BITS + bits,
        AllowData {
            group: group.to_be_bytes(),
            addr,
        },
    )
}

/// The policy maps of a loaded object and what was last written to them.
pub struct PolicyMaps {
    devices: HashMap<MapData, DeviceKey, DevicePolicy>,
    allow: LpmTrie<MapData, AllowData, AllowEntry>,
    generation: std::sync::Arc<Generations>,
    applied: BTreeMap<MacAddr, (DevicePolicy, BTreeMap<IpNet, AllowEntry>)>,
    current_gen: u32,
}

/// What applying one device's policy changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The device entry was created, removed, or its mode changed: flows already in the
    /// map need their verdict again.
    pub reevaluate: bool,
    /// Allow-list entries written or removed.
    pub entries: usize,
}

impl PolicyMaps {
    /// Takes the policy maps out of a loaded object; the generation is written through
    /// `generations` (`KernelMaps::generations`), which the polls share.
    pub fn take(
        ebpf: &mut Ebpf,
        generations: std::sync::Arc<Generations>,
    ) -> Result<Self, MapsError> {
        let mut take = |name: &'static str| ebpf.take_map(name).ok_or(MapsError::Missing(name));
        let devices =
            HashMap::try_from(take(maps::DEVICE_POLICY)?).map_err(map_err(maps::DEVICE_POLICY))?;
        let allow = LpmTrie::try_from(take(maps::ALLOW)?).map_err(map_err(maps::ALLOW))?;
        Ok(Self {
            devices,
            allow,
            generation: generations,
            applied: BTreeMap::new(),
            current_gen: 0,
        })
    }

    /// Makes the kernel hold `want` for one device (`None`: no policy). Additions and
    /// updates go in before removals, so there is no moment with less than both.
    pub fn apply_device(
        &mut self,
        mac: MacAddr,
        want: Option<(DevicePolicy, &BTreeMap<IpNet, AllowEntry>)>,
    ) -> Result<Applied, MapsError> {
        let mut out = Applied::default();
        let empty = BTreeMap::new();
        let (old_policy, old_entries) = match self.applied.get(&mac) {
            Some((p, e)) => (Some(*p), e),
            None => (None, &empty),
        };
        let key = DeviceKey { mac, _pad: [0; 2] };
        match want {
            Some((policy, entries)) => {
                for (net, e) in entries {
                    if old_entries.get(net) != Some(e) {
                        self.allow
                            .insert(&allow_key(policy.group, *net), e, 0)
                            .map_err(map_err(maps::ALLOW))?;
                        out.entries += 1;
                    }
                }
                if old_policy != Some(policy) {
                    self.devices
                        .insert(&key, &policy, 0)
                        .map_err(map_err(maps::DEVICE_POLICY))?;
                    out.reevaluate = true;
                }
                for net in old_entries.keys().filter(|n| !entries.contains_key(n)) {
                    // Already gone is fine: the goal is its absence.
                    let _ = self.allow.remove(&allow_key(policy.group, *net));
                    out.entries += 1;
                }
                self.applied.insert(mac, (policy, entries.clone()));
            }
            None => {
                if let Some(p) = old_policy {
                    let _ = self.devices.remove(&key);
                    for net in old_entries.keys() {
                        let _ = self.allow.remove(&allow_key(p.group, *net));
                        out.entries += 1;
                    }
                    out.reevaluate = true;
                }
                self.applied.remove(&mac);
            }
        }
        Ok(out)
    }

    /// Starts a new policy generation: every flow takes its verdict again at its next frame.
    pub fn bump_generation(&mut self) -> Result<u32, MapsError> {
        self.current_gen = self.current_gen.wrapping_add(1).max(1);
        self.generation.set_policy(self.current_gen)?;
        Ok(self.current_gen)
    }

    /// The generation last written.
    pub fn generation(&self) -> u32 {
        self.current_gen
    }

    /// Entries in the allow-list now.
    pub fn allow_entries(&self) -> usize {
        self.applied.values().map(|(_, e)| e.len()).sum()
    }
}
