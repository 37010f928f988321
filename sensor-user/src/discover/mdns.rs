//! Multicast DNS: the services a device offers (`_googlecast._tcp`, `_hap._tcp`,
//! `_ipp._tcp`), its instance and host names, and the model it puts in TXT records.

use std::collections::BTreeSet;

use simple_dns::rdata::RData;

use super::{DecodeError, dns, text};

/// TXT keys that carry a model or product name, by convention of the service.
const MODEL_KEYS: [&str; 6] = ["md", "model", "mn", "ty", "usb_mdl", "product"];
/// TXT keys kept as `key=value` facts: the model keys, HomeKit's `ci` (accessory category,
/// HomeKit Accessory Protocol specification, "Accessory Categories"), AirPlay's `am`
/// (model identifier), and manufacturer keys (`manufacturer`, `mf`, `usb_mfg`).
const IDENTITY_KEYS: [&str; 11] = [
    "md",
    "model",
    "mn",
    "ty",
    "usb_mdl",
    "product",
    "ci",
    "am",
    "manufacturer",
    "mf",
    "usb_mfg",
];
/// Bound on each list, per message.
const MAX_ITEMS: usize = 16;

/// What one mDNS message says about its sender.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct MdnsFacts {
    /// Service types it answers for (`_hap._tcp.local`).
    #[serde(skip_serializing_if = "crate::discover::profile::is_empty")]
    pub services: BTreeSet<String>,
    /// Service instance names (`Living Room._googlecast._tcp.local`).
    #[serde(skip_serializing_if = "crate::discover::profile::is_empty")]
    pub instances: BTreeSet<String>,
    /// Host names its records point at (`kitchen-speaker.local`).
    #[serde(skip_serializing_if = "crate::discover::profile::is_empty")]
    pub hostnames: BTreeSet<String>,
    /// Model names from TXT records.
    #[serde(skip_serializing_if = "crate::discover::profile::is_empty")]
    pub models: BTreeSet<String>,
    /// Service types it asks about (what it looks for on the LAN).
    #[serde(skip_serializing_if = "crate::discover::profile::is_empty")]
    pub queries: BTreeSet<String>,
    /// TXT entries that say what the device is, as `key=value` (key lowercased): the
    /// model keys, HomeKit's accessory category `ci`, AirPlay's model `am`, a
    /// manufacturer. Names the owner chose (`fn`, `n`) and unique ids are left out.
    #[serde(skip_serializing_if = "crate::discover::profile::is_empty")]
    pub txt: BTreeSet<String>,
}

/// Decodes an mDNS message; `Ok(None)` when it says nothing (an empty query).
pub fn decode(m: &[u8]) -> Result<Option<MdnsFacts>, DecodeError> {
    let p = simple_dns::Packet::parse(m).map_err(|e| DecodeError::new("mdns", e.to_string()))?;
    let mut f = MdnsFacts::default();
    for q in p.questions.iter().take(MAX_ITEMS) {
        let n = dns::name(&q.qname);
        if n.starts_with('_') || n.contains("._") {
            f.queries.insert(service_type(&n));
        }
    }
    for rr in p.answers.iter().chain(&p.additional_records).take(64) {
        let owner = dns::name(&rr.name);
        match &rr.rdata {
            RData::PTR(ptr) if !owner.ends_with(".arpa") => {
                let target = dns::name(&ptr.0);
                if owner.starts_with("_services._dns-sd") {
                    f.services.insert(target);
                } else {
                    f.services.insert(owner);
                    if f.instances.len() < MAX_ITEMS {
                        f.instances.insert(target);
                    }
                }
            }
            RData::SRV(srv) => {
                if f.hostnames.len() < MAX_ITEMS {
                    f.hostnames.insert(dns::name(&srv.target));
                }
            }
            RData::TXT(txt) => {
                for (k, v) in txt.iter_raw() {
                    let key = String::from_utf8_lossy(k).to_ascii_lowercase();
                    let Some(v) = v.filter(|v| !v.is_empty()) else {
                        continue;
                    };
                    if MODEL_KEYS.contains(&key.as_str()) && f.models.len() < MAX_ITEMS {
                        f.models.insert(text(v));
                    }
                    let keep = IDENTITY_KEYS.contains(&key.as_str())
                        || crate::discover::software::is_mdns_version_key(&key);
                    if keep && f.txt.len() < MAX_ITEMS {
                        // The key is one of ours (short), so the value's bound keeps the
                        // whole entry within the event's 255 characters.
                        let v = text(v);
                        let v: String = v.chars().take(240).collect();
                        f.txt.insert(format!("{key}={v}"));
                    }
                }
            }
            RData::A(_) | RData::AAAA(_) if f.hostnames.len() < MAX_ITEMS => {
                f.hostnames.insert(owner);
            }
            _ => {}
        }
    }
    f.services.retain(|s| !s.is_empty());
    if f == MdnsFacts::default() {
        return Ok(None);
    }
    Ok(Some(f))
}

