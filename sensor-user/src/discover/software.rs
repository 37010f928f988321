//! The software a device runs, named from what it says about itself: the product tokens
//! of its User-Agent and server headers (`name/version`, RFC 9110 section 10.1.5, with
//! comments in parentheses), UPnP `SERVER` strings (UPnP Device Architecture 2.0 section
//! 1.3.2: `OS/version UPnP/2.0 product/version`), SSH identification strings (RFC 4253
//! section 4.2), greetings, and what Kasa devices report. A product named by
//! `data/software/cpe.toml` (each entry cited) also gets its CPE 2.3 name, which the
//! vulnerability feeds are matched on; the rest is kept as named.
//!
//! Pure functions of the text; nothing here knows the device or the time.

use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{
    Facts,
    payload::{
        PayloadFacts,
        banner::{Banner, Protocol},
    },
};

/// Entries taken from one string: a User-Agent cannot fill an inventory by itself.
const MAX_PER_STRING: usize = 8;

/// Where a piece of software was named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// An SSDP `SERVER` header (answers and notifications).
    UpnpServer,
    /// An SSDP `USER-AGENT` header (searches).
    UpnpUserAgent,
    /// An HTTP `User-Agent` the device sent.
    HttpUserAgent,
    /// An HTTP `Server` header of a response the device sent.
    HttpServer,
    /// The device's SSH identification string.
    Ssh,
    /// The device's FTP, SMTP, POP3, IMAP or telnet greeting.
    Greeting,
    /// An RTSP or SIP `User-Agent` or `Server` header the device sent.
    RtspSip,
    /// A miner's name in its Stratum subscribe or login.
    Stratum,
    /// A Kasa device's sysinfo (`sw_ver`).
    Kasa,
    /// An mDNS TXT record's version key.
    Mdns,
}

/// One piece of software as named on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    /// The product, as the mapping spells it, else as the device did.
    pub product: String,
    /// Its version, when stated.
    pub version: Option<String>,
    /// Its CPE 2.3 name (version included), when the mapping knows the product.
    pub cpe: Option<String>,
    /// Where it was named.
    pub source: Source,
}

/// Product tokens that name a protocol or a compatibility marker, not software.
const NOT_SOFTWARE: [&str; 10] = [
    "upnp",
    "dlnadoc",
    "http",
    "rtsp",
    "sip",
    "mozilla",
    "like",
    "khtml",
    "compatible",
    "build",
];

/// Software named by a product string: a User-Agent, a `Server` header, a UPnP `SERVER`.
pub fn from_product_string(s: &str, source: Source) -> Vec<Named> {
    let map = CpeMap::builtin();
    let mut out: Vec<Named> = Vec::new();
    let push = |out: &mut Vec<Named>, n: Named| {
        let dup = out
            .iter()
            .any(|o| o.product.eq_ignore_ascii_case(&n.product));
        if !dup && out.len() < MAX_PER_STRING {
            out.push(n);
        }
    };
    // Known products first, wherever they sit (`dnsmasq-2.80` is no product token).
    for n in map.recognise(s, source) {
        push(&mut out, n);
    }
    for (name, version) in product_tokens(s) {
        push(
            &mut out,
            Named {
                product: name.to_string(),
                version: version.map(str::to_string),
                cpe: None,
                source,
            },
        );
    }
    out
}

/// Software named in free text (a greeting): only products the mapping knows, since
/// any word of a sentence could pass for a product.
pub fn from_text(s: &str, source: Source) -> Vec<Named> {
    let mut out = CpeMap::builtin().recognise(s, source);
    out.truncate(MAX_PER_STRING);
    out
}

/// Software named by an SSH identification string's software version (`OpenSSH_8.9p1`,
/// `dropbear_2019.78`): RFC 4253 leaves its form free, and `name_version` is the custom.
pub fn from_ssh(software: &str) -> Vec<Named> {
    let known = CpeMap::builtin().recognise(software, Source::Ssh);
    if !known.is_empty() {
        return known;
    }
    let (product, version) = match software.rsplit_once(['_', '-']) {
        Some((p, v))
            if v.len() <= 64 && v.starts_with(|c: char| c.is_ascii_digit()) && !p.is_empty() =>
        {
            (p, Some(v.to_string()))
        }
        _ => (software, None),
    };
    vec![Named {
        product: product.to_string(),
        version,
        cpe: None,
        source: Source::Ssh,
    }]
}

