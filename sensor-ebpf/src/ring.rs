//! The ring buffer to userspace: one record per new flow, new device, discovery frame or
//! DNS answer; a full ring is counted, never waited on.
//!
//! Kernel: reached from the XDP program. bpf_ringbuf_reserve and bpf_ringbuf_submit on
//! KW_EVENTS (BPF_MAP_TYPE_RINGBUF, 5.8), with a reservation size the verifier sees as a
//! constant; the verifier rejects any path that neither submits nor discards a
//! reservation. Minimum: 5.8.

use core::ptr::write_volatile;

use sensor_common::{Event, stats};

use crate::maps::{EVENTS, Stats};

/// Reserves an event record, zeroes it, lets `fill` write the fields that are not zero,
/// and sends it; counts it lost when the ring is full.
#[inline(always)]
pub(crate) fn emit(st: &mut Stats, fill: impl FnOnce(&mut Event)) {
    match EVENTS.reserve::<Event>(0) {
        Some(mut slot) => {
            let ev = slot.as_mut_ptr();
            // SAFETY: `ev` is the reserved record, aligned to 8, and ours until submitted.
            unsafe {
                zero(ev);
                fill(&mut *ev);
            }
            slot.submit(0);
        }
        None => st[stats::RINGBUF_FULL as usize] += 1,
    }
}

/// Zeroes `*p` with 8-byte stores.
///
/// Volatile, so that LLVM cannot merge zero stores into a `memset` call: the BPF backend
/// emits one as a call to a byte-by-byte loop, which the verifier walks again on every
/// path that reaches it. Those loops were most of why Linux 6.1's verifier stopped at its
/// million instructions on this program.
///
/// # Safety
/// `p` must be valid for writes and aligned to 8.
#[inline(always)]
pub(crate) unsafe fn zero<T>(p: *mut T) {
    const { assert!(size_of::<T>() % 8 == 0 && align_of::<T>() >= 8) };
    let w = p.cast::<u64>();
    let mut i = 0;
    while i < size_of::<T>() / 8 {
        // SAFETY: within `*p`, by the caller's promise and the size check above.
        unsafe { write_volatile(w.add(i), 0) };
        i += 1;
    }
}

/// Writes `v` to `dst` as a store of its own, for a field that is a constant zero where
/// the function is inlined: LLVM merges runs of plain zero stores into a `memset` call
/// (see [`zero`]), even over a record `zero` already cleared.
#[inline(always)]
pub(crate) fn put<T: Copy>(dst: &mut T, v: T) {
    // SAFETY: a reference is valid and aligned for a write.
    unsafe { write_volatile(dst, v) }
}
