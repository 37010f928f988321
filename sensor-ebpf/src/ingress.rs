//! The LAN-ingress XDP program: parse, count, and report new flows and devices. Its
//! only drop is an enforced device's unexpected flow (or an intel block).
//!
//! Kernel: an XDP program in section `xdp.frags`, so loaded with BPF_F_XDP_HAS_FRAGS
//! (multi-buffer XDP, 5.18); sensor-user attaches it through an XDP bpf_link (5.9), native
//! or generic (skb). Calls bpf_xdp_get_buff_len (5.18), for the length with all fragments,
//! and bpf_map_lookup_elem on KW_STATS (per-CPU array, 4.6); returns XDP_PASS or XDP_DROP.
//! The rest is in `parse`, `flow`, `payload`, `device`, `clock` and `ring`. Minimum: 5.18.

use aya_ebpf::{
    bindings::xdp_action, helpers::bpf_xdp_get_buff_len, macros::xdp, programs::XdpContext,
};
use sensor_common::{discovery, policy::verdict, proto, stats};

use crate::{
    clock::now_coarse,
    device::{count_device, discover},
    flow::count_flow,
    maps::{PAYLOAD_PROG, STATS, Stats, bump},
    parse,
};

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
    let counted = count_flow(st, &l2, &l3, len);
    let copy = discovery::ip(l3.proto, l3.src_port, l3.dst_port)
        || (l3.proto == proto::TCP
            && l3.dst_port == discovery::MQTT
            && parse::byte_at(ctx, l3.payload)
                .is_some_and(|b| discovery::tcp_connect(l3.dst_port, b)));
    if copy {
        discover(ctx, st, &l2, l3.src, l3.src_port, l3.dst_port, len);
    }
    // A tail call, not a call: the copy is a program of its own, which the verifier walks
    // once, not once per way through this one. Only for a frame that passes: the callee
    // returns XDP_PASS.
    if counted.sample != 0 && !verdict::dropped(counted.verdict) {
        // SAFETY: jumps to the payload program with this frame; on failure (no program
        // loaded) it returns here and the frame goes on uncopied.
        unsafe { PAYLOAD_PROG.tail_call(ctx, 0) };
        st[stats::PAYLOAD_SKIPPED as usize] += 1;
    }
    counted.verdict
}
