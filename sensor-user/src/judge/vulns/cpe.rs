//! CPE 2.3 formatted-string names (NISTIR 7695 §6.2), as NVD writes them in `criteria`.
//!
//! Values are kept unquoted and lower case: CPE comparisons are case-insensitive and the
//! inventory's mapping file gives plain vendor and product names. A value with an
//! unquoted wildcard (`*` or `?` at its start or end) is kept as a [`Component::Pattern`]
//! in its formatted form, since unquoting would lose which characters were wildcards.

use std::fmt;
use std::str::FromStr;

/// What kind of thing a CPE names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// `a`: software.
    Application,
    /// `o`: an operating system, or a device's firmware.
    OperatingSystem,
    /// `h`: a hardware device.
    Hardware,
}

impl Part {
    /// The letter the CPE uses.
    pub fn letter(self) -> char {
        match self {
            Part::Application => 'a',
            Part::OperatingSystem => 'o',
            Part::Hardware => 'h',
        }
    }
}

impl FromStr for Part {
    type Err = CpeError;

    fn from_str(s: &str) -> Result<Self, CpeError> {
        match s {
            "a" | "A" => Ok(Part::Application),
            "o" | "O" => Ok(Part::OperatingSystem),
            "h" | "H" => Ok(Part::Hardware),
            // The spec allows ANY here, but a part-less name cannot be indexed.
            other => Err(CpeError::Part(other.to_string())),
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

/// One attribute of a CPE name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Component {
    /// `*`: any value.
    Any,
    /// `-`: the attribute does not apply.
    Na,
    /// A value, unquoted and lower case.
    Value(String),
    /// A value with wildcards, in formatted form (escapes kept), lower case.
    Pattern(String),
}

impl Component {
    /// The unquoted value, if this is a plain value.
    pub fn value(&self) -> Option<&str> {
        match self {
            Component::Value(v) => Some(v),
            _ => None,
        }
    }

    /// Whether `text` (unquoted) is what this component accepts.
    pub fn accepts(&self, text: &str) -> bool {
        match self {
            Component::Any => true,
            Component::Na => false,
            Component::Value(v) => v.eq_ignore_ascii_case(text),
            Component::Pattern(p) => glob(p, &text.to_ascii_lowercase()),
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Component::Any => f.write_str("*"),
            Component::Na => f.write_str("-"),
            Component::Value(v) => {
                for c in v.chars() {
                    if !unreserved(c) {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
                Ok(())
            }
            Component::Pattern(p) => f.write_str(p),
        }
    }
}

/// A parsed CPE 2.3 name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cpe {
    pub part: Part,
    pub vendor: Component,
    pub product: Component,
    pub version: Component,
    pub update: Component,
    pub edition: Component,
    pub language: Component,
    pub sw_edition: Component,
    pub target_sw: Component,
    pub target_hw: Component,
    pub other: Component,
}

/// Why a string is not a CPE 2.3 formatted name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CpeError {
    #[error("does not start with `cpe:2.3:`")]
    Prefix,
    #[error("has {0} components after `cpe:2.3:`, not 11")]
    Count(usize),
    #[error("part {0:?} is not a, o or h")]
    Part(String),
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("{0} ends with a lone `\\`")]
    TrailingEscape(&'static str),
    #[error("{what} has {ch:?}, which must be quoted with `\\`")]
    Unquoted { what: &'static str, ch: char },
    #[error("{0} has a wildcard inside the value (only at its start or end)")]
    Wildcard(&'static str),
}

const NAMES: [&str; 11] = [
    "part",
    "vendor",
    "product",
    "version",
    "update",
    "edition",
    "language",
    "sw_edition",
    "target_sw",
    "target_hw",
    "other",
];

impl FromStr for Cpe {
    type Err = CpeError;

    fn from_str(s: &str) -> Result<Self, CpeError> {
        let rest = s
            .strip_prefix("cpe:2.3:")
            .or_else(|| s.strip_prefix("CPE:2.3:"))
            .ok_or(CpeError::Prefix)?;
        let raw = split_unquoted(rest);
        if raw.len() != NAMES.len() {
            return Err(CpeError::Count(raw.len()));
        }
        let part: Part = raw[0].parse()?;
        let mut c = Vec::with_capacity(10);
        for (text, name) in raw.iter().zip(NAMES).skip(1) {
            c.push(component(text, name)?);
        }
        let [
            vendor,
            product,
            version,
            update,
            edition,
            language,
            sw_edition,
            target_sw,
            target_hw,
            other,
        ] = <[Component; 10]>::try_from(c).map_err(|c| CpeError::Count(c.len() + 1))?;
        Ok(Cpe {
            part,
            vendor,
            product,
            version,
            update,
            edition,
            language,
            sw_edition,
            target_sw,
            target_hw,
            other,
        })
    }
}

impl fmt::Display for Cpe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cpe:2.3:{}:{}:{}:{}:{}:{}:{}:{}:{}:{}:{}",
            self.part,
            self.vendor,
            self.product,
            self.version,
            self.update,
            self.edition,
            self.language,
            self.sw_edition,
            self.target_sw,
            self.target_hw,
            self.other
        )
    }
}

/// Splits on `:` that no `\` quotes; quoting is kept for [`component`].
fn split_unquoted(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, b) in s.bytes().enumerate() {
        if quoted {
            quoted = false;
        } else if b == b'\\' {
            quoted = true;
        } else if b == b':' {
            out.push(&s[start..i]);
            start = i + 1;
        }
    }
    out.push(&s[start..]);
    out
}

