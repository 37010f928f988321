//! Map, program and global names, and default map sizes: the one place both sides read them.

/// Per-CPU LRU hash: `FlowKey` -> `FlowCounters`.
pub const FLOWS: &str = "KW_FLOWS";
/// Per-CPU LRU hash: `DeviceKey` -> `DeviceCounters`.
pub const DEVICES: &str = "KW_DEVICES";
/// Per-CPU array with one `[u64; stats::COUNT]`, indexed by [`crate::stats`].
pub const STATS: &str = "KW_STATS";
/// Per-CPU array of [`crate::CacheSlot`]: the flow cache in front of [`FLOWS`].
pub const FLOW_CACHE: &str = "KW_FLOW_CACHE";
/// Ring buffer of [`crate::Event`].
pub const EVENTS: &str = "KW_EVENTS";
/// Per-CPU array with one `u64`: the capture clock (ns) when replaying.
pub const CLOCK: &str = "KW_CLOCK";

/// Hash: `DeviceKey` -> `policy::DevicePolicy` (devices with a policy).
pub const DEVICE_POLICY: &str = "KW_DEVICE_POLICY";
/// LPM trie: `policy::AllowData` (group, destination prefix) -> `policy::AllowEntry`.
pub const ALLOW: &str = "KW_ALLOW";
/// Array with one [`crate::Generations`]: the policy generation (a flow whose verdict is
/// older is evaluated again) and the poll epoch (moved on by userspace at each poll), in
/// one value so the per-frame path reads both with one lookup.
pub const POLICY_GEN: &str = "KW_POLICY_GEN";

/// LPM trie: `policy::IntelData` (destination prefix) -> `policy::IntelEntry`: threat
/// intelligence and canaries.
pub const INTEL: &str = "KW_INTEL";
/// Default intel trie size (entries; memory is used only for entries present).
pub const DEFAULT_MAX_INTEL: u32 = 1 << 21;

/// Per-CPU LRU hash: `DeviceKey` (destination MAC) -> `EgressCounters`: what the gateway
/// sends each device.
pub const EGRESS: &str = "KW_EGRESS";

/// Per-CPU array of `FlowKey`, a ring per CPU: the flows whose map entry changed, each
/// logged once per poll epoch, so a poll reads what changed instead of the whole map.
/// The write position is [`crate::stats::DIRTY_LOGGED`].
pub const DIRTY: &str = "KW_DIRTY";
/// Read-only global: the change log's size minus one (a power of two), set at load.
pub const GLOBAL_DIRTY_MASK: &str = "KW_DIRTY_MASK";
/// The change log's size per CPU for the default flow table; the loader sets it from
/// the configured one.
pub const DEFAULT_DIRTY_SLOTS: u32 = dirty_slots(DEFAULT_MAX_FLOWS);

/// Change-log slots per CPU for a flow table of `max_flows`: a sixteenth of it, between
/// 4,096 and 65,536, a power of two. A poll in which more flows changed on one CPU
/// reads the whole map instead.
pub const fn dirty_slots(max_flows: u32) -> u32 {
    let n = max_flows / 16;
    let n = if n < 4096 {
        4096
    } else if n > 65_536 {
        65_536
    } else {
        n
    };
    n.next_power_of_two()
}

/// Every map, for checks that the object and the constants agree.
pub const ALL: [&str; 13] = [
    EGRESS,
    INTEL,
    FLOWS,
    DEVICES,
    STATS,
    EVENTS,
    CLOCK,
    FLOW_CACHE,
    DEVICE_POLICY,
    ALLOW,
    POLICY_GEN,
    DIRTY,
    PAYLOAD_PROG,
];

/// The XDP program on LAN ingress.
pub const XDP_PROGRAM: &str = "kw_lan_ingress";

/// The XDP program the ingress program tail-calls to copy a flow's first payload: a
/// program of its own, so the verifier walks the copy once, not once per way through
/// the ingress program.
pub const PAYLOAD_PROGRAM: &str = "kw_lan_payload";

/// Program array (one entry, [`PAYLOAD_PROGRAM`]) the ingress program tail-calls.
pub const PAYLOAD_PROG: &str = "KW_PAYLOAD_PROG";

/// The TC program on LAN egress: DNS answers the gateway sends devices.
pub const EGRESS_PROGRAM: &str = "kw_lan_egress";

/// An empty XDP program in the same object: the benchmarks' baseline.
pub const BENCH_PASS_PROGRAM: &str = "kw_bench_pass";

/// The parser alone, in the same object: the benchmarks' parse-only step.
pub const BENCH_PARSE_PROGRAM: &str = "kw_bench_parse";

/// The parser, a flow key and a flow-map insert, in the benchmark object: the new-flow
/// breakdown's insert step.
pub const BENCH_INSERT_PROGRAM: &str = "kw_bench_insert";

/// The benchmark object's own flow map (the insert and lookup steps').
pub const BENCH_FLOWS: &str = "KW_BENCH_FLOWS";

/// The parser, a flow key and a lookup that finds the flow, in the benchmark object: the
/// known-flow breakdown's lookup step.
pub const BENCH_LOOKUP_PROGRAM: &str = "kw_bench_lookup";

/// The insert step into a map with one value per flow (not per CPU).
pub const BENCH_SHARED_INSERT_PROGRAM: &str = "kw_bench_shared_insert";

/// The lookup step in a map with one value per flow, counts added atomically.
pub const BENCH_SHARED_LOOKUP_PROGRAM: &str = "kw_bench_shared_lookup";

/// The benchmark object's flow map with one value per flow.
pub const BENCH_SHARED_FLOWS: &str = "KW_BENCH_SHARED";

/// The end-to-end benchmark's traffic source (live frames, XDP_TX to a veth peer).
pub const BENCH_GEN_PROGRAM: &str = "kw_bench_gen";

/// Distinct flows the traffic source spreads its frames over (destination ports).
pub const BENCH_GEN_FLOWS: u32 = 1024;

/// Read-only global: 1 when replaying a capture (time comes from [`CLOCK`]).
pub const GLOBAL_REPLAY: &str = "KW_REPLAY";

/// Read-only global: 0 when first-payload sampling is off (`payload_sampling = false`).
pub const GLOBAL_PAYLOADS: &str = "KW_PAYLOADS";

/// Default flow-table size: a busy home or branch network (a few hundred devices with a
/// few hundred destinations each) fits; about 9 MB of kernel memory on 2 CPUs.
pub const DEFAULT_MAX_FLOWS: u32 = 65_536;
/// Flow-cache slots per CPU (64 bytes each): two-way sets, so two busy flows whose keys
/// hash alike both stay cached.
pub const FLOW_CACHE_SLOTS: u32 = 2 * FLOW_CACHE_SETS;
/// Flow-cache sets per CPU.
pub const FLOW_CACHE_SETS: u32 = 2048;
/// Default device-table size.
pub const DEFAULT_MAX_DEVICES: u32 = 4_096;
/// Default device-policy table size.
pub const DEFAULT_MAX_POLICY_DEVICES: u32 = 4_096;
/// Default allow-list size (entries over all groups).
pub const DEFAULT_MAX_ALLOW: u32 = 65_536;
/// Default ring-buffer size in bytes (power of two, multiple of the page size).
pub const DEFAULT_RING_BYTES: u32 = 1 << 20;

/// Compile-time string equality, so the eBPF side can check its literal map names
/// against the constants in [`maps`](crate::maps) (the `#[map]` macro only takes literals).
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
