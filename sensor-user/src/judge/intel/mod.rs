//! Threat intelligence and canaries: feeds in the formats people have, merged (every
//! source kept), checked for entries that would flag half the internet, loaded into the
//! kernel's intel trie as a diff (no moment without entries), and matched: addresses in
//! the kernel on a flow's first packet, domains here against what devices look up and
//! are told.

pub mod formats;
pub mod stage;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
    path::PathBuf,
};

use ipnet::IpNet;
use sensor_common::policy::{IntelEntry, intel_flags};
use serde_json::{Value, json};

use crate::config::Config;
use formats::Indicator;

/// Where an indicator came from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeedSource {
    /// The feed's name.
    pub feed: String,
    /// The category or reason the feed gives.
    pub category: Option<String>,
}

/// How one feed loaded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedReport {
    /// Its name.
    pub name: String,
    /// Indicators taken.
    pub loaded: usize,
    /// Indicators refused (private, loopback, link-local, multicast, too broad).
    pub refused: usize,
    /// Lines that did not parse.
    pub invalid: usize,
    /// Entries skipped on purpose (other indicator types, expired).
    pub skipped: usize,
    /// Why it could not be read this time (its previous contents stay).
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default)]
struct FeedData {
    nets: Vec<(IpNet, Option<String>)>,
    domains: Vec<(String, Option<String>)>,
    ja4s: Vec<(String, Option<String>)>,
}

/// Why an indicator is refused, if it is.
pub fn refusal(n: &IpNet) -> Option<&'static str> {
    let a = n.addr();
    let private = match a {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    };
    if a.is_loopback() {
        Some("loopback")
    } else if a.is_multicast() {
        Some("multicast")
    } else if a.is_unspecified() {
        Some("unspecified")
    } else if matches!(a, IpAddr::V4(v) if v.is_link_local())
        || matches!(a, IpAddr::V6(v) if (v.segments()[0] & 0xffc0) == 0xfe80)
    {
        Some("link-local")
    } else if private {
        Some("private")
    } else if match n {
        IpNet::V4(v) => v.prefix_len() < 8,
        IpNet::V6(v) => v.prefix_len() < 32,
    } {
        Some("broader than /8 (IPv4) or /32 (IPv6)")
    } else {
        None
    }
}

/// Every feed's indicators, merged, with the canaries.
#[derive(Debug, Default)]
pub struct IntelSet {
    feeds: BTreeMap<String, FeedData>,
    /// How each feed loaded last time.
    pub reports: BTreeMap<String, FeedReport>,
    canaries: BTreeSet<IpNet>,
    ids: HashMap<IpNet, u32>,
    by_id: HashMap<u32, IpNet>,
    block: bool,
}

/// What an address matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpHit {
    /// The listed prefix.
    pub net: IpNet,
    /// Its feeds (empty for a canary only).
    pub sources: Vec<FeedSource>,
    /// It is a canary.
    pub canary: bool,
}

