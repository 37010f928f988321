//! The vulnerability stage: the `[[vulns.feed]]` files loaded into one index, each
//! device's software inventory and model looked up in it, and the one alert a known
//! exploited vulnerability raises per device and CVE.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

use sensor_common::MacAddr;
use serde_json::{Value, json};

use super::{FeedFormat, FeedSummary, Part, VulnDb, VulnMatch, cpe::Cpe};
use crate::{
    config::Config,
    discover::{profile::Profile, software::CpeMap},
    judge::rules,
    model::{
        alert::{About, Alert},
        device::Vulnerability,
        vocab::Product,
    },
};

/// One configured feed and how it loaded last time.
#[derive(Debug)]
struct FeedState {
    path: PathBuf,
    /// Its modification time when loaded: a reload skips feeds that did not change.
    modified: Option<std::time::SystemTime>,
    declared: String,
    summary: Option<FeedSummary>,
    error: Option<String>,
}

/// The loaded feeds and what was alerted.
#[derive(Debug, Default)]
pub struct Vulns {
    db: VulnDb,
    feeds: Vec<FeedState>,
    /// (device, CVE) pairs a `known_exploited_vulnerability` was raised for, this run or
    /// an earlier one (from the state store).
    reported: HashSet<(MacAddr, String)>,
    alerts: u64,
}

/// What loading the configured feeds gave: the index, and each file's state.
fn load_all(config: &Config) -> (VulnDb, Vec<FeedState>) {
    let base = config.base_dir.clone().unwrap_or_default();
    let mut feeds = Vec::new();
    let mut states = Vec::new();
    for f in &config.vulns.feeds {
        let path = base.join(f.path.get_ref());
        let declared = f.format.get_ref().clone();
        let mut state = FeedState {
            path: path.clone(),
            modified: std::fs::metadata(&path).and_then(|m| m.modified()).ok(),
            declared: declared.clone(),
            summary: None,
            error: None,
        };
        match super::load(&path) {
            Ok((feed, summary)) => {
                let is = match summary.format {
                    FeedFormat::Nvd => "nvd",
                    FeedFormat::Kev => "kev",
                };
                if is != declared {
                    state.error = Some(format!(
                        "{}: configured as format {declared:?} but the file is {}",
                        path.display(),
                        summary.format
                    ));
                } else {
                    feeds.push(feed);
                    state.summary = Some(summary);
                }
            }
            Err(e) => state.error = Some(e.to_string()),
        }
        states.push(state);
    }
    (VulnDb::from_feeds(feeds), states)
}

/// The formats `[[vulns.feed]] format` takes.
pub const FORMATS: [&str; 2] = ["nvd", "kev"];

impl Vulns {
    /// Loads every configured feed; one that cannot be used is logged and left out.
    pub fn start(config: &Config) -> Self {
        let (db, feeds) = load_all(config);
        let v = Self {
            db,
            feeds,
            ..Self::default()
        };
        v.log();
        v
    }

    /// Loads the feeds again (SIGHUP, a changed file) when any changed; returns whether
    /// the index did. When any cannot be used, the index loaded before stays, whole: a
    /// broken download does not forget every CVE.
    pub fn reload(&mut self, config: &Config) -> bool {
        // The whole NVD takes seconds to read: only when a feed changed.
        let base = config.base_dir.clone().unwrap_or_default();
        let now: Vec<(PathBuf, Option<std::time::SystemTime>, &str)> = config
            .vulns
            .feeds
            .iter()
            .map(|f| {
                let p = base.join(f.path.get_ref());
                let m = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
                (p, m, f.format.get_ref().as_str())
            })
            .collect();
        let same = now.len() == self.feeds.len()
            && now.iter().zip(&self.feeds).all(|((p, m, fmt), f)| {
                *p == f.path && *m == f.modified && *fmt == f.declared && f.error.is_none()
            });
        if same {
            return false;
        }
        let (db, feeds) = load_all(config);
        if feeds.iter().any(|f| f.error.is_some()) && self.db.cve_count() > 0 {
            for f in feeds.iter().filter_map(|f| f.error.as_ref()) {
                tracing::error!(error = %f, "vulnerability feed not reloaded; the feeds loaded before stay");
            }
            return false;
        }
        self.db = db;
        self.feeds = feeds;
        self.log();
        true
    }

