//! Password guessing: many connections to one login service in a window, counted from the
//! SYN frames the kernel counts per flow. A device that opens them is guessing someone's
//! password (a bot spreading); a device that accepts them (SYN-ACKs on its serving flow,
//! one flow per client address) is having its own guessed.
//!
//! A login service is what the flow's first payload speaks (SSH, telnet, FTP, POP3,
//! IMAP, HTTP or RTSP with credentials, a SIP registration) on whatever port; the port
//! list is the fallback for flows whose payload cannot tell (TLS) or was not sampled yet.
//!
//! Guessing can also be slow: a few attempts, minutes apart. On a remote shell (SSH or
//! telnet, as the payload shows) `brute_force_logins` connections within
//! `brute_force_logins_window` (fail2ban's sshd defaults: 5 in 10 minutes) are guessing
//! when they are short: under [`SHORT_LOGIN_BYTES`] sent per connection on average, the
//! size of a key exchange and a refused password, where a session that does any work
//! sends more. What it cannot tell: a few quick logins that succeed and do nothing.
//!
//! Over UDP there are no connections: a login there (SIP's REGISTER) is counted by its
//! datagrams, and only where the payload showed one, since a UDP port says little. A
//! digest login takes two requests (RFC 3261 22.1: the first is challenged, the second
//! answers), so the threshold is twice the connections'.

use serde_json::json;

use super::{Detector, Finding, Poll, flood::is_flood};
use crate::{
    config::AnomalyConfig,
    judge::rules,
    model::{addr, flow::FlowDelta},
};

use std::collections::{HashMap, VecDeque};

use sensor_common::{FLOW_SERVING, FlowKey, proto};

/// Flows followed at once; the stalest are dropped past this.
const MAX_FLOWS: usize = 4096;

/// Bytes a device sends per connection, on average, below which remote-shell
/// connections are short logins. An OpenSSH client's refused attempt sends 2-4 KB (key
/// exchange, then a password or key per try); a telnet one a few hundred bytes.
pub const SHORT_LOGIN_BYTES: u64 = 16 * 1024;

/// Short-login counts are kept in buckets of this many ns, so a flow holds at most
/// window / bucket entries whatever the poll rate.
const LOGIN_BUCKET_NS: u64 = 10_000_000_000;

/// The services whose short logins count: remote shells.
fn is_remote_shell(service: &str) -> bool {
    matches!(service, "ssh" | "telnet")
}

/// What the detector found on one flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guessing {
    /// The flow (device, the other side, the service port).
    pub key: FlowKey,
    /// Connections (TCP) or datagrams (UDP) in the window.
    pub connections: u64,
    /// The service, when a first payload showed it.
    pub service: Option<&'static str>,
    /// The device accepted them (the service is its own) rather than opened them.
    pub inbound: bool,
    /// Bytes sent per connection on average, for short logins (`None`: a burst).
    pub short_logins: Option<u64>,
    /// The window they fell in, ns.
    pub window_ns: u64,
}

/// Connections to a remote shell and the bytes sent on it, per bucket.
#[derive(Debug, Default)]
struct Logins {
    buckets: VecDeque<(u64, u64, u64)>,
}

impl Logins {
    /// Adds a poll's connections and bytes at `now`; drops what left `window`.
    fn add(&mut self, now: u64, window: u64, conns: u64, bytes: u64) -> (u64, u64) {
        match self.buckets.back_mut() {
            Some((t, c, b)) if now.saturating_sub(*t) < LOGIN_BUCKET_NS => {
                *c += conns;
                *b += bytes;
            }
            _ => self.buckets.push_back((now, conns, bytes)),
        }
        while self
            .buckets
            .front()
            .is_some_and(|(t, _, _)| now.saturating_sub(*t) >= window)
        {
            self.buckets.pop_front();
        }
        self.buckets
            .iter()
            .fold((0, 0), |(c, b), (_, c1, b1)| (c + c1, b + b1))
    }
}

