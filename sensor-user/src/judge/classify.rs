//! Classification: a device's facts are evidence for or against categories, by the rules
//! of data files (`data/classify.toml` and `data/products/`, built in; a user's file adds
//! to or replaces them). A rule's weight is a log-likelihood ratio: a matching fact
//! multiplies the odds of its category by e^weight. Facts of one kind are not independent
//! (twenty names of one cloud are one piece of evidence), so per category only the
//! strongest rule of each fact kind counts, for and against; kinds add up. The confidence
//! is the posterior of the best category from a uniform prior over the categories.

use std::path::Path;

use globset::{GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use serde::Deserialize;
use toml::Spanned;

use crate::{
    config::error::ConfigError,
    model::vocab::{CATEGORIES, Classification, Evidence},
};

/// The rules shipped with the binary: the scoring header and generic rules, then the
/// product knowledge base (`data/products/`, one file per product family, each rule
/// citing its source), as (origin, text).
pub const BUILTIN: [(&str, &str); 13] = [
    (
        "built-in data/classify.toml",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/classify.toml")),
    ),
    (
        "built-in data/products/appliances-health.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/products/appliances-health.toml"
        )),
    ),
    (
        "built-in data/products/cameras-doorbells.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/products/cameras-doorbells.toml"
        )),
    ),
    (
        "built-in data/products/climate-sensors.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/products/climate-sensors.toml"
        )),
    ),
    (
        "built-in data/products/computers-phones.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/products/computers-phones.toml"
        )),
    ),
    (
        "built-in data/products/dhcp-os.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/products/dhcp-os.toml"
        )),
    ),
    (
        "built-in data/products/hubs.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/products/hubs.toml"
        )),
    ),
    (
        "built-in data/products/locks-alarms.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/products/locks-alarms.toml"
        )),
    ),
    (
        "built-in data/products/network.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/products/network.toml"
        )),
    ),
    (
        "built-in data/products/plugs-lights.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/products/plugs-lights.toml"
        )),
    ),
    (
        "built-in data/products/printers.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/products/printers.toml"
        )),
    ),
    (
        "built-in data/products/speakers-media.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/products/speakers-media.toml"
        )),
    ),
    (
        "built-in data/products/standards.toml",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/products/standards.toml"
        )),
    ),
];

/// The fact kinds rules may name (what [`crate::discover::profile::Profile::facts`] and the vendor give).
pub const FACTS: [&str; 24] = [
    "vendor",
    "hostname",
    "user_agent",
    "dhcp_vendor_class",
    "dhcp_prl",
    "dns",
    "tls_name",
    "mdns_service",
    "mdns_query",
    "mdns_instance",
    "mdns_txt",
    "model",
    "ssdp_server",
    "ssdp_type",
    "ssdp_search",
    "ssdp_usn",
    "lldp_description",
    "lldp_capability",
    "wsd_type",
    "wsd_scope",
    "wsd_action",
    "kasa",
    "tuya",
    "mqtt_client",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    min_score: Option<f64>,
    strong: Option<f64>,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    fact: Spanned<String>,
    #[serde(rename = "match")]
    pattern: Spanned<String>,
    category: Spanned<String>,
    weight: Spanned<f64>,
    /// Values the rule must match: checked when the file is loaded, so a glob that
    /// drifted from what its product line sends is an error, not a silent miss.
    #[serde(default)]
    examples: Vec<String>,
    /// Values the rule must not match (other products' names it could be mistaken for).
    #[serde(default)]
    counterexamples: Vec<String>,
}

struct ClassRule {
    fact: String,
    pattern: String,
    matcher: GlobMatcher,
    category: &'static str,
    weight: f64,
}

/// Compiled rules.
pub struct Classifier {
    rules: Vec<ClassRule>,
    /// The names rules vote for a category on (`dns` and `tls_name`, positive weight):
    /// the clouds and services of products the knowledge base knows.
    service_names: GlobSet,
    min_score: f64,
    strong: f64,
    builtin: bool,
}

