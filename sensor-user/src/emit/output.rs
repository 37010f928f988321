//! Sinks for the JSON Lines stream. Lines go through a bounded queue to a writer thread,
//! so a sink that stalls (a reader that stops reading, a slow disk) never stalls the
//! sensor: when the queue is full, lines are dropped and counted.

use std::{
    fs::OpenOptions,
    io::{self, BufWriter, Write},
    os::unix::fs::OpenOptionsExt,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc::{self, RecvTimeoutError, SyncSender, TrySendError},
    },
    thread::JoinHandle,
    time::Duration,
};

use serde_json::Value;

/// A Unix stream socket that a log shipper listens on, connected on first use and again
/// after it goes away (at most every `RETRY`); a line that cannot be written is an error
/// (counted by the writer), never a stall.
struct UnixSink {
    path: std::path::PathBuf,
    stream: Option<std::os::unix::net::UnixStream>,
    next_try: std::time::Instant,
}

const RETRY: Duration = Duration::from_millis(200);

impl UnixSink {
    fn new(path: std::path::PathBuf) -> Self {
        Self {
            path,
            stream: None,
            next_try: std::time::Instant::now(),
        }
    }
}

impl Write for UnixSink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.write_all(b).map(|()| b.len())
    }

    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        if self.stream.is_none() {
            if std::time::Instant::now() < self.next_try {
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "event socket not connected",
                ));
            }
            match std::os::unix::net::UnixStream::connect(&self.path) {
                Ok(s) => {
                    // A reader that stops reading must not stall the writer for long.
                    s.set_write_timeout(Some(Duration::from_secs(1)))?;
                    tracing::info!(path = %self.path.display(), "event socket connected");
                    self.stream = Some(s);
                }
                Err(e) => {
                    self.next_try = std::time::Instant::now() + RETRY;
                    return Err(io::Error::new(
                        e.kind(),
                        format!("{}: {e}", self.path.display()),
                    ));
                }
            }
        }
        let s = self.stream.as_mut().expect("connected above");
        if let Err(e) = s.write_all(b) {
            self.stream = None;
            self.next_try = std::time::Instant::now() + RETRY;
            return Err(e);
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Default)]
struct Counters {
    written: AtomicU64,
    errors: AtomicU64,
    dropped: AtomicU64,
    /// Asked to reopen the file (SIGHUP, after logrotate moved it).
    reopen: AtomicBool,
    /// The reader closed the pipe: the stream has ended.
    closed: AtomicBool,
}

/// Opens the same path again, for a file sink after a rotation.
type Reopen = Box<dyn FnMut() -> io::Result<Box<dyn Write + Send>> + Send>;

/// What the writer thread writes to.
struct Sink {
    w: Box<dyn Write + Send>,
    reopen: Option<Reopen>,
    /// Standard output: a closed pipe means the reader is gone for good (`| head`), not a
    /// failure to count.
    ends_on_broken_pipe: bool,
}

fn open_file(path: &str) -> io::Result<std::fs::File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Where events go: one JSON object a line.
pub struct Output {
    tx: Option<SyncSender<String>>,
    writer: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    warned_full: bool,
    wait_when_full: bool,
}

impl Output {
    /// `-` is standard output; `unix:PATH` a Unix stream socket a log shipper listens on
    /// (reconnected when it goes away; lines written meanwhile are counted as lost); anything
    /// else a file, appended to and created 0600, opened again by [`Output::reopen`].
    pub fn open(path: &str, queue_lines: usize) -> io::Result<Self> {
        if path == "-" {
            return Ok(Self::spawn(
                Sink {
                    w: Box::new(BufWriter::new(io::stdout())),
                    reopen: None,
                    ends_on_broken_pipe: true,
                },
                queue_lines,
            ));
        }
        if let Some(sock) = path.strip_prefix("unix:") {
            // Each line whole or failed: no buffer that would keep a failed line around
            // to fail again.
            return Ok(Self::spawn(
                Sink {
                    w: Box::new(UnixSink::new(sock.into())),
                    reopen: None,
                    ends_on_broken_pipe: false,
                },
                queue_lines,
            ));
        }
        let f = open_file(path)?;
        let owned = path.to_string();
        Ok(Self::spawn(
            Sink {
                w: Box::new(BufWriter::new(f)),
                reopen: Some(Box::new(move || {
                    Ok(Box::new(BufWriter::new(open_file(&owned)?)) as Box<dyn Write + Send>)
                })),
                ends_on_broken_pipe: false,
            },
            queue_lines,
        ))
    }

    /// Any writer (tests, benchmarks).
    pub fn from_writer(w: Box<dyn Write + Send>, queue_lines: usize) -> Self {
        Self::spawn(
            Sink {
                w: Box::new(BufWriter::new(w)),
                reopen: None,
                ends_on_broken_pipe: false,
            },
            queue_lines,
        )
    }

