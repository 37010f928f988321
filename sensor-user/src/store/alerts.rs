//! Alert history in the state store: every alert line the sensor wrote, kept so the
//! console and `kettlewatch alerts` can show what happened while nobody watched. Bounded
//! by age and count (oldest go first); a batch is one transaction, as for devices.

use rusqlite::params;
use serde_json::Value;

use super::state::{StateError, Store};

/// How much history to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Alerts older than this go (ns).
    pub max_age_ns: u64,
    /// At most this many are kept.
    pub max_count: u64,
}

/// One alert as kept: the fields lists filter on, and the EVE line as written.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredAlert {
    /// Epoch ns the sensor wrote it.
    pub ts_ns: u64,
    /// The device it concerns, `aa:bb:..`, if one.
    pub mac: Option<String>,
    /// `iot.rule.id`.
    pub rule: String,
    /// `alert.severity` (1 high .. 3 low).
    pub severity: u8,
    /// `alert.signature`.
    pub signature: String,
    /// The EVE line.
    pub line: String,
}

impl StoredAlert {
    /// The record of an alert line written at `ts_ns`.
    pub fn from_eve(v: &Value, ts_ns: u64) -> Self {
        Self {
            ts_ns,
            mac: v["iot"]["device"]["mac"].as_str().map(str::to_string),
            rule: v["iot"]["rule"]["id"].as_str().unwrap_or("").to_string(),
            severity: v["alert"]["severity"].as_u64().unwrap_or(3).min(255) as u8,
            signature: v["alert"]["signature"].as_str().unwrap_or("").to_string(),
            line: v.to_string(),
        }
    }

    /// The line, parsed.
    pub fn eve(&self) -> Value {
        serde_json::from_str(&self.line).unwrap_or(Value::Null)
    }
}

/// Which alerts to list.
#[derive(Clone, Debug, Default)]
pub struct AlertFilter {
    /// Only this device's.
    pub mac: Option<String>,
    /// Only this rule's.
    pub rule: Option<String>,
    /// Only at least this severe (1 is the most).
    pub max_severity: Option<u8>,
    /// Only from this epoch ns on.
    pub since_ns: Option<u64>,
    /// At most this many, newest first (default 500).
    pub limit: Option<usize>,
}

