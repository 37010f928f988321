//! Every map of the sensor's object, and the counters every program bumps. The
//! `#[map]` macro only takes literals, so each name is checked at compile time against
//! the constant in `sensor_common::maps` that userspace opens it by.
//!
//! Kernel: legacy map definitions (section `maps`), created by aya at load with the sizes
//! sensor-user sets for KW_FLOWS, KW_DEVICES, KW_EGRESS, KW_EVENTS and KW_DIRTY. Types: per-CPU
//! LRU hash (4.10) for flows, devices and egress, flags 0, so one LRU list for all CPUs
//! (no BPF_F_NO_COMMON_LRU); per-CPU array (4.6) for the flow cache, stats, capture clock
//! and change log; ring buffer (5.8), its size a power of two and a multiple of the page
//! size; hash and array (3.19); LPM trie (4.11, BPF_F_NO_PREALLOC added by aya-ebpf).
//! KW_DIRTY_MASK, KW_REPLAY and KW_PAYLOADS are read-only globals in `.rodata` (global data, 5.2),
//! written and frozen by aya at load. Minimum: 5.8 (ring buffer).

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruPerCpuHashMap, PerCpuArray, ProgramArray, RingBuf},
};
use sensor_common::{
    CacheSlot, DeviceCounters, DeviceKey, EgressCounters, FlowCounters, FlowKey, Generations, maps,
    policy::{AllowData, AllowEntry, DevicePolicy, IntelData, IntelEntry},
    stats, str_eq,
};

const _: () = assert!(str_eq(maps::FLOWS, "KW_FLOWS"));
const _: () = assert!(str_eq(maps::FLOW_CACHE, "KW_FLOW_CACHE"));
const _: () = assert!(str_eq(maps::DEVICES, "KW_DEVICES"));
const _: () = assert!(str_eq(maps::STATS, "KW_STATS"));
const _: () = assert!(str_eq(maps::EVENTS, "KW_EVENTS"));
const _: () = assert!(str_eq(maps::CLOCK, "KW_CLOCK"));
const _: () = assert!(str_eq(maps::GLOBAL_REPLAY, "KW_REPLAY"));
const _: () = assert!(str_eq(maps::GLOBAL_PAYLOADS, "KW_PAYLOADS"));
const _: () = assert!(str_eq(maps::PAYLOAD_PROG, "KW_PAYLOAD_PROG"));
const _: () = assert!(str_eq(maps::DEVICE_POLICY, "KW_DEVICE_POLICY"));
const _: () = assert!(str_eq(maps::ALLOW, "KW_ALLOW"));
const _: () = assert!(str_eq(maps::POLICY_GEN, "KW_POLICY_GEN"));
const _: () = assert!(str_eq(maps::INTEL, "KW_INTEL"));
const _: () = assert!(str_eq(maps::DIRTY, "KW_DIRTY"));
const _: () = assert!(str_eq(maps::GLOBAL_DIRTY_MASK, "KW_DIRTY_MASK"));
const _: () = assert!(maps::DEFAULT_DIRTY_SLOTS.is_power_of_two());

#[map(name = "KW_FLOWS")]
pub(crate) static FLOWS: LruPerCpuHashMap<FlowKey, FlowCounters> =
    LruPerCpuHashMap::with_max_entries(maps::DEFAULT_MAX_FLOWS, 0);

#[map(name = "KW_FLOW_CACHE")]
pub(crate) static FLOW_CACHE: PerCpuArray<CacheSlot> =
    PerCpuArray::with_max_entries(maps::FLOW_CACHE_SLOTS, 0);

#[map(name = "KW_DEVICES")]
pub(crate) static DEVICES: LruPerCpuHashMap<DeviceKey, DeviceCounters> =
    LruPerCpuHashMap::with_max_entries(maps::DEFAULT_MAX_DEVICES, 0);

#[map(name = "KW_STATS")]
pub(crate) static STATS: PerCpuArray<Stats> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "KW_EVENTS")]
pub(crate) static EVENTS: RingBuf = RingBuf::with_byte_size(maps::DEFAULT_RING_BYTES, 0);

#[map(name = "KW_CLOCK")]
pub(crate) static CLOCK: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "KW_DEVICE_POLICY")]
pub(crate) static DEVICE_POLICY: HashMap<DeviceKey, DevicePolicy> =
    HashMap::with_max_entries(maps::DEFAULT_MAX_POLICY_DEVICES, 0);

#[map(name = "KW_ALLOW")]
pub(crate) static ALLOW: LpmTrie<AllowData, AllowEntry> =
    LpmTrie::with_max_entries(maps::DEFAULT_MAX_ALLOW, 0);

#[map(name = "KW_INTEL")]
pub(crate) static INTEL: LpmTrie<IntelData, IntelEntry> =
    LpmTrie::with_max_entries(maps::DEFAULT_MAX_INTEL, 0);

#[map(name = "KW_POLICY_GEN")]
pub(crate) static POLICY_GEN: Array<Generations> = Array::with_max_entries(1, 0);

#[map(name = "KW_DIRTY")]
pub(crate) static DIRTY: PerCpuArray<FlowKey> =
    PerCpuArray::with_max_entries(maps::DEFAULT_DIRTY_SLOTS, 0);

/// The change log's size minus one; the loader sets it with the log's size.
#[unsafe(no_mangle)]
pub(crate) static KW_DIRTY_MASK: u32 = maps::DEFAULT_DIRTY_SLOTS - 1;

/// Set to 1 by the loader when replaying a capture; read-only, so the verifier prunes the
/// branch that isn't taken.
#[unsafe(no_mangle)]
pub(crate) static KW_REPLAY: u8 = 0;

/// The first-payload program (`payload::kw_lan_payload`), which ingress tail-calls.
#[map(name = "KW_PAYLOAD_PROG")]
pub(crate) static PAYLOAD_PROG: ProgramArray = ProgramArray::with_max_entries(1, 0);

/// Set to 0 by the loader when first-payload sampling is off (`payload::sampling`).
#[unsafe(no_mangle)]
pub(crate) static KW_PAYLOADS: u8 = 1;

const _: () = assert!(str_eq(maps::EGRESS, "KW_EGRESS"));

/// What the gateway sends each device: downstream volume.
#[map(name = "KW_EGRESS")]
pub(crate) static EGRESS: LruPerCpuHashMap<DeviceKey, EgressCounters> =
    LruPerCpuHashMap::with_max_entries(maps::DEFAULT_MAX_DEVICES, 0);

/// The errno a `BPF_NOEXIST` insert returns when another CPU created the entry first.
pub(crate) const EEXIST: i32 = 17;

/// This CPU's counters, looked up once per frame.
pub(crate) type Stats = [u64; stats::COUNT as usize];

/// Adds `n` to counter `idx` (an index from `sensor_common::stats`).
#[inline(always)]
pub(crate) fn bump(st: &mut Stats, idx: u32, n: u64) {
    if let Some(c) = st.get_mut(idx as usize) {
        *c += n;
    }
}
