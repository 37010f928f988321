//! Parts of `cargo xtask bench` that are more than a BPF_PROG_TEST_RUN loop: the
//! end-to-end run through a veth pair against other counters, and the plot.

pub mod e2e;
pub mod plot;
