//! The `alert` event, for each source of alerts: a flow's destination (policy, intel,
//! canaries, anomalies with a flow), a device (inventory findings, anomalies without a
//! flow), and the sensor itself.

use sensor_common::{FlowKey, MacAddr};
use serde_json::{Value, json};

use super::{Eve, PolicyContext, alert_object};
use crate::{
    judge::{
        anomaly::AnomalyAlert,
        baseline::PolicyAlert,
        intel::{Source, stage::IntelAlert},
        inventory::Finding,
        rules::{self, Rule},
    },
    model::{clock::eve_timestamp, vocab::Declared},
    track::{devices::Device, flows::Origin},
};

/// The device an alert is about, as far as the sensor knows it.
#[derive(Clone, Copy, Default)]
pub struct Subject<'a> {
    /// Its entry in the device table.
    pub device: Option<&'a Device>,
    /// What the inventory declares of it.
    pub declared: Option<&'a Declared>,
}

impl Eve {
    /// An `alert` about a flow's destination (policy): the flow's addressing, the device,
    /// the rule and its source, what was expected, and the name the device resolved.
    #[allow(clippy::too_many_arguments)]
    pub fn policy_alert(
        &self,
        now_ns: u64,
        rule: &Rule,
        key: &FlowKey,
        origin: Option<Origin>,
        device: Option<&Device>,
        declared: Option<&Declared>,
        p: &PolicyContext<'_>,
    ) -> Value {
        let mut m = self.common("alert", now_ns);
        self.addressing(&mut m, key, origin);
        m.insert(
            "alert".into(),
            alert_object(rule, p.blocked, p.metadata.clone()),
        );
        let dev = self.device_object(key.mac, device, declared);
        let mut iot = json!({
            "device": dev,
            "rule": {"id": rule.id, "source": p.source, "expected": p.expected},
        });
        if let Some(n) = p.rrname {
            iot["dns"] = json!({ "rrname": n });
        }
        if let Some(i) = &p.intel {
            iot["intel"] = i.clone();
        }
        m.insert("iot".into(), iot);
        m.into()
    }

    /// An `alert` event about a device. `source` is `iot.rule.source`; `metadata` EVE's
    /// `alert.metadata` (names to lists of strings).
    #[allow(clippy::too_many_arguments)]
    pub fn alert(
        &self,
        now_ns: u64,
        rule: &Rule,
        mac: MacAddr,
        device: Option<&Device>,
        declared: Option<&Declared>,
        source: &str,
        metadata: Value,
    ) -> Value {
        let mut m = self.common("alert", now_ns);
        // The device's own address, IPv4 first, when it has shown one.
        if let Some(ip) = device.and_then(|d| {
            d.addresses
                .iter()
                .find(|a| a.is_ipv4())
                .or_else(|| d.addresses.iter().next())
        }) {
            m.insert("src_ip".into(), ip.to_string().into());
        }
        m.insert("ether".into(), json!({ "src_mac": mac.to_string() }));
        m.insert("alert".into(), alert_object(rule, false, metadata));
        let dev = self.device_object(mac, device, declared);
        m.insert(
            "iot".into(),
            json!({
                "device": dev,
                "rule": {"id": rule.id, "source": source, "expected": []},
            }),
        );
        m.into()
    }

    /// An `alert` about the sensor itself (no device, no flow): `device_table_pressure`.
    pub fn sensor_alert(&self, now_ns: u64, rule: &Rule, metadata: Value) -> Value {
        let mut m = self.common("alert", now_ns);
        m.insert("alert".into(), alert_object(rule, false, metadata));
        m.insert(
            "iot".into(),
            json!({ "rule": {"id": rule.id, "source": "sensor", "expected": []} }),
        );
        m.into()
    }

    /// A policy alert (`unexpected_destination`, `new_port`) from the baseline stage.
    pub fn policy_event(&self, now_ns: u64, a: &PolicyAlert, who: Subject<'_>) -> Value {
        let ctx = PolicyContext {
            source: a.source,
            expected: a.expected.clone(),
            rrname: a.rrname.as_deref(),
            blocked: a.blocked,
            metadata: match &a.service {
                Some(s) => json!({"policy": a.policies, "mode": [a.mode.as_str()], "service": [s]}),
                None => json!({"policy": a.policies, "mode": [a.mode.as_str()]}),
            },
            intel: None,
        };
        self.policy_alert(
            now_ns,
            a.rule,
            &a.key,
            Some(a.origin),
            who.device,
            who.declared,
            &ctx,
        )
    }

    /// A behaviour alert from the anomaly stage, about a flow when it has one.
    pub fn anomaly_event(&self, now_ns: u64, a: AnomalyAlert, who: Subject<'_>) -> Value {
        match a.flow {
            Some((key, origin)) => {
                let ctx = PolicyContext {
                    source: "anomaly",
                    expected: Vec::new(),
                    rrname: None,
                    blocked: false,
                    metadata: a.metadata,
                    intel: None,
                };
                self.policy_alert(
                    now_ns,
                    a.rule,
                    &key,
                    Some(origin),
                    who.device,
                    who.declared,
                    &ctx,
                )
            }
            None => self.alert(
                now_ns,
                a.rule,
                a.mac,
                who.device,
                who.declared,
                "anomaly",
                a.metadata,
            ),
        }
    }

