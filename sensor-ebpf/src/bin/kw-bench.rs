//! kettlewatch's benchmark object, loaded by `cargo xtask bench` and by its tests, never
//! by the sensor (the shipped binary does not embed it): the empty baseline, the parser
//! alone, the parser and a flow-map insert, and the end-to-end traffic source.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{BPF_NOEXIST, xdp_action},
    macros::{map, xdp},
    maps::LruPerCpuHashMap,
    programs::XdpContext,
};
use sensor_common::{FlowCounters, FlowKey, maps, str_eq};

const _: () = assert!(str_eq(maps::BENCH_FLOWS, "KW_BENCH_FLOWS"));

/// A flow map as the sensor's (per-CPU LRU, the default size), for the insert step.
#[map(name = "KW_BENCH_FLOWS")]
static BENCH_FLOWS: LruPerCpuHashMap<FlowKey, FlowCounters> =
    LruPerCpuHashMap::with_max_entries(maps::DEFAULT_MAX_FLOWS, 0);

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

/// The benchmark's insert step: the parser, the flow key, a lookup that misses and an
/// insert into a flow map like the sensor's: what a new flow costs before its verdict,
/// device count and ring record. Never attached.
#[xdp(frags)]
pub fn kw_bench_insert(ctx: XdpContext) -> u32 {
    let Ok(l2) = parse::l2(&ctx) else {
        return xdp_action::XDP_PASS;
    };
    let l3 = match l2.ethertype {
        parse::ETH_P_IP => parse::ipv4(&ctx, l2.l3),
        parse::ETH_P_IPV6 => parse::ipv6(&ctx, l2.l3),
        _ => return xdp_action::XDP_PASS,
    };
    let Ok(l3) = l3 else {
        return xdp_action::XDP_PASS;
    };
    let key = FlowKey::from_parts(l3.dst, l2.src_mac, l3.dst_port, l3.proto, 0);
    if BENCH_FLOWS.get_ptr_mut(&key).is_none() {
        // Every field written, as the sensor does: a defaulted rest becomes a memset
        // call the verifier walks byte by byte.
        let first = FlowCounters {
            packets: 1,
            bytes: 64,
            first_seen_ns: 1,
            last_seen_ns: 1,
            tcp_flags: l3.tcp_flags,
            verdict: 0,
            syns: 0,
            policy_gen: 0,
            poll_epoch: 0,
            _pad: 0,
        };
        let _ = BENCH_FLOWS.insert(&key, &first, BPF_NOEXIST as u64);
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