/// Software a flow's first payload from the device names.
pub fn from_payload(f: &PayloadFacts) -> Vec<Named> {
    match f {
        PayloadFacts::HttpRequest(r) => r
            .user_agent
            .as_deref()
            .map(|ua| from_product_string(ua, Source::HttpUserAgent))
            .unwrap_or_default(),
        PayloadFacts::HttpResponse(r) => r
            .server
            .as_deref()
            .map(|s| from_product_string(s, Source::HttpServer))
            .unwrap_or_default(),
        PayloadFacts::Banner(b) => from_banner(b),
        // A fingerprint names a TLS stack only through a database of them.
        PayloadFacts::Tls(_) => Vec::new(),
    }
}

/// Software a discovery frame names: SSDP `SERVER` and `USER-AGENT` headers, a Kasa
/// device's firmware.
pub fn from_facts(f: &Facts) -> Vec<Named> {
    match f {
        Facts::Ssdp(s) => s
            .server
            .iter()
            .flat_map(|v| from_product_string(v, Source::UpnpServer))
            .chain(
                s.user_agent
                    .iter()
                    .flat_map(|v| from_product_string(v, Source::UpnpUserAgent)),
            )
            .collect(),
        Facts::Kasa(k) => match (&k.model, &k.sw_ver) {
            (Some(m), Some(v)) => from_kasa(m, v).into_iter().collect(),
            _ => Vec::new(),
        },
        Facts::Mdns(m) => from_mdns(&m.services, &m.txt),
        _ => Vec::new(),
    }
}

/// One TXT key that carries a version (`data/software/mdns-version-keys.toml`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MdnsKey {
    /// The service type it is announced under (`_esphomelib._tcp`).
    pub service: String,
    /// The key.
    pub key: String,
    /// The product whose version it is.
    pub product: String,
    /// What the value is.
    pub meaning: String,
    /// Where the key is defined.
    pub source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MdnsKeysFile {
    key: Vec<MdnsKey>,
}

/// The built-in TXT version keys.
pub fn mdns_keys() -> &'static [MdnsKey] {
    static KEYS: OnceLock<Vec<MdnsKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        toml::from_str::<MdnsKeysFile>(include_str!("../../data/software/mdns-version-keys.toml"))
            .expect("the built-in mDNS version keys parse")
            .key
    })
}

/// Whether the mDNS decoder keeps TXT `key` (lower case): it carries a version.
pub fn is_mdns_version_key(key: &str) -> bool {
    mdns_keys().iter().any(|k| k.key.eq_ignore_ascii_case(key))
}

/// Software an mDNS message names: a version key of a service it announced in the same
/// message (`version=2024.6.1` under `_esphomelib._tcp`).
pub fn from_mdns<'a>(
    services: impl IntoIterator<Item = &'a String> + Clone,
    txt: impl IntoIterator<Item = &'a String>,
) -> Vec<Named> {
    let mut out: Vec<Named> = Vec::new();
    for entry in txt {
        let Some((key, value)) = entry.split_once('=') else {
            continue;
        };
        // `20180218-181303/1.2.3`: the part after the slash is the version.
        let value = value.rsplit('/').next().unwrap_or(value).trim();
        if !value.starts_with(|c: char| c.is_ascii_digit()) || value.len() > 64 {
            continue;
        }
        let announced = |svc: &str| {
            services.clone().into_iter().any(|s| {
                s.to_ascii_lowercase()
                    .starts_with(&svc.to_ascii_lowercase())
            })
        };
        let Some(k) = mdns_keys()
            .iter()
            .find(|k| k.key.eq_ignore_ascii_case(key) && announced(&k.service))
        else {
            continue;
        };
        if out.len() < MAX_PER_STRING && !out.iter().any(|n| n.product == k.product) {
            out.push(Named {
                product: k.product.clone(),
                version: Some(value.to_string()),
                cpe: None,
                source: Source::Mdns,
            });
        }
    }
    out
}

