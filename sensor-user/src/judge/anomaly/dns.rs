//! DNS tunnels and domain-generation algorithms, from what the sensor already sees: the
//! queries devices send (copied by the XDP program) and the NXDOMAIN answers the gateway
//! returns (copied on egress).
//!
//! A tunnel carries data in the labels under a domain its operator controls: many
//! distinct, long, random-looking names under one registered domain in a short window,
//! often asking for TXT or NULL records (iodine asks NULL, dnscat2 TXT, CNAME and MX). A
//! DGA bot looks for its command server among generated names: a burst of NXDOMAIN for
//! random-looking names in many registered domains. An IoT device does neither: it asks
//! for a handful of fixed cloud names, again and again.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    net::IpAddr,
};

use ipnet::IpNet;

use sensor_common::MacAddr;
use serde_json::json;

use super::{Detector, Finding};
use crate::{config::AnomalyConfig, discover::dns::DnsQuery, judge::rules};

/// TXT and NULL: the record types a tunnel fills with data.
const TUNNEL_QTYPES: [u16; 2] = [16, 10];
/// Record types an IoT device has no reason to ask a resolver for, and tunnels and DNS
/// command channels rotate through (dnscat2 asks TXT, CNAME and MX; iodine NULL, and
/// others when NULL is filtered): TXT, NULL, MX, CNAME, ANY (RFC 1035 and 8482 numbers).
/// A device asks A and AAAA, and SRV, PTR and TXT of `_service` names for discovery.
const ODD_QTYPES: [u16; 5] = [16, 10, 15, 5, 255];
/// The slow watch's window: a channel that stays under the fast window's count.
const SLOW_WINDOW_NS: u64 = 3_600_000_000_000;
/// A name this long with an encoded part counts in the slow watch: 52 characters, the
/// length Farnham's "Detecting DNS Tunneling" (SANS Reading Room, 2013) has a sensor
/// flag, where ordinary names (a cloud's, a CDN's) stay under it.
const SLOW_NAME_CHARS: usize = 52;
/// Distinct long encoded names, or queries of an odd type, under one registered domain
/// in the slow window that make a tunnel: tens of queries an hour, what a low and slow
/// command channel sends and what no device's own lookups add up to.
const SLOW_COUNT: usize = 10;
/// Public resolvers devices and their firmware are set to use, from their operators'
/// pages: Google Public DNS ("Get started", developers.google.com/speed/public-dns),
/// Cloudflare ("1.1.1.1 IP addresses", developers.cloudflare.com), Quad9 ("Service
/// addresses and features", quad9.net), Cisco OpenDNS ("OpenDNS IP addresses",
/// opendns.com), and the four that devices sold in China default to: AliDNS (alidns.com),
/// 114DNS (114dns.com), DNSPod Public DNS (dnspod.cn) and Baidu Public DNS
/// (dudns.baidu.com). A query to a resolver outside the LAN that is neither one of these
/// nor declared (`[anomaly] dns_servers`) goes to a server someone chose: a tunnel's own
/// name server, or a command channel's.
const PUBLIC_RESOLVERS: [&str; 24] = [
    "8.8.8.8",
    "8.8.4.4",
    "2001:4860:4860::8888",
    "2001:4860:4860::8844",
    "1.1.1.1",
    "1.0.0.1",
    "2606:4700:4700::1111",
    "2606:4700:4700::1001",
    "9.9.9.9",
    "149.112.112.112",
    "2620:fe::fe",
    "2620:fe::9",
    "208.67.222.222",
    "208.67.220.220",
    "2620:119:35::35",
    "2620:119:53::53",
    "223.5.5.5",
    "223.6.6.6",
    "2400:3200::1",
    "2400:3200:baba::1",
    "114.114.114.114",
    "114.114.115.115",
    "119.29.29.29",
    "180.76.76.76",
];

/// [`PUBLIC_RESOLVERS`] parsed, once.
static PUBLIC: std::sync::LazyLock<Vec<IpAddr>> = std::sync::LazyLock::new(|| {
    PUBLIC_RESOLVERS
        .iter()
        .map(|p| p.parse().expect("a public resolver's address"))
        .collect()
});

