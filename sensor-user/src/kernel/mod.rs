//! The kernel side seen from userspace: loading the eBPF object, its maps (read by polls,
//! written with what the judge stage decided), its ring-buffer records, and dropping
//! privileges after.

pub mod loader;
pub mod maps;
pub mod privileges;
pub mod records;
