//! Resolvers and time servers: a device whose baseline is learned asking a DNS or NTP
//! server that is neither the LAN's own, nor declared (`[anomaly] dns_servers`,
//! `ntp_servers`), nor in its policy. Malware brings its own resolver (DNS tunnels, DoT
//! to its operator) and firmware that hard-codes a public one is worth knowing about.

use std::net::IpAddr;

use ipnet::IpNet;
use sensor_common::proto;
use serde_json::json;

use super::{Detector, Finding, NewFlow};
use crate::{config::AnomalyConfig, judge::rules, model::addr};

/// The detector.
pub struct Servers {
    dns_ok: Vec<IpNet>,
    ntp_ok: Vec<IpNet>,
}

/// The detector, with `[anomaly]`'s declared servers.
pub fn detector(c: &AnomalyConfig) -> Box<dyn Detector> {
    Box::new(Servers {
        dns_ok: nets(&c.dns_servers),
        ntp_ok: nets(&c.ntp_servers),
    })
}

pub(super) fn nets(list: &[toml::Spanned<String>]) -> Vec<IpNet> {
    list.iter()
        .filter_map(|s| {
            let s = s.get_ref();
            s.parse::<IpNet>()
                .ok()
                .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
        })
        .collect()
}

impl Detector for Servers {
    fn on_new_flow(&mut self, f: &NewFlow) -> Vec<Finding> {
        let key = f.key;
        let tcp_udp = key.proto == proto::TCP || key.proto == proto::UDP;
        if f.cx.learning || f.cx.local || f.cx.allowed || !tcp_udp {
            return Vec::new();
        }
        let dst = addr::ip(key.addr);
        let mut out = Vec::new();
        if (key.port == 53 || key.port == 853) && !self.dns_ok.iter().any(|n| n.contains(&dst)) {
            let meta = json!({ "server": [dst.to_string()], "port": [key.port.to_string()] });
            out.push(f.finding(&rules::UNEXPECTED_DNS_SERVER, meta));
        }
        if key.port == 123
            && key.proto == proto::UDP
            && !self.ntp_ok.iter().any(|n| n.contains(&dst))
        {
            let meta = json!({ "server": [dst.to_string()] });
            out.push(f.finding(&rules::UNEXPECTED_NTP_SERVER, meta));
        }
        out
    }
}
