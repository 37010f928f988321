//! A flow in the kernel: its key (a destination profile), its per-CPU counters in the
//! flow map, and the per-CPU cache slot in front of that map.

use crate::{MacAddr, maps};

/// Flow flag: the device is answering (it sent from a well-known port to a client's
/// ephemeral port), so the flow is keyed by the device's service port.
pub const FLOW_SERVING: u8 = 1;

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
    /// 1 once the flow's first payload on this CPU was copied (or skipped): the known-flow
    /// path pays one byte compare for sampling, and nothing after.
    pub sampled: u8,
    /// Explicit padding, always zero (a slot is one 64-byte line).
    pub _pad: [u8; 3],
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
    /// 1 once this CPU copied (or skipped) the flow's first payload; also 1 from the
    /// start when sampling is off.
    pub sampled: u8,
    /// Explicit padding, always zero.
    pub _pad: [u8; 3],
}

const _: () = assert!(core::mem::size_of::<FlowKey>() == 28);
const _: () = assert!(core::mem::size_of::<FlowCounters>() == 48);
const _: () = assert!(core::mem::size_of::<CacheSlot>() == 64);
const _: () = assert!(maps::FLOW_CACHE_SETS.is_power_of_two());
const _: () = assert!(maps::FLOW_CACHE_SLOTS == 2 * maps::FLOW_CACHE_SETS);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: every type is repr(C), has no implicit padding (asserted sizes above) and
    // is valid for any bit pattern.
    unsafe impl aya::Pod for super::FlowKey {}
    unsafe impl aya::Pod for super::FlowCounters {}
    unsafe impl aya::Pod for super::CacheSlot {}
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
