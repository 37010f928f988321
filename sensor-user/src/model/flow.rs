//! A flow's shared vocabulary: its totals, the packet that opened it, its traffic between
//! two polls, and the `flow` record the flow table writes and emit serializes.

use std::net::IpAddr;

use sensor_common::{FlowCounters, FlowKey, MacAddr, policy::Verdict};

/// A flow's counters summed over CPUs (times are kernel nanoseconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowTotals {
    /// Frames.
    pub packets: u64,
    /// Bytes, Ethernet header included.
    pub bytes: u64,
    /// Earliest first-seen over CPUs.
    pub first_seen_ns: u64,
    /// Latest last-seen over CPUs.
    pub last_seen_ns: u64,
    /// OR of TCP flags over CPUs.
    pub tcp_flags: u8,
    /// Frames among `packets` still in the kernel's flow cache: they carry no time.
    pub cached_packets: u64,
    /// The newest verdict over CPUs (highest policy generation; the flow cache's when it
    /// holds the flow).
    pub verdict: Verdict,
    /// Its policy generation.
    pub policy_gen: u32,
    /// Frames with the SYN flag (connections opened, or accepted on a serving flow).
    pub syns: u64,
}

impl FlowTotals {
    /// Sums one flow's per-CPU values.
    pub fn sum(per_cpu: &[FlowCounters]) -> Self {
        let mut t = Self::default();
        for c in per_cpu.iter().filter(|c| c.packets > 0) {
            let v = Verdict::from_u8(c.verdict).unwrap_or_default();
            if v != Verdict::Unset && (t.verdict == Verdict::Unset || c.policy_gen > t.policy_gen) {
                t.verdict = v;
                t.policy_gen = c.policy_gen;
            }
            t.packets += c.packets;
            t.bytes += c.bytes;
            t.tcp_flags |= c.tcp_flags;
            t.syns += u64::from(c.syns);
            t.last_seen_ns = t.last_seen_ns.max(c.last_seen_ns);
            if t.first_seen_ns == 0 || (c.first_seen_ns != 0 && c.first_seen_ns < t.first_seen_ns) {
                t.first_seen_ns = c.first_seen_ns;
            }
        }
        t
    }
}

/// Addressing of the packet that opened a flow, from its ring-buffer event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Source address (the device's).
    pub src: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination port of the first packet (the client's, on a serving flow).
    pub dst_port: u16,
    /// Destination MAC of the first packet.
    pub dst_mac: MacAddr,
    /// The kernel's verdict on the first packet.
    pub verdict: Verdict,
    /// Kernel time of the first packet (for alert latency).
    pub ts_ns: u64,
}

/// Why a record was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// New traffic, and the report interval had passed.
    Report,
    /// The kernel evicted the flow (LRU); this is its last record.
    Evicted,
    /// The sensor is stopping.
    Shutdown,
}

impl Reason {
    /// The name in `iot.flow.reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Report => "report",
            Reason::Evicted => "evicted",
            Reason::Shutdown => "shutdown",
        }
    }

    /// Suricata's `flow.reason` for a flow's last record (its flow-end reasons): the LRU
    /// forcing a flow out is `forced`; an interim report ends nothing and has none.
    pub fn suricata(self) -> Option<&'static str> {
        match self {
            Reason::Report => None,
            Reason::Evicted => Some("forced"),
            Reason::Shutdown => Some("shutdown"),
        }
    }
}

/// A flow's traffic between two polls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowDelta {
    /// The flow.
    pub key: FlowKey,
    /// Frames since the previous poll.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// OR of every TCP flag byte the flow has seen.
    pub tcp_flags: u8,
    /// Frames with the SYN flag since the previous poll: connections opened (accepted,
    /// on a serving flow).
    pub syns: u64,
}

/// One `flow` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowRecord {
    /// The flow.
    pub key: FlowKey,
    /// How it was opened, when the event reached us.
    pub origin: Option<Origin>,
    /// Totals to date.
    pub totals: FlowTotals,
    /// Frames since the previous record of this flow.
    pub delta_packets: u64,
    /// Bytes since the previous record of this flow.
    pub delta_bytes: u64,
    /// Why now.
    pub reason: Reason,
    /// When its destination was alerted on: how many more flows to it came since.
    pub alert_repeats: Option<u64>,
    /// An alert was written about this flow (EVE's `flow.alerted`).
    pub alerted: bool,
    /// What its first payload showed it speaks (EVE's `app_proto`).
    pub app_proto: Option<&'static str>,
}
