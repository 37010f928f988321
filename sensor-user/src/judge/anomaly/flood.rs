//! SYN floods: a device sending many SYNs to one destination between two polls, counted
//! frame by frame in the kernel, so a flood mixed with a few completed handshakes is
//! still a flood.

use sensor_common::{FLOW_SERVING, proto};
use serde_json::json;

use super::{Detector, Finding, Poll};
use crate::{config::AnomalyConfig, judge::rules, model::addr, model::flow::FlowDelta};

/// The detector.
pub struct Flood {
    syns: u64,
}

/// The detector, with `[anomaly] syn_flood_packets`.
pub fn detector(c: &AnomalyConfig) -> Box<dyn Detector> {
    Box::new(Flood {
        syns: c.syn_flood_packets.max(1),
    })
}

/// Whether a flow's SYNs since the last poll are a flood: the device sending them, at
/// least `threshold`.
pub fn is_flood(d: &FlowDelta, threshold: u64) -> bool {
    d.key.proto == proto::TCP && d.key.flags & FLOW_SERVING == 0 && d.syns >= threshold
}

impl Detector for Flood {
    fn on_poll(&mut self, poll: &Poll<'_>) -> Vec<Finding> {
        poll.deltas
            .iter()
            .filter(|d| is_flood(d, self.syns))
            .map(|d| Finding {
                rule: &rules::SYN_FLOOD_PARTICIPATION,
                mac: d.key.mac,
                flow: None,
                metadata: json!({
                    "destination": [addr::ip(d.key.addr).to_string()],
                    "port": [d.key.port.to_string()],
                    "syns": [d.syns.to_string()],
                }),
            })
            .collect()
    }
}
