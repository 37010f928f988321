//! Assessment: what a device is (classification of its facts) and how much it matters
//! (criticality), which product it is (`product`), with the declared inventory taking precedence over both.

use crate::{
    discover::oui,
    judge::classify::Classifier,
    judge::criticality::{self, Thresholds},
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
    let observed = classifier.classify(facts.iter().map(|(k, v)| (*k, v.as_ref())));
    let category = declared
        .and_then(|x| x.category.clone())
        .unwrap_or_else(|| observed.category.clone());
    let (criticality, why) = criticality::derive(
        declared.and_then(|x| x.criticality),
        &category,
        &d.peers,
        thresholds,
    );
    let product = crate::judge::product::product(d, vendor, &observed.evidence);
    Assessment {
        observed,
        criticality,
        why,
        product,
    }
}
