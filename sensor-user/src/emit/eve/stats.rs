//! The `stats` event: kernel counters, userspace counters, and each stage's section.

use sensor_common::stats;
use serde_json::{Map, Value, json};

use super::{Eve, SensorCounters};

/// The sizes of the engine's tables and output, for the `sensor` section of `stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tables {
    /// Flows in the userspace flow table.
    pub flows_tracked: usize,
    /// Flows the kernel's LRU evicted.
    pub flows_evicted: u64,
    /// Flows seen again after an eviction.
    pub flows_recreated: u64,
    /// Devices in the device table.
    pub devices_tracked: usize,
    /// Devices evicted from it.
    pub devices_evicted: u64,
    /// Devices seen while it was full.
    pub devices_not_tracked: u64,
    /// Lines written.
    pub output_lines: u64,
    /// Lines lost to write errors.
    pub output_errors: u64,
    /// Lines dropped because the writer was behind.
    pub output_dropped: u64,
}

/// The `sensor` section: userspace counters and table sizes.
fn sensor_section(c: &SensorCounters, t: &Tables) -> Value {
    json!({
        "events": c.events,
        "events_malformed": c.events_malformed,
        "discovery_frames": c.discovery_frames,
        "discovery_malformed": c.discovery_malformed,
        "state_errors": c.state_errors,
        "poll_errors": c.poll_errors,
        "flows_tracked": t.flows_tracked,
        "flows_evicted": t.flows_evicted,
        "flows_recreated": t.flows_recreated,
        "flow_records": c.flow_records,
        "devices_tracked": t.devices_tracked,
        "devices_evicted": t.devices_evicted,
        "devices_not_tracked": t.devices_not_tracked,
        "device_records": c.device_records,
        "alerts": c.alerts,
        "output_lines": t.output_lines,
        "output_errors": t.output_errors,
        "output_dropped": t.output_dropped,
    })
}

impl Eve {
    /// A `stats` event: kernel counters, userspace counters, and each stage's section
    /// (policy, intel, latency, anomaly, and a driver's own, e.g. `replay`).
    pub fn stats(
        &self,
        now_ns: u64,
        uptime_s: u64,
        kernel: &[u64; stats::COUNT as usize],
        counters: &SensorCounters,
        tables: &Tables,
        sections: Vec<(&str, Value)>,
    ) -> Value {
        let mut m = self.common("stats", now_ns);
        let kernel: Map<String, Value> = stats::NAMES
            .iter()
            .zip(kernel)
            .map(|(n, v)| ((*n).to_string(), (*v).into()))
            .collect();
        let mut s = Map::new();
        s.insert("uptime".into(), uptime_s.into());
        s.insert("kernel".into(), kernel.into());
        s.insert("sensor".into(), sensor_section(counters, tables));
        for (name, v) in sections {
            s.insert(name.into(), v);
        }
        m.insert("stats".into(), s.into());
        m.into()
    }
}
