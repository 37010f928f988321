//! Flows: the per-CPU flow cache in front of the flow map, so a busy flow's frames are
//! counted in place with an array lookup, and the map entry (with its verdict and a
//! new-flow event) created once per flow.
//!
//! Kernel: reached from the XDP program. bpf_map_lookup_elem on KW_FLOW_CACHE and KW_DIRTY
//! (per-CPU arrays, 4.6) and on KW_FLOWS (per-CPU LRU hash, 4.10); bpf_map_update_elem with
//! BPF_NOEXIST on KW_FLOWS, so two CPUs creating one flow meet at -EEXIST instead of one
//! overwriting the other. Reads the read-only global KW_DIRTY_MASK (global data, 5.2), set
//! by the loader. Verdicts, time and records come from `verdict`, `clock` and `ring`.
//! Minimum: 5.2 here; 5.18 for the program that reaches it.

use core::ptr::write_volatile;

use aya_ebpf::bindings::BPF_NOEXIST;
use sensor_common::{
    CacheSlot, EventKind, FLOW_SERVING, FlowCounters, FlowKey, Generations, SAMPLED_OUT,
    policy::verdict, proto, stats,
};

use crate::{
    clock::{now_coarse, now_precise},
    device::count_device,
    maps::{DIRTY, EEXIST, FLOW_CACHE, FLOWS, KW_DIRTY_MASK, Stats},
    parse,
    payload::sampling,
    ring::{emit, put, zero},
    verdict::{count_verdict, evaluate_full, generations, reevaluate},
};

/// The flow key: by destination, except when the device is answering from a well-known
/// port to an ephemeral one: then by the device's service port, so that every client is
/// not a new destination.
#[inline(always)]
pub(crate) fn flow_key(l2: &parse::L2, l3: &parse::L3) -> FlowKey {
    let serving = (l3.proto == proto::TCP || l3.proto == proto::UDP)
        && l3.src_port < 1024
        && l3.dst_port >= 1024;
    FlowKey::from_parts(
        l3.dst,
        l2.src_mac,
        if serving { l3.src_port } else { l3.dst_port },
        l3.proto,
        if serving { FLOW_SERVING } else { 0 },
    )
}

/// What counting a frame decided.
pub(crate) struct Counted {
    /// The flow's verdict.
    pub verdict: u8,
    /// 1 when the frame is the flow's first payload on this CPU: copy it
    /// (`payload::sample`). A number made without branches (see [`has_payload`]).
    pub sample: u32,
}

/// 1 when the frame carries payload, else 0, computed without a branch: the verifier
/// follows each side of a branch on its own to the end of the program, so a flag made by
/// one doubles the paths it walks after every flow lookup.
#[inline(always)]
fn has_payload(l3: &parse::L3) -> u32 {
    let n = u32::from(l3.payload_len);
    (n | n.wrapping_neg()) >> 31
}