/// `_airplay._tcp.local` from `_sub` forms and instance names: the part from the first
/// label that starts with `_`.
fn service_type(name: &str) -> String {
    let labels: Vec<&str> = name.split('.').collect();
    let start = labels
        .iter()
        .rposition(|l| {
            l.starts_with('_') && *l != "_sub" && !l.starts_with("_tcp") && !l.starts_with("_udp")
        })
        .unwrap_or(0);
    labels[start..].join(".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use simple_dns::{CLASS, Name, Packet, ResourceRecord, rdata};

    /// An mDNS response of `records` (owner, data): the first the answer, the rest
    /// additional records, as responders send them.
    fn response(records: Vec<(&'static str, RData<'static>)>) -> Vec<u8> {
        let mut p = Packet::new_reply(0);
        for (i, (owner, data)) in records.into_iter().enumerate() {
            let rr = ResourceRecord::new(Name::new_unchecked(owner), CLASS::IN, 120, data);
            if i == 0 {
                p.answers.push(rr);
            } else {
                p.additional_records.push(rr);
            }
        }
        p.build_bytes_vec().unwrap()
    }

    /// A cast speaker's announcement, its friendly name with a control character (BEL)
    /// in it, as hostile or sloppy firmware sends.
    fn announcement() -> Vec<u8> {
        const INSTANCE: &str = "Kitchen-abc._googlecast._tcp.local";
        const HOST: &str = "kitchen-abc.local";
        let mut txt = rdata::TXT::new();
        txt.add_string("md=Google Home Mini").unwrap();
        txt.add_string("fn=Kitchen\u{7}").unwrap();
        let srv = rdata::SRV {
            priority: 0,
            weight: 0,
            port: 8009,
            target: Name::new_unchecked(HOST),
        };
        let a = rdata::A {
            address: u32::from_be_bytes([198, 51, 100, 7]),
        };
        response(vec![
            (
                "_googlecast._tcp.local",
                RData::PTR(rdata::PTR(Name::new_unchecked(INSTANCE))),
            ),
            (INSTANCE, RData::SRV(srv)),
            (INSTANCE, RData::TXT(txt)),
            (HOST, RData::A(a)),
        ])
    }

    #[test]
    fn announcement_gives_service_instance_host_and_model() {
        let f = decode(&announcement()).unwrap().unwrap();
        assert_eq!(
            f.services.iter().collect::<Vec<_>>(),
            ["_googlecast._tcp.local"]
        );
        assert_eq!(
            f.instances.iter().collect::<Vec<_>>(),
            ["kitchen-abc._googlecast._tcp.local"]
        );
        assert_eq!(
            f.hostnames.iter().collect::<Vec<_>>(),
            ["kitchen-abc.local"]
        );
        assert_eq!(f.models.iter().collect::<Vec<_>>(), ["Google Home Mini"]);
    }

    #[test]
    fn query_gives_what_it_looks_for() {
        let mut p = Packet::new_query(0);
        p.questions.push(simple_dns::Question::new(
            Name::new_unchecked("_hap._tcp.local"),
            simple_dns::QTYPE::TYPE(simple_dns::TYPE::PTR),
            simple_dns::QCLASS::CLASS(CLASS::IN),
            false,
        ));
        let f = decode(&p.build_bytes_vec().unwrap()).unwrap().unwrap();
        assert_eq!(f.queries.iter().collect::<Vec<_>>(), ["_hap._tcp.local"]);
        assert!(f.services.is_empty());
    }

    #[test]
    fn mutated_announcements_never_panic() {
        let a = announcement();
        let mut rng = fastrand::Rng::with_seed(5353);
        for _ in 0..20_000 {
            let m = crate::discover::mutate(&mut rng, &a, 0);
            if let Ok(Some(f)) = decode(&m) {
                for t in f.services.iter().chain(&f.instances).chain(&f.models) {
                    crate::discover::assert_safe(t);
                }
            }
        }
    }
}
