//! CISA's Known Exploited Vulnerabilities catalog (`known_exploited_vulnerabilities.json`,
//! gzip or not). Only the CVE id and the date it was added are kept: the catalog marks
//! CVEs, and NVD says which products they are about.

use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::feed::{self, FeedFormat, FeedSummary, LoadError, cve_id};

/// One KEV file.
#[derive(Debug, Default)]
pub struct KevFeed {
    pub(crate) entries: Vec<KevEntry>,
    date_released: Option<String>,
    catalog_version: Option<String>,
}

impl KevFeed {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The catalog's `dateReleased`.
    pub fn date_released(&self) -> Option<&str> {
        self.date_released.as_deref()
    }

    /// The catalog's `catalogVersion`.
    pub fn catalog_version(&self) -> Option<&str> {
        self.catalog_version.as_deref()
    }

    /// Whether `cve` is listed.
    pub fn contains(&self, cve: &str) -> bool {
        let cve = cve.trim().to_ascii_uppercase();
        self.entries.iter().any(|e| *e.id == cve)
    }
}

#[derive(Debug)]
pub(crate) struct KevEntry {
    pub id: Box<str>,
    pub date_added: Option<Box<str>>,
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(rename = "cveID")]
    cve_id: String,
    #[serde(rename = "dateAdded")]
    date_added: Option<String>,
}

/// Loads a KEV catalog file.
pub fn load(path: &Path) -> Result<(KevFeed, FeedSummary), LoadError> {
    read(path, feed::open(path)?)
}

/// Reads a KEV catalog from `r`; `path` names it in messages.
pub fn read(path: &Path, r: impl Read) -> Result<(KevFeed, FeedSummary), LoadError> {
    let r = feed::decompressed(r).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut summary = FeedSummary::new(path, FeedFormat::Kev);
    let mut out = KevFeed::default();
    let top = feed::stream(path, r, "vulnerabilities", &mut |i, v: Value| {
        let raw_id = v.get("cveID").and_then(Value::as_str).map(str::to_string);
        let entry: RawEntry = match serde_json::from_value(v) {
            Ok(e) => e,
            Err(e) => {
                summary.refuse(i, raw_id.as_deref().and_then(cve_id), e.to_string());
                return;
            }
        };
        let Some(id) = cve_id(&entry.cve_id) else {
            summary.refuse(i, None, format!("cveID {:?} is not a CVE id", entry.cve_id));
            return;
        };
        let date_added = entry
            .date_added
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty())
            .map(Into::into);
        out.entries.push(KevEntry {
            id: id.into(),
            date_added,
        });
        summary.loaded += 1;
    })?;
    if !top.fields.contains_key("catalogVersion") {
        return Err(LoadError::format(
            path,
            "not a CISA KEV catalog (no `catalogVersion`)",
        ));
    }
    if !top.saw_array {
        return Err(LoadError::format(path, "no `vulnerabilities` array"));
    }
    out.date_released = top.str("dateReleased").map(str::to_string);
    out.catalog_version = top.str("catalogVersion").map(str::to_string);
    summary.feed_date = out.date_released.clone();
    Ok((out, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-written in the layout of CISA's catalog (entries trimmed to three).
    const KEV: &str = r#"{
    "title": "CISA Catalog of Known Exploited Vulnerabilities",
    "catalogVersion": "2025.06.16",
    "dateReleased": "2025-06-16T17:01:09.5174Z",
    "count": 4,
    "vulnerabilities": [
        {
            "cveID": "CVE-2014-0160",
            "vendorProject": "OpenSSL",
            "product": "OpenSSL",
            "vulnerabilityName": "OpenSSL Information Disclosure Vulnerability",
            "dateAdded": "2022-05-04",
            "shortDescription": "hand-written test entry",
            "requiredAction": "Apply updates per vendor instructions.",
            "dueDate": "2022-05-25",
            "knownRansomwareCampaignUse": "Unknown",
            "notes": "",
            "cwes": ["CWE-125"]
        },
        {
            "cveID": "CVE-2023-33538",
            "vendorProject": "TP-Link",
            "product": "Multiple Routers",
            "vulnerabilityName": "TP-Link Multiple Routers Command Injection Vulnerability",
            "dateAdded": "2025-06-16",
            "shortDescription": "hand-written test entry",
            "requiredAction": "Apply mitigations per vendor instructions.",
            "dueDate": "2025-07-07",
            "knownRansomwareCampaignUse": "Unknown",
            "notes": "",
            "cwes": ["CWE-77"]
        },
        {
            "cveID": "not-a-cve",
            "vendorProject": "Nobody",
            "product": "Nothing",
            "dateAdded": "2025-01-01"
        },
        {
            "vendorProject": "Nobody",
            "product": "No id"
        }
    ]
}"#;

    #[test]
    fn loads_the_catalog() {
        let (k, s) = read(Path::new("kev.json"), KEV.as_bytes()).expect("valid");
        assert_eq!(s.format, FeedFormat::Kev);
        assert_eq!(s.loaded, 2);
        assert_eq!(s.refused, 2);
        assert_eq!(s.feed_date.as_deref(), Some("2025-06-16T17:01:09.5174Z"));
        assert_eq!(k.catalog_version(), Some("2025.06.16"));
        assert!(k.contains("CVE-2014-0160"));
        assert!(k.contains("cve-2023-33538"));
        assert!(!k.contains("CVE-2024-6387"));
        let why: Vec<String> = s.refusals.iter().map(|r| r.to_string()).collect();
        assert_eq!(why[0], "record 2: cveID \"not-a-cve\" is not a CVE id");
        assert_eq!(why[1], "record 3: missing field `cveID`");
    }

    #[test]
    fn an_nvd_file_is_not_a_catalog() {
        let nvd = r#"{"format": "NVD_CVE", "version": "2.0", "vulnerabilities": []}"#;
        let e = read(Path::new("nvd.json"), nvd.as_bytes()).err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("nvd.json: not a CISA KEV catalog (no `catalogVersion`)")
        );
    }

    #[test]
    fn malformed_catalog_names_the_place() {
        let broken = KEV.replacen(
            "\"dateAdded\": \"2022-05-04\",",
            "\"dateAdded\": 2022-05-04,",
            1,
        );
        let e = read(Path::new("feeds/kev.json"), broken.as_bytes()).err();
        let msg = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.starts_with("feeds/kev.json:12:"), "{msg}");
    }
}
