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
        mpsc::{self, RecvTimeoutError, Sender},
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

/// Lines go to the writer in batches of up to this many bytes (or [`BATCH_LINES`]
/// lines), and whatever is pending at each [`Output::flush`]: one queue message, one
/// allocation freed on the writer's side and one write a batch. Line by line, a poll's
/// hundreds of thousands of lines cost more in wake-ups and in the allocator's lock
/// (the writer freeing what the sensor allocated) than in JSON.
const BATCH_BYTES: usize = 32 * 1024;
/// See [`BATCH_BYTES`].
const BATCH_LINES: usize = 256;

/// Lines handed to the writer together.
struct Batch {
    text: String,
    lines: u64,
}

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
    /// Lines handed to the writer and not yet written: the queue's bound is in lines.
    queued: AtomicU64,
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
    tx: Option<Sender<Batch>>,
    writer: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    warned_full: bool,
    wait_when_full: bool,
    queue_lines: u64,
    pending: Batch,
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
        let (tx, rx) = mpsc::channel::<Batch>();
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
                let batch = match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(b) => b,
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
                let result = sink.w.write_all(batch.text.as_bytes());
                c.queued.fetch_sub(batch.lines, Ordering::Relaxed);
                match result {
                    Ok(()) => {
                        c.written.fetch_add(batch.lines, Ordering::Relaxed);
                        if let Some(before) = failing.take() {
                            tracing::warn!(
                                lost = c.errors.load(Ordering::Relaxed) - before,
                                "writing events works again"
                            );
                        }
                    }
                    Err(e) if ended(&e, &sink, &c) => return,
                    Err(e) => {
                        fail(e, &c, &mut failing);
                        c.errors.fetch_add(batch.lines - 1, Ordering::Relaxed);
                    }
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
            queue_lines: queue_lines.max(1) as u64,
            pending: Batch {
                text: String::new(),
                lines: 0,
            },
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
        self.queue(&v.to_string());
    }

    /// Queues one event already written as JSON (without its newline).
    pub fn write_json(&mut self, line: String) {
        self.queue(&line);
    }

    /// Queues one line of text (the terminal view), on the same terms as an event.
    pub fn write_text(&mut self, text: &str) {
        self.queue(text);
    }

    fn queue(&mut self, line: &str) {
        if self.tx.is_none() || self.closed() {
            return;
        }
        let p = &mut self.pending;
        p.text.push_str(line);
        p.text.push('\n');
        p.lines += 1;
        if p.text.len() >= BATCH_BYTES || p.lines >= BATCH_LINES as u64 {
            self.flush();
        }
    }

    /// Hands the lines queued since the last call to the writer. The sensor calls it
    /// after each turn of its event loop, so a line waits for no later event.
    pub fn flush(&mut self) {
        let lines = self.pending.lines;
        if lines == 0 {
            return;
        }
        let Some(tx) = &self.tx else { return };
        let c = &self.counters;
        if self.wait_when_full {
            // A batch larger than the whole queue goes alone.
            while c.queued.load(Ordering::Relaxed) > 0
                && c.queued.load(Ordering::Relaxed) + lines > self.queue_lines
                && !c.closed.load(Ordering::Relaxed)
            {
                std::thread::sleep(Duration::from_millis(1));
            }
        } else if c.queued.load(Ordering::Relaxed) + lines > self.queue_lines {
            if !self.warned_full {
                tracing::warn!(
                    "the output is not keeping up; dropping lines (counted as output_dropped)"
                );
                self.warned_full = true;
            }
            c.dropped.fetch_add(lines, Ordering::Relaxed);
            self.pending.text.clear();
            self.pending.lines = 0;
            return;
        }
        let batch = Batch {
            text: std::mem::replace(&mut self.pending.text, String::with_capacity(BATCH_BYTES)),
            lines,
        };
        self.pending.lines = 0;
        c.queued.fetch_add(lines, Ordering::Relaxed);
        if tx.send(batch).is_err() {
            c.queued.fetch_sub(lines, Ordering::Relaxed);
            if !self.closed() {
                c.errors.fetch_add(lines, Ordering::Relaxed);
            }
            return;
        }
        self.warned_full = false;
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
        self.flush();
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
mod tests;
