//! Tracking: the userspace flow table (counters to `flow` records) and the device table
//! (every source MAC, its addresses and its profile).

pub mod devices;
pub mod flows;
