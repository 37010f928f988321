//! kettlewatch's LAN-egress TC program: what the gateway sends to devices. It copies DNS
//! answers (UDP from port 53) to userspace, which learns from them which addresses each
//! device was given for which name: what domain policies need; and it counts what each
//! device receives (downstream volume). It never changes a frame.
//!
//! Kernel: a TC classifier (BPF_PROG_TYPE_SCHED_CLS, section `classifier`). sensor-user
//! attaches it at egress as a tcx link (6.6) or, before 6.6 or with `--egress-attach
//! netlink`, as a direct-action netlink filter on a clsact qdisc (4.5); `TC_NEXT` (-1)
//! is TCX_NEXT on the one and TC_ACT_UNSPEC on the other. Calls bpf_map_lookup_elem and
//! bpf_map_update_elem (BPF_NOEXIST) on KW_EGRESS (per-CPU LRU hash, 4.10) and a lookup on
//! KW_STATS (per-CPU array, 4.6); bpf_ringbuf_reserve, bpf_ringbuf_submit and
//! bpf_ringbuf_discard on KW_EVENTS (ring buffer, 5.8); bpf_skb_load_bytes (4.5) for the
//! copy, which may reach past the linear data; the precise clock through `clock`. Reads
//! `skb->len` and, through `parse`, the packet directly (4.7). Newest feature it relies on:
//! the ring buffer (5.8); the object it ships in needs 5.18 (see `ingress`). `payload` copies
//! a flow's first payload to the device (`payload::sample_in`).

use aya_ebpf::{
    EbpfContext as _, bindings::BPF_NOEXIST, helpers::bpf_skb_load_bytes, macros::classifier,
    programs::TcContext,
};
use sensor_common::{
    DISCOVERY_BYTES, DeviceKey, DiscoveryRecord, EgressCounters, Event, EventKind, FlowKey,
    discovery, proto, stats,
};

use crate::{
    clock::now_precise,
    maps::{EGRESS, EVENTS, STATS, Stats},
    parse,
};

/// Continue: TCX_NEXT on tcx links, the default action with netlink (direct-action).
const TC_NEXT: i32 = -1;

#[classifier]
pub fn kw_lan_egress(ctx: TcContext) -> i32 {
    if let Some(st) = STATS.get_ptr_mut(0) {
        // SAFETY: per-CPU value of this CPU; nothing else writes it while we run.
        watch(&ctx, unsafe { &mut *st });
    }
    TC_NEXT
}

#[inline(always)]
fn watch(ctx: &TcContext, st: &mut Stats) {
    st[stats::EGRESS_FRAMES as usize] += 1;
    let Ok(l2) = parse::l2(ctx) else { return };
    // Unicast to one device: its downstream volume.
    if !l2.dst_mac.is_multicast() {
        let key = DeviceKey {
            mac: l2.dst_mac,
            _pad: [0; 2],
        };
        let len = u64::from(ctx.len());
        match EGRESS.get_ptr_mut(&key) {
            Some(c) => {
                // SAFETY: per-CPU value of this CPU.
                let c = unsafe { &mut *c };
                c.packets += 1;
                c.bytes += len;
            }
            None => {
                let first = EgressCounters {
                    packets: 1,
                    bytes: len,
                };
                let _ = EGRESS.insert(&key, &first, BPF_NOEXIST as u64);
            }
        }
    }
    let l3 = match l2.ethertype {
        parse::ETH_P_IP => parse::ipv4(ctx, l2.l3),
        parse::ETH_P_IPV6 => parse::ipv6(ctx, l2.l3),
        _ => return,
    };
    let Ok(l3) = l3 else { return };
    if l3.proto != proto::UDP || l3.src_port != discovery::DNS {
        // Last on its path, like the ingress copy, so nothing after it is walked twice.
        if !l2.dst_mac.is_multicast() {
            crate::payload::sample_in(ctx, st, &l2, &l3);
        }
        return;
    }
    let Some(mut slot) = EVENTS.reserve::<DiscoveryRecord>(0) else {
        st[stats::RINGBUF_FULL as usize] += 1;
        return;
    };
    let len = ctx.len();
    let rec = slot.as_mut_ptr();
    // SAFETY: `rec` is the reserved record; `n` is at most the size of `data`.
    let loaded = unsafe {
        (*rec).head = Event {
            ts_ns: now_precise(),
            // The device the answer is for.
            key: FlowKey {
                mac: l2.dst_mac,
                ..FlowKey::default()
            },
            dst_mac: l2.src_mac,
            kind: EventKind::DnsAnswer as u8,
            src_port: l3.src_port,
            dst_port: l3.dst_port,
            frame_len: len,
            ethertype: l2.ethertype,
            vlan: l2.vlan,
            ..Event::default()
        };
        (*rec)._pad = 0;
        // The copy length must be seen as 1..=DISCOVERY_BYTES by the verifier of every
        // kernel. Linux 6.1's learns nothing from `n != 0` (it tracks ranges, and a
        // check against zero does not move one), so the range is built by arithmetic:
        // (len - 1) clamped, plus 1. A frame is never empty; if one were, the wrapped
        // length asks for more than the frame holds and the helper refuses the copy.
        // Found by `cargo xtask vm-test` ("R3 min value is outside of the allowed memory
        // range").
        let n: u64 = u64::from(len)
            .wrapping_sub(1)
            .min(DISCOVERY_BYTES as u64 - 1)
            + 1;
        (*rec).cap_len = n as u32;
        bpf_skb_load_bytes(
            ctx.as_ptr().cast_const(),
            0,
            (*rec).data.as_mut_ptr().cast(),
            n as u32,
        )
    };
    if loaded == 0 {
        st[stats::DNS_ANSWERS_COPIED as usize] += 1;
        slot.submit(0);
    } else {
        slot.discard(0);
    }
}
