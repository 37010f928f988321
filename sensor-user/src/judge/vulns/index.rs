//! Matching: an index from (part, vendor, product) to the vulnerable `cpeMatch` entries of
//! the loaded CVEs.
//!
//! What is honest and what is not:
//! - Only `vulnerable: true` entries are indexed. A configuration that is an AND (the
//!   firmware on a given hardware, software on a given OS) still matches on its vulnerable
//!   entry alone: the non-vulnerable platform entries are context only, since the sensor
//!   rarely knows the platform. Such matches carry `platform_dependent`, so the caller
//!   can word them as "if running on ...".
//! - A negated node or configuration never matches.
//! - The CPE fields after `update` (edition, language, target software or hardware) are
//!   not checked: the inventory does not know them, so a match may over-report.
//! - A version the module cannot order (see `version.rs`) matches nothing by version.

use std::collections::{BTreeMap, HashMap};

use super::Feed;
use super::cpe::Part;
use super::entry::{Entry, text};
use super::feed::cve_order;
use super::nvd::NvdFeed;
use super::version::Version;

/// Why a CVE applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The version is inside a vulnerable range or equals the listed version.
    Version,
    /// The product (a device model's hardware or firmware CPE) has this CVE, but its
    /// version is unknown.
    Model,
}

/// One CVE that applies.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct VulnMatch {
    pub cve: String,
    pub basis: Basis,
    /// In a loaded CISA KEV catalog.
    pub known_exploited: bool,
    pub kev_date_added: Option<String>,
    /// CVSS base score: v3.1, else v3.0, else v4.0, else v2; NVD's own over the CNA's.
    pub score: Option<f32>,
    /// The vulnerable versions as NVD lists them, e.g. `< 4.4p1` or `= 5.3`.
    pub range: String,
    /// The CVE's configuration is an AND: it also needs a platform (hardware, OS) that
    /// was not checked.
    pub platform_dependent: bool,
}

type ProductKey = (Part, Box<str>, Box<str>);

/// The loaded feeds, ready for lookups.
///
/// The NVD feeds are kept as read (strings, records, entries grouped by product), with
/// the entries of superseded copies dropped; the index only points into them, so
/// building it copies no entry.
#[derive(Debug, Default)]
pub struct VulnDb {
    nvd: Vec<NvdFeed>,
    /// (part, vendor, product) -> (feed, product list in that feed).
    products: HashMap<ProductKey, Vec<(u32, u32)>>,
    kev: HashMap<Box<str>, Option<Box<str>>>,
    cves: usize,
}

impl VulnDb {
    /// Builds the index. A CVE in several NVD files (yearly and `modified`) is taken from
    /// the one with the latest `lastModified`, the later file on a tie; a later
    /// `Rejected` drops it.
    pub fn from_feeds(feeds: Vec<Feed>) -> Self {
        let mut db = VulnDb::default();
        for f in feeds {
            match f {
                Feed::Nvd(n) => db.nvd.push(n),
                Feed::Kev(k) => {
                    for e in k.entries {
                        let date = db.kev.entry(e.id).or_default();
                        if date.is_none() {
                            *date = e.date_added;
                        }
                    }
                }
            }
        }

        let keep = {
            let mut best = HashMap::new();
            for (fi, f) in db.nvd.iter().enumerate() {
                for (ri, r) in f.records.iter().enumerate() {
                    offer(&mut best, &r.id, r.last_modified, Some((fi, ri)));
                }
                for (id, modified) in &f.rejected {
                    offer(&mut best, id, *modified, None);
                }
            }
            let mut keep: Vec<Vec<bool>> = db
                .nvd
                .iter()
                .map(|f| vec![false; f.records.len()])
                .collect();
            for (_, at) in best.into_values() {
                if let Some((fi, ri)) = at {
                    keep[fi][ri] = true;
                }
            }
            keep
        };
        db.cves = keep.iter().flatten().filter(|k| **k).count();

        for (fi, (f, keep)) in db.nvd.iter_mut().zip(&keep).enumerate() {
            let Ok(fi) = u32::try_from(fi) else { break };
            if keep.iter().any(|k| !k) {
                f.entries
                    .retain(|e| keep.get(e.record as usize).copied().unwrap_or(false));
                f.group();
            }
            for (pi, p) in f.products.iter().enumerate() {
                let Ok(pi) = u32::try_from(pi) else { break };
                if p.len == 0 {
                    continue;
                }
                let key = (
                    p.part,
                    Box::<str>::from(text(&f.strings, p.vendor)),
                    Box::<str>::from(text(&f.strings, p.product)),
                );
                db.products.entry(key).or_default().push((fi, pi));
            }
        }
        db
    }

