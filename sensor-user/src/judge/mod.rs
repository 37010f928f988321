//! Judging what is seen: what a device is (`classify`, `product`, `criticality`,
//! `assess`), whether
//! it was declared (`inventory`), which earlier MAC a randomised one stands for
//! (`identity`), and whether its traffic is expected (`baseline` over
//! `policy`, `intel`, `anomaly`). `rules` is the registry of every alert rule. A new
//! detector is a module here fed by the engine.

pub mod anomaly;
pub mod assess;
pub mod baseline;
pub mod classify;
pub mod criticality;
pub mod ha_discovery;
pub mod identity;
pub mod intel;
pub mod inventory;
pub mod policy;
pub mod product;
pub mod rules;
pub mod vulns;
