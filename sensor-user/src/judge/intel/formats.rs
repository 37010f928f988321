//! Feed formats, each a pure function from a file's text to indicators with their line,
//! the lines that did not parse (with why) and the lines skipped on purpose.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

/// One indicator as a feed gives it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Indicator {
    /// An address or prefix.
    Net(IpNet),
    /// A domain (lower case, no trailing dot); its subdomains match too.
    Domain(String),
    /// A TLS client's JA4 fingerprint (FoxIO's JA4, the `a_b_c` form).
    Ja4(String),
}

/// One parsed entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// What it lists.
    pub indicator: Indicator,
    /// The category or reason the feed gives, if any.
    pub category: Option<String>,
    /// 1-based line (0 for formats without lines, like STIX JSON).
    pub line: usize,
}

/// What one file gave.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Indicators.
    pub entries: Vec<Entry>,
    /// Lines that did not parse: (line, why).
    pub invalid: Vec<(usize, String)>,
    /// Entries skipped on purpose (types the sensor cannot match, expired indicators).
    pub skipped: usize,
}

/// The formats `[[intel.feed]] format` names.
pub const FORMATS: [&str; 10] = [
    "plain",
    "spamhaus",
    "firehol",
    "feodo-csv",
    "suricata-iprep",
    "zeek",
    "stix2",
    "domains",
    "hosts",
    "ja4",
];

/// A JA4 fingerprint as JA4's specification writes it (FoxIO, `technical_details/JA4.md`):
/// `t` or `q` (TCP or QUIC) or `d` (DTLS), two characters of version, `d` or `i` (a
/// domain or an address asked for), two digits each of cipher and extension counts, two
/// characters of the first ALPN; then two truncated SHA-256 hashes of 12 hex digits.
pub fn ja4(s: &str) -> Option<String> {
    let s = s.trim().to_ascii_lowercase();
    let mut parts = s.split('_');
    let (a, b, c) = (parts.next()?, parts.next()?, parts.next()?);
    let ab = a.as_bytes();
    let ok = parts.next().is_none()
        && ab.len() == 10
        && matches!(ab[0], b't' | b'q' | b'd')
        && ab[1..3].iter().all(u8::is_ascii_alphanumeric)
        && matches!(ab[3], b'd' | b'i')
        && ab[4..8].iter().all(u8::is_ascii_digit)
        && ab[8..10].iter().all(u8::is_ascii_alphanumeric)
        && [b, c]
            .iter()
            .all(|h| h.len() == 12 && h.bytes().all(|x| x.is_ascii_hexdigit()));
    ok.then_some(s)
}

/// An address or prefix as written in feeds.
pub fn net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .map(|n| n.trunc())
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// A DNS name as feeds write it, checked.
pub fn domain(s: &str) -> Option<String> {
    let n = s.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !n.is_empty()
        && n.len() <= 253
        && n.contains('.')
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then_some(n)
}

/// Parses `text` in `format`; `categories` is the text of a Suricata categories file.
pub fn parse(format: &str, text: &str, categories: Option<&str>, now_epoch_s: i64) -> Parsed {
    match format {
        "plain" | "firehol" => lines(text, &['#', ';'], |l| {
            net(l)
                .map(|n| (Indicator::Net(n), None))
                .ok_or("not an IP address or prefix")
        }),
        "spamhaus" => lines(text, &[';'], |l| {
            net(l)
                .map(|n| (Indicator::Net(n), None))
                .ok_or("not an IP address or prefix")
        })
        .with_categories_from(text, ';'),
        "domains" => lines(text, &['#'], |l| {
            domain(l)
                .map(|d| (Indicator::Domain(d), None))
                .ok_or("not a domain name")
        }),
        "hosts" => hosts(text),
        // A fingerprint a line, then what it is (the tool's name) if the list says.
        "ja4" => lines(text, &['#'], |l| {
            let mut w = l.split_whitespace();
            let fp = w.next().and_then(ja4).ok_or("not a JA4 fingerprint")?;
            let rest: Vec<&str> = w.collect();
            Ok((
                Indicator::Ja4(fp),
                (!rest.is_empty()).then(|| rest.join(" ")),
            ))
        }),
        "feodo-csv" => feodo(text),
        "suricata-iprep" => iprep(text, categories),
        "zeek" => zeek(text),
        "stix2" => stix2(text, now_epoch_s),
        other => Parsed {
            invalid: vec![(0, format!("unknown format {other:?}"))],
            ..Parsed::default()
        },
    }
}

