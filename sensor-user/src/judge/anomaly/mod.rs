//! Behaviour: anomalies in each device's connections, volume and DNS. Detectors are small
//! and separate (fan-out, volume, SYN floods, resolvers and time servers, new protocols,
//! DNS tunnels and generated domains);
//! this stage feeds them, and deduplicates and rate-limits what they find per device
//! and rule, counting the repeats it held back in the next alert's metadata.

pub mod brute;
pub mod dns;
pub mod fanout;
pub mod volume;

use std::{
    collections::{BTreeSet, HashMap},
    net::IpAddr,
};

use ipnet::IpNet;
use sensor_common::{FLOW_SERVING, FlowKey, MacAddr, proto};
use serde_json::{Value, json};

use crate::{
    config::AnomalyConfig,
    judge::rules,
    model::addr,
    model::alert::{About, Alert},
    model::flow::{FlowDelta, Origin},
    model::rule::Rule,
};
use brute::Brute;
use dns::{DnsFinding, DnsThresholds, DnsWatch};
use fanout::{Fanout, Sweep};
use volume::{Series, VolumeRule};

/// What the stage needs to know of a new flow beyond the flow itself.
#[derive(Clone, Copy, Debug)]
pub struct FlowContext {
    /// The device is still learning.
    pub learning: bool,
    /// Its policy allows this destination (declared, MUD or learned).
    pub allowed: bool,
    /// The destination is on the LAN (or multicast/broadcast).
    pub local: bool,
}

/// The port class of a flow: well-known ports count one by one, the rest by range.
fn port_class(proto_nr: u8, port: u16) -> (u8, u16) {
    match proto_nr {
        proto::TCP | proto::UDP if port < 1024 => (proto_nr, port),
        proto::TCP | proto::UDP if port < 49152 => (proto_nr, 1024),
        proto::TCP | proto::UDP => (proto_nr, 49152),
        // ICMP: the type, not the code.
        _ => (proto_nr, port >> 8),
    }
}

