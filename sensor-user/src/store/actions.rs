//! What operators decided, kept in the state store beside what the sensor learned: a
//! device's category and name set by hand, rules muted for a device (or a device and a
//! destination) until a time, and the audit trail of who did what and when. The command
//! line writes them (and the console, later); a running sensor notices the `actions`
//! generation move and takes them in within seconds, without a restart.

use rusqlite::{OptionalExtension, params};

use super::state::{StateError, Store};

/// A device's category and name as an operator set them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    /// The device, `aa:bb:..`.
    pub mac: String,
    /// Its category, when set.
    pub category: Option<String>,
    /// Its name, when set.
    pub name: Option<String>,
    /// Who set it.
    pub by: String,
    /// When (epoch ns).
    pub at_ns: u64,
}

/// A rule muted for one device, or one device and destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mute {
    /// The device.
    pub mac: String,
    /// The rule (`iot.rule.id`).
    pub rule: String,
    /// Only alerts about this destination (an address, `address:port/proto` or a DNS
    /// name), when set.
    pub dest: Option<String>,
    /// Until when (epoch ns); for good when unset.
    pub until_ns: Option<u64>,
    /// Who muted it.
    pub by: String,
    /// When (epoch ns).
    pub at_ns: u64,
}

impl Mute {
    /// Whether it holds at `now_ns` for an alert of `rule` about `mac`, whose destination
    /// is any of `dests`.
    pub fn covers(&self, now_ns: u64, mac: &str, rule: &str, dests: &[String]) -> bool {
        self.mac == mac
            && self.rule == rule
            && self.until_ns.is_none_or(|u| now_ns < u)
            && self
                .dest
                .as_ref()
                .is_none_or(|d| dests.iter().any(|x| x.eq_ignore_ascii_case(d)))
    }
}

/// An operator's decision about one destination of a device's baseline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The device.
    pub mac: String,
    /// The allow entry (`203.0.113.20:443/tcp`, `api.example.com:443/tcp`).
    pub entry: String,
    /// Accepted into the baseline, or rejected from it.
    pub accepted: bool,
    /// Who.
    pub by: String,
    /// When (epoch ns).
    pub at_ns: u64,
}

/// The state an operator put a device in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceState {
    /// The device.
    pub mac: String,
    /// One of `model::vocab::DEVICE_STATES`.
    pub state: String,
    /// Who.
    pub by: String,
    /// When (epoch ns).
    pub at_ns: u64,
}

/// One line of the audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// When (epoch ns).
    pub at_ns: u64,
    /// Who.
    pub by: String,
    /// What (`set`, `clear`, `mute`, `unmute`).
    pub action: String,
    /// The device.
    pub mac: String,
    /// The rest, as said (`category=printer name=hall printer`).
    pub detail: String,
}

impl Store {
    /// The generation of operator actions: it moves with every action, so a running sensor
    /// reads the actions again only when something changed.
    pub fn actions_generation(&self) -> Result<i64, StateError> {
        Ok(self.meta("actions")?.unwrap_or(0))
    }

    fn act(
        &mut self,
        entry: &AuditEntry,
        change: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
    ) -> Result<(), StateError> {
        let path = self.path().display().to_string();
        let sql = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn_mut().transaction().map_err(sql)?;
        change(&tx).map_err(sql)?;
        tx.execute(
            "INSERT INTO audit (at_ns, by, action, mac, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                entry.at_ns as i64,
                entry.by,
                entry.action,
                entry.mac,
                entry.detail
            ],
        )
        .map_err(sql)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('actions', 1)
             ON CONFLICT(key) DO UPDATE SET value = value + 1",
            [],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Sets a device's category and/or name (what is unset stays as it was).
    pub fn set_override(&mut self, o: &Override) -> Result<(), StateError> {
        let mut detail = Vec::new();
        if let Some(c) = &o.category {
            detail.push(format!("category={c}"));
        }
        if let Some(n) = &o.name {
            detail.push(format!("name={n}"));
        }
        let entry = AuditEntry {
            at_ns: o.at_ns,
            by: o.by.clone(),
            action: "set".into(),
            mac: o.mac.clone(),
            detail: detail.join(" "),
        };
        self.act(&entry, |tx| {
            tx.execute(
                "INSERT INTO overrides (mac, category, name, by, at_ns) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(mac) DO UPDATE SET category = COALESCE(excluded.category, category),
                    name = COALESCE(excluded.name, name), by = excluded.by, at_ns = excluded.at_ns",
                params![o.mac, o.category, o.name, o.by, o.at_ns as i64],
            )
            .map(|_| ())
        })
    }

