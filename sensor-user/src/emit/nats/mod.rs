//! The fleet output: every line also goes to NATS JetStream as
//! `<prefix>.<host>.<event_type>`, and each device's latest profile to a key-value bucket
//! (`<host>.<mac-with-dashes>`), so a company sees all its gateways in one place. Lines
//! pass through a bounded queue and a spool in the state directory, so a broker that is
//! down, slow or electing a leader never stalls the sensor and loses nothing that fits.
//! `fleet` reads the bucket and the alerts back for `kettlewatch devices --nats` and
//! `kettlewatch console --nats`.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use tokio::sync::mpsc::{self, Sender, error::TrySendError};

use crate::config::NatsConfig;

pub mod fleet;
mod publish;
pub mod spool;

/// Why the fleet output could not start.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A file the configuration names could not be read.
    #[error("[output.nats] {what} {path}: {source}")]
    File {
        /// Which key.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The spool could not be opened.
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
    /// The client's runtime or thread could not start.
    #[error("[output.nats]: {0}")]
    Start(std::io::Error),
    /// The client refused the options (bad address, credentials).
    #[error("[output.nats]: {0}")]
    Connect(String),
}

/// What the publisher and the sensor share.
pub(crate) struct Shared {
    published: AtomicU64,
    queue_full: AtomicU64,
    spool_full: AtomicU64,
    errors: AtomicU64,
    spooled_lines: AtomicU64,
    spooled_bytes: AtomicU64,
    connected: AtomicBool,
    /// Exit: the drain timeout passed.
    stop: AtomicBool,
    /// Told at the drain timeout: stop waiting for the broker now.
    stop_now: tokio::sync::Notify,
    /// The sensor closed the queue and everything in it is spooled.
    intake_done: AtomicBool,
    wake: tokio::sync::Notify,
    /// Queued-to-acknowledged time of every line since start, microseconds.
    latency: std::sync::Mutex<hdrhistogram::Histogram<u64>>,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            published: AtomicU64::default(),
            queue_full: AtomicU64::default(),
            spool_full: AtomicU64::default(),
            errors: AtomicU64::default(),
            spooled_lines: AtomicU64::default(),
            spooled_bytes: AtomicU64::default(),
            connected: AtomicBool::default(),
            stop: AtomicBool::default(),
            stop_now: tokio::sync::Notify::default(),
            intake_done: AtomicBool::default(),
            wake: tokio::sync::Notify::default(),
            latency: std::sync::Mutex::new(latency_histogram()),
        }
    }
}

/// From 1 us to a day (a line that waited out an outage), two significant digits (30 KB).
pub fn latency_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 86_400_000_000, 2).expect("valid bounds")
}

/// The fleet output's counters, for `stats` (under `iot.nats`) and the metrics endpoint.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct NatsStats {
    /// Lines JetStream acknowledged.
    pub published: u64,
    /// Lines waiting in the spool.
    pub spooled: u64,
    /// Bytes waiting in the spool.
    pub spooled_bytes: u64,
    /// Lines dropped because the queue to the publisher was full.
    pub queue_full: u64,
    /// Lines dropped because the spool was full.
    pub spool_full: u64,
    /// Failed publishes, stream set-ups and spool writes (each retried).
    pub errors: u64,
    /// Connected to a server now.
    pub connected: bool,
    /// Median time from the sensor queuing a line to JetStream acknowledging it, since
    /// start (ms; 0 before the first).
    pub publish_p50_ms: f64,
    /// The same, 99th percentile.
    pub publish_p99_ms: f64,
}

/// The sensor's handle on the fleet output; dropping it drains the spool for up to
/// `drain_timeout`.
pub struct Fleet {
    tx: Option<Sender<spool::Line>>,
    thread: Option<JoinHandle<()>>,
    done: Option<std::sync::mpsc::Receiver<()>>,
    shared: Arc<Shared>,
    /// `<prefix>.<host>.`
    subject_prefix: String,
    /// `$KV.<bucket>.<host>.`
    kv_prefix: String,
    drain_timeout: Duration,
    persistent: bool,
    warned_full: bool,
    wait_when_full: bool,
    /// `[output.nats] event_types`.
    event_types: Vec<String>,
}

/// A name as one subject token: what is not a letter, digit, `-` or `_` becomes `_`.
pub fn subject_token(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() { "_".into() } else { t }
}

