//! Persisted state: the SQLite device inventory and learned baseline (`state`), and
//! printing it, or a fleet's devices, for `kettlewatch devices` and `baseline` (`print`).

pub mod print;
pub mod state;
