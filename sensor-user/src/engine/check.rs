//! The configuration checks that need more than one stage: feed formats, allow entries,
//! classification rules and MUD files. `kettlewatch check-config` and every start run
//! them, so a file that passes here is one the sensor runs with.

use std::{ops::Range, path::Path};

use crate::{
    config::{Config, error::ConfigError},
    judge::{classify::Classifier, intel::formats::FORMATS, policy},
};

/// The settings a run takes from `config`, defaults filled in, one line each, for
/// `check-config` (the policy modes are [`policy::effective_modes`]).
pub fn effective_settings(config: &Config) -> Vec<String> {
    let s = &config.sensor;
    let d = |v: &std::time::Duration| humantime::format_duration(*v).to_string();
    vec![
        format!("sensor name (host): {:?}", s.name),
        format!(
            "poll every {} (the whole flow map every {}), flow records at most every {}, stats every {}",
            d(s.poll_interval.get_ref()),
            d(s.flow_sweep_interval.get_ref()),
            d(s.flow_report.get_ref()),
            d(s.stats_interval.get_ref())
        ),
        format!(
            "tables: {} flows, {} devices, ring buffer {} bytes",
            s.max_flows.get_ref(),
            s.max_devices.get_ref(),
            s.ring_buffer_bytes.get_ref()
        ),
        format!(
            "output: {} (queue {} lines; --output wins)",
            if config.output.path == "-" {
                "standard output"
            } else {
                config.output.path.as_str()
            },
            config.output.queue_lines
        ),
        match &config.metrics {
            Some(m) => format!("metrics: http://{}/metrics", m.listen),
            None => "metrics: off (no [metrics] section)".to_string(),
        },
        match &config.output.nats {
            Some(n) => format!(
                "nats: {} as {}.{}.<event_type> (stream {}, devices in bucket {})",
                n.url.get_ref().join(", "),
                n.subject_prefix.get_ref(),
                crate::emit::nats::subject_token(&config.sensor.name),
                n.stream.get_ref(),
                n.kv_bucket.get_ref()
            ),
            None => "nats: off (no [output.nats] section)".to_string(),
        },
    ]
}

/// Reads a configuration file and runs every check on it.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let (config, text) = Config::read(path)?;
    check(&config, &text, &path.display().to_string())?;
    Ok(config)
}

/// The cross-stage checks of a parsed configuration; `text` is what it was parsed
/// from and `origin` names it in errors.
pub fn check(config: &Config, text: &str, origin: &str) -> Result<(), ConfigError> {
    let at = |span: Range<usize>, message| ConfigError::at(origin, text, span.start, message);
    for f in &config.intel.feeds {
        if !FORMATS.contains(&f.format.get_ref().as_str()) {
            return Err(at(
                f.format.span(),
                format!(
                    "unknown feed format {:?}; one of {}",
                    f.format.get_ref(),
                    FORMATS.join(", ")
                ),
            ));
        }
    }
    for f in &config.vulns.feeds {
        let formats = crate::judge::vulns::stage::FORMATS;
        if !formats.contains(&f.format.get_ref().as_str()) {
            return Err(at(
                f.format.span(),
                format!(
                    "unknown vulnerability feed format {:?}; one of {}",
                    f.format.get_ref(),
                    formats.join(", ")
                ),
            ));
        }
    }
    for p in &config.baseline.suspicious_ports {
        if let Err(e) = policy::suspicious::parse(p.get_ref()) {
            return Err(at(p.span(), e));
        }
    }
    for p in &config.policies {
        for a in &p.allow {
            if let Err(e) = a.get_ref().parse::<policy::allow::AllowRule>() {
                return Err(at(a.span(), e.to_string()));
            }
        }
    }
    classifier(config)?;
    // The fleet output's credentials and TLS files must be there and readable now, not
    // at the first publish.
    if let Some(n) = &config.output.nats
        && let Err(e) = crate::emit::nats::connect_options(n, config.base_dir.as_deref(), "check")
    {
        return Err(at(0..0, e.to_string()));
    }
    // MUD files named by policies must import (those in [mud] dir are checked at start).
    for p in &config.policies {
        if let Some(m) = &p.mud {
            let file = config
                .base_dir
                .clone()
                .unwrap_or_default()
                .join(m.get_ref());
            if let Err(e) = policy::mud::load(&file) {
                return Err(at(m.span(), format!("policy {:?}: {e}", p.name.get_ref())));
            }
        }
    }
    Ok(())
}