/// Which resolver a query went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolver {
    /// On the LAN (the gateway's, mostly).
    Lan,
    /// Declared in `[anomaly] dns_servers`.
    Declared,
    /// One of [`PUBLIC_RESOLVERS`].
    Public,
    /// Any other: a server someone chose.
    Other,
}

impl Resolver {
    /// Its name in `alert.metadata`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lan => "lan",
            Self::Declared => "declared",
            Self::Public => "public",
            Self::Other => "other",
        }
    }
}

/// The kind of resolver `server` is; `lan` when the sensor counts it as the LAN's.
pub fn resolver(server: Option<IpAddr>, lan: bool, declared: &[IpNet]) -> Resolver {
    let Some(a) = server else {
        return Resolver::Lan;
    };
    if lan {
        Resolver::Lan
    } else if declared.iter().any(|n| n.contains(&a)) {
        Resolver::Declared
    } else if PUBLIC.contains(&a) {
        Resolver::Public
    } else {
        Resolver::Other
    }
}

/// Registered domains watched per device; the stalest is forgotten past this.
const MAX_DOMAINS_PER_DEVICE: usize = 256;

/// Thresholds, from `[anomaly]`.
#[derive(Clone, Copy, Debug)]
pub struct DnsThresholds {
    /// Window, ns.
    pub window_ns: u64,
    /// Distinct encoded names under one registered domain in a window that make a tunnel.
    pub tunnel_names: usize,
    /// Characters (the labels left of the registered domain) that make a name encoded...
    pub tunnel_min_chars: usize,
    /// ... with at least this Shannon entropy, bits per character.
    pub tunnel_entropy: f64,
    /// Distinct registered domains answered NXDOMAIN in a window that make a DGA ...
    pub dga_domains: usize,
    /// ... each with a label under its public suffix of at least 8 characters and this
    /// entropy.
    pub dga_entropy: f64,
}

/// What a detector found.
#[derive(Clone, Debug, PartialEq)]
pub enum DnsFinding {
    /// A tunnel under `domain`: `names` distinct encoded names in the window, `typed` of
    /// them asking TXT or NULL; two of them as examples.
    Tunnel {
        /// The registered domain.
        domain: String,
        /// Distinct encoded names in the window.
        names: usize,
        /// Of them, asking for TXT or NULL.
        typed: usize,
        /// `fast` (the `[anomaly]` window) or `slow` (an hour: long names, or odd types).
        pace: &'static str,
        /// Queries of an odd type (TXT, NULL, MX, CNAME, ANY) under the domain in the
        /// slow window, and which types.
        odd: usize,
        /// The odd types asked.
        odd_types: Vec<u16>,
        /// Examples.
        examples: Vec<String>,
    },
    /// Generated names: `domains` random-looking registered domains answered NXDOMAIN.
    Dga {
        /// Distinct registered domains in the window.
        domains: usize,
        /// `fast` (the `[anomaly]` window) or `slow` (an hour, weighted by how random).
        pace: &'static str,
        /// Examples.
        examples: Vec<String>,
    },
}

/// Distinct items in a sliding window, bounded.
#[derive(Debug, Default)]
struct Recent {
    seen: VecDeque<(u64, String, bool)>,
    distinct: HashSet<String>,
}

impl Recent {
    /// Adds `item` at `now` (flagged `typed`), forgets what left the window; returns the
    /// distinct items and how many of them are typed.
    fn add(
        &mut self,
        now: u64,
        window: u64,
        item: String,
        typed: bool,
        cap: usize,
    ) -> (usize, usize) {
        while let Some((t, _, _)) = self.seen.front() {
            if now.saturating_sub(*t) < window && self.seen.len() < cap {
                break;
            }
            // Each item is in `seen` once (only its first sight is kept).
            let (_, old, _) = self.seen.pop_front().expect("front exists");
            self.distinct.remove(&old);
        }
        if self.distinct.insert(item.clone()) {
            self.seen.push_back((now, item, typed));
        }
        let typed = self.seen.iter().filter(|(_, _, t)| *t).count();
        (self.distinct.len(), typed)
    }

    fn examples(&self) -> Vec<String> {
        self.seen
            .iter()
            .rev()
            .take(2)
            .map(|(_, s, _)| s.clone())
            .collect()
    }

    fn clear(&mut self) {
        self.seen.clear();
        self.distinct.clear();
    }
}

