//! The device table: a device's non-IP frames and new flows, and the token bucket that
//! bounds how many of its discovery frames are copied to userspace.
//!
//! Kernel: reached from the XDP program (it takes an `XdpContext`). bpf_map_lookup_elem and
//! bpf_map_update_elem (BPF_NOEXIST, -EEXIST when another CPU won) on KW_DEVICES (per-CPU
//! LRU hash, 4.10); bpf_ringbuf_reserve, bpf_ringbuf_submit and bpf_ringbuf_discard on
//! KW_EVENTS (ring buffer, 5.8); bpf_xdp_load_bytes (5.18), which copies across a
//! multi-buffer frame's fragments; both clocks through `clock`. Minimum: 5.18.

use core::mem::MaybeUninit;

use aya_ebpf::{bindings::BPF_NOEXIST, helpers::bpf_xdp_load_bytes, programs::XdpContext};
use sensor_common::{
    DISCOVERY_BURST, DISCOVERY_BYTES, DISCOVERY_RATE, DeviceCounters, DeviceKey, DiscoveryRecord,
    EventKind, PAYLOAD_BURST, stats,
};

use crate::{
    clock::{now_coarse, now_precise},
    maps::{DEVICES, EEXIST, EVENTS, Stats},
    parse,
    ring::{emit, put, zero},
};

/// Copies a discovery frame to userspace, within its device's rate. `src` is the source
/// address as in [`parse::L3`] (zero for non-IP frames).
#[inline(always)]
pub(crate) fn discover(
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
    if !take_token(
        &mut dev.discovery_tokens,
        &mut dev.discovery_refill_ns,
        now,
        DISCOVERY_RATE,
        DISCOVERY_BURST,
    ) {
        st[stats::DISCOVERY_RATE_LIMITED as usize] += 1;
        return;
    }
    let Some(mut slot) = EVENTS.reserve::<DiscoveryRecord>(0) else {
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
        e.key.mac = l2.src_mac;
        // Zero for a non-IP frame, so written word by word with `put`. SAFETY: the
        // address's 16 bytes, at a 4-aligned offset, are four words.
        let words = &mut *e.src_addr.as_mut_ptr().cast::<[u32; 4]>();
        for (w, v) in words.iter_mut().zip(src) {
            put(w, v);
        }
        put(&mut e.src_port, src_port);
        e.dst_mac = l2.dst_mac;
        e.kind = EventKind::Discovery as u8;
        put(&mut e.dst_port, dst_port);
        e.frame_len = len as u32;
        e.ethertype = l2.ethertype;
        e.vlan = l2.vlan;
        (*rec)._pad = 0;
        // The copy length must be seen as 1..=DISCOVERY_BYTES by the verifier of every
        // kernel. Linux 6.1's learns nothing from `n != 0` (it tracks ranges, and a
        // check against zero does not move one), so the range is built by arithmetic:
        // (len - 1) clamped, plus 1. A frame is never empty; if one were, the wrapped
        // length asks for more than the frame holds and the helper refuses the copy.
        // Found by `cargo xtask vm-test` ("R3 min value is outside of the allowed memory
        // range").
        let n: u64 = len.wrapping_sub(1).min(DISCOVERY_BYTES as u64 - 1) + 1;
        (*rec).cap_len = n as u32;
        bpf_xdp_load_bytes(ctx.ctx, 0, (*rec).data.as_mut_ptr().cast(), n as u32)
    };
    if loaded == 0 {
        st[stats::DISCOVERY_COPIED as usize] += 1;
        slot.submit(0);
    } else {
        slot.discard(0);
    }
}

/// Takes a token from a device's bucket, refilled at `rate` per second up to `burst`;
/// false when it is empty.
#[inline(always)]
pub(crate) fn take_token(
    tokens: &mut u64,
    refill_ns: &mut u64,
    now: u64,
    rate: u64,
    burst: u64,
) -> bool {
    let earned = now.saturating_sub(*refill_ns) / (1_000_000_000 / rate);
    if earned > 0 {
        *tokens = (*tokens + earned).min(burst);
        *refill_ns = now;
    }
    if *tokens == 0 {
        return false;
    }
    *tokens -= 1;
    true
}

/// Records a device's non-IP frame (`Some(len)`) or a flow it opened (`None`).
#[inline(always)]
pub(crate) fn count_device(st: &mut Stats, l2: &parse::L2, non_ip_len: Option<u64>, now: u64) {
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
    let mut first = MaybeUninit::<DeviceCounters>::uninit();
    // SAFETY: a local, aligned to 8; every field is written (zero, then the rest). Used
    // in place: a copy out of it would be zeroed again by a memset.
    let first = unsafe {
        zero(first.as_mut_ptr());
        let c = &mut *first.as_mut_ptr();
        put(&mut c.non_ip_packets, packets);
        put(&mut c.non_ip_bytes, bytes);
        put(&mut c.new_flows, flows);
        c.first_seen_ns = now;
        c.last_seen_ns = now;
        c.discovery_tokens = DISCOVERY_BURST;
        c.discovery_refill_ns = now;
        c.payload_tokens = PAYLOAD_BURST;
        c.payload_refill_ns = now;
        first.assume_init_ref()
    };
    match DEVICES.insert(&key, first, BPF_NOEXIST as u64) {
        Ok(()) => {
            st[stats::NEW_DEVICES as usize] += 1;
            emit(st, |e| {
                e.ts_ns = now_precise();
                e.key.mac = l2.src_mac;
                e.dst_mac = l2.dst_mac;
                e.kind = EventKind::NewDevice as u8;
                e.ethertype = l2.ethertype;
                e.vlan = l2.vlan;
            });
        }
        Err(e) if e == -EEXIST => match DEVICES.get_ptr_mut(&key) {
            // SAFETY: per-CPU value of this CPU.
            Some(c) => add(unsafe { &mut *c }),
            None => st[stats::DEVICE_INSERT_FAILED as usize] += 1,
        },
        Err(_) => st[stats::DEVICE_INSERT_FAILED as usize] += 1,
    }
}
