//! The intel stage: kernel hits (a flow's first packet to a listed address or a canary)
//! and the names devices look up or are told in; `threat_intel_ip`, `threat_intel_domain`
//! and `canary_contact` alerts out, once per device and indicator.

use std::collections::BTreeSet;

use ipnet::IpNet;
use sensor_common::{FlowKey, MacAddr};
use serde_json::Value;

use super::{IntelMaps, IntelSet, Source};
use crate::{config::Config, track::flows::Origin};

/// An intel alert to write.
#[derive(Clone, Debug)]
pub enum IntelAlert {
    /// A flow to a listed address.
    Ip {
        /// The flow.
        key: FlowKey,
        /// Its first packet.
        origin: Origin,
        /// The listed prefix.
        net: IpNet,
        /// Its feeds.
        sources: Vec<Source>,
        /// Dropped in the kernel.
        blocked: bool,
    },
    /// A flow to a canary.
    Canary {
        /// The flow.
        key: FlowKey,
        /// Its first packet.
        origin: Origin,
        /// The canary.
        net: IpNet,
        /// Dropped in the kernel (by policy).
        blocked: bool,
    },
    /// A listed name a device looked up, was told, or connected to an address of.
    Domain {
        /// The device.
        mac: MacAddr,
        /// The name it used.
        name: String,
        /// The listed domain (the name or one it is under).
        listed: String,
        /// Its feeds.
        sources: Vec<Source>,
        /// `query`, `answer` or `connection`.
        via: &'static str,
        /// The flow, for `connection`.
        flow: Option<(FlowKey, Origin)>,
    },
}

impl IntelAlert {
    /// The rule it raises.
    pub fn rule(&self) -> &'static crate::judge::rules::Rule {
        match self {
            IntelAlert::Ip { .. } => &crate::judge::rules::THREAT_INTEL_IP,
            IntelAlert::Canary { .. } => &crate::judge::rules::CANARY_CONTACT,
            IntelAlert::Domain { .. } => &crate::judge::rules::THREAT_INTEL_DOMAIN,
        }
    }

    /// The device the alert is about.
    pub fn mac(&self) -> MacAddr {
        match self {
            IntelAlert::Ip { key, .. } | IntelAlert::Canary { key, .. } => key.mac,
            IntelAlert::Domain { mac, .. } => *mac,
        }
    }

    /// The flow it is about, if one.
    pub fn key(&self) -> Option<FlowKey> {
        match self {
            IntelAlert::Ip { key, .. } | IntelAlert::Canary { key, .. } => Some(*key),
            IntelAlert::Domain { .. } => None,
        }
    }

    /// The kernel's stamp of the flow's first packet, for alerts about a flow.
    pub fn flow_ts_ns(&self) -> Option<u64> {
        match self {
            IntelAlert::Ip { origin, .. } | IntelAlert::Canary { origin, .. } => Some(origin.ts_ns),
            IntelAlert::Domain { .. } => None,
        }
    }
}

/// The stage.
pub struct Intel {
    set: IntelSet,
    maps: Option<IntelMaps>,
    alerted_ip: BTreeSet<(MacAddr, IpNet)>,
    alerted_domain: BTreeSet<(MacAddr, String)>,
    /// Intel alerts written.
    pub alerts: u64,
    /// Writes to the kernel that failed.
    pub apply_errors: u64,
}

impl Intel {
    /// Loads the feeds and canaries of `config` and writes them to the kernel.
    pub fn start(config: &Config, maps: Option<IntelMaps>, now_epoch_s: i64) -> Self {
        let mut s = Self {
            set: IntelSet::default(),
            maps,
            alerted_ip: BTreeSet::new(),
            alerted_domain: BTreeSet::new(),
            alerts: 0,
            apply_errors: 0,
        };
        s.reload(config, now_epoch_s);
        s
    }

    /// Reads the feeds again and applies the difference (SIGHUP, a changed file).
    pub fn reload(&mut self, config: &Config, now_epoch_s: i64) {
        self.set.load(config, now_epoch_s);
        let want = self.set.kernel();
        if let Some(m) = &mut self.maps {
            match m.apply(&want) {
                Ok((w, r)) => {
                    if w + r > 0 {
                        tracing::info!(
                            entries = m.len(),
                            written = w,
                            removed = r,
                            "intel: kernel trie updated"
                        );
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "intel: writing the kernel trie failed (counted as apply_errors)");
                    self.apply_errors += 1;
                }
            }
        }
    }

    /// A new flow; `intel_id` is the kernel's entry for its destination (0: none).
    pub fn on_new_flow(
        &mut self,
        key: FlowKey,
        origin: Origin,
        intel_id: u32,
        names: &[&str],
    ) -> Vec<IntelAlert> {
        let mut out = Vec::new();
        let blocked = origin.verdict.dropped();
        if intel_id != 0
            && let Some(hit) = self.set.by_id(intel_id)
            && self.alerted_ip.insert((key.mac, hit.net))
        {
            if hit.canary {
                out.push(IntelAlert::Canary {
                    key,
                    origin,
                    net: hit.net,
                    blocked,
                });
            }
            if !hit.sources.is_empty() {
                out.push(IntelAlert::Ip {
                    key,
                    origin,
                    net: hit.net,
                    sources: hit.sources,
                    blocked,
                });
            }
        }
        for n in names {
            if let Some(a) = self.domain(key.mac, n, "connection", Some((key, origin))) {
                out.push(a);
            }
        }
        self.alerts += out.len() as u64;
        out
    }

    /// Names a device looked up (`query`) or was told (`answer`).
    pub fn on_names(
        &mut self,
        mac: MacAddr,
        names: &[String],
        via: &'static str,
    ) -> Vec<IntelAlert> {
        let out: Vec<IntelAlert> = names
            .iter()
            .filter_map(|n| self.domain(mac, n, via, None))
            .collect();
        self.alerts += out.len() as u64;
        out
    }

    fn domain(
        &mut self,
        mac: MacAddr,
        name: &str,
        via: &'static str,
        flow: Option<(FlowKey, Origin)>,
    ) -> Option<IntelAlert> {
        let (listed, sources) = self.set.domain(name)?;
        if !self.alerted_domain.insert((mac, listed.clone())) {
            return None;
        }
        Some(IntelAlert::Domain {
            mac,
            name: name.to_string(),
            listed,
            sources,
            via,
            flow,
        })
    }

    /// The `intel` section of `stats`.
    pub fn stats(&self) -> Value {
        let mut v = self.set.stats(self.maps.as_ref().map_or(0, IntelMaps::len));
        v["alerts"] = self.alerts.into();
        v["apply_errors"] = self.apply_errors.into();
        v
    }
}
