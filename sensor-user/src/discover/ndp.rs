//! IPv6 neighbour discovery: the addresses a device uses, from its solicitations and
//! advertisements (it has no DHCPv6 to ask when it uses SLAAC).

use std::net::{IpAddr, Ipv6Addr};

use super::DecodeError;

const ROUTER_SOLICIT: u8 = 133;
const NEIGHBOR_SOLICIT: u8 = 135;
const NEIGHBOR_ADVERT: u8 = 136;

/// The address a neighbour-discovery message shows its sender using: the target of an
/// advertisement, else the source address. `Ok(None)` for duplicate-address probes (from
/// `::`) and for other ICMPv6 types.
pub fn decode(src: IpAddr, icmp: &[u8]) -> Result<Option<IpAddr>, DecodeError> {
    let Some(&kind) = icmp.first() else {
        return Err(DecodeError::new("ndp", "empty ICMPv6 message"));
    };
    let claimed = match kind {
        NEIGHBOR_ADVERT => {
            let t: [u8; 16] = icmp
                .get(8..24)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| DecodeError::new("ndp", "advertisement without a target"))?;
            IpAddr::V6(Ipv6Addr::from(t))
        }
        ROUTER_SOLICIT..=NEIGHBOR_SOLICIT => src,
        _ => return Ok(None),
    };
    if claimed.is_unspecified() || claimed.is_multicast() {
        return Ok(None);
    }
    Ok(Some(claimed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn advertisement_claims_its_target_and_solicitation_its_source() {
        let mut na = vec![NEIGHBOR_ADVERT, 0, 0, 0, 0x60, 0, 0, 0];
        na.extend(v6_bytes("2001:db8:1::10"));
        assert_eq!(decode(v6("fe80::1"), &na), Ok(Some(v6("2001:db8:1::10"))));
        let mut ns = vec![NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
        ns.extend(v6_bytes("2001:db8:1::1"));
        assert_eq!(
            decode(v6("2001:db8:1::10"), &ns),
            Ok(Some(v6("2001:db8:1::10")))
        );
    }

    #[test]
    fn duplicate_address_probes_claim_nothing() {
        let mut ns = vec![NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
        ns.extend(v6_bytes("2001:db8:1::10"));
        assert_eq!(decode(v6("::"), &ns), Ok(None));
    }

    #[test]
    fn short_advertisement_is_an_error() {
        assert!(decode(v6("fe80::1"), &[NEIGHBOR_ADVERT, 0, 0, 0, 0]).is_err());
    }

    fn v6_bytes(s: &str) -> [u8; 16] {
        s.parse::<Ipv6Addr>().unwrap().octets()
    }
}
