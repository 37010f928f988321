//! The intel stage: kernel hits (a flow's first packet to a listed address or a canary),
//! the names devices look up or are told, and the JA4 fingerprints of their TLS clients
//! in; `threat_intel_ip`, `threat_intel_domain`, `threat_intel_ja4` and `canary_contact`
//! alerts out, once per device and indicator.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use sensor_common::{FlowKey, MacAddr, policy::IntelEntry};
use serde_json::Value;

use serde_json::json;

use super::{FeedSource, IntelSet};
use crate::{
    config::Config,
    judge::rules,
    model::alert::{About, Alert, IntelMatch},
    model::flow::Origin,
};

/// `iot.intel` of an entry listed by `sources`.
fn intel_match(sources: &[FeedSource], indicator: String) -> IntelMatch {
    IntelMatch {
        feed: sources.first().map_or(String::new(), |s| s.feed.clone()),
        indicator,
        category: sources.iter().find_map(|s| s.category.clone()),
    }
}

/// `alert.metadata` of an entry listed by `sources`.
fn feeds(sources: &[FeedSource]) -> serde_json::Value {
    json!({
        "feeds": sources.iter().map(|s| s.feed.clone()).collect::<Vec<_>>(),
        "categories": sources.iter().filter_map(|s| s.category.clone()).collect::<Vec<_>>(),
    })
}

/// The stage.
pub struct Intel {
    set: IntelSet,
    alerted_ip: BTreeSet<(MacAddr, IpNet)>,
    alerted_domain: BTreeSet<(MacAddr, String)>,
    alerted_ja4: BTreeSet<(MacAddr, String)>,
    /// Intel alerts written.
    pub alerts: u64,
}

impl Intel {
    /// Loads the feeds and canaries of `config`; [`Intel::kernel`] is what the kernel's
    /// trie is to hold.
    pub fn start(config: &Config, now_epoch_s: i64) -> Self {
        let mut s = Self {
            set: IntelSet::default(),
            alerted_ip: BTreeSet::new(),
            alerted_domain: BTreeSet::new(),
            alerted_ja4: BTreeSet::new(),
            alerts: 0,
        };
        s.reload(config, now_epoch_s);
        s
    }

    /// Reads the feeds again (SIGHUP, a changed file).
    pub fn reload(&mut self, config: &Config, now_epoch_s: i64) {
        self.set.load(config, now_epoch_s);
    }

    /// The prefixes the kernel's trie is to hold, with their ids.
    pub fn kernel(&mut self) -> BTreeMap<IpNet, IntelEntry> {
        self.set.kernel()
    }

    /// A new flow; `intel_id` is the kernel's entry for its destination (0: none).
    pub fn on_new_flow(
        &mut self,
        key: FlowKey,
        origin: Origin,
        intel_id: u32,
        names: &[&str],
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        let blocked = origin.verdict.dropped();
        if intel_id != 0
            && let Some(hit) = self.set.by_id(intel_id)
            && self.alerted_ip.insert((key.mac, hit.net))
        {
            let about = About::Flow(key, origin);
            if hit.canary {
                let mut a = Alert::new(&rules::CANARY_CONTACT, about, "canary");
                a.blocked = blocked;
                a.intel = Some(IntelMatch {
                    feed: "canary".into(),
                    indicator: hit.net.to_string(),
                    category: None,
                });
                out.push(a);
            }
            if !hit.sources.is_empty() {
                let mut a = Alert::new(&rules::THREAT_INTEL_IP, about, "intel")
                    .with_metadata(feeds(&hit.sources));
                a.blocked = blocked;
                a.intel = Some(intel_match(&hit.sources, hit.net.to_string()));
                out.push(a);
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
    pub fn on_names(&mut self, mac: MacAddr, names: &[String], via: &'static str) -> Vec<Alert> {
        let out: Vec<Alert> = names
            .iter()
            .filter_map(|n| self.domain(mac, n, via, None))
            .collect();
        self.alerts += out.len() as u64;
        out
    }

    /// A TLS client on the device sent a ClientHello with fingerprint `ja4` on a flow.
    pub fn on_ja4(&mut self, key: FlowKey, origin: Origin, ja4: &str) -> Option<Alert> {
        let sources = self.set.ja4(ja4);
        if sources.is_empty() || !self.alerted_ja4.insert((key.mac, ja4.to_string())) {
            return None;
        }
        let mut a = Alert::new(&rules::THREAT_INTEL_JA4, About::Flow(key, origin), "intel")
            .with_metadata(feeds(&sources));
        a.intel = Some(intel_match(&sources, ja4.to_string()));
        self.alerts += 1;
        Some(a)
    }

    fn domain(
        &mut self,
        mac: MacAddr,
        name: &str,
        via: &'static str,
        flow: Option<(FlowKey, Origin)>,
    ) -> Option<Alert> {
        let (listed, sources) = self.set.domain(name)?;
        if !self.alerted_domain.insert((mac, listed.clone())) {
            return None;
        }
        let mut meta = feeds(&sources);
        meta["via"] = json!([via]);
        let about = flow.map_or(About::Device(mac), |(k, o)| About::Flow(k, o));
        let mut a = Alert::new(&rules::THREAT_INTEL_DOMAIN, about, "intel").with_metadata(meta);
        a.blocked = flow.is_some_and(|(_, o)| o.verdict.dropped());
        a.rrname = Some(name.to_string());
        a.intel = Some(intel_match(&sources, listed));
        Some(a)
    }

    /// The `intel` section of `stats`.
    pub fn stats(&self) -> Value {
        let mut v = self.set.stats(0);
        v["alerts"] = self.alerts.into();
        v
    }
}