/// Characters a formatted value may carry without a `\`.
fn unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn component(text: &str, what: &'static str) -> Result<Component, CpeError> {
    match text {
        "" => return Err(CpeError::Empty(what)),
        "*" => return Ok(Component::Any),
        "-" => return Ok(Component::Na),
        _ => {}
    }
    let chars: Vec<char> = text.chars().collect();
    let mut value = String::with_capacity(text.len());
    let mut wildcard = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let q = *chars.get(i + 1).ok_or(CpeError::TrailingEscape(what))?;
            // Only printable ASCII may be quoted (§6.2.2.1).
            if !q.is_ascii_graphic() {
                return Err(CpeError::Unquoted { what, ch: q });
            }
            value.push(q.to_ascii_lowercase());
            i += 2;
            continue;
        }
        if c == '*' || c == '?' {
            // `*` once, or a run of `?`, at the very start or end (§5.3.2).
            let at_start = chars[..i].iter().all(|&p| p == '?' && c == '?');
            let at_end = chars[i + 1..].iter().all(|&n| n == '?' && c == '?');
            if !(at_start || at_end) {
                return Err(CpeError::Wildcard(what));
            }
            wildcard = true;
            value.push(c);
            i += 1;
            continue;
        }
        if !unreserved(c) {
            return Err(CpeError::Unquoted { what, ch: c });
        }
        value.push(c.to_ascii_lowercase());
        i += 1;
    }
    if wildcard {
        Ok(Component::Pattern(text.to_ascii_lowercase()))
    } else {
        Ok(Component::Value(value))
    }
}

