//! A device's profile: everything it has said about itself on the network, merged from
//! decoded discovery facts and bounded, so a chatty or hostile device cannot grow it.
//! Classification reads it; `device` events and the state store carry it.

use std::{borrow::Cow, collections::BTreeSet};

use serde::{Deserialize, Serialize};

use crate::discover::{
    Facts,
    dhcp::DhcpFacts,
    dhcpv6::Dhcpv6Facts,
    lldp::LldpFacts,
    mdns::MdnsFacts,
    mqtt::MqttFacts,
    payload::{PayloadFacts, banner::Protocol},
    software::{Named, Source},
    tuya::TuyaFacts,
};

/// DNS names kept per device.
pub const MAX_NAMES: usize = 64;
/// Items kept per list in the other sections.
pub const MAX_ITEMS: usize = 16;
/// Software entries kept per device.
pub const MAX_SOFTWARE: usize = 32;

/// For `skip_serializing_if` on collections.
pub fn is_empty<T>(c: impl IntoIterator<Item = T>) -> bool {
    c.into_iter().next().is_none()
}

/// What SSDP messages from a device said, merged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SsdpProfile {
    /// SERVER headers (answers and notifications).
    #[serde(skip_serializing_if = "is_empty")]
    pub servers: BTreeSet<String>,
    /// USER-AGENT headers (searches).
    #[serde(skip_serializing_if = "is_empty")]
    pub user_agents: BTreeSet<String>,
    /// Device and service types it announced (NT) or answered for (ST of a response).
    #[serde(skip_serializing_if = "is_empty")]
    pub announces: BTreeSet<String>,
    /// Types it searched for (ST of an M-SEARCH).
    #[serde(skip_serializing_if = "is_empty")]
    pub searches: BTreeSet<String>,
    /// LOCATION URLs of its description documents.
    #[serde(skip_serializing_if = "is_empty")]
    pub locations: BTreeSet<String>,
    /// USNs (unique service names: the device's UUID and types).
    #[serde(skip_serializing_if = "is_empty")]
    pub usns: BTreeSet<String>,
}

/// What WS-Discovery messages from a device said, merged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WsdProfile {
    /// Actions it sent (`Hello`, `Probe`, `ProbeMatches`, ...).
    #[serde(skip_serializing_if = "is_empty")]
    pub actions: BTreeSet<String>,
    /// Device types it announced.
    #[serde(skip_serializing_if = "is_empty")]
    pub types: BTreeSet<String>,
    /// Scopes it announced.
    #[serde(skip_serializing_if = "is_empty")]
    pub scopes: BTreeSet<String>,
}

/// What TP-Link Kasa datagrams from a device said.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KasaProfile {
    /// It queried Kasa devices (it controls them).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub controller: bool,
    /// Its model, when it described itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Its device type (`IOT.SMARTPLUGSWITCH`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    /// The name its owner gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Its firmware version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sw_ver: Option<String>,
    /// Its hardware revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hw_ver: Option<String>,
}

/// What the first payloads of a device's flows said about it ([docs/software.md]: only
/// these facts are kept, never the bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PayloadProfile {
    /// Protocols it answered in as a server (`ssh`, `http`, `rtsp`, ...), from its
    /// first payload on a flow it serves.
    #[serde(skip_serializing_if = "is_empty")]
    pub serves: BTreeSet<String>,
    /// Protocols it spoke as a client.
    #[serde(skip_serializing_if = "is_empty")]
    pub speaks: BTreeSet<String>,
    /// `User-Agent`s it sent (HTTP, RTSP, SIP).
    #[serde(skip_serializing_if = "is_empty")]
    pub user_agents: BTreeSet<String>,
    /// `Server` headers of the responses it sent (HTTP, RTSP, SIP).
    #[serde(skip_serializing_if = "is_empty")]
    pub servers: BTreeSet<String>,
    /// Its SSH identification strings and greetings, each after its protocol
    /// (`ssh: SSH-2.0-OpenSSH_8.9p1`, `ftp: FTP server (tnftpd 20100324+GSSAPI) ready.`).
    #[serde(skip_serializing_if = "is_empty")]
    pub banners: BTreeSet<String>,
    /// JA4 fingerprints of its TLS ClientHellos.
    #[serde(skip_serializing_if = "is_empty")]
    pub ja4: BTreeSet<String>,
    /// Server names (SNI) of its TLS ClientHellos.
    #[serde(skip_serializing_if = "is_empty")]
    pub tls_names: BTreeSet<String>,
    /// Protocols the servers it connected to answered in (their first payload to it).
    #[serde(skip_serializing_if = "is_empty")]
    pub servers_answer: BTreeSet<String>,
    /// Those servers' greetings and `Server` headers, each after its protocol: what it
    /// talks to, not what it runs.
    #[serde(skip_serializing_if = "is_empty")]
    pub server_banners: BTreeSet<String>,
}

