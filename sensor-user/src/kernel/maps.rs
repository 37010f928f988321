//! Reading the kernel's maps: flows and devices in batches (BPF_MAP_LOOKUP_BATCH), the
//! stats array, the capture clock for replay, and the ring buffer handle.

use std::{
    io,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd},
};

use std::collections::HashMap;

use std::{
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use aya::{
    Ebpf, Pod,
    maps::{Map, MapData, MapError, PerCpuArray, PerCpuHashMap, PerCpuValues, RingBuf},
};
use sensor_common::{
    CacheSlot, DeviceCounters, DeviceKey, FlowCounters, FlowKey, MacAddr, maps, policy::Verdict,
    stats,
};

use crate::{model::device::DeviceTotals, model::flow::FlowTotals};

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
    dirty: Map,
    /// Slots per CPU in the change log.
    log_size: u64,
    log: Mutex<ChangeLog>,
    generations: std::sync::Arc<super::generations::Generations>,
    cpus: usize,
    batched: bool,
}

/// What a poll read of the flow map gives.
#[derive(Debug)]
pub struct FlowRead {
    /// Flows and their totals: every flow when `complete`, else those that changed.
    pub rows: Vec<(FlowKey, FlowTotals)>,
    /// The whole map was read: a flow missing from `rows` has left it.
    pub complete: bool,
}

