//! The kernel side seen from userspace: loading the eBPF object, reading its maps and
//! ring-buffer records, writing the policy maps, and dropping privileges after.

pub mod generations;
pub mod loader;
pub mod maps;
pub mod policy_maps;
pub mod privileges;
pub mod records;
