//! Where events go: the stream (a file, stdout or a Unix socket) and any number of other
//! sinks beside it (the terminal view, NATS JetStream, whatever comes next), each behind
//! the small [`Sink`] trait. The engine writes to [`Sinks`] and knows none of them.

use serde_json::Value;

use crate::emit::{nats::Fleet, output::Output, text::TextView};

/// A place events go besides the stream.
pub trait Sink {
    /// One event (`event_type` is its `event_type`).
    fn event(&mut self, event_type: &str, v: &Value);
    /// A `flow` event already serialized; `bytes` is what it reports.
    fn flow(&mut self, line: &str, bytes: u64);
    /// A device's stored record changed (`row` is its JSON); only sinks that keep devices
    /// want it.
    fn device(&mut self, _mac: &str, _row: &[u8]) {}
    /// Whether it wants [`Sink::device`] (building rows costs a little per device).
    fn wants_devices(&self) -> bool {
        false
    }
    /// Hands what it queued to its writer (after each turn of the event loop).
    fn flush(&mut self) {}
    /// Its reader went away: the run has nowhere to write.
    fn closed(&self) -> bool {
        false
    }
    /// Its own section of `stats` events and the metrics snapshot: (name, counters).
    fn stats(&self) -> Option<(&'static str, Value)> {
        None
    }
}

/// The terminal view (`--format text`): each event as a line, flows summed.
pub struct TextSink {
    view: TextView,
    lines: Output,
}

impl TextSink {
    /// The view, writing its lines to `lines`.
    pub fn new(lines: Output) -> Self {
        Self {
            view: TextView::default(),
            lines,
        }
    }
}

impl Sink for TextSink {
    fn event(&mut self, _event_type: &str, v: &Value) {
        if let Some(line) = self.view.line(v) {
            self.lines.write_text(&line);
        }
    }

    fn flow(&mut self, _line: &str, bytes: u64) {
        self.view.flow(bytes);
    }

    fn flush(&mut self) {
        self.lines.flush();
    }

    fn closed(&self) -> bool {
        self.lines.closed()
    }
}

impl Sink for Fleet {
    fn event(&mut self, event_type: &str, v: &Value) {
        self.send(event_type, v.to_string());
    }

    fn flow(&mut self, line: &str, _bytes: u64) {
        self.send("flow", line.to_string());
    }

    fn device(&mut self, mac: &str, row: &[u8]) {
        self.put_device(mac, row.to_vec());
    }

    fn wants_devices(&self) -> bool {
        true
    }

    fn stats(&self) -> Option<(&'static str, Value)> {
        Some(("nats", serde_json::json!(Fleet::stats(self))))
    }
}

/// The stream and the sinks beside it.
pub struct Sinks {
    /// The stream: a flow's line is moved into it, not copied.
    pub out: Output,
    others: Vec<Box<dyn Sink>>,
}

impl Sinks {
    /// The stream alone.
    pub fn new(out: Output) -> Self {
        Self {
            out,
            others: Vec::new(),
        }
    }

    /// Adds a sink beside the stream.
    pub fn add(&mut self, sink: Box<dyn Sink>) {
        self.others.push(sink);
    }

    /// One event, to every sink.
    pub fn emit(&mut self, v: &Value) {
        self.out.write(v);
        let event_type = v["event_type"].as_str().unwrap_or("event");
        for s in &mut self.others {
            s.event(event_type, v);
        }
    }

    /// A `flow` event already written as its line; `bytes` is what it reports.
    pub fn emit_flow(&mut self, line: String, bytes: u64) {
        for s in &mut self.others {
            s.flow(&line, bytes);
        }
        self.out.write_json(line);
    }

    /// Whether any sink wants device records.
    pub fn wants_devices(&self) -> bool {
        self.others.iter().any(|s| s.wants_devices())
    }

    /// A device's record, to the sinks that keep devices.
    pub fn device(&mut self, mac: &str, row: &[u8]) {
        for s in self.others.iter_mut().filter(|s| s.wants_devices()) {
            s.device(mac, row);
        }
    }

    /// Hands what every sink queued to its writer.
    pub fn flush(&mut self) {
        self.out.flush();
        for s in &mut self.others {
            s.flush();
        }
    }

    /// The stream's file is opened again by path (SIGHUP, after logrotate moved it).
    pub fn reopen(&self) {
        self.out.reopen();
    }

    /// A reader went away (the stream's or a sink's).
    pub fn closed(&self) -> bool {
        self.out.closed() || self.others.iter().any(|s| s.closed())
    }

    /// Every sink's own `stats` section.
    pub fn stats(&self) -> Vec<(&'static str, Value)> {
        self.others.iter().filter_map(|s| s.stats()).collect()
    }
}
