//! The userspace flow table: turns polled kernel counters into `flow` records with totals
//! and deltas, notices LRU evictions, and decides when a flow is due a record.

use std::{hash::BuildHasher as _, time::Duration};

use sensor_common::{FlowKey, MacAddr};

use crate::model::flow::{FlowDelta, FlowRecord, FlowTotals, Origin, Reason};

#[derive(Debug, Default)]
struct Tracked {
    origin: Option<Origin>,
    totals: FlowTotals,
    reported_packets: u64,
    reported_bytes: u64,
    last_report_ns: u64,
    /// The last whole read (`FlowTable::sweep`) that found the flow, or that an event
    /// announced it during.
    seen: u32,
    alerted: bool,
    /// What its first payload showed it speaks.
    app_proto: Option<&'static str>,
    /// In `FlowTable::due`: unreported traffic waits for its report interval.
    queued: bool,
}

/// Flows known to userspace, mirroring the kernel map.
#[derive(Debug)]
pub struct FlowTable {
    flows: Entries,
    report_every_ns: u64,
    /// Flows that left the kernel map (LRU eviction).
    pub evicted: u64,
    /// Flows whose counters went backwards between polls: evicted and created again.
    pub recreated: u64,
    deltas: Vec<FlowDelta>,
    /// Flows with traffic not yet reported, by the time their report falls due: a poll
    /// that reads only the flows that changed must still report a flow whose traffic
    /// came before its interval was up.
    due: std::collections::BinaryHeap<std::cmp::Reverse<(u64, FlowKey)>>,
    /// The latest frame time of each device's flows that the last poll read.
    last_seen: std::collections::BTreeMap<MacAddr, u64>,
    /// Whole reads begun so far: a flow whose `seen` is behind it was not found by the
    /// one under way (no pass over every flow to reset a flag).
    sweep: u32,
}

impl FlowTable {
    /// A table that reports a busy flow at most once per `report_every`.
    pub fn new(report_every: Duration) -> Self {
        Self {
            flows: Entries::default(),
            report_every_ns: report_every.as_nanos() as u64,
            evicted: 0,
            recreated: 0,
            deltas: Vec::new(),
            due: std::collections::BinaryHeap::new(),
            last_seen: std::collections::BTreeMap::new(),
            sweep: 0,
        }
    }

