//! What counts as local to the LAN: always allowed, never learned.

use ipnet::IpNet;

/// Multicast and broadcast: local by nature.
pub(super) fn always_local() -> Vec<IpNet> {
    ["224.0.0.0/4", "255.255.255.255/32", "ff00::/8", "fe80::/10"]
        .iter()
        .map(|s| s.parse().expect("valid"))
        .collect()
}

/// The private ranges: what `local` means when there is no interface to ask (replay).
pub fn private_ranges() -> Vec<IpNet> {
    [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "fc00::/7",
    ]
    .iter()
    .map(|s| s.parse().expect("valid"))
    .collect()
}

/// The interface's own prefixes (its addresses with their masks).
pub fn interface_prefixes(iface: &str) -> Vec<IpNet> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we free below; we only read it in between.
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        return out;
    }
    let mut cur = ifap;
    while !cur.is_null() {
        // SAFETY: a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        // SAFETY: ifa_name is a NUL-terminated string.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        if name.to_bytes() != iface.as_bytes()
            || ifa.ifa_addr.is_null()
            || ifa.ifa_netmask.is_null()
        {
            continue;
        }
        // SAFETY: the family says which sockaddr these are.
        unsafe {
            match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let a = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    let m = &*(ifa.ifa_netmask as *const libc::sockaddr_in);
                    let addr = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                    let bits = u32::from_be(m.sin_addr.s_addr).count_ones() as u8;
                    if let Ok(n) = ipnet::Ipv4Net::new(addr, bits) {
                        out.push(IpNet::V4(n.trunc()));
                    }
                }
                libc::AF_INET6 => {
                    let a = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    let m = &*(ifa.ifa_netmask as *const libc::sockaddr_in6);
                    let addr = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
                    let bits: u32 = m.sin6_addr.s6_addr.iter().map(|b| b.count_ones()).sum();
                    if let Ok(n) = ipnet::Ipv6Net::new(addr, bits as u8) {
                        out.push(IpNet::V6(n.trunc()));
                    }
                }
                _ => {}
            }
        }
    }
    // SAFETY: the list getifaddrs allocated.
    unsafe { libc::freeifaddrs(ifap) };
    out
}
