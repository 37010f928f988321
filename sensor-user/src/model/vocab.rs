//! The words every stage uses of a device: its category, how much it matters, and what
//! its facts say it is. Data only, so that config, classification, the device table and
//! the events can all name them without importing one another.

use serde::{Deserialize, Serialize};

/// Device categories.
pub const CATEGORIES: [&str; 16] = [
    "camera",
    "doorbell",
    "speaker",
    "tv-media",
    "plug-switch",
    "light",
    "thermostat-sensor",
    "hub-bridge",
    "printer",
    "appliance",
    "health",
    "network",
    "computer-phone",
    // Smart locks themselves (a lock's Wi-Fi bridge is a hub-bridge, as any hub).
    "lock",
    // Sirens, alarm panels and their sensors (door/window, motion, leak, smoke).
    "alarm",
    "unknown",
];

/// How much a device matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Criticality {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Criticality {
    /// The name in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Criticality::Low => "low",
            Criticality::Medium => "medium",
            Criticality::High => "high",
            Criticality::Critical => "critical",
        }
    }
}

/// One vote: a fact that matched a rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The fact kind.
    pub fact: String,
    /// The device's value that matched.
    pub value: String,
    /// The rule's pattern.
    #[serde(rename = "match")]
    pub pattern: String,
    /// The category it voted for.
    pub category: String,
    /// Its weight.
    pub weight: f64,
    /// The vote did not count: a fact general-purpose software leaks (a desktop OS's DHCP
    /// vendor class) on a device other facts show is purpose-built.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub discounted: bool,
}

/// What the facts say a device is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// The winning category, or `unknown` below the minimum evidence.
    pub category: String,
    /// The posterior of the category, in (0, 1]; 0 when unknown.
    pub confidence: f64,
    /// Every vote, strongest first.
    pub evidence: Vec<Evidence>,
}

impl Classification {
    /// Nothing known yet.
    pub fn unknown() -> Self {
        Self {
            category: "unknown".into(),
            confidence: 0.0,
            evidence: Vec::new(),
        }
    }
}

/// What the inventory says about one MAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declared {
    /// Its name.
    pub name: Option<String>,
    /// Its declared category.
    pub category: Option<String>,
    /// Its declared criticality.
    pub criticality: Option<Criticality>,
    /// It is in the configuration's inventory (`[[device]]`), not only named by an operator.
    pub listed: bool,
    /// The operator who set its category by hand (`kettlewatch device set`), when one
    /// did: that category is `category_source: "operator"`.
    pub set_by: Option<String>,
    /// The state an operator put it in (one of [`DEVICE_STATES`]), if any.
    pub state: Option<String>,
}

/// The states an operator may put a device in (`kettlewatch device state`).
pub const DEVICE_STATES: [&str; 2] = ["authorised", "investigating"];

/// An operator's word for a device's state: one of [`DEVICE_STATES`], or `none` (out of
/// any state, `None`); anything else is refused with what would be taken.
pub fn parse_device_state(s: &str) -> Result<Option<&'static str>, String> {
    match DEVICE_STATES.iter().find(|k| **k == s) {
        Some(k) => Ok(Some(k)),
        None if s == "none" => Ok(None),
        None => Err(format!(
            "{s:?} is not a state; one of {}, or none",
            DEVICE_STATES.join(", ")
        )),
    }
}

/// What product a device is, as far as it named itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Product {
    /// Its maker, as announced or from the IEEE registry (never a radio-module maker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// Its model, as announced or as a vendor's model-number scheme recognised it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}