impl Store {
    /// Keeps a batch of alerts and drops what falls outside `keep`, in one transaction.
    pub fn save_alerts(
        &mut self,
        alerts: &[StoredAlert],
        keep: Retention,
        now_ns: u64,
    ) -> Result<(), StateError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let path = self.path().display().to_string();
        let sql = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn_mut().transaction().map_err(sql)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO alerts (ts_ns, mac, rule, severity, signature, line)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sql)?;
            for a in alerts {
                st.execute(params![
                    a.ts_ns as i64,
                    a.mac,
                    a.rule,
                    a.severity,
                    a.signature,
                    a.line
                ])
                .map_err(sql)?;
            }
            tx.execute(
                "DELETE FROM alerts WHERE ts_ns < ?1",
                params![now_ns.saturating_sub(keep.max_age_ns) as i64],
            )
            .map_err(sql)?;
            tx.execute(
                "DELETE FROM alerts WHERE id <= (SELECT id FROM alerts ORDER BY id DESC LIMIT 1 OFFSET ?1)",
                params![keep.max_count as i64],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// Alerts matching `f`, newest first.
    pub fn alerts(&self, f: &AlertFilter) -> Result<Vec<StoredAlert>, StateError> {
        if !self.has_table("alerts")? {
            return Ok(Vec::new());
        }
        let mut st = self
            .conn()
            .prepare(
                "SELECT ts_ns, mac, rule, severity, signature, line FROM alerts
                 WHERE (?1 IS NULL OR mac = ?1) AND (?2 IS NULL OR rule = ?2)
                   AND (?3 IS NULL OR severity <= ?3) AND (?4 IS NULL OR ts_ns >= ?4)
                 ORDER BY ts_ns DESC, id DESC LIMIT ?5",
            )
            .map_err(self.sql())?;
        let rows = st
            .query_map(
                params![
                    f.mac,
                    f.rule,
                    f.max_severity,
                    f.since_ns.map(|t| t as i64),
                    f.limit.unwrap_or(500) as i64
                ],
                |r| {
                    Ok(StoredAlert {
                        ts_ns: r.get::<_, i64>(0)? as u64,
                        mac: r.get(1)?,
                        rule: r.get(2)?,
                        severity: r.get(3)?,
                        signature: r.get(4)?,
                        line: r.get(5)?,
                    })
                },
            )
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// The rules the history holds alerts of, by name.
    pub fn alert_rules(&self) -> Result<Vec<String>, StateError> {
        if !self.has_table("alerts")? {
            return Ok(Vec::new());
        }
        let mut st = self
            .conn()
            .prepare("SELECT DISTINCT rule FROM alerts ORDER BY rule")
            .map_err(self.sql())?;
        let rows = st.query_map([], |r| r.get(0)).map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// How many alerts each device had since `since_ns`: (mac, count).
    pub fn alert_counts(&self, since_ns: u64) -> Result<Vec<(String, u64)>, StateError> {
        if !self.has_table("alerts")? {
            return Ok(Vec::new());
        }
        let mut st = self
            .conn()
            .prepare(
                "SELECT mac, count(*) FROM alerts WHERE ts_ns >= ?1 AND mac IS NOT NULL GROUP BY mac",
            )
            .map_err(self.sql())?;
        let rows = st
            .query_map(params![since_ns as i64], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
            })
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(ts_ns: u64, mac: &str, rule: &str, severity: u8) -> StoredAlert {
        let v = serde_json::json!({
            "event_type": "alert",
            "alert": {"severity": severity, "signature": format!("kettlewatch: {rule}")},
            "iot": {"device": {"mac": mac}, "rule": {"id": rule}},
        });
        StoredAlert::from_eve(&v, ts_ns)
    }

    #[test]
    fn alerts_are_kept_filtered_and_bounded_by_age_and_count() {
        let dir = tempfile_dir();
        let mut s = Store::open(&dir).unwrap();
        let keep = Retention {
            max_age_ns: 100,
            max_count: 3,
        };
        s.save_alerts(
            &[
                alert(10, "02:00:00:00:00:01", "beacon", 2),
                alert(150, "02:00:00:00:00:01", "new_device", 2),
            ],
            keep,
            150,
        )
        .unwrap();
        // 10 is older than 100 ns at 150.
        assert_eq!(s.alerts(&AlertFilter::default()).unwrap().len(), 1);
        s.save_alerts(
            &[
                alert(160, "02:00:00:00:00:02", "brute_force", 1),
                alert(170, "02:00:00:00:00:01", "beacon", 2),
                alert(180, "02:00:00:00:00:02", "beacon", 3),
            ],
            keep,
            180,
        )
        .unwrap();
        let all = s.alerts(&AlertFilter::default()).unwrap();
        assert_eq!(
            all.iter().map(|a| a.ts_ns).collect::<Vec<_>>(),
            [180, 170, 160],
            "newest first, the oldest beyond three gone"
        );
        let ro = Store::open_readonly(&dir).unwrap();
        let one = ro
            .alerts(&AlertFilter {
                mac: Some("02:00:00:00:00:02".into()),
                max_severity: Some(2),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].rule, "brute_force");
        assert_eq!(one[0].eve()["iot"]["rule"]["id"], "brute_force");
        let counts = ro.alert_counts(165).unwrap();
        assert_eq!(
            counts,
            [
                ("02:00:00:00:00:01".to_string(), 1),
                ("02:00:00:00:00:02".to_string(), 1)
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "kw-alerts-{}-{}",
            std::process::id(),
            crate::model::clock::monotonic_ns()
        ))
    }
}