/// One query as both watches take it: when, from whom, the name split at its registered
/// domain, and whether the part left of it is encoded.
#[derive(Clone, Copy)]
struct Query<'a> {
    now: u64,
    mac: MacAddr,
    name: &'a str,
    qtype: u16,
    sub: &'a str,
    domain: &'a str,
    encoded: bool,
    /// Sent to a resolver someone chose ([`Resolver::Other`]).
    chosen: bool,
}

/// One domain in the slow watch: its long encoded names, and its odd-type queries
/// (time, type), in the slow window.
#[derive(Debug, Default)]
struct Slow {
    long: Recent,
    odd: VecDeque<(u64, u16)>,
    /// When it was last said: once an hour is enough.
    said: Option<u64>,
}

/// The detectors' state.
#[derive(Debug)]
pub struct DnsWatch {
    t: DnsThresholds,
    tunnels: HashMap<MacAddr, HashMap<String, (u64, Recent)>>,
    slow: HashMap<MacAddr, HashMap<String, (u64, Slow)>>,
    nx: HashMap<MacAddr, Recent>,
    /// NXDOMAIN'd random-looking domains over the slow window, with their weights.
    nx_slow: HashMap<MacAddr, (Recent, HashMap<String, usize>)>,
}

/// How much a generated-looking label weighs in the slow NXDOMAIN watch: 2 when it looks
/// strongly generated, 1 otherwise. Strongly: 12 characters or more, and letters mixed
/// with digits or a run of 5 consonants (English words joined into a name make runs of
/// 4: "lightingcloud"), features of FANCI's classifier of generated
/// domains (Schüppen et al., "FANCI: Feature-based Automated NXDomain Classification and
/// Intelligence", USENIX Security 2018: contains digits, longest consonant sequence)
/// that words and brand names rarely have together with such a length.
fn weight(label: &str) -> usize {
    let letters = label.chars().any(|c| c.is_ascii_alphabetic());
    let digits = label.chars().any(|c| c.is_ascii_digit());
    let mut run = 0usize;
    let mut longest = 0usize;
    for c in label.chars() {
        if c.is_ascii_alphabetic() && !"aeiouy".contains(c) {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    if label.chars().count() >= 12 && ((letters && digits) || longest >= 5) {
        2
    } else {
        1
    }
}

/// The entry for `domain` in `per`, the stalest dropped when [`MAX_DOMAINS_PER_DEVICE`]
/// are watched; its last use set to `now`.
fn domain_entry<'a, T: Default>(
    per: &'a mut HashMap<String, (u64, T)>,
    domain: &str,
    now: u64,
) -> &'a mut T {
    if !per.contains_key(domain) && per.len() >= MAX_DOMAINS_PER_DEVICE {
        let stalest = per
            .iter()
            .min_by_key(|(_, (t, _))| *t)
            .map(|(d, _)| d.clone())
            .expect("not empty");
        per.remove(&stalest);
    }
    let (last, v) = per.entry(domain.to_string()).or_default();
    *last = now;
    v
}

/// Shannon entropy of `s`, bits per character.
pub fn entropy(s: &str) -> f64 {
    let mut counts: HashMap<char, usize> = HashMap::new();
    let mut n = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_default() += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n as f64;
            -p * p.log2()
        })
        .sum()
}

/// `name` split at its registered domain (Public Suffix List): the labels left of it and
/// the registered domain. A name that is itself a suffix, or has no dot, has no
/// registered domain.
pub fn split_registered(name: &str) -> Option<(&str, &str)> {
    let domain = psl::domain_str(name)?;
    let sub = name.strip_suffix(domain)?.trim_end_matches('.');
    Some((sub, domain))
}

impl DnsWatch {
    /// With the thresholds.
    pub fn new(t: DnsThresholds) -> Self {
        Self {
            t,
            tunnels: HashMap::new(),
            slow: HashMap::new(),
            nx: HashMap::new(),
            nx_slow: HashMap::new(),
        }
    }

    /// The window, ns.
    pub fn window_ns(&self) -> u64 {
        self.t.window_ns
    }