/// Where userspace is in the kernel's change log, and when it last read the whole map.
struct ChangeLog {
    /// Read the whole map this often (evictions are only seen there); `None`: every
    /// poll reads the whole map (replay, and the tests that compare snapshots).
    sweep_every: Option<Duration>,
    last_sweep: Option<Instant>,
    epoch: u32,
    /// Per CPU: the log position read up to.
    tails: Vec<u64>,
    /// The flow cache as the last poll saw it (slot-major, then CPU).
    slots: Vec<CacheSlot>,
    /// Reads of the whole map, and how many of them a full log forced.
    sweeps: u64,
    overflows: u64,
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
        let dirty = take(ebpf, maps::DIRTY)?;
        let log_size = match &dirty {
            Map::PerCpuArray(d) => d.info().map(|i| u64::from(i.max_entries())),
            _ => Ok(0),
        }
        .map_err(|source| MapsError::Map {
            name: maps::DIRTY,
            source,
        })?;
        let maps = Self {
            flows: take(ebpf, maps::FLOWS)?,
            cache: take(ebpf, maps::FLOW_CACHE)?,
            devices: take(ebpf, maps::DEVICES)?,
            egress: take(ebpf, maps::EGRESS)?,
            stats: typed(ebpf, maps::STATS)?,
            clock: typed(ebpf, maps::CLOCK)?,
            dirty,
            log_size,
            log: Mutex::new(ChangeLog {
                sweep_every: None,
                last_sweep: None,
                epoch: 0,
                tails: Vec::new(),
                slots: Vec::new(),
                sweeps: 0,
                overflows: 0,
            }),
            generations: super::generations::Generations::take(ebpf)?,
            cpus,
            batched: true,
        };
        Ok((maps, typed(ebpf, maps::EVENTS)?))
    }

    /// The writer of the generations the kernel checks per frame: the policy stage
    /// moves the policy's on through it, polls the epoch.
    pub fn generations(&self) -> std::sync::Arc<super::generations::Generations> {
        self.generations.clone()
    }

    /// Reads maps key by key instead of in batches: the fallback for kernels without
    /// BPF_MAP_LOOKUP_BATCH, switchable so the benchmarks can compare the two.
    pub fn set_batched(&mut self, on: bool) {
        self.batched = on;
    }

    /// From now on a poll reads only the flows that changed since the last one (from
    /// the kernel's change log), and the whole map every `sweep_every`, or sooner when
    /// the log overflowed.
    pub fn read_changes(&mut self, sweep_every: Duration) {
        self.log
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .sweep_every = Some(sweep_every);
    }

    /// The next poll reads the whole map (the benchmark times a sweep this way).
    pub fn sweep_next(&self) {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last_sweep = None;
    }

    /// Reads of the whole map so far, and how many of them an overflowing change log
    /// forced (with `read_changes`).
    pub fn sweeps(&self) -> (u64, u64) {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        (log.sweeps, log.overflows)
    }

    /// A poll's read of the flows: with `read_changes`, the flows the change log and the
    /// flow cache say changed, else (and at a sweep) every flow.
    pub fn read_flows(&self) -> Result<FlowRead, MapsError> {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sweep_every) = log.sweep_every else {
            return Ok(FlowRead {
                rows: self.flows()?,
                complete: true,
            });
        };
        // The log's positions are read before the epoch moves on: a flow logged after
        // this read is logged again in the new epoch when it changes again, and one
        // logged before it is read below, after every change the old epoch saw.
        let heads = self.log_heads()?;
        log.epoch = log.epoch.wrapping_add(1);
        let epoch = log.epoch;
        self.generations.set_poll(epoch)?;
        let due = log.last_sweep.is_none_or(|t| t.elapsed() >= sweep_every);
        let changed = if due || log.tails.len() != heads.len() {
            None
        } else {
            self.changed_keys(&log.tails, &heads)?
        };
        log.tails = heads;
        let Some(mut keys) = changed else {
            if !due {
                if log.overflows == 0 {
                    tracing::warn!(
                        "more flows changed between two polls than the kernel's change log holds; this poll reads the whole flow map (counted as flow_log_overflows)"
                    );
                }
                log.overflows += 1;
            }
            log.sweeps += 1;
            log.last_sweep = Some(Instant::now());
            let rows = self.flow_rows()?;
            let slots = self.cache_slots()?;
            let rows = merge_pending(rows, &slots);
            log.slots = slots;
            return Ok(FlowRead {
                rows,
                complete: true,
            });
        };
        // Frames counted in the flow cache never touch the map: a slot whose counts
        // moved since the last poll makes its flow one to read.
        let before = self.cache_slots()?;
        for (i, s) in before.iter().enumerate() {
            if s.valid != 0 && s.packets != 0 && log.slots.get(i) != Some(s) {
                keys.insert(s.key);
            }
        }
        log.slots = before;
        drop(log);
        let flows = PerCpuHashMap::<&MapData, FlowKey, FlowCounters>::try_from(&self.flows)
            .map_err(|source| MapsError::Map {
                name: maps::FLOWS,
                source,
            })?;
        let mut rows = Vec::with_capacity(keys.len());
        for key in keys {
            match flows.get(&key, 0) {
                Ok(v) => rows.push((key, FlowTotals::sum(&v))),
                // Evicted since it was logged: the next sweep says so.
                Err(MapError::KeyNotFound) => {}
                Err(source) => {
                    return Err(MapsError::Map {
                        name: maps::FLOWS,
                        source,
                    });
                }
            }
        }
        // The cache is read again after the map, for the reason `flows` gives.
        Ok(FlowRead {
            rows: merge_pending(rows, &self.cache_slots()?),
            complete: false,
        })
    }

    /// Each CPU's change-log write position.
    fn log_heads(&self) -> Result<Vec<u64>, MapsError> {
        let per_cpu = self.stats.get(&0, 0).map_err(|source| MapsError::Map {
            name: maps::STATS,
            source,
        })?;
        Ok(per_cpu
            .iter()
            .map(|s| s[stats::DIRTY_LOGGED as usize])
            .collect())
    }

    /// The flows logged between `tails` and `heads`; `None` when a CPU's log wrapped
    /// past what was not read yet (before or while it was read).
    fn changed_keys(
        &self,
        tails: &[u64],
        heads: &[u64],
    ) -> Result<Option<std::collections::HashSet<FlowKey, foldhash::fast::RandomState>>, MapsError>
    {
        let size = self.log_size;
        let wrapped = |heads: &[u64]| {
            heads
                .iter()
                .zip(tails)
                .any(|(h, t)| h.saturating_sub(*t) > size)
        };
        if size == 0 || wrapped(heads) {
            return Ok(None);
        }
        let mut keys = std::collections::HashSet::default();
        if heads == tails {
            return Ok(Some(keys));
        }
        let Some(fd) = self.dirty_fd() else {
            let log = read_per_cpu::<u32, FlowKey, Vec<FlowKey>>(
                &self.dirty,
                maps::DIRTY,
                self.cpus,
                self.batched,
                <[FlowKey]>::to_vec,
            )?;
            for (cpu, (&head, &tail)) in heads.iter().zip(tails).enumerate() {
                for n in tail..head {
                    if let Some(k) = log[(n % size) as usize].1.get(cpu) {
                        keys.insert(*k);
                    }
                }
            }
            return Ok(Some(keys));
        };
        // Only the slots each CPU wrote since the last poll are copied (one or two batch
        // reads per CPU that wrote any): none on a quiet network, instead of the whole
        // log (4 MB at a million-flow table) every poll.
        let io = |source| MapsError::Io {
            name: maps::DIRTY,
            source,
        };
        for (cpu, (&head, &tail)) in heads.iter().zip(tails).enumerate() {
            let span = head.saturating_sub(tail);
            if span == 0 {
                continue;
            }
            let start = tail % size;
            let to_end = (size - start).min(span);
            let mut logged =
                lookup_log_range(fd, self.cpus, cpu, start as u32, to_end as u32).map_err(io)?;
            if span > to_end {
                logged.extend(
                    lookup_log_range(fd, self.cpus, cpu, 0, (span - to_end) as u32).map_err(io)?,
                );
            }
            // Short (it should not be): read the whole map rather than miss a flow.
            if logged.len() as u64 != span {
                return Ok(None);
            }
            keys.extend(logged);
        }
        // Entries overwritten while they were copied would be other flows' keys.
        if wrapped(&self.log_heads()?) {
            return Ok(None);
        }
        Ok(Some(keys))
    }

    /// Every slot of the flow cache, slot-major, then CPU.
    fn cache_slots(&self) -> Result<Vec<CacheSlot>, MapsError> {
        Ok(read_per_cpu::<u32, CacheSlot, Vec<CacheSlot>>(
            &self.cache,
            maps::FLOW_CACHE,
            self.cpus,
            self.batched,
            <[CacheSlot]>::to_vec,
        )?
        .into_iter()
        .flat_map(|(_, per_cpu)| per_cpu)
        .collect())
    }

    /// Every flow with its counters summed over CPUs, the flow cache's pending counts
    /// included. The map is read before the cache: a flush between the two reads then
    /// leaves counts out of this snapshot (the next has them) rather than counting them
    /// twice; see `FlowTable::on_poll` for the dip this can show.
    pub fn flows(&self) -> Result<Vec<(FlowKey, FlowTotals)>, MapsError> {
        let rows = self.flow_rows()?;
        Ok(merge_pending(rows, &self.cache_slots()?))
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

/// Adds the flow cache's pending counts to the flows they belong to.
fn merge_pending(
    mut rows: Vec<(FlowKey, FlowTotals)>,
    slots: &[CacheSlot],
) -> Vec<(FlowKey, FlowTotals)> {
    // Index the few thousand pending slots, not the million flows: one pass over the
    // rows then merges them (building a map of every flow took about 0.4 s at 1M).
    let mut pending: HashMap<FlowKey, Vec<CacheSlot>> = HashMap::new();
    for slot in slots {
        if slot.valid != 0 && slot.packets != 0 {
            pending.entry(slot.key).or_default().push(*slot);
        }
    }
    if pending.is_empty() {
        return rows;
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
    rows
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

/// One BPF_MAP_LOOKUP_BATCH: the kernel fills `attr`'s buffers and sets its count.
///
/// # Safety
/// `attr` must point at key and value buffers sized for its `count`, and at batch tokens
/// at least as large as the map's.
unsafe fn lookup_batch_call(attr: &mut BatchAttr) -> Option<io::Error> {
    // SAFETY: the caller's promise above.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_LOOKUP_BATCH,
            attr as *mut BatchAttr,
            size_of::<BatchAttr>(),
        )
    };
    (rc < 0).then(io::Error::last_os_error)
}

impl KernelMaps {
    /// The change log's descriptor, when polls read in batches.
    fn dirty_fd(&self) -> Option<BorrowedFd<'_>> {
        map_fd(&self.dirty).filter(|_| self.batched)
    }
}

