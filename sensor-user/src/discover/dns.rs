//! DNS queries: the names a device asks its resolver for (cloud endpoints say a lot about
//! what a device is and who made it).

use super::{DecodeError, text};

/// Names asked in one query message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsQuery {
    /// Query names, lower case, without the trailing dot.
    pub names: Vec<String>,
    /// The record type asked for each name (`qtypes[i]` for `names[i]`).
    pub qtypes: Vec<u16>,
    /// The resolver it was sent to.
    pub server: Option<std::net::IpAddr>,
}

/// Questions of a DNS message a device sent; `Ok(None)` for responses.
pub fn decode(m: &[u8]) -> Result<Option<DnsQuery>, DecodeError> {
    let p = simple_dns::Packet::parse(m).map_err(|e| DecodeError::new("dns", e.to_string()))?;
    if p.has_flags(simple_dns::PacketFlag::RESPONSE) {
        return Ok(None);
    }
    let questions = p.questions.iter().take(8);
    Ok(Some(DnsQuery {
        names: questions.clone().map(|q| name(&q.qname)).collect(),
        qtypes: questions.map(|q| u16::from(q.qtype)).collect(),
        server: None,
    }))
}

/// What one DNS answer gave: the name asked, the CNAME chain from it, the addresses at
/// its end, and the smallest TTL along the way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsAnswer {
    /// The question, then each CNAME target in order.
    pub names: Vec<String>,
    /// A and AAAA records of the chain's names.
    pub addrs: Vec<std::net::IpAddr>,
    /// Smallest TTL of the records used, seconds.
    pub ttl_s: u32,
}

/// Decodes a response (the UDP payload); `Ok(None)` for queries and answers without
/// addresses.
pub fn decode_answer(m: &[u8]) -> Result<Option<DnsAnswer>, DecodeError> {
    use simple_dns::rdata::RData;
    let p = simple_dns::Packet::parse(m).map_err(|e| DecodeError::new("dns", e.to_string()))?;
    if !p.has_flags(simple_dns::PacketFlag::RESPONSE) {
        return Ok(None);
    }
    let Some(q) = p.questions.first() else {
        return Ok(None);
    };
    let mut names = vec![name(&q.qname)];
    let mut ttl = u32::MAX;
    // Follow CNAMEs from the question, bounded (a loop in hostile answers ends here).
    for _ in 0..16 {
        let last = names.last().expect("not empty").clone();
        let next = p.answers.iter().find_map(|rr| match &rr.rdata {
            RData::CNAME(c) if name(&rr.name) == last => Some((name(&c.0), rr.ttl)),
            _ => None,
        });
        match next {
            Some((n, t)) if !names.contains(&n) => {
                names.push(n);
                ttl = ttl.min(t);
            }
            _ => break,
        }
    }
    let mut addrs = Vec::new();
    for rr in &p.answers {
        let owner = name(&rr.name);
        if !names.contains(&owner) {
            continue;
        }
        let a = match &rr.rdata {
            RData::A(a) => std::net::IpAddr::from(std::net::Ipv4Addr::from(a.address)),
            RData::AAAA(a) => std::net::IpAddr::from(std::net::Ipv6Addr::from(a.address)),
            _ => continue,
        };
        if addrs.len() < 64 && !addrs.contains(&a) {
            addrs.push(a);
            ttl = ttl.min(rr.ttl);
        }
    }
    if addrs.is_empty() {
        return Ok(None);
    }
    Ok(Some(DnsAnswer {
        names,
        addrs,
        ttl_s: ttl,
    }))
}

/// The name a response says does not exist (RCODE 3, NXDOMAIN), from a whole frame.
pub fn nxdomain_frame(frame: &[u8]) -> Option<String> {
    let p = etherparse::SlicedPacket::from_ethernet(frame).ok()?;
    let Some(etherparse::TransportSlice::Udp(udp)) = p.transport else {
        return None;
    };
    let m = simple_dns::Packet::parse(udp.payload()).ok()?;
    (m.has_flags(simple_dns::PacketFlag::RESPONSE) && m.rcode() == simple_dns::RCODE::NameError)
        .then(|| m.questions.first().map(|q| name(&q.qname)))
        .flatten()
}

