//! kettlewatch's LAN-ingress XDP program: parse, count, and report new flows and devices.
//!
//! The fast path (a flow seen recently on this CPU) is an array lookup in the per-CPU flow
//! cache and a key compare, counters updated in place, no clock read. A cache miss goes to the flow map
//! (a per-CPU LRU hash); creating entries, the device table and events happen once per
//! new flow, or for the rare non-IP frame.
#![no_std]
#![no_main]

mod egress;
mod parse;

use aya_ebpf::{
    bindings::{BPF_NOEXIST, xdp_action},
    helpers::{
        bpf_ktime_get_coarse_ns, bpf_ktime_get_ns, bpf_xdp_get_buff_len, bpf_xdp_load_bytes,
    },
    macros::{map, xdp},
    maps::{Array, HashMap, LpmTrie, LruPerCpuHashMap, PerCpuArray, RingBuf, lpm_trie::Key},
    programs::XdpContext,
};
use sensor_common::{
    CacheSlot, DISCOVERY_BURST, DISCOVERY_BYTES, DISCOVERY_RATE, DeviceCounters, DeviceKey,
    DiscoveryRecord, EVENT_DISCOVERY, EVENT_NEW_DEVICE, EVENT_NEW_FLOW, Event, FLOW_SERVING,
    FlowCounters, FlowKey, discovery, maps,
    policy::{
        AllowData, AllowEntry, DevicePolicy, GROUP_BITS, IntelData, IntelEntry, intel_flags, mode,
        verdict,
    },
    proto, stats, str_eq,
};

// The #[map] macro only takes literals: check them against the shared constants.
const _: () = assert!(str_eq(maps::FLOWS, "KW_FLOWS"));
const _: () = assert!(str_eq(maps::FLOW_CACHE, "KW_FLOW_CACHE"));
const _: () = assert!(str_eq(maps::DEVICES, "KW_DEVICES"));
const _: () = assert!(str_eq(maps::STATS, "KW_STATS"));
const _: () = assert!(str_eq(maps::EVENTS, "KW_EVENTS"));
const _: () = assert!(str_eq(maps::CLOCK, "KW_CLOCK"));
const _: () = assert!(str_eq(maps::GLOBAL_REPLAY, "KW_REPLAY"));
const _: () = assert!(str_eq(maps::DEVICE_POLICY, "KW_DEVICE_POLICY"));
const _: () = assert!(str_eq(maps::ALLOW, "KW_ALLOW"));
const _: () = assert!(str_eq(maps::POLICY_GEN, "KW_POLICY_GEN"));
const _: () = assert!(str_eq(maps::INTEL, "KW_INTEL"));

#[map(name = "KW_FLOWS")]
static FLOWS: LruPerCpuHashMap<FlowKey, FlowCounters> =
    LruPerCpuHashMap::with_max_entries(maps::DEFAULT_MAX_FLOWS, 0);

#[map(name = "KW_FLOW_CACHE")]
static FLOW_CACHE: PerCpuArray<CacheSlot> =
    PerCpuArray::with_max_entries(maps::FLOW_CACHE_SLOTS, 0);

#[map(name = "KW_DEVICES")]
static DEVICES: LruPerCpuHashMap<DeviceKey, DeviceCounters> =
    LruPerCpuHashMap::with_max_entries(maps::DEFAULT_MAX_DEVICES, 0);

#[map(name = "KW_STATS")]
pub(crate) static STATS: PerCpuArray<Stats> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "KW_EVENTS")]
pub(crate) static EVENTS: RingBuf = RingBuf::with_byte_size(maps::DEFAULT_RING_BYTES, 0);

#[map(name = "KW_CLOCK")]
static CLOCK: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "KW_DEVICE_POLICY")]
static DEVICE_POLICY: HashMap<DeviceKey, DevicePolicy> =
    HashMap::with_max_entries(maps::DEFAULT_MAX_POLICY_DEVICES, 0);

#[map(name = "KW_ALLOW")]
static ALLOW: LpmTrie<AllowData, AllowEntry> =
    LpmTrie::with_max_entries(maps::DEFAULT_MAX_ALLOW, 0);

#[map(name = "KW_INTEL")]
static INTEL: LpmTrie<IntelData, IntelEntry> =
    LpmTrie::with_max_entries(maps::DEFAULT_MAX_INTEL, 0);