/// The detector.
#[derive(Debug)]
pub struct Brute {
    threshold: u64,
    window_ns: u64,
    ports: Vec<u16>,
    flows: HashMap<FlowKey, VecDeque<(u64, u64)>>,
    /// What first payloads showed: the flow is a login (true) or is not (false), and
    /// its service.
    services: HashMap<FlowKey, (bool, &'static str)>,
    /// Short logins: connections that make them, and their window.
    logins: u64,
    logins_window_ns: u64,
    shells: HashMap<FlowKey, Logins>,
    /// Flow updates not counted: the table was full of live flows.
    pub unfollowed: u64,
}

impl Brute {
    /// `threshold` connections within `window_ns` to one of `ports` (TCP).
    pub fn new(threshold: u64, window_ns: u64, ports: Vec<u16>) -> Self {
        Self {
            threshold: threshold.max(2),
            window_ns,
            ports,
            flows: HashMap::new(),
            services: HashMap::new(),
            logins: u64::MAX,
            logins_window_ns: 0,
            shells: HashMap::new(),
            unfollowed: 0,
        }
    }

    /// Also `logins` short connections to a remote shell within `window_ns`.
    pub fn with_short_logins(mut self, logins: u64, window_ns: u64) -> Self {
        self.logins = logins.max(2);
        self.logins_window_ns = window_ns;
        self
    }

    /// A flow's first payload showed `service`, a login or not (`None`: it cannot tell,
    /// and the port decides).
    pub fn on_service(&mut self, key: FlowKey, service: &'static str, login: Option<bool>) {
        let Some(login) = login else {
            return;
        };
        if self.services.len() >= MAX_FLOWS && !self.services.contains_key(&key) {
            // Forgetting falls back on the port list, never on silence about a guess.
            self.services.clear();
        }
        self.services.insert(key, (login, service));
    }

    /// A flow's traffic since the last poll, at `now`: its SYNs (connections opened or
    /// accepted) on TCP, its datagrams on UDP.
    pub fn on_delta(&mut self, now: u64, d: &FlowDelta) -> Option<Guessing> {
        let key = d.key;
        let shown = self.services.get(&key).copied();
        let (count, threshold) = match key.proto {
            proto::TCP => {
                let login = shown.map_or_else(|| self.ports.contains(&key.port), |(l, _)| l);
                (if login { d.syns } else { 0 }, self.threshold)
            }
            proto::UDP if shown.is_some_and(|(l, _)| l) => (d.packets, self.threshold * 2),
            _ => (0, self.threshold),
        };
        let short = self.on_shell(now, d, shown);
        if count == 0 {
            return short;
        }
        if !self.flows.contains_key(&key) && self.flows.len() >= MAX_FLOWS {
            let window = self.window_ns;
            self.flows.retain(|_, q| {
                q.back()
                    .is_some_and(|(t, _)| now.saturating_sub(*t) < window)
            });
            if self.flows.len() >= MAX_FLOWS {
                self.unfollowed += 1;
                return short;
            }
        }
        let q = self.flows.entry(key).or_default();
        q.push_back((now, count));
        while q
            .front()
            .is_some_and(|(t, _)| now.saturating_sub(*t) >= self.window_ns)
        {
            q.pop_front();
        }
        let connections: u64 = q.iter().map(|(_, n)| n).sum();
        if connections < threshold {
            return short;
        }
        // Counting starts again: the next alert is about the next window's worth.
        q.clear();
        self.shells.remove(&key);
        Some(Guessing {
            key,
            connections,
            service: shown.map(|(_, s)| s),
            inbound: key.flags & FLOW_SERVING != 0,
            short_logins: None,
            window_ns: self.window_ns,
        })
    }