/// `count` slots of the change log from slot `start`, in one BPF_MAP_LOOKUP_BATCH: the
/// keys `cpu` wrote there.
fn lookup_log_range(
    fd: BorrowedFd<'_>,
    cpus: usize,
    cpu: usize,
    start: u32,
    count: u32,
) -> io::Result<Vec<FlowKey>> {
    let stride = size_of::<FlowKey>().next_multiple_of(8);
    let mut keys = vec![0u8; count as usize * size_of::<u32>()];
    let mut values = vec![0u8; count as usize * stride * cpus];
    // The batch starts after its "previous key": none for slot 0.
    let before = start.wrapping_sub(1);
    let mut next = 0u32;
    let mut attr = BatchAttr {
        in_batch: if start == 0 {
            0
        } else {
            &before as *const u32 as u64
        },
        out_batch: &mut next as *mut u32 as u64,
        keys: keys.as_mut_ptr() as u64,
        values: values.as_mut_ptr() as u64,
        count,
        map_fd: fd.as_raw_fd() as u32,
        ..BatchAttr::default()
    };
    // SAFETY: attr points at buffers sized for `count` keys and values, and an array's
    // batch token is its u32 index.
    if let Some(err) = unsafe { lookup_batch_call(&mut attr) } {
        // ENOENT: the range reached the array's end, and `count` says how far it got.
        if err.raw_os_error() != Some(libc::ENOENT) {
            return Err(err);
        }
    }
    Ok((0..attr.count as usize)
        .map(|i| {
            // SAFETY: the kernel filled `count` values; FlowKey is Pod, read unaligned.
            unsafe {
                std::ptr::read_unaligned(
                    values[(i * cpus + cpu) * stride..]
                        .as_ptr()
                        .cast::<FlowKey>(),
                )
            }
        })
        .collect())
}

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
        let err = unsafe { lookup_batch_call(&mut attr) };
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
