//! The vocabulary every stage shares: addresses and MACs, the kernel clock, device
//! categories and criticality, the device and the flow as every stage sees them, alert
//! rules. It imports only `discover` (a device carries the profile its decoders built).

pub mod addr;
pub mod alert;
pub mod clock;
pub mod device;
pub mod flow;
pub mod identity;
pub mod rule;
pub mod vocab;
