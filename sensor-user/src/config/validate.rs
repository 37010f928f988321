//! The checks a configuration's values must pass beyond their types (positive
//! intervals, power-of-two sizes, known categories, valid MACs and prefixes), each
//! pointing at the value's span.

use sensor_common::MacAddr;

use std::ops::Range;

use super::Config;
use crate::model::vocab::CATEGORIES;

impl Config {
    /// The first value that fails a check: its span and why.
    pub(super) fn validate(&self) -> Result<(), (Range<usize>, String)> {
        let s = &self.sensor;
        for (d, what) in [
            (&s.poll_interval, "poll_interval"),
            (&s.stats_interval, "stats_interval"),
            (&s.flow_report, "flow_report"),
            (&s.flow_sweep_interval, "flow_sweep_interval"),
        ] {
            if d.get_ref().is_zero() {
                return Err((d.span(), format!("{what} must be longer than zero")));
            }
        }
        for (n, what, min) in [
            (&s.max_flows, "max_flows", 1),
            (&s.max_devices, "max_devices", 1),
        ] {
            if *n.get_ref() < min {
                return Err((n.span(), format!("{what} must be at least {min}")));
            }
        }
        let ring = *s.ring_buffer_bytes.get_ref();
        if !ring.is_power_of_two() || ring < 4096 {
            return Err((
                s.ring_buffer_bytes.span(),
                format!("ring_buffer_bytes must be a power of two of at least 4096, not {ring}"),
            ));
        }
        if s.name.is_empty() {
            return Err((0..0, "[sensor] name must not be empty".into()));
        }
        if let Some(n) = &self.output.nats {
            n.validate()?;
        }
        for m in [&self.states.authorised, &self.states.investigating]
            .into_iter()
            .flatten()
        {
            if *m.get_ref() == super::Mode::Learn {
                return Err((
                    m.span(),
                    "a state's mode is monitor or enforce: an operator's state comes after \
                     learning"
                        .into(),
                ));
            }
        }
        if let Some(c) = &self.console
            && c.token_file.is_none()
            && !c.listen.get_ref().ip().to_canonical().is_loopback()
        {
            return Err((
                c.listen.span(),
                format!(
                    "the console at {} would be reachable from other hosts with no login: \
                     set [console] token_file (or listen on loopback behind an \
                     authenticating proxy)",
                    c.listen.get_ref()
                ),
            ));
        }
        if self.inventory.missing_after.get_ref().is_zero() {
            return Err((
                self.inventory.missing_after.span(),
                "missing_after must be longer than zero".into(),
            ));
        }
        let policy_windows = self.policies.iter().filter_map(|p| p.learn_for.as_ref());
        for w in std::iter::once(&self.baseline.learn_for).chain(policy_windows) {
            if w.get_ref().is_zero() {
                return Err((w.span(), "learn_for must be longer than zero".into()));
            }
        }
        for l in &self.baseline.local {
            if l.get_ref().parse::<ipnet::IpNet>().is_err()
                && l.get_ref().parse::<std::net::IpAddr>().is_err()
            {
                return Err((
                    l.span(),
                    format!("{:?} is not an address or prefix", l.get_ref()),
                ));
            }
        }
        let an = &self.anomaly;
        for (d, what) in [
            (&an.window, "window"),
            (&an.volume_interval, "volume_interval"),
        ] {
            if d.get_ref().is_zero() {
                return Err((d.span(), format!("{what} must be longer than zero")));
            }
        }
        for s in an.dns_servers.iter().chain(&an.ntp_servers) {
            if s.get_ref().parse::<ipnet::IpNet>().is_err()
                && s.get_ref().parse::<std::net::IpAddr>().is_err()
            {
                return Err((
                    s.span(),
                    format!("{:?} is not an address or prefix", s.get_ref()),
                ));
            }
        }
        for a in &self.canary.addresses {
            if a.get_ref().parse::<std::net::IpAddr>().is_err() {
                return Err((a.span(), format!("{:?} is not an IP address", a.get_ref())));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for p in &self.policies {
            if !names.insert(p.name.get_ref().clone()) {
                return Err((
                    p.name.span(),
                    format!("policy {:?} is defined twice", p.name.get_ref()),
                ));
            }
            for c in &p.categories {
                if !CATEGORIES.contains(&c.get_ref().as_str()) {
                    return Err((
                        c.span(),
                        format!(
                            "unknown category {:?}; one of {}",
                            c.get_ref(),
                            CATEGORIES.join(", ")
                        ),
                    ));
                }
            }
            for m in &p.devices {
                if m.get_ref().parse::<MacAddr>().ok().is_none() {
                    return Err((m.span(), format!("{:?} is not a MAC address", m.get_ref())));
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for d in &self.devices {
            if let Some(p) = &d.policy
                && !names.contains(p.get_ref())
            {
                return Err((p.span(), format!("no [[policy]] named {:?}", p.get_ref())));
            }
            let Some(mac) = d.mac.get_ref().parse::<MacAddr>().ok() else {
                return Err((
                    d.mac.span(),
                    format!(
                        "{:?} is not a MAC address like 02:00:5e:10:00:0a",
                        d.mac.get_ref()
                    ),
                ));
            };
            if !seen.insert(mac) {
                return Err((
                    d.mac.span(),
                    format!("{} is declared twice", d.mac.get_ref()),
                ));
            }
            if let Some(c) = &d.category
                && !CATEGORIES.contains(&c.get_ref().as_str())
            {
                return Err((
                    c.span(),
                    format!(
                        "unknown category {:?}; one of {}",
                        c.get_ref(),
                        CATEGORIES.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A JetStream stream or bucket name, or a subject token: no dots, spaces or wildcards.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl super::NatsConfig {
    fn validate(&self) -> Result<(), (Range<usize>, String)> {
        if self.url.get_ref().is_empty() {
            return Err((
                self.url.span(),
                "[output.nats] url needs at least one server".into(),
            ));
        }
        for u in self.url.get_ref() {
            if u.parse::<async_nats::ServerAddr>().is_err() {
                return Err((
                    self.url.span(),
                    format!("{u:?} is not a NATS server address like \"nats://127.0.0.1:4222\""),
                ));
            }
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err((
                0..0,
                "[output.nats] tls_cert and tls_key go together".into(),
            ));
        }
        if self.creds.is_some() && (self.user.is_some() || self.token.is_some()) {
            return Err((
                0..0,
                "[output.nats] creds, user/password and token are alternatives: set one".into(),
            ));
        }
        if self.user.is_some() != self.password.is_some() {
            return Err((0..0, "[output.nats] user and password go together".into()));
        }
        let prefix = self.subject_prefix.get_ref();
        if prefix.is_empty() || !prefix.split('.').all(is_token) {
            return Err((
                self.subject_prefix.span(),
                format!(
                    "subject_prefix {prefix:?} must be dot-separated tokens of letters, digits, - and _"
                ),
            ));
        }
        for (v, what) in [(&self.stream, "stream"), (&self.kv_bucket, "kv_bucket")] {
            if !is_token(v.get_ref()) {
                return Err((
                    v.span(),
                    format!("{what} {:?} must be letters, digits, - and _", v.get_ref()),
                ));
            }
        }
        if !(1..=5).contains(self.replicas.get_ref()) {
            return Err((self.replicas.span(), "replicas must be 1 to 5".into()));
        }
        if *self.spool_bytes.get_ref() < 65_536 {
            return Err((
                self.spool_bytes.span(),
                "spool_bytes must be at least 65536".into(),
            ));
        }
        if self.max_age.get_ref().is_zero() {
            return Err((
                self.max_age.span(),
                "max_age must be longer than zero".into(),
            ));
        }
        if let Some(t) = self
            .event_types
            .get_ref()
            .iter()
            .find(|t| !super::EVENT_TYPES.contains(&t.as_str()))
        {
            return Err((
                self.event_types.span(),
                format!(
                    "event_types: {t:?} is not an event type; they are {}",
                    super::EVENT_TYPES.join(", ")
                ),
            ));
        }
        Ok(())
    }
}
