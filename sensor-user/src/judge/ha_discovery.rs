//! Home Assistant's discovery matchers (`data/generated/home-assistant.toml`, imported by
//! `cargo xtask import-ha` from a pinned release): which maker's integration a device's
//! DHCP name and MAC, mDNS services, SSDP types or HomeKit model match, as Home Assistant
//! itself decides when it offers to set a device up. A match names the brand; it votes
//! only among the categories that integration covers, each by ln(15/n) for n covered kinds
//! (a uniform prior over 15 categories narrowed to n), capped where a one-kind maker's
//! name would outweigh a model scheme.

use std::sync::LazyLock;

use globset::{GlobBuilder, GlobMatcher};
use serde::Deserialize;

use crate::model::{device::Device, vocab::Evidence};

/// The file, as built in.
pub const DATA: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/generated/home-assistant.toml"
));

/// A one-kind maker's vote: below a model scheme (3.0); a host name can be renamed.
const MAX_WEIGHT: f64 = 2.5;

/// The categories a vote is spread over, unknown excluded.
const CATEGORY_COUNT: f64 = 15.0;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    source: Source,
    #[serde(rename = "integration")]
    integrations: Vec<IntegrationEntry>,
}

/// Where the matchers came from.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The PyPI package.
    pub package: String,
    /// Its version.
    pub version: String,
    /// The wheel's SHA-256.
    pub sha256: String,
    /// Its licence.
    pub licence: String,
    /// Its page.
    pub url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntegrationEntry {
    domain: String,
    name: String,
    brand: String,
    ha_categories: Vec<String>,
    categories: Vec<String>,
    other: usize,
    #[serde(default)]
    dhcp: Vec<DhcpEntry>,
    #[serde(default)]
    zeroconf: Vec<ZeroconfEntry>,
    #[serde(default)]
    ssdp: Vec<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    homekit: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DhcpEntry {
    hostname: Option<String>,
    mac: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ZeroconfEntry {
    #[serde(rename = "type")]
    kind: String,
    name: Option<String>,
    #[serde(default)]
    properties: std::collections::BTreeMap<String, String>,
}

/// How a device matched, most telling first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A DHCP host name on the maker's MAC block.
    DhcpNameAndMac,
    /// A HomeKit model.
    Homekit,
    /// An mDNS instance name or TXT entries of a service.
    ZeroconfNamed,
    /// A DHCP host name or a MAC block alone.
    Dhcp,
    /// A maker's own mDNS service type.
    ZeroconfType,
    /// An SSDP type.
    Ssdp,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::DhcpNameAndMac | Kind::Dhcp => "dhcp",
            Kind::Homekit => "homekit",
            Kind::ZeroconfNamed | Kind::ZeroconfType => "zeroconf",
            Kind::Ssdp => "ssdp",
        }
    }
}

fn glob(pattern: &str) -> Result<GlobMatcher, globset::Error> {
    Ok(GlobBuilder::new(pattern)
        .case_insensitive(true)
        .literal_separator(false)
        .backslash_escape(true)
        .build()?
        .compile_matcher())
}

struct Dhcp {
    text: String,
    hostname: Option<GlobMatcher>,
    mac: Option<GlobMatcher>,
}

struct Zeroconf {
    text: String,
    kind: String,
    name: Option<GlobMatcher>,
    properties: Vec<(String, GlobMatcher)>,
}

struct Ssdp {
    text: String,
    headers: Vec<GlobMatcher>,
}

/// One integration's matchers and what it covers.
pub struct Integration {
    /// Home Assistant's domain (`tplink`).
    pub domain: String,
    /// Its name (`TP-Link Smart Home`).
    pub name: String,
    /// The brand it is listed under.
    pub brand: String,
    /// Home Assistant's categories for it.
    pub ha_categories: Vec<String>,
    /// kettlewatch's categories those name.
    pub categories: Vec<&'static str>,
    /// How many of its categories name none of kettlewatch's.
    pub other: usize,
    dhcp: Vec<Dhcp>,
    zeroconf: Vec<Zeroconf>,
    ssdp: Vec<Ssdp>,
    homekit: Vec<String>,
}

impl Integration {
    /// The weight of its vote for each of its categories: ln(15/n), capped; none when it
    /// covers no kettlewatch category.
    pub fn weight(&self) -> Option<f64> {
        let n = self.categories.len() + self.other;
        (!self.categories.is_empty()).then(|| (CATEGORY_COUNT / n as f64).ln().min(MAX_WEIGHT))
    }
}

