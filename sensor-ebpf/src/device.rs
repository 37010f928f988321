//! The device table: a device's non-IP frames and new flows, and the token bucket that
//! bounds how many of its discovery frames are copied to userspace.

use aya_ebpf::{bindings::BPF_NOEXIST, helpers::bpf_xdp_load_bytes, programs::XdpContext};
use sensor_common::{
    DISCOVERY_BURST, DISCOVERY_BYTES, DISCOVERY_RATE, DeviceCounters, DeviceKey, DiscoveryRecord,
    Event, EventKind, FlowKey, stats,
};

use crate::{
    clock::{now_coarse, now_precise},
    maps::{DEVICES, EEXIST, EVENTS, Stats},
    parse,
    ring::emit,
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
            kind: EventKind::Discovery as u8,
            tcp_flags: 0,
            dst_port,
            frame_len: len as u32,
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
                    kind: EventKind::NewDevice as u8,
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