    /// Drops a device's override: the sensor's own observation (or the configuration's
    /// declaration) applies again.
    pub fn clear_override(&mut self, mac: &str, by: &str, at_ns: u64) -> Result<(), StateError> {
        let entry = AuditEntry {
            at_ns,
            by: by.into(),
            action: "clear".into(),
            mac: mac.into(),
            detail: String::new(),
        };
        self.act(&entry, |tx| {
            tx.execute("DELETE FROM overrides WHERE mac = ?1", [mac])
                .map(|_| ())
        })
    }

    /// Every override, by MAC.
    pub fn overrides(&self) -> Result<Vec<Override>, StateError> {
        if !self.has_table("overrides")? {
            return Ok(Vec::new());
        }
        let mut st = self
            .conn()
            .prepare("SELECT mac, category, name, by, at_ns FROM overrides ORDER BY mac")
            .map_err(self.sql())?;
        let rows = st
            .query_map([], |r| {
                Ok(Override {
                    mac: r.get(0)?,
                    category: r.get(1)?,
                    name: r.get(2)?,
                    by: r.get(3)?,
                    at_ns: r.get::<_, i64>(4)? as u64,
                })
            })
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// Puts a device in a state, or (`None`) takes it out of the one it was in.
    pub fn set_state(
        &mut self,
        mac: &str,
        state: Option<&str>,
        by: &str,
        at_ns: u64,
    ) -> Result<(), StateError> {
        let entry = AuditEntry {
            at_ns,
            by: by.into(),
            action: "state".into(),
            mac: mac.into(),
            detail: state.map_or("cleared".into(), |s| format!("state={s}")),
        };
        self.act(&entry, |tx| {
            match state {
                Some(s) => tx.execute(
                    "INSERT INTO device_states (mac, state, by, at_ns) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(mac) DO UPDATE SET state = excluded.state, by = excluded.by,
                        at_ns = excluded.at_ns",
                    params![mac, s, by, at_ns as i64],
                ),
                None => tx.execute("DELETE FROM device_states WHERE mac = ?1", [mac]),
            }
            .map(|_| ())
        })
    }

    /// Every device's state, by MAC.
    pub fn device_states(&self) -> Result<Vec<DeviceState>, StateError> {
        if !self.has_table("device_states")? {
            return Ok(Vec::new());
        }
        let mut st = self
            .conn()
            .prepare("SELECT mac, state, by, at_ns FROM device_states ORDER BY mac")
            .map_err(self.sql())?;
        let rows = st
            .query_map([], |r| {
                Ok(DeviceState {
                    mac: r.get(0)?,
                    state: r.get(1)?,
                    by: r.get(2)?,
                    at_ns: r.get::<_, i64>(3)? as u64,
                })
            })
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// Mutes a rule for a device (and destination); a mute of the same three replaces it.
    pub fn mute(&mut self, m: &Mute) -> Result<(), StateError> {
        let until = m.until_ns.map_or("for good".to_string(), |u| {
            format!("until {}", crate::model::clock::eve_timestamp(u))
        });
        let entry = AuditEntry {
            at_ns: m.at_ns,
            by: m.by.clone(),
            action: "mute".into(),
            mac: m.mac.clone(),
            detail: format!(
                "rule={}{} {until}",
                m.rule,
                m.dest
                    .as_ref()
                    .map_or(String::new(), |d| format!(" dest={d}"))
            ),
        };
        self.act(&entry, |tx| {
            tx.execute(
                "DELETE FROM mutes WHERE mac = ?1 AND rule = ?2 AND dest IS ?3",
                params![m.mac, m.rule, m.dest],
            )?;
            tx.execute(
                "INSERT INTO mutes (mac, rule, dest, until_ns, by, at_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    m.mac,
                    m.rule,
                    m.dest,
                    m.until_ns.map(|u| u as i64),
                    m.by,
                    m.at_ns as i64
                ],
            )
            .map(|_| ())
        })
    }

    /// Lifts a mute; whether there was one.
    pub fn unmute(
        &mut self,
        mac: &str,
        rule: &str,
        dest: Option<&str>,
        by: &str,
        at_ns: u64,
    ) -> Result<bool, StateError> {
        let existed: Option<i64> = self
            .conn()
            .query_row(
                "SELECT 1 FROM mutes WHERE mac = ?1 AND rule = ?2 AND dest IS ?3",
                params![mac, rule, dest],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sql())?;
        if existed.is_none() {
            return Ok(false);
        }
        let entry = AuditEntry {
            at_ns,
            by: by.into(),
            action: "unmute".into(),
            mac: mac.into(),
            detail: format!(
                "rule={rule}{}",
                dest.map_or(String::new(), |d| format!(" dest={d}"))
            ),
        };
        self.act(&entry, |tx| {
            tx.execute(
                "DELETE FROM mutes WHERE mac = ?1 AND rule = ?2 AND dest IS ?3",
                params![mac, rule, dest],
            )
            .map(|_| ())
        })?;
        Ok(true)
    }

    /// Every mute, expired ones too (a page says which have), by MAC and rule.
    pub fn mutes(&self) -> Result<Vec<Mute>, StateError> {
        if !self.has_table("mutes")? {
            return Ok(Vec::new());
        }
        let mut st = self
            .conn()
            .prepare(
                "SELECT mac, rule, dest, until_ns, by, at_ns FROM mutes ORDER BY mac, rule, dest",
            )
            .map_err(self.sql())?;
        let rows = st
            .query_map([], |r| {
                Ok(Mute {
                    mac: r.get(0)?,
                    rule: r.get(1)?,
                    dest: r.get(2)?,
                    until_ns: r.get::<_, Option<i64>>(3)?.map(|u| u as u64),
                    by: r.get(4)?,
                    at_ns: r.get::<_, i64>(5)? as u64,
                })
            })
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// Decides about a destination of a device's baseline (an allow entry as
    /// `[[policy]] allow` writes it): `accepted` puts it in the learned baseline (allowed
    /// from now on), `rejected` takes it out and keeps it out of learning.
    pub fn decide(&mut self, d: &Decision) -> Result<(), StateError> {
        let entry = AuditEntry {
            at_ns: d.at_ns,
            by: d.by.clone(),
            action: if d.accepted { "accept" } else { "reject" }.into(),
            mac: d.mac.clone(),
            detail: d.entry.clone(),
        };
        self.act(&entry, |tx| {
            tx.execute(
                "INSERT INTO decisions (mac, entry, verdict, by, at_ns) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(mac, entry) DO UPDATE SET verdict = excluded.verdict,
                    by = excluded.by, at_ns = excluded.at_ns",
                params![
                    d.mac,
                    d.entry,
                    if d.accepted { "accepted" } else { "rejected" },
                    d.by,
                    d.at_ns as i64
                ],
            )?;
            if d.accepted {
                tx.execute(
                    "INSERT OR IGNORE INTO baseline (mac, rule, first_seen_ns) VALUES (?1, ?2, ?3)",
                    params![d.mac, d.entry, d.at_ns as i64],
                )?;
            } else {
                tx.execute(
                    "DELETE FROM baseline WHERE mac = ?1 AND rule = ?2",
                    params![d.mac, d.entry],
                )?;
            }
            Ok(())
        })
    }

    /// Every decision about a destination, by MAC and entry.
    pub fn decisions(&self) -> Result<Vec<Decision>, StateError> {
        if !self.has_table("decisions")? {
            return Ok(Vec::new());
        }
        let mut st = self
            .conn()
            .prepare("SELECT mac, entry, verdict, by, at_ns FROM decisions ORDER BY mac, entry")
            .map_err(self.sql())?;
        let rows = st
            .query_map([], |r| {
                Ok(Decision {
                    mac: r.get(0)?,
                    entry: r.get(1)?,
                    accepted: r.get::<_, String>(2)? == "accepted",
                    by: r.get(3)?,
                    at_ns: r.get::<_, i64>(4)? as u64,
                })
            })
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// The audit trail, newest first: one device's, or everyone's.
    pub fn audit(&self, mac: Option<&str>, limit: usize) -> Result<Vec<AuditEntry>, StateError> {
        if !self.has_table("audit")? {
            return Ok(Vec::new());
        }
        let mut st = self
            .conn()
            .prepare(
                "SELECT at_ns, by, action, mac, detail FROM audit WHERE (?1 IS NULL OR mac = ?1)
                 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(self.sql())?;
        let rows = st
            .query_map(params![mac, limit as i64], |r| {
                Ok(AuditEntry {
                    at_ns: r.get::<_, i64>(0)? as u64,
                    by: r.get(1)?,
                    action: r.get(2)?,
                    mac: r.get(3)?,
                    detail: r.get(4)?,
                })
            })
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_kept_with_their_audit_trail_and_move_the_generation() {
        let dir = std::env::temp_dir().join(format!(
            "kw-actions-{}-{}",
            std::process::id(),
            crate::model::clock::monotonic_ns()
        ));
        let mut s = Store::open(&dir).unwrap();
        assert_eq!(s.actions_generation().unwrap(), 0);
        let mac = "02:00:00:00:00:01";
        s.set_override(&Override {
            mac: mac.into(),
            category: Some("printer".into()),
            name: None,
            by: "alice".into(),
            at_ns: 10,
        })
        .unwrap();
        // A later name keeps the category.
        s.set_override(&Override {
            mac: mac.into(),
            category: None,
            name: Some("hall printer".into()),
            by: "bob".into(),
            at_ns: 20,
        })
        .unwrap();
        let o = &s.overrides().unwrap()[0];
        assert_eq!(o.category.as_deref(), Some("printer"));
        assert_eq!(o.name.as_deref(), Some("hall printer"));
        assert_eq!(o.by, "bob");
        let m = Mute {
            mac: mac.into(),
            rule: "beacon".into(),
            dest: Some("203.0.113.7".into()),
            until_ns: Some(100),
            by: "alice".into(),
            at_ns: 30,
        };
        s.mute(&m).unwrap();
        s.mute(&m).unwrap();
        assert_eq!(
            s.mutes().unwrap(),
            std::slice::from_ref(&m),
            "the same mute again replaces it"
        );
        let dests = ["203.0.113.7:443/tcp".to_string(), "203.0.113.7".to_string()];
        assert!(m.covers(50, mac, "beacon", &dests));
        assert!(!m.covers(100, mac, "beacon", &dests), "expired");
        assert!(!m.covers(50, mac, "beacon", &["198.51.100.1".to_string()]));
        assert!(!m.covers(50, mac, "new_port", &dests));
        assert!(
            !s.unmute(mac, "beacon", None, "alice", 40).unwrap(),
            "no such mute"
        );
        assert!(
            s.unmute(mac, "beacon", Some("203.0.113.7"), "alice", 40)
                .unwrap()
        );
        assert!(s.mutes().unwrap().is_empty());
        s.clear_override(mac, "carol", 50).unwrap();
        assert!(s.overrides().unwrap().is_empty());
        let trail = Store::open_readonly(&dir)
            .unwrap()
            .audit(Some(mac), 10)
            .unwrap();
        let said: Vec<(&str, &str)> = trail
            .iter()
            .map(|e| (e.by.as_str(), e.action.as_str()))
            .collect();
        assert_eq!(
            said,
            [
                ("carol", "clear"),
                ("alice", "unmute"),
                ("alice", "mute"),
                ("alice", "mute"),
                ("bob", "set"),
                ("alice", "set")
            ]
        );
        assert_eq!(s.actions_generation().unwrap(), 6);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_device_state_replaces_the_last_and_clears() {
        let dir = std::env::temp_dir().join(format!(
            "kw-states-{}-{}",
            std::process::id(),
            crate::model::clock::monotonic_ns()
        ));
        let mut s = Store::open(&dir).unwrap();
        let mac = "02:00:00:00:00:02";
        s.set_state(mac, Some("investigating"), "alice", 10)
            .unwrap();
        s.set_state(mac, Some("authorised"), "bob", 20).unwrap();
        let states = s.device_states().unwrap();
        assert_eq!(states.len(), 1);
        assert_eq!(
            (states[0].state.as_str(), states[0].by.as_str()),
            ("authorised", "bob")
        );
        s.set_state(mac, None, "carol", 30).unwrap();
        assert!(s.device_states().unwrap().is_empty());
        let trail: Vec<String> = s
            .audit(Some(mac), 10)
            .unwrap()
            .into_iter()
            .map(|e| format!("{} {} {}", e.by, e.action, e.detail))
            .collect();
        assert_eq!(
            trail,
            [
                "carol state cleared",
                "bob state state=authorised",
                "alice state state=investigating"
            ]
        );
        assert_eq!(s.actions_generation().unwrap(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