impl Classifier {
    /// The built-in rules, then the user's file (if any); `builtin = false` drops the
    /// built-in ones.
    pub fn load(user: Option<&Path>, builtin: bool) -> Result<Self, ConfigError> {
        let mut c = Self {
            rules: Vec::new(),
            service_names: GlobSet::empty(),
            min_score: 1.0,
            strong: 0.6,
            builtin,
        };
        if builtin {
            for (origin, text) in BUILTIN {
                c.add(text, origin)?;
            }
        }
        if let Some(path) = user {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            c.add(&text, &path.display().to_string())?;
        }
        Ok(c)
    }

    /// A user rules file's text alone (no built-in rules); `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let mut c = Self::load(None, false)?;
        c.add(text, origin)?;
        Ok(c)
    }

    /// The built-in rules.
    pub fn builtin() -> Self {
        Self::load(None, true).expect("the built-in rules are valid (unit-tested)")
    }

    fn add(&mut self, text: &str, origin: &str) -> Result<(), ConfigError> {
        let at = |offset: usize, message| ConfigError::at(origin, text, offset, message);
        let file: RulesFile = toml::from_str(text)
            .map_err(|e| at(e.span().map_or(0, |s| s.start), e.message().to_string()))?;
        for (v, slot) in [
            (file.min_score, &mut self.min_score),
            (file.strong, &mut self.strong),
        ] {
            if let Some(v) = v {
                if !(0.0..=100.0).contains(&v) {
                    return Err(at(0, format!("{v} is out of range")));
                }
                *slot = v;
            }
        }
        for r in file.rules {
            if !FACTS.contains(&r.fact.get_ref().as_str()) {
                return Err(at(
                    r.fact.span().start,
                    format!(
                        "unknown fact {:?}; one of {}",
                        r.fact.get_ref(),
                        FACTS.join(", ")
                    ),
                ));
            }
            let Some(category) = CATEGORIES.iter().find(|c| **c == r.category.get_ref()) else {
                return Err(at(
                    r.category.span().start,
                    format!(
                        "unknown category {:?}; one of {}",
                        r.category.get_ref(),
                        CATEGORIES.join(", ")
                    ),
                ));
            };
            let w = *r.weight.get_ref();
            if !(w != 0.0 && (-10.0..=10.0).contains(&w)) {
                return Err(at(
                    r.weight.span().start,
                    format!("weight {w} is not in [-10, 10] or is zero"),
                ));
            }
            let matcher = GlobBuilder::new(r.pattern.get_ref())
                .case_insensitive(true)
                .literal_separator(false)
                .build()
                .map_err(|e| at(r.pattern.span().start, format!("bad pattern: {e}")))?
                .compile_matcher();
            if let Some(v) = r.examples.iter().find(|v| !matcher.is_match(v)) {
                return Err(at(
                    r.pattern.span().start,
                    format!("pattern does not match its example {v:?}"),
                ));
            }
            if let Some(v) = r.counterexamples.iter().find(|v| matcher.is_match(v)) {
                return Err(at(
                    r.pattern.span().start,
                    format!("pattern matches its counterexample {v:?}"),
                ));
            }
            self.rules.push(ClassRule {
                fact: r.fact.into_inner(),
                pattern: r.pattern.into_inner(),
                matcher,
                category,
                weight: w,
            });
        }
        let mut names = GlobSetBuilder::new();
        for r in &self.rules {
            if same_kind(&r.fact) == same_kind("dns") && r.weight > 0.0 {
                names.add(r.matcher.glob().clone());
            }
        }
        self.service_names = names
            .build()
            .map_err(|e| at(0, format!("bad pattern: {e}")))?;
        Ok(())
    }

    /// Whether `name` is one the knowledge base names a product's cloud or service by.
    pub fn knows_name(&self, name: &str) -> bool {
        self.service_names.is_match(name)
    }

    /// Whether the built-in knowledge is on (rules and Home Assistant's matchers).
    pub fn builtin_on(&self) -> bool {
        self.builtin
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// How many rules it holds.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The confidence from which a classification overrules a declared category enough
    /// to report the mismatch.
    pub fn strong(&self) -> f64 {
        self.strong
    }

    /// Classifies a device from its facts (kind, value). Each rule is evidence at most
    /// once; per category and fact kind only the strongest rule for and the strongest
    /// against count.
    pub fn classify<'a>(
        &self,
        facts: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Classification {
        self.classify_with(facts, Vec::new())
    }

    /// Classifies as [`Self::classify`] with votes found elsewhere added (Home Assistant's
    /// matchers, which match several facts at once).
    pub fn classify_with<'a>(
        &self,
        facts: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
        extra: Vec<Evidence>,
    ) -> Classification {
        let mut evidence = extra;
        for r in &self.rules {
            if let Some((k, v)) = facts
                .clone()
                .into_iter()
                .find(|(k, v)| same_kind(k) == same_kind(&r.fact) && r.matcher.is_match(v))
            {
                evidence.push(Evidence {
                    fact: k.to_string(),
                    value: v.to_string(),
                    pattern: r.pattern.clone(),
                    category: r.category.to_string(),
                    weight: r.weight,
                    discounted: false,
                });
            }
        }
        evidence.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
        discount_leaks(&mut evidence);
        let counted: Vec<Evidence> = evidence.iter().filter(|e| !e.discounted).cloned().collect();
        let scores = scores(&counted);
        let (best, best_score) = scores
            .iter()
            .fold(("unknown", f64::NEG_INFINITY), |acc, x| {
                if x.1 > acc.1 { *x } else { acc }
            });
        // Evidence that names two categories equally (a maker that sells both, and nothing
        // more) cannot choose between them: unknown, not whichever is listed first.
        let tied = scores
            .iter()
            .any(|(c, s)| *c != best && (best_score - s).abs() < 1e-9);
        if best_score < self.min_score || tied {
            return Classification {
                evidence,
                ..Classification::unknown()
            };
        }
        Classification {
            category: best.to_string(),
            confidence: (posterior(&scores, best_score) * 100.0).floor() / 100.0,
            evidence,
        }
    }
}