/// A device's match with one integration.
pub struct Match<'a> {
    /// The integration.
    pub integration: &'a Integration,
    /// How.
    pub kind: Kind,
    /// The device's value that matched.
    pub value: String,
    /// The matcher, as text.
    pub matcher: String,
}

/// The loaded matchers.
pub struct Matchers {
    /// Where they came from.
    pub source: Source,
    /// Every integration with a matcher.
    pub integrations: Vec<Integration>,
}

/// A line of the file that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: integration {domain}: {message}")]
pub struct LoadError {
    origin: String,
    domain: String,
    message: String,
}

static BUILTIN: LazyLock<Matchers> = LazyLock::new(|| {
    Matchers::parse(DATA, "built-in data/generated/home-assistant.toml")
        .expect("the built-in matchers load (unit-tested)")
});

impl Matchers {
    /// The built-in matchers.
    pub fn builtin() -> &'static Matchers {
        &BUILTIN
    }

    /// Parses a matchers file; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, LoadError> {
        let err = |domain: &str, message: String| LoadError {
            origin: origin.to_string(),
            domain: domain.to_string(),
            message,
        };
        let file: File = toml::from_str(text).map_err(|e| err("-", e.to_string()))?;
        let mut integrations = Vec::new();
        for e in file.integrations {
            let d = e.domain.as_str();
            let mut categories = Vec::new();
            for c in &e.categories {
                let known = crate::model::vocab::CATEGORIES
                    .iter()
                    .find(|k| *k == c && **k != "unknown")
                    .ok_or_else(|| err(d, format!("unknown category {c:?}")))?;
                categories.push(*known);
            }
            let g = |p: &str| glob(p).map_err(|x| err(d, format!("bad glob {p:?}: {x}")));
            let mut dhcp = Vec::new();
            for m in &e.dhcp {
                dhcp.push(Dhcp {
                    text: [
                        m.hostname.as_ref().map(|h| format!("hostname={h}")),
                        m.mac.as_ref().map(|p| format!("mac={p}")),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" "),
                    hostname: m.hostname.as_deref().map(g).transpose()?,
                    mac: m.mac.as_deref().map(g).transpose()?,
                });
            }
            let mut zeroconf = Vec::new();
            for m in &e.zeroconf {
                let mut text = m.kind.clone();
                if let Some(n) = &m.name {
                    text.push_str(&format!(" name={n}"));
                }
                let mut properties = Vec::new();
                for (k, v) in &m.properties {
                    text.push_str(&format!(" {k}={v}"));
                    properties.push((k.to_ascii_lowercase(), g(v)?));
                }
                zeroconf.push(Zeroconf {
                    text,
                    kind: service_type(&m.kind),
                    name: m.name.as_deref().map(g).transpose()?,
                    properties,
                });
            }
            let mut ssdp = Vec::new();
            for m in &e.ssdp {
                let mut headers = Vec::new();
                for v in m.values() {
                    headers.push(g(v)?);
                }
                let text = m
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                ssdp.push(Ssdp { text, headers });
            }
            integrations.push(Integration {
                domain: e.domain,
                name: e.name,
                brand: e.brand,
                ha_categories: e.ha_categories,
                categories,
                other: e.other,
                dhcp,
                zeroconf,
                ssdp,
                homekit: e.homekit,
            });
        }
        Ok(Self {
            source: file.source,
            integrations,
        })
    }

    /// Every integration the device matches, once each by its most telling matcher, most
    /// telling first.
    pub fn matches(&self, d: &Device) -> Vec<Match<'_>> {
        let p = &d.profile;
        let mac: String = d.mac.0.iter().map(|b| format!("{b:02X}")).collect();
        let hostnames: Vec<String> = p
            .hostname
            .iter()
            .chain(&p.hostnames)
            .map(|h| h.to_ascii_lowercase())
            .collect();
        let mut out: Vec<Match<'_>> = Vec::new();
        for i in &self.integrations {
            let mut best: Option<(Kind, String, &str)> = None;
            for m in &i.dhcp {
                let mac_ok = m.mac.as_ref().is_none_or(|g| g.is_match(&mac));
                if !mac_ok {
                    continue;
                }
                let host = match &m.hostname {
                    None => Some(String::new()),
                    Some(g) => hostnames.iter().find(|h| g.is_match(h.as_str())).cloned(),
                };
                let Some(host) = host else { continue };
                let (kind, value) = match (&m.hostname, &m.mac) {
                    (Some(_), Some(_)) => (Kind::DhcpNameAndMac, format!("{host} on {mac}")),
                    (Some(_), None) => (Kind::Dhcp, host),
                    _ => (Kind::Dhcp, mac.clone()),
                };
                consider(&mut best, kind, value, &m.text);
            }
            for model in &p.mdns.models {
                if let Some(prefix) = i.homekit.iter().find(|x| homekit_model(model, x)) {
                    consider(&mut best, Kind::Homekit, model.clone(), prefix);
                }
            }
            for m in &i.zeroconf {
                if !p.mdns.services.iter().any(|s| service_type(s) == m.kind) {
                    continue;
                }
                let named = m.name.is_some() || !m.properties.is_empty();
                let instance = match &m.name {
                    None => Some(String::new()),
                    Some(g) => p
                        .mdns
                        .instances
                        .iter()
                        .map(|s| s.trim_end_matches('.').to_ascii_lowercase())
                        .filter(|s| s.ends_with(&format!(".{}", m.kind)))
                        // Home Assistant matches the full name, root dot included.
                        .find(|s| g.is_match(format!("{s}.").as_str())),
                };
                let Some(instance) = instance else { continue };
                let props = m.properties.iter().all(|(k, g)| {
                    p.mdns.txt.iter().any(|e| {
                        e.split_once('=').is_some_and(|(ek, ev)| {
                            ek == k && g.is_match(ev.to_ascii_lowercase().as_str())
                        })
                    })
                });
                if !props {
                    continue;
                }
                let (kind, value) = if named {
                    let v = if instance.is_empty() {
                        m.kind.clone()
                    } else {
                        instance
                    };
                    (Kind::ZeroconfNamed, v)
                } else {
                    (Kind::ZeroconfType, m.kind.clone())
                };
                consider(&mut best, kind, value, &m.text);
            }
            for m in &i.ssdp {
                if let Some(t) = p
                    .ssdp
                    .announces
                    .iter()
                    .find(|t| m.headers.iter().all(|g| g.is_match(t.as_str())))
                {
                    consider(&mut best, Kind::Ssdp, t.clone(), &m.text);
                }
            }
            if let Some((kind, value, matcher)) = best {
                out.push(Match {
                    integration: i,
                    kind,
                    value,
                    matcher: format!("{} {} {}", i.domain, kind.as_str(), matcher),
                });
            }
        }
        out.sort_by_key(|m| m.kind);
        out
    }
}