/// What every file a configuration names gave when loaded as `run` loads it.
#[derive(Debug, Default)]
pub struct FilesReport {
    /// One line per file, then one per refused line or entry (`file:line: why`).
    pub lines: Vec<String>,
    /// Lines or entries refused, in files that could be used.
    pub refused: usize,
    /// Files that cannot be used at all.
    pub unusable: usize,
}

/// Refused lines listed per file before the rest is only counted.
const LIST_REFUSED: usize = 20;

/// Loads every feed, rules file and MUD file `config` names, as `run` would, and says per
/// file what it gave and every line it refused; `now_epoch_s` judges expiring entries.
pub fn files(config: &Config, now_epoch_s: i64) -> FilesReport {
    use crate::judge::intel;
    let mut r = FilesReport::default();
    let base = config.base_dir.clone().unwrap_or_default();
    for f in &config.intel.feeds {
        let path = base.join(f.path.get_ref());
        let shown = path.display();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                r.unusable += 1;
                r.lines
                    .push(format!("intel feed {shown}: cannot be read: {e}"));
                continue;
            }
        };
        let categories = f
            .categories
            .as_ref()
            .and_then(|c| std::fs::read_to_string(base.join(c)).ok());
        let parsed = intel::formats::parse(
            f.format.get_ref(),
            &text,
            categories.as_deref(),
            now_epoch_s,
        );
        let mut problems: Vec<(usize, String)> = parsed.invalid.clone();
        let mut loaded = 0usize;
        for e in &parsed.entries {
            match &e.indicator {
                intel::formats::Indicator::Net(n) => match intel::refusal(n) {
                    Some(why) if !f.allow_broad => problems.push((
                        e.line,
                        format!("{n} refused: {why} (allow_broad = true takes it)"),
                    )),
                    _ => loaded += 1,
                },
                intel::formats::Indicator::Domain(_) | intel::formats::Indicator::Ja4(_) => {
                    loaded += 1
                }
            }
        }
        problems.sort();
        let usable = loaded > 0 || problems.is_empty();
        r.lines.push(format!(
            "intel feed {shown} ({}): {loaded} indicators loaded, {} refused, {} skipped{}",
            f.format.get_ref(),
            problems.len(),
            parsed.skipped,
            if usable { "" } else { ": nothing usable" }
        ));
        for (line, why) in problems.iter().take(LIST_REFUSED) {
            r.lines.push(format!("  {shown}:{line}: {why}"));
        }
        if problems.len() > LIST_REFUSED {
            r.lines.push(format!(
                "  {shown}: and {} more",
                problems.len() - LIST_REFUSED
            ));
        }
        if usable {
            r.refused += problems.len();
        } else {
            r.unusable += 1;
        }
    }
    if let Ok(c) = classifier(config) {
        r.lines.push(match &config.classify.rules {
            Some(p) => format!(
                "classification rules: {} ({} the built-in ones and {})",
                c.rule_count(),
                if config.classify.builtin {
                    "with"
                } else {
                    "without"
                },
                p.display()
            ),
            None => format!("classification rules: {} built-in", c.rule_count()),
        });
        if c.builtin_on() {
            let m = crate::judge::ha_discovery::Matchers::builtin();
            r.lines.push(format!(
                "discovery matchers: {} integrations from {} {} ({}, sha256 {})",
                m.integrations.len(),
                m.source.package,
                m.source.version,
                m.source.licence,
                &m.source.sha256[..12]
            ));
        }
    }
    let mut muds: Vec<std::path::PathBuf> = config
        .policies
        .iter()
        .filter_map(|p| p.mud.as_ref().map(|m| base.join(m.get_ref())))
        .collect();
    if let Some(dir) = &config.mud.dir {
        match std::fs::read_dir(dir) {
            Ok(rd) => {
                let mut files: Vec<_> = rd
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .collect();
                files.sort();
                muds.extend(files);
            }
            Err(e) => {
                r.unusable += 1;
                r.lines
                    .push(format!("[mud] dir {}: cannot be read: {e}", dir.display()));
            }
        }
    }
    for path in muds {
        match policy::mud::load(&path) {
            Ok(m) => {
                r.lines.push(format!(
                    "MUD file {}: {}: {} allow entries, {} entries only a MUD controller resolves (not imported), {} for the local networks",
                    path.display(),
                    m.url,
                    m.rules.len(),
                    m.skipped,
                    m.local
                ));
                for b in &m.bare_addresses {
                    r.lines.push(format!(
                        "  {}: {b}: an address where RFC 8519 asks for a prefix, taken as that one host",
                        path.display()
                    ));
                }
            }
            Err(e) => {
                r.unusable += 1;
                r.lines.push(format!("MUD file not usable: {e}"));
            }
        }
    }
    let (lines, ok) = crate::judge::vulns::stage::Vulns::report(config);
    r.refused += lines.iter().filter(|l| l.contains(": refused ")).count();
    if !ok {
        r.unusable += lines
            .iter()
            .filter(|l| l.starts_with("vulnerability feed not usable"))
            .count();
    }
    r.lines.extend(lines);
    r
}