    /// Flows tracked now.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether no flow is tracked.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Every flow whose first packet we know, with it.
    pub fn opened(&self) -> impl Iterator<Item = (FlowKey, Origin)> + '_ {
        self.flows.iter().filter_map(|(k, t)| Some((*k, t.origin?)))
    }

    /// What each flow carried between the last two polls (flows with new traffic only).
    pub fn take_deltas(&mut self) -> Vec<FlowDelta> {
        std::mem::take(&mut self.deltas)
    }

    /// An alert was written about `key`: its records say `flow.alerted` from now on.
    pub fn mark_alerted(&mut self, key: &FlowKey) {
        if let Some(t) = self.flows.get_mut(key) {
            t.alerted = true;
        }
    }

    /// How `key` was opened, when its event reached us.
    pub fn origin(&mut self, key: &FlowKey) -> Option<Origin> {
        self.flows.get_mut(key).and_then(|t| t.origin)
    }

    /// What `key`'s first payload showed it speaks: its records say so (EVE's
    /// `app_proto`).
    pub fn set_app_proto(&mut self, key: &FlowKey, proto: &'static str) {
        if let Some(t) = self.flows.get_mut(key) {
            t.app_proto = Some(proto);
        }
    }

    /// A ring-buffer event announced a new flow.
    pub fn on_new_flow(&mut self, key: FlowKey, origin: Origin) {
        let sweep = self.sweep;
        let t = self.flows.entry(key);
        t.origin = Some(origin);
        // Present now, whatever a poll being taken in says.
        t.seen = sweep;
    }

    /// A poll of the whole kernel map at `now_ns` (epoch time), which is `now_kernel_ns`
    /// on the kernel's clock: returns the records due. A flow missing from it has left
    /// the map.
    pub fn on_poll(
        &mut self,
        now_ns: u64,
        now_kernel_ns: u64,
        snapshot: impl IntoIterator<Item = (FlowKey, FlowTotals)>,
    ) -> Vec<FlowRecord> {
        self.fold_all(now_ns, now_kernel_ns, snapshot, true)
    }

    /// A poll that read only the flows that changed since the last one: a flow missing
    /// from it is unchanged, not gone (the next whole read finds what left).
    pub fn on_changes(
        &mut self,
        now_ns: u64,
        now_kernel_ns: u64,
        changed: impl IntoIterator<Item = (FlowKey, FlowTotals)>,
    ) -> Vec<FlowRecord> {
        self.fold_all(now_ns, now_kernel_ns, changed, false)
    }

    /// A poll taken in at once: its rows, the held-back flows due, and (after a whole
    /// read) the flows it did not find.
    fn fold_all(
        &mut self,
        now_ns: u64,
        now_kernel_ns: u64,
        rows: impl IntoIterator<Item = (FlowKey, FlowTotals)>,
        complete: bool,
    ) -> Vec<FlowRecord> {
        self.begin(complete);
        let mut out = self.fold_rows(now_ns, now_kernel_ns, rows);
        out.extend(self.take_due(now_ns, usize::MAX));
        if complete {
            out.extend(self.evict_missing(now_kernel_ns, 0, usize::MAX).0);
        }
        out
    }

    /// Starts taking in a poll; `complete` when it read the whole map. The steps that
    /// follow (`fold_rows`, `take_due` and `evict_missing`) can be spread over several
    /// turns of the event loop, so an alert never waits for a whole poll.
    pub fn begin(&mut self, complete: bool) {
        if complete {
            self.sweep = self.sweep.wrapping_add(1);
        }
        self.last_seen.clear();
    }

    /// Takes in some of the poll's rows: returns the records due.
    pub fn fold_rows(
        &mut self,
        now_ns: u64,
        now_kernel_ns: u64,
        rows: impl IntoIterator<Item = (FlowKey, FlowTotals)>,
    ) -> Vec<FlowRecord> {
        let mut out = Vec::new();
        let mut rows = rows.into_iter();
        let mut chunk = Vec::with_capacity(LOOKUP_CHUNK);
        let mut at = Vec::with_capacity(LOOKUP_CHUNK);
        loop {
            chunk.clear();
            chunk.extend(rows.by_ref().take(LOOKUP_CHUNK));
            if chunk.is_empty() {
                return out;
            }
            // A row's entry is a random place in a table of up to hundreds of MB, so
            // each lookup is a few memory misses. Done back to back, the lookups are
            // independent and the CPU overlaps their misses; between folds, it would
            // wait for each in turn.
            at.clear();
            at.extend(chunk.iter().map(|(key, _)| self.flows.index(*key)));
            for (&(key, totals), &i) in chunk.iter().zip(&at) {
                self.fold_row(now_ns, now_kernel_ns, key, totals, i, &mut out);
            }
        }
    }

    /// Takes in one row whose entry is at `i`; a record due goes to `out`.
    fn fold_row(
        &mut self,
        now_ns: u64,
        now_kernel_ns: u64,
        key: FlowKey,
        mut totals: FlowTotals,
        i: u32,
        out: &mut Vec<FlowRecord>,
    ) {
        let t = self.flows.at(i);
        t.seen = self.sweep;
        let mut before = t.totals;
        if totals.packets < t.totals.packets {
            if totals.first_seen_ns == t.totals.first_seen_ns {
                // The same flow read while the kernel moved counts from its flow
                // cache into its map entry: this snapshot missed them, the next one
                // has them. Keep what we had.
                let e = self.last_seen.entry(key.mac).or_insert(0);
                *e = t.totals.last_seen_ns.max(*e);
                return;
            }
            // Evicted and created again between two polls: what it carried after our
            // last read is lost; start counting afresh.
            self.recreated += 1;
            t.reported_packets = 0;
            t.reported_bytes = 0;
            before = FlowTotals::default();
        }
        // New frames that went through the flow cache have no timestamp of their own:
        // they arrived by this poll.
        if totals.packets > t.totals.packets && totals.cached_packets > 0 {
            totals.last_seen_ns = totals.last_seen_ns.max(now_kernel_ns);
        }
        if totals.first_seen_ns == t.totals.first_seen_ns {
            // The same flow: a time a poll gave it stands until the kernel's is later.
            totals.last_seen_ns = totals.last_seen_ns.max(t.totals.last_seen_ns);
        }
        if totals.packets > before.packets {
            self.deltas.push(FlowDelta {
                key,
                packets: totals.packets - before.packets,
                bytes: totals.bytes.saturating_sub(before.bytes),
                tcp_flags: totals.tcp_flags,
                syns: totals.syns.saturating_sub(before.syns),
            });
        }
        t.totals = totals;
        let e = self.last_seen.entry(key.mac).or_insert(0);
        *e = t.totals.last_seen_ns.max(*e);
        let due = now_ns.saturating_sub(t.last_report_ns) >= self.report_every_ns;
        if t.totals.packets > t.reported_packets {
            if due {
                out.push(record(key, t, Reason::Report));
                t.last_report_ns = now_ns;
            } else if !t.queued {
                t.queued = true;
                let at = t.last_report_ns + self.report_every_ns;
                self.due.push(std::cmp::Reverse((at, key)));
            }
        }
    }

    /// Up to `max` records of flows whose traffic waited for its interval and fell due by
    /// `now_ns` (fewer when no more are due).
    pub fn take_due(&mut self, now_ns: u64, max: usize) -> Vec<FlowRecord> {
        let mut out = Vec::new();
        while out.len() < max
            && let Some(std::cmp::Reverse((at, key))) = self.due.peek().copied()
        {
            if at > now_ns {
                break;
            }
            self.due.pop();
            let Some(t) = self.flows.get_mut(&key) else {
                continue;
            };
            t.queued = false;
            if t.totals.packets > t.reported_packets {
                out.push(record(key, t, Reason::Report));
                t.last_report_ns = now_ns;
            }
        }
        out
    }

    /// After a whole read: forgets the flows it did not find (they left the kernel map),
    /// with a last record for each that carried unreported traffic. Looks at up to `max`
    /// entries from entry `from` on, and returns where the next call goes on (`None`
    /// when every entry was looked at), so a million flows need not be looked at in one
    /// turn of the event loop.
    pub fn evict_missing(
        &mut self,
        now_kernel_ns: u64,
        from: usize,
        max: usize,
    ) -> (Vec<FlowRecord>, Option<usize>) {
        // A flow announced by its event but in no snapshot yet is kept for a while: the
        // maps are read on another thread, so a snapshot taken before the flow existed
        // can arrive after its event, and dropping the entry would lose its origin (and
        // with it the flow's re-check when the policy is reloaded).
        let announced_lately = |t: &Tracked| {
            t.totals.packets == 0
                && t.origin
                    .is_some_and(|o| now_kernel_ns.saturating_sub(o.ts_ns) < UNPOLLED_GRACE_NS)
        };
        let end = from.saturating_add(max).min(self.flows.slots());
        let sweep = self.sweep;
        let gone: Vec<FlowKey> = self
            .flows
            .scan(from..end)
            .filter(|(_, t)| t.seen != sweep && !announced_lately(t))
            .map(|(k, _)| *k)
            .collect();
        let next = (end < self.flows.slots()).then_some(end);
        (self.evict(gone), next)
    }

    /// Forgets flows that left the kernel map: a last record for each that carried
    /// unreported traffic.
    fn evict(&mut self, keys: impl IntoIterator<Item = FlowKey>) -> Vec<FlowRecord> {
        let mut out = Vec::new();
        let sweep = self.sweep;
        for key in keys {
            if self.flows.get_mut(&key).is_none_or(|t| t.seen == sweep) {
                continue;
            }
            let mut t = self.flows.remove(&key).expect("found above");
            // Events may announce a flow before any poll saw it; only flows a poll saw can
            // have been evicted.
            if t.totals.packets > 0 {
                self.evicted += 1;
                if t.totals.packets > t.reported_packets {
                    out.push(record(key, &mut t, Reason::Evicted));
                }
            }
        }
        out
    }

    /// The latest frame time of each device's flows that the last poll read (a device's
    /// last-seen time only moves forward, so the flows it did not read change nothing).
    pub fn last_seen_by_device(&self) -> &std::collections::BTreeMap<MacAddr, u64> {
        &self.last_seen
    }

    /// Records for every flow with unreported traffic (the sensor is stopping).
    pub fn flush(&mut self) -> Vec<FlowRecord> {
        let mut out: Vec<FlowRecord> = self
            .flows
            .iter_mut()
            .filter(|(_, t)| t.totals.packets > t.reported_packets)
            .map(|(k, t)| record(*k, t, Reason::Shutdown))
            .collect();
        out.sort_by_key(|r| r.key);
        out
    }
}