#[map(name = "KW_POLICY_GEN")]
static POLICY_GEN: Array<u32> = Array::with_max_entries(1, 0);

/// Set to 1 by the loader when replaying a capture; read-only, so the verifier prunes the
/// branch that isn't taken.
#[unsafe(no_mangle)]
static KW_REPLAY: u8 = 0;

const EEXIST: i32 = 17;

/// This CPU's counters, looked up once per frame.
pub(crate) type Stats = [u64; stats::COUNT as usize];

#[inline(always)]
fn bump(st: &mut Stats, idx: u32, n: u64) {
    if let Some(c) = st.get_mut(idx as usize) {
        *c += n;
    }
}

// Multi-buffer aware: attaches where frames exceed a page (jumbo MTU, GRO) and counts
// their full length; the parser only ever reads the linear head.
#[xdp(frags)]
pub fn kw_lan_ingress(ctx: XdpContext) -> u32 {
    if let Some(st) = STATS.get_ptr_mut(0) {
        // SAFETY: per-CPU value of this CPU; nothing else writes it while we run.
        let st = unsafe { &mut *st };
        match observe(&ctx, st) {
            verdict::BLOCKED => {
                st[stats::DROPPED_POLICY as usize] += 1;
                return xdp_action::XDP_DROP;
            }
            verdict::INTEL_BLOCKED => {
                st[stats::DROPPED_INTEL as usize] += 1;
                return xdp_action::XDP_DROP;
            }
            _ => {}
        }
    }
    // Only an enforced device's unexpected flow is ever dropped.
    xdp_action::XDP_PASS
}

/// The benchmark's baseline: does nothing. Never attached by the sensor.
#[xdp(frags)]
pub fn kw_bench_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

/// The end-to-end benchmark's traffic source, run with BPF_PROG_TEST_RUN in live-frames
/// mode on the sending veth: gives each IPv4/UDP frame one of
/// [`maps::BENCH_GEN_FLOWS`] destination ports at random (a flow each, for the sensor and
/// for 5-tuple counters) and transmits it to the peer, where the program under test
/// counts it. Never attached.
#[xdp]
pub fn kw_bench_gen(ctx: XdpContext) -> u32 {
    // Ethernet (14) + IPv4 without options (20) + UDP source port (2).
    const DPORT: usize = 36;
    let (data, end) = (ctx.data(), ctx.data_end());
    if data + DPORT + 2 > end {
        return xdp_action::XDP_ABORTED;
    }
    // SAFETY: bounds checked above.
    let rnd = unsafe { aya_ebpf::helpers::bpf_get_prandom_u32() };
    let port = 10_000 + (rnd % maps::BENCH_GEN_FLOWS) as u16;
    // SAFETY: two bytes inside the frame (checked above).
    unsafe { core::ptr::write_unaligned((data + DPORT) as *mut [u8; 2], port.to_be_bytes()) };
    xdp_action::XDP_TX
}

/// The benchmark's parse-only step: the sensor's parser and nothing else (no maps), so
/// the cost of parsing can be told from the cost of counting. Never attached.
#[xdp(frags)]
pub fn kw_bench_parse(ctx: XdpContext) -> u32 {
    if let Ok(l2) = parse::l2(&ctx) {
        let l3 = match l2.ethertype {
            parse::ETH_P_IP => parse::ipv4(&ctx, l2.l3),
            parse::ETH_P_IPV6 => parse::ipv6(&ctx, l2.l3),
            _ => return xdp_action::XDP_PASS,
        };
        // Keep the result alive so the parse is not optimized away.
        if let Ok(l3) = l3
            && l3.dst_port == 0xffff
            && l3.proto == 0xff
        {
            return xdp_action::XDP_ABORTED;
        }
    }
    xdp_action::XDP_PASS
}

