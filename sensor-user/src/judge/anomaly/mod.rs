//! Behaviour: anomalies in each device's connections, volume and DNS. Each detector is a
//! file of its own implementing [`Detector`] (fan-out, resolvers and time servers, new
//! protocols, SYN floods, password guessing, retries, beacons, volume, DNS tunnels and
//! generated domains),
//! listed once in [`DETECTORS`]; this stage feeds them every input and rate-limits what
//! they find per device and rule, counting the repeats it held back in the next alert's
//! metadata.

pub mod beacon;
pub mod brute;
pub mod dns;
pub mod fanout;
pub mod flood;
pub mod protocol;
pub mod retry;
pub mod servers;
pub mod volume;

use std::{collections::HashMap, net::IpAddr};

use sensor_common::{FLOW_SERVING, FlowKey, MacAddr};
use serde_json::{Value, json};

use crate::{
    config::AnomalyConfig,
    discover::dns::DnsQuery,
    model::addr,
    model::alert::{About, Alert},
    model::flow::{FlowDelta, Origin},
    model::rule::Rule,
};

/// Every detector, in the order their findings of one input are written. A new detector
/// is a file in this folder, a line here, and its rule in `judge/rules.rs`.
pub const DETECTORS: &[NewDetector] = &[
    fanout::detector,
    servers::detector,
    protocol::detector,
    flood::detector,
    brute::detector,
    retry::detector,
    beacon::detector,
    volume::detector,
    dns::detector,
];

/// Builds a detector from `[anomaly]`.
pub type NewDetector = fn(&AnomalyConfig) -> Box<dyn Detector>;

/// What a detector found: the rule, the device, the flow when there is one, and EVE's
/// `alert.metadata` (names to lists of strings). The stage turns it into an alert.
#[derive(Clone, Debug)]
pub struct Finding {
    /// The rule.
    pub rule: &'static Rule,
    /// The device.
    pub mac: MacAddr,
    /// The flow it is about, if one.
    pub flow: Option<(FlowKey, Origin)>,
    /// `alert.metadata`.
    pub metadata: Value,
}

/// A new flow, as every detector sees it: one the device opened to a unicast
/// destination (flows it serves, multicast and broadcast are not judged here).
#[derive(Clone, Copy, Debug)]
pub struct NewFlow {
    /// Kernel time of its first packet.
    pub now: u64,
    /// The flow.
    pub key: FlowKey,
    /// Its first packet.
    pub origin: Origin,
    /// What the baseline stage said of it.
    pub cx: FlowContext,
}

impl NewFlow {
    /// A finding about this flow.
    pub fn finding(&self, rule: &'static Rule, metadata: Value) -> Finding {
        Finding {
            rule,
            mac: self.key.mac,
            flow: Some((self.key, self.origin)),
            metadata,
        }
    }
}

/// What a poll shows: each flow's traffic since the last poll, and what the gateway sent
/// each device (totals: packets, bytes).
#[derive(Clone, Copy, Debug)]
pub struct Poll<'a> {
    /// Kernel time of the poll.
    pub now: u64,
    /// Flows' traffic since the last poll.
    pub deltas: &'a [FlowDelta],
    /// The gateway's traffic to each device, totals.
    pub egress: &'a [(MacAddr, u64, u64)],
}

/// One behaviour detector. Every hook has a default that finds nothing: a detector
/// implements the inputs it looks at.
pub trait Detector {
    /// A new flow.
    fn on_new_flow(&mut self, _flow: &NewFlow) -> Vec<Finding> {
        Vec::new()
    }
    /// A DNS query device `mac` sent at kernel time `now`; `lan`: to a resolver on the
    /// LAN.
    fn on_dns_query(
        &mut self,
        _now: u64,
        _mac: MacAddr,
        _q: &DnsQuery,
        _lan: bool,
    ) -> Vec<Finding> {
        Vec::new()
    }
    /// The gateway answered device `mac` that `name` does not exist.
    fn on_nxdomain(&mut self, _now: u64, _mac: MacAddr, _name: &str) -> Vec<Finding> {
        Vec::new()
    }
    /// An ARP request from `mac` for `target`.
    fn on_arp_probe(&mut self, _now: u64, _mac: MacAddr, _target: IpAddr) -> Vec<Finding> {
        Vec::new()
    }
    /// A poll.
    fn on_poll(&mut self, _poll: &Poll<'_>) -> Vec<Finding> {
        Vec::new()
    }
    /// Whether what this detector finds about a flow is no device's normal: its
    /// destination is kept out of the baseline (taken back if learned), whether or not
    /// the per-device limit lets the alert through.
    fn keeps_out(&self) -> bool {
        false
    }
    /// Flows (or flow updates) it had no room to follow, its table full: behaviour it
    /// could not judge, in `stats` as `anomaly.unfollowed`.
    fn unfollowed(&self) -> u64 {
        0
    }
    /// A flow's first payload showed what it speaks: `service` (`ssh`, `irc`, `tls`,
    /// ...), and whether it is a login (`None`: the bytes cannot tell, as with TLS).
    fn on_service(
        &mut self,
        _now: u64,
        _key: FlowKey,
        _service: &'static str,
        _login: Option<bool>,
    ) -> Vec<Finding> {
        Vec::new()
    }
}

