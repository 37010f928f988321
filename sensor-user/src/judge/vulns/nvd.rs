//! NVD CVE JSON 2.0 feeds (`nvdcve-2.0-*.json`, gzip or not).
//!
//! Each record is parsed on its own as it streams past, and only the id, last
//! modification, score and vulnerable `cpeMatch` entries are kept. A record whose JSON
//! does not fit the schema, whose criteria is not a CPE 2.3 name or whose version bound
//! is empty is refused whole: keeping part of a configuration could turn "vulnerable on
//! this hardware" into "vulnerable everywhere". `Rejected` records are skipped, and kept
//! as tombstones so a newer file's rejection removes an older file's copy.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use super::cpe::{Component, Cpe, Part};
use super::entry::{Bound, Entry, Exact, Spec, Strings, Sym, Update};
use super::feed::{self, FeedFormat, FeedSummary, Lenient, LoadError, Object, cve_id};

/// One NVD file, reduced to what matching needs. The entries sit in one flat list sorted
/// by product (one big allocation, not one per product, so the heap does not fragment),
/// and the index points at ranges of it instead of copying them.
#[derive(Debug, Default)]
pub struct NvdFeed {
    pub(crate) records: Vec<Record>,
    /// (id, lastModified) of `Rejected` records.
    pub(crate) rejected: Vec<(Box<str>, u64)>,
    pub(crate) strings: Vec<Box<str>>,
    pub(crate) products: Vec<Product>,
    pub(crate) entries: Vec<Entry>,
    timestamp: Option<String>,
}

impl NvdFeed {
    /// Records kept.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The feed's `timestamp`.
    pub fn timestamp(&self) -> Option<&str> {
        self.timestamp.as_deref()
    }
}

#[derive(Debug)]
pub(crate) struct Record {
    pub id: Box<str>,
    /// `lastModified` as [`stamp`] orders it.
    pub last_modified: u64,
    pub score: Option<f32>,
}

/// One (part, vendor, product), vendor and product as symbols of the feed's strings, and
/// where its entries are in the feed's list.
#[derive(Debug)]
pub(crate) struct Product {
    pub part: Part,
    pub vendor: Sym,
    pub product: Sym,
    pub start: usize,
    pub len: usize,
}

impl NvdFeed {
    /// The entries of product number `p`.
    pub(crate) fn entries_of(&self, p: &Product) -> &[Entry] {
        self.entries
            .get(p.start..p.start + p.len)
            .unwrap_or_default()
    }

    /// Sorts the entries by product, keeping each product's in feed order (the first
    /// entry of a CVE is the one reported), and sets the products' ranges.
    pub(crate) fn group(&mut self) {
        self.entries.sort_by_key(|e| e.product);
        self.entries.shrink_to_fit();
        for p in &mut self.products {
            p.len = 0;
        }
        for e in &self.entries {
            if let Some(p) = self.products.get_mut(e.product as usize) {
                p.len += 1;
            }
        }
        let mut start = 0;
        for p in &mut self.products {
            p.start = start;
            start += p.len;
        }
    }
}

/// What reading needs besides the feed itself.
#[derive(Default)]
struct Builder {
    strings: Strings,
    products: HashMap<(Part, Sym, Sym), u32>,
}

/// Loads an NVD CVE JSON 2.0 file.
pub fn load(path: &Path) -> Result<(NvdFeed, FeedSummary), LoadError> {
    read(path, feed::open(path)?)
}

/// Reads an NVD CVE JSON 2.0 feed from `r`; `path` names it in messages.
pub fn read(path: &Path, r: impl Read) -> Result<(NvdFeed, FeedSummary), LoadError> {
    let r = feed::decompressed(r).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut summary = FeedSummary::new(path, FeedFormat::Nvd);
    let mut out = NvdFeed::default();
    let mut b = Builder::default();
    let top = feed::stream(path, r, "vulnerabilities", &mut |i, v| {
        one(i, v, &mut out, &mut b, &mut summary);
    })?;
    if top.str("format") != Some("NVD_CVE") {
        return Err(LoadError::format(
            path,
            "not an NVD CVE feed (no `\"format\": \"NVD_CVE\"`)",
        ));
    }
    match top.str("version") {
        Some(v) if v.starts_with("2.") => {}
        other => {
            return Err(LoadError::format(
                path,
                format!("NVD feed version {other:?}, not 2.x"),
            ));
        }
    }
    if !top.saw_array {
        return Err(LoadError::format(path, "no `vulnerabilities` array"));
    }
    out.timestamp = top.str("timestamp").map(str::to_string);
    out.strings = b.strings.into_list();
    out.records.shrink_to_fit();
    out.products.shrink_to_fit();
    out.group();
    summary.feed_date = out.timestamp.clone();
    Ok((out, summary))
}