/// Counts a frame; returns its flow's verdict (`UNSET` for frames in no flow).
#[inline(always)]
fn observe(ctx: &XdpContext, st: &mut Stats) -> u8 {
    // SAFETY: the helper only reads the context it is given.
    let len = unsafe { bpf_xdp_get_buff_len(ctx.ctx) };
    st[stats::FRAMES as usize] += 1;
    st[stats::BYTES as usize] += len;

    let l2 = match parse::l2(ctx) {
        Ok(l2) => l2,
        Err(reason) => {
            bump(st, reason, 1);
            return verdict::UNSET;
        }
    };
    let l3 = match l2.ethertype {
        parse::ETH_P_IP => parse::ipv4(ctx, l2.l3),
        parse::ETH_P_IPV6 => parse::ipv6(ctx, l2.l3),
        _ => {
            st[stats::NON_IP as usize] += 1;
            count_device(st, &l2, Some(len), now_coarse());
            if discovery::non_ip(l2.ethertype) {
                discover(ctx, st, &l2, [0; 4], 0, 0, len);
            }
            return verdict::UNSET;
        }
    };
    let l3 = match l3 {
        Ok(l3) => l3,
        Err(reason) => {
            bump(st, reason, 1);
            return verdict::UNSET;
        }
    };
    if l2.ethertype == parse::ETH_P_IP {
        st[stats::IPV4 as usize] += 1;
    } else {
        st[stats::IPV6 as usize] += 1;
    }
    if l3.fragment {
        st[stats::FRAGMENTS as usize] += 1;
    }
    let v = count_flow(st, &l2, &l3, len);
    let copy = discovery::ip(l3.proto, l3.src_port, l3.dst_port)
        || (l3.proto == proto::TCP
            && l3.dst_port == discovery::MQTT
            && parse::byte_at(ctx, l3.payload)
                .is_some_and(|b| discovery::tcp_connect(l3.dst_port, b)));
    if copy {
        discover(ctx, st, &l2, l3.src, l3.src_port, l3.dst_port, len);
    }
    v
}

/// Copies a discovery frame to userspace, within its device's rate. `src` is the source
/// address as in [`parse::L3`] (zero for non-IP frames).
#[inline(always)]
fn discover(
    ctx: &XdpContext,
    st: &mut Stats,
    l2: &parse::L2,
    src: [u32; 4],
    src_port: u16,
    dst_port: u16,
    len: u64,
) {
    let key = DeviceKey {
        mac: l2.src_mac,
        _pad: [0; 2],
    };
    let Some(dev) = DEVICES.get_ptr_mut(&key) else {
        st[stats::DISCOVERY_RATE_LIMITED as usize] += 1;
        return;
    };
    // SAFETY: per-CPU value of this CPU.
    let dev = unsafe { &mut *dev };
    let now = now_coarse();
    let earned = now.saturating_sub(dev.discovery_refill_ns) / (1_000_000_000 / DISCOVERY_RATE);
    if earned > 0 {
        dev.discovery_tokens = (dev.discovery_tokens + earned).min(DISCOVERY_BURST);
        dev.discovery_refill_ns = now;
    }
    if dev.discovery_tokens == 0 {
        st[stats::DISCOVERY_RATE_LIMITED as usize] += 1;
        return;
    }
    dev.discovery_tokens -= 1;
    let Some(mut slot) = EVENTS.reserve::<DiscoveryRecord>(0) else {
        st[stats::RINGBUF_FULL as usize] += 1;
        return;
    };
    let rec = slot.as_mut_ptr();
    let n = if len > DISCOVERY_BYTES as u64 {
        DISCOVERY_BYTES as u32
    } else {
        len as u32
    };
    // A frame is never empty, but the verifier must see that the copy length is not.
    if n == 0 {
        slot.discard(0);
        return;
    }
    // SAFETY: `rec` is the reserved record; `n` is at most the size of `data`.
    let loaded = unsafe {
        (*rec).head = Event {
            ts_ns: now_precise(),
            key: FlowKey {
                mac: l2.src_mac,
                ..FlowKey::default()
            },
            // SAFETY: four native-order words are the address's 16 bytes.
            src_addr: core::mem::transmute::<[u32; 4], [u8; 16]>(src),
            src_port,
            dst_mac: l2.dst_mac,
            kind: EVENT_DISCOVERY,
            tcp_flags: 0,
            dst_port,
            frame_len: len as u32,
            ethertype: l2.ethertype,
            vlan: l2.vlan,
            ..Event::default()
        };
        (*rec).cap_len = n;
        (*rec)._pad = 0;
        bpf_xdp_load_bytes(ctx.ctx, 0, (*rec).data.as_mut_ptr().cast(), n)
    };
    if loaded == 0 {
        st[stats::DISCOVERY_COPIED as usize] += 1;
        slot.submit(0);
    } else {
        slot.discard(0);
    }
}

