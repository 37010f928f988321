//! Reading the kernel's maps: flows and devices in batches (BPF_MAP_LOOKUP_BATCH), the
//! stats array, the capture clock for replay, and the ring buffer handle.

use std::{
    io,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd},
};

use std::collections::HashMap;

use aya::{
    Ebpf, Pod,
    maps::{Map, MapData, MapError, PerCpuArray, PerCpuHashMap, PerCpuValues, RingBuf},
};
use sensor_common::{
    CacheSlot, DeviceCounters, DeviceKey, FlowCounters, FlowKey, MacAddr, maps, policy::Verdict,
    stats,
};

use crate::{track::devices::DeviceTotals, track::flows::FlowTotals};

/// A map that is missing from the object or could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MapsError {
    /// The object has no map of that name (a build mismatch).
    #[error("the eBPF object has no map {0}")]
    Missing(&'static str),
    /// The map is not of the expected type.
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
    /// A syscall on the map failed.
    #[error("reading map {name}: {source}")]
    Io {
        name: &'static str,
        #[source]
        source: io::Error,
    },
}

/// The maps userspace reads, taken out of the loaded object.
pub struct KernelMaps {
    flows: Map,
    cache: Map,
    devices: Map,
    egress: Map,
    stats: PerCpuArray<MapData, [u64; stats::COUNT as usize]>,
    clock: PerCpuArray<MapData, u64>,
    cpus: usize,
    batched: bool,
}

fn take(ebpf: &mut Ebpf, name: &'static str) -> Result<Map, MapsError> {
    ebpf.take_map(name).ok_or(MapsError::Missing(name))
}

fn typed<T: TryFrom<Map, Error = MapError>>(
    ebpf: &mut Ebpf,
    name: &'static str,
) -> Result<T, MapsError> {
    T::try_from(take(ebpf, name)?).map_err(|source| MapsError::Map { name, source })
}

impl KernelMaps {
    /// Takes every map out of a loaded object; the ring buffer comes apart, since it is
    /// read on its own schedule.
    pub fn take(ebpf: &mut Ebpf) -> Result<(Self, RingBuf<MapData>), MapsError> {
        let cpus = aya::util::nr_cpus()
            .map_err(|(_, source)| MapsError::Io {
                name: "possible cpus",
                source,
            })?
            .get() as usize;
        let maps = Self {
            flows: take(ebpf, maps::FLOWS)?,
            cache: take(ebpf, maps::FLOW_CACHE)?,
            devices: take(ebpf, maps::DEVICES)?,
            egress: take(ebpf, maps::EGRESS)?,
            stats: typed(ebpf, maps::STATS)?,
            clock: typed(ebpf, maps::CLOCK)?,
            cpus,
            batched: true,
        };
        Ok((maps, typed(ebpf, maps::EVENTS)?))
    }

    /// Reads maps key by key instead of in batches: the fallback for kernels without
    /// BPF_MAP_LOOKUP_BATCH, switchable so the benchmarks can compare the two.
    pub fn set_batched(&mut self, on: bool) {
        self.batched = on;
    }

    /// Every flow with its counters summed over CPUs, the flow cache's pending counts
    /// included. The map is read before the cache: a flush between the two reads then
    /// leaves counts out of this snapshot (the next has them) rather than counting them
    /// twice; see `FlowTable::on_poll` for the dip this can show.
    pub fn flows(&self) -> Result<Vec<(FlowKey, FlowTotals)>, MapsError> {
        let mut rows = self.flow_rows()?;
        let slots = read_per_cpu::<u32, CacheSlot, Vec<CacheSlot>>(
            &self.cache,
            maps::FLOW_CACHE,
            self.cpus,
            self.batched,
            <[CacheSlot]>::to_vec,
        )?;
        // Index the few thousand pending slots, not the million flows: one pass over the
        // rows then merges them (building a map of every flow took about 0.4 s at 1M).
        let mut pending: HashMap<FlowKey, Vec<CacheSlot>> = HashMap::new();
        for slot in slots.iter().flat_map(|(_, per_cpu)| per_cpu) {
            if slot.valid != 0 && slot.packets != 0 {
                pending.entry(slot.key).or_default().push(*slot);
            }
        }
        if pending.is_empty() {
            return Ok(rows);
        }
        // A slot whose flow left the map is counted as lost when it flushes.
        for (key, t) in &mut rows {
            let Some(slots) = pending.get(key) else {
                continue;
            };
            for slot in slots {
                t.packets += slot.packets;
                t.bytes += slot.bytes;
                t.cached_packets += slot.packets;
                t.tcp_flags |= slot.tcp_flags;
                t.syns += u64::from(slot.syns);
                let v = Verdict::from_u8(slot.verdict).unwrap_or_default();
                if slot.policy_gen >= t.policy_gen && v != Verdict::Unset {
                    t.verdict = v;
                    t.policy_gen = slot.policy_gen;
                }
            }
        }
        Ok(rows)
    }

