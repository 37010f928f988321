//! The vocabulary every stage shares: addresses and MACs, the kernel clock, device
//! categories and criticality, lists of names kept as data. A leaf: it imports no other stage.

pub mod addr;
pub mod clock;
pub mod glob_list;
pub mod vocab;