/// The bucket key of a device: `<host>.<mac-with-dashes>`.
pub fn device_key(host: &str, mac: &str) -> String {
    format!("{}.{}", subject_token(host), mac.replace(':', "-"))
}

/// Client options from the configuration: credentials and TLS files are read now, so a
/// missing one fails at start with its path.
pub fn connect_options(
    cfg: &NatsConfig,
    base_dir: Option<&Path>,
    name: &str,
) -> Result<async_nats::ConnectOptions, FleetError> {
    let resolve = |p: &Path| match base_dir {
        Some(b) if p.is_relative() => b.join(p),
        _ => p.to_path_buf(),
    };
    let mut o = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .retry_on_initial_connect()
        .max_reconnects(None);
    if let Some(c) = &cfg.creds {
        let path = resolve(c);
        let text = std::fs::read_to_string(&path).map_err(|source| FleetError::File {
            what: "creds",
            path: path.clone(),
            source,
        })?;
        o = o
            .credentials(&text)
            .map_err(|e| FleetError::Connect(format!("creds {}: {e}", path.display())))?;
    }
    if let (Some(u), Some(p)) = (&cfg.user, &cfg.password) {
        o = o.user_and_password(u.clone(), p.clone());
    }
    if let Some(t) = &cfg.token {
        o = o.token(t.clone());
    }
    for (what, file) in [
        ("tls_ca", &cfg.tls_ca),
        ("tls_cert", &cfg.tls_cert),
        ("tls_key", &cfg.tls_key),
    ] {
        if let Some(f) = file {
            let path = resolve(f);
            std::fs::metadata(&path).map_err(|source| FleetError::File {
                what,
                path: path.clone(),
                source,
            })?;
        }
    }
    if let Some(ca) = &cfg.tls_ca {
        o = o.add_root_certificates(resolve(ca));
    }
    if let (Some(c), Some(k)) = (&cfg.tls_cert, &cfg.tls_key) {
        o = o.add_client_certificate(resolve(c), resolve(k));
    }
    if cfg.tls_required {
        o = o.require_tls(true);
    }
    Ok(o)
}

/// The configured servers.
pub fn server_addrs(cfg: &NatsConfig) -> Result<Vec<async_nats::ServerAddr>, FleetError> {
    cfg.url
        .get_ref()
        .iter()
        .map(|u| {
            u.parse()
                .map_err(|e| FleetError::Connect(format!("url {u:?}: {e}")))
        })
        .collect()
}

