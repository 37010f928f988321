//! The `stats` event: every stage's counters on one line, at the stats interval or at once
//! when something worth saying happened (a learning window ended); and the same counters
//! as the metrics endpoint's snapshot.

use serde_json::{Value, json};

use super::{KernelStats, Sensor};
use crate::emit::eve::Tables;

impl Sensor {
    /// Whether a `stats` event is due.
    pub fn stats_due(&self, now_ns: u64) -> bool {
        now_ns >= self.next_stats_ns || self.stats_now
    }

    fn tables(&self) -> Tables {
        Tables {
            flows_tracked: self.flows.len(),
            flows_evicted: self.flows.evicted,
            flows_recreated: self.flows.recreated,
            devices_tracked: self.devices.len(),
            devices_evicted: self.devices.evicted,
            devices_not_tracked: self.devices.dropped,
            output_lines: self.sinks.out.lines(),
            output_errors: self.sinks.out.errors(),
            output_dropped: self.sinks.out.dropped(),
        }
    }

    /// What the metrics endpoint reports now: the counters a `stats` event would carry.
    pub fn metrics_snapshot(&self, kernel: &KernelStats) -> crate::emit::metrics::Snapshot {
        crate::emit::metrics::Snapshot {
            kernel: kernel.to_vec(),
            counters: self.counters,
            tables: self.tables(),
            alerts: crate::judge::rules::ALL
                .iter()
                .map(|r| (r.id, self.alerts_by_rule.get(r.id).copied().unwrap_or(0)))
                .collect(),
            nats: self
                .sinks
                .stats()
                .into_iter()
                .find(|(name, _)| *name == "nats")
                .and_then(|(_, v)| serde_json::from_value(v).ok()),
            vuln_feed_age_days: self.vulns.feed_ages(epoch_s()),
        }
    }

    /// Writes a `stats` event; `extra` is a driver's own section (e.g. `replay`).
    pub fn write_stats(&mut self, now_ns: u64, kernel: &KernelStats, extra: Option<(&str, Value)>) {
        let uptime = now_ns.saturating_sub(self.started_ns) / 1_000_000_000;
        let tables = self.tables();
        let mut policy = self.baseline.stats(&self.eve.time);
        let mut intel = self.intel.stats();
        crate::engine::writes::KernelWrites::stats(self.kernel.as_ref(), &mut policy, &mut intel);
        let mut sections = vec![
            ("policy", policy),
            ("intel", intel),
            ("vulns", self.vulns.stats((now_ns / 1_000_000_000) as i64)),
            ("latency", self.latency.stats()),
            (
                "anomaly",
                json!({
                    "alerts": self.anomaly.counters.alerts,
                    "suppressed": self.anomaly.counters.suppressed,
                    "unfollowed": self.anomaly.unfollowed(),
                }),
            ),
        ];
        sections.extend(self.sinks.stats());
        sections.extend(extra);
        let v = self
            .eve
            .stats(now_ns, uptime, kernel, &self.counters, &tables, sections);
        self.emit(&v);
        self.stats_now = false;
        while self.next_stats_ns <= now_ns {
            self.next_stats_ns += self.stats_every_ns;
        }
    }
}

fn epoch_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
