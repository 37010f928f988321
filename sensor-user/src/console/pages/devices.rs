//! Every device: who it is, what it is and how sure, how much it matters, whether it is
//! still learning, its alerts in the last day, when it was last seen. Sorted and filtered
//! by the query (`?sort=alerts&dir=desc&q=cam&category=camera`), so a link keeps a view.

use std::collections::BTreeMap;

use maud::{Markup, html};
use serde::Deserialize;

use super::{Page, device_href, now_ns, shell, when};
use crate::store::state::{StateError, Store, StoredDevice};

/// The query.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Params {
    /// Column to sort by.
    pub sort: Option<String>,
    /// `asc` or `desc`.
    pub dir: Option<String>,
    /// Text any column may contain.
    pub q: Option<String>,
    /// Only this category.
    pub category: Option<String>,
}

const DAY_NS: u64 = 24 * 3600 * 1_000_000_000;

/// A device's row.
pub(crate) struct Row {
    pub d: StoredDevice,
    pub name: String,
    pub alerts_day: u64,
    pub learning_until_ns: Option<u64>,
    /// The state an operator put it in.
    pub state: Option<String>,
}

/// The name a person knows a device by: declared, else the one it gave itself.
pub(crate) fn display_name(d: &StoredDevice) -> String {
    d.name
        .clone()
        .or_else(|| d.profile.hostname.clone())
        .unwrap_or_default()
}

/// The learning phase at `now`: `learning until ...`, `enforcing` after, or nothing known.
pub(crate) fn phase(until_ns: Option<u64>, now: u64) -> String {
    match until_ns {
        Some(u) if u > now => format!("learning until {}", when(u)),
        Some(_) => "learned".into(),
        None => "-".into(),
    }
}

fn criticality_rank(c: &str) -> u8 {
    match c {
        "critical" => 0,
        "high" => 1,
        "medium" => 2,
        _ => 3,
    }
}

pub(crate) fn rows(store: &Store, now: u64) -> Result<Vec<Row>, StateError> {
    let counts: BTreeMap<String, u64> = store
        .alert_counts(now.saturating_sub(DAY_NS))?
        .into_iter()
        .collect();
    let windows: BTreeMap<String, u64> = store.windows()?.into_iter().collect();
    let states: BTreeMap<String, String> = store
        .device_states()?
        .into_iter()
        .map(|s| (s.mac, s.state))
        .collect();
    Ok(store
        .devices()?
        .into_iter()
        .map(|d| Row {
            name: display_name(&d),
            alerts_day: counts.get(&d.mac).copied().unwrap_or(0),
            learning_until_ns: windows.get(&d.mac).copied(),
            state: states.get(&d.mac).cloned(),
            d,
        })
        .collect())
}

fn matches(r: &Row, q: &str) -> bool {
    let q = q.to_lowercase();
    let p = r.d.product.as_ref();
    [
        Some(r.name.as_str()),
        Some(r.d.mac.as_str()),
        r.d.vendor.as_deref(),
        Some(r.d.category.as_str()),
        r.state.as_deref(),
        r.d.gateway.as_deref(),
        p.and_then(|p| p.brand.as_deref()),
        p.and_then(|p| p.model.as_deref()),
    ]
    .into_iter()
    .flatten()
    .chain(r.d.addresses.iter().map(String::as_str))
    .any(|v| v.to_lowercase().contains(&q))
}

