//! The spool: lines wait here, in order, until JetStream has acknowledged them. It is a
//! SQLite table in the state directory (WAL, so a `kill -9` loses no committed line), or
//! in memory when the run keeps no state. It is bounded: when full, new lines are dropped
//! and counted, and what is already waiting keeps its order.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

/// The spool file in the state directory.
pub const FILE: &str = "nats-spool.sqlite";

/// A spool that could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The state directory could not be made.
    #[error("NATS spool directory {path}: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite said no.
    #[error("NATS spool {path}: {source}")]
    Sql {
        /// The spool file (or `:memory:`).
        path: String,
        /// Why.
        source: rusqlite::Error,
    },
}

/// One line as the sensor hands it over.
#[derive(Clone, Debug)]
pub struct Line {
    /// The subject it is published to.
    pub subject: String,
    /// The line.
    pub payload: Vec<u8>,
    /// When the sensor queued it (wall clock, ns): publish-to-acknowledgement time is
    /// counted from here, across restarts too.
    pub queued_ns: u64,
}

/// One line waiting for its acknowledgement.
#[derive(Clone, Debug)]
pub struct Spooled {
    /// Position in the spool: lines go out in this order.
    pub seq: i64,
    /// The subject it is published to.
    pub subject: String,
    /// The line.
    pub payload: Vec<u8>,
    /// When the sensor queued it (wall clock, ns); 0 for a line an older version spooled.
    pub queued_ns: u64,
}

impl Spooled {
    fn size(&self) -> u64 {
        (self.subject.len() + self.payload.len()) as u64
    }
}

/// The spool.
pub struct Spool {
    conn: Connection,
    path: String,
    /// Set at creation: with the position it makes each line's JetStream message id, so a
    /// line sent twice (acknowledged, but the spool killed before it forgot it) is stored
    /// once, and ids from a spool made later never collide with this one's.
    pub id: String,
    bytes: u64,
    lines: u64,
    max_bytes: u64,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, or in memory when there is none.
    pub fn open(dir: Option<&Path>, max_bytes: u64) -> Result<Self, SpoolError> {
        let path = dir.map_or(":memory:".to_string(), |d| {
            d.join(FILE).display().to_string()
        });
        let err = |source| SpoolError::Sql {
            path: path.clone(),
            source,
        };
        if let Some(d) = dir {
            std::fs::create_dir_all(d).map_err(|e| SpoolError::Dir {
                path: d.display().to_string(),
                source: e,
            })?;
        }
        let conn = match dir {
            Some(d) => Connection::open(d.join(FILE)),
            None => Connection::open_in_memory(),
        }
        .map_err(err)?;
        // WAL with synchronous=NORMAL: a committed line survives the process being
        // killed; only a power loss can take the last commits.
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS spool(
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 subject TEXT NOT NULL,
                 payload BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )
        .map_err(err)?;
        // Spools written before lines carried their queued time gain the column; their
        // lines read as 0 and are left out of the latency figures.
        let has_time: bool = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('spool') WHERE name = 'queued_ns'",
                [],
                |r| r.get::<_, i64>(0).map(|n| n > 0),
            )
            .map_err(err)?;
        if !has_time {
            conn.execute_batch("ALTER TABLE spool ADD COLUMN queued_ns INTEGER NOT NULL DEFAULT 0")
                .map_err(err)?;
        }
        let id: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'id'", [], |r| r.get(0))
            .optional()
            .map_err(err)?;
        let id = match id {
            Some(id) => id,
            None => {
                let id = format!("{:016x}", fastrand_id());
                conn.execute("INSERT INTO meta(key, value) VALUES('id', ?1)", [&id])
                    .map_err(err)?;
                id
            }
        };
        let (bytes, lines): (i64, i64) = conn
            .query_row(
                "SELECT COALESCE(SUM(length(subject) + length(payload)), 0), COUNT(*) FROM spool",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(err)?;
        Ok(Self {
            conn,
            path,
            id,
            bytes: bytes as u64,
            lines: lines as u64,
            max_bytes,
        })
    }