fn one(
    i: usize,
    item: Object<Item>,
    out: &mut NvdFeed,
    b: &mut Builder,
    summary: &mut FeedSummary,
) {
    let cve = match item.0.map(|it| it.cve) {
        Ok(Some(Object(Ok(cve)))) => cve,
        Ok(Some(Object(Err(why)))) => return summary.refuse(i, None, format!("`cve` is {why}")),
        Ok(None) => return summary.refuse(i, None, "no `cve`".into()),
        Err(why) => return summary.refuse(i, None, format!("record is {why}")),
    };
    let text = |f: Option<Lenient<String>>| f.and_then(|l| l.0.ok());
    let raw_id = text(cve.id);
    let id = raw_id.as_deref().and_then(cve_id);
    let last_modified = text(cve.last_modified).unwrap_or_default();
    if text(cve.vuln_status).as_deref() == Some("Rejected") {
        summary.skipped += 1;
        if let Some(id) = id {
            out.rejected.push((id.into(), stamp(&last_modified)));
        }
        return;
    }
    let Some(id) = id else {
        let why = match raw_id {
            Some(r) => format!("id {r:?} is not a CVE id"),
            None => "no `cve.id`".to_string(),
        };
        return summary.refuse(i, None, why);
    };
    let metrics = match cve.metrics.map(|l| l.0).transpose() {
        Ok(m) => m,
        Err(why) => return summary.refuse(i, Some(id), format!("metrics: {why}")),
    };
    let configurations = match cve.configurations.map(|l| l.0).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(why) => return summary.refuse(i, Some(id), format!("configurations: {why}")),
    };
    let staged = match staged(configurations) {
        Ok(s) => s,
        Err(why) => {
            summary.refuse(i, Some(id), why);
            return;
        }
    };
    let Ok(record) = u32::try_from(out.records.len()) else {
        summary.refuse(i, Some(id), "too many records in one file".into());
        return;
    };
    out.records.push(Record {
        id: id.into(),
        last_modified: stamp(&last_modified),
        score: metrics.as_ref().and_then(score),
    });
    for s in staged {
        let (key, mut entry) = intern(s, record, &mut b.strings);
        let next = u32::try_from(out.products.len()).unwrap_or(u32::MAX);
        entry.product = *b.products.entry(key).or_insert_with(|| {
            out.products.push(Product {
                part: key.0,
                vendor: key.1,
                product: key.2,
                start: 0,
                len: 0,
            });
            next
        });
        out.entries.push(entry);
    }
    summary.loaded += 1;
}

/// One element of `vulnerabilities`. Only the kept fields are parsed; the rest
/// (descriptions, references, weaknesses) are skipped without being stored.
#[derive(Deserialize)]
struct Item {
    cve: Option<Object<RawCve>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCve {
    id: Option<Lenient<String>>,
    last_modified: Option<Lenient<String>>,
    vuln_status: Option<Lenient<String>>,
    metrics: Option<Lenient<Metrics>>,
    configurations: Option<Lenient<Vec<Config>>>,
}

#[derive(Deserialize)]
struct Metrics {
    #[serde(rename = "cvssMetricV31")]
    v31: Option<Vec<Metric>>,
    #[serde(rename = "cvssMetricV30")]
    v30: Option<Vec<Metric>>,
    #[serde(rename = "cvssMetricV40")]
    v40: Option<Vec<Metric>>,
    #[serde(rename = "cvssMetricV2")]
    v2: Option<Vec<Metric>>,
}

#[derive(Deserialize)]
struct Metric {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "cvssData")]
    data: Option<CvssData>,
}

#[derive(Deserialize)]
struct CvssData {
    #[serde(rename = "baseScore")]
    base_score: Option<f64>,
}

