//! Shapes records as Suricata-EVE-compatible JSON objects, one builder per event type
//! (`flow`, `device`, `alert`, `stats`) on one shared header ([`Eve::common`]), as
//! Suricata's `output-json-*.c` share `CreateEveHeader`. The schema under
//! `sensor-user/schema/` documents every field written here.

mod alert;
mod device;
mod flow;
mod stats;

pub use alert::Subject;
pub use flow::FlowLines;
pub use stats::Tables;

use std::net::IpAddr;

use serde_json::{Map, Value, json};

use crate::{
    model::addr,
    model::clock::{TimeBase, eve_timestamp},
    model::device::Device,
    model::flow::Origin,
    model::rule::Rule,
    model::vocab::Declared,
};
use sensor_common::{FLOW_SERVING, FlowKey, MacAddr, proto};

/// What every event shares: who wrote it, where, and how kernel time maps to wall time.
#[derive(Clone, Debug)]
pub struct Eve {
    /// `host`: the sensor's name (Suricata's field for it).
    pub host: String,
    /// `in_iface`.
    pub in_iface: String,
    /// Kernel time to wall time.
    pub time: TimeBase,
    /// Mixed into every `flow_id`, so ids are stable within a run and differ between
    /// live runs (a replay uses 0: the same capture gives the same stream).
    pub flow_id_seed: u64,
}

/// `flow_id` is kept below 2^53 so tools that read JSON numbers as doubles read it exactly.
const FLOW_ID_MASK: u64 = (1 << 53) - 1;

/// A seed for [`Eve::flow_id_seed`] that differs between runs.
pub fn random_flow_id_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// EVE's `alert` object. A metadata name with no value is left out: Suricata's schema
/// wants at least one string in each list.
fn alert_object(rule: &Rule, blocked: bool, mut metadata: Value) -> Value {
    if let Value::Object(m) = &mut metadata {
        m.retain(|_, v| !matches!(v, Value::Array(a) if a.is_empty()));
    }
    json!({
        "action": if blocked { "blocked" } else { "allowed" },
        "gid": 1,
        "signature_id": rule.signature_id,
        "rev": 1,
        "signature": rule.signature,
        "category": rule.category,
        "severity": rule.severity,
        "metadata": metadata,
    })
}

/// Userspace health counters, reported in `stats` events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SensorCounters {
    /// Ring-buffer records read.
    pub events: u64,
    /// Ring-buffer records that did not decode.
    pub events_malformed: u64,
    /// Discovery frames received.
    pub discovery_frames: u64,
    /// Discovery frames whose protocol payload did not decode.
    pub discovery_malformed: u64,
    /// Flows' first payloads received.
    pub payloads: u64,
    /// ... that a payload decoder recognised.
    pub payloads_decoded: u64,
    /// ... that no decoder recognised.
    pub payloads_unknown: u64,
    /// ... that a decoder recognised but could not read.
    pub payloads_malformed: u64,
    /// Kernel map reads that failed.
    pub poll_errors: u64,
    /// Whole reads of the flow map (live mode).
    pub flow_sweeps: u64,
    /// Whole reads forced because the kernel's change log overflowed between two polls.
    pub flow_log_overflows: u64,
    /// State-store reads or writes that failed.
    pub state_errors: u64,
    /// `flow` records written.
    pub flow_records: u64,
    /// `device` records written.
    pub device_records: u64,
    /// `alert` records written.
    pub alerts: u64,
    /// Alerts an operator's mute covered (written with `iot.rule.muted`, or only kept in
    /// the history when `[output] muted_alerts = "history"`).
    pub alerts_muted: u64,
}