fn from_banner(b: &Banner) -> Vec<Named> {
    match b.protocol {
        Protocol::Ssh => b.software.as_deref().map(from_ssh).unwrap_or_default(),
        Protocol::Rtsp | Protocol::Sip => b
            .user_agent
            .iter()
            .chain(&b.server)
            .flat_map(|s| from_product_string(s, Source::RtspSip))
            .take(MAX_PER_STRING)
            .collect(),
        Protocol::Stratum => b
            .user_agent
            .iter()
            .flat_map(|s| from_product_string(s, Source::Stratum))
            .take(MAX_PER_STRING)
            .collect(),
        Protocol::Irc => Vec::new(),
        Protocol::Ftp
        | Protocol::Smtp
        | Protocol::FtpOrSmtp
        | Protocol::Pop3
        | Protocol::Imap
        | Protocol::Telnet => b
            .text
            .as_deref()
            .map(|t| from_text(t, Source::Greeting))
            .unwrap_or_default(),
    }
}

/// A Kasa device's firmware: its model and `sw_ver` (`1.5.4 Build 180815 Rel.121440`).
pub fn from_kasa(model: &str, sw_ver: &str) -> Option<Named> {
    let version = sw_ver.split_whitespace().next()?;
    if !version.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Some(Named {
        product: format!("{model} firmware"),
        version: Some(version.to_string()),
        cpe: None,
        source: Source::Kasa,
    })
}

/// The device model an Android User-Agent names: AOSP's default (`RuntimeInit`'s
/// `getDefaultUserAgent`: `Dalvik/<vm> (Linux; U; Android <version>; <Build.MODEL>
/// Build/<Build.ID>)`) and the WebView's and browsers' (`(Linux; Android <version>;
/// <model>) ...`, an older locale item before the model). `K`, what Chrome's reduced
/// User-Agent puts for every model, names none.
pub fn android_model(ua: &str) -> Option<&str> {
    let rest = &ua[ua.find("Android ")?..];
    let after = &rest[rest.find("; ")? + 2..];
    let item = &after[..after.find(')')?];
    let item = item.find(" Build/").map_or(item, |i| &item[..i]);
    let model = item.rsplit("; ").next()?.trim();
    (!model.is_empty() && model != "K" && model.len() <= 64).then_some(model)
}

/// `name/version` pairs of a product string, and `Name 1.2` items of its comments
/// (`(Linux; U; Android 4.4.2; ...)`). A version must start with a digit.
pub fn product_tokens(s: &str) -> Vec<(&str, Option<&str>)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        rest = &rest[start..];
        if rest.starts_with('(') {
            // A comment; comments nest (RFC 9110 section 5.6.5).
            let mut depth = 0usize;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(rest.len(), |(i, _)| i + 1);
            let inner = rest[1..end].trim_end_matches(')');
            out.extend(inner.split(';').filter_map(comment_item));
            rest = &rest[end..];
            continue;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '(')
            .unwrap_or(rest.len());
        let token = &rest[..end];
        rest = &rest[end..];
        let (name, version) = match token.split_once('/') {
            Some((n, v)) => (
                n,
                Some(v).filter(|v| v.len() <= 64 && v.starts_with(|c: char| c.is_ascii_digit())),
            ),
            None => (token, None),
        };
        let name = name.trim_matches(|c: char| c == ',' || c == ';');
        // `Cisco v11.0.0`: a version standing alone belongs to the name before it.
        if version.is_none() && looks_like_version(name) {
            if let Some(last) = out.last_mut().filter(|l| l.1.is_none()) {
                last.1 = Some(name);
            }
            continue;
        }
        if is_product_name(name) {
            out.push((name, version));
        }
    }
    out
}

/// `Android 4.4.2` in a comment: words, then a version.
fn comment_item(item: &str) -> Option<(&str, Option<&str>)> {
    let item = item.trim();
    let (name, version) = item.rsplit_once(' ')?;
    let name = name.trim();
    let words_ok = name
        .split(' ')
        .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphabetic()));
    (words_ok
        && version.len() <= 64
        && version.starts_with(|c: char| c.is_ascii_digit())
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
        && !NOT_SOFTWARE.contains(&name.to_ascii_lowercase().as_str()))
    .then_some((name, Some(version)))
}

/// `11.0.0`, `v11.0.0`, `2019.78`.
fn looks_like_version(s: &str) -> bool {
    let digits = s.strip_prefix(['v', 'V']).unwrap_or(s);
    s.len() <= 64
        && digits.starts_with(|c: char| c.is_ascii_digit())
        && digits.contains('.')
        && digits
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
}

