//! The one alert every judge stage returns. `emit/eve/alert.rs` writes it as an EVE
//! `alert`; the engine queues, counts and hands it on without looking inside.

use sensor_common::{FlowKey, MacAddr};
use serde_json::{Value, json};

use crate::model::{flow::Origin, rule::Rule};

/// What an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum About {
    /// The sensor itself (`device_table_pressure`).
    Sensor,
    /// A device, with no one flow to point at.
    Device(MacAddr),
    /// A device's flow, and the packet that opened it.
    Flow(FlowKey, Origin),
}

/// The threat-intelligence entry an alert matched (`iot.intel`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntelMatch {
    /// The first feed that lists it (`canary` for a canary).
    pub feed: String,
    /// The listed prefix or domain.
    pub indicator: String,
    /// The first category a feed gives it.
    pub category: Option<String>,
}

/// An alert to write.
#[derive(Clone, Debug)]
pub struct Alert {
    /// The rule it raises (`judge/rules.rs`).
    pub rule: &'static Rule,
    /// What it is about.
    pub about: About,
    /// `iot.rule.source`: why the stage that raised it thought so (`declared`, `learned`,
    /// `mud`, `suspicious`, `intel`, `canary`, `anomaly`, `inventory`, `sensor`).
    pub source: &'static str,
    /// EVE's `alert.metadata`: an object of names to lists of strings.
    pub metadata: Value,
    /// The kernel dropped the flow (`alert.action` is `blocked`).
    pub blocked: bool,
    /// What the device's policy allows, a few entries (`iot.rule.expected`).
    pub expected: Vec<String>,
    /// The DNS name involved (`iot.dns.rrname`).
    pub rrname: Option<String>,
    /// The intel entry it matched.
    pub intel: Option<IntelMatch>,
}

impl Alert {
    /// An alert with nothing beyond its rule, subject, source and metadata.
    pub fn new(rule: &'static Rule, about: About, source: &'static str) -> Self {
        Self {
            rule,
            about,
            source,
            metadata: json!({}),
            blocked: false,
            expected: Vec::new(),
            rrname: None,
            intel: None,
        }
    }

    /// With `alert.metadata`.
    pub fn with_metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }

    /// The device it is about, if one.
    pub fn mac(&self) -> Option<MacAddr> {
        match self.about {
            About::Sensor => None,
            About::Device(mac) => Some(mac),
            About::Flow(key, _) => Some(key.mac),
        }
    }

    /// The flow it is about, if one.
    pub fn flow(&self) -> Option<(FlowKey, Origin)> {
        match self.about {
            About::Flow(key, origin) => Some((key, origin)),
            _ => None,
        }
    }
}
