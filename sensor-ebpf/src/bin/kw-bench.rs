//! kettlewatch's benchmark object, loaded by `cargo xtask bench` and by its tests, never
//! by the sensor (the shipped binary does not embed it): the empty baseline, the parser
//! alone, the parser with a flow-map insert or lookup (in a per-CPU map like the
//! sensor's, and in one with a value per flow), and the end-to-end traffic source.
//!
//! Kernel: XDP programs in section `xdp.frags` (BPF_F_XDP_HAS_FRAGS, 5.18; `kw_bench_gen` in
//! plain `xdp`), never attached: run with BPF_PROG_TEST_RUN, `kw_bench_gen` in its
//! live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES, 5.18), where XDP_TX really transmits.
//! Calls bpf_get_prandom_u32, and bpf_map_lookup_elem and bpf_map_update_elem (BPF_NOEXIST)
//! on a per-CPU LRU hash and an LRU hash (4.10, flags 0). The parser is `parse.rs`.
//! Minimum: 5.18.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{BPF_NOEXIST, xdp_action},
    macros::{map, xdp},
    maps::{LruHashMap, LruPerCpuHashMap},
    programs::XdpContext,
};
use sensor_common::{FlowCounters, FlowKey, maps, str_eq};

const _: () = assert!(str_eq(maps::BENCH_FLOWS, "KW_BENCH_FLOWS"));
const _: () = assert!(str_eq(maps::BENCH_SHARED_FLOWS, "KW_BENCH_SHARED"));

/// A flow map as the sensor's (per-CPU LRU, the default size), for the insert and lookup
/// steps.
#[map(name = "KW_BENCH_FLOWS")]
static BENCH_FLOWS: LruPerCpuHashMap<FlowKey, FlowCounters> =
    LruPerCpuHashMap::with_max_entries(maps::DEFAULT_MAX_FLOWS, 0);

/// The same map with one value per flow, shared by every CPU: the layout the known-flow
/// breakdown compares against.
#[map(name = "KW_BENCH_SHARED")]
static BENCH_SHARED: LruHashMap<FlowKey, FlowCounters> =
    LruHashMap::with_max_entries(maps::DEFAULT_MAX_FLOWS, 0);

// The sensor's own parser, compiled into this object as well: an eBPF object cannot call
// functions of another, and the parse-only figure must measure the very same code.
#[path = "../parse.rs"]
#[allow(dead_code)] // the egress and discovery helpers are the sensor's alone
mod parse;

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

/// The flow key of an IPv4 or IPv6 frame, as the sensor makes it for a client, and its
/// TCP flags.
#[inline(always)]
fn bench_key(ctx: &XdpContext) -> Option<(FlowKey, u8)> {
    let l2 = parse::l2(ctx).ok()?;
    let l3 = match l2.ethertype {
        parse::ETH_P_IP => parse::ipv4(ctx, l2.l3),
        parse::ETH_P_IPV6 => parse::ipv6(ctx, l2.l3),
        _ => return None,
    }
    .ok()?;
    Some((
        FlowKey::from_parts(l3.dst, l2.src_mac, l3.dst_port, l3.proto, 0),
        l3.tcp_flags,
    ))
}

/// A new flow's first counts. Every field written, as the sensor does: a defaulted rest
/// becomes a memset call the verifier walks byte by byte.
#[inline(always)]
fn first_counts(tcp_flags: u8) -> FlowCounters {
    FlowCounters {
        packets: 1,
        bytes: 64,
        first_seen_ns: 1,
        last_seen_ns: 1,
        tcp_flags,
        verdict: 0,
        syns: 0,
        policy_gen: 0,
        poll_epoch: 0,
        sampled: 0,
        _pad: [0; 3],
    }
}

/// The benchmark's insert step: the parser, the flow key, a lookup that misses and an
/// insert into a flow map like the sensor's: what a new flow costs before its verdict,
/// device count and ring record. Never attached.
#[xdp(frags)]
pub fn kw_bench_insert(ctx: XdpContext) -> u32 {
    if let Some((key, flags)) = bench_key(&ctx)
        && BENCH_FLOWS.get_ptr_mut(&key).is_none()
    {
        let _ = BENCH_FLOWS.insert(&key, &first_counts(flags), BPF_NOEXIST as u64);
    }
    xdp_action::XDP_PASS
}

/// The known-flow step: the parser, the flow key, a lookup that finds the flow in a map
/// like the sensor's, and the frame added to this CPU's counts. Never attached.
#[xdp(frags)]
pub fn kw_bench_lookup(ctx: XdpContext) -> u32 {
    if let Some((key, _)) = bench_key(&ctx)
        && let Some(c) = BENCH_FLOWS.get_ptr_mut(&key)
    {
        // SAFETY: this CPU's value; nothing else writes it concurrently.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += 64;
        }
    }
    xdp_action::XDP_PASS
}

/// [`kw_bench_insert`] into a map with one value per flow instead of one per CPU: what
/// that layout would make a new flow cost. Never attached.
#[xdp(frags)]
pub fn kw_bench_shared_insert(ctx: XdpContext) -> u32 {
    if let Some((key, flags)) = bench_key(&ctx)
        && BENCH_SHARED.get_ptr_mut(&key).is_none()
    {
        let _ = BENCH_SHARED.insert(&key, &first_counts(flags), BPF_NOEXIST as u64);
    }
    xdp_action::XDP_PASS
}

/// [`kw_bench_lookup`] in the map with one value per flow. Never attached.
///
/// The counts are added plainly: every CPU writes this value, so the sensor would need
/// atomic adds (BPF_ATOMIC), which Rust's `core` does not offer on the BPF target (it
/// has no compare-and-swap). An uncontended atomic add costs a few ns more than this.
#[xdp(frags)]
pub fn kw_bench_shared_lookup(ctx: XdpContext) -> u32 {
    if let Some((key, _)) = bench_key(&ctx)
        && let Some(c) = BENCH_SHARED.get_ptr_mut(&key)
    {
        // SAFETY: a value of the map; the benchmark runs one frame at a time.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += 64;
        }
    }
    xdp_action::XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
