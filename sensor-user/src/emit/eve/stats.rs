//! The `stats` event: Suricata's own counters where ours mean the same, and every counter
//! of ours (kernel, userspace, each stage's section) under `iot`.

use sensor_common::stats;
use serde_json::{Map, Value, json};

use super::{Eve, SensorCounters};

/// The sizes of the engine's tables and output, for the `iot.sensor` section of `stats` events.
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

/// The `iot.sensor` section: userspace counters and table sizes.
fn sensor_section(c: &SensorCounters, t: &Tables) -> Value {
    json!({
        "events": c.events,
        "events_malformed": c.events_malformed,
        "discovery_frames": c.discovery_frames,
        "discovery_malformed": c.discovery_malformed,
        "payloads": c.payloads,
        "payloads_decoded": c.payloads_decoded,
        "payloads_unknown": c.payloads_unknown,
        "payloads_malformed": c.payloads_malformed,
        "state_errors": c.state_errors,
        "poll_errors": c.poll_errors,
        "flow_sweeps": c.flow_sweeps,
        "flow_log_overflows": c.flow_log_overflows,
        "flows_tracked": t.flows_tracked,
        "flows_evicted": t.flows_evicted,
        "flows_recreated": t.flows_recreated,
        "flow_records": c.flow_records,
        "devices_tracked": t.devices_tracked,
        "devices_evicted": t.devices_evicted,
        "devices_not_tracked": t.devices_not_tracked,
        "device_records": c.device_records,
        "alerts": c.alerts,
        "alerts_muted": c.alerts_muted,
        "output_lines": t.output_lines,
        "output_errors": t.output_errors,
        "output_dropped": t.output_dropped,
    })
}

/// The Suricata keys that mean the same as one of ours, so dashboards built for
/// Suricata's `stats` read the sensor's traffic, drops and alerts.
fn suricata_section(
    uptime_s: u64,
    k: &[u64; stats::COUNT as usize],
    c: &SensorCounters,
    t: &Tables,
) -> Map<String, Value> {
    let n = |i: u32| k[i as usize];
    let invalid = n(stats::ERR_TRUNCATED_L2)
        + n(stats::ERR_TRUNCATED_L3)
        + n(stats::ERR_BAD_IHL)
        + n(stats::ERR_TRUNCATED_L4)
        + n(stats::ERR_UNSUPPORTED);
    let blocked = n(stats::DROPPED_POLICY) + n(stats::DROPPED_INTEL);
    let json = json!({
        "uptime": uptime_s,
        // Frames the program saw but could not count in a flow: the sensor's packet loss.
        "capture": {
            "kernel_packets": n(stats::FRAMES),
            "kernel_drops": n(stats::FLOW_INSERT_FAILED) + n(stats::CACHE_FLUSH_LOST),
        },
        "decoder": {
            "pkts": n(stats::FRAMES),
            "bytes": n(stats::BYTES),
            "ethernet": n(stats::FRAMES),
            "ipv4": n(stats::IPV4),
            "ipv6": n(stats::IPV6),
            "invalid": invalid,
        },
        "flow": {
            "total": n(stats::NEW_FLOWS),
            "active": t.flows_tracked,
        },
        "detect": { "alert": c.alerts },
        "ips": {
            "accepted": n(stats::FRAMES).saturating_sub(blocked),
            "blocked": blocked,
        },
    });
    match json {
        Value::Object(m) => m,
        _ => unreachable!("built as an object"),
    }
}

impl Eve {
    /// A `stats` event: Suricata's keys where they mean the same under `stats`, and every
    /// counter of ours under `iot`: kernel, userspace, and each stage's section (policy,
    /// intel, latency, anomaly, and a driver's own, e.g. `replay`).
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
        m.insert(
            "stats".into(),
            suricata_section(uptime_s, kernel, counters, tables).into(),
        );
        let named: Map<String, Value> = stats::NAMES
            .iter()
            .zip(kernel)
            .map(|(n, v)| ((*n).to_string(), (*v).into()))
            .collect();
        let mut s = Map::new();
        s.insert("kernel".into(), named.into());
        s.insert("sensor".into(), sensor_section(counters, tables));
        for (name, v) in sections {
            s.insert(name.into(), v);
        }
        m.insert("iot".into(), s.into());
        m.into()
    }
}