    /// A threat-intelligence or canary alert: a flow to a listed address or canary, or a
    /// listed name looked up, answered or connected to.
    pub fn intel_event(&self, now_ns: u64, a: IntelAlert, who: Subject<'_>) -> Value {
        let intel_obj = |sources: &[Source], indicator: String| {
            let mut o = json!({
                "feed": sources.first().map_or("", |s| s.feed.as_str()),
                "indicator": indicator,
            });
            if let Some(c) = sources.iter().find_map(|s| s.category.clone()) {
                o["category"] = c.into();
            }
            o
        };
        let feeds = |sources: &[Source]| {
            json!({
                "feeds": sources.iter().map(|s| s.feed.clone()).collect::<Vec<_>>(),
                "categories": sources.iter().filter_map(|s| s.category.clone()).collect::<Vec<_>>(),
            })
        };
        let flow_alert = |rule, key: &FlowKey, origin, ctx: &PolicyContext<'_>| {
            self.policy_alert(
                now_ns,
                rule,
                key,
                Some(origin),
                who.device,
                who.declared,
                ctx,
            )
        };
        match a {
            IntelAlert::Ip {
                key,
                origin,
                net,
                sources,
                blocked,
            } => {
                let ctx = PolicyContext {
                    source: "intel",
                    expected: Vec::new(),
                    rrname: None,
                    blocked,
                    metadata: feeds(&sources),
                    intel: Some(intel_obj(&sources, net.to_string())),
                };
                flow_alert(&rules::THREAT_INTEL_IP, &key, origin, &ctx)
            }
            IntelAlert::Canary {
                key,
                origin,
                net,
                blocked,
            } => {
                let ctx = PolicyContext {
                    source: "canary",
                    expected: Vec::new(),
                    rrname: None,
                    blocked,
                    metadata: json!({}),
                    intel: Some(json!({"feed": "canary", "indicator": net.to_string()})),
                };
                flow_alert(&rules::CANARY_CONTACT, &key, origin, &ctx)
            }
            IntelAlert::Domain {
                mac,
                name,
                listed,
                sources,
                via,
                flow,
            } => {
                let mut meta = feeds(&sources);
                meta["via"] = json!([via]);
                match flow {
                    Some((key, origin)) => {
                        let ctx = PolicyContext {
                            source: "intel",
                            expected: Vec::new(),
                            rrname: Some(&name),
                            blocked: origin.verdict.dropped(),
                            metadata: meta,
                            intel: Some(intel_obj(&sources, listed)),
                        };
                        flow_alert(&rules::THREAT_INTEL_DOMAIN, &key, origin, &ctx)
                    }
                    None => {
                        let mut v = self.alert(
                            now_ns,
                            &rules::THREAT_INTEL_DOMAIN,
                            mac,
                            who.device,
                            who.declared,
                            "intel",
                            meta,
                        );
                        v["iot"]["intel"] = intel_obj(&sources, listed);
                        v["iot"]["dns"] = json!({ "rrname": name });
                        v
                    }
                }
            }
        }
    }

    /// An inventory finding: a new or missing device, an address that moved, a category
    /// that disagrees with the declared one.
    pub fn finding_event(&self, now_ns: u64, f: Finding, who: Subject<'_>) -> Value {
        let rule = f.rule();
        let (mac, metadata) = match f {
            Finding::NewDevice(mac) => (mac, json!({})),
            Finding::Missing(mac) => {
                let last = who.device.map_or("never".to_string(), |d| {
                    eve_timestamp(self.time.to_epoch_ns(d.last_seen_ns))
                });
                (mac, json!({ "last_seen": [last] }))
            }
            Finding::AddressChange(m) => {
                let mut meta = json!({ "address": [m.addr.to_string()] });
                if let Some(prev) = m.previous_owner {
                    meta["previous_mac"] = json!([prev.to_string()]);
                }
                (m.mac, meta)
            }
            Finding::CategoryMismatch {
                mac,
                declared,
                observed,
                confidence,
            } => (
                mac,
                json!({
                    "declared_category": [declared],
                    "observed_category": [observed],
                    "confidence": [format!("{confidence:.2}")],
                }),
            ),
        };
        self.alert(
            now_ns,
            rule,
            mac,
            who.device,
            who.declared,
            "inventory",
            metadata,
        )
    }

    /// `device_table_pressure`: the device table is full, new devices are counted only.
    pub fn pressure_event(
        &self,
        now_ns: u64,
        tracked: usize,
        not_tracked: u64,
        evicted: u64,
    ) -> Value {
        let meta = json!({
            "devices_tracked": [tracked.to_string()],
            "devices_not_tracked": [not_tracked.to_string()],
            "devices_evicted": [evicted.to_string()],
        });
        self.sensor_alert(now_ns, &rules::DEVICE_TABLE_PRESSURE, meta)
    }
}