/// Counts a frame in the flow cache when its flow holds one of its set's two slots;
/// otherwise hands the least recently used slot's counts to the flow map, counts the
/// frame there (with the time), and gives that slot to its flow. A slot's first frame in
/// a new poll epoch also goes to the map, with the slot's counts. Returns the flow's
/// verdict, taken again when the policy generation moved on, or while it is blocked (so
/// an address allowed meanwhile gets through), and whether to copy the frame's payload.
#[inline(always)]
pub(crate) fn count_flow(st: &mut Stats, l2: &parse::L2, l3: &parse::L3, len: u64) -> Counted {
    let key = flow_key(l2, l3);
    // One lookup for both, passed down: this runs on every frame.
    let gens = generations();
    let Generations {
        policy: generation,
        poll: epoch,
    } = gens;
    let set = key.cache_set();
    let (Some(first), Some(second)) = (
        FLOW_CACHE.get_ptr_mut(2 * set),
        FLOW_CACHE.get_ptr_mut(2 * set + 1),
    ) else {
        // No cache (never, in practice): no sampling either.
        return Counted {
            verdict: count_in_map(st, l2, l3, &key, len, now_coarse(), gens).verdict,
            sample: 0,
        };
    };
    // SAFETY: per-CPU values of this CPU; two distinct indices.
    let (first, second) = unsafe { (&mut *first, &mut *second) };
    let hit_first = first.valid != 0 && first.key.same(&key);
    let hit = hit_first || (second.valid != 0 && second.key.same(&key));
    let (slot, known) = if hit {
        first.recent = u8::from(!hit_first);
        let slot = if hit_first { first } else { second };
        if slot.epoch == epoch {
            return count_hit(st, slot, &key, l3, len, generation);
        }
        let known = slot.sampled;
        (slot, known)
    } else {
        // The slot not used last (an empty one first) goes to this flow, and the counts
        // of the flow leaving it go to that flow's map entry first.
        let take_second = first.valid != 0 && (second.valid == 0 || first.recent == 0);
        first.recent = u8::from(take_second);
        let slot = if take_second { second } else { first };
        if slot.valid != 0 && slot.packets != 0 {
            flush(st, slot, epoch);
            slot.packets = 0;
        }
        (slot, 0)
    };
    // A new flow for the slot, or the first frame of a new poll epoch on the flow that
    // holds it: counted in the map, with the time. For the latter, the map then gets the
    // slot's counts too. A busy cached flow otherwise never touches the map, so to the
    // LRU it would look idle; and a flow the LRU evicted while the cache counted it is
    // created again here (with its event and verdict) instead of counted unseen.
    let m = count_in_map(st, l2, l3, &key, len, now_coarse(), gens);
    slot.verdict = m.verdict;
    slot.policy_gen = m.policy_gen;
    if slot.packets != 0 {
        flush(st, slot, epoch);
    }
    // The map learns what the slot sampled only at its next flush.
    slot.sampled = m.sampled | known;
    slot.key = key;
    slot.valid = 1;
    slot.tcp_flags = 0;
    // Volatile for the reason `ring::zero` gives: merged, these stores become a memset
    // call the verifier walks byte by byte.
    // SAFETY: fields of this CPU's slot.
    unsafe {
        write_volatile(&mut slot.syns, 0);
        write_volatile(&mut slot.packets, 0);
        write_volatile(&mut slot.bytes, 0);
    }
    slot.epoch = epoch;
    // The same check as a hit's, in one place for every way through the map.
    let sample = has_payload(l3) & u32::from(!slot.sampled & SAMPLED_OUT);
    slot.sampled |= sample as u8;
    Counted {
        verdict: m.verdict,
        sample,
    }
}

/// Counts a frame in the cache slot its flow holds; returns the flow's verdict and
/// whether the frame is its first payload.
#[inline(always)]
fn count_hit(
    st: &mut Stats,
    slot: &mut CacheSlot,
    key: &FlowKey,
    l3: &parse::L3,
    len: u64,
    generation: u32,
) -> Counted {
    slot.packets += 1;
    slot.bytes += len;
    slot.tcp_flags |= l3.tcp_flags;
    slot.syns += u32::from((l3.tcp_flags >> 1) & 1);
    if slot.policy_gen != generation || verdict::dropped(slot.verdict) {
        let v = reevaluate(st, key, slot.verdict);
        slot.verdict = v;
        slot.policy_gen = generation;
    }
    // The only sampling cost on a known flow: this bit is set once the first payload went
    // (and from the start when sampling is off).
    let sample = has_payload(l3) & u32::from(!slot.sampled & SAMPLED_OUT);
    slot.sampled |= sample as u8;
    Counted {
        verdict: slot.verdict,
        sample,
    }
}

