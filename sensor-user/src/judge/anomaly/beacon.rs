//! Beacons: a device checking in with one outside server at a steady rhythm with
//! like-sized messages, as implants and bot agents do while they wait for orders.
//!
//! Scored as RITA's beacon analysis does (Active Countermeasures, `activecm/rita` v5,
//! `analysis/beacons.go`): over the intervals between check-ins, and over the bytes the
//! device sent at each, Bowley's quartile skewness (`1 - |skew|`, so a jitter spread
//! evenly either side still scores; none when the quartiles are less than 10 s or 10
//! bytes apart) and the median absolute deviation about the median relative to the
//! median (`1 - madm / median`); each pair averaged, and the score is the mean of the two.
//! RITA adds a histogram and a duration term over a day of connection logs; a streaming
//! sensor scores when it has [`MIN_EVENTS`] check-ins, long before a day, so those two
//! are left out.
//!
//! A beacon's destination is kept out of the device's baseline (`Detector::keeps_out`),
//! so what a learning device beacons to is never its normal.
//!
//! A check-in is a poll in which the flow opened connections (SYNs), or carried a
//! message after at least [`QUIET_NS`] of silence (a request on a kept-alive connection).
//!
//! Device clouds keep in touch periodically too, so the score alone would alert on every
//! device: on the development captures, IPsec NAT-T keepalives, a camera's and a plug's
//! TLS to their makers' addresses and a hub's own protocol on 9999 all score high. So a
//! beacon is said only when the flow's first payload speaks HTTP or TLS on a port that is
//! not one of that protocol's registered ports (MITRE ATT&CK T1571, non-standard port):
//! agents and RATs check in over web protocols on whatever port their server opened,
//! while a device's own keepalives mostly use its cloud's registered ports or a protocol
//! of its own. Clouds that do run TLS on a port of their own (MQTT brokers on a private
//! port) are reached by name: a destination is not followed when one of the names the
//! device resolved it from is a product's cloud or service in the knowledge base (the
//! `dns` rules of `data/`), and a named destination another device on the LAN also checks
//! in with is a product's cloud, not one device's implant. DNS (53) and NTP (123) have
//! detectors of their own.

use std::collections::{HashMap, HashSet, VecDeque};

use sensor_common::{FlowKey, proto};
use serde_json::json;

use super::{Detector, Finding, NewFlow, Poll};
use crate::{config::AnomalyConfig, judge::rules, model::addr, model::flow::Origin};

/// Check-ins before a destination is scored (seven intervals).
const MIN_EVENTS: usize = 8;
/// Check-ins kept per destination: the latest.
const MAX_EVENTS: usize = 64;
/// Silence after which traffic on a flow counts as a new check-in.
const QUIET_NS: u64 = 5_000_000_000;
/// Quartiles closer than this (seconds, bytes) make no skew: RITA's floor, below which
/// Bowley's measure swings on a second's or a byte's difference.
const SKEW_MIN_SPREAD: f64 = 10.0;
/// Score at or above which a destination is a beacon: where practitioners' guides to RITA
/// put a strong command-and-control indication.
const THRESHOLD: f64 = 0.8;
/// Destinations followed at once; past this, those quiet for [`STALE_NS`] are dropped,
/// and new ones wait if none is.
const MAX_FLOWS: usize = 4096;

/// At most one sweep of a full table per this much kernel time.
const SWEEP_NS: u64 = 1_000_000_000;
/// A followed destination quiet this long can make room (a day).
const STALE_NS: u64 = 86_400_000_000_000;

/// The ports registered for HTTP and for TLS-wrapped services in IANA's Service Name and
/// Transport Protocol Port Number Registry (http 80, http-alt 8080 and 8008, 591; https
/// 443, pcsync-https 8443, domain-s 853, submissions 465, ldaps 636, imaps 993, pop3s
/// 995, sips 5061, amqps 5671, syslog-tls 6514, secure-mqtt 8883), with 8000, which HTTP
/// servers default to, and the TLS push ports of Apple (5223, "If your Apple devices
/// aren't getting Apple push notifications") and Google (5228-5230, Firebase Cloud
/// Messaging's "FCM ports and your firewall").
const HTTP_PORTS: [u16; 5] = [80, 591, 8000, 8008, 8080];
pub const TLS_PORTS: [u16; 15] = [
    443, 465, 636, 853, 993, 995, 5061, 5223, 5228, 5229, 5230, 5671, 6514, 8443, 8883,
];

