//! The state directory: the device inventory in SQLite (WAL), so it survives restarts and
//! kill -9, and `kettlewatch devices` can read it while the sensor writes. Every batch of
//! changes is one transaction: a crash loses at most the batch in flight, never a
//! half-written one.

use std::{
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::{discover::profile::Profile, model::vocab::Evidence};

/// Where `run` keeps state unless told otherwise.
pub const DEFAULT_DIR: &str = "/var/lib/kettlewatch";
const DB_FILE: &str = "state.db";
const SCHEMA_VERSION: i64 = 1;

/// A state-store problem, with the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The directory or file could not be created or opened.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// SQLite refused.
    #[error("{path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    /// A newer kettlewatch wrote this store.
    #[error(
        "{path}: state schema version {found} is newer than this kettlewatch ({SCHEMA_VERSION})"
    )]
    Version { path: String, found: i64 },
}

/// One device as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredDevice {
    /// MAC, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// Epoch ns of its first sight (any run).
    pub first_seen_ns: u64,
    /// Epoch ns of its latest sight.
    pub last_seen_ns: u64,
    /// IEEE vendor.
    pub vendor: Option<String>,
    /// Declared name.
    pub name: Option<String>,
    /// `declared` or `unknown`.
    pub inventory_status: String,
    /// Category in effect (an operator's, else declared, else observed).
    pub category: String,
    /// Where that category comes from: `operator`, `declared` or `observed`.
    #[serde(default)]
    pub category_source: String,
    /// Observed category's confidence.
    pub confidence: f64,
    /// Criticality in effect.
    pub criticality: String,
    /// Why that criticality.
    pub why: String,
    /// Addresses it used.
    pub addresses: Vec<String>,
    /// What it said about itself.
    pub profile: Profile,
    /// The votes behind the observed category.
    pub evidence: Vec<Evidence>,
    /// Whether `new_device` was raised for it (it is raised once per MAC, ever).
    pub new_device_reported: bool,
    /// Brand and model, when the device named itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<crate::model::vocab::Product>,
    /// The earlier MAC whose identity this randomised one was tied to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<StoredIdentity>,
    /// Known vulnerabilities of its software or model, when feeds are configured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vulnerabilities: Vec<crate::model::device::Vulnerability>,
    /// The gateway that reported it, in a fleet view (`kettlewatch console --nats`);
    /// a gateway's own store leaves it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// The policies that apply to it (`[[policy]]` names, `mud:<url>`, `learned`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// The destinations its declared and MUD policies allow, as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub declared_rules: Vec<String>,
}

/// A tie of a randomised MAC to an earlier identity, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredIdentity {
    /// The identity's first MAC.
    pub tied_to: String,
    /// What agreed (`dhcp_client_id`, `dhcpv6_duid`, `hostname`, `mdns_hostname`).
    pub by: String,
}

impl StoredDevice {
    /// The record of a device as this run knows it.
    pub fn from_device(
        d: &crate::model::device::Device,
        declared: Option<&crate::model::vocab::Declared>,
        new_device_reported: bool,
        time: &crate::model::clock::TimeBase,
    ) -> Self {
        let a = d.assessment.as_ref();
        let declared_category = declared.and_then(|x| x.category.clone());
        Self {
            mac: d.mac.to_string(),
            first_seen_ns: d
                .first_seen_epoch_ns
                .unwrap_or_else(|| time.to_epoch_ns(d.first_seen_ns)),
            last_seen_ns: time.to_epoch_ns(d.last_seen_ns),
            vendor: crate::discover::oui::origin(d.mac)
                .vendor()
                .map(str::to_string),
            name: declared.and_then(|x| x.name.clone()),
            inventory_status: if declared.is_some_and(|x| x.listed) {
                "declared"
            } else {
                "unknown"
            }
            .into(),
            category: declared_category
                .clone()
                .or_else(|| a.map(|a| a.observed.category.clone()))
                .unwrap_or_else(|| "unknown".into()),
            category_source: match (declared.and_then(|x| x.set_by.as_ref()), &declared_category) {
                (Some(_), Some(_)) => "operator",
                (None, Some(_)) => "declared",
                _ => "observed",
            }
            .into(),
            confidence: if declared_category.is_some() {
                1.0
            } else {
                a.map_or(0.0, |a| a.observed.confidence)
            },
            criticality: a
                .map(|a| a.criticality)
                .or(declared.and_then(|x| x.criticality))
                .map_or("medium", |c| c.as_str())
                .into(),
            why: a.map(|a| a.why.clone()).unwrap_or_default(),
            addresses: d.addresses.iter().map(|a| a.to_string()).collect(),
            profile: d.profile.clone(),
            evidence: a.map(|a| a.observed.evidence.clone()).unwrap_or_default(),
            new_device_reported,
            product: a.and_then(|a| a.product.clone()),
            identity: None,
            vulnerabilities: a.map(|a| a.vulnerabilities.clone()).unwrap_or_default(),
            gateway: None,
            policies: Vec::new(),
            declared_rules: Vec::new(),
        }
    }
}

