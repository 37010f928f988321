//! Sinks for the JSON Lines stream.

use std::{
    fs::OpenOptions,
    io::{self, BufWriter, Write},
    os::unix::fs::OpenOptionsExt,
};

use serde_json::Value;

/// Where events go: one JSON object a line.
pub struct Output {
    w: Box<dyn Write + Send>,
    /// Lines written.
    pub lines: u64,
    /// Lines lost to write errors.
    pub errors: u64,
}

impl Output {
    /// `-` is standard output; anything else a file, appended to and created 0600.
    pub fn open(path: &str) -> io::Result<Self> {
        let w: Box<dyn Write + Send> = if path == "-" {
            Box::new(BufWriter::new(io::stdout()))
        } else {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)?;
            Box::new(BufWriter::new(f))
        };
        Ok(Self::from_writer(w))
    }

    /// Any writer (tests, benchmarks).
    pub fn from_writer(w: Box<dyn Write + Send>) -> Self {
        Self {
            w,
            lines: 0,
            errors: 0,
        }
    }

    /// Writes one event as one line.
    pub fn write(&mut self, v: &Value) {
        let res = serde_json::to_writer(&mut self.w, v)
            .map_err(io::Error::from)
            .and_then(|()| self.w.write_all(b"\n"));
        match res {
            Ok(()) => self.lines += 1,
            Err(e) => {
                if self.errors == 0 {
                    tracing::warn!("writing events failed: {e}; counting lost lines in stats");
                }
                self.errors += 1;
            }
        }
    }

    /// Pushes buffered lines out; called after each batch.
    pub fn flush(&mut self) {
        if let Err(e) = self.w.flush() {
            if self.errors == 0 {
                tracing::warn!("flushing events failed: {e}");
            }
            self.errors += 1;
        }
    }
}
