//! Types shared by the kettlewatch eBPF programs and the userspace loader.
//!
//! Everything here is `#[repr(C)]` with explicit padding so that both sides agree on the
//! byte layout; the `user` feature adds `aya::Pod` so userspace can read maps of them.
//!
//! One file per record kind, each re-exported here: every type is `sensor_common::Name`.
#![no_std]

// `aya::Pod` impls sit in each file, beside the size asserts their SAFETY rests on.
mod device;
pub mod discovery;
mod event;
mod flow;
mod generations;
mod mac;
pub mod maps;
mod payload;
pub mod policy;
pub mod proto;
pub mod stats;

pub use device::{DeviceCounters, DeviceKey, EgressCounters};
pub use discovery::{DISCOVERY_BURST, DISCOVERY_BYTES, DISCOVERY_RATE, DiscoveryRecord};
pub use event::{Event, EventKind};
pub use flow::{CacheSlot, FLOW_SERVING, FlowCounters, FlowKey};
pub use generations::Generations;
pub use mac::{MacAddr, ParseMacError};
pub use maps::str_eq;
pub use payload::{
    PAYLOAD_BURST, PAYLOAD_BYTES, PAYLOAD_RATE, PayloadRecord, SAMPLED_IN, SAMPLED_OUT,
};