/// The open store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Whether a table exists: a store an older kettlewatch wrote, opened read-only,
    /// lacks the newer ones.
    pub(crate) fn has_table(&self, name: &str) -> Result<bool, StateError> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [name],
                |r| r.get(0),
            )
            .map_err(self.sql())?;
        Ok(n > 0)
    }

    pub(crate) fn sql(&self) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        |source| StateError::Sqlite {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Opens (creating, 0700 directory and 0600 file) the store in `dir` for writing.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        let io = |source| StateError::Io {
            path: dir.display().to_string(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        let path = dir.join(DB_FILE);
        // Created 0600 before SQLite sees it: SQLite gives its -wal and -shm files the
        // database file's mode.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| StateError::Io {
                path: path.display().to_string(),
                source,
            })?;
        let conn = Connection::open(&path).map_err(|source| StateError::Sqlite {
            path: path.display().to_string(),
            source,
        })?;
        let s = Self { conn, path };
        // WAL: readers (`kettlewatch devices`) never block the sensor; synchronous=NORMAL
        // is durable against a killed process (the WAL is in the page cache), which is
        // the crash this store must survive; power loss may lose the last batches.
        s.conn
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;
                 CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                 CREATE TABLE IF NOT EXISTS baseline (
                     mac TEXT NOT NULL,
                     rule TEXT NOT NULL,
                     first_seen_ns INTEGER NOT NULL,
                     PRIMARY KEY (mac, rule)
                 );
                 CREATE TABLE IF NOT EXISTS learning (
                     mac TEXT PRIMARY KEY,
                     until_ns INTEGER NOT NULL
                 );
                 CREATE TABLE IF NOT EXISTS devices (
                     mac TEXT PRIMARY KEY,
                     first_seen_ns INTEGER NOT NULL,
                     last_seen_ns INTEGER NOT NULL,
                     record TEXT NOT NULL
                 );
                 -- The alert history (`store/alerts.rs`): the EVE line and what lists filter on.
                 CREATE TABLE IF NOT EXISTS alerts (
                     id INTEGER PRIMARY KEY AUTOINCREMENT,
                     ts_ns INTEGER NOT NULL,
                     mac TEXT,
                     rule TEXT NOT NULL,
                     severity INTEGER NOT NULL,
                     signature TEXT NOT NULL,
                     line TEXT NOT NULL
                 );
                 CREATE INDEX IF NOT EXISTS alerts_ts ON alerts (ts_ns);
                 CREATE INDEX IF NOT EXISTS alerts_mac ON alerts (mac, ts_ns);
                 -- What operators decided (`store/actions.rs`), and who and when.
                 -- Where each device went (`store/destinations.rs`).
                 CREATE TABLE IF NOT EXISTS destinations (
                     mac TEXT NOT NULL,
                     addr TEXT NOT NULL,
                     port INTEGER NOT NULL,
                     proto INTEGER NOT NULL,
                     app_proto TEXT,
                     verdict TEXT NOT NULL,
                     first_ns INTEGER NOT NULL,
                     last_ns INTEGER NOT NULL,
                     flows INTEGER NOT NULL,
                     packets INTEGER NOT NULL,
                     bytes INTEGER NOT NULL,
                     PRIMARY KEY (mac, addr, port, proto)
                 );
                 CREATE TABLE IF NOT EXISTS device_states (
                     mac TEXT PRIMARY KEY,
                     state TEXT NOT NULL,
                     by TEXT NOT NULL,
                     at_ns INTEGER NOT NULL
                 );
                 CREATE TABLE IF NOT EXISTS overrides (
                     mac TEXT PRIMARY KEY,
                     category TEXT,
                     name TEXT,
                     by TEXT NOT NULL,
                     at_ns INTEGER NOT NULL
                 );
                 CREATE TABLE IF NOT EXISTS mutes (
                     mac TEXT NOT NULL,
                     rule TEXT NOT NULL,
                     dest TEXT,
                     until_ns INTEGER,
                     by TEXT NOT NULL,
                     at_ns INTEGER NOT NULL
                 );
                 CREATE TABLE IF NOT EXISTS decisions (
                     mac TEXT NOT NULL,
                     entry TEXT NOT NULL,
                     verdict TEXT NOT NULL,
                     by TEXT NOT NULL,
                     at_ns INTEGER NOT NULL,
                     PRIMARY KEY (mac, entry)
                 );
                 CREATE TABLE IF NOT EXISTS audit (
                     id INTEGER PRIMARY KEY AUTOINCREMENT,
                     at_ns INTEGER NOT NULL,
                     by TEXT NOT NULL,
                     action TEXT NOT NULL,
                     mac TEXT NOT NULL,
                     detail TEXT NOT NULL
                 );",
            )
            .map_err(s.sql())?;
        let found: Option<i64> = s
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(s.sql())?;
        match found {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StateError::Version {
                    path: s.path.display().to_string(),
                    found: v,
                });
            }
            Some(_) => {}
            None => {
                s.conn
                    .execute(
                        "INSERT INTO meta (key, value) VALUES ('schema', ?1)",
                        params![SCHEMA_VERSION],
                    )
                    .map_err(s.sql())?;
            }
        }
        Ok(s)
    }

    /// Opens an existing store read-only (`kettlewatch devices`, also while `run` writes).
    pub fn open_readonly(dir: &Path) -> Result<Self, StateError> {
        let path = dir.join(DB_FILE);
        if !path.exists() {
            return Err(StateError::Io {
                path: path.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no state here yet (has `kettlewatch run --state-dir` used this directory?)",
                ),
            });
        }
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(
            |source| StateError::Sqlite {
                path: path.display().to_string(),
                source,
            },
        )?;
        let s = Self { conn, path };
        s.conn
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(s.sql())?;
        Ok(s)
    }

    /// A device by MAC.
    pub fn device(&self, mac: &str) -> Result<Option<StoredDevice>, StateError> {
        let rec: Option<String> = self
            .conn
            .query_row("SELECT record FROM devices WHERE mac = ?1", [mac], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.sql())?;
        Ok(rec.and_then(|r| self.parse(mac, &r)))
    }

    fn parse(&self, mac: &str, rec: &str) -> Option<StoredDevice> {
        match serde_json::from_str(rec) {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(
                    "{}: device {mac}: unreadable record skipped: {e}",
                    self.path.display()
                );
                None
            }
        }
    }

    /// Every device, by MAC.
    pub fn devices(&self) -> Result<Vec<StoredDevice>, StateError> {
        let mut st = self
            .conn
            .prepare("SELECT mac, record FROM devices ORDER BY mac")
            .map_err(self.sql())?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for row in rows {
            let (mac, rec) = row.map_err(self.sql())?;
            out.extend(self.parse(&mac, &rec));
        }
        Ok(out)
    }

    /// Replaces every device with `devices`, in one transaction (a fleet view's copy of
    /// the bucket: a device gone from it goes from here).
    pub fn replace_devices(&mut self, devices: &[StoredDevice]) -> Result<(), StateError> {
        self.write_devices(devices, true)
    }

    /// Writes devices in one transaction.
    pub fn save(&mut self, devices: &[StoredDevice]) -> Result<(), StateError> {
        if devices.is_empty() {
            return Ok(());
        }
        self.write_devices(devices, false)
    }

    fn write_devices(&mut self, devices: &[StoredDevice], replace: bool) -> Result<(), StateError> {
        let path = self.path.display().to_string();
        let sql = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        if replace {
            tx.execute("DELETE FROM devices", []).map_err(sql)?;
        }
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO devices (mac, first_seen_ns, last_seen_ns, record) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(mac) DO UPDATE SET first_seen_ns = MIN(first_seen_ns, excluded.first_seen_ns),
                        last_seen_ns = MAX(last_seen_ns, excluded.last_seen_ns), record = excluded.record",
                )
                .map_err(sql)?;
            for d in devices {
                let rec = serde_json::to_string(d).expect("a device record serializes");
                st.execute(params![
                    d.mac,
                    d.first_seen_ns as i64,
                    d.last_seen_ns as i64,
                    rec
                ])
                .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// Writes learned baseline entries (mac, allow entry), renamed ones (mac, old entry,
    /// new entry; the first use is kept) and deletes forgotten ones, in one transaction.
    pub fn save_learned(
        &mut self,
        rows: &[(String, String)],
        renamed: &[(String, String, String)],
        forgotten: &[(String, String)],
        now_epoch_ns: u64,
    ) -> Result<(), StateError> {
        if rows.is_empty() && renamed.is_empty() && forgotten.is_empty() {
            return Ok(());
        }
        let path = self.path.display().to_string();
        let sql = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO baseline (mac, rule, first_seen_ns) VALUES (?1, ?2, ?3)",
                )
                .map_err(sql)?;
            for (mac, rule) in rows {
                st.execute(params![mac, rule, now_epoch_ns as i64])
                    .map_err(sql)?;
            }
            // The new entry may exist already (learned by name too): then the old goes.
            let mut rename = tx
                .prepare_cached(
                    "UPDATE OR IGNORE baseline SET rule = ?3 WHERE mac = ?1 AND rule = ?2",
                )
                .map_err(sql)?;
            let mut delete = tx
                .prepare_cached("DELETE FROM baseline WHERE mac = ?1 AND rule = ?2")
                .map_err(sql)?;
            for (mac, old, new) in renamed {
                rename.execute(params![mac, old, new]).map_err(sql)?;
                delete.execute(params![mac, old]).map_err(sql)?;
            }
            for (mac, rule) in forgotten {
                delete.execute(params![mac, rule]).map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// Sets devices' learning windows (mac, end in epoch ns; `None`: it has none any
    /// more), in one transaction.
    pub fn save_windows(&mut self, rows: &[(String, Option<u64>)]) -> Result<(), StateError> {
        let path = self.path.display().to_string();
        let sql = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut set = tx
                .prepare_cached(
                    "INSERT INTO learning (mac, until_ns) VALUES (?1, ?2)
                     ON CONFLICT(mac) DO UPDATE SET until_ns = excluded.until_ns",
                )
                .map_err(sql)?;
            let mut drop = tx
                .prepare_cached("DELETE FROM learning WHERE mac = ?1")
                .map_err(sql)?;
            for (mac, until) in rows {
                match until {
                    Some(u) => set.execute(params![mac, *u as i64]),
                    None => drop.execute(params![mac]),
                }
                .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// Every device's learning window: (mac, end in epoch ns), by MAC.
    pub fn windows(&self) -> Result<Vec<(String, u64)>, StateError> {
        // A store written before windows were kept, opened read-only, has no table.
        if !self.has_table("learning")? {
            return Ok(Vec::new());
        }
        let mut st = self
            .conn
            .prepare("SELECT mac, until_ns FROM learning ORDER BY mac")
            .map_err(self.sql())?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// Every learned entry: (mac, allow entry, first use in epoch ns), by MAC.
    pub fn learned(&self) -> Result<Vec<(String, String, u64)>, StateError> {
        let mut st = self
            .conn
            .prepare("SELECT mac, rule, first_seen_ns FROM baseline ORDER BY mac, rule")
            .map_err(self.sql())?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
            })
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// A number kept under `key` (`learn_started_ns`, ...).
    pub fn meta(&self, key: &str) -> Result<Option<i64>, StateError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(self.sql())
    }

    /// Keeps a number under `key`.
    pub fn set_meta(&mut self, key: &str, value: i64) -> Result<(), StateError> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(|_| ())
            .map_err(self.sql())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(mac: &str, seen: u64) -> StoredDevice {
        StoredDevice {
            mac: mac.into(),
            first_seen_ns: seen,
            last_seen_ns: seen,
            vendor: None,
            name: None,
            inventory_status: "unknown".into(),
            category: "unknown".into(),
            category_source: "observed".into(),
            confidence: 0.0,
            criticality: "medium".into(),
            why: String::new(),
            addresses: vec!["198.51.100.10".into()],
            profile: Profile::default(),
            evidence: Vec::new(),
            new_device_reported: true,
            product: None,
            identity: None,
            vulnerabilities: Vec::new(),
            gateway: None,
            policies: Vec::new(),
            declared_rules: Vec::new(),
        }
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kw-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn saved_devices_come_back_and_keep_their_first_sight() {
        let d = tmp("roundtrip");
        let mut s = Store::open(&d).unwrap();
        s.save(&[dev("02:00:00:00:00:0a", 100)]).unwrap();
        s.save(&[dev("02:00:00:00:00:0a", 50), dev("02:00:00:00:00:0b", 7)])
            .unwrap();
        drop(s);
        let r = Store::open_readonly(&d).unwrap();
        let all = r.devices().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            r.device("02:00:00:00:00:0a")
                .unwrap()
                .unwrap()
                .addresses
                .len(),
            1
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        assert_eq!(
            std::fs::metadata(d.join(DB_FILE)).unwrap().mode() & 0o777,
            0o600
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_renamed_entry_keeps_its_first_use_a_forgotten_one_goes_and_windows_come_back() {
        let d = tmp("renamed");
        let mut s = Store::open(&d).unwrap();
        let m = "02:00:00:00:00:0a".to_string();
        s.save_learned(
            &[
                (m.clone(), "203.0.113.10:8883/tcp".into()),
                (m.clone(), "203.0.113.11:443/tcp".into()),
                (m.clone(), "lock.example.com:443/tcp".into()),
                (m.clone(), "203.0.113.6:8000/tcp".into()),
            ],
            &[],
            &[],
            100,
        )
        .unwrap();
        s.save_learned(
            &[],
            &[
                (
                    m.clone(),
                    "203.0.113.10:8883/tcp".into(),
                    "lock.example.com:8883/tcp".into(),
                ),
                // The name's entry exists already: the address's entry just goes.
                (
                    m.clone(),
                    "203.0.113.11:443/tcp".into(),
                    "lock.example.com:443/tcp".into(),
                ),
            ],
            // Learned, then seen to speak IRC: taken back.
            &[(m.clone(), "203.0.113.6:8000/tcp".into())],
            200,
        )
        .unwrap();
        s.save_windows(&[(m.clone(), Some(5_000))]).unwrap();
        s.save_windows(&[(m.clone(), Some(9_000))]).unwrap();
        // A window that ends early (its device left learn mode) goes.
        let other = "02:00:00:00:00:99".to_string();
        s.save_windows(&[(other.clone(), Some(1))]).unwrap();
        s.save_windows(&[(other, None)]).unwrap();
        drop(s);
        let r = Store::open_readonly(&d).unwrap();
        assert_eq!(
            r.learned().unwrap(),
            vec![
                (m.clone(), "lock.example.com:443/tcp".to_string(), 100),
                (m.clone(), "lock.example.com:8883/tcp".to_string(), 100),
            ]
        );
        assert_eq!(r.windows().unwrap(), vec![(m, 9_000)]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_missing_store_is_a_clear_error() {
        let e = Store::open_readonly(&tmp("absent"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no state here yet"), "{e}");
    }
}