/// The classification rules a configuration asks for, compiled.
pub fn classifier(config: &Config) -> Result<Classifier, ConfigError> {
    Classifier::load(config.classify.rules.as_deref(), config.classify.builtin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_nats_credentials_file_is_named() {
        let c = Config::parse(
            "[output.nats]\ncreds = \"/nonexistent/kettlewatch-test.creds\"\n",
            "kw.toml",
        )
        .unwrap();
        let e = check(&c, "", "kw.toml").unwrap_err().to_string();
        assert!(
            e.contains("creds /nonexistent/kettlewatch-test.creds") && e.contains("No such file"),
            "{e}"
        );
        let c = Config::parse(
            "[output.nats]\ntls_ca = \"/nonexistent/ca.pem\"\n",
            "kw.toml",
        )
        .unwrap();
        let e = check(&c, "", "kw.toml").unwrap_err().to_string();
        assert!(e.contains("tls_ca /nonexistent/ca.pem"), "{e}");
    }

    fn err(text: &str) -> String {
        let c = Config::parse(text, "kw.toml").unwrap();
        check(&c, text, "kw.toml").unwrap_err().to_string()
    }

    #[test]
    fn an_unknown_feed_format_names_its_line() {
        let e = err("[[intel.feed]]\npath = \"f.txt\"\nformat = \"csv-ish\"\n");
        assert!(e.starts_with("kw.toml:3:10: "), "{e}");
        assert!(e.contains("unknown feed format"), "{e}");
    }

    #[test]
    fn a_bad_allow_entry_names_its_line() {
        let e = err("[[policy]]\nname = \"p\"\nallow = [\"example.com:99999\"]\n");
        assert!(e.starts_with("kw.toml:3:"), "{e}");
        assert!(e.contains("not an allow entry"), "{e}");
    }

    #[test]
    fn a_bad_suspicious_port_names_its_line() {
        let e = err("[baseline]\nsuspicious_ports = [\"tcp:8333\", \"sctp:9\"]\n");
        assert!(e.starts_with("kw.toml:2:33: "), "{e}");
        assert!(e.contains("sctp:9"), "{e}");
    }

    #[test]
    fn a_missing_mud_file_names_the_policy() {
        let e = err("[[policy]]\nname = \"cam\"\nmud = \"/nonexistent/cam.json\"\n");
        assert!(e.starts_with("kw.toml:3:7: "), "{e}");
        assert!(e.contains("policy \"cam\""), "{e}");
    }
}