/// One piece of software a device runs, and when it was named.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftwareEntry {
    /// The product.
    pub product: String,
    /// Its version, when stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Its CPE 2.3 name, when a cited mapping knows the product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpe: Option<String>,
    /// Where it was named.
    pub sources: BTreeSet<Source>,
    /// When it was first named (EVE timestamp).
    pub first_seen: String,
    /// When it was last named.
    pub last_seen: String,
}

/// Everything a device said about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Profile {
    /// The name it gives itself (DHCP host name, else DHCPv6 FQDN, else mDNS or LLDP name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Every name it has given itself (at most [`MAX_ITEMS`]): devices rename themselves
    /// during setup, and the first name is often the model number.
    #[serde(skip_serializing_if = "is_empty")]
    pub hostnames: BTreeSet<String>,
    /// Its latest DHCP request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<DhcpFacts>,
    /// Its latest DHCPv6 client message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dhcpv6: Option<Dhcpv6Facts>,
    /// Names it asked its resolver for (at most [`MAX_NAMES`]).
    #[serde(skip_serializing_if = "is_empty")]
    pub dns: BTreeSet<String>,
    /// Its mDNS services, names and models.
    #[serde(skip_serializing_if = "is_mdns_empty")]
    pub mdns: MdnsFacts,
    /// Its SSDP messages.
    #[serde(skip_serializing_if = "is_ssdp_empty")]
    pub ssdp: SsdpProfile,
    /// Its latest LLDP advertisement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lldp: Option<LldpFacts>,
    /// Its WS-Discovery messages.
    #[serde(skip_serializing_if = "is_wsd_empty")]
    pub wsd: WsdProfile,
    /// Its Kasa datagrams.
    #[serde(skip_serializing_if = "is_kasa_empty")]
    pub kasa: KasaProfile,
    /// Its latest Tuya broadcast.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tuya: Option<TuyaFacts>,
    /// Its latest MQTT login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<MqttFacts>,
    /// What its flows' first payloads said.
    #[serde(skip_serializing_if = "is_payload_empty")]
    pub payload: PayloadProfile,
    /// The software it runs, as far as it names it (at most [`MAX_SOFTWARE`]).
    #[serde(skip_serializing_if = "is_empty")]
    pub software: Vec<SoftwareEntry>,
    /// Facts not kept because a list was full.
    #[serde(skip_serializing_if = "is_zero")]
    pub facts_dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
fn is_mdns_empty(m: &MdnsFacts) -> bool {
    *m == MdnsFacts::default()
}
fn is_ssdp_empty(m: &SsdpProfile) -> bool {
    *m == SsdpProfile::default()
}
fn is_wsd_empty(m: &WsdProfile) -> bool {
    *m == WsdProfile::default()
}
fn is_kasa_empty(m: &KasaProfile) -> bool {
    *m == KasaProfile::default()
}
fn is_payload_empty(m: &PayloadProfile) -> bool {
    *m == PayloadProfile::default()
}

/// Adds what is new in `from` to `to`, up to `max` items; returns whether `to` grew and
/// counts what did not fit in `dropped`.
fn union(
    to: &mut BTreeSet<String>,
    from: impl IntoIterator<Item = String>,
    max: usize,
    dropped: &mut u64,
) -> bool {
    let mut grew = false;
    for v in from {
        if to.contains(&v) {
            continue;
        }
        if to.len() >= max {
            *dropped += 1;
            continue;
        }
        to.insert(v);
        grew = true;
    }
    grew
}

