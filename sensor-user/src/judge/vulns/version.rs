//! Version ordering for NVD range bounds and banner versions.
//!
//! A version is split into numbers and words at every change between digits and
//! letters and at `.`, `-`, `_`, `+`, `~`, `(`, `)` and spaces (`3.9p1` is 3, 9, p, 1;
//! `12.2(33)sxi` is 12, 2, 33, sxi). Numbers compare as numbers, words as text, with
//! these rules where the obvious one is wrong:
//!
//! - Missing trailing numbers are zeros: `2.80` equals `2.80.0`, so a banner that adds
//!   `.0` is not moved across a bound.
//! - A word where the other side has ended is a post-release letter (`1.4.35a` and
//!   `0.9.8zh` come after `1.4.35` and `0.9.8`, as OpenSSL and lighttpd number them),
//!   except the pre-release words `dev`, `alpha`, `beta`, `pre`, `test` and `rc`, which
//!   come before (`2.90test1` and `2.90rc1` before `2.90`, as dnsmasq numbers them).
//! - A number beats a word in the same place (`1.0.1` after `1.0a`), as rpm does.
//! - A date version (`20100324`, tnftpd's scheme) only compares with another date:
//!   against `1.2` the answer is unknown, not "older".
//! - A leading word names a scheme (`xcp2410` for Fujitsu firmware, `r21.6` for
//!   NVIDIA's): only versions with the same word compare. A leading `v` is dropped.
//! - OpenSSH portable: see [`Version::compare_to_bound`].
//!
//! Anything else (empty, no digit, other punctuation, a number too big) is not a version
//! this module can order: [`Version::parse`] gives `None`, and callers treat that as
//! unknown, never as a match.

use std::cmp::Ordering;

/// A parsed, orderable version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// The leading word, if any: versions compare only within one scheme.
    scheme: Option<String>,
    segs: Vec<Seg>,
    date: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Num(u64),
    Word(String),
}

/// Longer strings are not versions but prose or garbage.
const MAX_LEN: usize = 128;

impl Version {
    /// Parses `s`; `None` when it is not a version this module can order.
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim();
        if s.is_empty() || s.len() > MAX_LEN {
            return None;
        }
        if !s.bytes().any(|b| b.is_ascii_digit()) {
            return None;
        }
        let word = s.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (scheme, s) = s.split_at(word);
        // `v1.2` is common in banners; the `v` carries no order.
        let scheme = match scheme.to_ascii_lowercase() {
            w if w.is_empty() || w == "v" => None,
            w => Some(w),
        };
        let mut segs = Vec::new();
        let mut first_digits = 0;
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b.is_ascii_digit() {
                let start = i;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                if segs.is_empty() {
                    first_digits = i - start;
                }
                segs.push(Seg::Num(s[start..i].parse().ok()?));
            } else if b.is_ascii_alphabetic() {
                let start = i;
                while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                    i += 1;
                }
                segs.push(Seg::Word(s[start..i].to_ascii_lowercase()));
            } else if matches!(b, b'.' | b'-' | b'_' | b'+' | b'~' | b'(' | b')' | b' ') {
                i += 1;
            } else {
                return None;
            }
        }
        let date = first_digits == 8 && matches!(segs.first(), Some(Seg::Num(n)) if is_date(*n));
        Some(Version { scheme, segs, date })
    }

    /// Orders two versions; `None` when they use different schemes (a date and a release
    /// number, `xcp2410` and `2410`).
    pub fn compare(&self, other: &Version) -> Option<Ordering> {
        self.same_scheme(other)
            .then(|| cmp_segs(&self.segs, &other.segs, false))
    }

    fn same_scheme(&self, other: &Version) -> bool {
        self.date == other.date && self.scheme == other.scheme
    }

    /// Orders a device's version against a bound or listed version from NVD.
    ///
    /// OpenSSH portable releases are the OpenBSD release plus `pN` (`9.8p1` is 9.8 for
    /// other systems). NVD writes bounds both ways: `versionEndExcluding 9.8p1` and
    /// `versionEndExcluding 9.8` both mean "fixed in 9.8". So when the bound is a bare
    /// release and the device's version is that release plus a final `pN`, they compare
    /// equal: `9.8p1` is outside `< 9.8`, inside `<= 9.7` for `9.7p1`, and inside
    /// `>= 8.5` for `8.5p1`. When the bound has its own `pN`, the numbers count
    /// (`7.2p1 < 7.2p2`), and a bare device version stays below it (`9.9.4 < 9.9.4-P1`,
    /// as BIND numbers its patch releases). The cost: a bound `<= 9.9.4` also takes
    /// BIND's `9.9.4-P1`, an over-report rather than a miss.
    pub fn compare_to_bound(&self, bound: &Version) -> Option<Ordering> {
        self.same_scheme(bound)
            .then(|| cmp_segs(&self.segs, &bound.segs, true))
    }
}

