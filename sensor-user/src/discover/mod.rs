//! Discovery: pure decoders from captured frames to typed facts about devices, and the
//! per-device [`profile`] those facts are merged into.
//!
//! [`decode`] routes a frame the kernel copied (see `sensor_common::discovery` for which)
//! to the decoder of its protocol; each decoder is a pure function of the bytes. A new
//! decoder is a file here, a `Facts` variant, and an arm in [`decode`]. [`payload`]
//! decodes what a flow's first payload says about the software at its ends (TLS, HTTP,
//! banners), from the bytes rather than the port.

pub mod arp;
pub mod dhcp;
pub mod dhcpv6;
pub mod dns;
pub mod glob_list;
pub mod lldp;
pub mod mdns;
pub mod mqtt;
pub mod ndp;
pub mod oui;
pub mod payload;
pub mod profile;
pub mod software;
pub mod ssdp;
pub mod tplink;
pub mod tuya;
pub mod wsd;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use sensor_common::{MacAddr, discovery as kinds};

/// Longest string kept from the network: a hostile device cannot grow events without bound.
pub const MAX_TEXT: usize = 255;

/// Text from the network as something safe to put in an event: invalid UTF-8 replaced,
/// control characters replaced, at most [`MAX_TEXT`] characters. (JSON escaping of quotes
/// and backslashes is the serializer's.)
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .take(MAX_TEXT)
        .collect()
}

/// What one discovery frame says, by protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Facts {
    /// A DHCPv4 request.
    Dhcp(dhcp::DhcpFacts),
    /// A DHCPv6 client message (possibly inside a relay message).
    Dhcpv6(dhcpv6::Dhcpv6Facts),
    /// Names a device asked its resolver for.
    Dns(dns::DnsQuery),
    /// Services, instance names and models a device announces over mDNS.
    Mdns(mdns::MdnsFacts),
    /// An SSDP search, notification or answer.
    Ssdp(ssdp::SsdpFacts),
    /// An LLDP advertisement.
    Lldp(lldp::LldpFacts),
    /// A WS-Discovery message (ONVIF cameras, printers, Windows hosts).
    Wsd(wsd::WsdFacts),
    /// A TP-Link Kasa query or self-description.
    Kasa(tplink::KasaFacts),
    /// A Tuya broadcast.
    Tuya(tuya::TuyaFacts),
    /// An MQTT login.
    Mqtt(mqtt::MqttFacts),
    /// An address a device claims (ARP, IPv6 neighbour discovery).
    Address(std::net::IpAddr),
    /// An ARP request: the address the device asks about (many of them in a short time
    /// are a sweep of the LAN), and the one it claims, when it says.
    ArpRequest {
        /// The sender's address (none for a probe from 0.0.0.0).
        claimed: Option<std::net::IpAddr>,
        /// The target address.
        asked: std::net::IpAddr,
    },
}

/// Facts and the device they are about: usually the frame's sender, but the client a
/// relay forwards for, or the chassis an LLDP frame names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The device.
    pub mac: MacAddr,
    /// What the frame says about it.
    pub facts: Facts,
}

/// Why a discovery frame did not decode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{protocol}: {why}")]
pub struct DecodeError {
    /// The protocol the frame was taken for.
    pub protocol: &'static str,
    /// What was wrong.
    pub why: String,
}

impl DecodeError {
    /// An error of `protocol`.
    pub fn new(protocol: &'static str, why: impl Into<String>) -> Self {
        Self {
            protocol,
            why: why.into(),
        }
    }
}

/// Decodes a whole frame. `Ok(None)` for frames that carry no facts about a device
/// (a server's reply, a probe from an unspecified address).
pub fn decode(frame: &[u8]) -> Result<Option<Decoded>, DecodeError> {
    let p = SlicedPacket::from_ethernet(frame)
        .map_err(|e| DecodeError::new("ethernet", e.to_string()))?;
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = &p.link else {
        return Err(DecodeError::new("ethernet", "no Ethernet II header"));
    };
    let src_mac = MacAddr(eth.source());
    if let Some(NetSlice::Arp(a)) = &p.net {
        return arp::decode(src_mac, a);
    }
    let Some(payload) = p.ether_payload() else {
        return Err(DecodeError::new("ethernet", "no payload"));
    };
    if payload.ether_type.0 == kinds::ETH_P_LLDP {
        return lldp::decode(src_mac, payload.payload);
    }
    let (src_ip, dst_ip) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => (
            std::net::IpAddr::V4(ip.header().source_addr()),
            std::net::IpAddr::V4(ip.header().destination_addr()),
        ),
        Some(NetSlice::Ipv6(ip)) => (
            std::net::IpAddr::V6(ip.header().source_addr()),
            std::net::IpAddr::V6(ip.header().destination_addr()),
        ),
        _ => return Err(DecodeError::new("ip", "not a discovery protocol")),
    };
    let about = |facts| {
        Ok(Some(Decoded {
            mac: src_mac,
            facts,
        }))
    };
    match &p.transport {
        Some(TransportSlice::Udp(udp)) => {
            let (sport, dport, m) = (udp.source_port(), udp.destination_port(), udp.payload());
            if dport == kinds::DHCP_SERVER {
                Ok(dhcp::decode_message(m)?.map(|f| Decoded {
                    mac: f.client_mac,
                    facts: Facts::Dhcp(f),
                }))
            } else if dport == kinds::DHCPV6_SERVER {
                Ok(dhcpv6::decode(src_mac, m)?.map(|(mac, f)| Decoded {
                    mac,
                    facts: Facts::Dhcpv6(f),
                }))
            } else if dport == kinds::MDNS || sport == kinds::MDNS {
                mdns::decode(m)?.map_or(Ok(None), |f| about(Facts::Mdns(f)))
            } else if dport == kinds::DNS {
                dns::decode(m)?.map_or(Ok(None), |f| {
                    about(Facts::Dns(dns::DnsQuery {
                        server: Some(dst_ip),
                        ..f
                    }))
                })
            } else if dport == kinds::SSDP || sport == kinds::SSDP {
                about(Facts::Ssdp(ssdp::decode(m)?))
            } else if dport == kinds::WSD || sport == kinds::WSD {
                about(Facts::Wsd(wsd::decode(m)?))
            } else if dport == kinds::KASA || sport == kinds::KASA {
                about(Facts::Kasa(tplink::decode(m)?))
            } else if dport == kinds::TUYA_PLAIN || dport == kinds::TUYA_ENCRYPTED {
                about(Facts::Tuya(tuya::decode(dport, m)?))
            } else {
                Err(DecodeError::new("udp", "not a discovery port"))
            }
        }
        Some(TransportSlice::Tcp(tcp)) if tcp.destination_port() == kinds::MQTT => {
            mqtt::decode(tcp.payload())?.map_or(Ok(None), |f| about(Facts::Mqtt(f)))
        }
        Some(TransportSlice::Icmpv6(icmp)) => {
            ndp::decode(src_ip, icmp.slice())?.map_or(Ok(None), |a| about(Facts::Address(a)))
        }
        _ => Err(DecodeError::new("ip", "not a discovery protocol")),
    }
}

