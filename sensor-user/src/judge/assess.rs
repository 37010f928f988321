//! Assessment: what a device is (classification of its facts) and how much it matters
//! (criticality), which product it is (`product`), with the declared inventory taking precedence over both.

use crate::{
    discover::oui,
    judge::classify::Classifier,
    judge::criticality::{self, Thresholds},
    judge::ha_discovery,
    model::device::{Assessment, Device},
    model::vocab::Declared,
};

/// Assesses one device.
pub fn assess(
    d: &Device,
    declared: Option<&Declared>,
    classifier: &Classifier,
    thresholds: &Thresholds,
) -> Assessment {
    let vendor = oui::origin(d.mac).vendor();
    let mut facts = d.profile.facts();
    if let Some(v) = vendor {
        facts.push(("vendor", std::borrow::Cow::Borrowed(v)));
    }
    let matches = if classifier.builtin_on() {
        ha_discovery::Matchers::builtin().matches(d)
    } else {
        Vec::new()
    };
    let observed = classifier.classify_with(
        facts.iter().map(|(k, v)| (*k, v.as_ref())),
        ha_discovery::evidence(&matches),
    );
    let category = declared
        .and_then(|x| x.category.clone())
        .unwrap_or_else(|| observed.category.clone());
    let (criticality, why) = criticality::derive(
        declared.and_then(|x| x.criticality),
        &category,
        &d.peers,
        thresholds,
    );
    let brand = matches.first().map(|m| m.integration.brand.as_str());
    let product = crate::judge::product::product(d, vendor, brand, &observed.evidence);
    Assessment {
        observed,
        criticality,
        why,
        product,
        vulnerabilities: Vec::new(),
    }
}

/// Takes the device's known vulnerabilities into its assessment: a known exploited one
/// makes it at least `high`, and says so in `why` (a declared criticality stands).
pub fn with_vulnerabilities(
    a: &mut Assessment,
    vulns: Vec<crate::model::device::Vulnerability>,
    declared: Option<&Declared>,
) {
    let kev: Vec<&str> = vulns
        .iter()
        .filter(|v| v.known_exploited)
        .map(|v| v.cve.as_str())
        .collect();
    if !kev.is_empty() && declared.and_then(|d| d.criticality).is_none() {
        let product = vulns
            .iter()
            .find(|v| v.known_exploited)
            .map_or("", |v| v.product.as_str());
        if a.criticality < crate::model::vocab::Criticality::High {
            a.criticality = crate::model::vocab::Criticality::High;
        }
        a.why = format!(
            "{product} has known exploited {} (CISA KEV): at least high; {}",
            kev.join(", "),
            a.why
        );
    }
    a.vulnerabilities = vulns;
}
