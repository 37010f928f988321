//! One device's story: who and what it is and why (the votes behind its category), the
//! software it runs and what that is known to be vulnerable to, where it goes (the
//! destinations its baseline learned, and its learning window), and what was alerted.

use maud::{Markup, html};

use super::{Page, devices, now_ns, shell, when};
use crate::store::{
    actions::DeviceState,
    alerts::AlertFilter,
    state::{StateError, Store, StoredDevice},
};

/// Alerts listed on a device's page.
const ALERTS_SHOWN: usize = 200;

/// Destinations listed on a device's page.
const DESTINATIONS_SHOWN: usize = 100;

/// The page for `mac`.
pub fn render(site: &super::super::Site, store: &Store, mac: &str) -> Result<Page, StateError> {
    let mac = mac.to_ascii_lowercase();
    let Some(d) = store.device(&mac)? else {
        return Ok(Page::NotFound(shell::page(
            &site.host,
            "No such device",
            html! { p { "The state directory has no device " code { (mac) } "." } },
        )));
    };
    let now = now_ns();
    let window = store
        .windows()?
        .into_iter()
        .find(|(m, _)| *m == mac)
        .map(|(_, u)| u);
    let learned: Vec<(String, u64)> = store
        .learned()?
        .into_iter()
        .filter(|(m, ..)| *m == mac)
        .map(|(_, rule, first)| (rule, first))
        .collect();
    let alerts = store.alerts(&AlertFilter {
        mac: Some(mac.clone()),
        limit: Some(ALERTS_SHOWN),
        ..Default::default()
    })?;
    let mutes: Vec<_> = store
        .mutes()?
        .into_iter()
        .filter(|m| m.mac == mac)
        .collect();
    let audit = store.audit(Some(&mac), 50)?;
    let went = store.destinations(&mac, DESTINATIONS_SHOWN)?;
    let state = store.device_states()?.into_iter().find(|s| s.mac == mac);
    let name = devices::display_name(&d);
    let title = if name.is_empty() {
        mac.clone()
    } else {
        format!("{name} ({mac})")
    };
    let body = html! {
        (identity(&d, state.as_ref(), window, now))
        (evidence(&d))
        (software(&d))
        section #destinations {
            @if !d.declared_rules.is_empty() {
                h2 { "Destinations its policies allow" }
                p.muted { "From " (d.policies.iter().filter(|p| *p != "learned").cloned().collect::<Vec<_>>().join(", ")) " in the configuration." }
                table #declared { thead { tr { th { "Destination" } } }
                    tbody { @for r in &d.declared_rules { tr { td { code { (r) } } } } } }
            }
            h2 { "Destinations it learned" }
            p.muted { (phase_text(window, now)) }
            @if learned.is_empty() {
                p { "None learned." }
            } @else {
                table { thead { tr { th { "Destination" } th { "First used" } th {} } }
                    tbody { @for (rule, first) in &learned { tr {
                        td { code { (rule) } }
                        td { (when(*first)) }
                        td { @if !site.read_only { form.inline method="post" action=(format!("/device/{mac}/reject")) {
                            input type="hidden" name="token" value=(site.token);
                            input type="hidden" name="entry" value=(rule);
                            button type="submit" { "Reject" }
                        } } }
                    } } } }
            }
        }
        section #traffic {
            h2 { "Where it went" }
            p.muted { "Each destination it sent to, the most recent first, from the flow records: flows opened, frames and bytes it sent, the kernel's latest verdict." }
            @if went.is_empty() {
                p { "No flow recorded yet." }
            } @else {
                table { thead { tr {
                    th { "Destination" } th { "Protocol" } th { "Verdict" }
                    th.num { "Flows" } th.num { "Frames" } th.num { "Bytes" }
                    th { "First" } th { "Last" }
                } }
                tbody { @for u in &went { tr data-dest=(u.addr) {
                    td { code { (dest(u)) } }
                    td { (u.app_proto.clone().unwrap_or_default()) }
                    td.verdict { (u.verdict) }
                    td.num { (u.flows) } td.num { (u.packets) } td.num { (u.bytes) }
                    td { (when(u.first_ns)) } td { (when(u.last_ns)) }
                } } } }
            }
        }
        @if site.read_only {
            section #operator {
                h2 { "Correct the sensor" }
                p.muted { "This is a read-only fleet view. Act on the gateway's own console or command line ("
                    code { "kettlewatch device set|state" } ", " code { "mute" } ", " code { "baseline accept|reject" } ")." }
            }
        } @else { section #operator {
            h2 { "Correct the sensor" }
            p.muted { "A running sensor takes these in within seconds. The command line does the same: "
                code { "kettlewatch device set|state" } ", " code { "mute" } ", " code { "baseline accept|reject" } "." }
            (forms(&site.token, &d, state.as_ref()))
            @if !mutes.is_empty() {
                h3 { "Muted rules" }
                table { thead { tr { th { "Rule" } th { "Destination" } th { "Until" } th { "By" } } }
                    tbody { @for m in &mutes { tr {
                        td { (m.rule) }
                        td { (m.dest.clone().unwrap_or_else(|| "any".into())) }
                        td { @match m.until_ns { Some(u) if u <= now => { (when(u)) " " span.muted { "(expired)" } }, Some(u) => { (when(u)) }, None => { "for good" } } }
                        td { (m.by) }
                        td { form.inline method="post" action=(format!("/device/{mac}/unmute")) {
                            input type="hidden" name="token" value=(site.token);
                            input type="hidden" name="rule" value=(m.rule);
                            input type="hidden" name="dest" value=(m.dest.clone().unwrap_or_default());
                            button type="submit" { "Unmute" }
                        } }
                    } } } }
            }
            @if !audit.is_empty() {
                h3 { "Audit trail" }
                table { thead { tr { th { "When" } th { "Who" } th { "Action" } th { "Detail" } } }
                    tbody { @for e in &audit { tr { td { (when(e.at_ns)) } td { (e.by) } td { (e.action) } td { (e.detail) } } } } }
            }
        } }
        section #alerts {
            h2 { "Alerts" }
            @if alerts.is_empty() { p { "No alert in the history." } }
            @else { (super::alerts::table(&alerts, false)) }
        }
    };
    Ok(Page::Found(shell::page(&site.host, &title, body)))
}