/// The page.
pub fn render(site: &super::super::Site, store: &Store, p: &Params) -> Result<Page, StateError> {
    let now = now_ns();
    let mut rows = rows(store, now)?;
    if let Some(q) = p.q.as_deref().filter(|q| !q.trim().is_empty()) {
        rows.retain(|r| matches(r, q.trim()));
    }
    if let Some(c) = p.category.as_deref().filter(|c| !c.is_empty()) {
        rows.retain(|r| r.d.category == c);
    }
    let sort = p.sort.as_deref().unwrap_or("last_seen");
    let desc = p
        .dir
        .as_deref()
        .map_or(sort == "last_seen" || sort == "alerts", |d| d == "desc");
    rows.sort_by(|a, b| {
        let o = match sort {
            "name" => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
            "mac" => a.d.mac.cmp(&b.d.mac),
            "category" => a.d.category.cmp(&b.d.category),
            "confidence" => a.d.confidence.total_cmp(&b.d.confidence),
            "criticality" => {
                criticality_rank(&b.d.criticality).cmp(&criticality_rank(&a.d.criticality))
            }
            "alerts" => a.alerts_day.cmp(&b.alerts_day),
            _ => a.d.last_seen_ns.cmp(&b.d.last_seen_ns),
        };
        if desc { o.reverse() } else { o }.then_with(|| a.d.mac.cmp(&b.d.mac))
    });
    let link = |col: &str| {
        let dir = if col == sort && !desc { "desc" } else { "asc" };
        let mut query = vec![("sort", col), ("dir", dir)];
        for (k, v) in [("q", &p.q), ("category", &p.category)] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                query.push((k, v));
            }
        }
        format!(
            "/?{}",
            serde_urlencoded::to_string(&query).unwrap_or_default()
        )
    };
    let categories: std::collections::BTreeSet<&str> = crate::model::vocab::CATEGORIES.into();
    // Devices from a fleet's bucket name their gateway.
    let fleet = rows.iter().any(|r| r.d.gateway.is_some());
    let body = html! {
        form.filter method="get" action="/" {
            input type="search" name="q" placeholder="name, MAC, address, vendor, brand" value=(p.q.clone().unwrap_or_default());
            select name="category" {
                option value="" { "any category" }
                @for c in &categories {
                    option value=(c) selected[p.category.as_deref() == Some(*c)] { (c) }
                }
            }
            input type="hidden" name="sort" value=(sort);
            button type="submit" { "Filter" }
        }
        p.muted { (rows.len()) " devices" }
        table #devices {
            thead { tr {
                @if fleet { th { "Gateway" } }
                th { a href=(link("name")) { "Name" } }
                th { a href=(link("mac")) { "MAC" } }
                th { "Addresses" }
                th { a href=(link("category")) { "Category" } }
                th.num { a href=(link("confidence")) { "Confidence" } }
                th { "Brand / model" }
                th { a href=(link("criticality")) { "Criticality" } }
                th { "Inventory" }
                th { "State" }
                th { "Baseline" }
                th.num { a href=(link("alerts")) { "Alerts (24 h)" } }
                th { a href=(link("last_seen")) { "Last seen" } }
            } }
            tbody {
                @for r in &rows {
                    (row(r, now, fleet))
                }
            }
        }
    };
    Ok(Page::Found(shell::page(&site.host, "Devices", body)))
}

fn row(r: &Row, now: u64, fleet: bool) -> Markup {
    let d = &r.d;
    let product = d
        .product
        .as_ref()
        .map(|p| {
            [p.brand.as_deref(), p.model.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let mut addresses = d.addresses.clone();
    let more = addresses.len().saturating_sub(3);
    addresses.truncate(3);
    html! {
        tr data-mac=(d.mac) {
            @if fleet { td.gateway { (d.gateway.clone().unwrap_or_default()) } }
            td { a href=(device_href(&d.mac)) { @if r.name.is_empty() { span.muted { "(no name)" } } @else { (r.name) } } }
            td { code { (d.mac) } }
            td { (addresses.join(", ")) @if more > 0 { span.muted { " +" (more) } } }
            td.category { (d.category) }
            td.num { (format!("{:.2}", d.confidence)) }
            td { (product) }
            td { (d.criticality) }
            td { (d.inventory_status) }
            td.state { (r.state.as_deref().unwrap_or("")) }
            td { (phase(r.learning_until_ns, now)) }
            td.num.alerts { (r.alerts_day) }
            td { (when(d.last_seen_ns)) }
        }
    }
}