/// Replaces `slot` when the value differs; returns whether it did.
fn latest<T: PartialEq>(slot: &mut Option<T>, v: T) -> bool {
    if slot.as_ref() == Some(&v) {
        return false;
    }
    *slot = Some(v);
    true
}

impl Profile {
    /// Takes in one frame's facts; returns whether the profile changed. (Addresses are the
    /// device table's, not the profile's.)
    pub fn merge(&mut self, facts: Facts) -> bool {
        let d = &mut self.facts_dropped;
        let changed = match facts {
            Facts::Dhcp(f) => latest(&mut self.dhcp, f),
            Facts::Dhcpv6(f) => latest(&mut self.dhcpv6, f),
            Facts::Dns(q) => union(&mut self.dns, q.names, MAX_NAMES, d),
            Facts::Mdns(f) => {
                let m = &mut self.mdns;
                let a = union(&mut m.services, f.services, MAX_ITEMS, d);
                let b = union(&mut m.instances, f.instances, MAX_ITEMS, d);
                let c = union(&mut m.hostnames, f.hostnames, MAX_ITEMS, d);
                let e = union(&mut m.models, f.models, MAX_ITEMS, d);
                let g = union(&mut m.queries, f.queries, MAX_ITEMS, d);
                let t = union(&mut m.txt, f.txt, MAX_ITEMS, d);
                a | b | c | e | g | t
            }
            Facts::Ssdp(f) => {
                let s = &mut self.ssdp;
                let types = if f.kind == "search" {
                    &mut s.searches
                } else {
                    &mut s.announces
                };
                let a = union(types, f.nt.into_iter().chain(f.st), MAX_ITEMS, d);
                let b = union(&mut s.servers, f.server, MAX_ITEMS, d);
                let c = union(&mut s.user_agents, f.user_agent, MAX_ITEMS, d);
                let e = union(&mut s.locations, f.location, MAX_ITEMS, d);
                let g = union(&mut s.usns, f.usn, MAX_ITEMS, d);
                a | b | c | e | g
            }
            Facts::Lldp(f) => latest(&mut self.lldp, f),
            Facts::Wsd(f) => {
                let w = &mut self.wsd;
                let a = union(&mut w.actions, [f.action], MAX_ITEMS, d);
                let b = union(&mut w.types, f.types, MAX_ITEMS, d);
                let c = union(&mut w.scopes, f.scopes, MAX_ITEMS, d);
                a | b | c
            }
            Facts::Kasa(f) => {
                let before = self.kasa.clone();
                let k = &mut self.kasa;
                if f.kind == "query" {
                    k.controller = true;
                } else {
                    k.model = f.model.or(k.model.take());
                    k.device_type = f.device_type.or(k.device_type.take());
                    k.alias = f.alias.or(k.alias.take());
                    k.sw_ver = f.sw_ver.or(k.sw_ver.take());
                    k.hw_ver = f.hw_ver.or(k.hw_ver.take());
                }
                *k != before
            }
            Facts::Tuya(f) => latest(&mut self.tuya, f),
            Facts::Mqtt(f) => latest(&mut self.mqtt, f),
            Facts::Address(_) | Facts::ArpRequest { .. } => false,
        };
        if changed {
            self.hostname = self.best_hostname();
            let names: Vec<String> = self.own_names().map(str::to_string).collect();
            union(
                &mut self.hostnames,
                names,
                MAX_ITEMS,
                &mut self.facts_dropped,
            );
        }
        changed
    }