    /// CVEs for software whose version is known or not.
    ///
    /// `vendor` and `product` are the CPE names (case and `\` quoting do not matter);
    /// `version` is the whole version as the device gives it, OpenSSH's `p1` included
    /// (`5.3p1`, not `5.3` with the `p1` apart).
    /// With a version this module can order, a CVE applies when one of its vulnerable
    /// entries covers it (basis `Version`). Without one (absent, or not orderable),
    /// software gives nothing (every version of it would be too noisy), while hardware
    /// and `*_firmware` operating systems, which NVD names after a device model, give
    /// every CVE of the model (basis `Model`). Sorted by CVE id, one match per CVE.
    pub fn lookup(
        &self,
        part: Part,
        vendor: &str,
        product: &str,
        version: Option<&str>,
    ) -> Vec<VulnMatch> {
        let key = (part, normalise(vendor), normalise(product));
        let Some(lists) = self.products.get(&key) else {
            return Vec::new();
        };
        let parsed = version.and_then(Version::parse);
        let basis = match (&parsed, part) {
            (Some(_), _) => Basis::Version,
            (None, Part::Hardware) => Basis::Model,
            // Plain `o` products are whole operating systems (linux_kernel, windows):
            // every CVE of those is noise, not a finding about the device.
            (None, Part::OperatingSystem) if key.2.ends_with("_firmware") => Basis::Model,
            (None, _) => return Vec::new(),
        };
        let raw = version.map(str::trim).unwrap_or_default();
        // CVE id -> (feed, entry); one per CVE.
        let mut best: BTreeMap<&str, (&NvdFeed, &Entry)> = BTreeMap::new();
        for &(fi, pi) in lists {
            let Some(f) = self.nvd.get(fi as usize) else {
                continue;
            };
            let Some(p) = f.products.get(pi as usize) else {
                continue;
            };
            for e in f.entries_of(p) {
                let hit = match &parsed {
                    Some(v) => e.spec.matches(v, raw, &f.strings),
                    None => true,
                };
                let Some(r) = f.records.get(e.record as usize).filter(|_| hit) else {
                    continue;
                };
                // An entry that needs no platform says more than one that does.
                let slot = best.entry(&r.id).or_insert((f, e));
                if slot.1.platform && !e.platform {
                    *slot = (f, e);
                }
            }
        }
        let mut out: Vec<VulnMatch> = best
            .into_iter()
            .map(|(id, (f, e))| {
                let kev = self.kev.get(id);
                VulnMatch {
                    cve: id.to_string(),
                    basis,
                    known_exploited: kev.is_some(),
                    kev_date_added: kev.and_then(|d| d.as_deref()).map(str::to_string),
                    score: f.records.get(e.record as usize).and_then(|r| r.score),
                    range: e.spec.describe(&f.strings),
                    platform_dependent: e.platform,
                }
            })
            .collect();
        out.sort_by(|a, b| cve_order(&a.cve, &b.cve));
        out
    }

    /// Whether `cve` is in a loaded KEV catalog.
    pub fn is_known_exploited(&self, cve: &str) -> bool {
        self.kev
            .contains_key(cve.trim().to_ascii_uppercase().as_str())
    }

    /// CVEs loaded from NVD (each once, rejected ones not counted).
    pub fn cve_count(&self) -> usize {
        self.cves
    }

    /// CVEs in the KEV catalogs.
    pub fn kev_count(&self) -> usize {
        self.kev.len()
    }

    /// Distinct (part, vendor, product) with a vulnerable entry.
    pub fn product_count(&self) -> usize {
        self.products.len()
    }
}

/// Where the newest copy of a CVE is: (lastModified, (file, record)), `None` for a
/// rejection.
type Newest<'a> = HashMap<&'a str, (u64, Option<(usize, usize)>)>;

fn offer<'a>(best: &mut Newest<'a>, id: &'a str, modified: u64, at: Option<(usize, usize)>) {
    if best.get(id).is_none_or(|(m, _)| modified >= *m) {
        best.insert(id, (modified, at));
    }
}

