//! Emitting: shaping records as EVE JSON (`eve`), writing lines to their sinks
//! (`output`), and the alert latency sample (`latency`). A new sink is a variant in `output`.

pub mod eve;
pub mod latency;
pub mod output;