/// The kind a fact counts as: a TLS server name is a name the device reached, as a DNS
/// name is, so rules on `dns` match it and the two count once together.
fn same_kind(fact: &str) -> &str {
    if fact == "tls_name" { "dns" } else { fact }
}

/// Facts a network stack or OS sets, whatever product it runs in: the DHCP vendor class
/// and parameter list, and LLDP's system description. Cameras, media players and displays
/// built on Windows, Android or a desktop Linux send what a PC or phone sends.
const STACK_FACTS: [&str; 3] = ["dhcp_vendor_class", "dhcp_prl", "lldp_description"];

/// A vote of at least this weight for a category other than computer-phone, from a fact
/// the product itself sets (its name, its cloud, its maker, what it announces), shows a
/// purpose-built device.
const PURPOSE_BUILT: f64 = 1.0;

/// Stack facts voting computer-phone do not count on a device other facts show to be
/// purpose-built: they are evidence that it runs a general-purpose OS, not that it is a
/// PC or a phone. Votes against computer-phone (an embedded stack) still count.
fn discount_leaks(evidence: &mut [Evidence]) {
    let purpose_built = evidence.iter().any(|e| {
        e.weight >= PURPOSE_BUILT
            && e.category != "computer-phone"
            && !STACK_FACTS.contains(&e.fact.as_str())
    });
    if !purpose_built {
        return;
    }
    for e in evidence.iter_mut() {
        if e.category == "computer-phone"
            && e.weight > 0.0
            && STACK_FACTS.contains(&e.fact.as_str())
        {
            e.discounted = true;
        }
    }
}