fn is_product_name(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+!".contains(c))
        && !NOT_SOFTWARE.contains(&name.to_ascii_lowercase().as_str())
}

/// The mapping from products as devices name them to CPE 2.3 vendor and product
/// (`data/software/cpe.toml`).
pub struct CpeMap {
    rules: Vec<(Regex, Rule)>,
    vendors: Vec<VendorRule>,
}

/// One entry of the mapping file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The product as devices name it.
    pub name: String,
    /// A case-insensitive pattern, searched for anywhere in the string (each is anchored
    /// on a word boundary or a delimiter), with a `version` group and an optional
    /// `update` group (what NVD keeps in the CPE's update field).
    #[serde(rename = "match")]
    pub pattern: String,
    /// CPE part: `a` (application), `o` (operating system), `h` (hardware).
    pub part: String,
    /// CPE vendor, as NVD spells it.
    pub vendor: String,
    /// CPE product, as NVD spells it.
    pub product: String,
    /// Where that CPE name is shown (an NVD record or the CPE dictionary).
    pub source: String,
    /// Strings with the version (and the update, where the pattern has one) the pattern
    /// must take from them.
    #[serde(default)]
    pub examples: Vec<Vec<String>>,
    /// Strings the pattern must not match.
    #[serde(default)]
    pub counterexamples: Vec<String>,
    /// Where the examples were seen.
    #[serde(default)]
    pub examples_source: Option<String>,
    /// Caveats for whoever matches on it.
    #[serde(default)]
    pub notes: Option<String>,
}

/// A maker's name as NVD spells it as a CPE vendor, for its devices' hardware and
/// firmware names (`cpe:2.3:h:dlink:dir-645`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorRule {
    /// The brand as the identification names it.
    pub brand: String,
    /// CPE vendor, as NVD spells it.
    pub vendor: String,
    /// The NVD record whose configurations spell it so.
    pub source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    product: Vec<Rule>,
    #[serde(default)]
    vendor: Vec<VendorRule>,
}

/// The built-in mapping file.
pub const BUILTIN: &str = include_str!("../../data/software/cpe.toml");

/// A mapping file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CpeMapError {
    /// Not TOML of the expected shape.
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    /// A pattern that does not compile or has no `version` group.
    #[error("entry {name}: {why}")]
    Pattern {
        /// The entry's `name`.
        name: String,
        /// What is wrong.
        why: String,
    },
}

impl CpeMap {
    /// Parses a mapping file.
    pub fn parse(text: &str) -> Result<Self, CpeMapError> {
        let file: MapFile = toml::from_str(text)?;
        let rules = file
            .product
            .into_iter()
            .map(|r| {
                let re = Regex::new(&format!("(?i){}", r.pattern)).map_err(|e| {
                    CpeMapError::Pattern {
                        name: r.name.clone(),
                        why: e.to_string(),
                    }
                })?;
                if !re.capture_names().any(|n| n == Some("version")) {
                    return Err(CpeMapError::Pattern {
                        name: r.name.clone(),
                        why: "no (?P<version>...) group".into(),
                    });
                }
                Ok((re, r))
            })
            .collect::<Result<_, CpeMapError>>()?;
        Ok(Self {
            rules,
            vendors: file.vendor,
        })
    }

    /// The built-in mapping (its tests keep it valid).
    pub fn builtin() -> &'static CpeMap {
        static MAP: OnceLock<CpeMap> = OnceLock::new();
        MAP.get_or_init(|| CpeMap::parse(BUILTIN).expect("the built-in CPE mapping parses"))
    }

    /// The entries, for checks.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|(_, r)| r)
    }

    /// NVD's vendor name for a brand: the brand's letters and digits, case aside, start
    /// with the mapped brand's (`D-Link International` is `D-Link`).
    pub fn vendor_of(&self, brand: &str) -> Option<&str> {
        let key = |s: &str| -> String {
            s.chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_lowercase())
                .collect()
        };
        let b = key(brand);
        self.vendors
            .iter()
            .find(|v| !v.brand.is_empty() && b.starts_with(&key(&v.brand)))
            .map(|v| v.vendor.as_str())
    }

    /// Known products named anywhere in `s`.
    pub fn recognise(&self, s: &str, source: Source) -> Vec<Named> {
        let mut out: Vec<Named> = Vec::new();
        for (re, r) in &self.rules {
            let Some(c) = re.captures(s) else { continue };
            let Some(v) = c.name("version") else { continue };
            if out.iter().any(|n| n.product == r.name) {
                continue;
            }
            let base = v.as_str();
            let update = c.name("update").map(|u| u.as_str());
            // Shown as the device said it; the CPE splits off what NVD keeps apart.
            let version = format!("{base}{}", update.unwrap_or(""));
            out.push(Named {
                product: r.name.clone(),
                cpe: Some(cpe_name(&r.part, &r.vendor, &r.product, Some(base), update)),
                version: Some(version),
                source,
            });
        }
        out
    }
}

