//! What real IoT devices send about themselves, built as bytes for lab devices to send:
//! an mDNS announcement, an SSDP notification, a TP-Link Kasa answer, a WS-Discovery Hello,
//! a DNS query.

use sensor_common::MacAddr;

use simple_dns::{
    CLASS, Name, Packet, QCLASS, QTYPE, Question, ResourceRecord, TYPE, rdata, rdata::RData,
};

/// An mDNS announcement of a cast speaker `host` (instance, host name and TXT model).
pub fn mdns_cast_speaker(host: &str, model: &str) -> Vec<u8> {
    let mut p = Packet::new_reply(0);
    let inst = format!("{host}._googlecast._tcp.local");
    let target = format!("{host}.local");
    let inst = Name::new_unchecked(&inst);
    p.answers.push(ResourceRecord::new(
        Name::new_unchecked("_googlecast._tcp.local"),
        CLASS::IN,
        120,
        RData::PTR(rdata::PTR(inst.clone())),
    ));
    p.additional_records.push(ResourceRecord::new(
        inst.clone(),
        CLASS::IN,
        120,
        RData::SRV(rdata::SRV {
            priority: 0,
            weight: 0,
            port: 8009,
            target: Name::new_unchecked(&target),
        }),
    ));
    let mut txt = rdata::TXT::new();
    let md = format!("md={model}");
    txt.add_string(&md).unwrap();
    p.additional_records
        .push(ResourceRecord::new(inst, CLASS::IN, 120, RData::TXT(txt)));
    p.build_bytes_vec().unwrap()
}

/// A TP-Link Kasa `get_sysinfo` answer: JSON under the autokey XOR (key 171).
pub fn kasa_sysinfo(model: &str, kind: &str, alias: &str) -> Vec<u8> {
    let json = format!(
        r#"{{"system":{{"get_sysinfo":{{"model":"{model}","type":"{kind}","alias":"{alias}"}}}}}}"#
    );
    let mut key = 171u8;
    json.bytes()
        .map(|b| {
            key ^= b;
            key
        })
        .collect()
}

/// An SSDP NOTIFY (ssdp:alive) with a SERVER header and a device type.
pub fn ssdp_notify(server: &str, nt: &str, location: &str) -> Vec<u8> {
    format!(
        "NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nNT: {nt}\r\nNTS: ssdp:alive\r\n\
         SERVER: {server}\r\nUSN: uuid:kw-lab::{nt}\r\nLOCATION: {location}\r\n\r\n"
    )
    .into_bytes()
}

/// A WS-Discovery Hello of an ONVIF camera.
pub fn wsd_onvif_hello(model: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><s:Header><a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Hello</a:Action></s:Header><s:Body><d:Hello><d:Types>dn:NetworkVideoTransmitter</d:Types><d:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/hardware/{model}</d:Scopes></d:Hello></s:Body></s:Envelope>"#
    )
    .into_bytes()
}

/// A DNS query for `name` (type A).
pub fn dns_query(id: u16, name: &str) -> Vec<u8> {
    dns_query_for(id, name, TYPE::A)
}

/// A DNS query for `name`, record type `ty`.
pub fn dns_query_for(id: u16, name: &str, ty: TYPE) -> Vec<u8> {
    let mut p = Packet::new_query(id);
    p.questions.push(Question::new(
        Name::new_unchecked(name),
        QTYPE::TYPE(ty),
        QCLASS::CLASS(CLASS::IN),
        false,
    ));
    p.build_bytes_vec().unwrap()
}

/// A DNS answer for `name` (type A) with one address and TTL.
pub fn dns_answer(id: u16, name: &str, addr: [u8; 4], ttl: u32) -> Vec<u8> {
    let mut p = Packet::new_reply(id);
    p.questions.push(Question::new(
        Name::new_unchecked(name),
        QTYPE::TYPE(TYPE::A),
        QCLASS::CLASS(CLASS::IN),
        false,
    ));
    p.answers.push(simple_dns::ResourceRecord::new(
        Name::new_unchecked(name),
        CLASS::IN,
        ttl,
        simple_dns::rdata::RData::A(simple_dns::rdata::A::from(std::net::Ipv4Addr::from(addr))),
    ));
    p.build_bytes_vec().unwrap()
}

/// A DHCPDISCOVER from `mac` whose host name (option 12) is `hostname`, any bytes (at
/// most 255, the option's limit).
pub fn dhcp_discover(mac: MacAddr, hostname: &[u8]) -> Vec<u8> {
    dhcp_discover_with(mac, &[(12, hostname)])
}

/// A DHCPDISCOVER from `mac` with the given options (code, value), e.g. a MUD URL (161).
pub fn dhcp_discover_with(mac: MacAddr, options: &[(u8, &[u8])]) -> Vec<u8> {
    let mut m = vec![1, 1, 6, 0, 0x4b, 0x57, 0, 1, 0, 0, 0x80, 0];
    m.extend([0; 16]); // ciaddr, yiaddr, siaddr, giaddr
    m.extend(mac.0);
    m.extend([0; 10 + 64 + 128]); // chaddr padding, sname, file
    m.extend([0x63, 0x82, 0x53, 0x63, 53, 1, 1]);
    for (code, value) in options {
        m.push(*code);
        m.push(value.len() as u8);
        m.extend(*value);
    }
    m.push(255);
    m
}

/// Base32 text, as DNS tunnels encode data.
pub const BASE32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Random-looking text of `n` characters over `alphabet`, the same for the same `seed`
/// (made-up names: tunnels' labels, generated domains).
pub fn made_up(seed: u64, n: usize, alphabet: &[u8]) -> String {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            alphabet[(x % alphabet.len() as u64) as usize] as char
        })
        .collect()
}
