//! A device as every stage sees it: its addresses, counters, profile, peers and
//! assessment; the device table (`track/devices.rs`) keeps them.

use std::{collections::BTreeSet, net::IpAddr};

use sensor_common::{DeviceCounters, MacAddr};

use crate::discover::profile::Profile;
use crate::model::vocab::{Classification, Criticality};

/// Addresses kept per device; a MAC sourcing more (a router behind it, or spoofing) has
/// the rest counted in `addresses_dropped`, not stored.
pub const MAX_ADDRESSES: usize = 16;
/// Peers and external destinations kept per device; beyond that they are counted only.
pub const MAX_PEERS: usize = 1024;

/// Who a device talks to: what criticality is derived from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Peers {
    /// LAN devices it opened flows to.
    pub internal: BTreeSet<MacAddr>,
    /// LAN devices that depend on it: they opened flows to it, or it serves them.
    pub dependents: BTreeSet<MacAddr>,
    /// Destinations outside the LAN (addresses no device here uses).
    pub external: BTreeSet<IpAddr>,
    /// External destinations past [`MAX_PEERS`], counted only.
    pub external_more: u64,
}

impl Peers {
    /// Distinct external destinations.
    pub fn external_count(&self) -> u64 {
        self.external.len() as u64 + self.external_more
    }
}

/// What the sensor concluded about a device: category and criticality.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    /// What its facts say it is.
    pub observed: Classification,
    /// Its criticality and why.
    pub criticality: Criticality,
    /// Why that criticality.
    pub why: String,
    /// Brand and model, when the device named itself.
    pub product: Option<crate::model::vocab::Product>,
    /// Known vulnerabilities of its software or model (`[[vulns.feed]]`).
    pub vulnerabilities: Vec<Vulnerability>,
}

/// A known vulnerability a device carries, and how sure that is.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Vulnerability {
    /// The CVE id.
    pub cve: String,
    /// On CISA's Known Exploited Vulnerabilities catalog.
    pub known_exploited: bool,
    /// `version`: the version it runs is in a vulnerable range; `model`: the model has
    /// this CVE and its firmware version is unknown.
    pub basis: String,
    /// The software (or model) it is about, as the inventory names it.
    pub product: String,
    /// The version matched, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The CPE 2.3 name looked up.
    pub cpe: String,
    /// The vulnerable range as NVD gives it (`< 4.4`, `>= 8.6, < 9.8`, `all versions`).
    pub range: String,
    /// NVD's base score (CVSS v3.1, else v3.0, else v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// When CISA added it to the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kev_date_added: Option<String>,
    /// NVD lists it for the product on a given platform (firmware on a hardware model,
    /// an application on an OS) that was not checked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub platform_dependent: bool,
}

/// A device's kernel counters summed over CPUs (kernel times). Its IP traffic is the sum
/// of its flows; `flow` events carry that.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceTotals {
    /// Non-IP frames.
    pub non_ip_packets: u64,
    /// Bytes of non-IP frames.
    pub non_ip_bytes: u64,
    /// Flows it opened.
    pub new_flows: u64,
    /// Latest last-seen over CPUs (non-IP frames and new flows).
    pub last_seen_ns: u64,
}

impl DeviceTotals {
    /// Sums one device's per-CPU values.
    pub fn sum(per_cpu: &[DeviceCounters]) -> Self {
        per_cpu.iter().fold(Self::default(), |mut t, c| {
            t.non_ip_packets += c.non_ip_packets;
            t.non_ip_bytes += c.non_ip_bytes;
            t.new_flows += c.new_flows;
            t.last_seen_ns = t.last_seen_ns.max(c.last_seen_ns);
            t
        })
    }
}

/// One device.
#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    /// Its MAC.
    pub mac: MacAddr,
    /// Kernel time of its first frame.
    pub first_seen_ns: u64,
    /// Kernel time of its latest frame we know of.
    pub last_seen_ns: u64,
    /// Source addresses it used.
    pub addresses: BTreeSet<IpAddr>,
    /// Addresses not stored because of [`MAX_ADDRESSES`].
    pub addresses_dropped: u64,
    /// Counters from the kernel.
    pub totals: DeviceTotals,
    /// What it said about itself.
    pub profile: Profile,
    /// Who it talks to.
    pub peers: Peers,
    /// Category and criticality, once assessed.
    pub assessment: Option<Assessment>,
    /// Epoch time of its first sight in an earlier run (from the state store), which the
    /// kernel clock of this run cannot express.
    pub first_seen_epoch_ns: Option<u64>,
}

/// A device's place in its learning window, for events and `baseline show`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Learning until this kernel time.
    Learning(u64),
    /// Its window is over (or it never had one): checked against its rules.
    Monitoring,
    /// Checked, and what its rules do not allow is dropped.
    Enforcing,
}

impl Phase {
    /// The name in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Learning(_) => "learning",
            Phase::Monitoring => "monitoring",
            Phase::Enforcing => "enforcing",
        }
    }
}