/// Adds a cache slot's counts to its flow's entry in the flow map (this CPU's value),
/// logging the change in poll epoch `epoch`.
#[inline(always)]
pub(crate) fn flush(st: &mut Stats, slot: &CacheSlot, epoch: u32) {
    match FLOWS.get_ptr_mut(&slot.key) {
        Some(c) => {
            // SAFETY: per-CPU value of this CPU.
            let c = unsafe { &mut *c };
            c.packets += slot.packets;
            c.bytes += slot.bytes;
            c.tcp_flags |= slot.tcp_flags;
            c.syns = c
                .syns
                .saturating_add(slot.syns.min(u32::from(u16::MAX)) as u16);
            c.verdict = slot.verdict;
            c.policy_gen = slot.policy_gen;
            c.sampled |= slot.sampled;
            log_change(st, &slot.key, c, epoch);
        }
        // The LRU dropped the flow while its frames waited here.
        None => st[stats::CACHE_FLUSH_LOST as usize] += slot.packets,
    }
}

/// A frame counted in the flow map.
pub(crate) struct InMap {
    /// The flow's verdict.
    pub verdict: u8,
    /// The generation it was taken under.
    pub policy_gen: u32,
    /// The flow's `sampled` byte on this CPU, for its cache slot.
    pub sampled: u8,
}

/// The flow's `sampled` byte as it was before this frame, which the caller decides on;
/// the map's byte is marked now when the frame carries payload (the caller copies it
/// unless it went already), since the cache slot's own mark reaches the map only with
/// its counts, and a slot this path hands over has none. Another CPU's insert leaves
/// this CPU's value zeroed: with sampling off, every flow is sampled.
#[inline(always)]
fn mark_sampled(c: &mut FlowCounters, l3: &parse::L3) -> u8 {
    if !sampling() {
        c.sampled |= SAMPLED_OUT;
    }
    let before = c.sampled;
    c.sampled |= has_payload(l3) as u8;
    before
}