/// Orders two version strings; `None` when either is not an orderable version or they
/// use different schemes.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    Version::parse(a)?.compare(&Version::parse(b)?)
}

/// YYYYMMDD with a plausible month and day.
fn is_date(n: u64) -> bool {
    let (y, m, d) = (n / 10_000, n / 100 % 100, n % 100);
    (1990..=2099).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d)
}

/// `b_is_bound`: `b` is an NVD bound, for the OpenSSH portable rule.
fn cmp_segs(a: &[Seg], b: &[Seg], b_is_bound: bool) -> Ordering {
    let mut i = 0;
    loop {
        match (a.get(i), b.get(i)) {
            (None, None) => return Ordering::Equal,
            (Some(x), Some(y)) => match cmp_seg(x, y) {
                Ordering::Equal => i += 1,
                o => return o,
            },
            (None, Some(_)) => return tail(&b[i..]).reverse(),
            (Some(_), None) => {
                if b_is_bound && portable(&a[i..]) {
                    return Ordering::Equal;
                }
                return tail(&a[i..]);
            }
        }
    }
}

/// Exactly `pN`.
fn portable(rest: &[Seg]) -> bool {
    matches!(rest, [Seg::Word(w), Seg::Num(_)] if w == "p")
}

/// How a version compares with itself cut before `rest`.
fn tail(rest: &[Seg]) -> Ordering {
    match rest.iter().find(|s| !matches!(s, Seg::Num(0))) {
        None => Ordering::Equal,
        Some(Seg::Word(w)) if pre_release(w).is_some() => Ordering::Less,
        Some(_) => Ordering::Greater,
    }
}

fn cmp_seg(a: &Seg, b: &Seg) -> Ordering {
    match (a, b) {
        (Seg::Num(x), Seg::Num(y)) => x.cmp(y),
        (Seg::Word(x), Seg::Word(y)) => match (pre_release(x), pre_release(y)) {
            (Some(p), Some(q)) => p.cmp(&q).then_with(|| x.cmp(y)),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => x.cmp(y),
        },
        (Seg::Num(_), Seg::Word(_)) => Ordering::Greater,
        (Seg::Word(_), Seg::Num(_)) => Ordering::Less,
    }
}