/// The flow key: by destination, except when the device is answering from a well-known
/// port to an ephemeral one: then by the device's service port, so that every client is
/// not a new destination.
#[inline(always)]
fn flow_key(l2: &parse::L2, l3: &parse::L3) -> FlowKey {
    let serving = (l3.proto == proto::TCP || l3.proto == proto::UDP)
        && l3.src_port < 1024
        && l3.dst_port >= 1024;
    FlowKey::from_parts(
        l3.dst,
        l2.src_mac,
        if serving { l3.src_port } else { l3.dst_port },
        l3.proto,
        if serving { FLOW_SERVING } else { 0 },
    )
}

/// Counts a frame in the flow cache when its flow holds the slot; otherwise hands the
/// slot's counts to the flow map, counts the frame there (with the time), and gives the
/// slot to its flow. Returns the flow's verdict, taken again when the policy generation
/// moved on, or while it is blocked (so an address allowed meanwhile gets through).
#[inline(always)]
fn count_flow(st: &mut Stats, l2: &parse::L2, l3: &parse::L3, len: u64) -> u8 {
    let key = flow_key(l2, l3);
    let generation = policy_gen();
    let Some(slot) = FLOW_CACHE.get_ptr_mut(key.cache_slot()) else {
        return count_in_map(st, l2, l3, &key, len, now_coarse(), generation).0;
    };
    // SAFETY: per-CPU value of this CPU.
    let slot = unsafe { &mut *slot };
    if slot.valid != 0 && slot.key.same(&key) {
        slot.packets += 1;
        slot.bytes += len;
        slot.tcp_flags |= l3.tcp_flags;
        if slot.policy_gen != generation || verdict::dropped(slot.verdict) {
            let v = reevaluate(st, &key, slot.verdict);
            slot.verdict = v;
            slot.policy_gen = generation;
        }
        return slot.verdict;
    }
    if slot.valid != 0 && slot.packets != 0 {
        flush(st, slot);
    }
    let (v, v_gen) = count_in_map(st, l2, l3, &key, len, now_coarse(), generation);
    slot.key = key;
    slot.valid = 1;
    slot.packets = 0;
    slot.bytes = 0;
    slot.tcp_flags = 0;
    slot.verdict = v;
    slot.policy_gen = v_gen;
    v
}

/// The current policy generation.
#[inline(always)]
fn policy_gen() -> u32 {
    POLICY_GEN.get(0).copied().unwrap_or(0)
}

/// The verdict for a flow: threat intelligence and canaries first (they outrank any
/// policy), then the device's policy. Returns the intel entry's id too (0: none).
#[inline(always)]
fn evaluate_full(key: &FlowKey) -> (u8, u32) {
    let policy = evaluate(key);
    let k = Key::new(128, IntelData { addr: key.addr });
    let Some(e) = INTEL.get(&k) else {
        return (policy, 0);
    };
    let intel = e.flags & intel_flags::INTEL != 0;
    let blocked = policy == verdict::BLOCKED || (intel && e.flags & intel_flags::BLOCK != 0);
    let v = match (intel, blocked) {
        (true, true) => verdict::INTEL_BLOCKED,
        (true, false) => verdict::INTEL,
        (false, true) => verdict::BLOCKED,
        (false, false) => verdict::CANARY,
    };
    (v, e.id)
}

/// The policy verdict for a flow: the device's policy mode, then the longest allow-list
/// prefix for its group and the flow's destination, then that entry's ports.
#[inline(always)]
fn evaluate(key: &FlowKey) -> u8 {
    let dk = DeviceKey {
        mac: key.mac,
        _pad: [0; 2],
    };
    // SAFETY: a plain lookup; the value is only read.
    let Some(p) = (unsafe { DEVICE_POLICY.get(&dk) }) else {
        return verdict::NO_POLICY;
    };
    if p.mode == mode::LEARN {
        return verdict::LEARNING;
    }
    let k = Key::new(
        GROUP_BITS + 128,
        AllowData {
            group: p.group.to_be_bytes(),
            addr: key.addr,
        },
    );
    let v = match ALLOW.get(&k) {
        None => verdict::UNEXPECTED,
        Some(e) if e.allows(key.port, key.proto) => verdict::ALLOWED,
        Some(_) => verdict::NEW_PORT,
    };
    if v != verdict::ALLOWED && p.mode == mode::ENFORCE {
        verdict::BLOCKED
    } else {
        v
    }
}

