//! The `device` event: what a device is, what it said about itself, and why.

use std::net::IpAddr;

use serde_json::{Value, json};

use super::Eve;
use crate::{
    model::device::Device,
    model::device::Phase,
    model::{clock::eve_timestamp, vocab::Declared},
};

impl Eve {
    /// A `device` event; `phase` where the device is in its learning window (absent
    /// before its first flow compiled its policy), `tie` the earlier identity a
    /// randomised MAC was tied to.
    pub fn device(
        &self,
        now_ns: u64,
        d: &Device,
        declared: Option<&Declared>,
        phase: Option<Phase>,
        tie: Option<crate::model::identity::Tie>,
    ) -> Value {
        let mut m = self.common("device", now_ns);
        m.insert("ether".into(), json!({ "src_mac": d.mac.to_string() }));
        let mut dev = self.device_object(d.mac, Some(d), declared);
        let addresses: Vec<String> = d.addresses.iter().map(IpAddr::to_string).collect();
        dev.insert("addresses".into(), addresses.into());
        let first = d
            .first_seen_epoch_ns
            .unwrap_or_else(|| self.time.to_epoch_ns(d.first_seen_ns));
        dev.insert("first_seen".into(), eve_timestamp(first).into());
        dev.insert("last_seen".into(), self.time(d.last_seen_ns).into());
        if let Some(a) = &d.assessment {
            if declared.and_then(|x| x.category.as_ref()).is_some() {
                dev.insert(
                    "observed".into(),
                    json!({"category": a.observed.category, "confidence": a.observed.confidence}),
                );
            }
            dev.insert(
                "evidence".into(),
                serde_json::to_value(&a.observed.evidence).expect("evidence serializes"),
            );
            dev.insert("why".into(), a.why.clone().into());
            if let Some(p) = &a.product {
                dev.insert(
                    "product".into(),
                    serde_json::to_value(p).expect("a product serializes"),
                );
            }
            if !a.vulnerabilities.is_empty() {
                dev.insert(
                    "vulnerabilities".into(),
                    serde_json::to_value(&a.vulnerabilities).expect("vulnerabilities serialize"),
                );
            }
        }
        dev.insert(
            "peers".into(),
            json!({
                "dependents": d.peers.dependents.len(),
                "internal": d.peers.internal.len(),
                "external": d.peers.external_count(),
            }),
        );
        if let Some(p) = phase {
            let mut b = json!({ "phase": p.as_str() });
            if let Phase::Learning(until) = p {
                b["learning_until"] = self.time(until).into();
            }
            dev.insert("baseline".into(), b);
        }
        if let Some(t) = tie {
            dev.insert(
                "identity".into(),
                json!({
                    "tied_to": t.identity.to_string(),
                    "by": t.by.as_str(),
                    "randomised_mac": true,
                }),
            );
        }
        if let Some(u) = d.profile.mud_url() {
            dev.insert("mud_url".into(), u.into());
        }
        if let Value::Object(p) = serde_json::to_value(&d.profile).expect("a profile serializes") {
            dev.extend(p);
        }
        m.insert("iot".into(), json!({ "device": dev }));
        m.into()
    }
}
