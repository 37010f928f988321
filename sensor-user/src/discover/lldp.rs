//! LLDP: what a device says about itself on the link: system name and description
//! (OS and version), capabilities, management addresses, and an RFC 8520 MUD URL.
//! A list of (7-bit type, 9-bit length) TLVs, parsed by hand with every length checked.

use sensor_common::MacAddr;

use std::net::IpAddr;

use super::{DecodeError, Decoded, Facts, text};

const TLV_END: u8 = 0;
const TLV_CHASSIS_ID: u8 = 1;
const TLV_SYSTEM_NAME: u8 = 5;
const TLV_SYSTEM_DESCRIPTION: u8 = 6;
const TLV_CAPABILITIES: u8 = 7;
const TLV_MANAGEMENT_ADDRESS: u8 = 8;
const TLV_ORG_SPECIFIC: u8 = 127;
const CHASSIS_SUBTYPE_MAC: u8 = 4;
/// IANA's OUI and the MUD URL subtype (RFC 8520 section 11).
const IANA_OUI: [u8; 3] = [0x00, 0x00, 0x5e];
const IANA_SUBTYPE_MUD: u8 = 1;
/// Capability bits (IEEE 802.1AB), in bit order.
const CAPABILITIES: [&str; 11] = [
    "other",
    "repeater",
    "bridge",
    "wlan-ap",
    "router",
    "telephone",
    "docsis",
    "station",
    "c-vlan",
    "s-vlan",
    "two-port-mac-relay",
];

/// What one LLDP frame says.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LldpFacts {
    /// System name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_name: Option<String>,
    /// System description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_description: Option<String>,
    /// Enabled capabilities.
    #[serde(skip_serializing_if = "crate::discover::profile::is_empty")]
    pub capabilities: Vec<String>,
    /// Management addresses.
    #[serde(skip_serializing_if = "crate::discover::profile::is_empty")]
    pub management_addresses: Vec<IpAddr>,
    /// MUD URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mud_url: Option<String>,
}

fn malformed(why: &str) -> DecodeError {
    DecodeError::new("lldp", why)
}

/// Decodes an LLDP frame's payload. The device is the chassis when its ID is a MAC,
/// else the frame's sender.
pub fn decode(src_mac: MacAddr, mut p: &[u8]) -> Result<Option<Decoded>, DecodeError> {
    let mut f = LldpFacts::default();
    let mut mac = src_mac;
    let mut seen_end = false;
    while p.len() >= 2 {
        let head = u16::from_be_bytes([p[0], p[1]]);
        let (kind, len) = ((head >> 9) as u8, (head & 0x1ff) as usize);
        let v = p
            .get(2..2 + len)
            .ok_or_else(|| malformed("TLV longer than the frame"))?;
        p = &p[2 + len..];
        match kind {
            TLV_END => {
                seen_end = true;
                break;
            }
            TLV_CHASSIS_ID if v.len() == 7 && v[0] == CHASSIS_SUBTYPE_MAC => {
                mac.0.copy_from_slice(&v[1..7]);
            }
            TLV_SYSTEM_NAME => f.system_name = Some(text(v)),
            TLV_SYSTEM_DESCRIPTION => f.system_description = Some(text(v)),
            TLV_CAPABILITIES if v.len() == 4 => {
                let enabled = u16::from_be_bytes([v[2], v[3]]);
                f.capabilities = CAPABILITIES
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| enabled & (1 << i) != 0)
                    .map(|(_, c)| c.to_string())
                    .collect();
            }
            TLV_MANAGEMENT_ADDRESS if f.management_addresses.len() < 8 => {
                // Length (subtype + address), address family, address.
                match (v.first(), v.get(1)) {
                    (Some(5), Some(1)) if v.len() >= 6 => {
                        let a: [u8; 4] = v[2..6].try_into().expect("4 bytes");
                        f.management_addresses.push(IpAddr::from(a));
                    }
                    (Some(17), Some(2)) if v.len() >= 18 => {
                        let a: [u8; 16] = v[2..18].try_into().expect("16 bytes");
                        f.management_addresses.push(IpAddr::from(a));
                    }
                    _ => {}
                }
            }
            TLV_ORG_SPECIFIC if v.len() > 4 && v[..3] == IANA_OUI && v[3] == IANA_SUBTYPE_MUD => {
                f.mud_url = Some(text(&v[4..]));
            }
            _ => {}
        }
    }
    if !seen_end {
        return Err(malformed("no End TLV"));
    }
    Ok(Some(Decoded {
        mac,
        facts: Facts::Lldp(f),
    }))
}

#[cfg(test)]
mod tests {
    use crate::discover::{Facts, decode};
    use crate::testdata::frames as fixture;

    /// The values tcpdump prints for the same capture (lldp_mudurl-vv.out).
    #[test]
    fn mud_url_and_system_in_the_tcpdump_capture() {
        let frames = fixture("tcpdump/lldp_mudurl.pcap");
        let d = decode(&frames[0]).unwrap().unwrap();
        assert_eq!(d.mac, [0x00, 0x23, 0x54, 0xc2, 0x57, 0x02]);
        let Facts::Lldp(f) = d.facts else {
            panic!("not LLDP: {:?}", d.facts)
        };
        assert_eq!(
            f.mud_url.as_deref(),
            Some("https://imright.mud.example.com/.well-known/mud/v1/vomitv2.0")
        );
        assert_eq!(
            f.system_name.as_deref(),
            Some("upstairs.ofcourseimright.com")
        );
        assert_eq!(
            f.system_description.as_deref(),
            Some(
                "Ubuntu 14.04.5 LTS Linux 3.13.0-106-generic #153-Ubuntu SMP Tue Dec 6 15:45:13 UTC 2016 i686"
            )
        );
        assert_eq!(f.capabilities, ["wlan-ap"]);
        assert_eq!(
            f.management_addresses,
            [
                "62.12.173.114".parse::<std::net::IpAddr>().unwrap(),
                "2001:8a8:1006:4:223:54ff:fec2:5702".parse().unwrap()
            ]
        );
    }

    #[test]
    fn truncated_tlv_is_an_error() {
        let frames = fixture("tcpdump/lldp_mudurl.pcap");
        let e = decode(&frames[0][..100]).unwrap_err();
        assert_eq!(e.protocol, "lldp");
    }
}