fn consider<'m>(
    best: &mut Option<(Kind, String, &'m str)>,
    kind: Kind,
    value: String,
    matcher: &'m str,
) {
    if best.as_ref().is_none_or(|(k, ..)| kind < *k) {
        *best = Some((kind, value, matcher));
    }
}

/// A service type as compared: lowercase, without the root's trailing dot.
fn service_type(t: &str) -> String {
    t.trim_end_matches('.').to_ascii_lowercase()
}

/// Home Assistant's HomeKit model test: the model itself, or it followed by a space or a
/// dash; a prefix with a glob character is a glob.
fn homekit_model(model: &str, prefix: &str) -> bool {
    if prefix.contains(['*', '?', '[']) {
        return glob(prefix).is_ok_and(|g| g.is_match(model));
    }
    model == prefix
        || model
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with([' ', '-']))
}

/// The votes the matches cast: one per category an integration covers.
pub fn evidence(matches: &[Match<'_>]) -> Vec<Evidence> {
    let mut out = Vec::new();
    for m in matches {
        let Some(w) = m.integration.weight() else {
            continue;
        };
        for c in &m.integration.categories {
            out.push(Evidence {
                fact: "home_assistant".into(),
                value: m.value.clone(),
                pattern: m.matcher.clone(),
                category: (*c).to_string(),
                weight: (w * 100.0).round() / 100.0,
                discounted: false,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::{Facts, mdns::MdnsFacts};
    use sensor_common::MacAddr;

    fn device(mac: [u8; 6]) -> Device {
        let mut t = crate::track::devices::DeviceTable::with_capacity(4);
        t.on_seen(MacAddr(mac), 1);
        t.get(&MacAddr(mac)).unwrap().clone()
    }

    fn named(mac: [u8; 6], hostname: &str) -> Device {
        let mut d = device(mac);
        d.profile.hostname = Some(hostname.to_string());
        d
    }

    fn domains(d: &Device) -> Vec<String> {
        Matchers::builtin()
            .matches(d)
            .iter()
            .map(|m| m.integration.domain.clone())
            .collect()
    }

    #[test]
    fn the_built_in_file_loads_with_its_source_and_licence() {
        let m = Matchers::builtin();
        assert_eq!(m.source.package, "homeassistant");
        assert_eq!(m.source.licence, "Apache-2.0");
        assert_eq!(m.source.sha256.len(), 64);
        assert!(m.integrations.len() > 150, "{}", m.integrations.len());
        // Protocols that any maker speaks were left out by the importer.
        assert!(!m.integrations.iter().any(|i| i.domain == "matter"));
        let broken = Matchers::parse(
            "[source]\npackage='p'\nversion='1'\nsha256='x'\nlicence='l'\nurl='u'\n[[integration]]\ndomain='d'\nname='n'\nbrand='b'\nha_categories=[]\ncategories=['kettle']\nother=0\n",
            "test.toml",
        )
        .err()
        .expect("an unknown category is refused");
        assert!(
            broken.to_string().contains("test.toml: integration d"),
            "{broken}"
        );
    }

    #[test]
    fn a_dhcp_matcher_needs_both_its_host_name_and_its_mac_block() {
        // tplink: hostname "hs*" on B4:B0:24.
        let plug = named([0xB4, 0xB0, 0x24, 1, 2, 3], "HS110");
        assert_eq!(domains(&plug), ["tplink"]);
        let m = &Matchers::builtin().matches(&plug)[0];
        assert_eq!(m.kind, Kind::DhcpNameAndMac);
        assert_eq!(m.integration.brand, "TP-Link");
        assert!(m.matcher.contains("hostname=hs*"), "{}", m.matcher);
        // The same name on another maker's MAC says nothing.
        assert!(domains(&named([0x02, 0, 0, 1, 2, 3], "HS110")).is_empty());
    }

    #[test]
    fn homekit_models_and_named_mdns_instances_match() {
        let mut hue = device([0x02, 0, 0, 0, 0, 1]);
        hue.profile.merge(Facts::Mdns(MdnsFacts {
            models: ["BSB002".to_string()].into(),
            ..Default::default()
        }));
        assert_eq!(domains(&hue), ["hue"]);
        // "BSB0021" is another model, not BSB002 followed by a space or dash.
        let mut other = device([0x02, 0, 0, 0, 0, 2]);
        other.profile.merge(Facts::Mdns(MdnsFacts {
            models: ["BSB0021".to_string()].into(),
            ..Default::default()
        }));
        assert!(!domains(&other).contains(&"hue".to_string()));
        // shelly: _http._tcp instances named "shelly*".
        let mut shelly = device([0x02, 0, 0, 0, 0, 3]);
        shelly.profile.merge(Facts::Mdns(MdnsFacts {
            services: ["_http._tcp.local".to_string()].into(),
            instances: ["shellyplug-s-C8C9A3._http._tcp.local".to_string()].into(),
            ..Default::default()
        }));
        let m = Matchers::builtin().matches(&shelly);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].integration.domain, "shelly");
        assert_eq!(m[0].kind, Kind::ZeroconfNamed);
        // A plain web server's _http._tcp says nothing.
        let mut web = device([0x02, 0, 0, 0, 0, 4]);
        web.profile.merge(Facts::Mdns(MdnsFacts {
            services: ["_http._tcp.local".to_string()].into(),
            instances: ["printer._http._tcp.local".to_string()].into(),
            ..Default::default()
        }));
        assert!(domains(&web).is_empty());
    }

    #[test]
    fn a_maker_of_several_kinds_votes_less_for_each_and_names_no_category_alone() {
        let m = Matchers::builtin();
        let weight = |d: &str| {
            m.integrations
                .iter()
                .find(|i| i.domain == d)
                .unwrap()
                .weight()
        };
        // One kind: capped. TP-Link's three: ln(15/3) each. A cloud platform: no vote.
        assert_eq!(weight("roku"), Some(MAX_WEIGHT));
        assert!((weight("tplink").unwrap() - 5f64.ln()).abs() < 1e-9);
        assert_eq!(weight("tuya"), None);
        let c = crate::judge::classify::Classifier::builtin();
        let plug = named([0xB4, 0xB0, 0x24, 1, 2, 3], "hs-living-room");
        let votes = evidence(&m.matches(&plug));
        assert_eq!(votes.len(), 3, "{votes:?}");
        let r = c.classify_with(std::iter::empty::<(&str, &str)>(), votes);
        assert_eq!(r.category, "unknown", "three kinds tie: {r:?}");
        let a = crate::judge::assess::assess(
            &plug,
            None,
            &c,
            &crate::judge::criticality::Thresholds::default(),
        );
        assert_eq!(
            a.product.and_then(|p| p.brand).as_deref(),
            Some("TP-Link"),
            "the brand stands when the category cannot be told"
        );
    }
}
