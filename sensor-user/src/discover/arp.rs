//! ARP: the IPv4 address a device claims for its MAC.

use sensor_common::MacAddr;

use etherparse::{ArpHardwareId, ArpOperation, ArpPacketSlice, EtherType};

use super::{DecodeError, Decoded, Facts};

/// The sender's address of an Ethernet/IPv4 ARP request or reply, about the frame's
/// sender, and for a request the address it asks about. A sender hardware address that is
/// not the frame's source, or 0.0.0.0 (a probe), claims nothing: taking a claim about
/// someone else would let a spoofer write another device's address.
pub fn decode(src_mac: MacAddr, a: &ArpPacketSlice<'_>) -> Result<Option<Decoded>, DecodeError> {
    if a.hw_addr_type() != ArpHardwareId::ETHERNET || a.proto_addr_type() != EtherType::IPV4 {
        return Err(DecodeError::new("arp", "not Ethernet/IPv4 ARP"));
    }
    let (Ok(hw), Ok(ip), Ok(target)) = (
        <MacAddr>::try_from(a.sender_hw_addr()),
        <[u8; 4]>::try_from(a.sender_protocol_addr()),
        <[u8; 4]>::try_from(a.target_protocol_addr()),
    ) else {
        return Err(DecodeError::new("arp", "address lengths are not 6 and 4"));
    };
    let claimed = (hw == src_mac && ip != [0; 4]).then(|| std::net::IpAddr::from(ip));
    let facts = match (a.operation(), claimed) {
        (ArpOperation::REQUEST, _) if target != ip => Facts::ArpRequest {
            claimed,
            asked: std::net::IpAddr::from(target),
        },
        (_, Some(c)) => Facts::Address(c),
        (_, None) => return Ok(None),
    };
    Ok(Some(Decoded {
        mac: src_mac,
        facts,
    }))
}

#[cfg(test)]
mod tests {
    use sensor_common::MacAddr;

    use crate::discover::{Facts, decode};

    fn arp(op: u16, sender_mac: MacAddr, sender_ip: [u8; 4]) -> Vec<u8> {
        let src = [2, 0, 0, 0, 0, 0xa];
        let mut f = vec![0xff; 6];
        f.extend(src);
        f.extend([0x08, 0x06, 0, 1, 0x08, 0, 6, 4]);
        f.extend(op.to_be_bytes());
        f.extend(sender_mac.0);
        f.extend(sender_ip);
        f.extend([0; 6]);
        f.extend([198, 51, 100, 1]);
        f
    }

    #[test]
    fn request_and_reply_give_the_senders_address_and_what_it_asks() {
        let me = [2, 0, 0, 0, 0, 0xa];
        let d = decode(&arp(2, MacAddr(me), [198, 51, 100, 10]))
            .unwrap()
            .unwrap();
        assert_eq!(d.mac, me);
        assert_eq!(d.facts, Facts::Address("198.51.100.10".parse().unwrap()));
        let d = decode(&arp(1, MacAddr(me), [198, 51, 100, 10]))
            .unwrap()
            .unwrap();
        assert_eq!(
            d.facts,
            Facts::ArpRequest {
                claimed: Some("198.51.100.10".parse().unwrap()),
                asked: "198.51.100.1".parse().unwrap()
            }
        );
    }

    #[test]
    fn probes_and_claims_for_other_macs_claim_nothing() {
        let me = [2, 0, 0, 0, 0, 0xa];
        // A probe still asks (duplicate address detection for the target).
        let d = decode(&arp(1, MacAddr(me), [0; 4])).unwrap().unwrap();
        assert!(matches!(d.facts, Facts::ArpRequest { claimed: None, .. }));
        assert_eq!(
            decode(&arp(2, MacAddr([2, 0, 0, 0, 0, 0xb]), [198, 51, 100, 10])),
            Ok(None)
        );
    }

    #[test]
    fn truncated_arp_is_an_error() {
        let f = arp(1, MacAddr([2, 0, 0, 0, 0, 0xa]), [198, 51, 100, 10]);
        assert!(decode(&f[..30]).is_err());
    }
}
