//! Test support: the skip rules, what IoT devices announce, RAII guards for network namespaces and sensor processes,
//! the lab topology, frame builders, the eBPF program under BPF_PROG_TEST_RUN, and
//! schema-checked parsing of the event stream, and real servers a test starts
//! (Prometheus, NATS).

pub mod announce;
pub mod bench;
pub mod browser;
pub mod env;
pub mod events;
pub mod frames;
pub mod fuzz;
pub mod lab;
pub mod nats;
pub mod netns;
pub mod proc;
pub mod prometheus;
pub mod registrar;
pub mod sshd;
pub mod webdriver;
pub mod xdp;
