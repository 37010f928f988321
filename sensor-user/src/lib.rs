//! kettlewatch: an in-kernel IoT traffic sensor for Linux gateways.
//!
//! The folders follow a frame (ARCHITECTURE.md walks through it): `ingest` (a live
//! interface or capture files) drives the `engine`, which `engine::build` assembles;
//! `kernel` loads the eBPF program, reads its maps and ring records and writes the maps
//! the judge's decisions go to; `discover` decodes what devices say into facts and
//! profiles; `track` turns counters into flow records and keeps the device table; `judge`
//! classifies devices and checks their traffic against policy, intel and behaviour,
//! returning one `model::alert::Alert` type; `emit` shapes EVE JSON and hands it to its
//! sinks; `store` persists the inventory and alert history, which `console` serves as web
//! pages. `config` is the configuration file, `model` the
//! vocabulary all of them share. Which may import which is ARCHITECTURE.md's import-order
//! table, which `tests/tests/layers.rs` holds the code to.

pub mod cli;
pub mod config;
pub mod console;
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