#[derive(Deserialize)]
struct Config {
    operator: Option<String>,
    negate: Option<bool>,
    nodes: Option<Vec<Node>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Node {
    operator: Option<String>,
    negate: Option<bool>,
    cpe_match: Option<Vec<CpeMatch>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CpeMatch {
    vulnerable: bool,
    criteria: String,
    version_start_including: Option<String>,
    version_start_excluding: Option<String>,
    version_end_including: Option<String>,
    version_end_excluding: Option<String>,
}

/// The score a person would be shown: CVSS 3.1, then 3.0 (what most tools still
/// display), then 4.0, then 2; within one, NVD's own (`Primary`) over the CNA's.
fn score(m: &Metrics) -> Option<f32> {
    [&m.v31, &m.v30, &m.v40, &m.v2]
        .into_iter()
        .find_map(|list| {
            let list = list.as_deref()?;
            let pick = list
                .iter()
                .find(|x| x.kind.as_deref() == Some("Primary"))
                .or(list.first())?;
            let s = pick.data.as_ref()?.base_score?;
            (0.0..=10.0).contains(&s).then_some(s as f32)
        })
}

fn is_and(op: &Option<String>) -> bool {
    op.as_deref().is_some_and(|o| o.eq_ignore_ascii_case("AND"))
}

/// A checked vulnerable entry, interned only once the whole record is accepted.
struct Staged {
    cpe: Cpe,
    start: Option<(String, bool)>,
    end: Option<(String, bool)>,
    platform: bool,
}

/// The record's vulnerable entries, checked; any unusable `cpeMatch` refuses the record.
fn staged(configurations: Vec<Config>) -> Result<Vec<Staged>, String> {
    let mut staged = Vec::new();
    for cfg in configurations {
        let nodes = cfg.nodes.unwrap_or_default();
        let cfg_and = is_and(&cfg.operator) && nodes.len() > 1;
        let cfg_negated = cfg.negate.unwrap_or(false);
        for node in nodes {
            let matches = node.cpe_match.unwrap_or_default();
            let node_and = is_and(&node.operator) && matches.len() > 1;
            let negated = cfg_negated || node.negate.unwrap_or(false);
            for m in matches {
                let cpe: Cpe = m
                    .criteria
                    .parse()
                    .map_err(|e| format!("criteria {:?}: {e}", m.criteria))?;
                let start = bound(
                    m.version_start_including,
                    m.version_start_excluding,
                    "versionStart",
                    &m.criteria,
                )?;
                let end = bound(
                    m.version_end_including,
                    m.version_end_excluding,
                    "versionEnd",
                    &m.criteria,
                )?;
                // A negated node lists what is NOT affected; a non-vulnerable entry is
                // the platform of an AND. Neither is matched on.
                if negated || !m.vulnerable {
                    continue;
                }
                if cpe.vendor.value().is_none() || cpe.product.value().is_none() {
                    return Err(format!(
                        "criteria {:?}: a vulnerable entry needs a plain vendor and product",
                        m.criteria
                    ));
                }
                staged.push(Staged {
                    cpe,
                    start,
                    end,
                    platform: cfg_and || node_and,
                });
            }
        }
    }
    Ok(staged)
}

/// The index key and entry for a checked `cpeMatch` of record number `record`.
fn intern(s: Staged, record: u32, strings: &mut Strings) -> ((Part, Sym, Sym), Entry) {
    let mut intern = |t: &str| strings.intern(t);
    let exact = match &s.cpe.version {
        Component::Value(v) => Exact::Value {
            version: intern(v),
            update: match &s.cpe.update {
                Component::Na => Update::Na,
                Component::Value(u) => Update::Value(intern(u)),
                // A wildcard update is read as any update.
                Component::Any | Component::Pattern(_) => Update::Any,
            },
        },
        Component::Pattern(p) => Exact::Pattern(intern(p)),
        // NA: the version does not apply (hardware), so every version is in. An update
        // beside a range (`openssh:*:p2` up to 7.2 in CVE-2016-6210) is NVD saying
        // "through 7.2p2", which the portable rule in `version.rs` already gives.
        Component::Any | Component::Na => Exact::Any,
    };
    let mut bound = |b: Option<(String, bool)>| {
        b.map(|(v, inclusive)| Bound {
            version: intern(&v),
            inclusive,
        })
    };
    let spec = Spec {
        exact,
        start: bound(s.start),
        end: bound(s.end),
    };
    let key = (
        s.cpe.part,
        intern(s.cpe.vendor.value().unwrap_or_default()),
        intern(s.cpe.product.value().unwrap_or_default()),
    );
    let entry = Entry {
        product: 0,
        record,
        spec,
        platform: s.platform,
    };
    (key, entry)
}

/// An NVD time (`2024-07-09T18:19:14.047`) as a number in time order: its first 17
/// digits, zero-padded. Smaller than a string, and a missing time sorts first.
pub(crate) fn stamp(t: &str) -> u64 {
    let digits = t.bytes().filter(u8::is_ascii_digit).take(17);
    let (n, count) = digits.fold((0u64, 0u32), |(n, c), d| {
        (n * 10 + u64::from(d - b'0'), c + 1)
    });
    n * 10u64.pow(17 - count)
}

fn bound(
    including: Option<String>,
    excluding: Option<String>,
    name: &str,
    criteria: &str,
) -> Result<Option<(String, bool)>, String> {
    let (v, inclusive, which) = match (including, excluding) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(format!(
                "{name}Including and {name}Excluding both set for {criteria:?}"
            ));
        }
        (Some(v), None) => (v, true, "Including"),
        (None, Some(v)) => (v, false, "Excluding"),
    };
    let v = v.trim();
    if v.is_empty() {
        return Err(format!("{name}{which} is empty for {criteria:?}"));
    }
    Ok(Some((v.to_string(), inclusive)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-written in NVD's CVE JSON 2.0 layout (fields trimmed, values illustrative).
    fn feed(items: &str) -> String {
        format!(
            r#"{{
  "resultsPerPage": 2000,
  "startIndex": 0,
  "totalResults": 3,
  "format": "NVD_CVE",
  "version": "2.0",
  "timestamp": "2024-07-10T03:00:01.830",
  "vulnerabilities": [{items}]
}}"#
        )
    }

