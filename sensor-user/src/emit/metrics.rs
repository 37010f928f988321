//! The Prometheus endpoint (`[metrics] listen`): the same counters as the `stats` event,
//! as a snapshot the run loop refreshes at every poll and a scrape encodes in Prometheus's
//! text format (`prometheus-client`). Names follow Prometheus's conventions: a
//! `kettlewatch_` prefix, `_total` on counters, base units, and no per-device label (a
//! label per MAC would grow with the network and is what the event stream is for).

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};
use sensor_common::stats;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::emit::eve::{SensorCounters, Tables};

/// What a scrape reports: the kernel's counters, userspace's, and alerts per rule.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The XDP and TC programs' counters, summed over CPUs.
    pub kernel: Vec<u64>,
    /// Userspace counters.
    pub counters: SensorCounters,
    /// Table sizes and output counters.
    pub tables: Tables,
    /// Alerts written, per rule id: every rule, so each series exists from the start.
    pub alerts: Vec<(&'static str, u64)>,
    /// The fleet output's counters, when it is on.
    pub nats: Option<crate::emit::nats::NatsStats>,
    /// Each vulnerability feed's path and its age in days (by its own date), so a stale
    /// feed can be alerted on.
    pub vuln_feed_age_days: Vec<(String, i64)>,
}

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The address is taken or not ours.
    #[error("[metrics] listen = \"{addr}\": {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The handle the run loop refreshes.
#[derive(Clone, Debug)]
pub struct Metrics {
    shared: Arc<Mutex<Snapshot>>,
    /// Where it listens (the port the kernel chose when asked for 0).
    pub addr: SocketAddr,
}

impl Metrics {
    /// Binds `addr` and serves `/metrics` on the current tokio runtime until it ends.
    pub fn start(addr: SocketAddr, started_epoch_s: u64) -> Result<Self, MetricsError> {
        let bind = |source| MetricsError::Bind { addr, source };
        let std_listener = std::net::TcpListener::bind(addr).map_err(bind)?;
        std_listener.set_nonblocking(true).map_err(bind)?;
        let local = std_listener.local_addr().map_err(bind)?;
        let listener = tokio::net::TcpListener::from_std(std_listener).map_err(bind)?;
        let shared = Arc::new(Mutex::new(Snapshot::default()));
        let mut registry = Registry::with_prefix("kettlewatch");
        registry.register_collector(Box::new(SnapshotCollector {
            shared: shared.clone(),
            started_epoch_s,
        }));
        tokio::spawn(serve(listener, Arc::new(registry)));
        tracing::info!(listen = %local, "metrics endpoint at http://{local}/metrics");
        Ok(Self {
            shared,
            addr: local,
        })
    }

    /// Replaces what the next scrape reports.
    pub fn publish(&self, s: Snapshot) {
        if let Ok(mut g) = self.shared.lock() {
            *g = s;
        }
    }
}

/// Accepts scrapers one at a time per connection task; a slow or silent client is cut
/// off after `CLIENT_TIMEOUT` so it cannot hold a task forever.
async fn serve(listener: tokio::net::TcpListener, registry: Arc<Registry>) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CLIENT_TIMEOUT, answer(conn, &registry)).await;
        });
    }
}

const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// A request's head larger than this is refused: a scrape's is a few hundred bytes.
const MAX_HEAD: usize = 8192;

async fn answer(mut conn: tokio::net::TcpStream, registry: &Registry) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let path = loop {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                break (req.method == Some("GET")).then(|| req.path.unwrap_or("").to_string());
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => continue,
            _ => {
                return respond(&mut conn, "400 Bad Request", "text/plain", "bad request\n").await;
            }
        }
    };
    match path.as_deref().map(|p| p.split('?').next().unwrap_or(p)) {
        Some("/metrics") => {
            let mut body = String::new();
            if prometheus_client::encoding::prometheus_text::encode(&mut body, registry).is_err() {
                return respond(&mut conn, "500 Internal Server Error", "text/plain", "").await;
            }
            let ct = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
            respond(&mut conn, "200 OK", ct, &body).await
        }
        Some(_) => respond(&mut conn, "404 Not Found", "text/plain", "see /metrics\n").await,
        None => {
            respond(
                &mut conn,
                "405 Method Not Allowed",
                "text/plain",
                "GET only\n",
            )
            .await
        }
    }
}

async fn respond(
    conn: &mut tokio::net::TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    conn.shutdown().await
}

#[derive(Debug)]
struct SnapshotCollector {
    shared: Arc<Mutex<Snapshot>>,
    started_epoch_s: u64,
}