    /// Whether the part of a name left of its registered domain carries data: long and
    /// random-looking (dots do not count: tunnels split data over labels).
    fn encoded(&self, sub: &str) -> bool {
        let data: String = sub.chars().filter(|c| *c != '.').collect();
        data.chars().count() >= self.t.tunnel_min_chars && entropy(&data) >= self.t.tunnel_entropy
    }

    /// A query `name` for record type `qtype` from device `mac` at kernel time `now`,
    /// sent to `resolver`.
    pub fn on_query(
        &mut self,
        now: u64,
        mac: MacAddr,
        name: &str,
        qtype: u16,
        resolver: Resolver,
    ) -> Option<DnsFinding> {
        let (sub, domain) = split_registered(name)?;
        let q = Query {
            now,
            mac,
            name,
            qtype,
            sub,
            domain,
            encoded: self.encoded(sub),
            chosen: resolver == Resolver::Other,
        };
        self.fast(&q).or_else(|| self.slow(&q))
    }

    /// Many encoded names under one domain within `[anomaly] dns_window`.
    fn fast(&mut self, q: &Query<'_>) -> Option<DnsFinding> {
        let Query {
            now,
            mac,
            name,
            qtype,
            sub,
            domain,
            encoded,
            ..
        } = *q;
        let typed = TUNNEL_QTYPES.contains(&qtype);
        // A TXT or NULL query counts with any subdomain of a few characters: the record
        // type is already a tunnel's (NULL is obsolete; a device's TXT lookups are of fixed
        // `_service` names), and a tunnel's handshake and short polls use short names.
        let long_enough = encoded
            || (typed && !sub.starts_with('_') && sub.chars().filter(|c| *c != '.').count() >= 6);
        if !long_enough {
            return None;
        }
        let recent = domain_entry(self.tunnels.entry(mac).or_default(), domain, now);
        let cap = self.t.tunnel_names * 4;
        let (names, typed_n) = recent.add(now, self.t.window_ns, name.to_string(), typed, cap);
        if names < self.t.tunnel_names {
            return None;
        }
        let found = DnsFinding::Tunnel {
            domain: domain.to_string(),
            names,
            typed: typed_n,
            pace: "fast",
            odd: 0,
            odd_types: Vec::new(),
            examples: recent.examples(),
        };
        // Start counting again: the next alert is about the next window's worth.
        recent.clear();
        Some(found)
    }

    /// A low and slow channel: within an hour, [`SLOW_COUNT`] long encoded names under
    /// one domain, or as many queries of an odd type (a TXT command channel asks the same
    /// name again and again; a rotating tunnel spreads over TXT, MX and CNAME).
    fn slow(&mut self, q: &Query<'_>) -> Option<DnsFinding> {
        let Query {
            now,
            mac,
            name,
            qtype,
            sub,
            domain,
            encoded,
            ..
        } = *q;
        // Through a resolver someone chose, any encoded name counts: the answer comes from
        // the channel's own server, and no length is needed to tell it from a cloud's.
        let long = encoded && (name.len() >= SLOW_NAME_CHARS || q.chosen);
        let odd = ODD_QTYPES.contains(&qtype) && !sub.starts_with('_');
        if !long && !odd {
            return None;
        }
        let g = domain_entry(self.slow.entry(mac).or_default(), domain, now);
        if g.said
            .is_some_and(|t| now.saturating_sub(t) < SLOW_WINDOW_NS)
        {
            return None;
        }
        let (names, _) = if long {
            g.long
                .add(now, SLOW_WINDOW_NS, name.to_string(), false, SLOW_COUNT * 4)
        } else {
            (g.long.distinct.len(), 0)
        };
        if odd {
            g.odd.push_back((now, qtype));
        }
        while g
            .odd
            .front()
            .is_some_and(|(t, _)| now.saturating_sub(*t) >= SLOW_WINDOW_NS)
            || g.odd.len() > SLOW_COUNT * 4
        {
            g.odd.pop_front();
        }
        if names < SLOW_COUNT && g.odd.len() < SLOW_COUNT {
            return None;
        }
        let mut odd_types: Vec<u16> = g.odd.iter().map(|(_, t)| *t).collect();
        odd_types.sort_unstable();
        odd_types.dedup();
        let typed = g
            .odd
            .iter()
            .filter(|(_, t)| TUNNEL_QTYPES.contains(t))
            .count();
        let mut examples = g.long.examples();
        if examples.is_empty() {
            examples.push(name.to_string());
        }
        let found = DnsFinding::Tunnel {
            domain: domain.to_string(),
            names,
            typed,
            pace: "slow",
            odd: g.odd.len(),
            odd_types,
            examples,
        };
        g.long.clear();
        g.odd.clear();
        g.said = Some(now);
        Some(found)
    }

