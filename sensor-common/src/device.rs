//! A device in the kernel: its key (a source or destination MAC) and its per-CPU
//! counters on LAN ingress and egress.

use crate::MacAddr;

/// Device map key: a source MAC.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceKey {
    /// The device's MAC address.
    pub mac: MacAddr,
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
    /// Discovery frames it may still copy (token bucket, refilled with time).
    pub discovery_tokens: u64,
    /// Kernel time of the last refill.
    pub discovery_refill_ns: u64,
    /// First payloads it may still have copied (token bucket, refilled with time).
    pub payload_tokens: u64,
    /// Kernel time of that bucket's last refill.
    pub payload_refill_ns: u64,
}

/// Per-CPU counters of what the gateway sent one device (LAN egress).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EgressCounters {
    /// Frames.
    pub packets: u64,
    /// Bytes, Ethernet header included.
    pub bytes: u64,
}

const _: () = assert!(core::mem::size_of::<DeviceKey>() == 8);
const _: () = assert!(core::mem::size_of::<DeviceCounters>() == 72);
const _: () = assert!(core::mem::size_of::<EgressCounters>() == 16);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: every type is repr(C), has no implicit padding (asserted sizes above) and
    // is valid for any bit pattern.
    unsafe impl aya::Pod for super::DeviceKey {}
    unsafe impl aya::Pod for super::DeviceCounters {}
    unsafe impl aya::Pod for super::EgressCounters {}
}