    fn log(&self) {
        for f in &self.feeds {
            match (&f.summary, &f.error) {
                (Some(s), _) => {
                    tracing::info!(
                        path = %f.path.display(),
                        format = %s.format,
                        loaded = s.loaded,
                        refused = s.refused,
                        date = s.feed_date.as_deref().unwrap_or("-"),
                        "vulnerability feed loaded"
                    );
                    for r in &s.refusals {
                        tracing::warn!(path = %f.path.display(), record = %r, "vulnerability record refused");
                    }
                }
                (None, Some(e)) => tracing::error!(error = %e, "vulnerability feed not loaded"),
                (None, None) => {}
            }
        }
    }

    /// Whether any feed is configured.
    pub fn enabled(&self) -> bool {
        !self.feeds.is_empty()
    }

    /// The known vulnerabilities of a device: of each inventory entry with a CPE name and
    /// a version, and of its model (brand and model mapped to NVD's hardware and firmware
    /// names) whatever its version.
    pub fn of(&self, profile: &Profile, product: Option<&Product>) -> Vec<Vulnerability> {
        if self.db.cve_count() == 0 {
            return Vec::new();
        }
        let mut out: Vec<Vulnerability> = Vec::new();
        let mut seen = BTreeSet::new();
        for e in &profile.software {
            let Some(name) = &e.cpe else { continue };
            let Ok(cpe) = name.parse::<Cpe>() else {
                continue;
            };
            let (Some(vendor), Some(cpe_product), Some(version)) = (
                cpe.vendor.value(),
                cpe.product.value(),
                joined_version(&cpe),
            ) else {
                continue;
            };
            for m in self
                .db
                .lookup(cpe.part, vendor, cpe_product, Some(&version))
            {
                if seen.insert(m.cve.clone()) {
                    out.push(vulnerability(m, &e.product, Some(&version), name));
                }
            }
        }
        if let Some((vendor, model)) = product.and_then(model_names) {
            for (part, name) in [
                (Part::Hardware, model.clone()),
                (Part::OperatingSystem, format!("{model}_firmware")),
            ] {
                let cpe = crate::discover::software::cpe_name(
                    match part {
                        Part::Hardware => "h",
                        _ => "o",
                    },
                    vendor,
                    &name,
                    None,
                    None,
                );
                let label = product.and_then(|p| p.model.clone()).unwrap_or_default();
                for m in self.db.lookup(part, vendor, &name, None) {
                    if seen.insert(m.cve.clone()) {
                        out.push(vulnerability(m, &label, None, &cpe));
                    }
                }
            }
        }
        out.sort_by(|a, b| a.cve.cmp(&b.cve));
        out
    }

    /// `known_exploited_vulnerability` for each known exploited CVE of `mac` not yet
    /// raised for it.
    pub fn alerts(&mut self, mac: MacAddr, vulns: &[Vulnerability]) -> Vec<Alert> {
        let mut out = Vec::new();
        for v in vulns.iter().filter(|v| v.known_exploited) {
            if !self.reported.insert((mac, v.cve.clone())) {
                continue;
            }
            let mut a = Alert::new(
                &rules::KNOWN_EXPLOITED_VULNERABILITY,
                About::Device(mac),
                "vulns",
            );
            a.metadata = json!({
                "cve": [v.cve],
                "basis": [v.basis],
                "product": [v.product],
                "version": v.version.iter().collect::<Vec<_>>(),
                "cpe": [v.cpe],
                "range": [v.range],
                "kev_date_added": v.kev_date_added.iter().collect::<Vec<_>>(),
            });
            self.alerts += 1;
            out.push(a);
        }
        out
    }

    /// CVEs an earlier run raised the alert for (from the state store).
    pub fn already_reported(&mut self, mac: MacAddr, vulns: &[Vulnerability]) {
        for v in vulns.iter().filter(|v| v.known_exploited) {
            self.reported.insert((mac, v.cve.clone()));
        }
    }