/// One counter family: each `(label value, value)` under `label`.
fn family(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    values: &[(&str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, ConstCounter::new(0u64).metric_type())?;
    for (l, v) in values {
        ConstCounter::new(*v).encode(m.encode_family(&[(label, *l)])?)?;
    }
    Ok(())
}

fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.shared.lock().map(|g| g.clone()).unwrap_or_default();
        let k = |i: u32| s.kernel.get(i as usize).copied().unwrap_or(0);
        let info = [("version", env!("CARGO_PKG_VERSION"))];
        {
            let g = ConstGauge::new(1i64);
            let mut m = e.encode_descriptor(
                "build_info",
                "The running sensor's version (always 1).",
                None,
                g.metric_type(),
            )?;
            g.encode(m.encode_family(&info)?)?;
        }
        gauge(
            &mut e,
            "start_time_seconds",
            "When the sensor started, seconds since the Unix epoch.",
            self.started_epoch_s as i64,
        )?;
        counter(
            &mut e,
            "frames",
            "Frames the XDP program saw.",
            k(stats::FRAMES),
        )?;
        counter(
            &mut e,
            "frame_bytes",
            "Bytes of those frames, Ethernet header included.",
            k(stats::BYTES),
        )?;
        family(
            &mut e,
            "malformed_frames",
            "Frames that did not parse, by where parsing stopped; each was passed.",
            "reason",
            &[
                ("truncated_l2", k(stats::ERR_TRUNCATED_L2)),
                ("truncated_l3", k(stats::ERR_TRUNCATED_L3)),
                ("bad_ihl", k(stats::ERR_BAD_IHL)),
                ("truncated_l4", k(stats::ERR_TRUNCATED_L4)),
                ("unsupported", k(stats::ERR_UNSUPPORTED)),
            ],
        )?;
        family(
            &mut e,
            "blocked_frames",
            "Frames dropped in the kernel, by what decided it (enforce mode, intel block).",
            "by",
            &[
                ("policy", k(stats::DROPPED_POLICY)),
                ("intel", k(stats::DROPPED_INTEL)),
            ],
        )?;
        family(
            &mut e,
            "drops",
            "What the sensor lost and counted, by where: kernel events, map inserts, flow-cache hand-overs, rate-limited discovery frames, devices beyond the table, output lines.",
            "reason",
            &[
                ("ringbuf_full", k(stats::RINGBUF_FULL)),
                ("flow_insert_failed", k(stats::FLOW_INSERT_FAILED)),
                ("device_insert_failed", k(stats::DEVICE_INSERT_FAILED)),
                ("cache_flush_lost", k(stats::CACHE_FLUSH_LOST)),
                ("discovery_rate_limited", k(stats::DISCOVERY_RATE_LIMITED)),
                ("payload_skipped", k(stats::PAYLOAD_SKIPPED)),
                ("devices_not_tracked", s.tables.devices_not_tracked),
                ("events_malformed", s.counters.events_malformed),
                ("output_queue_full", s.tables.output_dropped),
                ("output_write_error", s.tables.output_errors),
                ("nats_queue_full", s.nats.map_or(0, |n| n.queue_full)),
                ("nats_spool_full", s.nats.map_or(0, |n| n.spool_full)),
            ],
        )?;
        if !s.vuln_feed_age_days.is_empty() {
            let mut m = e.encode_descriptor(
                "vuln_feed_age_days",
                "Days since each vulnerability feed's own date (NVD timestamp, KEV dateReleased).",
                None,
                ConstGauge::new(0i64).metric_type(),
            )?;
            for (path, age) in &s.vuln_feed_age_days {
                ConstGauge::new(*age).encode(m.encode_family(&[("feed", path.as_str())])?)?;
            }
        }
        if let Some(n) = s.nats {
            counter(
                &mut e,
                "nats_published_lines",
                "Lines NATS JetStream acknowledged.",
                n.published,
            )?;
            gauge(
                &mut e,
                "nats_spooled_lines",
                "Lines waiting in the spool for the broker.",
                n.spooled as i64,
            )?;
            gauge(
                &mut e,
                "nats_connected",
                "1 while connected to a NATS server.",
                i64::from(n.connected),
            )?;
            // A summary's quantiles as gauges: since start, not over a sliding window.
            let mut m = e.encode_descriptor(
                "nats_publish_seconds",
                "Time from queuing a line to JetStream acknowledging it, quantiles since start.",
                None,
                ConstGauge::new(0f64).metric_type(),
            )?;
            for (q, ms) in [("0.5", n.publish_p50_ms), ("0.99", n.publish_p99_ms)] {
                ConstGauge::new(ms / 1e3).encode(m.encode_family(&[("quantile", q)])?)?;
            }
        }
        counter(
            &mut e,
            "flows_created",
            "Flows the kernel created.",
            k(stats::NEW_FLOWS),
        )?;
        gauge(
            &mut e,
            "flows_active",
            "Flows in the userspace flow table.",
            s.tables.flows_tracked as i64,
        )?;
        gauge(
            &mut e,
            "devices",
            "Devices in the device table.",
            s.tables.devices_tracked as i64,
        )?;
        family(
            &mut e,
            "alerts",
            "Alerts written, by rule id.",
            "rule",
            &s.alerts,
        )?;
        counter(
            &mut e,
            "alerts_muted",
            "Alerts an operator's mute covered (marked in the stream or kept only in the history).",
            s.counters.alerts_muted,
        )?;
        counter(
            &mut e,
            "flow_sweeps",
            "Whole reads of the flow map; other polls read only the flows that changed.",
            s.counters.flow_sweeps,
        )?;
        counter(
            &mut e,
            "flow_log_overflows",
            "Polls that read the whole flow map because the kernel's change log overflowed.",
            s.counters.flow_log_overflows,
        )?;
        counter(
            &mut e,
            "output_lines",
            "Lines written to the output.",
            s.tables.output_lines,
        )?;
        family(
            &mut e,
            "errors",
            "Kernel map reads and state-store writes that failed.",
            "kind",
            &[
                ("poll", s.counters.poll_errors),
                ("state", s.counters.state_errors),
            ],
        )?;
        Ok(())
    }
}
