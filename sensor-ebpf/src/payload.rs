//! A flow's first payload in each direction, copied to userspace once per flow and CPU
//! (the flow's `sampled` byte says which went), within its device's rate, so the
//! decoders can name the software at each end. From the device (XDP): its client hellos,
//! requests and User-Agents, and the banners of the services it runs. To the device (TC
//! egress, a segment with PSH set of a flow the device already has): the greeting of the
//! server it connected to, or the request of a client of its own.
//!
//! Kernel: reached from the XDP program and the TC egress program. bpf_map_lookup_elem on
//! KW_DEVICES (per-CPU LRU hash, 4.10) for the token bucket and, from egress, on KW_FLOWS
//! (per-CPU LRU hash); bpf_ringbuf_reserve, bpf_ringbuf_submit and bpf_ringbuf_discard on
//! KW_EVENTS (ring buffer, 5.8); bpf_xdp_load_bytes (5.18) and bpf_skb_load_bytes (4.5).
//! Reads the read-only global KW_PAYLOADS (global data, 5.2), which the loader sets to 0
//! to turn sampling off, so the verifier drops the copy. The ingress copy is its own XDP
//! program, `kw_lan_payload` (section `xdp.frags`, like the program that jumps to it),
//! reached by bpf_tail_call (4.2) through KW_PAYLOAD_PROG (program array), which the
//! loader fills. Minimum: 5.18.

use aya_ebpf::{
    EbpfContext as _,
    bindings::xdp_action,
    helpers::{bpf_skb_load_bytes, bpf_xdp_get_buff_len, bpf_xdp_load_bytes},
    macros::xdp,
    programs::{TcContext, XdpContext},
};
use sensor_common::{
    DeviceKey, EventKind, FLOW_SERVING, FlowKey, MacAddr, PAYLOAD_BURST, PAYLOAD_BYTES,
    PAYLOAD_RATE, PayloadRecord, SAMPLED_IN, proto, stats,
};

use crate::{
    clock::{now_coarse, now_precise},
    device::take_token,
    flow::flow_key,
    maps::{DEVICES, EVENTS, FLOWS, KW_PAYLOADS, STATS, Stats},
    parse,
    ring::{put, zero},
};

/// The frame the ingress program found to be its flow's first payload: parsed again and
/// copied. Reached only by tail call from `kw_lan_ingress`, for a frame that passes.
#[xdp(frags)]
pub fn kw_lan_payload(ctx: XdpContext) -> u32 {
    if let Some(st) = STATS.get_ptr_mut(0) {
        // SAFETY: per-CPU value of this CPU; nothing else writes it while we run.
        let st = unsafe { &mut *st };
        // SAFETY: the helper only reads the context it is given.
        let len = unsafe { bpf_xdp_get_buff_len(ctx.ctx) };
        if let Ok(l2) = parse::l2(&ctx) {
            let l3 = match l2.ethertype {
                parse::ETH_P_IP => parse::ipv4(&ctx, l2.l3),
                parse::ETH_P_IPV6 => parse::ipv6(&ctx, l2.l3),
                _ => Err(0),
            };
            if let Ok(l3) = l3
                && l3.payload_len != 0
            {
                sample(&ctx, st, &l2, &l3, len);
            }
        }
    }
    xdp_action::XDP_PASS
}

/// Whether first payloads are sampled at all.
#[inline(always)]
pub(crate) fn sampling() -> bool {
    // SAFETY: a read-only global the loader sets; volatile so it is read, not folded.
    unsafe { core::ptr::read_volatile(&KW_PAYLOADS) != 0 }
}

/// A token from `mac`'s payload bucket; counts a skip when there is none (or no device).
#[inline(always)]
fn token(st: &mut Stats, mac: MacAddr) -> bool {
    let key = DeviceKey { mac, _pad: [0; 2] };
    let Some(dev) = DEVICES.get_ptr_mut(&key) else {
        st[stats::PAYLOAD_SKIPPED as usize] += 1;
        return false;
    };
    // SAFETY: per-CPU value of this CPU.
    let dev = unsafe { &mut *dev };
    let ok = take_token(
        &mut dev.payload_tokens,
        &mut dev.payload_refill_ns,
        now_coarse(),
        PAYLOAD_RATE,
        PAYLOAD_BURST,
    );
    if !ok {
        st[stats::PAYLOAD_SKIPPED as usize] += 1;
    }
    ok
}