    /// Takes in what one flow's first payload from the device said (`serving`: the
    /// device answered on that flow); returns whether the profile changed.
    pub fn merge_payload(&mut self, facts: &PayloadFacts, serving: bool) -> bool {
        let d = &mut self.facts_dropped;
        let p = &mut self.payload;
        let role = if serving {
            &mut p.serves
        } else {
            &mut p.speaks
        };
        let proto = facts.protocol();
        let mut changed = union(role, [proto.to_string()], MAX_ITEMS, d);
        changed |= match facts {
            PayloadFacts::Tls(t) => {
                let a = union(&mut p.ja4, [t.ja4.clone()], MAX_ITEMS, d);
                a | union(&mut p.tls_names, t.sni.clone(), MAX_ITEMS, d)
            }
            PayloadFacts::HttpRequest(r) => {
                union(&mut p.user_agents, r.user_agent.clone(), MAX_ITEMS, d)
            }
            PayloadFacts::HttpResponse(r) => union(&mut p.servers, r.server.clone(), MAX_ITEMS, d),
            PayloadFacts::Banner(b) => {
                let a = union(&mut p.user_agents, b.user_agent.clone(), MAX_ITEMS, d);
                let c = union(&mut p.servers, b.server.clone(), MAX_ITEMS, d);
                let line = match b.protocol {
                    Protocol::Ssh => b.software.as_ref().map(|sw| {
                        let v = b.proto_version.as_deref().unwrap_or("2.0");
                        match &b.text {
                            Some(c) => format!("ssh: SSH-{v}-{sw} {c}"),
                            None => format!("ssh: SSH-{v}-{sw}"),
                        }
                    }),
                    Protocol::Rtsp | Protocol::Sip => None,
                    other => b.text.as_ref().map(|t| format!("{}: {t}", other.name())),
                };
                // The greeting is already at most 255 characters; so is the line.
                let line = line.map(|l| l.chars().take(255).collect::<String>());
                a | c | union(&mut p.banners, line, MAX_ITEMS, d)
            }
        };
        changed
    }

    /// Takes in what one flow's first payload to the device said: on a flow it serves, a
    /// client's request (the device serves that protocol); else the greeting of the
    /// server it connected to. Returns whether the profile changed.
    pub fn merge_payload_in(&mut self, facts: &PayloadFacts, serving: bool) -> bool {
        let d = &mut self.facts_dropped;
        let p = &mut self.payload;
        let proto = facts.protocol();
        if serving {
            return union(&mut p.serves, [proto.to_string()], MAX_ITEMS, d);
        }
        let line = match facts {
            PayloadFacts::HttpResponse(r) => r.server.as_ref().map(|s| format!("http: {s}")),
            PayloadFacts::Banner(b) => match b.protocol {
                Protocol::Ssh => b.software.as_ref().map(|sw| format!("ssh: {sw}")),
                Protocol::Rtsp | Protocol::Sip => b
                    .server
                    .as_ref()
                    .map(|s| format!("{}: {s}", b.protocol.name())),
                other => b.text.as_ref().map(|t| format!("{}: {t}", other.name())),
            },
            _ => None,
        }
        .map(|l| l.chars().take(255).collect::<String>());
        let a = union(&mut p.servers_answer, [proto.to_string()], MAX_ITEMS, d);
        a | union(&mut p.server_banners, line, MAX_ITEMS, d)
    }

    /// Takes in software named at `at` (an EVE timestamp); returns whether an entry is
    /// new (a later sighting only moves `last_seen`).
    pub fn saw_software(&mut self, named: Vec<Named>, at: &str) -> bool {
        let mut grew = false;
        for n in named {
            let full = self.software.len() >= MAX_SOFTWARE;
            let same = self
                .software
                .iter_mut()
                .find(|e| e.product.eq_ignore_ascii_case(&n.product) && e.version == n.version);
            match same {
                Some(e) => {
                    e.last_seen = at.to_string();
                    grew |= e.sources.insert(n.source);
                    if e.cpe.is_none() && n.cpe.is_some() {
                        e.cpe = n.cpe;
                        grew = true;
                    }
                }
                None if full => self.facts_dropped += 1,
                None => {
                    self.software.push(SoftwareEntry {
                        product: n.product,
                        version: n.version,
                        cpe: n.cpe,
                        sources: BTreeSet::from([n.source]),
                        first_seen: at.to_string(),
                        last_seen: at.to_string(),
                    });
                    grew = true;
                }
            }
        }
        if grew {
            self.software.sort_by(|a, b| {
                (a.product.to_ascii_lowercase(), &a.version)
                    .cmp(&(b.product.to_ascii_lowercase(), &b.version))
            });
        }
        grew
    }