/// Line formats: comments start at any of `comment`; each remaining non-empty line is one
/// entry.
fn lines(
    text: &str,
    comment: &[char],
    one: impl Fn(&str) -> Result<(Indicator, Option<String>), &'static str>,
) -> Parsed {
    let mut p = Parsed::default();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.split(comment).next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        match one(l) {
            Ok((indicator, category)) => p.entries.push(Entry {
                indicator,
                category,
                line: i + 1,
            }),
            Err(why) => p.invalid.push((i + 1, format!("{why}: {:?}", cut(l)))),
        }
    }
    p
}

trait WithCategories {
    fn with_categories_from(self, text: &str, sep: char) -> Self;
}

impl WithCategories for Parsed {
    /// Spamhaus puts the SBL reference after the separator on the same line.
    fn with_categories_from(mut self, text: &str, sep: char) -> Self {
        let all: Vec<&str> = text.lines().collect();
        for e in &mut self.entries {
            e.category = all
                .get(e.line - 1)
                .and_then(|l| l.split_once(sep))
                .map(|(_, c)| c.trim().to_string())
                .filter(|c| !c.is_empty());
        }
        self
    }
}

fn cut(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Hosts files: `0.0.0.0 name [name ...]`; the address is the blocker's, the names are
/// the indicators.
fn hosts(text: &str) -> Parsed {
    let mut p = Parsed::default();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        let mut words = l.split_whitespace();
        let first = words.next().unwrap_or("");
        if first.parse::<IpAddr>().is_err() {
            p.invalid
                .push((i + 1, format!("no address before the names: {:?}", cut(l))));
            continue;
        }
        let mut any = false;
        for w in words {
            any = true;
            if matches!(
                w,
                "localhost" | "localhost.localdomain" | "local" | "broadcasthost"
            ) || w.starts_with("ip6-")
            {
                p.skipped += 1;
                continue;
            }
            match domain(w) {
                Some(d) => p.entries.push(Entry {
                    indicator: Indicator::Domain(d),
                    category: None,
                    line: i + 1,
                }),
                None => p
                    .invalid
                    .push((i + 1, format!("not a domain name: {:?}", cut(w)))),
            }
        }
        if !any {
            p.invalid.push((i + 1, "an address without names".into()));
        }
    }
    p
}

/// abuse.ch CSV: `#` comments, a header naming the columns, then quoted rows; the
/// address is `dst_ip` (or `ip_address`), the category `malware`.
fn feodo(text: &str) -> Parsed {
    let mut p = Parsed::default();
    let mut header: Option<Vec<String>> = None;
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        // Comments, except a commented header (some abuse.ch exports comment it out).
        if l.is_empty() || (l.starts_with('#') && (header.is_some() || !l.contains("dst_ip"))) {
            continue;
        }
        let l = l.trim_start_matches('#').trim();
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(l.as_bytes());
        let Some(Ok(rec)) = r.records().next() else {
            p.invalid
                .push((i + 1, format!("not a CSV row: {:?}", cut(l))));
            continue;
        };
        let cols: Vec<String> = rec.iter().map(|c| c.trim().to_string()).collect();
        let Some(h) = &header else {
            if cols.iter().any(|c| c == "dst_ip" || c == "ip_address") {
                header = Some(cols);
            }
            continue;
        };
        let col = |name: &str| h.iter().position(|c| c == name).and_then(|i| cols.get(i));
        let Some(ip) = col("dst_ip").or_else(|| col("ip_address")) else {
            p.invalid.push((i + 1, "no dst_ip column".into()));
            continue;
        };
        match net(ip) {
            Some(n) => p.entries.push(Entry {
                indicator: Indicator::Net(n),
                category: col("malware").filter(|m| !m.is_empty()).cloned(),
                line: i + 1,
            }),
            None => p
                .invalid
                .push((i + 1, format!("not an IP address: {ip:?}"))),
        }
    }
    if header.is_none() {
        p.invalid.push((0, "no header with a dst_ip column".into()));
    }
    p
}