/// What the stage needs to know of a new flow beyond the flow itself.
#[derive(Clone, Copy, Debug)]
pub struct FlowContext {
    /// The device is still learning.
    pub learning: bool,
    /// Its policy allows this destination (declared, MUD or learned).
    pub allowed: bool,
    /// The destination is on the LAN (or multicast/broadcast).
    pub local: bool,
    /// A DNS answer gave the device the destination's address.
    pub resolved: bool,
    /// One of the names it was resolved from is one the knowledge base names a product's
    /// cloud or service by.
    pub known_name: bool,
}

/// Counters of this stage, in `stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct AnomalyCounters {
    /// Alerts written.
    pub alerts: u64,
    /// Findings held back by the per-device, per-rule rate limit.
    pub suppressed: u64,
}

/// The stage.
pub struct Anomaly {
    detectors: Vec<Box<dyn Detector>>,
    realert_ns: u64,
    limiter: HashMap<(MacAddr, &'static str), (u64, u64)>,
    /// Flows whose destinations detectors that keep out found, since the last take.
    kept_out: Vec<FlowKey>,
    /// Counters.
    pub counters: AnomalyCounters,
}

impl Anomaly {
    /// With the thresholds of `[anomaly]`.
    pub fn new(c: &AnomalyConfig) -> Self {
        Self {
            detectors: DETECTORS.iter().map(|d| d(c)).collect(),
            realert_ns: c.realert_after.get_ref().as_nanos() as u64,
            limiter: HashMap::new(),
            kept_out: Vec::new(),
            counters: AnomalyCounters::default(),
        }
    }

    /// Every detector's findings of one input, rate-limited into alerts.
    fn each(
        &mut self,
        now: u64,
        mut hook: impl FnMut(&mut dyn Detector) -> Vec<Finding>,
    ) -> Vec<Alert> {
        let mut found = Vec::new();
        for d in &mut self.detectors {
            let new = hook(d.as_mut());
            if d.keeps_out() {
                self.kept_out
                    .extend(new.iter().filter_map(|f| f.flow.map(|(k, _)| k)));
            }
            found.extend(new);
        }
        found
            .into_iter()
            .filter_map(|f| self.limit(now, f))
            .collect()
    }

    /// One alert per device and rule per `realert_after`; what is held back is counted
    /// and said in the next one.
    fn limit(&mut self, now: u64, f: Finding) -> Option<Alert> {
        let slot = self.limiter.entry((f.mac, f.rule.id)).or_insert((0, 0));
        if slot.0 != 0 && now.saturating_sub(slot.0) < self.realert_ns {
            slot.1 += 1;
            self.counters.suppressed += 1;
            return None;
        }
        let mut metadata = f.metadata;
        metadata["repeats_since_last_alert"] = json!([slot.1.to_string()]);
        *slot = (now.max(1), 0);
        self.counters.alerts += 1;
        let about = f
            .flow
            .map_or(About::Device(f.mac), |(k, o)| About::Flow(k, o));
        Some(Alert::new(f.rule, about, "anomaly").with_metadata(metadata))
    }

    /// What every detector had no room to follow, in all.
    pub fn unfollowed(&self) -> u64 {
        self.detectors.iter().map(|d| d.unfollowed()).sum()
    }

    /// The flows whose destinations must stay out of the baseline, found since the last
    /// call (the baseline stage takes them back).
    pub fn take_kept_out(&mut self) -> Vec<FlowKey> {
        std::mem::take(&mut self.kept_out)
    }

    /// A DNS query device `mac` sent at kernel time `now` (the names and their types);
    /// `lan`: to a resolver on the LAN.
    pub fn on_dns_query(&mut self, now: u64, mac: MacAddr, q: &DnsQuery, lan: bool) -> Vec<Alert> {
        self.each(now, |d| d.on_dns_query(now, mac, q, lan))
    }