/// The rank of a pre-release word, earliest first.
fn pre_release(w: &str) -> Option<u8> {
    ["dev", "alpha", "beta", "pre", "test", "rc"]
        .iter()
        .position(|p| *p == w)
        .map(|i| i as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    fn c(a: &str, b: &str) -> Option<Ordering> {
        compare(a, b)
    }

    fn to_bound(device: &str, bound: &str) -> Option<Ordering> {
        Version::parse(device)?.compare_to_bound(&Version::parse(bound)?)
    }

    #[test]
    fn dotted_numbers_compare_as_numbers() {
        assert_eq!(c("2.80", "2.86"), Some(Less));
        assert_eq!(c("7.4", "7.10"), Some(Less));
        assert_eq!(c("7.10", "7.4"), Some(Greater));
        assert_eq!(c("1.01", "1.1"), Some(Equal));
        assert_eq!(c("2.4.49", "2.4.50"), Some(Less));
        assert_eq!(c("2019.78", "2020.81"), Some(Less));
        assert_eq!(c("2019.78", "2019.78"), Some(Equal));
    }

    #[test]
    fn missing_trailing_zeros_are_equal() {
        assert_eq!(c("2.80", "2.80.0"), Some(Equal));
        assert_eq!(c("2.80", "2.80.1"), Some(Less));
    }

    #[test]
    fn openssh_portable_releases() {
        assert_eq!(c("3.9p1", "4.4p1"), Some(Less));
        assert_eq!(c("4.4p1", "8.5p1"), Some(Less));
        assert_eq!(c("7.2p1", "7.2p2"), Some(Less));
        assert_eq!(c("9.8p1", "9.10p1"), Some(Less));
        // Strictly, `9.8p1` is after `9.8`...
        assert_eq!(c("9.8p1", "9.8"), Some(Greater));
        // ...but against an NVD bound a bare release stands for its portable release.
        assert_eq!(to_bound("9.8p1", "9.8"), Some(Equal));
        assert_eq!(to_bound("9.7p1", "9.8"), Some(Less));
        assert_eq!(to_bound("9.8p1", "9.8p1"), Some(Equal));
        assert_eq!(to_bound("7.2p1", "7.2p2"), Some(Less));
        // A bare device version is not lifted to a bound's patch release.
        assert_eq!(to_bound("9.9.4", "9.9.4-P1"), Some(Less));
        assert_eq!(to_bound("7.2", "7.2p2"), Some(Less));
        // The rule is for a final `pN` alone, not any letter.
        assert_eq!(to_bound("1.0.1g", "1.0.1"), Some(Greater));
    }

    #[test]
    fn dates() {
        assert_eq!(c("20100324", "20141104"), Some(Less));
        assert_eq!(c("20141104", "20100324"), Some(Greater));
        // Different schemes do not order.
        assert_eq!(c("20100324", "1.2"), None);
        assert_eq!(c("2019.78", "20190101"), None);
    }

    #[test]
    fn letters() {
        assert_eq!(c("1.4.35", "1.4.35a"), Some(Less));
        assert_eq!(c("1.4.35a", "1.4.36"), Some(Less));
        assert_eq!(c("0.9.8z", "0.9.8zh"), Some(Less));
        assert_eq!(c("0.9.8zh", "0.9.8zg"), Some(Greater));
        assert_eq!(c("0.9.8zh", "1.0.0"), Some(Less));
        assert_eq!(c("1.0.1f", "1.0.1g"), Some(Less));
        assert_eq!(c("1.0a", "1.0.1"), Some(Less));
        assert_eq!(c("1.0.1A", "1.0.1a"), Some(Equal));
    }

    #[test]
    fn pre_releases_come_before_the_release() {
        assert_eq!(c("2.90test1", "2.90"), Some(Less));
        assert_eq!(c("2.90rc1", "2.90"), Some(Less));
        assert_eq!(c("2.90test3", "2.90rc1"), Some(Less));
        assert_eq!(c("1.0.1-beta1", "1.0.1"), Some(Less));
        assert_eq!(c("1.0.1beta1", "1.0.1-beta2"), Some(Less));
        assert_eq!(c("2.0rc1", "1.9"), Some(Greater));
    }

    #[test]
    fn other_schemes_seen_in_nvd() {
        assert_eq!(c("12.2(33)sxi", "12.2(33)sxj"), Some(Less));
        assert_eq!(c("15.2(4)m", "15.2(10)m"), Some(Less));
        assert_eq!(c("3.16.9 build 150320", "3.16.9 build 160329"), Some(Less));
        assert_eq!(c("v2.3", "2.3"), Some(Equal));
        assert_eq!(c("xcp2400", "xcp2410"), Some(Less));
        assert_eq!(c("XCP2410", "xcp2410"), Some(Equal));
        assert_eq!(c("r21.5", "r21.6"), Some(Less));
        // Different leading words, or a word against a number, do not order.
        assert_eq!(c("xcp2400", "2410"), None);
        assert_eq!(c("r21.5", "xcp2410"), None);
        assert_eq!(c("build5", "1.0"), None);
        assert_eq!(c("2.05b01", "2.05b02"), Some(Less));
        assert_eq!(c("1.05b01", "1.04b12"), Some(Greater));
    }

    #[test]
    fn unparsable_is_unknown() {
        for bad in [
            "",
            "  ",
            "unknown",
            "latest",
            "-",
            "*",
            "1:7.4p1",
            "7.4,1",
            "99999999999999999999999",
        ] {
            assert_eq!(Version::parse(bad), None, "{bad:?}");
            assert_eq!(c(bad, "1.0"), None, "{bad:?}");
            assert_eq!(c("1.0", bad), None, "{bad:?}");
        }
        assert_eq!(Version::parse(&"1.".repeat(100)), None);
    }
}
