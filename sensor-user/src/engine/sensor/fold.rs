//! Taking a poll in: its rows, the flows whose held-back traffic fell due, the flows a
//! whole read did not find, then the stages that look at a whole poll (devices,
//! anomaly, learning). Live mode does it a slice at a time between ring-buffer reads: a
//! sweep of a million flows folds for most of a second, and an alert raised meanwhile
//! must not wait for all of it.

use super::{KernelStats, Sensor};
use crate::model::{device::DeviceTotals, flow::FlowTotals};
use sensor_common::{FlowKey, MacAddr};

/// A poll being taken in.
pub(super) struct Folding {
    now_ns: u64,
    now_kernel: u64,
    complete: bool,
    rows: std::vec::IntoIter<(FlowKey, FlowTotals)>,
    /// The rows' buffer is large enough to free off the event loop.
    large: bool,
    devices: Vec<(MacAddr, DeviceTotals)>,
    egress: Vec<(MacAddr, u64, u64)>,
    stats: KernelStats,
    step: Step,
}

/// Where a fold is.
enum Step {
    Rows,
    Due,
    /// After a whole read: looking for the flows it did not find, from this entry on.
    Gone(usize),
}

/// A poll wholly taken in: when it was read, and the kernel's stats counters then.
#[derive(Debug)]
pub struct PollDone {
    /// When the read began (epoch).
    pub now_ns: u64,
    /// The kernel's stats counters, for `stats` and the metrics snapshot.
    pub stats: KernelStats,
}

impl Sensor {
    /// Starts taking in a poll (one still being taken in is finished first): every flow
    /// when `complete`, else the flows that changed since the last.
    pub(super) fn begin_fold(
        &mut self,
        now_ns: u64,
        rows: Vec<(FlowKey, FlowTotals)>,
        complete: bool,
        devices: Vec<(MacAddr, DeviceTotals)>,
        egress: Vec<(MacAddr, u64, u64)>,
        stats: KernelStats,
    ) {
        self.finish_fold();
        self.flows.begin(complete);
        self.folding = Some(Folding {
            now_ns,
            now_kernel: self.eve.time.to_kernel_ns(now_ns),
            complete,
            large: rows.capacity() * size_of::<(FlowKey, FlowTotals)>() >= FREE_ELSEWHERE_BYTES,
            rows: rows.into_iter(),
            devices,
            egress,
            stats,
            step: Step::Rows,
        });
    }

    /// Whether a poll is being taken in.
    pub fn folding(&self) -> bool {
        self.folding.is_some()
    }

    /// Takes in up to `max` more flows of the poll under way and writes their records;
    /// returns the poll once all of it is in.
    pub fn fold_slice(&mut self, max: usize) -> Option<PollDone> {
        let mut f = self.folding.take()?;
        let (records, done) = match &mut f.step {
            Step::Rows => {
                let records =
                    self.flows
                        .fold_rows(f.now_ns, f.now_kernel, f.rows.by_ref().take(max));
                if f.rows.len() == 0 {
                    f.step = Step::Due;
                    if f.large {
                        free_elsewhere(std::mem::take(&mut f.rows));
                    }
                }
                (records, false)
            }
            Step::Due => {
                let due = self.flows.take_due(f.now_ns, max);
                let last = due.len() < max;
                if last && f.complete {
                    f.step = Step::Gone(0);
                }
                (due, last && !f.complete)
            }
            Step::Gone(from) => {
                // Looking at an entry is cheap next to folding a row: more per slice.
                let (gone, next) =
                    self.flows
                        .evict_missing(f.now_kernel, *from, max.saturating_mul(32));
                if let Some(n) = next {
                    *from = n;
                }
                (gone, next.is_none())
            }
        };
        self.write_flows(f.now_ns, records);
        if !done {
            self.folding = Some(f);
            return None;
        }
        Some(self.end_fold(f))
    }

    /// Takes in the rest of the poll under way, if any.
    pub(super) fn finish_fold(&mut self) -> Option<PollDone> {
        while self.folding.is_some() {
            if let Some(done) = self.fold_slice(usize::MAX) {
                return Some(done);
            }
        }
        None
    }

    /// Every flow of the poll is in: the stages that look at the poll as a whole.
    fn end_fold(&mut self, f: Folding) -> PollDone {
        let Folding {
            now_ns,
            now_kernel,
            devices,
            egress,
            stats,
            ..
        } = f;
        self.devices
            .on_poll(devices, self.flows.last_seen_by_device(), now_kernel);
        self.check_pressure(now_ns);
        let deltas = self.flows.take_deltas();
        let found = self.anomaly.on_poll(now_kernel, &deltas, &egress);
        for key in self.anomaly.take_kept_out() {
            self.baseline.take_back(key);
        }
        self.alerts.extend(found);
        let macs: Vec<MacAddr> = self.devices.iter().map(|d| d.mac).collect();
        // Learning ended: say so now (stats, and each device's event), not at the next
        // stats interval.
        let ended = self.baseline.on_tick(now_kernel, macs.into_iter());
        self.stats_now |= !ended.is_empty();
        for mac in &ended {
            self.devices.touch(mac);
        }
        self.end_batch(now_ns);
        let missing = self
            .inventory
            .check_missing(now_kernel, &self.devices, &self.eve.time);
        self.alerts.extend(missing);
        self.write_alerts(now_ns);
        self.release_held(now_ns, now_kernel);
        PollDone { now_ns, stats }
    }
}

/// Rows buffers at least this large are freed on a thread of their own: unmapping a
/// sweep's (over 100 MB at a million flows) took 6 ms of the event loop, which an alert
/// raised meanwhile waited for.
const FREE_ELSEWHERE_BYTES: usize = 8 << 20;

/// Frees `spent` on a thread of its own (or here, when no thread can be had).
fn free_elsewhere<T: Send + 'static>(spent: T) {
    let _ = std::thread::Builder::new()
        .name("kw-free".into())
        .spawn(move || drop(spent));
}