    /// The `iot.vulns` section of `stats`: each feed with its own date and age, so a
    /// stale feed shows.
    pub fn stats(&self, now_epoch_s: i64) -> Value {
        let feeds: Vec<Value> = self
            .feeds
            .iter()
            .map(|f| {
                let mut o = json!({
                    "path": f.path.display().to_string(),
                    "format": f.declared,
                });
                if let Some(s) = &f.summary {
                    o["loaded"] = s.loaded.into();
                    o["refused"] = s.refused.into();
                    if let Some(d) = &s.feed_date {
                        o["date"] = d.clone().into();
                        if let Some(age) = age_days(d, now_epoch_s) {
                            o["age_days"] = age.into();
                        }
                    }
                }
                if let Some(e) = &f.error {
                    o["error"] = e.clone().into();
                }
                o
            })
            .collect();
        json!({
            "feeds": feeds,
            "cves": self.db.cve_count(),
            "known_exploited": self.db.kev_count(),
            "alerts": self.alerts,
        })
    }

    /// Each loaded feed's path and age in days by its own date.
    pub fn feed_ages(&self, now_epoch_s: i64) -> Vec<(String, i64)> {
        self.feeds
            .iter()
            .filter_map(|f| {
                let d = f.summary.as_ref()?.feed_date.as_deref()?;
                Some((f.path.display().to_string(), age_days(d, now_epoch_s)?))
            })
            .collect()
    }

    /// One line per feed for `check-config`, and whether every feed could be used.
    pub fn report(config: &Config) -> (Vec<String>, bool) {
        let (db, feeds) = load_all(config);
        let mut ok = true;
        let mut lines = Vec::new();
        for f in &feeds {
            match (&f.summary, &f.error) {
                (Some(s), _) => {
                    lines.push(format!(
                        "vulnerability feed {} ({}): {} records loaded, {} refused{}",
                        f.path.display(),
                        s.format,
                        s.loaded,
                        s.refused,
                        s.feed_date
                            .as_ref()
                            .map_or(String::new(), |d| format!(", dated {d}"))
                    ));
                    for r in &s.refusals {
                        lines.push(format!("  {}: refused {r}", f.path.display()));
                    }
                }
                (None, Some(e)) => {
                    ok = false;
                    lines.push(format!("vulnerability feed not usable: {e}"));
                }
                (None, None) => {}
            }
        }
        if !feeds.is_empty() {
            lines.push(format!(
                "vulnerabilities: {} CVEs, {} known exploited",
                db.cve_count(),
                db.kev_count()
            ));
        }
        (lines, ok)
    }
}

/// NVD keeps a suffix such as OpenSSH's `p1` in the CPE's update field; the index
/// compares the version with it joined back on.
fn joined_version(cpe: &Cpe) -> Option<String> {
    let v = cpe.version.value()?;
    Some(match cpe.update.value() {
        Some(u) => format!("{v}{u}"),
        None => v.to_string(),
    })
}

/// NVD's vendor and product spelling of a device's brand and model, where the mapping
/// file names the brand's vendor.
fn model_names(p: &Product) -> Option<(&'static str, String)> {
    let vendor = CpeMap::builtin().vendor_of(p.brand.as_deref()?)?;
    let model = p.model.as_deref()?.trim();
    if model.is_empty() {
        return None;
    }
    // NVD's product names: lower case, spaces as underscores (`dir-645`, `dgn2200`).
    Some((vendor, model.to_ascii_lowercase().replace(' ', "_")))
}

fn vulnerability(m: VulnMatch, product: &str, version: Option<&str>, cpe: &str) -> Vulnerability {
    Vulnerability {
        cve: m.cve,
        known_exploited: m.known_exploited,
        basis: match m.basis {
            super::Basis::Version => "version",
            super::Basis::Model => "model",
        }
        .into(),
        product: product.to_string(),
        version: version.map(str::to_string),
        cpe: cpe.to_string(),
        range: m.range,
        score: m.score,
        kev_date_added: m.kev_date_added,
        platform_dependent: m.platform_dependent,
    }
}

/// Whole days from an RFC 3339-ish feed date (`2025-02-13T17:59:30.3638Z`, NVD's
/// `2024-07-09T06:15:03.513`) to now.
fn age_days(date: &str, now_epoch_s: i64) -> Option<i64> {
    let day = chrono::NaiveDate::parse_from_str(date.get(..10)?, "%Y-%m-%d").ok()?;
    let then = day.and_hms_opt(0, 0, 0)?.and_utc().timestamp();
    Some((now_epoch_s - then).max(0) / 86_400)
}