/// Suricata IP reputation: `ip|cidr,category,score`, the category a number the
/// categories file (`id,short name,description`) names.
fn iprep(text: &str, categories: Option<&str>) -> Parsed {
    let names: std::collections::HashMap<&str, &str> = categories
        .unwrap_or("")
        .lines()
        .filter_map(|l| {
            let mut c = l.split(',');
            Some((c.next()?.trim(), c.next()?.trim()))
        })
        .collect();
    let mut p = Parsed::default();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        let cols: Vec<&str> = l.split(',').map(str::trim).collect();
        let (Some(ip), Some(cat), Some(score)) = (cols.first(), cols.get(1), cols.get(2)) else {
            p.invalid
                .push((i + 1, format!("not ip,category,score: {:?}", cut(l))));
            continue;
        };
        let Some(n) = net(ip) else {
            p.invalid
                .push((i + 1, format!("not an IP address or prefix: {ip:?}")));
            continue;
        };
        let Ok(score) = score.parse::<u8>() else {
            p.invalid
                .push((i + 1, format!("score is not 0-127: {score:?}")));
            continue;
        };
        if score == 0 {
            // Reputation 0 means "no reputation": nothing to match.
            p.skipped += 1;
            continue;
        }
        let name = names.get(cat).copied().unwrap_or(cat);
        p.entries.push(Entry {
            indicator: Indicator::Net(n),
            category: Some(format!("{name} (score {score})")),
            line: i + 1,
        });
    }
    p
}

/// Zeek intel framework: tab-separated, a `#fields` header; ADDR, SUBNET and DOMAIN
/// indicators are taken, other types skipped and counted.
fn zeek(text: &str) -> Parsed {
    let mut p = Parsed::default();
    let mut fields: Option<Vec<&str>> = None;
    for (i, raw) in text.lines().enumerate() {
        if let Some(h) = raw.strip_prefix("#fields") {
            fields = Some(h.split('\t').filter(|f| !f.is_empty()).collect());
            continue;
        }
        if raw.starts_with('#') || raw.trim().is_empty() {
            continue;
        }
        let Some(f) = &fields else {
            p.invalid
                .push((i + 1, "a row before the #fields header".into()));
            continue;
        };
        let cols: Vec<&str> = raw.split('\t').collect();
        let col = |name: &str| {
            f.iter()
                .position(|c| *c == name)
                .and_then(|i| cols.get(i))
                .copied()
        };
        let (Some(ind), Some(kind)) = (col("indicator"), col("indicator_type")) else {
            p.invalid
                .push((i + 1, "no indicator or indicator_type column".into()));
            continue;
        };
        let category = col("meta.desc")
            .or_else(|| col("meta.source"))
            .filter(|c| !c.is_empty() && *c != "-")
            .map(str::to_string);
        let indicator = match kind {
            "Intel::ADDR" | "Intel::SUBNET" => net(ind).map(Indicator::Net),
            "Intel::DOMAIN" => domain(ind).map(Indicator::Domain),
            _ => {
                p.skipped += 1;
                continue;
            }
        };
        match indicator {
            Some(indicator) => p.entries.push(Entry {
                indicator,
                category,
                line: i + 1,
            }),
            None => p
                .invalid
                .push((i + 1, format!("{kind} {:?} does not parse", cut(ind)))),
        }
    }
    p
}