    /// The gateway answered device `mac` at kernel time `now` that `name` does not exist.
    pub fn on_nxdomain(&mut self, now: u64, mac: MacAddr, name: &str) -> Vec<Alert> {
        self.each(now, |d| d.on_nxdomain(now, mac, name))
    }

    /// A new flow at kernel time `now`.
    pub fn on_new_flow(
        &mut self,
        now: u64,
        key: FlowKey,
        origin: Origin,
        cx: FlowContext,
    ) -> Vec<Alert> {
        let dst = addr::ip(key.addr);
        if key.flags & FLOW_SERVING != 0
            || dst.is_multicast()
            || dst == IpAddr::from([255, 255, 255, 255])
        {
            return Vec::new();
        }
        let flow = NewFlow {
            now,
            key,
            origin,
            cx,
        };
        self.each(now, |d| d.on_new_flow(&flow))
    }

    /// What a flow's first payload showed it speaks, at kernel time `now`.
    pub fn on_service(
        &mut self,
        now: u64,
        key: FlowKey,
        service: &'static str,
        login: Option<bool>,
    ) -> Vec<Alert> {
        self.each(now, |d| d.on_service(now, key, service, login))
    }

    /// An ARP request from `mac` for `target`: a LAN sweep shows as many targets.
    pub fn on_arp_probe(&mut self, now: u64, mac: MacAddr, target: IpAddr) -> Vec<Alert> {
        self.each(now, |d| d.on_arp_probe(now, mac, target))
    }