/// Counts a verdict taken for a new flow, or a changed one.
#[inline(always)]
fn count_verdict(st: &mut Stats, v: u8) {
    let idx = match v {
        verdict::ALLOWED => stats::VERDICT_ALLOWED,
        verdict::NO_POLICY => stats::VERDICT_NO_POLICY,
        verdict::LEARNING => stats::VERDICT_LEARNING,
        verdict::UNEXPECTED => stats::VERDICT_UNEXPECTED,
        verdict::NEW_PORT => stats::VERDICT_NEW_PORT,
        verdict::INTEL | verdict::INTEL_BLOCKED => stats::VERDICT_INTEL,
        verdict::CANARY => stats::VERDICT_CANARY,
        _ => stats::VERDICT_BLOCKED,
    };
    bump(st, idx, 1);
}

/// Takes a known flow's verdict again; counts it when it changed.
#[inline(always)]
fn reevaluate(st: &mut Stats, key: &FlowKey, before: u8) -> u8 {
    let v = evaluate_full(key).0;
    if v != before {
        count_verdict(st, v);
    }
    v
}

/// Adds a cache slot's counts to its flow's entry in the flow map (this CPU's value).
#[inline(always)]
fn flush(st: &mut Stats, slot: &CacheSlot) {
    match FLOWS.get_ptr_mut(&slot.key) {
        Some(c) => {
            // SAFETY: per-CPU value of this CPU.
            let c = unsafe { &mut *c };
            c.packets += slot.packets;
            c.bytes += slot.bytes;
            c.tcp_flags |= slot.tcp_flags;
            c.verdict = slot.verdict;
            c.policy_gen = slot.policy_gen;
        }
        // The LRU dropped the flow while its frames waited here.
        None => st[stats::CACHE_FLUSH_LOST as usize] += slot.packets,
    }
}

/// Counts a frame in the flow map, creating the flow (with its verdict, and an event)
/// when it is new. Returns the verdict and the generation it was taken under.
#[inline(always)]
fn count_in_map(
    st: &mut Stats,
    l2: &parse::L2,
    l3: &parse::L3,
    key: &FlowKey,
    len: u64,
    now: u64,
    generation: u32,
) -> (u8, u32) {
    if let Some(c) = FLOWS.get_ptr_mut(key) {
        // SAFETY: per-CPU value of this CPU; nothing else writes it concurrently.
        let c = unsafe { &mut *c };
        bump_flow(c, len, l3.tcp_flags, now);
        if c.policy_gen != generation || c.verdict == verdict::UNSET || verdict::dropped(c.verdict)
        {
            c.verdict = reevaluate(st, key, c.verdict);
            c.policy_gen = generation;
        }
        return (c.verdict, c.policy_gen);
    }
    let (v, intel_id) = evaluate_full(key);
    let first = FlowCounters {
        packets: 1,
        bytes: len,
        first_seen_ns: now,
        last_seen_ns: now,
        tcp_flags: l3.tcp_flags,
        verdict: v,
        _pad: [0; 2],
        policy_gen: generation,
    };
    match FLOWS.insert(key, &first, BPF_NOEXIST as u64) {
        Ok(()) => {
            st[stats::NEW_FLOWS as usize] += 1;
            count_verdict(st, v);
            // A device's IP traffic is the sum of its flows (userspace adds them up), so
            // the device map is only touched here, once per new flow, not per frame.
            count_device(st, l2, None, now);
            emit(
                st,
                Event {
                    ts_ns: now_precise(),
                    key: *key,
                    // SAFETY: four native-order words are the address's 16 bytes.
                    src_addr: unsafe { core::mem::transmute::<[u32; 4], [u8; 16]>(l3.src) },
                    src_port: l3.src_port,
                    dst_mac: l2.dst_mac,
                    kind: EVENT_NEW_FLOW,
                    tcp_flags: l3.tcp_flags,
                    dst_port: l3.dst_port,
                    frame_len: len as u32,
                    ethertype: l2.ethertype,
                    vlan: l2.vlan,
                    verdict: v,
                    _pad: [0; 3],
                    policy_gen: generation,
                    intel_id,
                    _pad2: 0,
                },
            );
        }
        // Another CPU created it between our lookup and insert: count on our slot.
        Err(e) if e == -EEXIST => match FLOWS.get_ptr_mut(key) {
            Some(c) => {
                // SAFETY: as above.
                let c = unsafe { &mut *c };
                bump_flow(c, len, l3.tcp_flags, now);
                c.verdict = v;
                c.policy_gen = generation;
            }
            // ... and the LRU already evicted it again: the frame is lost to the map.
            None => st[stats::FLOW_INSERT_FAILED as usize] += 1,
        },
        Err(_) => st[stats::FLOW_INSERT_FAILED as usize] += 1,
    }
    (v, generation)
}