    /// The gateway told device `mac` at kernel time `now` that `name` does not exist.
    pub fn on_nxdomain(&mut self, now: u64, mac: MacAddr, name: &str) -> Option<DnsFinding> {
        let (_, domain) = split_registered(name)?;
        // The label under the public suffix is what a DGA generates.
        let label = domain.split('.').next().unwrap_or("");
        if label.chars().count() < 8 || entropy(label) < self.t.dga_entropy {
            return None;
        }
        let recent = self.nx.entry(mac).or_default();
        let cap = self.t.dga_domains * 4;
        let (domains, _) = recent.add(now, self.t.window_ns, domain.to_string(), false, cap);
        if domains >= self.t.dga_domains {
            let found = DnsFinding::Dga {
                domains,
                pace: "fast",
                examples: recent.examples(),
            };
            recent.clear();
            self.nx_slow.remove(&mac);
            return Some(found);
        }
        // A few small bursts over the hour: each name weighs by how generated it looks.
        let (recent, weights) = self.nx_slow.entry(mac).or_default();
        let (domains, _) = recent.add(
            now,
            SLOW_WINDOW_NS,
            domain.to_string(),
            false,
            SLOW_COUNT * 4,
        );
        weights.insert(domain.to_string(), weight(label));
        weights.retain(|d, _| recent.distinct.contains(d));
        if weights.values().sum::<usize>() < SLOW_COUNT {
            return None;
        }
        let found = DnsFinding::Dga {
            domains,
            pace: "slow",
            examples: recent.examples(),
        };
        recent.clear();
        weights.clear();
        Some(found)
    }
}

/// The detector: `dns_tunnel` and `dga_activity` from [`DnsWatch`].
pub struct DnsDetector {
    watch: DnsWatch,
    /// `[anomaly] dns_servers`.
    declared: Vec<IpNet>,
}

/// The detector, with `[anomaly]`'s DNS thresholds.
pub fn detector(c: &AnomalyConfig) -> Box<dyn Detector> {
    Box::new(DnsDetector {
        declared: super::servers::nets(&c.dns_servers),
        watch: DnsWatch::new(DnsThresholds {
            window_ns: c.dns_window.get_ref().as_nanos() as u64,
            tunnel_names: c.dns_tunnel_names.max(2),
            tunnel_min_chars: c.dns_tunnel_chars,
            tunnel_entropy: c.dns_tunnel_entropy,
            dga_domains: c.dga_domains.max(2),
            dga_entropy: c.dga_entropy,
        }),
    })
}

/// A record type's mnemonic (RFC 1035, RFC 8482 for ANY).
fn qtype_name(t: u16) -> String {
    match t {
        5 => "CNAME".into(),
        10 => "NULL".into(),
        15 => "MX".into(),
        16 => "TXT".into(),
        255 => "ANY".into(),
        n => n.to_string(),
    }
}

impl DnsDetector {
    fn finding(&self, mac: MacAddr, f: DnsFinding) -> Finding {
        let window_s = [(self.watch.window_ns() / 1_000_000_000).to_string()];
        let (rule, metadata) = match f {
            DnsFinding::Tunnel {
                domain,
                names,
                typed,
                pace,
                odd,
                odd_types,
                examples,
            } => (
                &rules::DNS_TUNNEL,
                json!({
                    "domain": [domain],
                    "names": [names.to_string()],
                    "txt_or_null": [typed.to_string()],
                    "pace": [pace],
                    "odd_type_queries": [odd.to_string()],
                    "odd_types": odd_types.iter().map(|t| qtype_name(*t)).collect::<Vec<_>>(),
                    "window_s": if pace == "slow" {
                        [(SLOW_WINDOW_NS / 1_000_000_000).to_string()]
                    } else {
                        window_s
                    },
                    "examples": examples,
                }),
            ),
            DnsFinding::Dga {
                domains,
                pace,
                examples,
            } => (
                &rules::DGA_ACTIVITY,
                json!({
                    "nxdomain_domains": [domains.to_string()],
                    "pace": [pace],
                    "window_s": if pace == "slow" {
                        [(SLOW_WINDOW_NS / 1_000_000_000).to_string()]
                    } else {
                        window_s
                    },
                    "examples": examples,
                }),
            ),
        };
        Finding {
            rule,
            mac,
            flow: None,
            metadata,
        }
    }
}

