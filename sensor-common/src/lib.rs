//! Types shared by the kettlewatch eBPF programs and the userspace loader.
//!
//! Everything here is `#[repr(C)]` with explicit padding so that both sides agree on the
//! byte layout; the `user` feature adds `aya::Pod` so userspace can read maps of them.
#![no_std]

mod mac;
pub mod maps;
pub mod policy;
pub mod stats;

pub use mac::{MacAddr, ParseMacError};

/// What a ring-buffer record is. [`Event::kind`] holds it as a `u8` (a record's bytes come
/// from the kernel and are decoded with [`EventKind::from_u8`], never cast).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The first packet of a flow not yet in the flow map.
    NewFlow = 1,
    /// The first frame from a MAC not yet in the device map.
    NewDevice = 2,
    /// A discovery frame (see [`discovery`]), copied for userspace decoding in a
    /// [`DiscoveryRecord`].
    Discovery = 3,
    /// A DNS answer the gateway sent a device (LAN egress), in a [`DiscoveryRecord`] whose
    /// `key.mac` is the device.
    DnsAnswer = 4,
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
            _ => None,
        }
    }
}

/// Which frames are discovery frames: what a device says about itself (its name, vendor,
/// services, addresses). One definition for the kernel, which copies them, and userspace,
/// which decodes them.
pub mod discovery {
    use super::proto;

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
/// destinations a device uses does not. Aligned to 4 so the fast path can compare and
/// hash it as seven aligned words.
#[repr(C, align(4))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// Destination address, 16 bytes; IPv4 is mapped (`::ffff:a.b.c.d`).
    pub addr: [u8; 16],
    /// The device: source MAC of the frame.
    pub mac: MacAddr,
    /// Destination port (host byte order); for ICMP `type << 8 | code`; 0 when absent.
    pub port: u16,
    /// IP protocol number.
    pub proto: u8,
    /// `FLOW_*` bits.
    pub flags: u8,
    /// Explicit padding, always zero.
    pub _pad: [u8; 2],
}

impl FlowKey {
    /// Builds a key from its parts as whole words, so the fast path never reads back as a
    /// word what it wrote as bytes (a store-forwarding stall per word). `addr` is the
    /// 16-byte address as four native-order words.
    #[inline(always)]
    pub fn from_parts(addr: [u32; 4], mac: MacAddr, port: u16, proto: u8, flags: u8) -> Self {
        let p = port.to_ne_bytes();
        let mac = mac.0;
        let w = [
            addr[0],
            addr[1],
            addr[2],
            addr[3],
            u32::from_ne_bytes([mac[0], mac[1], mac[2], mac[3]]),
            u32::from_ne_bytes([mac[4], mac[5], p[0], p[1]]),
            u32::from_ne_bytes([proto, flags, 0, 0]),
        ];
        // SAFETY: FlowKey is repr(C), 28 bytes, valid for any bit pattern; the words are in
        // native order, so the fields read back as given.
        unsafe { core::mem::transmute::<[u32; 7], FlowKey>(w) }
    }

    /// The key as seven 32-bit words (it is 28 bytes, aligned to 4).
    #[inline(always)]
    pub fn words(&self) -> &[u32; 7] {
        // SAFETY: FlowKey is repr(C), 28 bytes, aligned to 4, with no implicit padding.
        unsafe { &*(self as *const Self as *const [u32; 7]) }
    }

    /// Equality word by word (a derived `==` may become a memcmp call the BPF target
    /// has no symbol for).
    #[inline(always)]
    pub fn same(&self, other: &Self) -> bool {
        let (a, b) = (self.words(), other.words());
        a[0] == b[0]
            && a[1] == b[1]
            && a[2] == b[2]
            && a[3] == b[3]
            && a[4] == b[4]
            && a[5] == b[5]
            && a[6] == b[6]
    }

