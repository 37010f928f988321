//! Addresses as every stage uses them: the kernel's 16-byte form as an `IpAddr`, host
//! addresses, protocol names, and the MAC type (from sensor-common, which the kernel
//! shares).

use std::net::{IpAddr, Ipv6Addr};

pub use sensor_common::MacAddr;

/// A 16-byte address from the kernel (IPv4 mapped) as the `IpAddr` users expect.
pub fn ip(bytes: [u8; 16]) -> IpAddr {
    let v6 = Ipv6Addr::from(bytes);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// Whether an address can belong to one device (not unspecified, multicast or broadcast).
pub fn is_host_address(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

/// EVE's protocol name for an IP protocol number.
pub fn proto_name(p: u8) -> String {
    match p {
        1 => "ICMP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        58 => "IPv6-ICMP".into(),
        132 => "SCTP".into(),
        47 => "GRE".into(),
        50 => "ESP".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ipv4_prints_as_ipv4() {
        let mut b = [0u8; 16];
        b[10] = 0xff;
        b[11] = 0xff;
        b[12..].copy_from_slice(&[203, 0, 113, 9]);
        assert_eq!(ip(b).to_string(), "203.0.113.9");
        b[10] = 0;
        b[11] = 0;
        assert_eq!(ip(b).to_string(), "::cb00:7109");
    }
}