    fn err(&self, source: rusqlite::Error) -> SpoolError {
        SpoolError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends lines in one transaction; returns how many did not fit (dropped).
    pub fn append(&mut self, lines: &[Line]) -> Result<u64, SpoolError> {
        let mut dropped = 0;
        let mut added = (0u64, 0u64);
        let tx = self.conn.transaction().map_err(|e| SpoolError::Sql {
            path: self.path.clone(),
            source: e,
        })?;
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO spool(subject, payload, queued_ns) VALUES(?1, ?2, ?3)")
                .map_err(|e| SpoolError::Sql {
                    path: self.path.clone(),
                    source: e,
                })?;
            for Line {
                subject,
                payload,
                queued_ns,
            } in lines
            {
                let size = (subject.len() + payload.len()) as u64;
                if self.bytes + added.0 + size > self.max_bytes {
                    dropped += 1;
                    continue;
                }
                insert
                    .execute(params![subject, payload, *queued_ns as i64])
                    .map_err(|e| SpoolError::Sql {
                        path: self.path.clone(),
                        source: e,
                    })?;
                added.0 += size;
                added.1 += 1;
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        self.bytes += added.0;
        self.lines += added.1;
        Ok(dropped)
    }

    /// The oldest `n` lines, in order.
    pub fn peek(&self, n: usize) -> Result<Vec<Spooled>, SpoolError> {
        let mut q = self
            .conn
            .prepare_cached(
                "SELECT seq, subject, payload, queued_ns FROM spool ORDER BY seq LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = q
            .query_map([n as i64], |r| {
                Ok(Spooled {
                    seq: r.get(0)?,
                    subject: r.get(1)?,
                    payload: r.get(2)?,
                    queued_ns: r.get::<_, i64>(3)?.max(0) as u64,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// The broker has acknowledged these (the oldest lines): forget them.
    pub fn remove(&mut self, acked: &[Spooled]) -> Result<(), SpoolError> {
        let Some(last) = acked.last() else {
            return Ok(());
        };
        self.conn
            .execute("DELETE FROM spool WHERE seq <= ?1", [last.seq])
            .map_err(|e| self.err(e))?;
        self.bytes = self
            .bytes
            .saturating_sub(acked.iter().map(Spooled::size).sum());
        self.lines = self.lines.saturating_sub(acked.len() as u64);
        Ok(())
    }

    /// Lines waiting.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Bytes waiting.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// A random 64-bit id without another dependency: the kernel's random bytes.
fn fastrand_id() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: `b` is a valid buffer of its length.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n == 8 {
        u64::from_ne_bytes(b)
    } else {
        crate::model::clock::realtime_ns()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: u32) -> Line {
        Line {
            subject: "kettlewatch.gw.flow".into(),
            payload: format!("{{\"n\":{i}}}").into_bytes(),
            queued_ns: 1_000 + u64::from(i),
        }
    }

    #[test]
    fn lines_survive_a_reopen_in_order_and_acknowledged_ones_do_not() {
        let dir = std::env::temp_dir().join(format!("kw-spool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let id = {
            let mut s = Spool::open(Some(&dir), 1 << 20).unwrap();
            assert_eq!(s.append(&(0..10).map(line).collect::<Vec<_>>()).unwrap(), 0);
            let first = s.peek(4).unwrap();
            s.remove(&first).unwrap();
            s.id.clone()
        };
        let s = Spool::open(Some(&dir), 1 << 20).unwrap();
        assert_eq!(s.id, id, "the spool's id is kept with it");
        assert_eq!(s.lines(), 6);
        let left: Vec<String> = s
            .peek(100)
            .unwrap()
            .into_iter()
            .map(|l| String::from_utf8(l.payload).unwrap())
            .collect();
        let want: Vec<String> = (4..10).map(|i| format!("{{\"n\":{i}}}")).collect();
        assert_eq!(left, want);
        let times: Vec<u64> = s.peek(100).unwrap().iter().map(|l| l.queued_ns).collect();
        assert_eq!(
            times,
            (1_004..1_010).collect::<Vec<_>>(),
            "queued times kept"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_spool_from_before_queued_times_opens_and_keeps_its_lines() {
        let dir = std::env::temp_dir().join(format!("kw-spool-old-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        {
            let c = Connection::open(dir.join(FILE)).unwrap();
            c.execute_batch(
                "CREATE TABLE spool(seq INTEGER PRIMARY KEY AUTOINCREMENT,
                     subject TEXT NOT NULL, payload BLOB NOT NULL);
                 INSERT INTO spool(subject, payload) VALUES('kettlewatch.gw.alert', x'7b7d');",
            )
            .unwrap();
        }
        let mut s = Spool::open(Some(&dir), 1 << 20).unwrap();
        s.append(&[line(7)]).unwrap();
        let got: Vec<(String, u64)> = s
            .peek(10)
            .unwrap()
            .into_iter()
            .map(|l| (l.subject, l.queued_ns))
            .collect();
        assert_eq!(
            got,
            vec![
                ("kettlewatch.gw.alert".to_string(), 0),
                ("kettlewatch.gw.flow".to_string(), 1_007)
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_full_spool_drops_the_newest_and_keeps_what_waits() {
        let one = line(0);
        let size = (one.subject.len() + one.payload.len()) as u64;
        let mut s = Spool::open(None, size * 3).unwrap();
        let dropped = s.append(&(0..5).map(line).collect::<Vec<_>>()).unwrap();
        assert_eq!(dropped, 2);
        let kept: Vec<_> = s.peek(10).unwrap().into_iter().map(|l| l.payload).collect();
        assert_eq!(kept, (0..3).map(|i| line(i).payload).collect::<Vec<_>>());
        let all = s.peek(10).unwrap();
        s.remove(&all).unwrap();
        assert_eq!((s.lines(), s.bytes()), (0, 0));
        assert_eq!(s.append(&[line(9)]).unwrap(), 0, "room again once drained");
    }
}
