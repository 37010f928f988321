//! Persisted state: the SQLite device inventory and learned baseline (`state`), the
//! alert history (`alerts`), where each device went (`destinations`), what operators
//! decided (`actions`), and printing them, or a fleet's devices, for `kettlewatch
//! devices` and `baseline` (`print`).

pub mod actions;
pub mod alerts;
pub mod destinations;
pub mod print;
pub mod state;
