//! The intel trie (`INTEL`): the feeds' and canaries' prefixes the kernel checks a
//! flow's first packet against, written as a diff (additions first, so there is no
//! moment without entries).

use std::collections::BTreeMap;

use aya::{
    Ebpf,
    maps::{LpmTrie, MapData, lpm_trie::Key},
};
use ipnet::IpNet;
use sensor_common::{
    maps,
    policy::{IntelData, IntelEntry},
};

use super::{lpm, object::MapsError};

/// The kernel's intel trie and what was last written to it.
pub struct IntelMaps {
    trie: LpmTrie<MapData, IntelData, IntelEntry>,
    applied: BTreeMap<IpNet, IntelEntry>,
    /// The trie's fd number (valid while `trie` lives), for its fdinfo.
    fd: Option<i32>,
}

/// The trie key of a prefix.
pub fn intel_key(net: IpNet) -> Key<IntelData> {
    let (addr, bits) = lpm::mapped(net);
    Key::new(bits, IntelData { addr })
}

impl IntelMaps {
    /// Takes the trie out of a loaded object.
    pub fn take(ebpf: &mut Ebpf) -> Result<Self, MapsError> {
        let map = ebpf
            .take_map(maps::INTEL)
            .ok_or(MapsError::Missing(maps::INTEL))?;
        let fd = match &map {
            aya::maps::Map::LpmTrie(d) => {
                use std::os::fd::{AsFd as _, AsRawFd as _};
                Some(d.fd().as_fd().as_raw_fd())
            }
            _ => None,
        };
        let trie = LpmTrie::try_from(map).map_err(|source| MapsError::Map {
            name: maps::INTEL,
            source,
        })?;
        Ok(Self {
            trie,
            applied: BTreeMap::new(),
            fd,
        })
    }

    /// Makes the trie hold `want`: additions and changes first, then removals. Returns
    /// (written, removed).
    pub fn apply(
        &mut self,
        want: &BTreeMap<IpNet, IntelEntry>,
    ) -> Result<(usize, usize), MapsError> {
        let err = |source| MapsError::Map {
            name: maps::INTEL,
            source,
        };
        let mut written = 0;
        for (n, e) in want {
            if self.applied.get(n) != Some(e) {
                self.trie.insert(&intel_key(*n), e, 0).map_err(err)?;
                self.applied.insert(*n, *e);
                written += 1;
            }
        }
        let gone: Vec<IpNet> = self
            .applied
            .keys()
            .filter(|n| !want.contains_key(n))
            .copied()
            .collect();
        for n in &gone {
            let _ = self.trie.remove(&intel_key(*n));
            self.applied.remove(n);
        }
        Ok((written, gone.len()))
    }

    /// Kernel memory the trie is charged for (`memlock` in the map's fdinfo), bytes.
    pub fn kernel_bytes(&self) -> Option<u64> {
        let fd = self.fd?;
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
        info.lines()
            .find_map(|l| l.strip_prefix("memlock:"))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Entries in the trie.
    pub fn len(&self) -> usize {
        self.applied.len()
    }

    /// Whether the trie is empty.
    pub fn is_empty(&self) -> bool {
        self.applied.is_empty()
    }
}
