//! The engine both drivers share: typed kernel events and polled counters in, EVE
//! events out, through the track, judge, emit and store stages.

pub mod build;
pub mod check;
pub mod sensor;
pub mod writes;

#[cfg(test)]
mod tests;
