//! Building the policy engine from the configuration: declared policies with their MUD
//! files, `[mud] dir`, the LAN's prefixes, the learning window.

use sensor_common::MacAddr;

use std::{collections::BTreeMap, net::IpAddr};

use ipnet::IpNet;

use super::{
    DeclaredPolicy, PolicyEngine, dns::Resolved, learned::Learned, local, mud, mud::MudError,
    suspicious,
};
use crate::config::{Config, Mode};

/// Problems met building the engine (the sensor starts anyway; each is reported).
#[derive(Debug, Default)]
pub struct LoadReport {
    /// MUD files that did not import.
    pub mud_errors: Vec<MudError>,
    /// MUD files imported from `[mud] dir`.
    pub mud_files: usize,
    /// Entries of imported MUD files whose destination was a bare address, taken as a
    /// host prefix: `file: JSON path: "value"`.
    pub mud_bare_addresses: Vec<String>,
}

impl LoadReport {
    fn note_bare(&mut self, file: &std::path::Path, m: &mud::MudPolicy) {
        self.mud_bare_addresses.extend(
            m.bare_addresses
                .iter()
                .map(|b| format!("{}: {b}", file.display())),
        );
    }

    /// Says what was imported and what was not, in the log.
    pub fn log(&self) {
        for e in &self.mud_errors {
            tracing::error!(error = %e, "MUD file not imported");
        }
        for b in &self.mud_bare_addresses {
            tracing::warn!(
                entry = %b,
                "MUD entry gives an address where RFC 8519 asks for a prefix: taken as that one host"
            );
        }
        if self.mud_files > 0 {
            tracing::info!(files = self.mud_files, "MUD files imported");
        }
    }
}

impl PolicyEngine {
    /// From the configuration; `local` are the LAN's prefixes (config `[baseline] local`
    /// wins over them); `now_ns` is kernel time now; `learn_started_ns` (kernel time) when
    /// an earlier run began learning, if one did: no device's window starts before it.
    pub fn new(
        config: &Config,
        local: Vec<IpNet>,
        now_ns: u64,
        learn_started_ns: Option<i64>,
    ) -> (Self, LoadReport) {
        let mut report = LoadReport::default();
        let base = config.base_dir.clone().unwrap_or_default();
        let mut policies = Vec::new();
        for p in &config.policies {
            let mud = p.mud.as_ref().and_then(|m| {
                let path = base.join(m.get_ref());
                match mud::load(&path) {
                    Ok(m) => {
                        report.note_bare(&path, &m);
                        Some(m)
                    }
                    Err(e) => {
                        report.mud_errors.push(e);
                        None
                    }
                }
            });
            policies.push(DeclaredPolicy {
                name: p.name.get_ref().clone(),
                categories: p.categories.iter().map(|c| c.get_ref().clone()).collect(),
                devices: p
                    .devices
                    .iter()
                    .filter_map(|m| m.get_ref().parse::<MacAddr>().ok())
                    .collect(),
                rules: p
                    .allow
                    .iter()
                    .filter_map(|a| a.get_ref().parse().ok())
                    .collect(),
                mud,
                mode: p.mode.unwrap_or(declared_default(config.baseline.mode)),
                learn_for_ns: p.learn_for.as_ref().map(|d| d.get_ref().as_nanos() as u64),
                registered_domains: p.registered_domains,
            });
        }
        let device_policy = config
            .devices
            .iter()
            .filter_map(|d| {
                Some((
                    d.mac.get_ref().parse::<MacAddr>().ok()?,
                    d.policy.as_ref()?.get_ref().clone(),
                ))
            })
            .collect();
        let mut mud_by_url = BTreeMap::new();
        if let Some(dir) = &config.mud.dir {
            let files = std::fs::read_dir(dir)
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .map(|e| e.path())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_else(|e| {
                    report.mud_errors.push(MudError {
                        file: dir.display().to_string(),
                        path: "$".into(),
                        why: e.to_string(),
                    });
                    Vec::new()
                });
            for f in files.iter().filter(|f| f.is_file()) {
                match mud::load(f) {
                    Ok(m) => {
                        report.mud_files += 1;
                        report.note_bare(f, &m);
                        mud_by_url.insert(m.url.clone(), m);
                    }
                    Err(e) => report.mud_errors.push(e),
                }
            }
        }
        let configured: Vec<IpNet> = config
            .baseline
            .local
            .iter()
            .filter_map(|l| {
                let s = l.get_ref();
                s.parse::<IpNet>()
                    .ok()
                    .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
            })
            .collect();
        let mut local = if configured.is_empty() {
            local
        } else {
            configured
        };
        local.extend(local::always_local());
        let mode = config.baseline.mode;
        let engine = Self {
            policies,
            device_policy,
            mud_by_url,
            local,
            mode,
            declared_default: declared_default(mode),
            suspicious: suspicious::Suspicious::new(
                config.baseline.suspicious_builtin,
                &config
                    .baseline
                    .suspicious_ports
                    .iter()
                    .map(|s| s.get_ref().clone())
                    .collect::<Vec<_>>(),
            ),
            learn_for_ns: config.baseline.learn_for.get_ref().as_nanos() as u64,
            learn_from_ns: learn_started_ns.unwrap_or(now_ns as i64),
            learn_until: BTreeMap::new(),
            windows_changed: std::collections::BTreeSet::new(),
            now_ns,
            registered_domains: config.baseline.registered_domains,
            learned: Learned::default(),
            resolved: Resolved::new(config.baseline.dns_grace.get_ref().as_nanos() as u64),
            groups: BTreeMap::new(),
            compiled: BTreeMap::new(),
            widened: 0,
            state_modes: crate::model::vocab::DEVICE_STATES
                .iter()
                .filter_map(|s| Some((s.to_string(), config.states.mode_of(s)?)))
                .collect(),
            device_states: BTreeMap::new(),
        };
        (engine, report)
    }
}

/// What `check-config` says of the modes in effect: one line for devices without a
/// declared policy, then one per `[[policy]]` with where its mode comes from.
pub fn effective_modes(config: &Config) -> Vec<String> {
    let b = &config.baseline;
    let window = humantime::format_duration(*b.learn_for.get_ref());
    let undeclared = match b.mode {
        Mode::Learn => {
            format!("learn: each learns for {window} from its own first sight, then is monitored")
        }
        m => m.as_str().to_string(),
    };
    let mut out = vec![format!("devices without a declared policy: {undeclared}")];
    for p in &config.policies {
        let mode = p.mode.unwrap_or(declared_default(b.mode));
        let why = match p.mode {
            Some(_) => "its own mode".to_string(),
            None => format!("from [baseline] mode = \"{}\"", b.mode.as_str()),
        };
        let window = match (mode, &p.learn_for) {
            (Mode::Learn, Some(w)) => format!(
                ", each device for {}",
                humantime::format_duration(*w.get_ref())
            ),
            (Mode::Learn, None) => format!(", each device for {window}"),
            _ => String::new(),
        };
        out.push(format!(
            "policy {:?}: {}{window} ({why})",
            p.name.get_ref(),
            mode.as_str()
        ));
    }
    out
}

/// The mode a declared policy without its own `mode` takes from `[baseline] mode`: a user
/// who wrote enforce gets enforce; learn and monitor give monitor.
pub(super) fn declared_default(baseline: Mode) -> Mode {
    match baseline {
        Mode::Enforce => Mode::Enforce,
        Mode::Learn | Mode::Monitor => Mode::Monitor,
    }
}