    /// A poll: the flows' traffic since the last one (upstream, and SYN floods), the
    /// gateway's traffic to each device (downstream, totals), at kernel time `now`.
    pub fn on_poll(
        &mut self,
        now: u64,
        deltas: &[FlowDelta],
        egress: &[(MacAddr, u64, u64)],
    ) -> Vec<Alert> {
        let poll = Poll {
            now,
            deltas,
            egress,
        };
        self.each(now, |d| d.on_poll(&poll))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sensor_common::proto;

    const TCP_SYN: u8 = 0x02;
    const TCP_ACK: u8 = 0x10;
    use crate::config::Config;

    const M: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const S: u64 = 1_000_000_000;

    fn stage(extra: &str) -> Anomaly {
        Anomaly::new(
            &Config::parse(&format!("[anomaly]\n{extra}"), "t.toml")
                .unwrap()
                .anomaly,
        )
    }

    fn flow(dst: [u8; 4], port: u16, p: u8) -> (FlowKey, Origin) {
        flow_from(M, dst, port, p)
    }

    fn flow_from(mac: MacAddr, dst: [u8; 4], port: u16, p: u8) -> (FlowKey, Origin) {
        let key = FlowKey::from_parts(
            [
                0,
                0,
                u32::from_ne_bytes([0, 0, 0xff, 0xff]),
                u32::from_ne_bytes(dst),
            ],
            mac,
            port,
            p,
            0,
        );
        let origin = Origin {
            src: "198.51.100.10".parse().unwrap(),
            src_port: 40000,
            dst_port: port,
            dst_mac: MacAddr([2, 0, 0, 0, 0, 0xee]),
            verdict: sensor_common::policy::Verdict::Unset,
            ts_ns: 0,
        };
        (key, origin)
    }

    const MONITOR: FlowContext = FlowContext {
        learning: false,
        allowed: false,
        local: false,
        resolved: false,
        known_name: false,
    };

    #[test]
    fn flows_a_full_detector_cannot_follow_are_counted() {
        let mut a = stage("");
        assert_eq!(a.unfollowed(), 0);
        // 4,106 live flows by raw address within a few ms: the beacon table holds 4,096.
        for i in 0..4106u32 {
            let (k, o) = flow([203, 0, (i >> 8) as u8, i as u8], 8888, proto::TCP);
            a.on_new_flow(u64::from(i) * 1_000, k, o, MONITOR);
        }
        assert_eq!(a.unfollowed(), 10);
    }

    #[test]
    fn a_mirai_sweep_alerts_once_and_repeats_are_counted() {
        let mut a = stage("");
        let mut alerts = Vec::new();
        for i in 0..64u8 {
            let (k, o) = flow(
                [203, 0, 113, i],
                if i % 2 == 0 { 23 } else { 2323 },
                proto::TCP,
            );
            alerts.extend(a.on_new_flow(u64::from(i) * 10_000_000, k, o, MONITOR));
        }
        let scans: Vec<_> = alerts
            .iter()
            .filter(|x| x.rule.id == "scan_fanout")
            .collect();
        assert_eq!(scans.len(), 1, "{scans:?}");
        let top = scans[0].metadata["top_ports"].to_string();
        assert!(top.contains("23 (") && top.contains("2323 ("), "{top}");
        assert_eq!(a.counters.suppressed, 1, "the second 32 were held back");
    }

    #[test]
    fn resolvers_and_time_servers_outside_the_lan() {
        let mut a = stage("ntp_servers = [\"203.0.113.123\"]\n");
        let (k, o) = flow([203, 0, 113, 53], 53, proto::UDP);
        let got = a.on_new_flow(S, k, o, MONITOR);
        assert!(got.iter().any(|x| x.rule.id == "unexpected_dns_server"));
        let (k, o) = flow([198, 51, 100, 1], 53, proto::UDP);
        let lan = FlowContext {
            local: true,
            ..MONITOR
        };
        assert!(
            a.on_new_flow(2 * S, k, o, lan)
                .iter()
                .all(|x| x.rule.id != "unexpected_dns_server")
        );
        let (k, o) = flow([203, 0, 113, 123], 123, proto::UDP);
        assert!(
            a.on_new_flow(3 * S, k, o, MONITOR)
                .iter()
                .all(|x| x.rule.id != "unexpected_ntp_server"),
            "declared"
        );
        let (k, o) = flow([203, 0, 113, 124], 123, proto::UDP);
        assert!(
            a.on_new_flow(4 * S, k, o, MONITOR)
                .iter()
                .any(|x| x.rule.id == "unexpected_ntp_server")
        );
        let (k, o) = flow([203, 0, 113, 125], 123, proto::UDP);
        let learned = FlowContext {
            allowed: true,
            ..MONITOR
        };
        assert!(
            a.on_new_flow(5 * S, k, o, learned).is_empty(),
            "the baseline has it"
        );
    }

    #[test]
    fn a_new_protocol_after_learning() {
        let mut a = stage("");
        let learning = FlowContext {
            learning: true,
            ..MONITOR
        };
        let (k, o) = flow([203, 0, 113, 10], 443, proto::TCP);
        assert!(a.on_new_flow(S, k, o, learning).is_empty());
        let (k, o) = flow([203, 0, 113, 11], 443, proto::TCP);
        assert!(a.on_new_flow(2 * S, k, o, MONITOR).is_empty(), "same class");
        let (k, o) = flow([203, 0, 113, 12], 5683, proto::UDP);
        let got = a.on_new_flow(3 * S, k, o, MONITOR);
        assert_eq!(got[0].rule.id, "new_protocol");
        assert_eq!(got[0].metadata["protocol"][0], "UDP/registered");
    }

    #[test]
    fn syn_floods_at_the_threshold_and_an_upload_burst() {
        let mut a = stage(
            "syn_flood_packets = 100\nvolume_interval = \"1s\"\nvolume_warmup = 3\nvolume_floor_bytes = 10000\n",
        );
        let (k, _) = flow([203, 0, 113, 80], 80, proto::TCP);
        let syn = |n| FlowDelta {
            key: k,
            packets: n,
            bytes: n * 60,
            tcp_flags: TCP_SYN,
            syns: n,
        };
        assert!(a.on_poll(S, &[syn(99)], &[]).is_empty(), "just under");
        assert_eq!(
            a.on_poll(S + 1, &[syn(100)], &[])[0].rule.id,
            "syn_flood_participation"
        );
        let (k2, _) = flow([203, 0, 113, 81], 80, proto::TCP);
        // Another device: the first flood's alert holds this rule back for M.
        let k2 = FlowKey {
            mac: MacAddr([2, 0, 0, 0, 0, 0x22]),
            ..k2
        };
        let mixed = FlowDelta {
            key: k2,
            packets: 400,
            bytes: 400 * 60,
            tcp_flags: TCP_SYN | TCP_ACK,
            syns: 300,
        };
        assert_eq!(
            a.on_poll(S + 2, &[mixed], &[])[0].rule.id,
            "syn_flood_participation",
            "a flood mixed with completed handshakes (the ACKs OR'd in) is still one"
        );
        let (k3, _) = flow([203, 0, 113, 82], 80, proto::TCP);
        // And another, so its volume stays out of M's series below.
        let k3 = FlowKey {
            mac: MacAddr([2, 0, 0, 0, 0, 0x23]),
            ..k3
        };
        let busy = FlowDelta {
            key: k3,
            packets: 5000,
            bytes: 5000 * 1400,
            tcp_flags: TCP_SYN | TCP_ACK,
            syns: 3,
        };
        assert!(
            a.on_poll(S + 3, &[busy], &[])
                .iter()
                .all(|x| x.rule.id != "syn_flood_participation"),
            "a busy flow with a few connections"
        );
        let (u, _) = flow([203, 0, 113, 90], 443, proto::TCP);
        let up = |bytes| FlowDelta {
            key: u,
            packets: bytes / 1000,
            bytes,
            tcp_flags: TCP_ACK,
            syns: 0,
        };
        let mut spikes = Vec::new();
        for i in 2..12u64 {
            spikes.extend(a.on_poll(i * S, &[up(50_000)], &[(M, i * 10, i * 10_000)]));
        }
        assert!(
            spikes.iter().all(|x| x.rule.id != "volume_spike"),
            "{spikes:?}"
        );
        let burst = a.on_poll(12 * S, &[up(1_000_000)], &[(M, 120, 120_000)]);
        let v: Vec<_> = burst
            .iter()
            .filter(|x| x.rule.id == "volume_spike")
            .collect();
        assert_eq!(v.len(), 1, "{burst:?}");
        assert_eq!(v[0].metadata["direction"][0], "upstream");
    }

    /// HTTP check-ins every 30 s on each of `flows` (new in context `cx`), twelve of them;
    /// the beacons said.
    fn check_ins(a: &mut Anomaly, flows: &[(FlowKey, Origin)], cx: FlowContext) -> Vec<Alert> {
        for (k, o) in flows {
            assert!(a.on_new_flow(S, *k, *o, cx).is_empty());
            assert!(a.on_service(S, *k, "http", Some(false)).is_empty());
        }
        let mut beacons = Vec::new();
        for i in 1..=12u64 {
            let deltas: Vec<FlowDelta> = flows
                .iter()
                .map(|(k, _)| FlowDelta {
                    key: *k,
                    packets: 6,
                    bytes: 6 * 66 + 300,
                    tcp_flags: TCP_SYN | TCP_ACK,
                    syns: 1,
                })
                .collect();
            beacons.extend(
                a.on_poll(i * 30 * S, &deltas, &[])
                    .into_iter()
                    .filter(|x| x.rule.id == "beacon"),
            );
        }
        beacons
    }

    #[test]
    fn a_beacon_held_back_by_the_limit_still_keeps_its_destination_out() {
        let mut a = stage("");
        let flows = [
            flow([203, 0, 113, 7], 8888, proto::TCP),
            flow([203, 0, 113, 8], 9999, proto::TCP),
        ];
        assert_eq!(
            check_ins(&mut a, &flows, MONITOR).len(),
            1,
            "one alert per device and rule per realert_after"
        );
        let mut kept = a.take_kept_out();
        kept.sort_by_key(|k| k.port);
        assert_eq!(kept, vec![flows[0].0, flows[1].0], "both kept out");
        assert!(a.take_kept_out().is_empty());
    }

    /// Check-ins from each of `devices` to one named destination; the beacons said.
    fn named_check_ins(devices: &[MacAddr], cx: FlowContext) -> Vec<Alert> {
        let flows: Vec<_> = devices
            .iter()
            .map(|m| flow_from(*m, [203, 0, 113, 7], 8888, proto::TCP))
            .collect();
        check_ins(&mut stage(""), &flows, cx)
    }

    #[test]
    fn a_beacon_to_a_name_unless_a_product_cloud_or_shared() {
        let named = FlowContext {
            resolved: true,
            ..MONITOR
        };
        let got = named_check_ins(&[M], named);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].metadata["reached_by"][0], "name");
        let cloud = FlowContext {
            known_name: true,
            ..named
        };
        assert!(
            named_check_ins(&[M], cloud).is_empty(),
            "a name the knowledge base knows as a product's cloud"
        );
        let other = MacAddr([2, 0, 0, 0, 0, 2]);
        assert!(
            named_check_ins(&[M, other], named).is_empty(),
            "two devices checking in with one named destination: a product's cloud"
        );
        let got = named_check_ins(&[M, other], MONITOR);
        assert_eq!(
            got.len(),
            2,
            "by raw address, two devices are two implants: {got:?}"
        );
        assert_eq!(got[0].metadata["reached_by"][0], "address");
    }

    #[test]
    fn an_arp_sweep_of_the_lan() {
        let mut a = stage("");
        let mut got = Vec::new();
        for i in 1..=40u8 {
            got.extend(a.on_arp_probe(u64::from(i) * 1000, M, IpAddr::from([198, 51, 100, i])));
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].rule.id, "scan_fanout");
    }
}
