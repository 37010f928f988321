//! A vulnerable `cpeMatch` entry as the NVD loader stores it and the index matches it:
//! which versions it covers, over a feed's interned strings. Its own file so that the
//! loader (`nvd`) and the index (`index`) both build on it without importing each other.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::cpe::glob;
use super::version::Version;

/// An interned string.
pub(crate) type Sym = u32;

/// Interns the many repeated vendor, product and version strings of a feed. Each string
/// is held once, as a map key, until [`Strings::into_list`] moves them into a list.
#[derive(Debug, Default)]
pub(crate) struct Strings {
    map: HashMap<Box<str>, Sym>,
}

impl Strings {
    pub(crate) fn intern(&mut self, s: &str) -> Sym {
        if let Some(&i) = self.map.get(s) {
            return i;
        }
        // u32 holds any real feed; saturating keeps a pathological one from panicking.
        let i = Sym::try_from(self.map.len()).unwrap_or(Sym::MAX);
        self.map.insert(s.into(), i);
        i
    }

    /// The strings by symbol; the map is only needed while interning.
    pub(crate) fn into_list(self) -> Vec<Box<str>> {
        let mut list = vec![Box::<str>::default(); self.map.len()];
        for (s, i) in self.map {
            if let Some(slot) = list.get_mut(i as usize) {
                *slot = s;
            }
        }
        list
    }
}

pub(crate) fn text(list: &[Box<str>], s: Sym) -> &str {
    list.get(s as usize).map_or("", |b| b)
}

/// Which versions a `cpeMatch` entry covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Spec {
    pub exact: Exact,
    pub start: Option<Bound>,
    pub end: Option<Bound>,
}

/// The version in the criteria string itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exact {
    /// `*` or `-`: no constraint from the criteria.
    Any,
    Value {
        version: Sym,
        update: Update,
    },
    /// A version with CPE wildcards, in formatted form.
    Pattern(Sym),
}

/// The criteria's `update` field, which NVD uses for OpenSSH's `p1` (`7.2:p2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Update {
    Any,
    Na,
    Value(Sym),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bound {
    pub version: Sym,
    pub inclusive: bool,
}

impl Spec {
    /// Whether the device version `v` (text `raw`) is covered; unknown is no.
    pub(crate) fn matches(&self, v: &Version, raw: &str, s: &[Box<str>]) -> bool {
        let exact = match self.exact {
            Exact::Any => true,
            Exact::Value { version, update } => {
                let listed = text(s, version);
                match update {
                    // Any update of the release: the OpenSSH rule lets `7.2p2` be one.
                    Update::Any => to_bound(v, listed) == Some(Ordering::Equal),
                    Update::Na => {
                        Version::parse(listed).and_then(|l| v.compare(&l)) == Some(Ordering::Equal)
                    }
                    // `7.2` + `p2`: the separator keeps `1.0` + `2` from reading as `1.02`.
                    Update::Value(u) => {
                        let joined = format!("{listed}-{}", text(s, u));
                        Version::parse(&joined).and_then(|l| v.compare(&l)) == Some(Ordering::Equal)
                    }
                }
            }
            Exact::Pattern(p) => glob(text(s, p), &raw.to_ascii_lowercase()),
        };
        let start = self.start.is_none_or(|b| {
            to_bound(v, text(s, b.version))
                .is_some_and(|o| o == Ordering::Greater || (b.inclusive && o == Ordering::Equal))
        });
        let end = self.end.is_none_or(|b| {
            to_bound(v, text(s, b.version))
                .is_some_and(|o| o == Ordering::Less || (b.inclusive && o == Ordering::Equal))
        });
        exact && start && end
    }

    /// The bound as text: `= 5.3`, `>= 8.5p1, < 9.8p1`, `all versions`.
    pub(crate) fn describe(&self, s: &[Box<str>]) -> String {
        let mut parts = Vec::new();
        match self.exact {
            Exact::Any => {}
            Exact::Value { version, update } => {
                let v = text(s, version);
                parts.push(match update {
                    Update::Value(u) => {
                        let u = text(s, u);
                        // `7.2p2` reads as OpenSSH writes it; `1.0 update_1` needs the gap.
                        let suffix = u.starts_with(|c: char| c.is_ascii_alphabetic())
                            && u.chars().all(|c| c.is_ascii_alphanumeric());
                        if suffix {
                            format!("= {v}{u}")
                        } else {
                            format!("= {v} {u}")
                        }
                    }
                    _ => format!("= {v}"),
                });
            }
            Exact::Pattern(p) => parts.push(format!("~ {}", text(s, p))),
        }
        if let Some(b) = self.start {
            let op = if b.inclusive { ">=" } else { ">" };
            parts.push(format!("{op} {}", text(s, b.version)));
        }
        if let Some(b) = self.end {
            let op = if b.inclusive { "<=" } else { "<" };
            parts.push(format!("{op} {}", text(s, b.version)));
        }
        if parts.is_empty() {
            "all versions".to_string()
        } else {
            parts.join(", ")
        }
    }
}

fn to_bound(v: &Version, bound: &str) -> Option<Ordering> {
    v.compare_to_bound(&Version::parse(bound)?)
}

/// A vulnerable `cpeMatch` entry, in its feed's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The product's place in its feed.
    pub product: u32,
    /// The record's place in its feed.
    pub record: u32,
    pub spec: Spec,
    /// From an AND configuration: the CVE also needs a platform not checked here.
    pub platform: bool,
}
