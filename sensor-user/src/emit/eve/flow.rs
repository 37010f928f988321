//! The `flow` event: NetFlow-style records of a flow, from the flow table's records.
//! `flow.pkts_*`/`bytes_*` carry what is new since the flow's previous record, so summing
//! them over a flow's records gives its traffic once; the totals to date are in `iot.flow`.

use sensor_common::{FLOW_SERVING, proto};

use sensor_common::policy::Verdict;

use super::Eve;
use crate::model::clock::eve_timestamp;
use crate::model::flow::{FlowRecord, Reason};

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

/// A `flow` event, written straight to its line: a poll can produce hundreds of
/// thousands, and building each as a `serde_json::Value` first cost most of the poll.
#[derive(serde::Serialize)]
struct FlowEvent<'a> {
    timestamp: String,
    event_type: &'static str,
    host: &'a str,
    in_iface: &'a str,
    #[serde(flatten)]
    addressing: super::Addressing,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto: Option<&'static str>,
    flow: FlowPart,
    iot: Iot,
}

/// EVE's `flow` object.
#[derive(serde::Serialize)]
struct FlowPart {
    pkts_toserver: u64,
    bytes_toserver: u64,
    pkts_toclient: u64,
    bytes_toclient: u64,
    start: String,
    end: String,
    age: u64,
    state: &'static str,
    alerted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

#[derive(serde::Serialize)]
struct Iot {
    device: IotDevice,
    flow: IotFlow,
}

#[derive(serde::Serialize)]
struct IotDevice {
    #[serde(serialize_with = "super::as_text")]
    mac: sensor_common::MacAddr,
}

/// `iot.flow`: totals to date and the sensor's view of the flow.
#[derive(serde::Serialize)]
struct IotFlow {
    direction: &'static str,
    reason: &'static str,
    pkts_total: u64,
    bytes_total: u64,
    tcp_flags: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert_repeats: Option<u64>,
}

/// A byte as two lowercase hex digits.
fn hex_byte(b: u8) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]
        .iter()
        .map(|&c| char::from(c))
        .collect()
}

impl Eve {
    /// A `flow` event as its JSON line (without the newline), and the bytes it reports.
    pub fn flow_line(&self, now_ns: u64, r: &FlowRecord) -> String {
        let k = &r.key;
        let serving = k.flags & FLOW_SERVING != 0;
        let (to_server, to_client) = if serving {
            ((0, 0), (r.delta_packets, r.delta_bytes))
        } else {
            ((r.delta_packets, r.delta_bytes), (0, 0))
        };
        let age = r.totals.last_seen_ns.saturating_sub(r.totals.first_seen_ns) / 1_000_000_000;
        // The verdict now (it changes with the policy), else the first packet's.
        let v = match (r.totals.verdict, r.origin) {
            (Verdict::Unset, Some(o)) => o.verdict,
            (v, _) => v,
        };
        let verdict = (v != Verdict::Unset).then(|| v.as_str());
        let e = FlowEvent {
            timestamp: eve_timestamp(now_ns),
            event_type: "flow",
            host: &self.host,
            in_iface: &self.in_iface,
            addressing: self.flow_addressing(k, r.origin),
            app_proto: r.app_proto,
            flow: FlowPart {
                pkts_toserver: to_server.0,
                bytes_toserver: to_server.1,
                pkts_toclient: to_client.0,
                bytes_toclient: to_client.1,
                start: self.time(r.totals.first_seen_ns),
                end: self.time(r.totals.last_seen_ns),
                age,
                state: state(r),
                alerted: r.alerted,
                reason: r.reason.suricata(),
            },
            iot: Iot {
                device: IotDevice { mac: k.mac },
                flow: IotFlow {
                    direction: if serving { "serving" } else { "outbound" },
                    reason: r.reason.as_str(),
                    pkts_total: r.totals.packets,
                    bytes_total: r.totals.bytes,
                    tcp_flags: hex_byte(r.totals.tcp_flags),
                    verdict,
                    alert_repeats: verdict.and(r.alert_repeats),
                },
            },
        };
        serde_json::to_string(&e).unwrap_or_default()
    }
}

/// Records at least this many are serialized on the line pool; fewer, here (a pool's
/// hand-off would cost more than it saves).
const PARALLEL_RECORDS: usize = 256;

/// Most threads the line pool takes, however many CPUs the gateway has: lines are a
/// minority of its work, and packets need the CPUs more.
const MAX_LINE_THREADS: usize = 4;

/// Serializes batches of flow records, spread over a small thread pool when a batch is
/// large: at the first poll of a full table, a million lines were most of the poll's
/// time on one core. Lines come back in the records' order.
#[derive(Default)]
pub struct FlowLines {
    pool: Option<rayon::ThreadPool>,
    /// No pool: one CPU, or it could not be built.
    inline: bool,
}

impl FlowLines {
    /// One line per record, in order.
    pub fn serialize(&mut self, eve: &Eve, now_ns: u64, records: &[FlowRecord]) -> Vec<String> {
        use rayon::prelude::*;
        if records.len() >= PARALLEL_RECORDS
            && let Some(pool) = self.pool()
        {
            return pool.install(|| {
                records
                    .par_iter()
                    .with_min_len(PARALLEL_RECORDS / 4)
                    .map(|r| eve.flow_line(now_ns, r))
                    .collect()
            });
        }
        records.iter().map(|r| eve.flow_line(now_ns, r)).collect()
    }

    /// Whether a pool was built (for tests).
    #[cfg(test)]
    pub(super) fn pooled(&self) -> bool {
        self.pool.is_some()
    }

    /// The pool, built at the first large batch (so its threads start with the
    /// privileges the sensor kept, and a sensor that never sees one has no threads).
    fn pool(&mut self) -> Option<&rayon::ThreadPool> {
        if self.pool.is_none() && !self.inline {
            let threads = std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(MAX_LINE_THREADS);
            if threads < 2 {
                self.inline = true;
                return None;
            }
            match rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("kw-lines-{i}"))
                .build()
            {
                Ok(p) => self.pool = Some(p),
                Err(e) => {
                    tracing::warn!(error = %e, "no thread pool for flow lines; writing them on one thread");
                    self.inline = true;
                }
            }
        }
        self.pool.as_ref()
    }
}
