//! A flow's first payload: the record that carries it to userspace, how much of it is
//! copied, and each device's rate. Userspace decodes it into a few facts (a server name,
//! a banner, a User-Agent, a TLS fingerprint) and drops the bytes.

use crate::Event;

/// Bytes of a payload copied: a whole segment of a 1500-byte frame (1,460 bytes of TCP
/// or 1,472 of UDP over IPv4), which holds a ClientHello's extensions, an HTTP head or a
/// banner. XDP sees frames before GRO, so no LAN segment is larger.
pub const PAYLOAD_BYTES: usize = 1472;

/// First payloads a device may have copied per second per CPU before the rest are
/// counted in `stats::PAYLOAD_SKIPPED` instead: one per new flow is the most it can use,
/// so this only bounds a device opening flows fast (a scan, a flood, a browser).
pub const PAYLOAD_RATE: u64 = 4;
/// Burst allowance of the same token bucket: a device's start-up burst of connections.
pub const PAYLOAD_BURST: u64 = 64;

/// Bits of a flow's `sampled` byte: its first payload from the device went (or was
/// skipped) ...
pub const SAMPLED_OUT: u8 = 1;
/// ... and its first payload to the device.
pub const SAMPLED_IN: u8 = 2;

/// A flow's first payload from or to the device: an [`Event`] header (kind
/// [`EventKind::Payload`](crate::EventKind::Payload), `key` the flow) and the payload's
/// first bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PayloadRecord {
    /// The flow, when, and its addressing.
    pub head: Event,
    /// Bytes of `data` that hold the payload.
    pub cap_len: u32,
    /// The payload's length in the segment (more than `cap_len` when cut).
    pub payload_len: u32,
    /// The payload from its first byte on.
    pub data: [u8; PAYLOAD_BYTES],
}

const _: () = assert!(core::mem::size_of::<PayloadRecord>() == 88 + 8 + PAYLOAD_BYTES);
const _: () = assert!(core::mem::size_of::<PayloadRecord>().is_multiple_of(8));
