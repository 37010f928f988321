//! An alert rule as events carry it; the registry of rules is `judge/rules.rs`.

/// One rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Stable id (`iot.rule.id`).
    pub id: &'static str,
    /// EVE `alert.signature_id`.
    pub signature_id: u32,
    /// EVE `alert.signature`.
    pub signature: &'static str,
    /// EVE `alert.category`.
    pub category: &'static str,
    /// EVE `alert.severity`: 1 high .. 3 low.
    pub severity: u8,
}

/// A rule (a `const fn`, so the registry is a list of constants).
pub const fn rule(
    id: &'static str,
    sid: u32,
    signature: &'static str,
    category: &'static str,
    severity: u8,
) -> Rule {
    Rule {
        id,
        signature_id: sid,
        signature,
        category,
        severity,
    }
}