/// STIX 2.1 bundles: indicators whose pattern compares `ipv4-addr:value`,
/// `ipv6-addr:value` or `domain-name:value`, alone or in OR compounds; indicators past
/// `valid_until` and other observables are skipped and counted.
fn stix2(text: &str, now_epoch_s: i64) -> Parsed {
    let mut p = Parsed::default();
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            p.invalid.push((e.line(), format!("not JSON: {e}")));
            return p;
        }
    };
    let objects = match v.get("objects").and_then(Value::as_array) {
        Some(o) => o.as_slice(),
        None if v.get("type").and_then(Value::as_str) == Some("indicator") => {
            std::slice::from_ref(&v)
        }
        None => {
            p.invalid.push((0, "no objects in the bundle".into()));
            return p;
        }
    };
    for (k, o) in objects.iter().enumerate() {
        if o.get("type").and_then(Value::as_str) != Some("indicator") {
            continue;
        }
        if let Some(until) = o.get("valid_until").and_then(Value::as_str)
            && chrono::DateTime::parse_from_rfc3339(until)
                .is_ok_and(|t| t.timestamp() < now_epoch_s)
        {
            p.skipped += 1;
            continue;
        }
        let Some(pattern) = o.get("pattern").and_then(Value::as_str) else {
            p.invalid
                .push((0, format!("objects[{k}]: an indicator without a pattern")));
            continue;
        };
        let category = o
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                o.get("indicator_types")
                    .or_else(|| o.get("labels"))
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
        let inner = pattern.trim().trim_start_matches('[').trim_end_matches(']');
        if inner.contains(" AND ") || inner.contains("] ") {
            p.skipped += 1;
            continue;
        }
        for term in inner.split(" OR ") {
            let Some((lhs, rhs)) = term.split_once('=') else {
                p.invalid
                    .push((0, format!("objects[{k}]: no comparison in {:?}", cut(term))));
                continue;
            };
            let value = rhs.trim().trim_matches('\'');
            let indicator = match lhs.trim() {
                "ipv4-addr:value" | "ipv6-addr:value" => net(value).map(Indicator::Net),
                "domain-name:value" => domain(value).map(Indicator::Domain),
                _ => {
                    p.skipped += 1;
                    continue;
                }
            };
            match indicator {
                Some(indicator) => p.entries.push(Entry {
                    indicator,
                    category: category.clone(),
                    line: 0,
                }),
                None => p
                    .invalid
                    .push((0, format!("objects[{k}]: {:?} does not parse", cut(value)))),
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ja4_lists_a_fingerprint_a_line_with_what_it_is() {
        let p = parse(
            "ja4",
            "# FoxIO's list, a slice\nt13d190900_9dc949149365_97f8aa674fd9 Sliver\nT13D1516H2_8DAAF6152771_E5627EFA2AB1\nt13d1516h2_8daaf6152771 cut short\nx13d1516h2_8daaf6152771_e5627efa2ab1\n",
            None,
            0,
        );
        assert_eq!(p.entries.len(), 2, "{p:?}");
        assert_eq!(
            p.entries[0].indicator,
            Indicator::Ja4("t13d190900_9dc949149365_97f8aa674fd9".into())
        );
        assert_eq!(p.entries[0].category.as_deref(), Some("Sliver"));
        assert_eq!(
            p.entries[1].indicator,
            Indicator::Ja4("t13d1516h2_8daaf6152771_e5627efa2ab1".into()),
            "lower case"
        );
        assert_eq!(
            p.invalid.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            [4, 5]
        );
    }

    fn fixture(p: &str) -> String {
        std::fs::read_to_string(crate::testdata::path(&format!("intel/{p}"))).unwrap()
    }

    fn nets(p: &Parsed) -> Vec<String> {
        p.entries
            .iter()
            .filter_map(|e| match &e.indicator {
                Indicator::Net(n) => Some(n.to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn feodo_csv_from_abuse_ch() {
        let t = fixture("feodo/ipblocklist.csv");
        let p = parse("feodo-csv", &t, None, 0);
        assert!(p.invalid.is_empty(), "{:?}", p.invalid);
        let rows = t.lines().filter(|l| l.starts_with("\"20")).count();
        assert_eq!(p.entries.len(), rows);
        assert_eq!(nets(&p)[0], "192.9.135.73/32");
        assert_eq!(p.entries[0].category.as_deref(), Some("Pikabot"));
        assert_eq!(p.entries[0].line, 10);
    }

    #[test]
    fn zeek_intel_files() {
        let ips = fixture("zeek/abuse-ch-ipblocklist.intel");
        let p = parse("zeek", &ips, None, 0);
        assert_eq!(p.entries.len(), ips.lines().count() - 1);
        assert_eq!(nets(&p)[0], "67.213.75.205/32");
        assert_eq!(p.entries[0].category.as_deref(), Some("BOTNET"));
        let doms = fixture("zeek/Amnesty_NSO_Domains.intel");
        let d = parse("zeek", &doms, None, 0);
        assert_eq!(
            d.entries[0].indicator,
            Indicator::Domain("14-tracking.com".into())
        );
        assert_eq!(d.entries[0].line, 2);
        let mixed = "#fields\tindicator\tindicator_type\tmeta.source\n1.2.3.4\tIntel::ADDR\tX\nabc\tIntel::FILE_HASH\tX\nnot-an-ip\tIntel::ADDR\tX\n";
        let m = parse("zeek", mixed, None, 0);
        assert_eq!((m.entries.len(), m.skipped), (1, 1));
        assert_eq!(m.invalid[0].0, 4);
    }

    #[test]
    fn stix2_bundles_with_or_compounds() {
        let t = fixture("stix2/poisonivy.json");
        let p = parse("stix2", &t, None, 0);
        // One pattern in the bundle says 'domain autuo.xicp.net': reported, not taken.
        assert_eq!(p.invalid.len(), 1, "{:?}", p.invalid);
        assert!(p.invalid[0].1.contains("domain autuo.xicp.net"));
        assert!(nets(&p).contains(&"219.76.208.163/32".to_string()));
        assert!(
            p.entries
                .iter()
                .any(|e| e.indicator == Indicator::Domain("www.webserver.dynssl.com".into()))
        );
        assert!(
            p.entries
                .iter()
                .any(|e| e.indicator == Indicator::Domain("microsoftc.byinter.net".into()))
        );
        let apt1 = parse("stix2", &fixture("stix2/apt1.json"), None, 0);
        assert!(nets(&apt1).contains(&"223.166.0.0/15".to_string()));
        let coa = parse(
            "stix2",
            &fixture("stix2/indicators-for-C2-with-COA.json"),
            None,
            0,
        );
        assert_eq!(coa.skipped, 1, "the file hash");
        let expired = r#"{"type":"bundle","objects":[{"type":"indicator","pattern":"[ipv4-addr:value = '203.0.113.9']","valid_until":"2020-01-01T00:00:00Z"}]}"#;
        let e = parse("stix2", expired, None, 1_700_000_000);
        assert_eq!((e.entries.len(), e.skipped), (0, 1));
    }

    #[test]
    fn line_formats_with_broken_lines_report_file_lines() {
        let plain =
            "# header\n203.0.113.7\n198.51.100.0/24 ; a comment\nnonsense\n\n2001:db8::/48\n";
        let p = parse("plain", plain, None, 0);
        assert_eq!(
            nets(&p),
            ["203.0.113.7/32", "198.51.100.0/24", "2001:db8::/48"]
        );
        assert_eq!(p.invalid.len(), 1);
        assert_eq!(p.invalid[0].0, 4);
        let sh =
            "; Spamhaus DROP List\n1.10.16.0/18 ; SBL256894\n1.19.0.0/16 ; SBL434604\nbad ; SBL1\n";
        let s = parse("spamhaus", sh, None, 0);
        // 1.10.16.0/18 has host bits set: the /18 it names starts at 1.10.0.0.
        assert_eq!(nets(&s), ["1.10.0.0/18", "1.19.0.0/16"]);
        assert_eq!(s.entries[0].category.as_deref(), Some("SBL256894"));
        assert_eq!(s.invalid[0].0, 4);
        let fh = "#\n# firehol_level1\n#\n5.188.10.0/23\n31.184.196.75\n300.1.1.1\n";
        let f = parse("firehol", fh, None, 0);
        assert_eq!(nets(&f), ["5.188.10.0/23", "31.184.196.75/32"]);
        assert_eq!(f.invalid[0].0, 6);
        let ip = "203.0.113.5,1,90\n198.51.100.0/24,2,50\n203.0.113.6,1,0\n203.0.113.7,x\n";
        let cats = "1,CnC,Command and control\n2,Scanners,Scanning hosts\n";
        let r = parse("suricata-iprep", ip, Some(cats), 0);
        assert_eq!(nets(&r), ["203.0.113.5/32", "198.51.100.0/24"]);
        assert_eq!(r.entries[0].category.as_deref(), Some("CnC (score 90)"));
        assert_eq!(r.skipped, 1, "score 0");
        assert_eq!(r.invalid[0].0, 4);
        let d = parse(
            "domains",
            "# list\nevil.example.com\nEXAMPLE.net.\nno_dot\n",
            None,
            0,
        );
        assert_eq!(d.entries.len(), 2);
        assert_eq!(
            d.entries[1].indicator,
            Indicator::Domain("example.net".into())
        );
        assert_eq!(d.invalid[0].0, 4);
        let h = parse(
            "hosts",
            "127.0.0.1 localhost\n0.0.0.0 ads.example.com tracker.example.org\nads.example.com\n",
            None,
            0,
        );
        assert_eq!(h.entries.len(), 2);
        assert_eq!(h.skipped, 1);
        assert_eq!(h.invalid[0].0, 3);
    }
}
