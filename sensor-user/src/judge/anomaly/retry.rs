//! Retrying a destination that never answers: a device whose connection attempts to one
//! outside address and port are never answered, poll after poll. Bot C2 agents retry a
//! seized or sinkholed server thousands of times at a steady rhythm. A scan tries many
//! destinations once each (`scan_fanout`) and a flood sends its SYNs at once
//! (`syn_flood_participation`); this is one destination, again and again, over time.
//!
//! Counted from what the kernel already keeps per flow: the SYNs the device sent and
//! its frames. A poll in which every frame the device sent on the flow was a SYN saw no
//! handshake complete; one with any other frame was answered.
//!
//! A server can die mid-way: a flow that once completed a handshake and now only
//! retries counts too, but only while the device reaches other outside destinations
//! (the way out works, so this one is dead). Otherwise the gateway's uplink is down and
//! every device retrying its cloud is no bot.

use std::collections::HashMap;

use sensor_common::MacAddr;

use ipnet::IpNet;
use sensor_common::{FLOW_SERVING, FlowKey, proto};
use serde_json::json;

use super::{Detector, Finding, Poll, flood::is_flood};
use crate::{config::AnomalyConfig, judge::rules, model::addr};

/// Unanswered SYNs to one destination and port before it is said. One failed connect()
/// is 7 SYNs on Linux (the first and `tcp_syn_retries` = 6 retransmissions, see
/// Documentation/networking/ip-sysctl.rst), so this is some 14 failed attempts: a
/// program that keeps retrying, not one lost connection.
const UNANSWERED_SYNS: u64 = 100;
/// Polls with new SYNs they must be spread over: a rhythm, not one burst.
const MIN_POLLS: u32 = 5;
/// Flows followed at once; the stalest are dropped past this.
const MAX_FLOWS: usize = 4096;
/// TCP's ACK flag.
const ACK: u8 = 0x10;

/// What is known of one unanswered flow.
#[derive(Clone, Copy, Debug, Default)]
struct Attempts {
    syns: u64,
    polls: u32,
    first_ns: u64,
    last_ns: u64,
    /// The flow completed a handshake before (its flags carry an ACK).
    once_answered: bool,
}

/// The detector.
pub struct Retry {
    lan: Vec<IpNet>,
    flood_syns: u64,
    flows: HashMap<FlowKey, Attempts>,
    /// Per device, the last poll in which one of its outside TCP flows was answered.
    reached: HashMap<MacAddr, u64>,
}

/// The detector (its thresholds are the constants above; a flood is `flood.rs`'s).
pub fn detector(c: &AnomalyConfig) -> Box<dyn Detector> {
    Box::new(Retry {
        lan: crate::judge::policy::private_ranges(),
        flood_syns: c.syn_flood_packets.max(1),
        flows: HashMap::new(),
        reached: HashMap::new(),
    })
}