/// `203.0.113.7:443/TCP`, `[2001:db8::1]:443/UDP`, `203.0.113.7/ICMP`.
fn dest(u: &crate::store::destinations::DestinationUse) -> String {
    let proto = crate::model::addr::proto_name(u.proto);
    let addr = if u.addr.contains(':') {
        format!("[{}]", u.addr)
    } else {
        u.addr.clone()
    };
    match u.proto {
        6 | 17 | 132 => format!("{addr}:{}/{proto}", u.port),
        _ => format!("{addr}/{proto}"),
    }
}

/// The forms that correct what the sensor says of this device.
fn forms(token: &str, d: &StoredDevice, state: Option<&DeviceState>) -> Markup {
    let mac = &d.mac;
    let by = html! { input type="text" name="by" placeholder="your name" size="12"; };
    html! {
        form.filter #set method="post" action=(format!("/device/{mac}/set")) {
            input type="hidden" name="token" value=(token);
            select name="category" {
                option value="" { "category unchanged" }
                @for c in crate::model::vocab::CATEGORIES.iter().filter(|c| **c != "unknown") {
                    option value=(c) { (c) }
                }
            }
            input type="text" name="name" placeholder="name" value=(d.name.clone().unwrap_or_default());
            (by)
            button type="submit" { "Set" }
        }
        @if d.category_source == "operator" {
            form.filter #clear method="post" action=(format!("/device/{mac}/clear")) {
                input type="hidden" name="token" value=(token);
                (by)
                button type="submit" { "Back to what the sensor sees" }
            }
        }
        form.filter #state method="post" action=(format!("/device/{mac}/state")) {
            input type="hidden" name="token" value=(token);
            select name="state" {
                @for s in std::iter::once("none").chain(crate::model::vocab::DEVICE_STATES) {
                    option value=(s) selected[state.map_or("none", |x| x.state.as_str()) == s] { (s) }
                }
            }
            (by)
            button type="submit" { "Set state" }
        }
        form.filter #mute method="post" action=(format!("/device/{mac}/mute")) {
            input type="hidden" name="token" value=(token);
            select name="rule" {
                @for r in crate::judge::rules::ALL.iter() { option value=(r.id) { (r.id) } }
            }
            input type="text" name="dest" placeholder="only this destination (optional)";
            input type="text" name="for" placeholder="for (7d; empty: for good)" size="14";
            (by)
            button type="submit" { "Mute" }
        }
        form.filter #accept method="post" action=(format!("/device/{mac}/accept")) {
            input type="hidden" name="token" value=(token);
            input type="text" name="entry" placeholder="destination to allow: host:443/tcp";
            (by)
            button type="submit" { "Accept into its baseline" }
        }
    }
}