/// A DNS answer from a whole frame (what the egress program copies).
pub fn decode_answer_frame(frame: &[u8]) -> Result<Option<DnsAnswer>, DecodeError> {
    let p = etherparse::SlicedPacket::from_ethernet(frame)
        .map_err(|e| DecodeError::new("dns", e.to_string()))?;
    let Some(etherparse::TransportSlice::Udp(udp)) = p.transport else {
        return Err(DecodeError::new("dns", "not UDP"));
    };
    decode_answer(udp.payload())
}

/// A DNS name as event text: lower case, no trailing dot, bounded and printable.
pub fn name(n: &simple_dns::Name<'_>) -> String {
    text(n.to_string().trim_end_matches('.').as_bytes()).to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::{Facts, decode as decode_frame};
    use crate::testdata::frames as fixture;

    /// tcpdump's decode of the same capture (dns_udp.out): three queries, then answers.
    #[test]
    fn queries_in_the_tcpdump_capture() {
        let frames = fixture("tcpdump/dns_udp.pcap");
        let out =
            std::fs::read_to_string(crate::testdata::path("captures/tcpdump/dns_udp.out")).unwrap();
        let mut asked = Vec::new();
        for f in &frames {
            if let Ok(Some(d)) = decode_frame(f)
                && let Facts::Dns(q) = d.facts
            {
                asked.extend(q.names);
            }
        }
        // tcpdump prints a query as `A? name.`
        let words: Vec<&str> = out.split_whitespace().collect();
        let shown: Vec<String> = words
            .windows(2)
            .filter(|w| w[0].ends_with('?'))
            .map(|w| w[1].trim_end_matches('.').to_lowercase())
            .collect();
        assert!(!shown.is_empty());
        assert_eq!(asked, shown);
    }

    #[test]
    fn responses_are_not_queries() {
        let mut p = simple_dns::Packet::new_reply(1);
        p.questions.push(simple_dns::Question::new(
            simple_dns::Name::new_unchecked("cam.example.com"),
            simple_dns::QTYPE::TYPE(simple_dns::TYPE::A),
            simple_dns::QCLASS::CLASS(simple_dns::CLASS::IN),
            false,
        ));
        let bytes = p.build_bytes_vec().unwrap();
        assert_eq!(decode(&bytes), Ok(None));
    }

    /// tcpdump's decode of dns_udp.out: `www.tcpdump.org` has two addresses.
    #[test]
    fn the_answer_in_the_tcpdump_capture() {
        let frames = fixture("tcpdump/dns_udp.pcap");
        let a = decode_answer_frame(&frames[1]).unwrap().unwrap();
        assert_eq!(a.names, ["www.tcpdump.org"]);
        let want: Vec<std::net::IpAddr> = vec![
            "192.139.46.66".parse().unwrap(),
            "198.199.88.104".parse().unwrap(),
        ];
        assert_eq!(a.addrs, want);
        assert_eq!(decode_answer_frame(&frames[0]), Ok(None), "the query");
    }

    #[test]
    fn a_cname_chain_is_followed_and_bounded() {
        use simple_dns::{CLASS, Name, ResourceRecord, rdata};
        let mut p = simple_dns::Packet::new_reply(7);
        p.questions.push(simple_dns::Question::new(
            Name::new_unchecked("cam.example.com"),
            simple_dns::QTYPE::TYPE(simple_dns::TYPE::A),
            simple_dns::QCLASS::CLASS(CLASS::IN),
            false,
        ));
        p.answers.push(ResourceRecord::new(
            Name::new_unchecked("cam.example.com"),
            CLASS::IN,
            300,
            rdata::RData::CNAME(rdata::CNAME(Name::new_unchecked("edge.cdn.example.net"))),
        ));
        p.answers.push(ResourceRecord::new(
            Name::new_unchecked("edge.cdn.example.net"),
            CLASS::IN,
            20,
            rdata::RData::A(rdata::A {
                address: u32::from_be_bytes([203, 0, 113, 10]),
            }),
        ));
        // An address for a name outside the chain is not the device's answer.
        p.answers.push(ResourceRecord::new(
            Name::new_unchecked("other.example.org"),
            CLASS::IN,
            20,
            rdata::RData::A(rdata::A {
                address: u32::from_be_bytes([192, 0, 2, 1]),
            }),
        ));
        let a = decode_answer(&p.build_bytes_vec().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(a.names, ["cam.example.com", "edge.cdn.example.net"]);
        assert_eq!(
            a.addrs,
            vec!["203.0.113.10".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(a.ttl_s, 20);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode(&[1, 2, 3]).is_err());
    }
}
