//! `cargo xtask bench`'s parts: the BPF_PROG_TEST_RUN primitives, the userspace figures,
//! the end-to-end run through a veth pair against other counters, the known-flow and
//! first-payload breakdowns, a fleet's inventory in a JetStream cluster, and the plot.

pub mod e2e;
pub mod first_payload;
pub mod fleet;
pub mod known_flow;
pub mod plot;
pub mod run;
pub mod userspace;