    fn spawn(mut sink: Sink, queue_lines: usize) -> Self {
        let (tx, rx) = mpsc::sync_channel::<String>(queue_lines.max(1));
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        let writer = std::thread::spawn(move || {
            // Set while the sink is failing: one warning when it starts, one when it
            // works again with what was lost meanwhile (not one per line).
            let mut failing: Option<u64> = None;
            let fail = |e: io::Error, c: &Counters, failing: &mut Option<u64>| {
                if failing.is_none() {
                    tracing::warn!(
                        error = %e,
                        "writing events failed; retrying with each line, counting lost lines (output_errors)"
                    );
                    *failing = Some(c.errors.load(Ordering::Relaxed));
                }
                c.errors.fetch_add(1, Ordering::Relaxed);
            };
            let ended = |e: &io::Error, sink: &Sink, c: &Counters| {
                let gone = sink.ends_on_broken_pipe && e.kind() == io::ErrorKind::BrokenPipe;
                if gone {
                    c.closed.store(true, Ordering::Relaxed);
                }
                gone
            };
            loop {
                if c.reopen.swap(false, Ordering::Relaxed)
                    && let Some(reopen) = sink.reopen.as_mut()
                {
                    // What was written to the old file stays there; a failed reopen keeps
                    // writing to the old one, said once.
                    if let Err(e) = sink.w.flush() {
                        fail(e, &c, &mut failing);
                    }
                    match reopen() {
                        Ok(w) => {
                            sink.w = w;
                            tracing::info!("output file reopened");
                        }
                        Err(e) => tracing::error!(
                            error = %e,
                            "reopening the output file failed; still writing to the one open"
                        ),
                    }
                }
                // Flush whenever the queue runs dry, so lines are out within ~50 ms.
                let line = match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(l) => l,
                    Err(RecvTimeoutError::Timeout) => {
                        if let Err(e) = sink.w.flush() {
                            if ended(&e, &sink, &c) {
                                return;
                            }
                            fail(e, &c, &mut failing);
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                };
                match sink.w.write_all(line.as_bytes()) {
                    Ok(()) => {
                        c.written.fetch_add(1, Ordering::Relaxed);
                        if let Some(before) = failing.take() {
                            tracing::warn!(
                                lost = c.errors.load(Ordering::Relaxed) - before,
                                "writing events works again"
                            );
                        }
                    }
                    Err(e) if ended(&e, &sink, &c) => return,
                    Err(e) => fail(e, &c, &mut failing),
                }
            }
            if let Err(e) = sink.w.flush()
                && !ended(&e, &sink, &c)
            {
                fail(e, &c, &mut failing);
            }
        });
        Self {
            tx: Some(tx),
            writer: Some(writer),
            counters,
            warned_full: false,
            wait_when_full: false,
        }
    }

    /// The file is opened again by path before the next line (SIGHUP: logrotate moved
    /// it); other sinks ignore it.
    pub fn reopen(&self) {
        self.counters.reopen.store(true, Ordering::Relaxed);
    }

    /// The reader closed standard output: nothing more can be written, and the run ends.
    pub fn closed(&self) -> bool {
        self.counters.closed.load(Ordering::Relaxed)
    }

    /// Waits for a full queue instead of dropping: for replays, which are offline and must
    /// give every line whatever the reader's pace.
    pub fn wait_when_full(mut self) -> Self {
        self.wait_when_full = true;
        self
    }

    /// Queues one event as one line; never blocks unless made to wait when full.
    pub fn write(&mut self, v: &Value) {
        let mut line = v.to_string();
        line.push('\n');
        self.queue(line);
    }

    /// Queues one line of text (the terminal view), on the same terms as an event.
    pub fn write_text(&mut self, text: &str) {
        let mut line = String::with_capacity(text.len() + 1);
        line.push_str(text);
        line.push('\n');
        self.queue(line);
    }

    fn queue(&mut self, line: String) {
        let Some(tx) = &self.tx else { return };
        if self.closed() {
            return;
        }
        if self.wait_when_full {
            if tx.send(line).is_err() && !self.closed() {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        match tx.try_send(line) {
            Ok(()) => self.warned_full = false,
            Err(TrySendError::Full(_)) => {
                if !self.warned_full {
                    tracing::warn!(
                        "the output is not keeping up; dropping lines (counted as output_dropped)"
                    );
                    self.warned_full = true;
                }
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) if self.closed() => {}
            Err(TrySendError::Disconnected(_)) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.counters.written.load(Ordering::Relaxed)
    }

    /// Lines lost to write errors.
    pub fn errors(&self) -> u64 {
        self.counters.errors.load(Ordering::Relaxed)
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Output {
    /// Writes out everything queued before returning.
    fn drop(&mut self) {
        self.tx.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        // The stream may be what failed: say what it lost where the operator will look.
        // A reader that closed the pipe wanted no more: nothing to say.
        let (errors, dropped) = (self.errors(), self.dropped());
        if errors + dropped > 0 && !self.closed() {
            tracing::warn!(
                "output: {} lines written, {errors} lost to write errors, {dropped} dropped because the sink did not keep up",
                self.lines()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A sink that blocks until released, like a reader that stopped reading.
    struct Stalled(Arc<Mutex<()>>);

    impl Write for Stalled {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let _g = self.0.lock().unwrap();
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A shipper listening on a Unix socket: lines arrive; it goes away: lines are counted
    /// as errors and the sensor goes on; it comes back: lines arrive again.
    #[test]
    fn a_unix_socket_sink_survives_its_reader_going_away() {
        use std::io::{BufRead, BufReader};
        use std::os::unix::net::UnixListener;
        let dir = std::env::temp_dir().join(format!("kw-sock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("eve.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let mut out = Output::open(&format!("unix:{}", path.display()), 16).unwrap();
        out.write(&serde_json::json!({"n": 1}));
        let (conn, _) = listener.accept().unwrap();
        let mut lines = BufReader::new(conn.try_clone().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), r#"{"n":1}"#);
        // The shipper goes away.
        drop(lines);
        drop(conn);
        drop(listener);
        std::fs::remove_file(&path).unwrap();
        for n in 2..6 {
            out.write(&serde_json::json!({ "n": n }));
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        assert!(out.errors() >= 1, "lost lines are counted");
        // It comes back; after the retry delay lines flow again.
        let listener = UnixListener::bind(&path).unwrap();
        std::thread::sleep(RETRY + Duration::from_millis(50));
        out.write(&serde_json::json!({"n": 9}));
        let (conn, _) = listener.accept().unwrap();
        let mut lines = BufReader::new(conn).lines();
        assert_eq!(lines.next().unwrap().unwrap(), r#"{"n":9}"#);
        drop(out);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// logrotate without copytruncate: the file is moved, the sensor told to reopen, and
    /// later lines go to a new file at the same path; nothing is lost or doubled.
    #[test]
    fn a_moved_file_is_opened_again_by_path_on_reopen() {
        let dir = std::env::temp_dir().join(format!("kw-reopen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("eve.json");
        let rotated = dir.join("eve.json.1");
        let mut out = Output::open(path.to_str().unwrap(), 16).unwrap();
        out.write(&serde_json::json!({"n": 1}));
        std::thread::sleep(Duration::from_millis(150));
        std::fs::rename(&path, &rotated).unwrap();
        out.write(&serde_json::json!({"n": 2}));
        std::thread::sleep(Duration::from_millis(150));
        out.reopen();
        std::thread::sleep(Duration::from_millis(150));
        out.write(&serde_json::json!({"n": 3}));
        drop(out);
        let old = std::fs::read_to_string(&rotated).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            old, "{\"n\":1}\n{\"n\":2}\n",
            "before the reopen: the moved file"
        );
        assert_eq!(new, "{\"n\":3}\n", "after it: a new file at the path");
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn every_line_is_written_by_drop() {
        let buf = Shared::default();
        let mut o = Output::from_writer(Box::new(buf.clone()), 16);
        for i in 0..10 {
            o.write(&serde_json::json!({ "n": i }));
        }
        drop(o);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 10);
        assert_eq!(text.lines().last(), Some("{\"n\":9}"));
    }

    #[test]
    fn waiting_when_full_loses_nothing() {
        let buf = Shared::default();
        let mut o = Output::from_writer(Box::new(buf.clone()), 1).wait_when_full();
        for i in 0..1000 {
            o.write(&serde_json::json!({ "n": i }));
        }
        assert_eq!(o.dropped(), 0);
        drop(o);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1000);
    }

    #[test]
    fn a_stalled_sink_drops_and_counts_instead_of_blocking() {
        let gate = Arc::new(Mutex::new(()));
        let mut o = Output::from_writer(Box::new(Stalled(gate.clone())), 4);
        // Declared after `o`, so a failed assertion releases the sink before `o` joins
        // its writer.
        let held = gate.lock().unwrap();
        // Lines larger than the writer's buffer go straight to the (stalled) sink.
        let pad = "x".repeat(16 * 1024);
        let start = std::time::Instant::now();
        for i in 0..100 {
            o.write(&serde_json::json!({ "n": i, "pad": pad }));
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "write never blocks"
        );
        // At most 4 queued and 1 in the writer's hands; the rest dropped and counted.
        assert!(o.dropped() >= 95, "{}", o.dropped());
        drop(held);
    }
}