impl Fleet {
    /// Starts the publisher thread; the spool lives in `state_dir` (in memory without one).
    pub fn start(
        cfg: &NatsConfig,
        base_dir: Option<&Path>,
        host: &str,
        state_dir: Option<&Path>,
        queue_lines: usize,
    ) -> Result<Self, FleetError> {
        let options = connect_options(cfg, base_dir, &format!("kettlewatch {host}"))?;
        let addrs = server_addrs(cfg)?;
        let spool = spool::Spool::open(state_dir, *cfg.spool_bytes.get_ref())?;
        if spool.lines() > 0 {
            tracing::info!(
                spooled = spool.lines(),
                "NATS spool holds lines from an earlier run; they go out first"
            );
        }
        let prefix = cfg.subject_prefix.get_ref();
        let host_token = subject_token(host);
        let plan = publish::Plan {
            stream: cfg.stream.get_ref().clone(),
            stream_subjects: format!("{prefix}.>"),
            probe_subject: format!("{prefix}.{host_token}.alert"),
            max_age: *cfg.max_age.get_ref(),
            max_bytes: cfg.max_bytes,
            replicas: *cfg.replicas.get_ref(),
            bucket: cfg.kv_bucket.get_ref().clone(),
        };
        let (tx, rx) = mpsc::channel(queue_lines.max(1));
        let (done_tx, done) = std::sync::mpsc::channel();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(FleetError::Start)?;
        let thread = std::thread::Builder::new()
            .name("kettlewatch-nats".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let spool = Arc::new(std::sync::Mutex::new(spool));
                    let intake = tokio::spawn(publish::intake(rx, spool.clone(), s.clone()));
                    match options.connect(addrs).await {
                        Ok(client) => {
                            let publisher =
                                publish::Publisher::new(client, plan, spool.clone(), s.clone());
                            // Past the drain timeout the publisher is cut off wherever it
                            // waits; a line acknowledged but not yet forgotten is sent
                            // again next time and stored once (its message id).
                            tokio::select! {
                                _ = publisher.run() => {}
                                _ = s.stop_now.notified() => {}
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "NATS client did not start"),
                    }
                    // The queue is closed by now: the intake ends once it is spooled.
                    let _ = tokio::time::timeout(Duration::from_secs(5), intake).await;
                    let left = spool.lock().map_or(0, |sp| sp.lines());
                    s.spooled_lines.store(left, Ordering::Relaxed);
                });
                let _ = done_tx.send(());
            })
            .map_err(FleetError::Start)?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            done: Some(done),
            shared,
            subject_prefix: format!("{prefix}.{host_token}."),
            kv_prefix: format!("$KV.{}.{host_token}.", cfg.kv_bucket.get_ref()),
            drain_timeout: *cfg.drain_timeout.get_ref(),
            persistent: state_dir.is_some(),
            warned_full: false,
            wait_when_full: false,
            event_types: cfg.event_types.get_ref().clone(),
        })
    }

    /// Offline (replay): wait for room in the queue instead of dropping a line. Not for
    /// a thread inside an async runtime.
    pub fn wait_when_full(mut self) -> Self {
        self.wait_when_full = true;
        self
    }

    fn queue(&mut self, subject: String, payload: Vec<u8>) {
        let Some(tx) = &self.tx else { return };
        let line = spool::Line {
            subject,
            payload,
            queued_ns: crate::model::clock::realtime_ns(),
        };
        if self.wait_when_full {
            if tx.blocking_send(line).is_err() {
                self.shared.queue_full.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        match tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Closed(_)) => {
                self.shared.queue_full.fetch_add(1, Ordering::Relaxed);
                if !self.warned_full {
                    tracing::warn!("NATS queue full: lines dropped (counted as nats queue_full)");
                    self.warned_full = true;
                }
            }
        }
    }

    /// Queues one event line for `<prefix>.<host>.<event_type>`, if its type is one
    /// `event_types` names.
    pub fn send(&mut self, event_type: &str, line: String) {
        if !self.event_types.iter().any(|t| t == event_type) {
            return;
        }
        let subject = format!("{}{}", self.subject_prefix, subject_token(event_type));
        self.queue(subject, line.into_bytes());
    }

    /// Queues a device's latest profile for its key in the bucket.
    pub fn put_device(&mut self, mac: &str, profile: Vec<u8>) {
        let subject = format!("{}{}", self.kv_prefix, mac.replace(':', "-"));
        self.queue(subject, profile);
    }

    /// Queued-to-acknowledged times since start, microseconds.
    pub fn publish_latency(&self) -> hdrhistogram::Histogram<u64> {
        self.shared.latency.lock().expect("latency lock").clone()
    }

    /// The counters now.
    pub fn stats(&self) -> NatsStats {
        let s = &self.shared;
        let (publish_p50_ms, publish_p99_ms) = {
            let h = s.latency.lock().expect("latency lock");
            if h.is_empty() {
                (0.0, 0.0)
            } else {
                (
                    h.value_at_quantile(0.5) as f64 / 1e3,
                    h.value_at_quantile(0.99) as f64 / 1e3,
                )
            }
        };
        NatsStats {
            publish_p50_ms,
            publish_p99_ms,
            published: s.published.load(Ordering::Relaxed),
            spooled: s.spooled_lines.load(Ordering::Relaxed),
            spooled_bytes: s.spooled_bytes.load(Ordering::Relaxed),
            queue_full: s.queue_full.load(Ordering::Relaxed),
            spool_full: s.spool_full.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
            connected: s.connected.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // Closing the queue tells the publisher to finish once the spool is empty.
        self.tx = None;
        self.shared.wake.notify_one();
        let drained = self
            .done
            .take()
            .is_some_and(|d| d.recv_timeout(self.drain_timeout).is_ok());
        if !drained {
            self.shared.stop.store(true, Ordering::Relaxed);
            self.shared.stop_now.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let left = self.shared.spooled_lines.load(Ordering::Relaxed);
        if left > 0 {
            if self.persistent {
                tracing::warn!(
                    spooled = left,
                    "NATS broker did not take every line before exit; they wait in the spool for the next start"
                );
            } else {
                tracing::warn!(
                    lost = left,
                    "NATS broker did not take every line before exit, and without a state directory the spool is not kept: they are lost"
                );
            }
        }
    }
}