impl Detector for Retry {
    fn on_poll(&mut self, poll: &Poll<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for d in poll.deltas {
            let key = d.key;
            if key.proto != proto::TCP || key.flags & FLOW_SERVING != 0 {
                continue;
            }
            let dst = addr::ip(key.addr);
            if d.packets > d.syns {
                // Answered in this poll: a working destination, and, outside the LAN, a
                // way out that works. Only followed retries need either (most polls
                // have none: no lookups then), and only answers after they began.
                if !self.flows.is_empty() {
                    self.flows.remove(&key);
                    if !self.lan.iter().any(|n| n.contains(&dst)) {
                        if self.reached.len() >= MAX_FLOWS && !self.reached.contains_key(&key.mac) {
                            self.reached.clear();
                        }
                        self.reached.insert(key.mac, poll.now);
                    }
                }
                continue;
            }
            if d.syns == 0 || is_flood(d, self.flood_syns) {
                continue;
            }
            if self.lan.iter().any(|n| n.contains(&dst)) {
                continue;
            }
            if !self.flows.contains_key(&key) && self.flows.len() >= MAX_FLOWS {
                // Forget the flows quiet longest.
                let mut by_age: Vec<(u64, FlowKey)> =
                    self.flows.iter().map(|(k, a)| (a.last_ns, *k)).collect();
                by_age.sort_unstable();
                for (_, k) in by_age.iter().take(MAX_FLOWS / 4) {
                    self.flows.remove(k);
                }
            }
            let a = self.flows.entry(key).or_insert(Attempts {
                first_ns: poll.now,
                ..Attempts::default()
            });
            a.syns += d.syns;
            a.polls += 1;
            a.last_ns = poll.now;
            a.once_answered |= d.tcp_flags & ACK != 0;
            let way_out =
                !a.once_answered || self.reached.get(&key.mac).is_some_and(|t| *t >= a.first_ns);
            if a.syns >= UNANSWERED_SYNS && a.polls >= MIN_POLLS && way_out {
                let a = self.flows.remove(&key).expect("present");
                let minutes = (a.last_ns.saturating_sub(a.first_ns) / 60_000_000_000).max(1);
                out.push(Finding {
                    rule: &rules::UNANSWERED_RETRIES,
                    mac: key.mac,
                    flow: None,
                    metadata: json!({
                        "destination": [dst.to_string()],
                        "port": [key.port.to_string()],
                        "unanswered_syns": [a.syns.to_string()],
                        "minutes": [minutes.to_string()],
                    }),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use sensor_common::MacAddr;

    use super::*;
    use crate::model::flow::FlowDelta;

    const SEC: u64 = 1_000_000_000;
    const SYN: u8 = 0x02;

    fn delta(dst: [u8; 4], syns: u64, flags: u8) -> FlowDelta {
        FlowDelta {
            key: FlowKey::from_parts(
                [
                    0,
                    0,
                    u32::from_ne_bytes([0, 0, 0xff, 0xff]),
                    u32::from_ne_bytes(dst),
                ],
                MacAddr([2, 0, 0, 0, 0, 1]),
                6667,
                proto::TCP,
                0,
            ),
            packets: syns,
            bytes: syns * 60,
            tcp_flags: flags,
            syns,
        }
    }

    /// Polls every 10 s, each with `syns` new SYNs of `d`; the findings.
    fn run(polls: u64, d: FlowDelta) -> Vec<Finding> {
        let mut r = detector(&AnomalyConfig::default());
        let mut out = Vec::new();
        for i in 0..polls {
            out.extend(r.on_poll(&Poll {
                now: i * 10 * SEC,
                deltas: &[d],
                egress: &[],
            }));
        }
        out
    }

    #[test]
    fn a_bot_retrying_its_dead_server_every_few_seconds() {
        // A connect() every 10 s that is never answered: 7 SYNs each.
        let found = run(20, delta([203, 0, 113, 9], 7, SYN));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].rule.id, "unanswered_retries");
        assert_eq!(found[0].metadata["destination"][0], "203.0.113.9");
        assert_eq!(found[0].metadata["unanswered_syns"][0], "105");
    }

    #[test]
    fn answered_flows_bursts_and_the_lan_are_not() {
        let mut answered = delta([203, 0, 113, 9], 7, SYN | ACK);
        answered.packets = 7 * 12;
        assert!(run(40, answered).is_empty(), "a destination that answers");
        assert!(
            run(1, delta([203, 0, 113, 9], 150, SYN)).is_empty(),
            "one burst is not a rhythm"
        );
        assert!(
            run(40, delta([192, 168, 1, 20], 7, SYN)).is_empty(),
            "a LAN peer that is off"
        );
    }

    /// A device's C2 (TCP/6667) answers for a minute, then dies and is retried every
    /// 10 s; its other flow (`other`, polling its cloud) goes on being answered, or not.
    fn died(other_answered: bool) -> Vec<Finding> {
        let mut r = detector(&AnomalyConfig::default());
        let mut out = Vec::new();
        let mut cloud = delta([203, 0, 113, 50], 1, SYN | ACK);
        cloud.key.port = 443;
        cloud.packets = if other_answered { 10 } else { 1 };
        for i in 0..30u64 {
            let mut c2 = delta([203, 0, 113, 9], 1, SYN | ACK);
            // Alive for the first six polls: each connection carries its data.
            c2.packets = if i < 6 { 20 } else { 7 };
            c2.syns = if i < 6 { 1 } else { 7 };
            out.extend(r.on_poll(&Poll {
                now: i * 10 * SEC,
                deltas: &[c2, cloud],
                egress: &[],
            }));
        }
        out
    }

    #[test]
    fn a_server_that_died_is_retries_while_the_way_out_works() {
        let found = died(true);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].metadata["destination"][0], "203.0.113.9");
        // The uplink down: nothing of the device's is answered, no alert.
        assert!(died(false).is_empty());
    }
}
