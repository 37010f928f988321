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

/// The keys whose values differ between `old` and `new` (added, gone or changed), in
/// order: what an operator's new settings change.
pub(crate) fn changed_keys<K: Ord + Copy, V: PartialEq>(
    old: &std::collections::BTreeMap<K, V>,
    new: &std::collections::BTreeMap<K, V>,
) -> Vec<K> {
    old.keys()
        .chain(new.keys())
        .filter(|k| old.get(k) != new.get(k))
        .copied()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}
