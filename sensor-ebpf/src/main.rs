//! kettlewatch's eBPF object: the LAN-ingress XDP program (`ingress`) and the LAN-egress
//! TC program (`egress`). The benchmark programs are an object of their own
//! (`bin/kw-bench.rs`).
//!
//! The fast path (a flow seen recently on this CPU) is an array lookup in the per-CPU flow
//! cache and a key compare, counters updated in place, no clock read. A cache miss goes to
//! the flow map (a per-CPU LRU hash); creating entries, the device table and events happen
//! once per new flow, or for the rare non-IP frame.
//!
//! Kernel: 5.18 for the object as a whole (multi-buffer XDP, bpf_xdp_get_buff_len,
//! bpf_xdp_load_bytes); tcx (6.6) is used when there. Each module names what it relies on.
#![no_std]
#![no_main]

mod clock;
mod device;
mod egress;
mod flow;
mod ingress;
mod maps;
mod parse;
mod payload;
mod ring;
mod verdict;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
