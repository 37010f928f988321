//! Which frames are discovery frames: what a device says about itself (its name, vendor,
//! services, addresses). One definition for the kernel, which copies them, and userspace,
//! which decodes them.
//!
//! Also the record that carries one to userspace, its size, and each device's rate.

use crate::{Event, proto};

/// EtherType of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// EtherType of LLDP.
pub const ETH_P_LLDP: u16 = 0x88cc;
/// DHCPv4 server port (requests go to it).
pub const DHCP_SERVER: u16 = 67;
/// DHCPv6 server and relay port.
pub const DHCPV6_SERVER: u16 = 547;
/// DNS.
pub const DNS: u16 = 53;
/// Multicast DNS.
pub const MDNS: u16 = 5353;
/// SSDP (UPnP discovery).
pub const SSDP: u16 = 1900;
/// WS-Discovery (ONVIF cameras, printers).
pub const WSD: u16 = 3702;
/// TP-Link Kasa smart-home protocol.
pub const KASA: u16 = 9999;
/// Tuya local protocol, plain broadcasts.
pub const TUYA_PLAIN: u16 = 6666;
/// Tuya local protocol, encrypted broadcasts.
pub const TUYA_ENCRYPTED: u16 = 6667;
/// MQTT over plain TCP: only CONNECT segments are copied (see [`tcp_connect`]).
pub const MQTT: u16 = 1883;
/// First byte of an MQTT CONNECT packet.
pub const MQTT_CONNECT: u8 = 0x10;
/// ICMPv6 router solicitation; 134-137 are advertisement, neighbour solicitation and
/// advertisement, redirect.
pub const ND_ROUTER_SOLICIT: u8 = 133;
/// ICMPv6 neighbour advertisement, the last neighbour-discovery type we copy.
pub const ND_NEIGHBOR_ADVERT: u8 = 136;

/// Whether a frame that is not IP is a discovery frame (ARP, LLDP).
#[inline(always)]
pub const fn non_ip(ethertype: u16) -> bool {
    ethertype == ETH_P_ARP || ethertype == ETH_P_LLDP
}

/// Whether a TCP segment to `dst_port` is a discovery frame when its payload starts
/// with `first`: an MQTT CONNECT (client id, user name). Other segments of the same
/// connection (telemetry) are not, so they don't use up the device's rate.
#[inline(always)]
pub const fn tcp_connect(dst_port: u16, first: u8) -> bool {
    dst_port == MQTT && first == MQTT_CONNECT
}

/// Whether an IP packet is a discovery frame: DHCP and DHCPv6 requests, DNS queries,
/// mDNS, SSDP, WS-Discovery, TP-Link Kasa and Tuya broadcasts (searches,
/// notifications and answers), IPv6 neighbour discovery.
/// `dst_port` is `type << 8 | code` for ICMPv6, as in the flow key.
#[inline(always)]
pub const fn ip(proto_nr: u8, src_port: u16, dst_port: u16) -> bool {
    match proto_nr {
        proto::UDP => {
            dst_port == DHCP_SERVER
                || dst_port == DHCPV6_SERVER
                || dst_port == DNS
                || dst_port == MDNS
                || src_port == MDNS
                || dst_port == SSDP
                || src_port == SSDP
                || dst_port == WSD
                || src_port == WSD
                || dst_port == KASA
                || src_port == KASA
                || dst_port == TUYA_PLAIN
                || dst_port == TUYA_ENCRYPTED
        }
        proto::ICMPV6 => {
            let t = (dst_port >> 8) as u8;
            t >= ND_ROUTER_SOLICIT && t <= ND_NEIGHBOR_ADVERT
        }
        _ => false,
    }
}

/// Bytes of a discovery frame copied to userspace: a full 576-byte DHCP message with its
/// headers and more, since hostname and vendor class often sit past byte 300 of the
/// payload; mDNS and SSDP can use a full 1500-byte frame.
pub const DISCOVERY_BYTES: usize = 1536;

/// Discovery frames a device may send per second per CPU before the rest are counted in
/// `stats::DISCOVERY_RATE_LIMITED` instead of copied.
pub const DISCOVERY_RATE: u64 = 8;
/// Burst allowance of the same token bucket.
pub const DISCOVERY_BURST: u64 = 32;

/// A discovery frame: an [`Event`] header (kind
/// [`EventKind::Discovery`](crate::EventKind::Discovery)) and the frame's first bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct DiscoveryRecord {
    /// Who sent it, when, and its addressing.
    pub head: Event,
    /// Bytes of `data` that hold the frame.
    pub cap_len: u32,
    /// Explicit padding, always zero.
    pub _pad: u32,
    /// The frame from its Ethernet header on.
    pub data: [u8; DISCOVERY_BYTES],
}

const _: () = assert!(core::mem::size_of::<DiscoveryRecord>() == 88 + 8 + DISCOVERY_BYTES);