/// Counts a frame in the flow map, creating the flow (with its verdict, and an event)
/// when it is new, under the frame's policy generation and poll epoch.
#[inline(always)]
pub(crate) fn count_in_map(
    st: &mut Stats,
    l2: &parse::L2,
    l3: &parse::L3,
    key: &FlowKey,
    len: u64,
    now: u64,
    gens: Generations,
) -> InMap {
    let Generations {
        policy: generation,
        poll: epoch,
    } = gens;
    if let Some(c) = FLOWS.get_ptr_mut(key) {
        // SAFETY: per-CPU value of this CPU; nothing else writes it concurrently.
        let c = unsafe { &mut *c };
        bump_flow(c, len, l3.tcp_flags, now);
        if c.policy_gen != generation || c.verdict == verdict::UNSET || verdict::dropped(c.verdict)
        {
            c.verdict = reevaluate(st, key, c.verdict);
            c.policy_gen = generation;
        }
        log_change(st, key, c, epoch);
        return InMap {
            verdict: c.verdict,
            policy_gen: c.policy_gen,
            sampled: mark_sampled(c, l3),
        };
    }
    // With sampling off, a flow is born sampled.
    let sampled = if sampling() { 0 } else { SAMPLED_OUT };
    let (v, intel_id) = evaluate_full(key);
    let mut first = core::mem::MaybeUninit::<FlowCounters>::uninit();
    // SAFETY: a local, aligned to 8; every field is written (zero, then the rest), as
    // `device::count_device` does: a struct literal's zero bytes (the padding after
    // `sampled`) become a memset call, a byte loop Linux 6.1's verifier walks on every
    // path (it ran out of its million instructions; `cargo xtask vm-test`).
    let first = unsafe {
        zero(first.as_mut_ptr());
        let c = &mut *first.as_mut_ptr();
        c.packets = 1;
        c.bytes = len;
        c.first_seen_ns = now;
        c.last_seen_ns = now;
        put(&mut c.tcp_flags, l3.tcp_flags);
        put(&mut c.verdict, v);
        put(&mut c.syns, u16::from((l3.tcp_flags >> 1) & 1));
        put(&mut c.policy_gen, generation);
        put(&mut c.poll_epoch, epoch);
        // A first frame with payload (UDP) is copied by the caller: the map knows now.
        put(&mut c.sampled, sampled | has_payload(l3) as u8);
        first.assume_init_ref()
    };
    match FLOWS.insert(key, first, BPF_NOEXIST as u64) {
        Ok(()) => {
            st[stats::NEW_FLOWS as usize] += 1;
            push_change(st, key);
            count_verdict(st, v);
            // A device's IP traffic is the sum of its flows (userspace adds them up), so
            // the device map is only touched here, once per new flow, not per frame.
            count_device(st, l2, None, now);
            emit(st, |e| {
                e.ts_ns = now_precise();
                e.key = *key;
                // SAFETY: four native-order words are the address's 16 bytes.
                e.src_addr = unsafe { core::mem::transmute::<[u32; 4], [u8; 16]>(l3.src) };
                e.src_port = l3.src_port;
                e.dst_mac = l2.dst_mac;
                e.kind = EventKind::NewFlow as u8;
                e.tcp_flags = l3.tcp_flags;
                e.dst_port = l3.dst_port;
                e.frame_len = len as u32;
                e.ethertype = l2.ethertype;
                e.vlan = l2.vlan;
                e.verdict = v;
                e.policy_gen = generation;
                e.intel_id = intel_id;
            });
        }
        // Another CPU created it between our lookup and insert: count on our slot.
        Err(e) if e == -EEXIST => match FLOWS.get_ptr_mut(key) {
            Some(c) => {
                // SAFETY: as above.
                let c = unsafe { &mut *c };
                bump_flow(c, len, l3.tcp_flags, now);
                c.verdict = v;
                c.policy_gen = generation;
                log_change(st, key, c, epoch);
                return InMap {
                    verdict: v,
                    policy_gen: generation,
                    sampled: mark_sampled(c, l3),
                };
            }
            // ... and the LRU already evicted it again: the frame is lost to the map.
            None => st[stats::FLOW_INSERT_FAILED as usize] += 1,
        },
        Err(_) => st[stats::FLOW_INSERT_FAILED as usize] += 1,
    }
    InMap {
        verdict: v,
        policy_gen: generation,
        sampled,
    }
}

#[inline(always)]
pub(crate) fn bump_flow(c: &mut FlowCounters, len: u64, tcp_flags: u8, now: u64) {
    c.packets += 1;
    c.bytes += len;
    c.tcp_flags |= tcp_flags;
    c.syns = c.syns.saturating_add(u16::from((tcp_flags >> 1) & 1));
    // A slot another CPU created starts at zero.
    if c.first_seen_ns == 0 {
        c.first_seen_ns = now;
    }
    c.last_seen_ns = now;
}

/// Logs that this CPU changed the flow's map entry, unless it did already in this poll
/// epoch: a busy flow costs the log one slot per poll, not one per frame.
#[inline(always)]
fn log_change(st: &mut Stats, key: &FlowKey, c: &mut FlowCounters, epoch: u32) {
    if c.poll_epoch != epoch {
        c.poll_epoch = epoch;
        push_change(st, key);
    }
}

/// Appends a key to this CPU's change log. The log is a ring: when a poll falls more
/// than its size behind, userspace sees it from the write position and reads the whole
/// map instead.
#[inline(always)]
fn push_change(st: &mut Stats, key: &FlowKey) {
    let head = st[stats::DIRTY_LOGGED as usize];
    // SAFETY: a read-only global the loader sets; volatile so it is read, not folded.
    let mask = unsafe { core::ptr::read_volatile(&KW_DIRTY_MASK) };
    if let Some(slot) = DIRTY.get_ptr_mut(head as u32 & mask) {
        // SAFETY: this CPU's value; nothing else writes it concurrently.
        unsafe { *slot = *key };
    }
    st[stats::DIRTY_LOGGED as usize] = head + 1;
}