impl IntelSet {
    /// Reads every feed of the configuration (a feed that can't be read keeps what it
    /// had) and the canaries.
    pub fn load(&mut self, config: &Config, now_epoch_s: i64) {
        let base = config.base_dir.clone().unwrap_or_default();
        self.block = config.intel.block;
        let mut names = BTreeSet::new();
        for f in &config.intel.feeds {
            let path: PathBuf = base.join(f.path.get_ref());
            let name = f.name.clone().unwrap_or_else(|| {
                path.file_stem()
                    .map_or("feed".into(), |s| s.to_string_lossy().into_owned())
            });
            names.insert(name.clone());
            let mut report = FeedReport {
                name: name.clone(),
                ..FeedReport::default()
            };
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    report.error = Some(format!("{}: {e}", path.display()));
                    tracing::warn!(
                        "intel feed {name}: {}: {e}; keeping its previous contents",
                        path.display()
                    );
                    let kept = self.reports.get(&name).map_or(0, |r| r.loaded);
                    report.loaded = kept;
                    self.reports.insert(name, report);
                    continue;
                }
            };
            let categories = f
                .categories
                .as_ref()
                .and_then(|c| std::fs::read_to_string(base.join(c)).ok());
            let parsed = formats::parse(
                f.format.get_ref(),
                &text,
                categories.as_deref(),
                now_epoch_s,
            );
            let mut data = FeedData::default();
            for (line, why) in parsed.invalid.iter().take(5) {
                tracing::warn!("{}:{line}: {why} (skipped)", path.display());
            }
            report.invalid = parsed.invalid.len();
            report.skipped = parsed.skipped;
            for e in parsed.entries {
                match e.indicator {
                    Indicator::Net(n) => {
                        if let Some(why) = refusal(&n).filter(|_| !f.allow_broad) {
                            if report.refused < 3 {
                                tracing::warn!(
                                    "{}:{}: {n} refused: {why} (allow_broad = true takes it)",
                                    path.display(),
                                    e.line
                                );
                            }
                            report.refused += 1;
                            continue;
                        }
                        data.nets.push((n, e.category));
                    }
                    Indicator::Domain(d) => data.domains.push((d, e.category)),
                    Indicator::Ja4(f) => data.ja4s.push((f, e.category)),
                }
                report.loaded += 1;
            }
            self.feeds.insert(name.clone(), data);
            self.reports.insert(name, report);
        }
        self.feeds.retain(|n, _| names.contains(n));
        self.reports.retain(|n, _| names.contains(n));
        self.canaries = config
            .canary
            .addresses
            .iter()
            .filter_map(|a| formats::net(a.get_ref()))
            .collect();
    }

    /// What the kernel's intel trie should hold: every listed prefix and canary, with a
    /// stable id (kept across reloads, never reused).
    pub fn kernel(&mut self) -> BTreeMap<IpNet, IntelEntry> {
        let mut flags: BTreeMap<IpNet, u8> = BTreeMap::new();
        let block = if self.block { intel_flags::BLOCK } else { 0 };
        for d in self.feeds.values() {
            for (n, _) in &d.nets {
                *flags.entry(*n).or_default() |= intel_flags::INTEL | block;
            }
        }
        for c in &self.canaries {
            *flags.entry(*c).or_default() |= intel_flags::CANARY;
        }
        flags
            .into_iter()
            .map(|(n, f)| {
                let next = self.ids.len() as u32 + 1;
                let id = *self.ids.entry(n).or_insert(next);
                self.by_id.insert(id, n);
                (
                    n,
                    IntelEntry {
                        id,
                        flags: f,
                        _pad: [0; 3],
                    },
                )
            })
            .collect()
    }

    /// The indicator behind a kernel id.
    pub fn by_id(&self, id: u32) -> Option<IpHit> {
        let net = *self.by_id.get(&id)?;
        let mut sources: Vec<FeedSource> = self
            .feeds
            .iter()
            .flat_map(|(feed, d)| {
                d.nets
                    .iter()
                    .filter(move |(n, _)| *n == net)
                    .map(move |(_, c)| FeedSource {
                        feed: feed.clone(),
                        category: c.clone(),
                    })
            })
            .collect();
        sources.sort();
        sources.dedup();
        Some(IpHit {
            net,
            sources,
            canary: self.canaries.contains(&net),
        })
    }

    /// The feeds whose list (`list` picks it from a feed) has `value`.
    fn listing(
        &self,
        list: impl Fn(&FeedData) -> &[(String, Option<String>)],
        value: &str,
    ) -> Vec<FeedSource> {
        self.feeds
            .iter()
            .flat_map(|(feed, d)| {
                list(d)
                    .iter()
                    .filter(move |(v, _)| v == value)
                    .map(move |(_, c)| FeedSource {
                        feed: feed.clone(),
                        category: c.clone(),
                    })
            })
            .collect()
    }

    /// The feeds listing `name` or a domain it is under.
    pub fn domain(&self, name: &str) -> Option<(String, Vec<FeedSource>)> {
        let mut suffix = name;
        loop {
            let sources = self.listing(|d| &d.domains, suffix);
            if !sources.is_empty() {
                return Some((suffix.to_string(), sources));
            }
            match suffix.split_once('.') {
                Some((_, rest)) if rest.contains('.') => suffix = rest,
                _ => return None,
            }
        }
    }

    /// The feeds listing a JA4 fingerprint.
    pub fn ja4(&self, fingerprint: &str) -> Vec<FeedSource> {
        let mut sources = self.listing(|d| &d.ja4s, fingerprint);
        sources.sort();
        sources.dedup();
        sources
    }

    /// Listed domains over all feeds.
    pub fn domain_count(&self) -> usize {
        self.feeds.values().map(|d| d.domains.len()).sum()
    }

    /// The `intel` section of `stats`.
    pub fn stats(&self, entries: usize) -> Value {
        let feeds: Vec<Value> = self
            .reports
            .values()
            .map(|r| {
                let mut v = json!({
                    "name": r.name, "loaded": r.loaded, "refused": r.refused,
                    "invalid": r.invalid, "skipped": r.skipped,
                });
                if let Some(e) = &r.error {
                    v["warning"] = e.clone().into();
                }
                v
            })
            .collect();
        let ja4s: usize = self.feeds.values().map(|d| d.ja4s.len()).sum();
        json!({"kernel_entries": entries, "domains": self.domain_count(), "ja4": ja4s, "canaries": self.canaries.len(), "feeds": feeds})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_indicators_say_why() {
        let r = |s: &str| refusal(&s.parse().unwrap());
        assert_eq!(r("10.1.2.3/32"), Some("private"));
        assert_eq!(r("127.0.0.1/32"), Some("loopback"));
        assert_eq!(r("169.254.1.1/32"), Some("link-local"));
        assert_eq!(r("224.0.0.251/32"), Some("multicast"));
        assert_eq!(r("1.0.0.0/7"), Some("broader than /8 (IPv4) or /32 (IPv6)"));
        assert_eq!(r("2000::/16"), Some("broader than /8 (IPv4) or /32 (IPv6)"));
        assert_eq!(r("fd00::1/128"), Some("private"));
        assert_eq!(r("1.10.16.0/18"), None);
        assert_eq!(r("203.0.113.7/32"), None);
    }

    #[test]
    fn feeds_merge_keep_every_source_and_survive_a_missing_file() {
        let dir = std::env::temp_dir().join(format!("kw-intel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.txt"), "203.0.113.7\n10.0.0.1\n").unwrap();
        std::fs::write(dir.join("b.txt"), "203.0.113.7 ; SBL1\nevil.example.com\n").unwrap();
        std::fs::write(dir.join("c.txt"), "evil.example.com\n").unwrap();
        let cfg = format!(
            "[[intel.feed]]\npath = \"{0}/a.txt\"\nformat = \"plain\"\n[[intel.feed]]\npath = \"{0}/b.txt\"\nformat = \"spamhaus\"\nname = \"drop\"\n[[intel.feed]]\npath = \"{0}/c.txt\"\nformat = \"domains\"\n[canary]\naddresses = [\"192.0.2.66\"]\n",
            dir.display()
        );
        let c = Config::parse(&cfg, "t.toml").unwrap();
        let mut s = IntelSet::default();
        s.load(&c, 0);
        assert_eq!(s.reports["a"].loaded, 1);
        assert_eq!(s.reports["a"].refused, 1, "10.0.0.1 is private");
        assert_eq!(
            s.reports["drop"].invalid, 1,
            "a domain is not a spamhaus line"
        );
        let k = s.kernel();
        assert_eq!(k.len(), 2, "one merged indicator and one canary");
        let seven = k[&"203.0.113.7/32".parse::<IpNet>().unwrap()];
        let hit = s.by_id(seven.id).unwrap();
        assert_eq!(hit.sources.len(), 2, "both feeds kept: {hit:?}");
        assert_eq!(
            s.domain("a.evil.example.com").unwrap().0,
            "evil.example.com"
        );
        assert!(s.domain("example.com").is_none());
        // A feed that can't be read keeps what it had; ids stay.
        std::fs::remove_file(dir.join("a.txt")).unwrap();
        s.load(&c, 0);
        assert!(s.reports["a"].error.is_some());
        assert_eq!(
            s.kernel()[&"203.0.113.7/32".parse::<IpNet>().unwrap()].id,
            seven.id
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