/// Copies the frame's payload (its first [`PAYLOAD_BYTES`]) to userspace, within its
/// device's rate; counts it copied or skipped.
#[inline(always)]
pub(crate) fn sample(ctx: &XdpContext, st: &mut Stats, l2: &parse::L2, l3: &parse::L3, len: u64) {
    if !token(st, l2.src_mac) {
        return;
    }
    let Some(mut slot) = EVENTS.reserve::<PayloadRecord>(0) else {
        st[stats::RINGBUF_FULL as usize] += 1;
        return;
    };
    let rec = slot.as_mut_ptr();
    // SAFETY: `rec` is the reserved record; `n` is at most the size of `data`.
    let loaded = unsafe {
        // Only the header: the copy below writes the data.
        zero(&raw mut (*rec).head);
        let e = &mut (*rec).head;
        e.ts_ns = now_precise();
        e.key = flow_key(l2, l3);
        // SAFETY: four native-order words are the address's 16 bytes.
        e.src_addr = core::mem::transmute::<[u32; 4], [u8; 16]>(l3.src);
        e.src_port = l3.src_port;
        e.dst_mac = l2.dst_mac;
        e.kind = EventKind::Payload as u8;
        e.tcp_flags = l3.tcp_flags;
        e.dst_port = l3.dst_port;
        e.frame_len = len as u32;
        e.ethertype = l2.ethertype;
        e.vlan = l2.vlan;
        put(&mut (*rec).payload_len, u32::from(l3.payload_len));
        // As in `device::discover`: a range Linux 6.1's verifier can follow, 1..=the
        // record's size, built by arithmetic. The caller saw a non-empty payload.
        let n: u64 = u64::from(l3.payload_len)
            .wrapping_sub(1)
            .min(PAYLOAD_BYTES as u64 - 1)
            + 1;
        (*rec).cap_len = n as u32;
        bpf_xdp_load_bytes(
            ctx.ctx,
            (l3.payload & 0xffff) as u32,
            (*rec).data.as_mut_ptr().cast(),
            n as u32,
        )
    };
    if loaded == 0 {
        st[stats::PAYLOAD_COPIED as usize] += 1;
        slot.submit(0);
    } else {
        // The IP header claimed more than the frame holds: counted like a full ring is
        // not, since nothing was lost but a lie.
        st[stats::PAYLOAD_SKIPPED as usize] += 1;
        slot.discard(0);
    }
}

/// A segment the gateway sends a device (TC egress): when it carries payload with PSH set
/// and is the first such of a flow the device has (a server's greeting to it, a client's
/// request to it), copies it like [`sample`], as [`EventKind::PayloadIn`] under the
/// device's flow key. PSH keeps the flow lookup off most segments of a bulk transfer.
#[inline(always)]
pub(crate) fn sample_in(ctx: &TcContext, st: &mut Stats, l2: &parse::L2, l3: &parse::L3) {
    const PSH: u8 = 0x08;
    if !sampling() || l3.proto != proto::TCP || l3.payload_len == 0 || l3.tcp_flags & PSH == 0 {
        return;
    }
    // The device's flow, as the ingress keys it: by the remote's port, or by its own
    // service port when a client reaches it.
    let serving = l3.dst_port < 1024 && l3.src_port >= 1024;
    let key = FlowKey::from_parts(
        l3.src,
        l2.dst_mac,
        if serving { l3.dst_port } else { l3.src_port },
        l3.proto,
        if serving { FLOW_SERVING } else { 0 },
    );
    let Some(c) = FLOWS.get_ptr_mut(&key) else {
        return;
    };
    // SAFETY: per-CPU value of this CPU.
    let c = unsafe { &mut *c };
    if c.sampled & SAMPLED_IN != 0 {
        return;
    }
    c.sampled |= SAMPLED_IN;
    if !token(st, l2.dst_mac) {
        return;
    }
    let Some(mut slot) = EVENTS.reserve::<PayloadRecord>(0) else {
        st[stats::RINGBUF_FULL as usize] += 1;
        return;
    };
    let rec = slot.as_mut_ptr();
    // SAFETY: `rec` is the reserved record; `n` is at most the size of `data`.
    let loaded = unsafe {
        zero(&raw mut (*rec).head);
        let e = &mut (*rec).head;
        e.ts_ns = now_precise();
        e.key = key;
        e.src_addr = core::mem::transmute::<[u32; 4], [u8; 16]>(l3.src);
        e.src_port = l3.src_port;
        e.dst_mac = l2.src_mac;
        e.kind = EventKind::PayloadIn as u8;
        e.tcp_flags = l3.tcp_flags;
        e.dst_port = l3.dst_port;
        e.frame_len = ctx.len();
        e.ethertype = l2.ethertype;
        e.vlan = l2.vlan;
        put(&mut (*rec).payload_len, u32::from(l3.payload_len));
        // As in `sample`: 1..=the record's size, by arithmetic.
        let n: u64 = u64::from(l3.payload_len)
            .wrapping_sub(1)
            .min(PAYLOAD_BYTES as u64 - 1)
            + 1;
        (*rec).cap_len = n as u32;
        bpf_skb_load_bytes(
            ctx.as_ptr().cast_const(),
            (l3.payload & 0xffff) as u32,
            (*rec).data.as_mut_ptr().cast(),
            n as u32,
        )
    };
    if loaded == 0 {
        st[stats::PAYLOAD_COPIED as usize] += 1;
        slot.submit(0);
    } else {
        st[stats::PAYLOAD_SKIPPED as usize] += 1;
        slot.discard(0);
    }
}
