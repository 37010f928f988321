//! kettlewatch: an in-kernel IoT traffic sensor for Linux gateways.
//!
//! Data flow, top to bottom: `loader` puts the eBPF program in the kernel; `kernel_maps`
//! reads its maps and ring buffer; `events` decodes ring-buffer records; `discovery`
//! decodes what devices say into facts, merged per device by `profile`; `flows` and
//! `devices` turn counters and events into records; `classify` and `criticality`
//! (through `assess`) say what a device is and how much it matters; `inventory` compares
//! that with what was declared; `state` persists the inventory; `eve` shapes records as
//! EVE JSON; `output` writes them. `sensor` is the engine that strings those stages together, and
//! `run` (a live interface) and `replay` (capture files) drive it.

pub mod addr;
pub mod anomaly;
pub mod assess;
pub mod baseline;
pub mod capture;
pub mod classify;
pub mod cli;
pub mod clock;
pub mod config;
pub mod criticality;
pub mod devices;
pub mod discovery;
pub mod eve;
pub mod events;
pub mod flows;
#[doc(hidden)]
pub mod fuzzing;
pub mod intel;
pub mod inventory;
pub mod inventory_print;
pub mod kernel_maps;
pub mod kernel_policy;
pub mod latency;
pub mod loader;
pub mod output;
pub mod policy;
pub mod privileges;
pub mod profile;
pub mod replay;
pub mod rules;
pub mod run;
pub mod sensor;
pub mod state;