#[inline(always)]
fn bump_flow(c: &mut FlowCounters, len: u64, tcp_flags: u8, now: u64) {
    c.packets += 1;
    c.bytes += len;
    c.tcp_flags |= tcp_flags;
    // A slot another CPU created starts at zero.
    if c.first_seen_ns == 0 {
        c.first_seen_ns = now;
    }
    c.last_seen_ns = now;
}

/// Records a device's non-IP frame (`Some(len)`) or a flow it opened (`None`).
#[inline(always)]
fn count_device(st: &mut Stats, l2: &parse::L2, non_ip_len: Option<u64>, now: u64) {
    let key = DeviceKey {
        mac: l2.src_mac,
        _pad: [0; 2],
    };
    let (packets, bytes, flows) = match non_ip_len {
        Some(len) => (1, len, 0),
        None => (0, 0, 1),
    };
    let add = |c: &mut DeviceCounters| {
        c.non_ip_packets += packets;
        c.non_ip_bytes += bytes;
        c.new_flows += flows;
        if c.first_seen_ns == 0 {
            c.first_seen_ns = now;
        }
        c.last_seen_ns = now;
    };
    if let Some(c) = DEVICES.get_ptr_mut(&key) {
        // SAFETY: per-CPU value of this CPU.
        add(unsafe { &mut *c });
        return;
    }
    let first = DeviceCounters {
        non_ip_packets: packets,
        non_ip_bytes: bytes,
        new_flows: flows,
        first_seen_ns: now,
        last_seen_ns: now,
        discovery_tokens: DISCOVERY_BURST,
        discovery_refill_ns: now,
    };
    match DEVICES.insert(&key, &first, BPF_NOEXIST as u64) {
        Ok(()) => {
            st[stats::NEW_DEVICES as usize] += 1;
            emit(
                st,
                Event {
                    ts_ns: now_precise(),
                    key: FlowKey {
                        mac: l2.src_mac,
                        ..FlowKey::default()
                    },
                    dst_mac: l2.dst_mac,
                    kind: EVENT_NEW_DEVICE,
                    ethertype: l2.ethertype,
                    vlan: l2.vlan,
                    ..Event::default()
                },
            );
        }
        Err(e) if e == -EEXIST => match DEVICES.get_ptr_mut(&key) {
            // SAFETY: per-CPU value of this CPU.
            Some(c) => add(unsafe { &mut *c }),
            None => st[stats::DEVICE_INSERT_FAILED as usize] += 1,
        },
        Err(_) => st[stats::DEVICE_INSERT_FAILED as usize] += 1,
    }
}

#[inline(always)]
fn emit(st: &mut Stats, ev: Event) {
    match EVENTS.reserve::<Event>(0) {
        Some(mut slot) => {
            slot.write(ev);
            slot.submit(0);
        }
        None => st[stats::RINGBUF_FULL as usize] += 1,
    }
}

#[inline(always)]
fn replaying() -> bool {
    // SAFETY: a plain read of a read-only global the loader may have rewritten.
    unsafe { core::ptr::read_volatile(&KW_REPLAY) != 0 }
}

/// Time for counters: the coarse clock is plenty for first/last seen and cheaper.
#[inline(always)]
fn now_coarse() -> u64 {
    if replaying() {
        return capture_clock();
    }
    // SAFETY: helper without preconditions.
    unsafe { bpf_ktime_get_coarse_ns() }
}

/// Time for events: precise, so userspace can measure alert latency.
#[inline(always)]
pub(crate) fn now_precise() -> u64 {
    if replaying() {
        return capture_clock();
    }
    // SAFETY: helper without preconditions.
    unsafe { bpf_ktime_get_ns() }
}

#[inline(always)]
fn capture_clock() -> u64 {
    CLOCK.get(0).copied().unwrap_or(0)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