    fn cve(id: &str, status: &str, extra: &str) -> String {
        format!(
            r#"{{"cve": {{"id": "{id}", "sourceIdentifier": "secalert@redhat.com",
  "published": "2024-07-01T13:15:06.467", "lastModified": "2024-07-09T18:19:14.047",
  "vulnStatus": "{status}",
  "descriptions": [{{"lang": "en", "value": "hand-written test record"}}],
  "references": [] {extra} }}}}"#
        )
    }

    /// Every entry with its product's name.
    fn entries(f: &NvdFeed) -> Vec<(&str, Entry)> {
        f.products
            .iter()
            .flat_map(|p| {
                let name = &*f.strings[p.product as usize];
                f.entries_of(p).iter().map(move |e| (name, *e))
            })
            .collect()
    }

    fn parse(text: &str) -> (NvdFeed, FeedSummary) {
        match read(Path::new("feeds/nvd.json"), text.as_bytes()) {
            Ok(x) => x,
            Err(e) => panic!("{e}"),
        }
    }

    const OPENSSH_CONFIG: &str = r#", "metrics": {
    "cvssMetricV31": [
      {"source": "secalert@redhat.com", "type": "Secondary",
       "cvssData": {"version": "3.1", "vectorString": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H",
                    "baseScore": 8.1, "baseSeverity": "HIGH"},
       "exploitabilityScore": 2.2, "impactScore": 5.9}]},
  "configurations": [{"nodes": [{"operator": "OR", "negate": false, "cpeMatch": [
    {"vulnerable": true, "criteria": "cpe:2.3:a:openbsd:openssh:*:*:*:*:*:*:*:*",
     "versionEndExcluding": "4.4p1", "matchCriteriaId": "1F9A3F4A-5A55-4E86-9B4E-2AC4D52E1A8B"},
    {"vulnerable": true, "criteria": "cpe:2.3:a:openbsd:openssh:*:*:*:*:*:*:*:*",
     "versionStartIncluding": "8.5p1", "versionEndExcluding": "9.8p1",
     "matchCriteriaId": "A4C6E7E4-8A0B-4D4C-8B0E-0C1B1F2A2D3E"}]}]}]"#;

    #[test]
    fn loads_records_and_the_feed_date() {
        let (f, s) = parse(&feed(&cve("CVE-2024-6387", "Analyzed", OPENSSH_CONFIG)));
        assert_eq!(s.loaded, 1);
        assert_eq!(s.refused, 0);
        assert_eq!(s.format, FeedFormat::Nvd);
        assert_eq!(s.feed_date.as_deref(), Some("2024-07-10T03:00:01.830"));
        assert_eq!(f.timestamp(), Some("2024-07-10T03:00:01.830"));
        let r = &f.records[0];
        assert_eq!(&*r.id, "CVE-2024-6387");
        assert_eq!(r.score, Some(8.1));
        let e = entries(&f);
        assert_eq!(e.len(), 2);
        assert!(e.iter().all(|(p, e)| *p == "openssh" && !e.platform));
    }

    #[test]
    fn rejected_is_skipped_not_refused() {
        let (f, s) = parse(&feed(&cve("CVE-2023-99999", "Rejected", "")));
        assert_eq!((s.loaded, s.skipped, s.refused), (0, 1, 0));
        assert_eq!(f.rejected.len(), 1);
    }

    #[test]
    fn unusable_records_are_refused_alone() {
        let bad_cpe = cve(
            "CVE-2024-0001",
            "Analyzed",
            r#", "configurations": [{"nodes": [{"operator": "OR", "negate": false, "cpeMatch": [
              {"vulnerable": true, "criteria": "cpe:/a:openbsd:openssh:7.2", "matchCriteriaId": "X"}]}]}]"#,
        );
        let empty_bound = cve(
            "CVE-2024-0002",
            "Analyzed",
            r#", "configurations": [{"nodes": [{"operator": "OR", "negate": false, "cpeMatch": [
              {"vulnerable": true, "criteria": "cpe:2.3:a:thekelleys:dnsmasq:*:*:*:*:*:*:*:*",
               "versionEndExcluding": " ", "matchCriteriaId": "Y"}]}]}]"#,
        );
        let wrong_type = cve(
            "CVE-2024-0003",
            "Analyzed",
            r#", "configurations": [{"nodes": [{"operator": "OR", "cpeMatch": [
              {"vulnerable": "yes", "criteria": "cpe:2.3:a:a:b:1:*:*:*:*:*:*:*"}]}]}]"#,
        );
        let no_id = r#"{"cve": {"vulnStatus": "Analyzed"}}"#;
        let good = cve("CVE-2024-6387", "Analyzed", OPENSSH_CONFIG);
        let text = feed(&[bad_cpe, empty_bound, wrong_type, no_id.into(), good].join(","));
        let (f, s) = parse(&text);
        assert_eq!(s.loaded, 1);
        assert_eq!(s.refused, 4);
        assert_eq!(&*f.records[0].id, "CVE-2024-6387");
        let why: Vec<String> = s.refusals.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            why[0],
            "CVE-2024-0001: criteria \"cpe:/a:openbsd:openssh:7.2\": does not start with `cpe:2.3:`"
        );
        assert_eq!(
            why[1],
            "CVE-2024-0002: versionEndExcluding is empty for \
             \"cpe:2.3:a:thekelleys:dnsmasq:*:*:*:*:*:*:*:*\""
        );
        assert_eq!(
            why[2],
            "CVE-2024-0003: configurations: invalid type: string \"yes\", expected a boolean"
        );
        assert_eq!(why[3], "record 3: no `cve.id`");
    }

    #[test]
    fn odd_shapes_are_refused_not_fatal() {
        let text = feed(
            &[
                "3",
                "\"x\"",
                "[1, {\"a\": 2}]",
                "{\"cve\": null}",
                "{\"cve\": [1]}",
                "{\"cve\": {\"id\": 7}}",
                "{\"cve\": {\"id\": \"CVE-2024-0004\", \"metrics\": {\"cvssMetricV31\": 5}}}",
                &cve("CVE-2024-6387", "Analyzed", OPENSSH_CONFIG),
            ]
            .join(","),
        );
        let (f, s) = parse(&text);
        assert_eq!((s.loaded, s.refused), (1, 7));
        assert_eq!(f.len(), 1);
        let why: Vec<String> = s.refusals.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            why,
            [
                "record 0: record is a number, not an object",
                "record 1: record is a string, not an object",
                "record 2: record is an array, not an object",
                "record 3: no `cve`",
                "record 4: `cve` is an array, not an object",
                "record 5: no `cve.id`",
                "CVE-2024-0004: metrics: invalid type: integer `5`, expected a sequence",
            ]
        );
    }

    #[test]
    fn stamps_order_like_time() {
        assert!(stamp("2024-07-09T18:19:14.047") < stamp("2024-07-09T18:19:14.048"));
        assert!(stamp("2024-07-09T18:19:14") < stamp("2024-07-09T18:19:14.001"));
        assert_eq!(
            stamp("2024-07-09T18:19:14"),
            stamp("2024-07-09T18:19:14.000")
        );
        assert!(stamp("") < stamp("1999-01-01T00:00:00.000"));
    }

    #[test]
    fn refusal_list_is_capped() {
        let bad = cve(
            "CVE-2024-0001",
            "Analyzed",
            r#", "configurations": [{"nodes": [{"operator": "OR", "cpeMatch": [
              {"vulnerable": true, "criteria": "nope"}]}]}]"#,
        );
        let text = feed(&vec![bad; 50].join(","));
        let (_, s) = parse(&text);
        assert_eq!(s.refused, 50);
        assert_eq!(s.refusals.len(), feed::MAX_REFUSALS);
    }

    #[test]
    fn and_configurations_mark_the_platform() {
        // Firmware on a given hardware, NVD's usual shape for devices.
        let extra = r#", "configurations": [{"operator": "AND", "nodes": [
          {"operator": "OR", "negate": false, "cpeMatch": [
            {"vulnerable": true, "criteria": "cpe:2.3:o:tp-link:tl-wr841n_firmware:*:*:*:*:*:*:*:*",
             "versionEndExcluding": "3.16.9 build 201030", "matchCriteriaId": "A"}]},
          {"operator": "OR", "negate": false, "cpeMatch": [
            {"vulnerable": false, "criteria": "cpe:2.3:h:tp-link:tl-wr841n:v13:*:*:*:*:*:*:*",
             "matchCriteriaId": "B"}]}]}]"#;
        let (f, _) = parse(&feed(&cve("CVE-2020-35576", "Analyzed", extra)));
        let e = entries(&f);
        assert_eq!(e.len(), 1, "the non-vulnerable hardware is context only");
        assert_eq!(e[0].0, "tl-wr841n_firmware");
        assert!(e[0].1.platform);
    }

    #[test]
    fn negated_nodes_are_not_indexed() {
        let extra = r#", "configurations": [{"operator": "AND", "nodes": [
          {"operator": "OR", "negate": false, "cpeMatch": [
            {"vulnerable": true, "criteria": "cpe:2.3:a:acme:agent:*:*:*:*:*:*:*:*", "matchCriteriaId": "A"}]},
          {"operator": "OR", "negate": true, "cpeMatch": [
            {"vulnerable": true, "criteria": "cpe:2.3:o:acme:os:2.0:*:*:*:*:*:*:*", "matchCriteriaId": "B"}]}]},
          {"negate": true, "nodes": [{"operator": "OR", "cpeMatch": [
            {"vulnerable": true, "criteria": "cpe:2.3:a:acme:other:*:*:*:*:*:*:*:*", "matchCriteriaId": "C"}]}]}]"#;
        let (f, _) = parse(&feed(&cve("CVE-2024-0010", "Analyzed", extra)));
        let e = entries(&f);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, "agent");
    }

    #[test]
    fn score_preference() {
        let extra = r#", "metrics": {
          "cvssMetricV40": [{"source": "a", "type": "Secondary", "cvssData": {"version": "4.0", "baseScore": 9.3}}],
          "cvssMetricV31": [
            {"source": "cna", "type": "Secondary", "cvssData": {"version": "3.1", "baseScore": 9.8}},
            {"source": "nvd@nist.gov", "type": "Primary", "cvssData": {"version": "3.1", "baseScore": 7.5}}],
          "cvssMetricV2": [{"source": "nvd@nist.gov", "type": "Primary", "cvssData": {"version": "2.0", "baseScore": 5.0}}]}"#;
        let (f, _) = parse(&feed(&cve("CVE-2014-0160", "Modified", extra)));
        assert_eq!(f.records[0].score, Some(7.5));
        let v2 = r#", "metrics": {"cvssMetricV2": [{"source": "nvd@nist.gov", "type": "Primary",
          "cvssData": {"version": "2.0", "baseScore": 5.0}}]}"#;
        let (f, _) = parse(&feed(&cve("CVE-2014-0160", "Modified", v2)));
        assert_eq!(f.records[0].score, Some(5.0));
        let (f, _) = parse(&feed(&cve("CVE-2026-0001", "Awaiting Analysis", "")));
        assert_eq!(f.records[0].score, None);
        assert!(entries(&f).is_empty());
    }

    #[test]
    fn not_an_nvd_feed() {
        let kev = r#"{"title": "CISA Catalog of Known Exploited Vulnerabilities",
          "catalogVersion": "2024.07.01", "vulnerabilities": []}"#;
        let e = read(Path::new("kev.json"), kev.as_bytes()).err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("kev.json: not an NVD CVE feed (no `\"format\": \"NVD_CVE\"`)")
        );
    }

    #[test]
    fn truncated_file_names_the_place() {
        let text = feed(&cve("CVE-2024-6387", "Analyzed", OPENSSH_CONFIG));
        let cut = &text[..text.len() / 2];
        let e = read(Path::new("feeds/nvd.json"), cut.as_bytes()).err();
        let msg = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.starts_with("feeds/nvd.json:"), "{msg}");
        assert!(msg.contains("EOF while parsing"), "{msg}");
    }
}