impl Eve {
    /// The header every event starts with: time, type, sensor and interface.
    fn common(&self, event_type: &str, epoch_ns: u64) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("timestamp".into(), eve_timestamp(epoch_ns).into());
        m.insert("event_type".into(), event_type.into());
        m.insert("host".into(), self.host.clone().into());
        m.insert("in_iface".into(), self.in_iface.clone().into());
        m
    }

    /// EVE's `flow_id` of a flow: the same for every record and alert of it in this run.
    pub fn flow_id(&self, k: &FlowKey) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        self.flow_id_seed.hash(&mut h);
        k.hash(&mut h);
        // 0 reads as "no flow" to some tools.
        (h.finish() & FLOW_ID_MASK).max(1)
    }

    /// A kernel time as an EVE timestamp.
    pub fn time(&self, kernel_ns: u64) -> String {
        eve_timestamp(self.time.to_epoch_ns(kernel_ns))
    }

    /// The addressing fields of a flow: `src_ip`, `src_port`, `dest_ip`, `dest_port` (or
    /// ICMP type and code), `proto`, `community_id`, `ether`.
    /// The addressing fields of an event about a flow, into a JSON object.
    fn addressing(&self, m: &mut Map<String, Value>, k: &FlowKey, origin: Option<Origin>) {
        if let Ok(Value::Object(a)) = serde_json::to_value(self.flow_addressing(k, origin)) {
            m.extend(a);
        }
    }

    /// The addressing fields of an event about a flow: its id, the two ends as EVE names
    /// them, the protocol, Community ID and MACs.
    fn flow_addressing(&self, k: &FlowKey, origin: Option<Origin>) -> Addressing {
        let peer = addr::ip(k.addr);
        let serving = k.flags & FLOW_SERVING != 0;
        let icmp = k.proto == proto::ICMP || k.proto == proto::ICMPV6;
        // EVE's src is the side that opened the conversation: the device, unless it is
        // answering on its service port, where the peer is the client.
        let (src, src_port, dest, dest_port) = match (origin, serving) {
            (Some(o), false) => (Some(o.src), o.src_port, Some(peer), k.port),
            (Some(o), true) => (Some(peer), o.dst_port, Some(o.src), k.port),
            (None, false) => (None, 0, Some(peer), k.port),
            (None, true) => (Some(peer), 0, None, k.port),
        };
        let ports = !icmp && (k.proto == proto::TCP || k.proto == proto::UDP);
        let community_id = match (src, dest, origin) {
            (Some(s), Some(d), Some(_)) => {
                community_id(s, d, src_port, dest_port, k.proto, icmp, k.port)
            }
            _ => None,
        };
        Addressing {
            flow_id: self.flow_id(k),
            src_ip: src,
            dest_ip: dest,
            icmp_type: icmp.then_some(k.port >> 8),
            icmp_code: icmp.then_some(k.port & 0xff),
            src_port: (ports && origin.is_some()).then_some(src_port),
            dest_port: ports.then_some(dest_port),
            proto: addr::proto_name(k.proto),
            community_id,
            ether: Ether {
                src_mac: k.mac,
                dest_mac: origin.map(|o| o.dst_mac),
            },
        }
    }

    fn device_object(
        &self,
        mac: MacAddr,
        device: Option<&Device>,
        declared: Option<&Declared>,
    ) -> Map<String, Value> {
        let origin = crate::discover::oui::origin(mac);
        let mut o = Map::new();
        o.insert("mac".into(), mac.to_string().into());
        o.insert("mac_scope".into(), origin.scope().into());
        if let Some(v) = origin.vendor() {
            o.insert("vendor".into(), v.into());
        }
        let status = if declared.is_some_and(|d| d.listed) {
            "declared"
        } else {
            "unknown"
        };
        o.insert("inventory_status".into(), status.into());
        if let Some(n) = declared.and_then(|d| d.name.clone()) {
            o.insert("name".into(), n.into());
        }
        if let Some(s) = declared.and_then(|d| d.state.clone()) {
            o.insert("state".into(), s.into());
        }
        let assessment = device.and_then(|d| d.assessment.as_ref());
        let declared_category = declared.and_then(|d| d.category.clone());
        match (&declared_category, assessment) {
            (Some(c), _) => {
                o.insert("category".into(), c.clone().into());
                let by = declared.and_then(|d| d.set_by.as_deref());
                o.insert(
                    "category_source".into(),
                    if by.is_some() { "operator" } else { "declared" }.into(),
                );
                if let Some(by) = by {
                    o.insert("set_by".into(), by.into());
                }
                o.insert("confidence".into(), 1.0.into());
            }
            (None, Some(a)) => {
                o.insert("category".into(), a.observed.category.clone().into());
                o.insert("category_source".into(), "observed".into());
                o.insert("confidence".into(), a.observed.confidence.into());
            }
            (None, None) => {}
        }
        match (assessment, declared.and_then(|d| d.criticality)) {
            (Some(a), _) => {
                o.insert("criticality".into(), a.criticality.as_str().into());
            }
            (None, Some(c)) => {
                o.insert("criticality".into(), c.as_str().into());
            }
            (None, None) => {}
        }
        o
    }
}

/// The addressing fields of an event about a flow, in EVE's order.
#[derive(serde::Serialize)]
struct Addressing {
    flow_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
    proto: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    community_id: Option<String>,
    ether: Ether,
}

/// EVE's `ether`.
#[derive(serde::Serialize)]
struct Ether {
    #[serde(serialize_with = "as_text")]
    src_mac: MacAddr,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_as_text"
    )]
    dest_mac: Option<MacAddr>,
}

/// A value written as its `Display` text, without an intermediate string.
fn as_text<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn opt_as_text<T: std::fmt::Display, S: serde::Serializer>(
    v: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

#[allow(clippy::too_many_arguments)]
fn community_id(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    proto: u8,
    icmp: bool,
    icmp_key: u16,
) -> Option<String> {
    let (a, b) = if icmp {
        (Some(icmp_key >> 8), Some(icmp_key & 0xff))
    } else if proto == 6 || proto == 17 || proto == 132 {
        (Some(sport), Some(dport))
    } else {
        (None, None)
    };
    community_id::calculate_community_id(0, src, dst, a, b, proto, false).ok()
}

#[cfg(test)]
mod tests;