impl Detector for DnsDetector {
    fn on_dns_query(&mut self, now: u64, mac: MacAddr, q: &DnsQuery, lan: bool) -> Vec<Finding> {
        let kind = resolver(q.server, lan, &self.declared);
        let mut out = Vec::new();
        for (i, name) in q.names.iter().enumerate() {
            let qtype = q.qtypes.get(i).copied().unwrap_or(0);
            if let Some(f) = self.watch.on_query(now, mac, name, qtype, kind) {
                let mut found = self.finding(mac, f);
                found.metadata["resolver"] = json!([kind.as_str()]);
                if let Some(a) = q.server {
                    found.metadata["resolver_address"] = json!([a.to_string()]);
                }
                out.push(found);
            }
        }
        out
    }

    fn on_nxdomain(&mut self, now: u64, mac: MacAddr, name: &str) -> Vec<Finding> {
        match self.watch.on_nxdomain(now, mac, name) {
            Some(f) => vec![self.finding(mac, f)],
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const SEC: u64 = 1_000_000_000;

    /// A query through the LAN's resolver.
    fn on_lan(w: &mut DnsWatch, now: u64, m: MacAddr, name: &str, t: u16) -> Option<DnsFinding> {
        w.on_query(now, m, name, t, Resolver::Lan)
    }

    fn watch() -> DnsWatch {
        DnsWatch::new(DnsThresholds {
            window_ns: 60 * SEC,
            tunnel_names: 30,
            tunnel_min_chars: 20,
            tunnel_entropy: 3.0,
            dga_domains: 10,
            dga_entropy: 2.5,
        })
    }

    /// A base32 label of `n` characters from a simple generator (what iodine and dnscat2
    /// put in their names).
    fn base32(seed: u64, n: usize) -> String {
        const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                A[(x % 32) as usize] as char
            })
            .collect()
    }

    #[test]
    fn registered_domains_come_from_the_public_suffix_list() {
        assert_eq!(
            split_registered("a1b2.t.tunnel.example.co.uk"),
            Some(("a1b2.t.tunnel", "example.co.uk"))
        );
        assert_eq!(split_registered("co.uk"), None);
        assert!(entropy("aaaa") < 0.01 && entropy(&base32(1, 64)) > 4.0);
    }

    #[test]
    fn many_encoded_names_under_one_domain_are_a_tunnel() {
        let mut w = watch();
        let mut all = Vec::new();
        for i in 0..40u64 {
            let name = format!("{}.{}.pirate.example", base32(i, 40), base32(i + 100, 20));
            all.extend(on_lan(&mut w, i * SEC / 2, M, &name, 10));
        }
        // NULL is an odd type: the slow watch says it at the tenth, once an hour.
        assert!(
            matches!(
                &all[0],
                DnsFinding::Tunnel {
                    pace: "slow",
                    odd: 10,
                    ..
                }
            ),
            "{all:?}"
        );
        let found = all.get(1).cloned();
        assert_eq!(all.len(), 2, "{all:?}");
        let Some(DnsFinding::Tunnel {
            domain,
            names,
            typed,
            pace,
            examples,
            ..
        }) = found
        else {
            panic!("no tunnel: {found:?}");
        };
        assert_eq!(domain, "pirate.example");
        assert_eq!(names, 30);
        assert_eq!(typed, 30, "every one asked NULL");
        assert_eq!(pace, "fast");
        assert_eq!(examples.len(), 2);
    }

