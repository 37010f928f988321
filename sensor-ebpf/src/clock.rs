//! Clocks: the kernel's (coarse for counters, precise for events), or the capture's
//! time written by the loader while replaying a file.
//!
//! Kernel: bpf_ktime_get_coarse_ns (5.11) and bpf_ktime_get_ns (4.1); when replaying,
//! bpf_map_lookup_elem on KW_CLOCK (per-CPU array, 4.6) instead. KW_REPLAY is a read-only
//! global (global data, 5.2); aya freezes it after writing it, and a frozen read-only value
//! is a constant to the verifier (5.5), which then skips the branch not taken. Minimum: 5.11.

use aya_ebpf::helpers::{bpf_ktime_get_coarse_ns, bpf_ktime_get_ns};

use crate::maps::{CLOCK, KW_REPLAY};

#[inline(always)]
pub(crate) fn replaying() -> bool {
    // SAFETY: a plain read of a read-only global the loader may have rewritten.
    unsafe { core::ptr::read_volatile(&KW_REPLAY) != 0 }
}

/// Time for counters: the coarse clock is plenty for first/last seen and cheaper.
#[inline(always)]
pub(crate) fn now_coarse() -> u64 {
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
pub(crate) fn capture_clock() -> u64 {
    CLOCK.get(0).copied().unwrap_or(0)
}