/// The flow table's storage: entries in one vector, and a hash table of their indices.
/// A `HashMap<FlowKey, Tracked>` keeps key and value in every bucket, empty ones too: at a
/// million flows that is two million buckets of 170 bytes. Here a bucket is 4 bytes.
#[derive(Default)]
struct Entries {
    index: hashbrown::HashTable<u32>,
    entries: Vec<Entry>,
    /// Entries of removed flows, reused before the vector grows.
    free: Vec<u32>,
    // Every poll looks up each flow it read: SipHash was a tenth of the event loop's time
    // at 100k flows. foldhash is seeded per process, so a device choosing its ports and
    // destinations cannot aim for collisions it cannot see, and the kernel's LRU bounds
    // the table anyway.
    hasher: foldhash::fast::RandomState,
}

struct Entry {
    key: FlowKey,
    live: bool,
    t: Tracked,
}

impl std::fmt::Debug for Entries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Entries {
    fn len(&self) -> usize {
        self.index.len()
    }

    fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn find(&self, key: &FlowKey) -> Option<u32> {
        let entries = &self.entries;
        self.index
            .find(self.hasher.hash_one(key), |&i| {
                entries[i as usize].key == *key
            })
            .copied()
    }

    fn get_mut(&mut self, key: &FlowKey) -> Option<&mut Tracked> {
        let i = self.find(key)?;
        Some(&mut self.entries[i as usize].t)
    }

