//! New protocols: a device whose baseline is learned using a protocol or port class it
//! never used before, outside its policy. A camera that starts speaking IRC or SMB has
//! changed, whatever the destination.

use std::collections::{BTreeSet, HashMap};

use sensor_common::{MacAddr, proto};
use serde_json::json;

use super::{Detector, Finding, NewFlow};
use crate::{config::AnomalyConfig, judge::rules, model::addr};

/// The detector: each device's port classes so far.
#[derive(Default)]
pub struct Protocols {
    known: HashMap<MacAddr, BTreeSet<(u8, u16)>>,
}

/// The detector.
pub fn detector(_: &AnomalyConfig) -> Box<dyn Detector> {
    Box::new(Protocols::default())
}

/// The port class of a flow: well-known ports count one by one, the rest by range.
fn port_class(proto_nr: u8, port: u16) -> (u8, u16) {
    match proto_nr {
        proto::TCP | proto::UDP if port < 1024 => (proto_nr, port),
        proto::TCP | proto::UDP if port < 49152 => (proto_nr, 1024),
        proto::TCP | proto::UDP => (proto_nr, 49152),
        // ICMP: the type, not the code.
        _ => (proto_nr, port >> 8),
    }
}

fn class_name(c: (u8, u16)) -> String {
    let p = addr::proto_name(c.0);
    match (c.0, c.1) {
        (proto::TCP | proto::UDP, 1024) => format!("{p}/registered"),
        (proto::TCP | proto::UDP, 49152) => format!("{p}/dynamic"),
        (proto::TCP | proto::UDP, port) => format!("{p}/{port}"),
        (_, t) => format!("{p} type {t}"),
    }
}

impl Detector for Protocols {
    fn on_new_flow(&mut self, f: &NewFlow) -> Vec<Finding> {
        let key = f.key;
        // Port 0 on TCP or UDP is a later IP fragment: no port to classify.
        if (key.proto == proto::TCP || key.proto == proto::UDP) && key.port == 0 {
            return Vec::new();
        }
        let class = port_class(key.proto, key.port);
        let known = self.known.entry(key.mac).or_default();
        let new = known.insert(class);
        if new && !f.cx.learning && !f.cx.allowed && known.len() > 1 {
            let meta = json!({ "protocol": [class_name(class)] });
            return vec![f.finding(&rules::NEW_PROTOCOL, meta)];
        }
        Vec::new()
    }
}