    /// The flow map alone, summed over CPUs, without the flow cache's pending counts (the
    /// benchmark times this part of a poll on its own).
    pub fn flow_rows(&self) -> Result<Vec<(FlowKey, FlowTotals)>, MapsError> {
        read_per_cpu::<FlowKey, FlowCounters, FlowTotals>(
            &self.flows,
            maps::FLOWS,
            self.cpus,
            self.batched,
            FlowTotals::sum,
        )
    }

    /// What the gateway sent each device: (mac, packets, bytes), summed over CPUs.
    pub fn egress(&self) -> Result<Vec<(MacAddr, u64, u64)>, MapsError> {
        let rows = read_per_cpu::<DeviceKey, sensor_common::EgressCounters, (u64, u64)>(
            &self.egress,
            maps::EGRESS,
            self.cpus,
            self.batched,
            |v| {
                v.iter()
                    .fold((0, 0), |(p, b), c| (p + c.packets, b + c.bytes))
            },
        )?;
        Ok(rows.into_iter().map(|(k, (p, b))| (k.mac, p, b)).collect())
    }

    /// Every device with its counters summed over CPUs.
    pub fn devices(&self) -> Result<Vec<(MacAddr, DeviceTotals)>, MapsError> {
        let rows = read_per_cpu::<DeviceKey, DeviceCounters, DeviceTotals>(
            &self.devices,
            maps::DEVICES,
            self.cpus,
            self.batched,
            DeviceTotals::sum,
        )?;
        Ok(rows.into_iter().map(|(k, t)| (k.mac, t)).collect())
    }

    /// The stats counters summed over CPUs.
    pub fn stats(&self) -> Result<[u64; stats::COUNT as usize], MapsError> {
        let per_cpu = self.stats.get(&0, 0).map_err(|source| MapsError::Map {
            name: maps::STATS,
            source,
        })?;
        let mut out = [0u64; stats::COUNT as usize];
        for cpu in per_cpu.iter() {
            for (o, v) in out.iter_mut().zip(cpu) {
                *o += v;
            }
        }
        Ok(out)
    }

    /// Sets the replay clock on every CPU.
    pub fn set_clock(&mut self, ns: u64) -> Result<(), MapsError> {
        let values =
            PerCpuValues::try_from(vec![ns; self.cpus]).map_err(|source| MapsError::Io {
                name: maps::CLOCK,
                source,
            })?;
        self.clock
            .set(0, values, 0)
            .map_err(|source| MapsError::Map {
                name: maps::CLOCK,
                source,
            })
    }
}

fn map_fd<'a>(map: &'a Map) -> Option<BorrowedFd<'a>> {
    match map {
        Map::PerCpuLruHashMap(d) | Map::PerCpuHashMap(d) | Map::PerCpuArray(d) => {
            Some(d.fd().as_fd())
        }
        _ => None,
    }
}

