//! Emitting: shaping records as EVE JSON (`eve`), writing lines to their sinks
//! (`output`), the terminal view (`text`), the alert latency sample (`latency`), and the
//! Prometheus endpoint (`metrics`), and the fleet output to NATS JetStream (`nats`). A new line sink is a variant in `output`.

pub mod eve;
pub mod latency;
pub mod metrics;
pub mod nats;
pub mod output;
pub mod sinks;
pub mod text;