/// Each category's log-odds score (unknown excluded): per fact kind the strongest rule for
/// it plus the strongest against it, summed over the kinds.
fn scores(evidence: &[Evidence]) -> Vec<(&'static str, f64)> {
    CATEGORIES
        .iter()
        .filter(|c| **c != "unknown")
        .map(|c| {
            let mut per_fact: Vec<(&str, f64, f64)> = Vec::new();
            for e in evidence.iter().filter(|e| e.category == *c) {
                let kind = same_kind(&e.fact);
                let slot = match per_fact.iter_mut().find(|(f, ..)| *f == kind) {
                    Some(s) => s,
                    None => {
                        per_fact.push((kind, 0.0, 0.0));
                        per_fact.last_mut().expect("just pushed")
                    }
                };
                slot.1 = slot.1.max(e.weight);
                slot.2 = slot.2.min(e.weight);
            }
            (*c, per_fact.iter().map(|(_, f, a)| f + a).sum())
        })
        .collect()
}

/// The posterior of the category scoring `best` under a uniform prior over the
/// categories: e^best / sum of e^score (computed shifted by `best`, so it cannot overflow).
fn posterior(scores: &[(&str, f64)], best: f64) -> f64 {
    let total: f64 = scores.iter().map(|(_, s)| (s - best).exp()).sum();
    1.0 / total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_tvs_and_speakers_send_as_user_agents() {
        let c = Classifier::builtin();
        let tizen = c.classify([(
            "user_agent",
            "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.5) AppleWebKit/537.36 (KHTML, like Gecko) 85.0.4183.93/6.5 TV Safari/537.36",
        )]);
        assert_eq!(tizen.category, "tv-media", "{tizen:?}");
        let fire = c.classify([("model", "AFTKA")]);
        assert_eq!(fire.category, "tv-media", "{fire:?}");
        let home = c.classify([(
            "user_agent",
            "Mozilla/5.0 (Linux; Android) CrKey/1.56.500000 DeviceType/SmartSpeaker",
        )]);
        assert_eq!(home.category, "speaker", "{home:?}");
        let phone = c.classify([(
            "user_agent",
            "Dalvik/2.1.0 (Linux; U; Android 13; KW-7000 Build/TQ3A.230901.001)",
        )]);
        assert_eq!(
            phone.category, "unknown",
            "an Android stack says nothing of the product: {phone:?}"
        );
    }

    #[test]
    fn names_of_products_clouds() {
        let c = Classifier::builtin();
        assert!(c.knows_name("a1.tuyaus.com"));
        assert!(c.knows_name("mqtt-us-2.meross.com"));
        assert!(!c.knows_name("c2.example.net"));
        let user = Classifier::parse(
            "[[rule]]\nfact = \"tls_name\"\nmatch = \"*.hub.example\"\ncategory = \"camera\"\nweight = 2.0\n",
            "t.toml",
        )
        .unwrap();
        assert!(
            user.knows_name("eu.hub.example"),
            "a user's rules name clouds too"
        );
    }

    #[test]
    fn a_desktop_os_fact_on_a_purpose_built_device_does_not_make_it_a_pc() {
        let c = Classifier::builtin();
        // A camera maker's OUI and the vendor class Windows sends (a camera on Windows
        // IoT): the camera's own fact decides, the stack's vote is kept but discounted.
        let cam = c.classify([
            ("vendor", "Shanghai Imilab Technology Co.Ltd"),
            ("dhcp_vendor_class", "MSFT 5.0"),
        ]);
        assert_eq!(cam.category, "camera", "{cam:?}");
        let msft = cam
            .evidence
            .iter()
            .find(|e| e.fact == "dhcp_vendor_class")
            .unwrap();
        assert!(msft.discounted, "{msft:?}");
        // Alone, it still says what it says.
        let pc = c.classify([("dhcp_vendor_class", "MSFT 5.0")]);
        assert_eq!(pc.category, "computer-phone");
        assert!(pc.evidence.iter().all(|e| !e.discounted));
        // A Raspberry Pi's facts are all a computer's: nothing discounted.
        let pi = c.classify([
            ("hostname", "raspberrypi"),
            (
                "dhcp_vendor_class",
                "dhcpcd-6.11.5:Linux-4.1.18-v7+:armv7l:BCM2709",
            ),
        ]);
        assert_eq!(pi.category, "computer-phone");
        assert!(pi.evidence.iter().all(|e| !e.discounted));
    }

    #[test]
    fn builtin_rules_load() {
        assert!(Classifier::builtin().len() > 50);
    }

    #[test]
    fn every_product_file_is_built_in() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/products");
        for f in std::fs::read_dir(&dir).unwrap() {
            let name = f.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".toml") {
                let origin = format!("built-in data/products/{name}");
                assert!(
                    BUILTIN.iter().any(|(o, _)| *o == origin),
                    "{name} is not in BUILTIN"
                );
            }
        }
    }

    fn rules(text: &str) -> Classifier {
        Classifier::parse(text, "t.toml").unwrap()
    }

    #[test]
    fn independent_kinds_add_up_and_the_posterior_is_the_confidence() {
        let c = rules(
            "[[rule]]\nfact = \"dns\"\nmatch = \"*.cam.example\"\ncategory = \"camera\"\nweight = 3.0\n\
             [[rule]]\nfact = \"hostname\"\nmatch = \"CAM-*\"\ncategory = \"camera\"\nweight = 2.0\n",
        );
        let one = c.classify([("dns", "a.cam.example")]);
        assert_eq!(one.category, "camera");
        // e^3 / (e^3 + 14 categories at e^0)
        assert_eq!(one.confidence, 0.58);
        let two = c.classify([("dns", "a.cam.example"), ("hostname", "CAM-1")]);
        assert_eq!(two.confidence, 0.91, "e^5 / (e^5 + 14)");
    }

    #[test]
    fn one_kind_of_fact_counts_once_per_category() {
        let c = rules(
            "[[rule]]\nfact = \"dns\"\nmatch = \"*.cam.example\"\ncategory = \"camera\"\nweight = 3.0\n\
             [[rule]]\nfact = \"dns\"\nmatch = \"api.*\"\ncategory = \"camera\"\nweight = 2.0\n",
        );
        let r = c.classify([("dns", "api.cam.example"), ("dns", "b.cam.example")]);
        assert_eq!(r.evidence.len(), 2, "both rules are listed");
        assert_eq!(r.confidence, 0.58, "only the strongest dns rule counts");
    }

    #[test]
    fn a_tls_server_name_is_matched_by_dns_rules_and_counts_once_with_them() {
        let c = rules(
            "[[rule]]\nfact = \"dns\"\nmatch = \"*.cam.example\"\ncategory = \"camera\"\nweight = 3.0\n",
        );
        // Its DNS encrypted: the name in its ClientHello is the only one seen.
        let sni = c.classify([("tls_name", "a.cam.example")]);
        assert_eq!((sni.category.as_str(), sni.confidence), ("camera", 0.58));
        assert_eq!(sni.evidence[0].fact, "tls_name");
        // Seen both ways, the same name is one piece of evidence, not two.
        let both = c.classify([("dns", "a.cam.example"), ("tls_name", "a.cam.example")]);
        assert_eq!(both.confidence, 0.58);
        assert!(c.classify([("hostname", "a.cam.example")]).category == "unknown");
    }

    #[test]
    fn contradictions_and_evidence_against_lower_the_confidence() {
        let c = rules(
            "[[rule]]\nfact = \"hostname\"\nmatch = \"CAM-*\"\ncategory = \"camera\"\nweight = 3.0\n\
             [[rule]]\nfact = \"dns\"\nmatch = \"*.plug.example\"\ncategory = \"plug-switch\"\nweight = 2.0\n\
             [[rule]]\nfact = \"dhcp_prl\"\nmatch = \"1,3,28,6\"\ncategory = \"camera\"\nweight = -2.5\n",
        );
        let alone = c.classify([("hostname", "CAM-1")]).confidence;
        let contradicted = c.classify([("hostname", "CAM-1"), ("dns", "x.plug.example")]);
        assert_eq!(contradicted.category, "camera");
        assert!(contradicted.confidence < alone, "{contradicted:?}");
        let against = c.classify([("hostname", "CAM-1"), ("dhcp_prl", "1,3,28,6")]);
        assert_eq!(against.category, "unknown", "3.0 - 2.5 is under min_score");
    }

    #[test]
    fn examples_and_counterexamples_are_checked_on_load() {
        let e = Classifier::parse(
            "[[rule]]\nfact = \"hostname\"\nmatch = \"DCS-*\"\ncategory = \"camera\"\nweight = 3.0\nexamples = [\"DCS-930L\", \"DSP-W215\"]\n",
            "t.toml",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.contains("t.toml:3:9") && e.contains("\"DSP-W215\""),
            "{e}"
        );
        let e = Classifier::parse(
            "[[rule]]\nfact = \"hostname\"\nmatch = \"DC*\"\ncategory = \"camera\"\nweight = 3.0\ncounterexamples = [\"DCH-S150\"]\n",
            "t.toml",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("counterexample \"DCH-S150\""), "{e}");
    }

    #[test]
    fn strong_evidence_wins_with_its_confidence() {
        let c = Classifier::builtin();
        let r = c.classify([
            ("vendor", "Shanghai Imilab Technology Co.Ltd"),
            ("dns", "business.smartcamera.api.io.mi.com"),
        ]);
        assert_eq!(r.category, "camera");
        assert!(r.confidence > 0.6, "{r:?}");
        assert_eq!(r.evidence.len(), 2);
        assert_eq!(r.evidence[0].fact, "dns");
    }

    #[test]
    fn below_the_minimum_stays_unknown_but_keeps_its_votes() {
        let c = Classifier::parse(
            "[[rule]]\nfact = \"vendor\"\nmatch = \"Acme*\"\ncategory = \"camera\"\nweight = 0.5\n",
            "t.toml",
        )
        .unwrap();
        let r = c.classify([("vendor", "Acme Widgets")]);
        assert_eq!(r.category, "unknown");
        assert_eq!(r.confidence, 0.0);
        assert_eq!(r.evidence.len(), 1);
    }

    #[test]
    fn a_radio_module_maker_is_no_evidence() {
        let c = Classifier::builtin();
        for v in [
            "Espressif Inc.",
            "Realtek Semiconductor Corp.",
            "AzureWave Technology Inc.",
        ] {
            let r = c.classify([("vendor", v)]);
            assert!(r.evidence.is_empty(), "{v}: {:?}", r.evidence);
        }
    }

    #[test]
    fn a_rule_votes_once_however_many_facts_match() {
        let c = Classifier::builtin();
        let names: Vec<String> = (0..20).map(|i| format!("a{i}.tuyaeu.com")).collect();
        let r = c.classify(names.iter().map(|n| ("dns", n.as_str())));
        assert_eq!(r.evidence.len(), 1);
    }

    #[test]
    fn user_rules_add_and_errors_have_a_location() {
        let dir = std::env::temp_dir().join(format!("kw-classify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(
            &good,
            "[[rule]]\nfact = \"hostname\"\nmatch = \"kw-lab-*\"\ncategory = \"appliance\"\nweight = 3.0\n",
        )
        .unwrap();
        let c = Classifier::load(Some(&good), false).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c.classify([("hostname", "KW-LAB-7")]).category, "appliance");
        let bad = dir.join("bad.toml");
        std::fs::write(
            &bad,
            "min_score = 1.0\n\n[[rule]]\nfact = \"hostname\"\nmatch = \"x\"\ncategory = \"toaster\"\nweight = 1.0\n",
        )
        .unwrap();
        let e = Classifier::load(Some(&bad), true)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("bad.toml:6:12: unknown category \"toaster\""),
            "{e}"
        );
        std::fs::write(
            &bad,
            "[[rule]]\nfact = \"smell\"\nmatch = \"x\"\ncategory = \"camera\"\nweight = 1.0\n",
        )
        .unwrap();
        let e = Classifier::load(Some(&bad), true)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("bad.toml:2:8: unknown fact"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