fn class_name(c: (u8, u16)) -> String {
    let p = addr::proto_name(c.0);
    match (c.0, c.1) {
        (proto::TCP | proto::UDP, 1024) => format!("{p}/registered"),
        (proto::TCP | proto::UDP, 49152) => format!("{p}/dynamic"),
        (proto::TCP | proto::UDP, port) => format!("{p}/{port}"),
        (_, t) => format!("{p} type {t}"),
    }
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
    window_ns: u64,
    fanout_dests: usize,
    fanout_ports: usize,
    interval_ns: u64,
    bytes_rule: VolumeRule,
    packets_rule: VolumeRule,
    syn_flood_packets: u64,
    dns_ok: Vec<IpNet>,
    ntp_ok: Vec<IpNet>,
    realert_ns: u64,
    fanout: HashMap<MacAddr, Fanout>,
    series: HashMap<(MacAddr, &'static str, &'static str), Series>,
    acc: HashMap<MacAddr, [u64; 4]>,
    egress_prev: HashMap<MacAddr, (u64, u64)>,
    next_interval_ns: Option<u64>,
    protocols: HashMap<MacAddr, BTreeSet<(u8, u16)>>,
    limiter: HashMap<(MacAddr, &'static str), (u64, u64)>,
    dns: DnsWatch,
    brute: Brute,
    /// Counters.
    pub counters: AnomalyCounters,
}

fn nets(list: &[toml::Spanned<String>]) -> Vec<IpNet> {
    list.iter()
        .filter_map(|s| {
            let s = s.get_ref();
            s.parse::<IpNet>()
                .ok()
                .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
        })
        .collect()
}

impl Anomaly {
    /// With the thresholds of `[anomaly]`.
    pub fn new(c: &AnomalyConfig) -> Self {
        let rule = |floor: u64| VolumeRule {
            warmup: c.volume_warmup,
            k: c.volume_k,
            ratio: c.volume_ratio,
            floor: floor as f64,
        };
        Self {
            window_ns: c.window.get_ref().as_nanos() as u64,
            fanout_dests: c.fanout_destinations.max(2),
            fanout_ports: c.fanout_ports.max(2),
            interval_ns: c.volume_interval.get_ref().as_nanos() as u64,
            bytes_rule: rule(c.volume_floor_bytes),
            packets_rule: rule(c.volume_floor_packets),
            syn_flood_packets: c.syn_flood_packets.max(1),
            dns_ok: nets(&c.dns_servers),
            ntp_ok: nets(&c.ntp_servers),
            realert_ns: c.realert_after.get_ref().as_nanos() as u64,
            fanout: HashMap::new(),
            series: HashMap::new(),
            acc: HashMap::new(),
            egress_prev: HashMap::new(),
            next_interval_ns: None,
            protocols: HashMap::new(),
            limiter: HashMap::new(),
            dns: DnsWatch::new(DnsThresholds {
                window_ns: c.dns_window.get_ref().as_nanos() as u64,
                tunnel_names: c.dns_tunnel_names.max(2),
                tunnel_min_chars: c.dns_tunnel_chars,
                tunnel_entropy: c.dns_tunnel_entropy,
                dga_domains: c.dga_domains.max(2),
                dga_entropy: c.dga_entropy,
            }),
            brute: Brute::new(
                c.brute_force_connections,
                c.brute_force_window.get_ref().as_nanos() as u64,
                c.brute_force_ports.clone(),
            ),
            counters: AnomalyCounters::default(),
        }
    }

    fn brute_window_s(&self) -> u64 {
        self.brute.window_ns() / 1_000_000_000
    }

    /// A DNS query device `mac` sent at kernel time `now` (the names and their types).
    pub fn on_dns_query(
        &mut self,
        now: u64,
        mac: MacAddr,
        q: &crate::discover::dns::DnsQuery,
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        for (i, name) in q.names.iter().enumerate() {
            let qtype = q.qtypes.get(i).copied().unwrap_or(0);
            if let Some(f) = self.dns.on_query(now, mac, name, qtype) {
                out.extend(self.dns_alert(now, mac, f));
            }
        }
        out
    }

    /// The gateway answered device `mac` at kernel time `now` that `name` does not exist.
    pub fn on_nxdomain(&mut self, now: u64, mac: MacAddr, name: &str) -> Vec<Alert> {
        match self.dns.on_nxdomain(now, mac, name) {
            Some(f) => self.dns_alert(now, mac, f).into_iter().collect(),
            None => Vec::new(),
        }
    }

    fn dns_alert(&mut self, now: u64, mac: MacAddr, f: DnsFinding) -> Option<Alert> {
        let window_s = [(self.dns.window_ns() / 1_000_000_000).to_string()];
        let (rule, meta) = match f {
            DnsFinding::Tunnel {
                domain,
                names,
                typed,
                examples,
            } => (
                &rules::DNS_TUNNEL,
                json!({
                    "domain": [domain],
                    "names": [names.to_string()],
                    "txt_or_null": [typed.to_string()],
                    "window_s": window_s,
                    "examples": examples,
                }),
            ),
            DnsFinding::Dga { domains, examples } => (
                &rules::DGA_ACTIVITY,
                json!({
                    "nxdomain_domains": [domains.to_string()],
                    "window_s": window_s,
                    "examples": examples,
                }),
            ),
        };
        self.emit(now, rule, mac, None, meta)
    }

    /// One alert per device and rule per `realert_after`; what is held back is counted
    /// and said in the next one.
    fn emit(
        &mut self,
        now: u64,
        rule: &'static Rule,
        mac: MacAddr,
        flow: Option<(FlowKey, Origin)>,
        mut metadata: Value,
    ) -> Option<Alert> {
        let slot = self.limiter.entry((mac, rule.id)).or_insert((0, 0));
        if slot.0 != 0 && now.saturating_sub(slot.0) < self.realert_ns {
            slot.1 += 1;
            self.counters.suppressed += 1;
            return None;
        }
        metadata["repeats_since_last_alert"] = json!([slot.1.to_string()]);
        *slot = (now.max(1), 0);
        self.counters.alerts += 1;
        let about = flow.map_or(About::Device(mac), |(k, o)| About::Flow(k, o));
        Some(Alert::new(rule, about, "anomaly").with_metadata(metadata))
    }

    /// A new flow at kernel time `now`.
    pub fn on_new_flow(
        &mut self,
        now: u64,
        key: FlowKey,
        origin: Origin,
        cx: FlowContext,
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        let mac = key.mac;
        let dst = addr::ip(key.addr);
        let serving = key.flags & FLOW_SERVING != 0;
        if serving || dst.is_multicast() || dst == IpAddr::from([255, 255, 255, 255]) {
            return out;
        }
        let sweep = self.fanout.entry(mac).or_default().on_contact(
            now,
            self.window_ns,
            dst,
            key.port,
            self.fanout_dests,
            self.fanout_ports,
        );
        if let Some(s) = sweep {
            out.extend(self.sweep_alert(now, mac, Some((key, origin)), s));
        }
        let tcp_udp = key.proto == proto::TCP || key.proto == proto::UDP;
        if !cx.learning && !cx.local && !cx.allowed && tcp_udp {
            let port = key.port;
            if (port == 53 || port == 853) && !self.dns_ok.iter().any(|n| n.contains(&dst)) {
                let meta = json!({ "server": [dst.to_string()], "port": [port.to_string()] });
                out.extend(self.emit(
                    now,
                    &rules::UNEXPECTED_DNS_SERVER,
                    mac,
                    Some((key, origin)),
                    meta,
                ));
            }
            if port == 123
                && key.proto == proto::UDP
                && !self.ntp_ok.iter().any(|n| n.contains(&dst))
            {
                let meta = json!({ "server": [dst.to_string()] });
                out.extend(self.emit(
                    now,
                    &rules::UNEXPECTED_NTP_SERVER,
                    mac,
                    Some((key, origin)),
                    meta,
                ));
            }
        }
        // Port 0 on TCP or UDP is a later IP fragment: no port to classify.
        if tcp_udp && key.port == 0 {
            return out;
        }
        let class = port_class(key.proto, key.port);
        let known = self.protocols.entry(mac).or_default();
        let new = known.insert(class);
        if new && !cx.learning && !cx.allowed && known.len() > 1 {
            let meta = json!({ "protocol": [class_name(class)] });
            out.extend(self.emit(now, &rules::NEW_PROTOCOL, mac, Some((key, origin)), meta));
        }
        out
    }

    /// An ARP request from `mac` for `target`: a LAN sweep shows as many targets.
    pub fn on_arp_probe(&mut self, now: u64, mac: MacAddr, target: IpAddr) -> Vec<Alert> {
        let sweep = self.fanout.entry(mac).or_default().on_contact(
            now,
            self.window_ns,
            target,
            0,
            self.fanout_dests,
            usize::MAX,
        );
        match sweep {
            Some(s) => self.sweep_alert(now, mac, None, s).into_iter().collect(),
            None => Vec::new(),
        }
    }

    fn sweep_alert(
        &mut self,
        now: u64,
        mac: MacAddr,
        flow: Option<(FlowKey, Origin)>,
        s: Sweep,
    ) -> Option<Alert> {
        let window_s = (self.window_ns / 1_000_000_000).to_string();
        let meta = match s {
            Sweep::Destinations { count, top_ports } => json!({
                "kind": ["destinations"],
                "destinations": [count.to_string()],
                "window_s": [window_s],
                "top_ports": top_ports.iter().map(|(p, n)| format!("{p} ({n} destinations)")).collect::<Vec<_>>(),
            }),
            Sweep::Ports { dest, count } => json!({
                "kind": ["ports"],
                "destination": [dest.to_string()],
                "ports": [count.to_string()],
                "window_s": [window_s],
            }),
        };
        self.emit(now, &rules::SCAN_FANOUT, mac, flow, meta)
    }

    /// A poll: the flows' traffic since the last one (upstream, and SYN floods), the
    /// gateway's traffic to each device (downstream, totals), at kernel time `now`.
    pub fn on_poll(
        &mut self,
        now: u64,
        deltas: &[FlowDelta],
        egress: &[(MacAddr, u64, u64)],
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        for d in deltas {
            let a = self.acc.entry(d.key.mac).or_default();
            a[0] += d.bytes;
            a[1] += d.packets;
            // SYNs counted frame by frame: a flood mixed with a few completed
            // handshakes is still a flood.
            let sending = d.key.flags & FLOW_SERVING == 0;
            if d.key.proto == proto::TCP && sending && d.syns >= self.syn_flood_packets {
                let dst = addr::ip(d.key.addr);
                let meta = json!({
                    "destination": [dst.to_string()],
                    "port": [d.key.port.to_string()],
                    "syns": [d.syns.to_string()],
                });
                out.extend(self.emit(now, &rules::SYN_FLOOD_PARTICIPATION, d.key.mac, None, meta));
                continue;
            }
            if let Some(g) = self.brute.on_syns(now, d.key, d.syns) {
                let peer = addr::ip(g.key.addr);
                let meta = json!({
                    "direction": [if g.inbound { "inbound" } else { "outbound" }],
                    "peer": [peer.to_string()],
                    "port": [g.key.port.to_string()],
                    "connections": [g.connections.to_string()],
                    "window_s": [(self.brute_window_s()).to_string()],
                });
                out.extend(self.emit(now, &rules::BRUTE_FORCE, d.key.mac, None, meta));
            }
        }
        for (mac, packets, bytes) in egress {
            let prev = self
                .egress_prev
                .insert(*mac, (*packets, *bytes))
                .unwrap_or((*packets, *bytes));
            let a = self.acc.entry(*mac).or_default();
            a[2] += bytes.saturating_sub(prev.1);
            a[3] += packets.saturating_sub(prev.0);
        }
        let next = *self.next_interval_ns.get_or_insert(now + self.interval_ns);
        if now < next {
            return out;
        }
        self.next_interval_ns = Some(now + self.interval_ns);
        let acc: Vec<(MacAddr, [u64; 4])> = self.acc.drain().collect();
        for (mac, v) in acc {
            for (i, direction, unit) in [
                (0, "upstream", "bytes"),
                (1, "upstream", "packets"),
                (2, "downstream", "bytes"),
                (3, "downstream", "packets"),
            ] {
                let rule = if unit == "bytes" {
                    self.bytes_rule
                } else {
                    self.packets_rule
                };
                let spike = self
                    .series
                    .entry((mac, direction, unit))
                    .or_default()
                    .on_interval(v[i] as f64, &rule);
                if let Some(s) = spike {
                    let meta = json!({
                        "direction": [direction],
                        "unit": [unit],
                        "value": [format!("{:.0}", s.value)],
                        "usual": [format!("{:.0}", s.mean)],
                        "limit": [format!("{:.0}", s.limit)],
                        "interval_s": [(self.interval_ns / 1_000_000_000).to_string()],
                    });
                    out.extend(self.emit(now, &rules::VOLUME_SPIKE, mac, None, meta));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let key = FlowKey::from_parts(
            [
                0,
                0,
                u32::from_ne_bytes([0, 0, 0xff, 0xff]),
                u32::from_ne_bytes(dst),
            ],
            M,
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
    };

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