    /// The device's own name, most explicit source first.
    fn best_hostname(&self) -> Option<String> {
        self.dhcp
            .as_ref()
            .and_then(|f| f.hostname.clone())
            .or_else(|| self.dhcpv6.as_ref().and_then(|f| f.fqdn.clone()))
            .or_else(|| {
                self.mdns
                    .hostnames
                    .iter()
                    .next()
                    .map(|h| h.trim_end_matches(".local").to_string())
            })
            .or_else(|| self.lldp.as_ref().and_then(|l| l.system_name.clone()))
    }

    /// Every name the device currently gives itself, from each source.
    fn own_names(&self) -> impl Iterator<Item = &str> {
        let dhcp = self.dhcp.as_ref().and_then(|f| f.hostname.as_deref());
        let dhcpv6 = self.dhcpv6.as_ref().and_then(|f| f.fqdn.as_deref());
        let lldp = self.lldp.as_ref().and_then(|l| l.system_name.as_deref());
        let mdns = self
            .mdns
            .hostnames
            .iter()
            .map(|h| h.trim_end_matches('.').trim_end_matches(".local"));
        dhcp.into_iter()
            .chain(dhcpv6)
            .chain(mdns)
            .chain(lldp)
            .filter(|n| !n.is_empty())
    }

    /// The MUD URL it announced (DHCP, DHCPv6 or LLDP), if any.
    pub fn mud_url(&self) -> Option<&str> {
        self.dhcp
            .as_ref()
            .and_then(|f| f.mud_url.as_deref())
            .or_else(|| self.dhcpv6.as_ref().and_then(|f| f.mud_url.as_deref()))
            .or_else(|| self.lldp.as_ref().and_then(|f| f.mud_url.as_deref()))
    }

