//! Prefixes as the kernel's LPM tries key them: IPv4 mapped into IPv6, so one trie holds
//! both families (the allow-list and intel tries both do).

use ipnet::IpNet;

/// A prefix's 16 address bytes and its length in bits, IPv4 mapped.
pub fn mapped(net: IpNet) -> ([u8; 16], u32) {
    match net {
        IpNet::V4(n) => (
            n.addr().to_ipv6_mapped().octets(),
            96 + n.prefix_len() as u32,
        ),
        IpNet::V6(n) => (n.addr().octets(), n.prefix_len() as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_is_mapped_and_ipv6_kept() {
        let (a, bits) = mapped("192.0.2.0/24".parse().unwrap());
        assert_eq!(bits, 120);
        assert_eq!(&a[10..], &[0xff, 0xff, 192, 0, 2, 0]);
        let (a, bits) = mapped("2001:db8::/32".parse().unwrap());
        assert_eq!(bits, 32);
        assert_eq!(&a[..4], &[0x20, 0x01, 0x0d, 0xb8]);
    }
}