/// Lower case, `\` quoting removed: how the index keys are written.
fn normalise(s: &str) -> Box<str> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.trim().chars();
    while let Some(c) = chars.next() {
        let c = if c == '\\' {
            chars.next().unwrap_or(c)
        } else {
            c
        };
        out.push(c.to_ascii_lowercase());
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::vulns::entry::{Bound, Exact, Spec, Strings, Update};

    fn spec(
        strings: &mut Strings,
        exact: Option<(&str, Option<&str>)>,
        start: Option<(&str, bool)>,
        end: Option<(&str, bool)>,
    ) -> Spec {
        let exact = match exact {
            None => Exact::Any,
            Some((v, u)) => Exact::Value {
                version: strings.intern(v),
                update: match u {
                    None => Update::Any,
                    Some("-") => Update::Na,
                    Some(u) => Update::Value(strings.intern(u)),
                },
            },
        };
        let mut bound = |b: Option<(&str, bool)>| {
            b.map(|(v, inclusive)| Bound {
                version: strings.intern(v),
                inclusive,
            })
        };
        Spec {
            exact,
            start: bound(start),
            end: bound(end),
        }
    }

    fn covers(sp: Spec, s: &[Box<str>], v: &str) -> bool {
        Version::parse(v).is_some_and(|p| sp.matches(&p, v, s))
    }

    #[test]
    fn ranges_with_the_portable_suffix() {
        let mut st = Strings::default();
        let below = spec(&mut st, None, None, Some(("4.4p1", false)));
        let mid = spec(&mut st, None, Some(("8.5p1", true)), Some(("9.8p1", false)));
        let bare = spec(&mut st, None, Some(("8.5", true)), Some(("9.8", false)));
        let s = st.into_list();
        assert!(covers(below, &s, "3.9p1"));
        assert!(!covers(below, &s, "4.4p1"));
        assert!(!covers(below, &s, "5.3"));
        assert!(covers(mid, &s, "8.5p1"));
        assert!(covers(mid, &s, "9.7p1"));
        assert!(!covers(mid, &s, "9.8p1"));
        assert!(!covers(mid, &s, "8.4p1"));
        assert!(covers(bare, &s, "8.5p1"));
        assert!(covers(bare, &s, "9.7p1"));
        assert!(!covers(bare, &s, "9.8p1"));
        assert_eq!(mid.describe(&s), ">= 8.5p1, < 9.8p1");
        assert_eq!(below.describe(&s), "< 4.4p1");
    }

    #[test]
    fn exact_versions_and_updates() {
        let mut st = Strings::default();
        let p2 = spec(&mut st, Some(("7.2", Some("p2"))), None, None);
        let any = spec(&mut st, Some(("7.2", None)), None, None);
        let na = spec(&mut st, Some(("7.2", Some("-"))), None, None);
        let plain = spec(&mut st, Some(("5.3", None)), None, None);
        let ossl = spec(&mut st, Some(("1.0.1", None)), None, None);
        let s = st.into_list();
        assert!(covers(p2, &s, "7.2p2"));
        assert!(!covers(p2, &s, "7.2p1"));
        assert!(!covers(p2, &s, "7.2"));
        assert!(covers(any, &s, "7.2p2"));
        assert!(covers(any, &s, "7.2"));
        assert!(!covers(na, &s, "7.2p2"));
        assert!(covers(na, &s, "7.2"));
        assert!(covers(plain, &s, "5.3"));
        assert!(covers(plain, &s, "5.3.0"));
        assert!(!covers(plain, &s, "5.30"));
        // OpenSSL's letters are releases, not updates of 1.0.1.
        assert!(!covers(ossl, &s, "1.0.1g"));
        assert_eq!(p2.describe(&s), "= 7.2p2");
        assert_eq!(plain.describe(&s), "= 5.3");
    }

    #[test]
    fn unknown_bounds_match_nothing() {
        let mut st = Strings::default();
        let odd = spec(&mut st, None, None, Some(("see vendor advisory", false)));
        let date = spec(&mut st, None, None, Some(("20141104", false)));
        let s = st.into_list();
        assert!(!covers(odd, &s, "1.0"));
        assert!(!covers(date, &s, "1.0"));
        assert!(covers(date, &s, "20100324"));
    }

    #[test]
    fn normalised_names() {
        assert_eq!(&*normalise(" OpenBSD "), "openbsd");
        assert_eq!(&*normalise("node\\.js"), "node.js");
    }
}
