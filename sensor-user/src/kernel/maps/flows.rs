//! The flow maps (`FLOWS`, `FLOW_CACHE`, and the change log `DIRTY`): a poll reads the
//! flows that changed since the last (from the kernel's change log and the flow cache),
//! and the whole map every sweep, when evictions are seen.

use std::{
    collections::HashMap,
    io,
    os::fd::{AsRawFd as _, BorrowedFd},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use aya::{
    Ebpf,
    maps::{Map, MapData, MapError, PerCpuHashMap},
};
use sensor_common::{CacheSlot, FlowCounters, FlowKey, maps, policy::Verdict};

use super::{
    batch::{BatchAttr, lookup_batch_call, map_fd, read_per_cpu},
    generations::Generations,
    object::{MapsError, take},
    stats::StatsMaps,
};
use crate::model::flow::FlowTotals;

/// The flow maps.
pub struct FlowMaps {
    flows: Map,
    cache: Map,
    dirty: Map,
    /// Slots per CPU in the change log.
    log_size: u64,
    log: Mutex<ChangeLog>,
    generations: Arc<Generations>,
    cpus: usize,
    /// Batch calls, not key by key (see `KernelMaps::set_batched`).
    pub(super) batched: bool,
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

impl FlowMaps {
    /// Takes the flow maps out of a loaded object; a poll moves the epoch on through
    /// `generations`.
    pub fn take(
        ebpf: &mut Ebpf,
        generations: Arc<Generations>,
        cpus: usize,
    ) -> Result<Self, MapsError> {
        let dirty = take(ebpf, maps::DIRTY)?;
        let log_size = match &dirty {
            Map::PerCpuArray(d) => d.info().map(|i| u64::from(i.max_entries())),
            _ => Ok(0),
        }
        .map_err(|source| MapsError::Map {
            name: maps::DIRTY,
            source,
        })?;
        Ok(Self {
            flows: take(ebpf, maps::FLOWS)?,
            cache: take(ebpf, maps::FLOW_CACHE)?,
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
            generations,
            cpus,
            batched: true,
        })
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
    pub fn read(&self, stats: &StatsMaps) -> Result<FlowRead, MapsError> {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sweep_every) = log.sweep_every else {
            return Ok(FlowRead {
                rows: self.all()?,
                complete: true,
            });
        };
        // The log's positions are read before the epoch moves on: a flow logged after
        // this read is logged again in the new epoch when it changes again, and one
        // logged before it is read below, after every change the old epoch saw.
        let heads = stats.log_heads()?;
        log.epoch = log.epoch.wrapping_add(1);
        let epoch = log.epoch;
        self.generations.set_poll(epoch)?;
        let due = log.last_sweep.is_none_or(|t| t.elapsed() >= sweep_every);
        let changed = if due || log.tails.len() != heads.len() {
            None
        } else {
            self.changed_keys(stats, &log.tails, &heads)?
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
            let rows = self.rows()?;
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

    /// The flows logged between `tails` and `heads`; `None` when a CPU's log wrapped
    /// past what was not read yet (before or while it was read).
    fn changed_keys(
        &self,
        stats: &StatsMaps,
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
        if wrapped(&stats.log_heads()?) {
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
    pub fn all(&self) -> Result<Vec<(FlowKey, FlowTotals)>, MapsError> {
        let rows = self.rows()?;
        Ok(merge_pending(rows, &self.cache_slots()?))
    }

    /// The flow map alone, summed over CPUs, without the flow cache's pending counts (the
    /// benchmark times this part of a poll on its own).
    pub fn rows(&self) -> Result<Vec<(FlowKey, FlowTotals)>, MapsError> {
        read_per_cpu::<FlowKey, FlowCounters, FlowTotals>(
            &self.flows,
            maps::FLOWS,
            self.cpus,
            self.batched,
            FlowTotals::sum,
        )
    }

    /// The change log's descriptor, when polls read in batches.
    fn dirty_fd(&self) -> Option<BorrowedFd<'_>> {
        map_fd(&self.dirty).filter(|_| self.batched)
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
