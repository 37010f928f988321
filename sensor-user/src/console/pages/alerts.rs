//! The alert timeline from the history, newest first, filtered by device, rule and
//! severity (`?device=..&rule=..&severity=2`); each alert links to its device and names
//! its flow (`flow_id`, the tuple) when it has one.

use maud::{Markup, html};
use serde::Deserialize;

use super::{Page, device_href, shell, when};
use crate::store::{
    alerts::{AlertFilter, StoredAlert},
    state::{StateError, Store},
};

/// The query.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Params {
    /// Only this device's (MAC).
    pub device: Option<String>,
    /// Only this rule's (`beacon`).
    pub rule: Option<String>,
    /// Only this severe or more (1 high, 3 low).
    pub severity: Option<String>,
}

/// Alerts one page lists.
const SHOWN: usize = 500;

/// The page.
pub fn render(site: &super::super::Site, store: &Store, p: &Params) -> Result<Page, StateError> {
    let nonempty = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    let filter = AlertFilter {
        mac: nonempty(&p.device).map(|m| m.trim().to_ascii_lowercase()),
        rule: nonempty(&p.rule).map(|r| r.trim().to_string()),
        max_severity: p.severity.as_deref().and_then(|s| s.parse().ok()),
        since_ns: None,
        limit: Some(SHOWN),
    };
    let alerts = store.alerts(&filter)?;
    let rules = store.alert_rules()?;
    let body = html! {
        form.filter method="get" action="/alerts" {
            input type="text" name="device" placeholder="device MAC" value=(filter.mac.clone().unwrap_or_default());
            select name="rule" {
                option value="" { "any rule" }
                @for r in &rules { option value=(r) selected[filter.rule.as_deref() == Some(r.as_str())] { (r) } }
            }
            select name="severity" {
                option value="" { "any severity" }
                @for (v, label) in [(1, "1 (high)"), (2, "2 or higher"), (3, "3 or higher")] {
                    option value=(v) selected[filter.max_severity == Some(v)] { (label) }
                }
            }
            button type="submit" { "Filter" }
        }
        p.muted { (alerts.len()) " alerts" @if alerts.len() == SHOWN { " (the newest " (SHOWN) ")" } }
        (table(&alerts, true))
    };
    Ok(Page::Found(shell::page(&site.host, "Alerts", body)))
}

/// The alerts as a table; `with_device` adds the device column (not on a device's page).
pub fn table(alerts: &[StoredAlert], with_device: bool) -> Markup {
    html! {
        table.alerts {
            thead { tr {
                th { "Time" } th { "Severity" } th { "Rule" } th { "Signature" }
                @if with_device { th { "Device" } }
                th { "About" } th { "Flow" }
            } }
            tbody {
                @for a in alerts {
                    (row(a, with_device))
                }
            }
        }
    }
}

fn row(a: &StoredAlert, with_device: bool) -> Markup {
    let v = a.eve();
    let about = match (v["dest_ip"].as_str(), v["dest_port"].as_u64()) {
        (Some(ip), Some(port)) if port != 0 => {
            format!("{ip}:{port}/{}", v["proto"].as_str().unwrap_or(""))
        }
        (Some(ip), _) => ip.to_string(),
        _ => v["iot"]["dns"]["rrname"].as_str().unwrap_or("").to_string(),
    };
    let flow = v["flow_id"]
        .as_u64()
        .map(|id| id.to_string())
        .unwrap_or_default();
    let name = v["iot"]["device"]["name"].as_str().unwrap_or("");
    html! {
        tr data-rule=(a.rule) {
            td { (when(a.ts_ns)) }
            td class=(format!("sev{}", a.severity)) { (a.severity) }
            td { a href=(format!("/alerts?rule={}", a.rule)) { (a.rule) } }
            td { (a.signature) }
            @if with_device {
                td { @if let Some(m) = &a.mac { a href=(device_href(m)) { @if name.is_empty() { code { (m) } } @else { (name) } } } }
            }
            td { code { (about) } }
            td { @if !flow.is_empty() { span title=(v["community_id"].as_str().unwrap_or("")) { code { (flow) } } } }
        }
    }
}
