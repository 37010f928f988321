//! Indexes into the per-CPU stats array, and the name each is reported under.

/// Every frame the program saw.
pub const FRAMES: u32 = 0;
/// Bytes of every frame.
pub const BYTES: u32 = 1;
/// Well-formed IPv4 frames.
pub const IPV4: u32 = 2;
/// Well-formed IPv6 frames.
pub const IPV6: u32 = 3;
/// Well-formed frames that are not IP (ARP, LLDP, EAPOL, ...).
pub const NON_IP: u32 = 4;
/// Frame shorter than its Ethernet header or VLAN tags.
pub const ERR_TRUNCATED_L2: u32 = 5;
/// Frame shorter than its IPv4/IPv6 header or extension headers.
pub const ERR_TRUNCATED_L3: u32 = 6;
/// IPv4 header length field below 5.
pub const ERR_BAD_IHL: u32 = 7;
/// Frame shorter than its TCP/UDP/ICMP header.
pub const ERR_TRUNCATED_L4: u32 = 8;
/// More than two VLAN tags, an IP version that disagrees with the EtherType, or an IPv6
/// extension-header chain longer than the parser follows.
pub const ERR_UNSUPPORTED: u32 = 9;
/// Non-first IP fragments (counted on their flow, without ports).
pub const FRAGMENTS: u32 = 10;
/// Flows created.
pub const NEW_FLOWS: u32 = 11;
/// Devices created.
pub const NEW_DEVICES: u32 = 12;
/// Events lost because the ring buffer was full.
pub const RINGBUF_FULL: u32 = 13;
/// Flow inserts the kernel refused.
pub const FLOW_INSERT_FAILED: u32 = 14;
/// Device inserts the kernel refused.
pub const DEVICE_INSERT_FAILED: u32 = 15;

/// Every frame is counted in `FRAMES` and in exactly one of these.
pub const FRAME_CLASSES: [u32; 8] = [
    IPV4,
    IPV6,
    NON_IP,
    ERR_TRUNCATED_L2,
    ERR_TRUNCATED_L3,
    ERR_BAD_IHL,
    ERR_TRUNCATED_L4,
    ERR_UNSUPPORTED,
];

/// Frames counted in the flow cache whose flow had left the flow map (LRU eviction) when
/// the cache flushed them.
pub const CACHE_FLUSH_LOST: u32 = 16;

/// Discovery frames copied to userspace.
pub const DISCOVERY_COPIED: u32 = 17;
/// Discovery frames not copied because their device was over its rate.
pub const DISCOVERY_RATE_LIMITED: u32 = 18;

/// New flows (or flows re-evaluated under a new policy generation) found allowed.
pub const VERDICT_ALLOWED: u32 = 19;
/// ... from a device without a policy in the kernel.
pub const VERDICT_NO_POLICY: u32 = 20;
/// ... from a learning device.
pub const VERDICT_LEARNING: u32 = 21;
/// ... to an unexpected destination.
pub const VERDICT_UNEXPECTED: u32 = 22;
/// ... to an allowed destination on a port or protocol it is not allowed on.
pub const VERDICT_NEW_PORT: u32 = 23;
/// ... blocked (an enforced device's unexpected destination or port).
pub const VERDICT_BLOCKED: u32 = 24;
/// Frames dropped by policy (enforce mode).
pub const DROPPED_POLICY: u32 = 25;

/// Frames the egress program saw (what the gateway sent to the LAN; not in `FRAMES`).
pub const EGRESS_FRAMES: u32 = 26;
/// DNS answers to devices copied to userspace.
pub const DNS_ANSWERS_COPIED: u32 = 27;

/// New flows to a destination on a threat-intelligence feed.
pub const VERDICT_INTEL: u32 = 28;
/// New flows to a canary address.
pub const VERDICT_CANARY: u32 = 29;
/// Frames dropped because their destination is on a feed and blocking is on.
pub const DROPPED_INTEL: u32 = 30;

/// Flow-map changes logged for the next poll ([`crate::maps::DIRTY`]): once per flow,
/// CPU and poll. Per CPU, it is also the log's write position.
pub const DIRTY_LOGGED: u32 = 31;

/// First payloads of flows copied to userspace (one per flow and CPU).
pub const PAYLOAD_COPIED: u32 = 32;
/// First payloads not copied: the device was over its rate, or had left the device map.
pub const PAYLOAD_SKIPPED: u32 = 33;

/// Number of stats slots.
pub const COUNT: u32 = 34;

/// The name of each slot in `stats` events, in index order.
pub const NAMES: [&str; COUNT as usize] = [
    "frames",
    "bytes",
    "ipv4",
    "ipv6",
    "non_ip",
    "truncated_l2",
    "truncated_l3",
    "bad_ihl",
    "truncated_l4",
    "unsupported",
    "fragments",
    "new_flows",
    "new_devices",
    "ringbuf_full",
    "flow_insert_failed",
    "device_insert_failed",
    "cache_flush_lost",
    "discovery_copied",
    "discovery_rate_limited",
    "verdict_allowed",
    "verdict_no_policy",
    "verdict_learning",
    "verdict_unexpected",
    "verdict_new_port",
    "verdict_blocked",
    "dropped_policy",
    "egress_frames",
    "dns_answers_copied",
    "verdict_intel",
    "verdict_canary",
    "dropped_intel",
    "dirty_logged",
    "payload_copied",
    "payload_skipped",
];
