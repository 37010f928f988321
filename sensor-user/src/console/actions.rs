//! The console's forms: what `kettlewatch device set|clear|state`, `mute`, `unmute` and
//! `baseline accept|reject` do, from a device's page, into the same store with the same
//! audit trail. A form is taken only from a page this console served: its origin must be
//! the console's own and it must carry the console's token (a cross-site page cannot
//! read it), so another site open in the operator's browser cannot act through it.

use serde::Deserialize;

use crate::store::{
    actions::{Decision, Mute, Override},
    state::Store,
};

/// A form's fields (each action reads its own).
#[derive(Debug, Default, Deserialize)]
pub struct Form {
    /// The console's token.
    #[serde(default)]
    pub token: String,
    /// Who is acting, as the operator typed it.
    #[serde(default)]
    pub by: String,
    /// `set`: the category.
    #[serde(default)]
    pub category: String,
    /// `set`: the name.
    #[serde(default)]
    pub name: String,
    /// `mute`, `unmute`: the rule.
    #[serde(default)]
    pub rule: String,
    /// `mute`, `unmute`: the destination, if only one.
    #[serde(default)]
    pub dest: String,
    /// `mute`: for how long (`7d`), for good when empty.
    #[serde(default, rename = "for")]
    pub duration: String,
    /// `accept`, `reject`: the allow entry.
    #[serde(default)]
    pub entry: String,
    /// `state`: the device's state, or `none`.
    #[serde(default)]
    pub state: String,
}

/// Why a form was refused: said on the page.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Not from a page of this console.
    #[error("this form did not come from this console's page (origin or token)")]
    Forged,
    /// A field says something the sensor cannot take.
    #[error("{0}")]
    Invalid(String),
    /// The store would not take it.
    #[error("{0}")]
    Store(#[from] crate::store::state::StateError),
}

/// Whether a request with these `Origin`, `Referer` and `Host` headers came from a page of
/// the console at `host`.
pub fn same_origin(origin: Option<&str>, referer: Option<&str>, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    let own = [format!("http://{host}"), format!("https://{host}")];
    match (origin, referer) {
        (Some(o), _) => own.iter().any(|x| x == o),
        (None, Some(r)) => own.iter().any(|x| r.starts_with(&format!("{x}/"))),
        (None, None) => false,
    }
}

fn nonempty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// Carries out `action` on device `mac` from `form`, at `now_ns`.
pub fn act(
    store: &mut Store,
    mac: &str,
    action: &str,
    form: &Form,
    now_ns: u64,
) -> Result<(), Refused> {
    let mac = mac
        .parse::<sensor_common::MacAddr>()
        .map_err(|_| Refused::Invalid(format!("{mac:?} is not a MAC address")))?
        .to_string();
    let by = nonempty(&form.by).unwrap_or_else(|| "console".into());
    match action {
        "set" => {
            let category = nonempty(&form.category);
            if let Some(c) = &category
                && !crate::model::vocab::CATEGORIES
                    .iter()
                    .any(|k| k == c && *k != "unknown")
            {
                return Err(Refused::Invalid(format!("{c:?} is not a category")));
            }
            let name = nonempty(&form.name);
            if category.is_none() && name.is_none() {
                return Err(Refused::Invalid(
                    "nothing to set: a category, a name or both".into(),
                ));
            }
            store.set_override(&Override {
                mac,
                category,
                name,
                by,
                at_ns: now_ns,
            })?;
        }
        "clear" => store.clear_override(&mac, &by, now_ns)?,
        "state" => {
            let state = crate::model::vocab::parse_device_state(form.state.trim())
                .map_err(Refused::Invalid)?;
            store.set_state(&mac, state, &by, now_ns)?;
        }
        "mute" | "unmute" => {
            let rule = nonempty(&form.rule)
                .filter(|r| crate::judge::rules::ALL.iter().any(|k| k.id == r))
                .ok_or_else(|| Refused::Invalid(format!("{:?} is not a rule", form.rule)))?;
            let dest = nonempty(&form.dest);
            if action == "mute" {
                let until_ns = match nonempty(&form.duration) {
                    None => None,
                    Some(d) => Some(
                        now_ns.saturating_add(
                            humantime::parse_duration(&d)
                                .map_err(|e| Refused::Invalid(format!("{d:?}: {e}")))?
                                .as_nanos() as u64,
                        ),
                    ),
                };
                store.mute(&Mute {
                    mac,
                    rule,
                    dest,
                    until_ns,
                    by,
                    at_ns: now_ns,
                })?;
            } else if !store.unmute(&mac, &rule, dest.as_deref(), &by, now_ns)? {
                return Err(Refused::Invalid(format!("no mute of {rule} to lift")));
            }
        }
        "accept" | "reject" => {
            let entry = form
                .entry
                .trim()
                .parse::<crate::judge::policy::allow::AllowRule>()
                .map_err(|e| Refused::Invalid(format!("{:?}: {e}", form.entry)))?
                .to_string();
            store.decide(&Decision {
                mac,
                entry,
                accepted: action == "accept",
                by,
                at_ns: now_ns,
            })?;
        }
        other => return Err(Refused::Invalid(format!("no action {other:?}"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_consoles_own_pages_may_post() {
        let host = Some("127.0.0.1:9561");
        assert!(same_origin(Some("http://127.0.0.1:9561"), None, host));
        assert!(same_origin(
            None,
            Some("http://127.0.0.1:9561/device/x"),
            host
        ));
        assert!(!same_origin(Some("http://evil.example"), None, host));
        assert!(!same_origin(
            Some("http://127.0.0.1:9561.evil.example"),
            None,
            host
        ));
        assert!(!same_origin(
            None,
            Some("http://127.0.0.1:9561.evil.example/"),
            host
        ));
        assert!(
            !same_origin(None, None, host),
            "a form without either is refused"
        );
        assert!(!same_origin(Some("http://127.0.0.1:9561"), None, None));
    }
}