    /// The flow's entry, created empty when it has none.
    fn entry(&mut self, key: FlowKey) -> &mut Tracked {
        let i = self.index(key);
        &mut self.entries[i as usize].t
    }

    /// The entry at index `i` (from [`Entries::index`]).
    fn at(&mut self, i: u32) -> &mut Tracked {
        &mut self.entries[i as usize].t
    }

    /// The index of the flow's entry, created empty when it has none.
    fn index(&mut self, key: FlowKey) -> u32 {
        if let Some(i) = self.find(&key) {
            return i;
        }
        let e = Entry {
            key,
            live: true,
            t: Tracked::default(),
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.entries[i as usize] = e;
                i
            }
            None => {
                self.entries.push(e);
                (self.entries.len() - 1) as u32
            }
        };
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index.insert_unique(hasher.hash_one(key), i, |&j| {
            hasher.hash_one(entries[j as usize].key)
        });
        i
    }

    fn remove(&mut self, key: &FlowKey) -> Option<Tracked> {
        let entries = &self.entries;
        let (i, _) = self
            .index
            .find_entry(self.hasher.hash_one(key), |&i| {
                entries[i as usize].key == *key
            })
            .ok()?
            .remove();
        let e = &mut self.entries[i as usize];
        e.live = false;
        self.free.push(i);
        Some(std::mem::take(&mut e.t))
    }

    /// Entry slots in use or free: the bound of [`Entries::scan`].
    fn slots(&self) -> usize {
        self.entries.len()
    }

    /// The flows in entry slots `range` (free slots skipped).
    fn scan(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = (&FlowKey, &Tracked)> {
        self.entries[range]
            .iter()
            .filter(|e| e.live)
            .map(|e| (&e.key, &e.t))
    }

    fn iter(&self) -> impl Iterator<Item = (&FlowKey, &Tracked)> {
        self.entries
            .iter()
            .filter(|e| e.live)
            .map(|e| (&e.key, &e.t))
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (&FlowKey, &mut Tracked)> {
        self.entries
            .iter_mut()
            .filter(|e| e.live)
            .map(|e| (&e.key, &mut e.t))
    }
}

/// Rows looked up back to back before they are folded (see `fold_rows`).
const LOOKUP_CHUNK: usize = 32;

/// How long an announced flow waits for its first snapshot before it is forgotten (a
/// flow the kernel evicted before any poll read it).
const UNPOLLED_GRACE_NS: u64 = 10_000_000_000;

fn record(key: FlowKey, t: &mut Tracked, reason: Reason) -> FlowRecord {
    let r = FlowRecord {
        key,
        origin: t.origin,
        totals: t.totals,
        delta_packets: t.totals.packets - t.reported_packets,
        delta_bytes: t.totals.bytes.saturating_sub(t.reported_bytes),
        reason,
        alert_repeats: None,
        alerted: t.alerted,
        app_proto: t.app_proto,
    };
    t.reported_packets = t.totals.packets;
    t.reported_bytes = t.totals.bytes;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use sensor_common::{FlowCounters, policy::Verdict};

    const SEC: u64 = 1_000_000_000;

    fn key(n: u8) -> FlowKey {
        FlowKey {
            port: 443,
            proto: 6,
            addr: [n; 16],
            ..FlowKey::default()
        }
    }

    fn totals(packets: u64) -> FlowTotals {
        FlowTotals {
            packets,
            bytes: packets * 100,
            first_seen_ns: 1,
            last_seen_ns: packets,
            tcp_flags: 0,
            cached_packets: 0,
            verdict: Verdict::Unset,
            policy_gen: 0,
            syns: 0,
        }
    }

    #[test]
    fn sums_per_cpu_values() {
        let c = |p, first, last, flags| FlowCounters {
            packets: p,
            bytes: p * 10,
            first_seen_ns: first,
            last_seen_ns: last,
            tcp_flags: flags,
            verdict: 0,
            syns: 0,
            policy_gen: 0,
            ..FlowCounters::default()
        };
        let t = FlowTotals::sum(&[c(2, 50, 60, 0x02), c(0, 0, 0, 0), c(3, 40, 55, 0x10)]);
        assert_eq!(t.packets, 5);
        assert_eq!(t.bytes, 50);
        assert_eq!(t.first_seen_ns, 40);
        assert_eq!(t.last_seen_ns, 60);
        assert_eq!(t.tcp_flags, 0x12);
    }

    #[test]
    fn reports_deltas_at_most_once_per_interval() {
        let mut ft = FlowTable::new(Duration::from_secs(10));
        let r = ft.on_poll(100 * SEC, 100 * SEC, [(key(1), totals(3))]);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].delta_packets, r[0].delta_bytes), (3, 300));
        // Within the interval: nothing, even with new traffic.
        assert!(
            ft.on_poll(105 * SEC, 105 * SEC, [(key(1), totals(5))])
                .is_empty()
        );
        let r = ft.on_poll(110 * SEC, 110 * SEC, [(key(1), totals(8))]);
        assert_eq!((r[0].delta_packets, r[0].totals.packets), (5, 8));
        // No new traffic: nothing.
        assert!(
            ft.on_poll(200 * SEC, 200 * SEC, [(key(1), totals(8))])
                .is_empty()
        );
    }

    #[test]
    fn eviction_gives_a_last_record_and_is_counted() {
        let mut ft = FlowTable::new(Duration::from_secs(10));
        ft.on_poll(
            100 * SEC,
            100 * SEC,
            [(key(1), totals(3)), (key(2), totals(1))],
        );
        ft.on_poll(
            101 * SEC,
            101 * SEC,
            [(key(1), totals(4)), (key(2), totals(1))],
        );
        let r = ft.on_poll(102 * SEC, 102 * SEC, [(key(2), totals(1))]);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].reason, Reason::Evicted);
        assert_eq!(r[0].delta_packets, 1);
        assert_eq!(ft.evicted, 1);
        assert_eq!(ft.len(), 1);
    }

    #[test]
    fn recreated_flow_counts_afresh() {
        let mut ft = FlowTable::new(Duration::from_secs(1));
        ft.on_poll(100 * SEC, 100 * SEC, [(key(1), totals(10))]);
        let again = FlowTotals {
            first_seen_ns: 101 * SEC,
            ..totals(2)
        };
        let r = ft.on_poll(102 * SEC, 102 * SEC, [(key(1), again)]);
        assert_eq!(ft.recreated, 1);
        assert_eq!((r[0].delta_packets, r[0].totals.packets), (2, 2));
    }

    #[test]
    fn cached_frames_are_dated_by_the_poll_that_sees_them() {
        let mut ft = FlowTable::new(Duration::from_secs(1));
        ft.on_poll(100 * SEC, 100 * SEC, [(key(1), totals(1))]);
        let cached = FlowTotals {
            cached_packets: 4,
            verdict: Verdict::Unset,
            policy_gen: 0,
            ..totals(5)
        };
        let r = ft.on_poll(102 * SEC, 102 * SEC, [(key(1), cached)]);
        assert_eq!(r[0].totals.last_seen_ns, 102 * SEC);
        // Nothing new: the time stays.
        ft.on_poll(109 * SEC, 109 * SEC, [(key(1), cached)]);
        assert_eq!(ft.last_seen_by_device()[&MacAddr([0; 6])], 102 * SEC);
    }

    #[test]
    fn a_dip_of_the_same_flow_is_not_a_recreation() {
        let mut ft = FlowTable::new(Duration::from_secs(1));
        ft.on_poll(100 * SEC, 100 * SEC, [(key(1), totals(10))]);
        // Same first_seen, fewer packets: a snapshot taken mid-flush.
        assert!(
            ft.on_poll(102 * SEC, 102 * SEC, [(key(1), totals(7))])
                .is_empty()
        );
        assert_eq!(ft.recreated, 0);
        let r = ft.on_poll(104 * SEC, 104 * SEC, [(key(1), totals(12))]);
        assert_eq!((r[0].delta_packets, r[0].totals.packets), (2, 12));
    }

    #[test]
    fn flush_reports_every_unreported_flow_once() {
        let mut ft = FlowTable::new(Duration::from_secs(60));
        ft.on_poll(
            100 * SEC,
            100 * SEC,
            [(key(1), totals(1)), (key(2), totals(1))],
        );
        ft.on_poll(
            101 * SEC,
            101 * SEC,
            [(key(1), totals(4)), (key(2), totals(1))],
        );
        let r = ft.flush();
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].key, r[0].delta_packets), (key(1), 3));
        assert!(ft.flush().is_empty());
    }

    /// A device's outbound flow as its new-flow event announces it, at kernel time `ts_ns`.
    fn origin(ts_ns: u64) -> Origin {
        Origin {
            src: "198.51.100.23".parse().unwrap(),
            src_port: 50412,
            dst_port: 443,
            dst_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            verdict: Verdict::Unset,
            ts_ns,
        }
    }

    #[test]
    fn origin_from_event_is_kept() {
        let mut ft = FlowTable::new(Duration::from_secs(1));
        let o = origin(0);
        ft.on_new_flow(key(1), o);
        let r = ft.on_poll(100 * SEC, 100 * SEC, [(key(1), totals(1))]);
        assert_eq!(r[0].origin, Some(o));
    }

    #[test]
    fn announced_but_never_polled_flow_is_not_an_eviction() {
        let mut ft = FlowTable::new(Duration::from_secs(1));
        let o = origin(0);
        ft.on_new_flow(key(1), o);
        assert!(ft.on_poll(100 * SEC, 100 * SEC, []).is_empty());
        assert_eq!(ft.evicted, 0);
        assert!(ft.is_empty());
    }

    #[test]
    fn a_snapshot_older_than_the_announcement_keeps_the_flow_and_its_origin() {
        let mut ft = FlowTable::new(Duration::from_secs(1));
        let o = origin(50 * SEC);
        ft.on_new_flow(key(1), o);
        // Read on the map thread before the flow existed, folded after its event.
        assert!(ft.on_poll(51 * SEC, 51 * SEC, []).is_empty());
        assert_eq!(ft.opened().collect::<Vec<_>>(), vec![(key(1), o)]);
        let r = ft.on_poll(52 * SEC, 52 * SEC, [(key(1), totals(1))]);
        assert_eq!(r[0].origin, Some(o));
        // One the kernel dropped before any poll saw it goes once its grace is over.
        ft.on_new_flow(
            key(2),
            Origin {
                ts_ns: 52 * SEC,
                ..o
            },
        );
        ft.on_poll(70 * SEC, 70 * SEC, [(key(1), totals(1))]);
        assert_eq!(ft.len(), 1);
        assert_eq!(ft.evicted, 0);
    }

    #[test]
    fn a_poll_taken_in_by_steps_evicts_what_it_missed_but_not_what_came_back() {
        // Live mode spreads a poll over several turns; between them events go on. A flow
        // the read missed gets its last record, unless its event says it is back.
        // Traffic held back for its report interval: an eviction is its only record.
        let mut ft = FlowTable::new(Duration::from_secs(100));
        ft.on_poll(SEC, SEC, [(key(1), totals(3)), (key(2), totals(4))]);
        ft.begin(true);
        assert!(ft.fold_rows(2 * SEC, 2 * SEC, []).is_empty());
        assert!(ft.take_due(2 * SEC, 10).is_empty());
        // One entry looked at per step: key 1's, then key 2's after its event came.
        let (r, next) = ft.evict_missing(2 * SEC, 0, 1);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!((r[0].key, r[0].reason), (key(1), Reason::Evicted));
        assert_eq!(next, Some(1));
        let o = origin(2 * SEC);
        ft.on_new_flow(key(2), o);
        let (r, next) = ft.evict_missing(2 * SEC, 1, 1);
        assert!(r.is_empty(), "{r:?}");
        assert_eq!(next, None);
        assert_eq!(ft.evicted, 1);
        assert_eq!(ft.opened().collect::<Vec<_>>(), vec![(key(2), o)]);
        // The next whole read that misses it evicts it, with the traffic held back.
        ft.begin(true);
        let (r, next) = ft.evict_missing(3 * SEC, 0, usize::MAX);
        assert_eq!(next, None);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!((r[0].key, r[0].reason), (key(2), Reason::Evicted));
        assert_eq!((ft.evicted, ft.len()), (2, 0));
    }

    #[test]
    fn held_back_flows_come_out_a_slice_at_a_time() {
        let mut ft = FlowTable::new(Duration::from_secs(10));
        let rows: Vec<_> = (0..5).map(|n| (key(n), totals(1))).collect();
        assert_eq!(ft.on_poll(20 * SEC, 20 * SEC, rows).len(), 5);
        let rows: Vec<_> = (0..5).map(|n| (key(n), totals(2))).collect();
        assert!(ft.on_changes(21 * SEC, 21 * SEC, rows).is_empty());
        ft.begin(false);
        assert_eq!(ft.take_due(30 * SEC, 2).len(), 2);
        assert_eq!(ft.take_due(30 * SEC, 2).len(), 2);
        assert_eq!(ft.take_due(30 * SEC, 2).len(), 1);
        assert!(ft.take_due(30 * SEC, 2).is_empty());
    }

    #[test]
    fn a_poll_of_changes_leaves_unchanged_flows_alone() {
        let mut ft = FlowTable::new(Duration::from_secs(1));
        ft.on_poll(
            100 * SEC,
            100 * SEC,
            [(key(1), totals(3)), (key(2), totals(1))],
        );
        // Only key 1 changed: key 2 is neither gone nor reported again.
        let r = ft.on_changes(102 * SEC, 102 * SEC, [(key(1), totals(5))]);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].key, r[0].delta_packets), (key(1), 2));
        assert_eq!((ft.len(), ft.evicted), (2, 0));
        // The next whole read finds key 2 gone: its eviction is counted then.
        ft.on_poll(130 * SEC, 130 * SEC, [(key(1), totals(5))]);
        assert_eq!((ft.len(), ft.evicted), (1, 1));
    }

    #[test]
    fn traffic_that_waited_for_its_interval_is_reported_without_changing_again() {
        let mut ft = FlowTable::new(Duration::from_secs(10));
        assert_eq!(
            ft.on_changes(100 * SEC, 100 * SEC, [(key(1), totals(3))])
                .len(),
            1
        );
        // New traffic within the interval: held back ...
        assert!(
            ft.on_changes(103 * SEC, 103 * SEC, [(key(1), totals(5))])
                .is_empty()
        );
        // ... and reported once the interval is up, though no later poll read the flow.
        assert!(ft.on_changes(109 * SEC, 109 * SEC, []).is_empty());
        let r = ft.on_changes(110 * SEC, 110 * SEC, []);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].delta_packets, r[0].totals.packets), (2, 5));
        assert!(ft.on_changes(200 * SEC, 200 * SEC, []).is_empty());
    }

    #[test]
    fn device_last_seen_comes_from_the_flows_a_poll_read() {
        let mut ft = FlowTable::new(Duration::from_secs(1));
        ft.on_poll(100 * SEC, 100 * SEC, [(key(1), totals(3))]);
        assert_eq!(ft.last_seen_by_device()[&MacAddr([0; 6])], 3);
        ft.on_changes(101 * SEC, 101 * SEC, []);
        assert!(ft.last_seen_by_device().is_empty());
    }
}
