//! Where each device went: per device and destination (address, port, protocol), the
//! flows, frames and bytes the flow records reported, when it was first and last used,
//! the kernel's last verdict and what the first payload spoke. One row per destination,
//! not per flow, so a device that opens a thousand connections to its cloud is one row;
//! bounded by age and by a number of rows per device (the least recently used go).

use rusqlite::params;

use super::state::{StateError, Store};

/// One device's use of one destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestinationUse {
    /// The device, `aa:bb:..`.
    pub mac: String,
    /// The destination address.
    pub addr: String,
    /// Its port (ICMP: type << 8 | code).
    pub port: u16,
    /// IP protocol number.
    pub proto: u8,
    /// What the first payload spoke, when known.
    pub app_proto: Option<String>,
    /// The kernel's latest verdict (`allowed`, `learning`, `unexpected`, `blocked`, ...).
    pub verdict: String,
    /// First and last use (epoch ns).
    pub first_ns: u64,
    /// Last use.
    pub last_ns: u64,
    /// Flows opened to it.
    pub flows: u64,
    /// Frames the device sent to it.
    pub packets: u64,
    /// Bytes the device sent to it.
    pub bytes: u64,
}

/// How much to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Destinations unused for longer go (ns).
    pub max_age_ns: u64,
    /// At most this many per device (the least recently used go).
    pub per_device: u64,
}

impl Store {
    /// Adds a batch of use (each one row's increments) in one transaction.
    pub fn save_destinations(&mut self, uses: &[DestinationUse]) -> Result<(), StateError> {
        if uses.is_empty() {
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
                    "INSERT INTO destinations (mac, addr, port, proto, app_proto, verdict,
                        first_ns, last_ns, flows, packets, bytes)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT(mac, addr, port, proto) DO UPDATE SET
                        app_proto = COALESCE(excluded.app_proto, app_proto),
                        verdict = excluded.verdict,
                        first_ns = MIN(first_ns, excluded.first_ns),
                        last_ns = MAX(last_ns, excluded.last_ns),
                        flows = flows + excluded.flows,
                        packets = packets + excluded.packets,
                        bytes = bytes + excluded.bytes",
                )
                .map_err(sql)?;
            for u in uses {
                st.execute(params![
                    u.mac,
                    u.addr,
                    u.port,
                    u.proto,
                    u.app_proto,
                    u.verdict,
                    u.first_ns as i64,
                    u.last_ns as i64,
                    u.flows as i64,
                    u.packets as i64,
                    u.bytes as i64
                ])
                .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// Drops what falls outside `keep`; returns how many rows went.
    pub fn prune_destinations(&mut self, keep: Bounds, now_ns: u64) -> Result<usize, StateError> {
        let path = self.path().display().to_string();
        let sql = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn_mut().transaction().map_err(sql)?;
        let old = tx
            .execute(
                "DELETE FROM destinations WHERE last_ns < ?1",
                params![now_ns.saturating_sub(keep.max_age_ns) as i64],
            )
            .map_err(sql)?;
        let over = tx
            .execute(
                "DELETE FROM destinations WHERE rowid IN (
                    SELECT rowid FROM (
                        SELECT rowid, ROW_NUMBER() OVER (PARTITION BY mac ORDER BY last_ns DESC) AS n
                        FROM destinations)
                    WHERE n > ?1)",
                params![keep.per_device as i64],
            )
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(old + over)
    }

    /// A device's destinations, the most recently used first, at most `limit`.
    pub fn destinations(&self, mac: &str, limit: usize) -> Result<Vec<DestinationUse>, StateError> {
        if !self.has_table("destinations")? {
            return Ok(Vec::new());
        }
        let mut st = self
            .conn()
            .prepare(
                "SELECT mac, addr, port, proto, app_proto, verdict, first_ns, last_ns, flows,
                    packets, bytes
                 FROM destinations WHERE mac = ?1 ORDER BY last_ns DESC, addr LIMIT ?2",
            )
            .map_err(self.sql())?;
        let rows = st
            .query_map(params![mac, limit as i64], |r| {
                Ok(DestinationUse {
                    mac: r.get(0)?,
                    addr: r.get(1)?,
                    port: r.get(2)?,
                    proto: r.get(3)?,
                    app_proto: r.get(4)?,
                    verdict: r.get(5)?,
                    first_ns: r.get::<_, i64>(6)? as u64,
                    last_ns: r.get::<_, i64>(7)? as u64,
                    flows: r.get::<_, i64>(8)? as u64,
                    packets: r.get::<_, i64>(9)? as u64,
                    bytes: r.get::<_, i64>(10)? as u64,
                })
            })
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn use_of(addr: &str, port: u16, last_ns: u64, packets: u64) -> DestinationUse {
        DestinationUse {
            mac: "02:00:00:00:00:01".into(),
            addr: addr.into(),
            port,
            proto: 6,
            app_proto: None,
            verdict: "learning".into(),
            first_ns: last_ns,
            last_ns,
            flows: 1,
            packets,
            bytes: packets * 100,
        }
    }

    #[test]
    fn use_adds_up_per_destination_and_the_least_recent_go_first() {
        let dir = std::env::temp_dir().join(format!(
            "kw-dests-{}-{}",
            std::process::id(),
            crate::model::clock::monotonic_ns()
        ));
        let mut s = Store::open(&dir).unwrap();
        s.save_destinations(&[use_of("203.0.113.1", 443, 10, 3)])
            .unwrap();
        let mut later = use_of("203.0.113.1", 443, 20, 2);
        later.app_proto = Some("tls".into());
        later.verdict = "allowed".into();
        s.save_destinations(&[later, use_of("203.0.113.2", 443, 15, 1)])
            .unwrap();
        let mut none_said = use_of("203.0.113.1", 443, 25, 1);
        none_said.flows = 0;
        s.save_destinations(&[none_said]).unwrap();
        let mac = "02:00:00:00:00:01";
        let d = s.destinations(mac, 10).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].addr, "203.0.113.1", "the most recent first");
        assert_eq!((d[0].flows, d[0].packets, d[0].bytes), (2, 6, 600));
        assert_eq!((d[0].first_ns, d[0].last_ns), (10, 25));
        assert_eq!(d[0].app_proto.as_deref(), Some("tls"), "kept once known");
        assert_eq!(d[0].verdict, "learning", "the latest verdict");
        let keep = Bounds {
            max_age_ns: 100,
            per_device: 1,
        };
        assert_eq!(s.prune_destinations(keep, 110).unwrap(), 1);
        let d = s.destinations(mac, 10).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].addr, "203.0.113.1");
        assert_eq!(s.prune_destinations(keep, 1000).unwrap(), 1, "too old");
        assert!(s.destinations(mac, 10).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
