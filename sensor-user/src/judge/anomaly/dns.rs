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

use std::collections::{HashMap, HashSet, VecDeque};

use sensor_common::MacAddr;
use serde_json::json;

use super::{Detector, Finding};
use crate::{config::AnomalyConfig, discover::dns::DnsQuery, judge::rules};

/// TXT and NULL: the record types a tunnel fills with data.
const TUNNEL_QTYPES: [u16; 2] = [16, 10];
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
        /// Examples.
        examples: Vec<String>,
    },
    /// Generated names: `domains` random-looking registered domains answered NXDOMAIN.
    Dga {
        /// Distinct registered domains in the window.
        domains: usize,
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

/// The detectors' state.
#[derive(Debug)]
pub struct DnsWatch {
    t: DnsThresholds,
    tunnels: HashMap<MacAddr, HashMap<String, (u64, Recent)>>,
    nx: HashMap<MacAddr, Recent>,
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
            nx: HashMap::new(),
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

    /// A query `name` for record type `qtype` from device `mac` at kernel time `now`.
    pub fn on_query(
        &mut self,
        now: u64,
        mac: MacAddr,
        name: &str,
        qtype: u16,
    ) -> Option<DnsFinding> {
        let (sub, domain) = split_registered(name)?;
        let typed = TUNNEL_QTYPES.contains(&qtype);
        // A TXT or NULL query counts with any subdomain of a few characters: the record
        // type is already a tunnel's (NULL is obsolete; a device's TXT lookups are of fixed
        // `_service` names), and a tunnel's handshake and short polls use short names.
        let long_enough = self.encoded(sub)
            || (typed && !sub.starts_with('_') && sub.chars().filter(|c| *c != '.').count() >= 6);
        if !long_enough {
            return None;
        }
        let per = self.tunnels.entry(mac).or_default();
        if !per.contains_key(domain) && per.len() >= MAX_DOMAINS_PER_DEVICE {
            let stalest = per
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(d, _)| d.clone())
                .expect("not empty");
            per.remove(&stalest);
        }
        let (last, recent) = per.entry(domain.to_string()).or_default();
        *last = now;
        let cap = self.t.tunnel_names * 4;
        let (names, typed_n) = recent.add(now, self.t.window_ns, name.to_string(), typed, cap);
        if names < self.t.tunnel_names {
            return None;
        }
        let found = DnsFinding::Tunnel {
            domain: domain.to_string(),
            names,
            typed: typed_n,
            examples: recent.examples(),
        };
        // Start counting again: the next alert is about the next window's worth.
        recent.clear();
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
        if domains < self.t.dga_domains {
            return None;
        }
        let found = DnsFinding::Dga {
            domains,
            examples: recent.examples(),
        };
        recent.clear();
        Some(found)
    }
}

/// The detector: `dns_tunnel` and `dga_activity` from [`DnsWatch`].
pub struct DnsDetector {
    watch: DnsWatch,
}

/// The detector, with `[anomaly]`'s DNS thresholds.
pub fn detector(c: &AnomalyConfig) -> Box<dyn Detector> {
    Box::new(DnsDetector {
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

impl DnsDetector {
    fn finding(&self, mac: MacAddr, f: DnsFinding) -> Finding {
        let window_s = [(self.watch.window_ns() / 1_000_000_000).to_string()];
        let (rule, metadata) = match f {
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
        Finding {
            rule,
            mac,
            flow: None,
            metadata,
        }
    }
}

impl Detector for DnsDetector {
    fn on_dns_query(&mut self, now: u64, mac: MacAddr, q: &DnsQuery) -> Vec<Finding> {
        let mut out = Vec::new();
        for (i, name) in q.names.iter().enumerate() {
            let qtype = q.qtypes.get(i).copied().unwrap_or(0);
            if let Some(f) = self.watch.on_query(now, mac, name, qtype) {
                out.push(self.finding(mac, f));
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
        let mut found = None;
        for i in 0..40u64 {
            let name = format!("{}.{}.pirate.example", base32(i, 40), base32(i + 100, 20));
            found = found.or(w.on_query(i * SEC / 2, M, &name, 10));
        }
        let Some(DnsFinding::Tunnel {
            domain,
            names,
            typed,
            examples,
        }) = found
        else {
            panic!("no tunnel: {found:?}");
        };
        assert_eq!(domain, "pirate.example");
        assert_eq!(names, 30);
        assert_eq!(typed, 30, "every one asked NULL");
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
            assert_eq!(w.on_query(i * SEC, M, n, 1), None, "{n}");
        }
        // Slow enough: 29 distinct encoded names a minute, every minute.
        let mut w = watch();
        for i in 0..600u64 {
            let name = format!("{}.slow.example", base32(i, 40));
            assert_eq!(w.on_query(i * 60 * SEC / 29, M, &name, 1), None, "{i}");
        }
    }

    #[test]
    fn short_names_count_only_when_asking_txt_or_null() {
        let mut w = watch();
        let mut found = None;
        for i in 0..40u64 {
            let name = format!("p{i:05}.poll.example");
            assert_eq!(
                w.on_query(i * SEC, M, &name, 1),
                None,
                "an A query for a short name"
            );
            found = found.or(w.on_query(i * SEC, M, &name, 16));
        }
        assert!(
            matches!(found, Some(DnsFinding::Tunnel { typed: 30, .. })),
            "{found:?}"
        );
        let mut w = watch();
        for i in 0..40u64 {
            let name = format!("_svc{i}._tcp.example");
            assert_eq!(
                w.on_query(i * SEC, M, &name, 16),
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
            let name = format!("www.{}.com", base32(i, 14));
            found = found.or(w.on_nxdomain(100 * SEC + i * SEC, M, &name));
        }
        match found {
            Some(DnsFinding::Dga { domains, examples }) => {
                assert_eq!(domains, 10);
                assert!(examples[0].ends_with(".com"), "{examples:?}");
            }
            other => panic!("no DGA: {other:?}"),
        }
    }
}