/// Matches `text` (unquoted, lower case) against a formatted value with wildcards.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    enum Tok {
        Lit(char),
        Star,
        One,
    }
    let mut toks = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        toks.push(match c {
            '\\' => match it.next() {
                Some(q) => Tok::Lit(q),
                None => return false,
            },
            '*' => Tok::Star,
            '?' => Tok::One,
            c => Tok::Lit(c),
        });
    }
    let text: Vec<char> = text.chars().collect();
    // Classic two-pointer glob with backtracking to the last `*`.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match toks.get(p) {
            Some(Tok::Lit(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            Some(Tok::One) => {
                t += 1;
                p += 1;
            }
            Some(Tok::Star) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    toks[p..].iter().all(|k| matches!(k, Tok::Star))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpe(s: &str) -> Cpe {
        match s.parse() {
            Ok(c) => c,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn openssh_with_portable_update() {
        let c = cpe("cpe:2.3:a:openbsd:openssh:7.2:p2:*:*:*:*:*:*");
        assert_eq!(c.part, Part::Application);
        assert_eq!(c.vendor.value(), Some("openbsd"));
        assert_eq!(c.product.value(), Some("openssh"));
        assert_eq!(c.version.value(), Some("7.2"));
        assert_eq!(c.update.value(), Some("p2"));
        assert_eq!(c.edition, Component::Any);
    }

    #[test]
    fn range_criteria_has_any_version() {
        let c = cpe("cpe:2.3:a:thekelleys:dnsmasq:*:*:*:*:*:*:*:*");
        assert_eq!(c.version, Component::Any);
        assert_eq!(c.product.value(), Some("dnsmasq"));
    }

    #[test]
    fn hardware_with_na_version() {
        let c = cpe("cpe:2.3:h:tp-link:tl-wr841n:-:*:*:*:*:*:*:*");
        assert_eq!(c.part, Part::Hardware);
        assert_eq!(c.vendor.value(), Some("tp-link"));
        assert_eq!(c.version, Component::Na);
        let fw = cpe("cpe:2.3:o:tp-link:tl-wr841n_firmware:3.16.9:*:*:*:*:*:*:*");
        assert_eq!(fw.part, Part::OperatingSystem);
        assert_eq!(fw.product.value(), Some("tl-wr841n_firmware"));
    }

    #[test]
    fn escapes_are_unquoted() {
        // Cisco versions carry parentheses; NVD quotes them.
        let c = cpe("cpe:2.3:o:cisco:ios:12.2\\(33\\)sxi:*:*:*:*:*:*:*");
        assert_eq!(c.version.value(), Some("12.2(33)sxi"));
        let c = cpe("cpe:2.3:a:nodejs:node\\.js:16.0.0:*:*:*:-:*:*:*");
        assert_eq!(c.product.value(), Some("node.js"));
        assert_eq!(c.sw_edition, Component::Na);
        // A quoted colon stays inside its component.
        let c = cpe("cpe:2.3:a:acme:widget:1.0\\:beta:*:*:*:*:*:*:*");
        assert_eq!(c.version.value(), Some("1.0:beta"));
        assert_eq!(c.update, Component::Any);
        let c = cpe("cpe:2.3:a:at\\&t:connect\\+\\+:2.0:*:*:*:*:*:*:*");
        assert_eq!(c.vendor.value(), Some("at&t"));
        assert_eq!(c.product.value(), Some("connect++"));
    }

    #[test]
    fn upper_case_is_folded() {
        let c = cpe("cpe:2.3:a:OpenBSD:OpenSSH:8.5:P1:*:*:*:*:*:*");
        assert_eq!(c.vendor.value(), Some("openbsd"));
        assert_eq!(c.update.value(), Some("p1"));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "cpe:2.3:a:openbsd:openssh:7.2:p2:*:*:*:*:*:*",
            "cpe:2.3:o:cisco:ios:12.2\\(33\\)sxi:*:*:*:*:*:*:*",
            "cpe:2.3:h:tp-link:tl-wr841n:-:*:*:*:*:*:*:*",
            "cpe:2.3:a:at\\&t:connect\\+\\+:2.0:*:*:*:*:*:*:*",
            "cpe:2.3:a:acme:widget:1.2*:*:*:*:*:*:*:*",
        ] {
            let c = cpe(s);
            assert_eq!(c.to_string(), s);
            assert_eq!(cpe(&c.to_string()), c);
        }
    }

    #[test]
    fn wildcards() {
        let c = cpe("cpe:2.3:a:acme:widget:1.2*:*:*:*:*:*:*:*");
        assert_eq!(c.version, Component::Pattern("1.2*".into()));
        assert!(c.version.accepts("1.2.5"));
        assert!(c.version.accepts("1.2"));
        assert!(!c.version.accepts("1.3"));
        let c = cpe("cpe:2.3:a:acme:widget:??.1:*:*:*:*:*:*:*");
        assert!(c.version.accepts("10.1"));
        assert!(!c.version.accepts("1.1"));
        // A quoted star is a literal star.
        let c = cpe("cpe:2.3:a:acme:widget:1\\*:*:*:*:*:*:*:*");
        assert_eq!(c.version.value(), Some("1*"));
        assert!(!c.version.accepts("12"));
    }

    #[test]
    fn refuses_what_is_not_a_cpe23_name() {
        let e = |s: &str| s.parse::<Cpe>().err();
        assert_eq!(e("cpe:/a:openbsd:openssh:7.2p2"), Some(CpeError::Prefix));
        assert_eq!(
            e("cpe:2.3:a:openbsd:openssh:7.2:*:*:*:*:*:*"),
            Some(CpeError::Count(10))
        );
        assert_eq!(
            e("cpe:2.3:x:openbsd:openssh:7.2:*:*:*:*:*:*:*"),
            Some(CpeError::Part("x".into()))
        );
        assert_eq!(
            e("cpe:2.3:a::openssh:7.2:*:*:*:*:*:*:*"),
            Some(CpeError::Empty("vendor"))
        );
        assert_eq!(
            e("cpe:2.3:a:openbsd:open ssh:7.2:*:*:*:*:*:*:*"),
            Some(CpeError::Unquoted {
                what: "product",
                ch: ' '
            })
        );
        assert_eq!(
            e("cpe:2.3:a:openbsd:openssh:7.2:*:*:*:*:*:*:x\\"),
            Some(CpeError::TrailingEscape("other"))
        );
        assert_eq!(
            e("cpe:2.3:a:openbsd:open*ssh:7.2:*:*:*:*:*:*:*"),
            Some(CpeError::Wildcard("product"))
        );
    }
}