    /// The flow-cache set of this key (its slots are `2 * set` and `2 * set + 1`): a
    /// multiplicative hash of its words.
    #[inline(always)]
    pub fn cache_set(&self) -> u32 {
        let w = self.words();
        let mut h: u32 = 0;
        let mut i = 0;
        while i < 7 {
            h = (h ^ w[i]).wrapping_mul(0x9e37_79b1).rotate_left(13);
            i += 1;
        }
        // Fold the high half in: the low bits alone put 36% of 1,024 flows that differ
        // only in their port into shared slots, against 18% with the fold (random: 22%).
        (h ^ (h >> 16)) & (maps::FLOW_CACHE_SETS - 1)
    }
}

/// One slot of the per-CPU flow cache in front of the flow map: the counts of a recent
/// flow since it took the slot. A frame whose flow holds the slot is counted here with an
/// array lookup and a key compare (no hash lookup, no clock read); when another flow takes
/// the slot, and once per poll epoch while it keeps it, these counts are added to the
/// flow's map entry. Frames counted here carry no timestamp: userspace dates them by the
/// poll that first sees them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheSlot {
    /// The flow holding the slot.
    pub key: FlowKey,
    /// 1 when a flow holds the slot.
    pub valid: u8,
    /// OR of the TCP flags of the frames counted here.
    pub tcp_flags: u8,
    /// The flow's verdict on this CPU (`policy::verdict::*`).
    pub verdict: u8,
    /// In a set's first slot: which of its two slots was used last (the other one is
    /// given to a flow that misses). Unused in the second.
    pub recent: u8,
    /// Policy generation of `verdict`.
    pub policy_gen: u32,
    /// Frames with the SYN flag among those counted here: connections the device opened
    /// (SYN) or accepted (SYN-ACK, on a serving flow).
    pub syns: u32,
    /// Frames since the flow took the slot (or since the last flush).
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The poll epoch in which the slot last went to the flow map. The first hit of a
    /// later epoch goes there again: the map's LRU sees the flow as alive, and a flow
    /// the LRU evicted meanwhile is created again instead of counted here unseen.
    pub epoch: u32,
    /// Explicit padding, always zero (a slot is one 64-byte line).
    pub _pad: u32,
}

/// What every frame checks its flow against, in one array value
/// ([`maps::POLICY_GEN`]): two writers in userspace, each moving its own field on.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Generations {
    /// The policy generation: a flow whose verdict was taken under an older one takes
    /// it again (0: none written yet).
    pub policy: u32,
    /// The poll epoch: a cached flow's first frame in a new one goes to the flow map.
    pub poll: u32,
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
    /// `policy::verdict::*` on this CPU.
    pub verdict: u8,
    /// Frames with the SYN flag on this CPU (connections opened or accepted), saturating:
    /// per-poll differences of it count connection attempts (brute force, SYN floods).
    pub syns: u16,
    /// Policy generation the verdict was taken under (0: none yet).
    pub policy_gen: u32,
    /// The poll epoch in which this CPU last logged the flow as changed
    /// ([`maps::DIRTY`]): logged once per poll however many frames come.
    pub poll_epoch: u32,
    /// Explicit padding, always zero.
    pub _pad: u32,
}

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

/// A discovery frame: an [`Event`] header (kind [`EventKind::Discovery`]) and the frame's first
/// bytes.
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

