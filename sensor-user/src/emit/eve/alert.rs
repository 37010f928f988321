//! The `alert` event: one builder for every alert, whichever stage raised it. A flow's
//! alert carries the flow's addressing, a device's the device's own address and MAC, the
//! sensor's neither.

use serde_json::{Value, json};

use super::{Eve, alert_object};
use crate::model::{
    alert::{About, Alert},
    device::Device,
    vocab::Declared,
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
    /// An `alert` event.
    pub fn alert(&self, now_ns: u64, a: &Alert, who: Subject<'_>) -> Value {
        let mut m = self.common("alert", now_ns);
        match a.about {
            About::Flow(key, origin) => self.addressing(&mut m, &key, Some(origin)),
            About::Device(mac) => {
                // The device's own address, IPv4 first, when it has shown one.
                if let Some(ip) = who.device.and_then(|d| {
                    d.addresses
                        .iter()
                        .find(|a| a.is_ipv4())
                        .or_else(|| d.addresses.iter().next())
                }) {
                    m.insert("src_ip".into(), ip.to_string().into());
                }
                m.insert("ether".into(), json!({ "src_mac": mac.to_string() }));
            }
            About::Sensor => {}
        }
        m.insert(
            "alert".into(),
            alert_object(a.rule, a.blocked, a.metadata.clone()),
        );
        let mut iot = serde_json::Map::new();
        if let Some(mac) = a.mac() {
            let dev = self.device_object(mac, who.device, who.declared);
            iot.insert("device".into(), dev.into());
        }
        iot.insert(
            "rule".into(),
            json!({"id": a.rule.id, "source": a.source, "expected": a.expected}),
        );
        if let Some(n) = &a.rrname {
            iot.insert("dns".into(), json!({ "rrname": n }));
        }
        if let Some(i) = &a.intel {
            let mut o = json!({ "feed": i.feed, "indicator": i.indicator });
            if let Some(c) = &i.category {
                o["category"] = c.clone().into();
            }
            iot.insert("intel".into(), o);
        }
        m.insert("iot".into(), iot.into());
        m.into()
    }
}