    /// Short logins on a flow the payload showed is a remote shell.
    fn on_shell(
        &mut self,
        now: u64,
        d: &FlowDelta,
        shown: Option<(bool, &'static str)>,
    ) -> Option<Guessing> {
        let key = d.key;
        let (true, service) = shown? else {
            return None;
        };
        if key.proto != proto::TCP || !is_remote_shell(service) || self.logins_window_ns == 0 {
            return None;
        }
        if !self.shells.contains_key(&key) {
            if d.syns == 0 {
                return None;
            }
            if self.shells.len() >= MAX_FLOWS {
                let window = self.logins_window_ns;
                self.shells.retain(|_, l| {
                    l.buckets
                        .back()
                        .is_some_and(|(t, _, _)| now.saturating_sub(*t) < window)
                });
                if self.shells.len() >= MAX_FLOWS {
                    self.unfollowed += 1;
                    return None;
                }
            }
        }
        let logins = self.shells.entry(key).or_default();
        let (conns, bytes) = logins.add(now, self.logins_window_ns, d.syns, d.bytes);
        if conns < self.logins || bytes >= conns * SHORT_LOGIN_BYTES {
            return None;
        }
        self.shells.remove(&key);
        Some(Guessing {
            key,
            connections: conns,
            service: Some(service),
            inbound: key.flags & FLOW_SERVING != 0,
            short_logins: Some(bytes / conns),
            window_ns: self.logins_window_ns,
        })
    }
}

/// The detector: `brute_force` from [`Brute`], on the flows that are not a SYN flood
/// (`flood.rs` says those).
pub struct BruteForce {
    brute: Brute,
    flood_syns: u64,
}

/// The detector, with `[anomaly]`'s thresholds and login ports.
pub fn detector(c: &AnomalyConfig) -> Box<dyn Detector> {
    Box::new(BruteForce {
        brute: Brute::new(
            c.brute_force_connections,
            c.brute_force_window.get_ref().as_nanos() as u64,
            c.brute_force_ports.clone(),
        )
        .with_short_logins(
            c.brute_force_logins,
            c.brute_force_logins_window.get_ref().as_nanos() as u64,
        ),
        flood_syns: c.syn_flood_packets.max(1),
    })
}

impl Detector for BruteForce {
    fn on_service(
        &mut self,
        _now: u64,
        key: FlowKey,
        service: &'static str,
        login: Option<bool>,
    ) -> Vec<Finding> {
        self.brute.on_service(key, service, login);
        Vec::new()
    }

    fn unfollowed(&self) -> u64 {
        self.brute.unfollowed
    }

