//! Persisted state: the SQLite device inventory and learned baseline (`state`), printing
//! it for `kettlewatch devices` and `baseline` (`print`), and every gateway's devices
//! read back from the fleet's NATS bucket (`fleet`, `kettlewatch devices --nats`).

pub mod fleet;
pub mod print;
pub mod state;
