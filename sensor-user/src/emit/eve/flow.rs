//! The `flow` event: NetFlow-style records of a flow, from the flow table's records.
//! `flow.pkts_*`/`bytes_*` carry what is new since the flow's previous record, so summing
//! them over a flow's records gives its traffic once; the totals to date are in `iot.flow`.

use sensor_common::{FLOW_SERVING, proto};
use serde_json::{Value, json};

use sensor_common::policy::Verdict;

use super::Eve;
use crate::track::flows::{FlowRecord, Reason};

const TCP_FIN: u8 = 0x01;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;

/// Suricata's `flow.state` from what one side of the flow shows: TCP by its flags; other
/// protocols are `new` until the device is seen answering (a serving flow), because the
/// sensor sees only what devices send.
fn state(r: &FlowRecord) -> &'static str {
    let flags = r.totals.tcp_flags;
    let last = r.reason != Reason::Report;
    if r.key.proto == proto::TCP {
        if last && flags & (TCP_FIN | TCP_RST) != 0 {
            "closed"
        } else if flags & TCP_ACK != 0 {
            "established"
        } else {
            "new"
        }
    } else if r.key.flags & FLOW_SERVING != 0 {
        "established"
    } else {
        "new"
    }
}

impl Eve {
    /// A `flow` event.
    pub fn flow(&self, now_ns: u64, r: &FlowRecord) -> Value {
        let mut m = self.common("flow", now_ns);
        let k = &r.key;
        let serving = k.flags & FLOW_SERVING != 0;
        self.addressing(&mut m, k, r.origin);
        let device_mac = k.mac.to_string();
        let (to_server, to_client) = if serving {
            ((0, 0), (r.delta_packets, r.delta_bytes))
        } else {
            ((r.delta_packets, r.delta_bytes), (0, 0))
        };
        let age = r.totals.last_seen_ns.saturating_sub(r.totals.first_seen_ns) / 1_000_000_000;
        let mut flow = json!({
            "pkts_toserver": to_server.0,
            "bytes_toserver": to_server.1,
            "pkts_toclient": to_client.0,
            "bytes_toclient": to_client.1,
            "start": self.time(r.totals.first_seen_ns),
            "end": self.time(r.totals.last_seen_ns),
            "age": age,
            "state": state(r),
            "alerted": r.alerted,
        });
        if let Some(reason) = r.reason.suricata() {
            flow["reason"] = reason.into();
        }
        m.insert("flow".into(), flow);
        let mut iot_flow = json!({
            "direction": if serving { "serving" } else { "outbound" },
            "reason": r.reason.as_str(),
            "pkts_total": r.totals.packets,
            "bytes_total": r.totals.bytes,
            "tcp_flags": format!("{:02x}", r.totals.tcp_flags),
        });
        // The verdict now (it changes with the policy), else the first packet's.
        let v = match (r.totals.verdict, r.origin) {
            (Verdict::Unset, Some(o)) => o.verdict,
            (v, _) => v,
        };
        if v != Verdict::Unset {
            iot_flow["verdict"] = v.as_str().into();
            if let Some(n) = r.alert_repeats {
                iot_flow["alert_repeats"] = n.into();
            }
        }
        m.insert(
            "iot".into(),
            json!({ "device": {"mac": device_mac}, "flow": iot_flow }),
        );
        m.into()
    }
}
