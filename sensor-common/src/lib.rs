//! Types shared by the kettlewatch eBPF programs and the userspace loader.
//!
//! Everything here is `#[repr(C)]` with explicit padding so that both sides agree on the
//! byte layout; the `user` feature adds `aya::Pod` so userspace can read maps of them.
#![no_std]

pub mod maps;
pub mod stats;

/// Event kind: the first packet of a flow not yet in the flow map.
pub const EVENT_NEW_FLOW: u8 = 1;
/// Event kind: the first frame from a MAC not yet in the device map.
pub const EVENT_NEW_DEVICE: u8 = 2;

/// Flow flag: the device is answering (it sent from a well-known port to a client's
/// ephemeral port), so the flow is keyed by the device's service port.
pub const FLOW_SERVING: u8 = 1;

/// IP protocol numbers the parser understands.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
}

/// A destination profile: one device talking to one destination address, port and protocol.
///
/// Not a 5-tuple on purpose: the source port changes with every connection, the set of
/// destinations a device uses does not.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// Destination address, 16 bytes; IPv4 is mapped (`::ffff:a.b.c.d`).
    pub addr: [u8; 16],
    /// The device: source MAC of the frame.
    pub mac: [u8; 6],
    /// Destination port (host byte order); for ICMP `type << 8 | code`; 0 when absent.
    pub port: u16,
    /// IP protocol number.
    pub proto: u8,
    /// `FLOW_*` bits.
    pub flags: u8,
    /// Explicit padding, always zero.
    pub _pad: [u8; 2],
}

/// Per-CPU counters of one flow, updated in place on the fast path.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCounters {
    /// Frames seen on this CPU.
    pub packets: u64,
    /// Bytes seen on this CPU, Ethernet header included.
    pub bytes: u64,
    /// Kernel monotonic time (ns) of the first frame on this CPU.
    pub first_seen_ns: u64,
    /// Kernel monotonic time (ns) of the latest frame on this CPU.
    pub last_seen_ns: u64,
    /// OR of every TCP flag byte seen.
    pub tcp_flags: u8,
    /// Explicit padding, always zero.
    pub _pad: [u8; 7],
}

/// Device map key: a source MAC.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceKey {
    /// The device's MAC address.
    pub mac: [u8; 6],
    /// Explicit padding, always zero.
    pub _pad: [u8; 2],
}

/// Per-CPU counters of one device. Its IP traffic is not here: that is the sum of its
/// flows, so the per-frame fast path touches one map, not two.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceCounters {
    /// Non-IP frames (ARP, LLDP, EAPOL, ...).
    pub non_ip_packets: u64,
    /// Bytes of those frames, Ethernet header included.
    pub non_ip_bytes: u64,
    /// Flows the device opened.
    pub new_flows: u64,
    /// Kernel monotonic time (ns) of the first frame on this CPU.
    pub first_seen_ns: u64,
    /// Kernel monotonic time (ns) of its latest non-IP frame or new flow on this CPU.
    pub last_seen_ns: u64,
}

/// One ring-buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// Kernel monotonic time (ns) of the frame.
    pub ts_ns: u64,
    /// The flow (for `EVENT_NEW_DEVICE` only `mac` is set).
    pub key: FlowKey,
    /// Source address of the frame, 16 bytes, IPv4 mapped.
    pub src_addr: [u8; 16],
    /// Source port (host byte order), 0 when absent.
    pub src_port: u16,
    /// Destination MAC of the frame.
    pub dst_mac: [u8; 6],
    /// `EVENT_*`.
    pub kind: u8,
    /// TCP flags of the frame.
    pub tcp_flags: u8,
    /// Destination port of the frame (host byte order): the client's port on a
    /// `FLOW_SERVING` flow, whose key holds the device's service port.
    pub dst_port: u16,
    /// Length of the frame in bytes.
    pub frame_len: u32,
    /// EtherType after any VLAN tags.
    pub ethertype: u16,
    /// Outer VLAN id, 0 when untagged.
    pub vlan: u16,
}

const _: () = assert!(core::mem::size_of::<FlowKey>() == 28);
const _: () = assert!(core::mem::size_of::<FlowCounters>() == 40);
const _: () = assert!(core::mem::size_of::<DeviceKey>() == 8);
const _: () = assert!(core::mem::size_of::<DeviceCounters>() == 40);
const _: () = assert!(core::mem::size_of::<Event>() == 72);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: every type is repr(C), has no implicit padding (asserted sizes above) and
    // is valid for any bit pattern.
    unsafe impl aya::Pod for super::FlowKey {}
    unsafe impl aya::Pod for super::FlowCounters {}
    unsafe impl aya::Pod for super::DeviceKey {}
    unsafe impl aya::Pod for super::DeviceCounters {}
    unsafe impl aya::Pod for super::Event {}
}

/// Compile-time string equality, so the eBPF side can check its literal map names
/// against the constants in [`maps`] (the `#[map]` macro only takes literals).
pub const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
