//! DNS queries: the names a device asks its resolver for (cloud endpoints say a lot about
//! what a device is and who made it).

use super::{DecodeError, text};

/// Names asked in one query message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsQuery {
    /// Query names, lower case, without the trailing dot.
    pub names: Vec<String>,
}

/// Questions of a DNS message a device sent; `Ok(None)` for responses.
pub fn decode(m: &[u8]) -> Result<Option<DnsQuery>, DecodeError> {
    let p = simple_dns::Packet::parse(m).map_err(|e| DecodeError::new("dns", e.to_string()))?;
    if p.has_flags(simple_dns::PacketFlag::RESPONSE) {
        return Ok(None);
    }
    Ok(Some(DnsQuery {
        names: p.questions.iter().take(8).map(|q| name(&q.qname)).collect(),
    }))
}

/// A DNS name as event text: lower case, no trailing dot, bounded and printable.
pub fn name(n: &simple_dns::Name<'_>) -> String {
    text(n.to_string().trim_end_matches('.').as_bytes()).to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::{Facts, decode as decode_frame, fixture};

    /// tcpdump's decode of the same capture (dns_udp.out): three queries, then answers.
    #[test]
    fn queries_in_the_tcpdump_capture() {
        let Some(frames) = fixture("tcpdump/dns_udp.pcap") else {
            return;
        };
        let out = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/fixtures/captures/tcpdump/dns_udp.out"),
        )
        .unwrap();
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

    #[test]
    fn garbage_is_an_error() {
        assert!(decode(&[1, 2, 3]).is_err());
    }
}