/// A CPE 2.3 formatted string; version and update quoted by the specification's rules
/// (NISTIR 7695 section 6.2: characters other than letters, digits, `_`, `-` and `.`
/// take a backslash).
pub fn cpe_name(
    part: &str,
    vendor: &str,
    product: &str,
    version: Option<&str>,
    update: Option<&str>,
) -> String {
    fn quote(v: Option<&str>) -> String {
        match v {
            Some(v) if !v.is_empty() => v
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "_-.".contains(c) {
                        c.to_ascii_lowercase().to_string()
                    } else {
                        format!("\\{c}")
                    }
                })
                .collect(),
            _ => "*".to_string(),
        }
    }
    let (version, update) = (quote(version), quote(update));
    format!("cpe:2.3:{part}:{vendor}:{product}:{version}:{update}:*:*:*:*:*:*")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &str) -> Vec<(String, Option<String>)> {
        product_tokens(s)
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn android_user_agents_name_their_model() {
        for (ua, model) in [
            (
                "Dalvik/2.1.0 (Linux; U; Android 9; AFTMM Build/PS7233)",
                Some("AFTMM"),
            ),
            (
                "Mozilla/5.0 (Linux; Android 9; BRAVIA 4K GB Build/PTT1.190515.001.S52; wv) AppleWebKit/537.36",
                Some("BRAVIA 4K GB"),
            ),
            (
                "Mozilla/5.0 (Linux; U; Android 4.0.3; en-us; SM-T510 Build/IML74K)",
                Some("SM-T510"),
            ),
            (
                "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 Chrome/120.0.0.0 Mobile Safari/537.36",
                None,
            ),
            ("Go-http-client/1.1", None),
            ("Mozilla/5.0 (X11; Linux x86_64; Android", None),
        ] {
            assert_eq!(android_model(ua), model, "{ua}");
        }
    }

    #[test]
    fn product_tokens_follow_rfc_9110() {
        // From the captures in tests/fixtures (tshark's http.user_agent and http.server).
        assert_eq!(
            pairs("Python/3.8 aiohttp/3.6.2"),
            [
                ("Python".into(), Some("3.8".into())),
                ("aiohttp".into(), Some("3.6.2".into()))
            ]
        );
        assert_eq!(
            pairs("Dalvik/1.6.0 (Linux; U; Android 4.4.2; AOSP Netatmo-Camera Build/KOT49H)"),
            [
                ("Dalvik".into(), Some("1.6.0".into())),
                ("Android".into(), Some("4.4.2".into()))
            ]
        );
        // UPnP's SERVER: the OS, the UPnP version (a protocol, skipped), the product.
        assert_eq!(
            pairs("Linux/3.10.14 UPnP/1.0 DLNADOC/1.50 Platinum/1.0.5.13"),
            [
                ("Linux".into(), Some("3.10.14".into())),
                ("Platinum".into(), Some("1.0.5.13".into()))
            ]
        );
        // RFC 3261's User-Agent is free text; a version may stand alone.
        assert_eq!(
            pairs("Cisco v11.0.0"),
            [("Cisco".into(), Some("v11.0.0".into()))]
        );
        assert_eq!(
            pairs("Mozilla/5.0 (compatible; x (y)) curl"),
            [("curl".into(), None)]
        );
        assert!(pairs("").is_empty());
        assert!(pairs("((((").is_empty());
        assert!(pairs("/// 1.0/2 ()").is_empty());
    }

    #[test]
    fn ssh_software_versions_split_at_the_last_separator() {
        let n = &from_ssh("SomeSSH_1.2.3")[0];
        assert_eq!(
            (n.product.as_str(), n.version.as_deref()),
            ("SomeSSH", Some("1.2.3"))
        );
        let n = &from_ssh("weird")[0];
        assert_eq!((n.product.as_str(), n.version.as_deref()), ("weird", None));
    }

    #[test]
    fn kasa_firmware_takes_the_version_before_the_build() {
        let n = from_kasa("HS110(EU)", "1.5.4 Build 180815 Rel.121440").unwrap();
        assert_eq!(n.product, "HS110(EU) firmware");
        assert_eq!(n.version.as_deref(), Some("1.5.4"));
        assert!(from_kasa("HS110(EU)", "Build 1").is_none());
    }

    #[test]
    fn cpe_names_quote_what_the_specification_quotes() {
        assert_eq!(
            cpe_name("a", "openbsd", "openssh", Some("5.3"), None),
            "cpe:2.3:a:openbsd:openssh:5.3:*:*:*:*:*:*:*"
        );
        assert_eq!(
            cpe_name("a", "openbsd", "openssh", Some("8.9"), Some("p1")),
            "cpe:2.3:a:openbsd:openssh:8.9:p1:*:*:*:*:*:*"
        );
        assert_eq!(
            cpe_name("a", "netbsd", "tnftpd", Some("2010+x"), None),
            "cpe:2.3:a:netbsd:tnftpd:2010\\+x:*:*:*:*:*:*:*"
        );
        assert_eq!(
            cpe_name("o", "v", "p", None, None),
            "cpe:2.3:o:v:p:*:*:*:*:*:*:*:*"
        );
    }

    #[test]
    fn the_builtin_mapping_keeps_its_examples() {
        let map = CpeMap::builtin();
        assert!(map.rules().count() >= 10);
        for r in map.rules() {
            for ex in &r.examples {
                let (s, want) = (&ex[0], format!("{}{}", ex[1], ex.get(2).map_or("", |u| u)));
                let got = map
                    .recognise(s, Source::Greeting)
                    .into_iter()
                    .find(|n| n.product == r.name);
                assert_eq!(
                    got.as_ref().and_then(|n| n.version.as_deref()),
                    Some(want.as_str()),
                    "{}: example {s:?}",
                    r.name
                );
                assert!(
                    got.unwrap()
                        .cpe
                        .unwrap()
                        .starts_with(&format!("cpe:2.3:{}:{}:{}:", r.part, r.vendor, r.product))
                );
            }
            for s in &r.counterexamples {
                assert!(
                    !map.recognise(s, Source::Greeting)
                        .iter()
                        .any(|n| n.product == r.name),
                    "{}: counterexample {s:?} matched",
                    r.name
                );
            }
        }
    }

    #[test]
    fn mdns_version_keys_count_under_their_own_service_only() {
        let svc = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let txt = svc(&["version=2024.6.1", "mac=0123"]);
        let esphome = from_mdns(&svc(&["_esphomelib._tcp.local"]), &txt);
        assert_eq!(esphome.len(), 1);
        assert_eq!(
            (esphome[0].product.as_str(), esphome[0].version.as_deref()),
            ("ESPHome", Some("2024.6.1"))
        );
        // The same key under a service that defines no version key says nothing.
        assert!(from_mdns(&svc(&["_printer._tcp.local"]), &txt).is_empty());
        let mgos = from_mdns(
            &svc(&["_http._tcp.local"]),
            &svc(&["fw_id=20180218-181303/1.4.2"]),
        );
        assert_eq!(mgos[0].version.as_deref(), Some("1.4.2"));
        // An unset version (`???`) is none.
        assert!(
            from_mdns(
                &svc(&["_http._tcp.local"]),
                &svc(&["fw_id=20180218-181303/???"])
            )
            .is_empty()
        );
        assert!(is_mdns_version_key("systembuildversion"));
        assert!(!is_mdns_version_key("txtvers"));
    }

    #[test]
    fn hostile_strings_stay_bounded() {
        let long = "a/1 ".repeat(1000);
        assert!(from_product_string(&long, Source::HttpUserAgent).len() <= MAX_PER_STRING);
        let nested = "(".repeat(500) + &")".repeat(500);
        assert!(from_product_string(&nested, Source::HttpUserAgent).is_empty());
        let _ = from_text(&"OpenSSH_".repeat(100), Source::Greeting);
    }
}