    fn on_poll(&mut self, poll: &Poll<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for d in poll.deltas {
            if is_flood(d, self.flood_syns) {
                continue;
            }
            if let Some(g) = self.brute.on_delta(poll.now, d) {
                let mut metadata = json!({
                    "direction": [if g.inbound { "inbound" } else { "outbound" }],
                    "peer": [addr::ip(g.key.addr).to_string()],
                    "port": [g.key.port.to_string()],
                    (if g.key.proto == proto::UDP { "datagrams" } else { "connections" }):
                        [g.connections.to_string()],
                    "service": [g.service.unwrap_or("by port")],
                    "window_s": [(g.window_ns / 1_000_000_000).to_string()],
                    "pattern": [if g.short_logins.is_some() { "short logins" } else { "burst" }],
                });
                if let Some(mean) = g.short_logins {
                    metadata["bytes_per_connection"] = json!([mean.to_string()]);
                }
                out.push(Finding {
                    rule: &rules::BRUTE_FORCE,
                    mac: d.key.mac,
                    flow: None,
                    metadata,
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

    const SEC: u64 = 1_000_000_000;

    fn key(port: u16, flags: u8) -> FlowKey {
        FlowKey::from_parts(
            [0, 0, 0xffff_u32.to_be(), 0x0a00_0005_u32.to_be()],
            MacAddr([2, 0, 0, 0, 0, 1]),
            port,
            proto::TCP,
            flags,
        )
    }

    fn udp(port: u16, flags: u8) -> FlowKey {
        FlowKey::from_parts(
            [0, 0, 0xffff_u32.to_be(), 0x0a00_0005_u32.to_be()],
            MacAddr([2, 0, 0, 0, 0, 1]),
            port,
            proto::UDP,
            flags,
        )
    }

    fn syns(b: &mut Brute, now: u64, key: FlowKey, n: u64) -> Option<Guessing> {
        let d = FlowDelta {
            key,
            packets: n,
            bytes: n * 60,
            tcp_flags: 0x02,
            syns: n,
        };
        b.on_delta(now, &d)
    }

    fn datagrams(b: &mut Brute, now: u64, key: FlowKey, n: u64) -> Option<Guessing> {
        let d = FlowDelta {
            key,
            packets: n,
            bytes: n * 500,
            tcp_flags: 0,
            syns: 0,
        };
        b.on_delta(now, &d)
    }

    fn brute() -> Brute {
        Brute::new(20, 60 * SEC, vec![22, 23])
    }

    #[test]
    fn twenty_ssh_connections_in_a_minute_are_guessing() {
        let mut b = brute();
        let k = key(22, 0);
        for i in 0..19u64 {
            assert_eq!(syns(&mut b, i * SEC, k, 1), None, "{i}");
        }
        let g = syns(&mut b, 19 * SEC, k, 1).expect("the 20th");
        assert_eq!((g.connections, g.inbound, g.service), (20, false, None));
        let served = key(22, FLOW_SERVING);
        assert_eq!(
            syns(&mut b, 20 * SEC, served, 25).map(|g| g.inbound),
            Some(true),
            "the device accepting them: its own password is guessed"
        );
    }

    #[test]
    fn the_payload_says_what_is_a_login_on_any_port() {
        let mut b = brute();
        // SSH on 8022: not in the list, but its first payload is an SSH banner.
        let ssh = key(8022, 0);
        b.on_service(ssh, "ssh", Some(true));
        let got: Vec<_> = (0..20u64)
            .filter_map(|i| syns(&mut b, i * SEC, ssh, 1))
            .collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].service, Some("ssh"));
        // Port 22 speaking HTTP without credentials: a web server, not a login.
        let web = key(22, 0);
        b.on_service(web, "http", Some(false));
        assert!((0..40u64).all(|i| syns(&mut b, i * SEC, web, 1).is_none()));
        // Port 23 whose payload cannot tell (TLS): the port list decides.
        let tls = key(23, 0);
        b.on_service(tls, "tls", None);
        assert!((0..20u64).any(|i| syns(&mut b, i * SEC, tls, 1).is_some()));
    }

    #[test]
    fn slow_logins_and_other_services_are_not() {
        let mut b = brute();
        // One SSH login every four seconds: 15 a minute, for an hour.
        for i in 0..900u64 {
            assert_eq!(syns(&mut b, i * 4 * SEC, key(22, 0), 1), None, "{i}");
        }
        // HTTPS polling with a new connection a second is a chatty device, not a guess.
        for i in 0..600u64 {
            assert_eq!(syns(&mut b, i * SEC, key(443, 0), 1), None);
        }
    }

    #[test]
    fn sip_registrations_over_udp_count_by_datagram() {
        let mut b = brute();
        // A REGISTER challenged and answered, again and again: two datagrams a guess.
        let sip = udp(5060, 0);
        b.on_service(sip, "sip", Some(true));
        let got: Vec<_> = (0..60u64)
            .filter_map(|i| datagrams(&mut b, i * SEC, sip, 1))
            .collect();
        assert_eq!(got.len(), 1, "40 datagrams in a minute: one alert");
        assert_eq!(got[0].service, Some("sip"));
        assert_eq!(got[0].connections, 40);
        assert!(!got[0].inbound);
        // The device answering them with 401s and 403s: its own accounts guessed.
        let served = udp(5060, FLOW_SERVING);
        b.on_service(served, "sip", Some(true));
        assert_eq!(
            datagrams(&mut b, 0, served, 45).map(|g| g.inbound),
            Some(true)
        );
    }

    #[test]
    fn udp_without_a_login_payload_is_never_counted() {
        let mut b = brute();
        // A phone that re-registers every minute and whose REGISTER goes unanswered:
        // RFC 3261's Timer E resends it 11 times in 32 s, never 40 in a minute.
        let phone = udp(5060, 0);
        b.on_service(phone, "sip", Some(true));
        for minute in 0..60u64 {
            assert_eq!(datagrams(&mut b, minute * 60 * SEC, phone, 11), None);
        }
        // A SIP flow that is not a login (OPTIONS keepalives), and a UDP port in the
        // list with no payload seen: however many datagrams, no guess.
        let keepalive = udp(5061, 0);
        b.on_service(keepalive, "sip", Some(false));
        let bare = udp(22, 0);
        for i in 0..120u64 {
            assert_eq!(datagrams(&mut b, i * SEC, keepalive, 5), None);
            assert_eq!(datagrams(&mut b, i * SEC, bare, 5), None);
        }
    }

    fn conns(b: &mut Brute, now: u64, key: FlowKey, n: u64, bytes: u64) -> Option<Guessing> {
        let d = FlowDelta {
            key,
            packets: n * 10,
            bytes,
            tcp_flags: 0x1b,
            syns: n,
        };
        b.on_delta(now, &d)
    }

    fn slow() -> Brute {
        brute().with_short_logins(5, 600 * SEC)
    }

    #[test]
    fn a_few_short_ssh_logins_minutes_apart_are_guessing() {
        let mut b = slow();
        let ssh = key(22, 0);
        b.on_service(ssh, "ssh", Some(true));
        // Five refused logins, one every 90 s, each about 3 KB sent.
        let got: Vec<_> = (0..5u64)
            .filter_map(|i| conns(&mut b, i * 90 * SEC, ssh, 1, 3_000))
            .collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].connections, 5);
        assert_eq!(got[0].short_logins, Some(3_000));
        assert_eq!(got[0].window_ns, 600 * SEC);
        // Inbound: the device's own SSH server refusing them, on its serving flow.
        let served = key(2222, FLOW_SERVING);
        b.on_service(served, "ssh", Some(true));
        let got: Vec<_> = (0..5u64)
            .filter_map(|i| conns(&mut b, i * 30 * SEC, served, 1, 2_500))
            .collect();
        assert_eq!(got.iter().map(|g| g.inbound).collect::<Vec<_>>(), [true]);
    }

    #[test]
    fn sessions_that_work_spread_out_logins_and_other_services_are_not() {
        let mut b = slow();
        // Five SSH sessions that each upload 200 KB: logins that did something.
        let work = key(22, 0);
        b.on_service(work, "ssh", Some(true));
        for i in 0..5u64 {
            assert_eq!(conns(&mut b, i * 60 * SEC, work, 1, 3_000), None);
            assert_eq!(conns(&mut b, i * 60 * SEC + SEC, work, 0, 200_000), None);
        }
        // Short logins, but one every three minutes: never five in ten minutes.
        let cron = key(2200, 0);
        b.on_service(cron, "ssh", Some(true));
        for i in 0..40u64 {
            assert_eq!(conns(&mut b, i * 180 * SEC, cron, 1, 3_000), None, "{i}");
        }
        // FTP and the port list alone: only the burst counts there.
        let ftp = key(21, 0);
        b.on_service(ftp, "ftp", Some(true));
        let bare = key(23, 0);
        for i in 0..10u64 {
            assert_eq!(conns(&mut b, i * 30 * SEC, ftp, 1, 300), None);
            assert_eq!(conns(&mut b, i * 30 * SEC, bare, 1, 300), None);
        }
    }
}
