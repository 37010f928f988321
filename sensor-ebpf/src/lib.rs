//! Lets sensor-user name this crate as a build dependency, so cargo rebuilds the eBPF
//! object when it changes; the programs themselves are in the `sensor` binary.
#![no_std]
