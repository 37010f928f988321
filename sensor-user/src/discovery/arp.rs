//! ARP: the IPv4 address a device claims for its MAC.

use etherparse::{ArpHardwareId, ArpPacketSlice, EtherType};

use super::{DecodeError, Decoded, Facts};

/// The sender's address of an Ethernet/IPv4 ARP request or reply, about the frame's
/// sender. `Ok(None)` for probes (sender 0.0.0.0) and for a sender hardware address that
/// is not the frame's source: that claim is about someone else, and taking it would let a
/// spoofer write another device's address.
pub fn decode(src_mac: [u8; 6], a: &ArpPacketSlice<'_>) -> Result<Option<Decoded>, DecodeError> {
    if a.hw_addr_type() != ArpHardwareId::ETHERNET || a.proto_addr_type() != EtherType::IPV4 {
        return Err(DecodeError::new("arp", "not Ethernet/IPv4 ARP"));
    }
    let (Ok(hw), Ok(ip)) = (
        <[u8; 6]>::try_from(a.sender_hw_addr()),
        <[u8; 4]>::try_from(a.sender_protocol_addr()),
    ) else {
        return Err(DecodeError::new("arp", "address lengths are not 6 and 4"));
    };
    if hw != src_mac || ip == [0; 4] {
        return Ok(None);
    }
    Ok(Some(Decoded {
        mac: src_mac,
        facts: Facts::Address(std::net::IpAddr::from(ip)),
    }))
}

#[cfg(test)]
mod tests {
    use crate::discovery::{Facts, decode};

    fn arp(op: u16, sender_mac: [u8; 6], sender_ip: [u8; 4]) -> Vec<u8> {
        let src = [2, 0, 0, 0, 0, 0xa];
        let mut f = vec![0xff; 6];
        f.extend(src);
        f.extend([0x08, 0x06, 0, 1, 0x08, 0, 6, 4]);
        f.extend(op.to_be_bytes());
        f.extend(sender_mac);
        f.extend(sender_ip);
        f.extend([0; 6]);
        f.extend([198, 51, 100, 1]);
        f
    }

    #[test]
    fn request_and_reply_give_the_senders_address() {
        let me = [2, 0, 0, 0, 0, 0xa];
        for op in [1, 2] {
            let d = decode(&arp(op, me, [198, 51, 100, 10])).unwrap().unwrap();
            assert_eq!(d.mac, me);
            assert_eq!(d.facts, Facts::Address("198.51.100.10".parse().unwrap()));
        }
    }

    #[test]
    fn probes_and_claims_for_other_macs_are_not_taken() {
        let me = [2, 0, 0, 0, 0, 0xa];
        assert_eq!(decode(&arp(1, me, [0; 4])), Ok(None));
        assert_eq!(
            decode(&arp(2, [2, 0, 0, 0, 0, 0xb], [198, 51, 100, 10])),
            Ok(None)
        );
    }

    #[test]
    fn truncated_arp_is_an_error() {
        let f = arp(1, [2, 0, 0, 0, 0, 0xa], [198, 51, 100, 10]);
        assert!(decode(&f[..30]).is_err());
    }
}
