//! The `flow` event: a flow's counters, from the flow table's records.

use sensor_common::FLOW_SERVING;
use serde_json::{Value, json};

use sensor_common::policy::Verdict;

use super::Eve;
use crate::track::flows::FlowRecord;

impl Eve {
    /// A `flow` event.
    pub fn flow(&self, now_ns: u64, r: &FlowRecord) -> Value {
        let mut m = self.common("flow", now_ns);
        let k = &r.key;
        let serving = k.flags & FLOW_SERVING != 0;
        self.addressing(&mut m, k, r.origin);
        let device_mac = k.mac.to_string();
        let (to_server, to_client) = if serving {
            ((0, 0), (r.totals.packets, r.totals.bytes))
        } else {
            ((r.totals.packets, r.totals.bytes), (0, 0))
        };
        let age = r.totals.last_seen_ns.saturating_sub(r.totals.first_seen_ns) / 1_000_000_000;
        m.insert(
            "flow".into(),
            json!({
                "pkts_toserver": to_server.0,
                "bytes_toserver": to_server.1,
                "pkts_toclient": to_client.0,
                "bytes_toclient": to_client.1,
                "start": self.time(r.totals.first_seen_ns),
                "end": self.time(r.totals.last_seen_ns),
                "age": age,
                "reason": r.reason.as_str(),
            }),
        );
        m.insert(
            "iot".into(),
            json!({
                "device": {"mac": device_mac},
                "flow": {
                    "direction": if serving { "serving" } else { "outbound" },
                    "pkts_delta": r.delta_packets,
                    "bytes_delta": r.delta_bytes,
                    "tcp_flags": format!("{:02x}", r.totals.tcp_flags),
                },
            }),
        );
        // The verdict now (it changes with the policy), else the first packet's.
        let v = match (r.totals.verdict, r.origin) {
            (Verdict::Unset, Some(o)) => o.verdict,
            (v, _) => v,
        };
        if v != Verdict::Unset
            && let Some(Value::Object(iot)) = m.get_mut("iot")
            && let Some(Value::Object(f)) = iot.get_mut("flow")
        {
            f.insert("verdict".into(), v.as_str().into());
            if let Some(n) = r.alert_repeats {
                f.insert("alert_repeats".into(), n.into());
            }
        }
        m.into()
    }
}
