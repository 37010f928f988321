//! A flow's verdict: threat intelligence and canaries, then the device's policy, decided
//! by `sensor_common::policy::Verdict::decide`, the table userspace uses too.
//!
//! Kernel: reached from the XDP program; only bpf_map_lookup_elem, reading KW_POLICY_GEN
//! (array, 3.19), KW_DEVICE_POLICY (hash, 3.19), KW_ALLOW and KW_INTEL (LPM tries, 4.11;
//! the kernel wants them BPF_F_NO_PREALLOC, which aya-ebpf adds). Minimum: 4.11.

use aya_ebpf::maps::lpm_trie::Key;
use sensor_common::{
    DeviceKey, FlowKey, Generations,
    policy::{AllowData, GROUP_BITS, IntelData, Verdict, mode, verdict},
    stats,
};

use crate::maps::{ALLOW, DEVICE_POLICY, INTEL, POLICY_GEN, Stats, bump};

/// The current policy generation and poll epoch.
#[inline(always)]
pub(crate) fn generations() -> Generations {
    POLICY_GEN.get(0).copied().unwrap_or_default()
}

/// The verdict for a flow: threat intelligence and canaries first (they outrank any
/// policy), then the device's policy. Returns the verdict's byte and the intel entry's id
/// (0: none).
#[inline(always)]
pub(crate) fn evaluate_full(key: &FlowKey) -> (u8, u32) {
    let policy = evaluate(key);
    let k = Key::new(128, IntelData { addr: key.addr });
    let Some(e) = INTEL.get(&k) else {
        return (policy as u8, 0);
    };
    (Verdict::with_intel(policy, e.flags) as u8, e.id)
}

/// The policy verdict for a flow: the device's policy mode, then the longest allow-list
/// prefix for its group and the flow's destination, then that entry's ports.
#[inline(always)]
pub(crate) fn evaluate(key: &FlowKey) -> Verdict {
    let dk = DeviceKey {
        mac: key.mac,
        _pad: [0; 2],
    };
    // SAFETY: a plain lookup; the value is only read.
    let Some(p) = (unsafe { DEVICE_POLICY.get(&dk) }) else {
        return Verdict::NoPolicy;
    };
    if p.mode == mode::LEARN {
        // Skips the trie lookups a learning device does not need.
        return Verdict::Learning;
    }
    let k = Key::new(
        GROUP_BITS + 128,
        AllowData {
            group: p.group.to_be_bytes(),
            addr: key.addr,
        },
    );
    match ALLOW.get(&k) {
        None => Verdict::decide(p.mode, false, false),
        Some(e) => Verdict::decide(p.mode, true, e.allows(key.port, key.proto)),
    }
}

/// Counts a verdict taken for a new flow, or a changed one.
#[inline(always)]
pub(crate) fn count_verdict(st: &mut Stats, v: u8) {
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
pub(crate) fn reevaluate(st: &mut Stats, key: &FlowKey, before: u8) -> u8 {
    let v = evaluate_full(key).0;
    if v != before {
        count_verdict(st, v);
    }
    v
}
