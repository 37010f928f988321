//! Persisted state: the SQLite device inventory and learned baseline (`state`), and
//! printing it for `kettlewatch devices` and `baseline` (`print`).

pub mod print;
pub mod state;
