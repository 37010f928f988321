//! The engine both drivers share: typed kernel events and polled counters in, EVE
//! events out, through the track, judge, emit and store stages.

pub mod check;
pub mod sensor;

#[cfg(test)]
mod tests;