    #[test]
    fn a_device_asking_its_cloud_names_again_and_again_is_no_tunnel() {
        let mut w = watch();
        let names = [
            "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com",
            "time.cloudflare.com",
            "devs.tplinkcloud.com",
            "r3---sn-4g5e6nsz.googlevideo.com",
            "e1234.dscb.akamaiedge.net",
        ];
        for i in 0..10_000u64 {
            let n = names[(i % names.len() as u64) as usize];
            assert_eq!(on_lan(&mut w, i * SEC, M, n, 1), None, "{n}");
        }
        // Under the fast window's count, and names short of 52 characters: 29 distinct
        // encoded names a minute, every minute, for ten minutes.
        let mut w = watch();
        for i in 0..290u64 {
            let name = format!("{}.slow.example", base32(i, 30));
            assert_eq!(on_lan(&mut w, i * 60 * SEC / 29, M, &name, 1), None, "{i}");
        }
    }

    #[test]
    fn a_low_and_slow_channel_is_a_tunnel_within_the_hour() {
        // Ten long encoded names, six minutes apart: under any per-minute count.
        let mut w = watch();
        let mut found = Vec::new();
        for i in 0..12u64 {
            let name = format!("{}.{}.slow.example", base32(i, 40), base32(i + 7, 12));
            found.extend(on_lan(&mut w, i * 360 * SEC, M, &name, 1));
        }
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            matches!(&found[0], DnsFinding::Tunnel { pace: "slow", names: 10, domain, .. } if domain == "slow.example"),
            "{found:?}"
        );
    }

    #[test]
    fn short_encoded_names_through_a_resolver_someone_chose_are_a_tunnel() {
        // 24-character encoded names (under the 52 the LAN's resolver needs), six
        // minutes apart: through a server of the channel's own, ten in the hour are a
        // tunnel; through the LAN's resolver or a public one they are not.
        for (kind, tunnel) in [
            (Resolver::Other, true),
            (Resolver::Lan, false),
            (Resolver::Public, false),
            (Resolver::Declared, false),
        ] {
            let mut w = watch();
            let found: Vec<_> = (0..12u64)
                .filter_map(|i| {
                    let name = format!("{}.ns.example", base32(i, 24));
                    w.on_query(i * 360 * SEC, M, &name, 1, kind)
                })
                .collect();
            assert_eq!(found.len(), usize::from(tunnel), "{kind:?}: {found:?}");
        }
    }

    #[test]
    fn resolvers_by_kind() {
        let declared: Vec<IpNet> = vec!["192.0.2.53/32".parse().unwrap()];
        let at = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(resolver(at("198.51.100.1"), true, &declared), Resolver::Lan);
        assert_eq!(
            resolver(at("192.0.2.53"), false, &declared),
            Resolver::Declared
        );
        assert_eq!(resolver(at("8.8.8.8"), false, &declared), Resolver::Public);
        assert_eq!(
            resolver(at("2606:4700:4700::1111"), false, &declared),
            Resolver::Public
        );
        assert_eq!(
            resolver(at("203.0.113.53"), false, &declared),
            Resolver::Other
        );
        assert_eq!(
            resolver(None, false, &declared),
            Resolver::Lan,
            "unknown: the usual"
        );
        for p in PUBLIC_RESOLVERS {
            assert_eq!(resolver(at(p), false, &[]), Resolver::Public, "{p}");
        }
    }

    #[test]
    fn a_txt_command_channel_and_rotating_types_are_tunnels() {
        // One name asked TXT every five minutes: the answer carries the orders.
        let mut w = watch();
        let found: Vec<_> = (0..10u64)
            .filter_map(|i| on_lan(&mut w, i * 300 * SEC, M, "cmd.c2.example", 16))
            .collect();
        assert!(
            matches!(&found[..], [DnsFinding::Tunnel { pace: "slow", odd: 10, odd_types, .. }] if odd_types == &[16]),
            "{found:?}"
        );
        // dnscat2's rotation: CNAME, MX, TXT over short names, a minute apart.
        let mut w = watch();
        let found: Vec<_> = (0..10u64)
            .filter_map(|i| {
                let t = [5, 15, 16][(i % 3) as usize];
                on_lan(&mut w, i * 60 * SEC, M, &format!("{i:x}.dc.example"), t)
            })
            .collect();
        assert!(
            matches!(&found[..], [DnsFinding::Tunnel { odd_types, .. }] if odd_types == &[5, 15, 16]),
            "{found:?}"
        );
        // Service discovery and ordinary lookups are not odd: an hour of them.
        let mut w = watch();
        for i in 0..3600u64 {
            let (n, t) = [
                ("_googlecast._tcp.local.example", 16),
                ("_ipp._tcp.example", 33),
                ("cloud.example", 1),
                ("cloud.example", 28),
            ][(i % 4) as usize];
            assert_eq!(on_lan(&mut w, i * SEC, M, n, t), None, "{n}");
        }
    }

    #[test]
    fn short_names_count_only_when_asking_txt_or_null() {
        let mut w = watch();
        let mut found = Vec::new();
        for i in 0..40u64 {
            let name = format!("p{i:05}.poll.example");
            assert_eq!(
                on_lan(&mut w, i * SEC, M, &name, 1),
                None,
                "an A query for a short name"
            );
            found.extend(on_lan(&mut w, i * SEC, M, &name, 16));
        }
        // The tenth TXT query makes the slow watch's count, the thirtieth the fast one's.
        assert!(
            matches!(
                &found[..],
                [
                    DnsFinding::Tunnel {
                        pace: "slow",
                        odd: 10,
                        ..
                    },
                    DnsFinding::Tunnel {
                        pace: "fast",
                        typed: 30,
                        ..
                    }
                ]
            ),
            "{found:?}"
        );
        let mut w = watch();
        for i in 0..40u64 {
            let name = format!("_svc{i}._tcp.example");
            assert_eq!(
                on_lan(&mut w, i * SEC, M, &name, 16),
                None,
                "service-discovery TXT"
            );
        }
    }

    #[test]
    fn nxdomain_bursts_for_random_domains_are_a_dga_and_typos_are_not() {
        let mut w = watch();
        for i in 0..20u64 {
            assert_eq!(w.on_nxdomain(i * SEC, M, "wpad.lan"), None);
            assert_eq!(w.on_nxdomain(i * SEC, M, "printer.home.arpa"), None);
            assert_eq!(
                w.on_nxdomain(i * SEC, M, &format!("cloud{i}.example.com")),
                None
            );
        }
        let mut found = None;
        for i in 0..12u64 {
            // Ten characters: generated-looking, but short of the slow watch's double
            // weight, so the minute's count says it first.
            let name = format!("www.{}.com", base32(i, 10));
            found = found.or(w.on_nxdomain(100 * SEC + i * SEC, M, &name));
        }
        match found {
            Some(DnsFinding::Dga {
                domains,
                pace,
                examples,
            }) => {
                assert_eq!((domains, pace), (10, "fast"));
                assert!(examples[0].ends_with(".com"), "{examples:?}");
            }
            other => panic!("no DGA: {other:?}"),
        }
    }

    #[test]
    fn a_few_small_bursts_of_generated_names_over_the_hour_are_a_dga() {
        // Bursts of two names, twenty minutes apart: far under the minute's count.
        let mut w = watch();
        let mut found = Vec::new();
        let name = |i: u64| format!("{}{}.net", base32(i, 11), i % 6 + 2);
        for i in 0..4u64 {
            found.extend(w.on_nxdomain((i / 2) * 1200 * SEC + (i % 2) * SEC, M, &name(i)));
        }
        assert!(found.is_empty(), "four names: {found:?}");
        found.extend(w.on_nxdomain(2400 * SEC, M, &name(4)));
        assert!(
            matches!(
                &found[..],
                [DnsFinding::Dga {
                    domains: 5,
                    pace: "slow",
                    ..
                }]
            ),
            "five strongly generated names within the hour weigh 10: {found:?}"
        );
        // Word-like names that do not exist (a device's dead cloud, typos) weigh one
        // each, and nine of them in an hour are not enough.
        let mut w = watch();
        for (i, d) in [
            "cloudservice",
            "smartgadgets",
            "homeautomate",
            "kitchenhelper",
            "weatherfeeds",
            "lightingcloud",
            "thermostatapi",
            "doorbellhub",
            "cameraportal",
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(weight(d), 1, "{d}");
            assert_eq!(
                w.on_nxdomain(i as u64 * 300 * SEC, M, &format!("{d}.com")),
                None
            );
        }
        assert_eq!(weight("xkcd7f3q9zpl2"), 2);
        assert_eq!(weight("qwrtzpsdfghk"), 2, "a long consonant run");
    }
}