/// Mutates `frame` past its first `keep` bytes `rounds` times: byte flips, truncations,
/// inserted junk. Shared by the decoders' property tests.
#[cfg(test)]
pub(crate) fn mutate(rng: &mut fastrand::Rng, frame: &[u8], keep: usize) -> Vec<u8> {
    let mut f = frame.to_vec();
    for _ in 0..rng.usize(1..6) {
        if f.len() <= keep + 1 {
            break;
        }
        match rng.u8(0..3) {
            0 => {
                let i = rng.usize(keep..f.len());
                f[i] = rng.u8(..);
            }
            1 => f.truncate(rng.usize(keep..f.len())),
            _ => {
                let i = rng.usize(keep..f.len());
                f.splice(i..i, (0..rng.usize(1..300)).map(|_| rng.u8(..)));
            }
        }
    }
    f
}

/// Text a decoder produced is bounded and printable.
#[cfg(test)]
pub(crate) fn assert_safe(t: &str) {
    assert!(t.chars().count() <= MAX_TEXT, "too long: {t:?}");
    assert!(!t.chars().any(char::is_control), "control character: {t:?}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::frames as fixture;

    #[test]
    fn hostile_text_is_bounded_and_printable() {
        assert_eq!(text(b"cam\x00era\n\"x\""), "cam\u{fffd}era\u{fffd}\"x\"");
        assert_eq!(text(&[0x66, 0xff, 0x6f]), "f\u{fffd}o");
        let long = vec![b'a'; 10_000];
        assert_eq!(text(&long).chars().count(), MAX_TEXT);
    }

    /// Every frame of every discovery fixture goes through the router without a panic,
    /// and mutations of them too; what decodes is bounded text.
    #[test]
    fn mutated_fixture_frames_never_panic() {
        let mut rng = fastrand::Rng::with_seed(8520);
        let mut decoded = 0;
        // ARP and neighbour discovery, crafted (no fixture has them).
        let mut arp = vec![0xff; 6];
        arp.extend([2, 0, 0, 0, 0, 0xa, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        arp.extend([
            2, 0, 0, 0, 0, 0xa, 198, 51, 100, 10, 0, 0, 0, 0, 0, 0, 198, 51, 100, 1,
        ]);
        let mut na = vec![0x33, 0x33, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0xa, 0x86, 0xdd];
        na.extend([0x60, 0, 0, 0, 0, 32, 58, 255]);
        na.extend([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xa]);
        na.extend([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        na.extend([136, 0, 0, 0, 0x20, 0, 0, 0]);
        na.extend([
            0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ]);
        na.extend([2, 1, 2, 0, 0, 0, 0, 0xa]);
        for f in [&arp, &na] {
            assert!(
                matches!(decode(f), Ok(Some(_))),
                "the crafted frame decodes"
            );
            for _ in 0..5_000 {
                let m = mutate(&mut rng, f, 14);
                if let Ok(Some(d)) = decode(&m) {
                    decoded += 1;
                    assert!(matches!(
                        d.facts,
                        Facts::Address(_) | Facts::ArpRequest { .. }
                    ));
                }
            }
        }
        for path in [
            "tcpdump/dhcp-mud.pcap",
            "tcpdump/dhcpv6-mud.pcap",
            "tcpdump/lldp_mudurl.pcap",
            "tcpdump/dns_udp.pcap",
            "ndpi/ssdp-m-search-ua.pcap",
            "ndpi/upnp.pcap",
            "ndpi/tuya_lp.pcap",
            "ndpi/tplink_shp.pcap",
            "ndpi/mqtt.pcap",
            "ndpi/dhcp-fuzz.pcapng",
        ] {
            let frames = fixture(path);
            for f in frames.iter().take(50) {
                for _ in 0..400 {
                    let m = mutate(&mut rng, f, 14);
                    if let Ok(Some(d)) = decode(&m) {
                        decoded += 1;
                        // Debug output escapes, so check the strings through serde.
                        let s = format!("{:?}", d.facts);
                        assert!(s.len() < 64 * 1024);
                    }
                }
            }
        }
        assert!(decoded > 1000, "mutations mostly still decode: {decoded}");
    }
}
