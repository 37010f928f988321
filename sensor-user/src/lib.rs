//! kettlewatch: an in-kernel IoT traffic sensor for Linux gateways.
//!
//! The folders follow a frame, top to bottom (ARCHITECTURE.md walks through it):
//! `ingest` (a live interface or capture files) drives the `engine`; `kernel` loads the
//! eBPF program and reads its maps and ring records; `discover` decodes what devices say
//! into facts and profiles; `track` turns counters into flow records and keeps the device
//! table; `judge` classifies devices and checks their traffic against policy, intel and
//! behaviour; `emit` shapes EVE JSON and writes it; `store` persists the inventory.
//! `config` is the configuration file, `model` the vocabulary all of them share.

pub mod cli;
pub mod config;
pub mod discover;
pub mod emit;
pub mod engine;
#[doc(hidden)]
pub mod fuzzing;
pub mod ingest;
pub mod judge;
pub mod kernel;
pub mod model;
pub mod store;
#[cfg(test)]
mod testdata;
pub mod track;
