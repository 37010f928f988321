//! The vocabulary every stage shares: addresses and MACs, the kernel clock, device
//! categories and criticality. A leaf: it imports no other stage.

pub mod addr;
pub mod clock;
pub mod vocab;