/// Reads a per-CPU hash map or array: in batches when the kernel supports it, else key by
/// key.
/// `fold` turns one key's per-CPU values into what the caller keeps (a sum, usually), so
/// a million flows cost no million small allocations.
fn read_per_cpu<K: Pod, V: Pod, T>(
    map: &Map,
    name: &'static str,
    cpus: usize,
    batched: bool,
    fold: impl Fn(&[V]) -> T,
) -> Result<Vec<(K, T)>, MapsError> {
    if let Some(fd) = map_fd(map).filter(|_| batched) {
        match lookup_batch::<K, V, T>(fd, cpus, &fold) {
            Ok(rows) => return Ok(rows),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(source) => return Err(MapsError::Io { name, source }),
        }
    }
    if let Map::PerCpuArray(_) = map {
        let a = PerCpuArray::<&MapData, V>::try_from(map)
            .map_err(|source| MapsError::Map { name, source })?;
        let mut rows = Vec::new();
        for (i, v) in a.iter().enumerate() {
            let v = v.map_err(|source| MapsError::Map { name, source })?;
            // SAFETY: an array's key is its u32 index; K is u32 for arrays.
            let key: K = unsafe { std::ptr::read_unaligned((&(i as u32) as *const u32).cast()) };
            let per_cpu: Vec<V> = v.iter().copied().collect();
            rows.push((key, fold(&per_cpu)));
        }
        return Ok(rows);
    }
    let m = PerCpuHashMap::<&MapData, K, V>::try_from(map)
        .map_err(|source| MapsError::Map { name, source })?;
    let mut rows = Vec::new();
    for item in m.iter() {
        match item {
            Ok((k, v)) => {
                let per_cpu: Vec<V> = v.iter().copied().collect();
                rows.push((k, fold(&per_cpu)));
            }
            // Deleted (evicted) between the key walk and the lookup.
            Err(MapError::KeyNotFound) => {}
            Err(source) => return Err(MapsError::Map { name, source }),
        }
    }
    Ok(rows)
}

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// BPF_MAP_LOOKUP_BATCH over the whole map. aya has no wrapper for it yet.
fn lookup_batch<K: Pod, V: Pod, T>(
    fd: BorrowedFd<'_>,
    cpus: usize,
    fold: &impl Fn(&[V]) -> T,
) -> io::Result<Vec<(K, T)>> {
    // Per-CPU values come as one 8-byte-aligned slot per possible CPU.
    let stride = size_of::<V>().next_multiple_of(8);
    let value_bytes = stride * cpus;
    // A hash bucket must fit in one batch, or the kernel answers ENOSPC; start generous
    // (fewer syscalls; the buffers are reused across batches).
    let mut chunk: usize = 16_384;
    let mut rows = Vec::new();
    let mut token = [0u8; 64];
    let mut next = [0u8; 64];
    let mut first = true;
    let mut keys = Vec::new();
    let mut values = Vec::new();
    let mut per_cpu: Vec<V> = Vec::with_capacity(cpus);
    loop {
        keys.resize(chunk * size_of::<K>(), 0u8);
        values.resize(chunk * value_bytes, 0u8);
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { token.as_ptr() as u64 },
            out_batch: next.as_mut_ptr() as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: chunk as u32,
            map_fd: fd.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        // SAFETY: attr points at buffers sized for `count` keys and values, and the batch
        // tokens are larger than any map's token (a u32 bucket index for hash maps).
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_BATCH,
                &mut attr as *mut BatchAttr,
                size_of::<BatchAttr>(),
            )
        };
        let err = (rc < 0).then(io::Error::last_os_error);
        match err.as_ref().and_then(io::Error::raw_os_error) {
            Some(libc::ENOSPC) if attr.count == 0 => {
                chunk *= 2;
                continue;
            }
            Some(libc::ENOENT) | None => {}
            Some(_) => return Err(err.expect("checked above")),
        }
        for i in 0..attr.count as usize {
            // SAFETY: the kernel filled `count` keys and values; Pod types read unaligned.
            let key: K =
                unsafe { std::ptr::read_unaligned(keys[i * size_of::<K>()..].as_ptr().cast()) };
            let base = i * value_bytes;
            per_cpu.clear();
            per_cpu.extend((0..cpus).map(|c| unsafe {
                std::ptr::read_unaligned(values[base + c * stride..].as_ptr().cast::<V>())
            }));
            rows.push((key, fold(&per_cpu)));
        }
        if err.is_some() {
            // ENOENT: that was the last batch.
            return Ok(rows);
        }
        token = next;
        first = false;
    }
}