fn phase_text(window: Option<u64>, now: u64) -> String {
    match window {
        Some(u) if u > now => format!("Learning until {}: what it contacts is learned.", when(u)),
        Some(u) => format!(
            "Learned until {}; a new destination since is an alert.",
            when(u)
        ),
        None => "No learning window recorded.".into(),
    }
}

fn identity(
    d: &StoredDevice,
    state: Option<&DeviceState>,
    window: Option<u64>,
    now: u64,
) -> Markup {
    let p = d.product.as_ref();
    let source = if d.category_source.is_empty() {
        "observed"
    } else {
        d.category_source.as_str()
    };
    html! {
        section #identity {
            dl {
                @if let Some(g) = &d.gateway { dt { "Gateway" } dd #gateway { (g) } }
                dt { "MAC" } dd { code { (d.mac) } }
                @if let Some(id) = &d.identity { dt { "Same device as" } dd { a href=(super::device_href(&id.tied_to)) { (id.tied_to) } " (by " (id.by) ")" } }
                dt { "Addresses" } dd { (d.addresses.join(", ")) }
                dt { "Host name" } dd { (d.profile.hostname.clone().unwrap_or_default()) }
                dt { "Vendor (IEEE)" } dd { (d.vendor.clone().unwrap_or_default()) }
                dt { "Brand" } dd { (p.and_then(|p| p.brand.clone()).unwrap_or_default()) }
                dt { "Model" } dd { (p.and_then(|p| p.model.clone()).unwrap_or_default()) }
                dt { "Category" } dd #category { (d.category) " " span.muted { "(" (source) ", confidence " (format!("{:.2}", d.confidence)) ")" } }
                dt { "Criticality" } dd { (d.criticality) " " span.muted { (d.why) } }
                dt { "Inventory" } dd { (d.inventory_status) }
                dt { "State" } dd #device-state { @match state {
                    Some(s) => { (s.state) " " span.muted { "(" (s.by) ", " (when(s.at_ns)) ")" } },
                    None => { "none" },
                } }
                dt { "Baseline" } dd { (devices::phase(window, now)) }
                dt { "First seen" } dd { (when(d.first_seen_ns)) }
                dt { "Last seen" } dd { (when(d.last_seen_ns)) }
            }
        }
    }
}

fn evidence(d: &StoredDevice) -> Markup {
    html! {
        section #evidence {
            h2 { "Why this category" }
            @if d.evidence.is_empty() {
                p { "No fact matched a rule: the category stays unknown until the device says more." }
            } @else {
                p.muted { "Each fact that matched a rule, strongest first. A weight is a log-likelihood ratio: e^weight multiplies the odds of its category." }
                table {
                    thead { tr { th { "Fact" } th { "Value" } th { "Rule" } th { "Category" } th.num { "Weight" } } }
                    tbody {
                        @for e in &d.evidence {
                            tr {
                                td { (e.fact) }
                                td { code { (e.value) } }
                                td { code { (e.pattern) } }
                                td { (e.category) }
                                td.num {
                                    (format!("{:+.2}", e.weight))
                                    @if e.discounted { " " span.muted { "(not counted: a general-purpose stack's fact)" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn software(d: &StoredDevice) -> Markup {
    let sw = &d.profile.software;
    html! {
        section #software {
            h2 { "Software" }
            @if sw.is_empty() {
                p { "Nothing it sent named its software yet." }
            } @else {
                table {
                    thead { tr { th { "Product" } th { "Version" } th { "CPE" } th { "Named by" } th { "Last named" } } }
                    tbody {
                        @for s in sw {
                            tr {
                                td { (s.product) }
                                td { (s.version.clone().unwrap_or_default()) }
                                td { code { (s.cpe.clone().unwrap_or_default()) } }
                                td { (s.sources.iter().map(|x| serde_json::to_value(x).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()).collect::<Vec<_>>().join(", ")) }
                                td { (s.last_seen) }
                            }
                        }
                    }
                }
            }
            @if !d.vulnerabilities.is_empty() {
                h3 { "Known vulnerabilities" }
                table {
                    thead { tr { th { "CVE" } th { "Exploited (CISA KEV)" } th { "Product" } th { "Range" } th { "Basis" } } }
                    tbody {
                        @for v in &d.vulnerabilities {
                            tr {
                                td { (v.cve) }
                                td { @if v.known_exploited { strong.sev1 { "yes" } } @else { "no" } }
                                td { (v.product) " " (v.version.clone().unwrap_or_default()) }
                                td { (v.range) }
                                td { (v.basis) }
                            }
                        }
                    }
                }
            }
        }
    }
}