/// Whether a web protocol runs on a port not its own; `None` until a payload shows it.
fn off_port(service: Option<&str>, port: u16) -> bool {
    match service {
        Some("http") => !HTTP_PORTS.contains(&port),
        Some("tls") => !TLS_PORTS.contains(&port),
        _ => false,
    }
}

/// The parts of a score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// The intervals' term, 0 to 1.
    pub ts: f64,
    /// The sizes' term, 0 to 1.
    pub ds: f64,
    /// Their mean.
    pub total: f64,
    /// The median interval, seconds.
    pub interval_s: f64,
}

/// The value at quantile `q` of sorted `v`, at RITA's index (`round(q * (n - 1))`).
fn at(v: &[f64], q: f64) -> f64 {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Bowley's skewness of sorted `v`: 0 where it is unreliable (RITA: no spread, or the
/// median on a quartile).
fn bowley(v: &[f64]) -> f64 {
    let (lo, mid, hi) = (at(v, 0.25), at(v, 0.5), at(v, 0.75));
    let den = hi - lo;
    if den == 0.0 || mid == lo || mid == hi {
        0.0
    } else {
        (lo + hi - 2.0 * mid) / den
    }
}

/// The median absolute deviation about the median of sorted `v`.
fn madm(v: &[f64]) -> f64 {
    let mid = at(v, 0.5);
    let mut dev: Vec<f64> = v.iter().map(|x| (x - mid).abs()).collect();
    dev.sort_by(f64::total_cmp);
    at(&dev, 0.5)
}

/// RITA's statistical score of sorted `v`: the mean of `1 - |skew|` (no skew when the
/// quartiles are less than [`SKEW_MIN_SPREAD`] apart) and `1 - madm / median` (`flat`
/// when the median is under 1).
fn dispersion_score(v: &[f64], flat: f64) -> f64 {
    let skew = if at(v, 0.75) - at(v, 0.25) >= SKEW_MIN_SPREAD {
        bowley(v)
    } else {
        0.0
    };
    let mid = at(v, 0.5);
    let mad = if mid >= 1.0 {
        ((mid - madm(v)) / mid).max(0.0)
    } else {
        flat
    };
    ((1.0 - skew.abs()) + mad) / 2.0
}

/// The score of check-ins at `times_s` (seconds, ascending) that sent `sizes` bytes.
/// `None` with fewer than [`MIN_EVENTS`].
pub fn score(times_s: &[f64], sizes: &[f64]) -> Option<Score> {
    if times_s.len() < MIN_EVENTS || sizes.len() != times_s.len() {
        return None;
    }
    let mut gaps: Vec<f64> = times_s.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_by(f64::total_cmp);
    // Check-ins faster than a second apart are as steady as this clock can tell (1);
    // messages of no bytes say nothing of their size (0).
    let ts = dispersion_score(&gaps, 1.0);
    let mut sz = sizes.to_vec();
    sz.sort_by(f64::total_cmp);
    let ds = dispersion_score(&sz, 0.0);
    Some(Score {
        ts,
        ds,
        total: (ts + ds) / 2.0,
        interval_s: at(&gaps, 0.5),
    })
}

/// What the device sent in a poll's frames less their headers: RITA scores the bytes a
/// connection carried (Zeek's `orig_bytes`), and a check-in's pure ACKs and handshake
/// would otherwise weigh as much as its message. Headers are taken as Ethernet, IPv4 or
/// IPv6, and TCP with the timestamp option Linux sends (32 bytes) or UDP.
fn payload_bytes(d: &crate::model::flow::FlowDelta) -> u64 {
    let ip = if addr::ip(d.key.addr).is_ipv4() {
        20
    } else {
        40
    };
    let l4 = if d.key.proto == proto::TCP { 32 } else { 8 };
    d.bytes.saturating_sub(d.packets * (14 + ip + l4))
}

/// One followed destination.
#[derive(Debug)]
struct Followed {
    /// Check-ins: (kernel time, bytes sent).
    events: VecDeque<(u64, u64)>,
    /// The last poll with traffic.
    last_active: u64,
    /// What its first payload speaks, once seen.
    service: Option<&'static str>,
    /// Its first packet, so the alert carries the flow's addressing.
    origin: Origin,
    /// A DNS answer gave the device its address.
    named: bool,
}

/// The detector.
#[derive(Default)]
pub struct Beacon {
    flows: HashMap<FlowKey, Followed>,
    said: HashSet<FlowKey>,
    /// When a full table was last swept of stale flows (kernel ns).
    swept_ns: u64,
    /// New flows not followed: the table was full of live ones.
    unfollowed: u64,
}

/// The detector (its thresholds are the constants above).
pub fn detector(_: &AnomalyConfig) -> Box<dyn Detector> {
    Box::new(Beacon::default())
}

impl Detector for Beacon {
    fn keeps_out(&self) -> bool {
        true
    }

    fn on_new_flow(&mut self, f: &NewFlow) -> Vec<Finding> {
        let k = f.key;
        let followed = (k.proto == proto::TCP || k.proto == proto::UDP)
            && !f.cx.local
            && !f.cx.known_name
            && k.port != 53
            && k.port != 123
            && k.port != 0;
        if !followed || self.said.contains(&k) {
            return Vec::new();
        }
        // A full table is swept at most once a second: a flood of new flows must not
        // pay a sweep each.
        if self.flows.len() >= MAX_FLOWS && f.now.saturating_sub(self.swept_ns) >= SWEEP_NS {
            self.swept_ns = f.now;
            self.flows
                .retain(|_, x| f.now.saturating_sub(x.last_active) < STALE_NS);
        }
        if self.flows.len() < MAX_FLOWS {
            self.flows.entry(k).or_insert(Followed {
                events: VecDeque::new(),
                last_active: f.now,
                service: None,
                origin: f.origin,
                named: f.cx.resolved,
            });
        } else if !self.flows.contains_key(&k) {
            self.unfollowed += 1;
        }
        Vec::new()
    }

    fn unfollowed(&self) -> u64 {
        self.unfollowed
    }

    fn on_service(
        &mut self,
        _now: u64,
        key: FlowKey,
        service: &'static str,
        _login: Option<bool>,
    ) -> Vec<Finding> {
        if let Some(f) = self.flows.get_mut(&key) {
            f.service = Some(service);
        }
        Vec::new()
    }

    fn on_poll(&mut self, poll: &Poll<'_>) -> Vec<Finding> {
        if self.flows.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for d in poll.deltas {
            let Some(f) = self.flows.get_mut(&d.key) else {
                continue;
            };
            let quiet = poll.now.saturating_sub(f.last_active) >= QUIET_NS;
            f.last_active = poll.now;
            let sent = payload_bytes(d);
            // After quiet, only a message counts: a lone ACK of the server's late answer or
            // a TCP keepalive is no check-in.
            if d.syns == 0 && !(quiet && sent > 0) {
                continue;
            }
            f.events.push_back((poll.now, sent / d.syns.max(1)));
            if f.events.len() > MAX_EVENTS {
                f.events.pop_front();
            }
            let times: Vec<f64> = f.events.iter().map(|e| e.0 as f64 / 1e9).collect();
            let sizes: Vec<f64> = f.events.iter().map(|e| e.1 as f64).collect();
            let Some(s) = score(&times, &sizes) else {
                continue;
            };
            tracing::trace!(mac = %d.key.mac, port = d.key.port, score = s.total, ts = s.ts, ds = s.ds, ?times, ?sizes, "beacon score");
            if s.total < THRESHOLD || !off_port(f.service, d.key.port) {
                continue;
            }
            let n = f.events.len();
            let service = f.service.unwrap_or_default();
            let (origin, named) = (f.origin, f.named);
            self.flows.remove(&d.key);
            if self.said.len() >= MAX_FLOWS {
                self.said.clear();
            }
            self.said.insert(d.key);
            // Only at a score over the threshold, so rarely: a walk over the table.
            let shared =
                named
                    && self.flows.keys().chain(&self.said).any(|k| {
                        k.mac != d.key.mac && k.addr == d.key.addr && k.port == d.key.port
                    });
            if shared {
                tracing::debug!(mac = %d.key.mac, port = d.key.port, "beacon to a destination other devices share: a product's cloud");
                continue;
            }
            out.push(Finding {
                rule: &rules::BEACON,
                mac: d.key.mac,
                flow: Some((d.key, origin)),
                metadata: json!({
                    "destination": [addr::ip(d.key.addr).to_string()],
                    "port": [d.key.port.to_string()],
                    "proto": [addr::proto_name(d.key.proto)],
                    "service": [service],
                    "score": [format!("{:.3}", s.total)],
                    "interval_s": [format!("{:.0}", s.interval_s)],
                    "check_ins": [n.to_string()],
                    "reached_by": [if named { "name" } else { "address" }],
                }),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator, so the "random" series are the same every run.
    struct Lcg(u64);
    impl Lcg {
        fn unit(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn series(n: usize, mut gap: impl FnMut() -> f64, mut size: impl FnMut() -> f64) -> Score {
        let mut t: f64 = 1000.0;
        let (mut times, mut sizes) = (Vec::new(), Vec::new());
        for _ in 0..n {
            times.push(t.round());
            sizes.push(size().round());
            t += gap();
        }
        score(&times, &sizes).expect("enough")
    }

    #[test]
    fn steady_and_jittered_check_ins_score_high() {
        let (mut r, mut q) = (Lcg(7), Lcg(3));
        // Every 60 s, 20 % jitter either side, 300-byte requests give or take 10.
        let s = series(
            30,
            || 60.0 + (r.unit() - 0.5) * 24.0,
            || 300.0 + (q.unit() - 0.5) * 20.0,
        );
        assert!(s.total >= THRESHOLD, "{s:?}");
        assert!((50.0..70.0).contains(&s.interval_s), "{s:?}");
        // Once an hour, exact: the count term is low, the rest carries it.
        let s = series(10, || 3600.0, || 120.0);
        assert!(s.total >= THRESHOLD, "{s:?}");
    }

    #[test]
    fn an_agent_with_a_stray_check_in_and_varied_sizes_scores_high() {
        // Every 50 s give or take 10, 400-550-byte posts, and once a task's result 5 s
        // after a check-in. Sizes 150 bytes apart are far past the 32-byte cut-off of
        // RITA's older form; relative to a 475-byte median they are steady.
        let (mut r, mut q) = (Lcg(17), Lcg(19));
        let (mut times, mut sizes) = (Vec::new(), Vec::new());
        let mut t = 1000.0;
        for i in 0..12 {
            times.push(t);
            sizes.push((400.0 + q.unit() * 150.0_f64).round());
            if i == 3 {
                times.push(t + 5.0);
                sizes.push(250.0);
            }
            t += 50.0 + (r.unit() - 0.5) * 20.0;
        }
        let s = score(&times, &sizes).expect("enough");
        assert!(s.total >= THRESHOLD, "{s:?}");
    }

    #[test]
    fn irregular_use_scores_low() {
        // Someone using a service: exponential gaps (mean 10 min), sizes spread widely.
        let mut r = Lcg(11);
        let mut q = Lcg(5);
        let s = series(
            40,
            || -600.0 * (1.0 - r.unit()).ln(),
            || 200.0 + q.unit() * 30_000.0,
        );
        assert!(s.total < THRESHOLD, "{s:?}");
        assert_eq!(score(&[1.0, 2.0], &[1.0, 1.0]), None, "too few to tell");
    }

    #[test]
    fn web_protocols_off_their_ports() {
        assert!(off_port(Some("http"), 8888));
        assert!(off_port(Some("tls"), 4443));
        assert!(!off_port(Some("tls"), 8883), "MQTT over TLS");
        assert!(!off_port(Some("http"), 80));
        assert!(!off_port(Some("ssh"), 2222), "not a web protocol");
        assert!(!off_port(None, 8888), "not seen yet");
    }

    #[test]
    fn quartile_skew_and_dispersion() {
        let v = [1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(bowley(&v), 0.0, "symmetric quartiles");
        assert_eq!(madm(&v), 1.0);
    }
}
