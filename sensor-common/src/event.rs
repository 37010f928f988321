//! The ring-buffer record header: what every record to userspace starts with, and which
//! kind of record it is.

use crate::{FlowKey, MacAddr};

/// What a ring-buffer record is. [`Event::kind`] holds it as a `u8` (a record's bytes come
/// from the kernel and are decoded with [`EventKind::from_u8`], never cast).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The first packet of a flow not yet in the flow map.
    NewFlow = 1,
    /// The first frame from a MAC not yet in the device map.
    NewDevice = 2,
    /// A discovery frame (see [`discovery`](crate::discovery)), copied for userspace
    /// decoding in a [`DiscoveryRecord`](crate::DiscoveryRecord).
    Discovery = 3,
    /// A DNS answer the gateway sent a device (LAN egress), in a
    /// [`DiscoveryRecord`](crate::DiscoveryRecord) whose `key.mac` is the device.
    DnsAnswer = 4,
    /// A flow's first payload from the device, in a
    /// [`PayloadRecord`](crate::PayloadRecord).
    Payload = 5,
    /// A flow's first payload to the device (what the gateway sends it: a server's
    /// greeting, a client's request), in a [`PayloadRecord`](crate::PayloadRecord) whose
    /// `key` is the device's flow.
    PayloadIn = 6,
}

impl EventKind {
    /// The kind a record's `kind` byte names, if any.
    #[inline(always)]
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::NewFlow),
            2 => Some(Self::NewDevice),
            3 => Some(Self::Discovery),
            4 => Some(Self::DnsAnswer),
            5 => Some(Self::Payload),
            6 => Some(Self::PayloadIn),
            _ => None,
        }
    }
}

/// One ring-buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// Kernel monotonic time (ns) of the frame.
    pub ts_ns: u64,
    /// The flow (for [`EventKind::NewDevice`] only `mac` is set).
    pub key: FlowKey,
    /// Source address of the frame, 16 bytes, IPv4 mapped.
    pub src_addr: [u8; 16],
    /// Source port (host byte order), 0 when absent.
    pub src_port: u16,
    /// Destination MAC of the frame.
    pub dst_mac: MacAddr,
    /// An [`EventKind`], as its byte.
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
    /// The new flow's verdict (`policy::verdict::*`).
    pub verdict: u8,
    /// Explicit padding, always zero.
    pub _pad: [u8; 3],
    /// Policy generation of the verdict.
    pub policy_gen: u32,
    /// The intel trie's id of the destination's entry (0: none).
    pub intel_id: u32,
    /// Explicit padding, always zero.
    pub _pad2: u32,
}

const _: () = assert!(core::mem::size_of::<Event>() == 88);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: every type is repr(C), has no implicit padding (asserted sizes above) and
    // is valid for any bit pattern.
    unsafe impl aya::Pod for super::Event {}
}