const _: () = assert!(core::mem::size_of::<FlowKey>() == 28);
const _: () = assert!(core::mem::size_of::<FlowCounters>() == 48);
const _: () = assert!(core::mem::size_of::<DeviceKey>() == 8);
const _: () = assert!(core::mem::size_of::<DeviceCounters>() == 56);
const _: () = assert!(core::mem::size_of::<EgressCounters>() == 16);
const _: () = assert!(core::mem::size_of::<DiscoveryRecord>() == 88 + 8 + DISCOVERY_BYTES);
const _: () = assert!(core::mem::size_of::<Event>() == 88);
const _: () = assert!(core::mem::size_of::<CacheSlot>() == 64);
const _: () = assert!(core::mem::size_of::<Generations>() == 8);
const _: () = assert!(maps::FLOW_CACHE_SETS.is_power_of_two());
const _: () = assert!(maps::FLOW_CACHE_SLOTS == 2 * maps::FLOW_CACHE_SETS);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: every type is repr(C), has no implicit padding (asserted sizes above) and
    // is valid for any bit pattern.
    unsafe impl aya::Pod for super::FlowKey {}
    unsafe impl aya::Pod for super::FlowCounters {}
    unsafe impl aya::Pod for super::DeviceKey {}
    unsafe impl aya::Pod for super::DeviceCounters {}
    unsafe impl aya::Pod for super::Event {}
    unsafe impl aya::Pod for super::CacheSlot {}
    unsafe impl aya::Pod for super::Generations {}
    unsafe impl aya::Pod for super::EgressCounters {}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_parts_matches_the_fields() {
        let mut addr = [0u8; 16];
        addr[10] = 0xff;
        addr[11] = 0xff;
        addr[12..].copy_from_slice(&[203, 0, 113, 99]);
        let words = [
            0,
            0,
            u32::from_ne_bytes([0, 0, 0xff, 0xff]),
            u32::from_ne_bytes([203, 0, 113, 99]),
        ];
        let k = FlowKey::from_parts(
            words,
            MacAddr([2, 0, 0x5e, 0x10, 0, 0x17]),
            443,
            6,
            FLOW_SERVING,
        );
        let expected = FlowKey {
            addr,
            mac: MacAddr([2, 0, 0x5e, 0x10, 0, 0x17]),
            port: 443,
            proto: 6,
            flags: FLOW_SERVING,
            _pad: [0; 2],
        };
        assert_eq!(k, expected);
        assert!(k.same(&expected));
        assert_eq!(k.cache_set(), expected.cache_set());
        assert!(k.cache_set() < maps::FLOW_CACHE_SETS);
    }

    /// Share of the keys `keys()` yields whose cache slot another of them also takes.
    /// The share of flows in a set that more flows want than it has slots.
    fn sharing<I: Iterator<Item = FlowKey>>(keys: impl Fn() -> I) -> f64 {
        let mut per_set = [0u16; maps::FLOW_CACHE_SETS as usize];
        for k in keys() {
            per_set[k.cache_set() as usize] += 1;
        }
        let shared = keys()
            .filter(|k| per_set[k.cache_set() as usize] > 2)
            .count();
        shared as f64 / keys().count() as f64
    }

    /// 1,024 flows that differ only in port (the end-to-end benchmark's), or only in
    /// address, spread over the slots about as a random hash would (22% sharing): the
    /// README's figure for the slot index (low bits alone: 36% for ports).
    #[test]
    fn flows_spread_over_cache_sets_like_a_random_hash() {
        let addr = |b: [u8; 4]| {
            [
                0,
                0,
                u32::from_ne_bytes([0, 0, 0xff, 0xff]),
                u32::from_ne_bytes(b),
            ]
        };
        let mac = MacAddr([2, 0, 0x5e, 0x10, 0, 0x17]);
        let ports = sharing(|| {
            (10_000..11_024u16).map(|p| FlowKey::from_parts(addr([203, 0, 113, 10]), mac, p, 17, 0))
        });
        let addrs = sharing(|| {
            (0..1024u16).map(|i| {
                let [hi, lo] = i.to_be_bytes();
                FlowKey::from_parts(addr([10, 0, hi, lo]), mac, 443, 6, 0)
            })
        });
        // At random, a flow shares its two-slot set with two or more others 9% of the
        // time (1,024 flows in 2,048 sets); a direct-mapped cache shared 22%.
        assert!(ports < 0.13, "ports: {ports}");
        assert!(addrs < 0.13, "addresses: {addrs}");
    }
}