    /// Every fact as (kind, value): what classification rules match against. The kinds
    /// are the names the rules file uses (`judge::classify::FACTS`).
    pub fn facts(&self) -> Vec<(&'static str, Cow<'_, str>)> {
        fn push<'a>(
            out: &mut Vec<(&'static str, Cow<'a, str>)>,
            k: &'static str,
            v: Option<&'a str>,
        ) {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                out.push((k, Cow::Borrowed(v)));
            }
        }
        let mut out = Vec::new();
        for h in self.hostname.iter().chain(&self.hostnames) {
            if !out
                .iter()
                .any(|(k, v): &(&str, Cow<'_, str>)| *k == "hostname" && v == h)
            {
                push(&mut out, "hostname", Some(h));
            }
        }
        if let Some(f) = &self.dhcp {
            push(&mut out, "dhcp_vendor_class", f.vendor_class.as_deref());
            push(
                &mut out,
                "model",
                f.vendor_class
                    .as_deref()
                    .and_then(crate::discover::dhcp::vendor_class_model),
            );
            if !f.parameter_request_list.is_empty() {
                let prl = crate::discover::dhcp::prl_text(&f.parameter_request_list);
                out.push(("dhcp_prl", Cow::Owned(prl)));
            }
        }
        if let Some(f) = &self.dhcpv6 {
            push(&mut out, "dhcp_vendor_class", f.vendor_class.as_deref());
        }
        for n in &self.dns {
            push(&mut out, "dns", Some(n));
        }
        // The names its TLS clients asked servers for: its clouds even when its DNS is
        // encrypted. Rules on `dns` match them too (`judge::classify`).
        for n in &self.payload.tls_names {
            push(&mut out, "tls_name", Some(n));
        }
        for s in &self.payload.user_agents {
            push(&mut out, "user_agent", Some(s));
            push(
                &mut out,
                "model",
                crate::discover::software::android_model(s),
            );
        }
        for s in &self.mdns.services {
            push(&mut out, "mdns_service", Some(s));
        }
        for s in &self.mdns.queries {
            push(&mut out, "mdns_query", Some(s));
        }
        for s in &self.mdns.instances {
            // The instance's own label: `Kitchen speaker` of
            // `Kitchen speaker._googlecast._tcp.local`.
            let label = s.split("._").next().unwrap_or(s);
            push(&mut out, "mdns_instance", Some(label));
        }
        for s in &self.mdns.txt {
            push(&mut out, "mdns_txt", Some(s));
        }
        for s in &self.mdns.models {
            push(&mut out, "model", Some(s));
        }
        for s in self.ssdp.servers.iter().chain(&self.ssdp.user_agents) {
            push(&mut out, "ssdp_server", Some(s));
        }
        for s in &self.ssdp.servers {
            // Not USER-AGENT: a control point's agent names the app, not the device.
            push(&mut out, "model", crate::discover::ssdp::server_product(s));
        }
        for s in &self.ssdp.announces {
            push(&mut out, "ssdp_type", Some(s));
        }
        for s in &self.ssdp.searches {
            push(&mut out, "ssdp_search", Some(s));
        }
        for s in &self.ssdp.usns {
            push(&mut out, "ssdp_usn", Some(s));
        }
        if let Some(l) = &self.lldp {
            push(
                &mut out,
                "lldp_description",
                l.system_description.as_deref(),
            );
            for c in &l.capabilities {
                push(&mut out, "lldp_capability", Some(c));
            }
        }
        for s in &self.wsd.types {
            push(&mut out, "wsd_type", Some(s));
        }
        for s in &self.wsd.scopes {
            push(&mut out, "wsd_scope", Some(s));
        }
        for s in &self.wsd.actions {
            push(&mut out, "wsd_action", Some(s));
        }
        if self.kasa.controller {
            push(&mut out, "kasa", Some("controller"));
        }
        push(&mut out, "kasa", self.kasa.device_type.as_deref());
        push(&mut out, "model", self.kasa.model.as_deref());
        if let Some(t) = &self.tuya {
            push(
                &mut out,
                "tuya",
                Some(t.product_key.as_deref().unwrap_or("device")),
            );
        }
        if let Some(m) = &self.mqtt {
            push(&mut out, "mqtt_client", Some(&m.client_id));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::{dns::DnsQuery, ssdp::SsdpFacts};

    #[test]
    fn names_are_bounded_and_counted() {
        let mut p = Profile::default();
        for i in 0..(MAX_NAMES + 10) {
            p.merge(Facts::Dns(DnsQuery {
                names: vec![format!("n{i}.example.com")],
                qtypes: Vec::new(),
                server: None,
            }));
        }
        assert_eq!(p.dns.len(), MAX_NAMES);
        assert_eq!(p.facts_dropped, 10);
        assert!(
            !p.merge(Facts::Dns(DnsQuery {
                names: vec!["n0.example.com".into()],
                qtypes: Vec::new(),
                server: None,
            })),
            "a name it already has is no change"
        );
    }

    #[test]
    fn searches_and_announcements_stay_apart() {
        let mut p = Profile::default();
        p.merge(Facts::Ssdp(SsdpFacts {
            kind: "search",
            st: Some("urn:schemas-upnp-org:device:MediaRenderer:1".into()),
            ..SsdpFacts::default()
        }));
        p.merge(Facts::Ssdp(SsdpFacts {
            kind: "notify",
            nt: Some("urn:schemas-upnp-org:device:Basic:1".into()),
            ..SsdpFacts::default()
        }));
        assert_eq!(p.ssdp.searches.len(), 1);
        assert_eq!(p.ssdp.announces.len(), 1);
    }

    #[test]
    fn round_trips_through_json() {
        let mut p = Profile::default();
        p.merge(Facts::Dhcp(DhcpFacts {
            hostname: Some("cam".into()),
            parameter_request_list: vec![1, 3, 6],
            ..DhcpFacts::default()
        }));
        p.merge(Facts::Dns(DnsQuery {
            names: vec!["a.example.com".into()],
            qtypes: Vec::new(),
            server: None,
        }));
        let j = serde_json::to_value(&p).unwrap();
        assert_eq!(j["dhcp"]["parameter_request_list"], "1,3,6");
        assert_eq!(j["hostname"], "cam");
        let back: Profile = serde_json::from_value(j).unwrap();
        assert_eq!(back, p);
    }
}
