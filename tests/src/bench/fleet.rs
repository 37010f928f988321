//! A fleet at scale, through the sensor's own publisher (`emit::nats::Fleet`, one per
//! simulated gateway, as each gateway runs one) into a three-node JetStream cluster with
//! three replicas. The inventory: gateways put their devices into the key-value bucket,
//! then `kettlewatch devices --nats` lists them (beside it, the bucket read a `get` per
//! key, as the listing used to). The ramp: gateways sending the home router's event mix,
//! more at each step until the spools grow, then twice the load and none, to see the
//! spools absorb it and drain with nothing lost.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use futures_util::StreamExt;
use sensor_user::{
    config::Config, discover::profile::Profile, emit::nats::Fleet, model::vocab::Evidence,
    store::state::StoredDevice,
};

use crate::nats::Nats;

/// What one run measured.
#[derive(Debug, serde::Serialize)]
pub struct KvFigures {
    /// Gateways, each with its own publisher and connection.
    pub gateways: usize,
    /// Devices in the bucket (gateways times devices each).
    pub kv_devices: usize,
    /// Seconds from the first put to the last acknowledgement.
    pub put_s: f64,
    /// Mean size of one device's value, bytes.
    pub value_bytes: usize,
    /// `kettlewatch devices --nats`, seconds, per round.
    pub devices_nats_s: Vec<f64>,
    /// Devices it listed.
    pub listed: usize,
    /// The same bucket read a `get` per key (the listing before 2026-12-07), seconds.
    pub get_per_key_s: f64,
}

/// A device as a gateway stores it: the fields a camera found by its DHCP and DNS has.
fn device(gateway: usize, n: usize) -> StoredDevice {
    let mac = format!(
        "02:{:02x}:{:02x}:{:02x}:{:02x}:01",
        gateway >> 8,
        gateway & 0xff,
        n >> 8,
        n & 0xff
    );
    let mut profile = Profile {
        hostname: Some(format!("cam-{n:04}")),
        ..Profile::default()
    };
    profile
        .dns
        .insert("business.smartcamera.api.io.mi.com".into());
    profile.dns.insert(format!("ota-{}.example.com", n % 7));
    StoredDevice {
        mac,
        first_seen_ns: 1_796_000_000_000_000_000,
        last_seen_ns: 1_796_000_600_000_000_000,
        vendor: Some("Shanghai Imilab Technology Co.Ltd".into()),
        name: None,
        inventory_status: "unknown".into(),
        category: "camera".into(),
        category_source: "observed".into(),
        confidence: 0.7,
        criticality: "high".into(),
        why: "category camera".into(),
        addresses: vec![format!("192.168.{}.{}", n / 250, n % 250 + 2)],
        profile,
        evidence: vec![Evidence {
            fact: "dns".into(),
            value: "business.smartcamera.api.io.mi.com".into(),
            pattern: "*smartcamera*".into(),
            category: "camera".into(),
            weight: 2.0,
            discounted: false,
        }],
        new_device_reported: true,
        product: None,
        identity: None,
        vulnerabilities: Vec::new(),
        gateway: None,
        policies: vec!["learned".into()],
        declared_rules: Vec::new(),
    }
}

/// `gateways` publishers put `per_gateway` devices each; then `rounds` listings.
pub fn kv_inventory(
    bin: &Path,
    gateways: usize,
    per_gateway: usize,
    rounds: usize,
) -> Result<KvFigures> {
    let mut nats = Nats::new("kwbf", 3);
    nats.start_all();
    nats.wait_ready(Duration::from_secs(30));
    let urls = nats.urls();
    let quoted: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    let text = format!(
        "[output.nats]\nurl = [{}]\nreplicas = 3\n",
        quoted.join(", ")
    );
    let nats_config = |text: &str| -> Result<_> {
        Config::parse(text, "bench.toml")?
            .output
            .nats
            .context("[output.nats]")
    };
    let total = gateways * per_gateway;
    let mut value_bytes = 0;
    let start = Instant::now();
    let mut fleets = Vec::new();
    for g in 0..gateways {
        let c = nats_config(&text)?;
        // The publisher's thread is made inside the cluster's namespace, so its
        // connection is too.
        let fleet = nats
            .ns
            .run(move || Fleet::start(&c, None, &format!("gw{g:04}"), None, 4096))?
            .wait_when_full();
        fleets.push(fleet);
    }
    for (g, f) in fleets.iter_mut().enumerate() {
        for n in 0..per_gateway {
            let d = device(g, n);
            let row = serde_json::to_vec(&d)?;
            value_bytes += row.len();
            f.put_device(&d.mac, row);
        }
    }
    let end = Instant::now() + Duration::from_secs(600);
    loop {
        let published: u64 = fleets.iter().map(|f| f.stats().published).sum();
        if published as usize >= total {
            break;
        }
        if Instant::now() > end {
            bail!("{published} of {total} devices acknowledged in 600 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let put_s = start.elapsed().as_secs_f64();
    drop(fleets);
    let mut devices_nats_s = Vec::new();
    let mut listed = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        let out = nats
            .ns
            .cmd(bin.to_str().context("binary path")?)
            .args(["devices", "--nats", &urls[0], "--json"])
            .output()
            .context("kettlewatch devices --nats")?;
        devices_nats_s.push(t.elapsed().as_secs_f64());
        if !out.status.success() {
            bail!("devices --nats: {}", String::from_utf8_lossy(&out.stderr));
        }
        listed = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with('{'))
            .count();
    }
    let get_per_key_s = nats.with_client(|js| {
        Box::pin(async move {
            let t = Instant::now();
            let kv = js
                .get_key_value("kettlewatch-devices")
                .await
                .expect("the bucket");
            let mut keys = kv.keys().await.expect("keys");
            let mut n = 0usize;
            while let Some(k) = keys.next().await {
                let k = k.expect("key");
                if kv.get(k).await.expect("get").is_some() {
                    n += 1;
                }
            }
            assert!(n > 0, "no key read");
            t.elapsed().as_secs_f64()
        })
    });
    Ok(KvFigures {
        gateways,
        kv_devices: total,
        put_s,
        value_bytes: value_bytes / total.max(1),
        devices_nats_s,
        listed,
        get_per_key_s,
    })
}

/// One event type of a gateway's output: how often and how big.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MixPart {
    /// Its `event_type`.
    pub event_type: String,
    /// Lines a second from one gateway.
    pub per_s: f64,
    /// Mean line size, bytes.
    pub bytes: usize,
}

/// What one gateway sends: the home router's output by event type, each `device` line
/// also a put of the device's record into the bucket, as the sensor does.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Mix {
    /// Where it was measured.
    pub from: String,
    /// By event type.
    pub parts: Vec<MixPart>,
}

/// "The occasional alert": one an hour per gateway. Benign homes measured 0.7 alerts a
/// device-week (docs/detection.md), 0.08 an hour for 20 devices; the home run has none.
const ALERTS_PER_S: f64 = 1.0 / 3600.0;
/// An alert line with its device and flow context is about this long.
const ALERT_BYTES: usize = 1_400;

impl Mix {
    /// From a home-router run's JSON (`bench --home-minutes N`): its `events` over its
    /// `minutes`, plus an alert an hour when the run had none.
    pub fn from_home(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "{}: run `cargo xtask bench -- --home-minutes 5` first",
                path.display()
            )
        })?;
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| path.display().to_string())?;
        let minutes = v["minutes"].as_f64().context("home run: minutes")?;
        let events = v["events"].as_object().with_context(|| {
            format!(
                "{}: no `events` (a run from before 2026-12-07)",
                path.display()
            )
        })?;
        let mut parts: Vec<MixPart> = events
            .iter()
            .filter_map(|(t, e)| {
                let count = e["count"].as_f64()?;
                let bytes = e["bytes"].as_f64()?;
                (count > 0.0).then(|| MixPart {
                    event_type: t.clone(),
                    per_s: count / (minutes * 60.0),
                    bytes: (bytes / count) as usize,
                })
            })
            .collect();
        if !parts.iter().any(|p| p.event_type == "alert") {
            parts.push(MixPart {
                event_type: "alert".into(),
                per_s: ALERTS_PER_S,
                bytes: ALERT_BYTES,
            });
        }
        let shown = path.strip_prefix(crate::env::workspace()).unwrap_or(path);
        Ok(Self {
            from: format!("{} ({minutes} minutes)", shown.display()),
            parts,
        })
    }

    /// Lines a second from one gateway, bucket puts included.
    pub fn per_s(&self) -> f64 {
        self.parts
            .iter()
            .map(|p| p.per_s * if p.event_type == "device" { 2.0 } else { 1.0 })
            .sum()
    }
}

/// A simulated gateway: the sensor's own publisher with its own spool on disk, fed the
/// mix's lines at the mix's rates.
struct Gateway {
    fleet: Fleet,
    host: String,
    /// Lines due but not yet sent, per mix part (fractions carry over).
    due: Vec<f64>,
    /// Lines handed to the publisher (bucket puts included).
    sent: u64,
    /// Event lines handed over (what the event stream should hold).
    events: u64,
    /// Which of the [`SLOTS`] ticks of each poll interval it sends on.
    slot: u64,
    /// When it last sent.
    last: Instant,
}

impl Gateway {
    fn line(&self, part: &MixPart, n: u64) -> String {
        let head = format!(
            "{{\"timestamp\":\"2026-12-07T22:00:00.000000+0000\",\"event_type\":\"{}\",\"host\":\"{}\",\"n\":{n},\"pad\":\"",
            part.event_type, self.host
        );
        let pad = part.bytes.saturating_sub(head.len() + 2);
        format!("{head}{}\"}}", "x".repeat(pad))
    }

    /// Sends what is due after `dt` at `factor` times the mix's rates.
    fn drive(&mut self, mix: &Mix, dt: f64, factor: f64) {
        for (i, part) in mix.parts.iter().enumerate() {
            self.due[i] += part.per_s * dt * factor;
            while self.due[i] >= 1.0 {
                self.due[i] -= 1.0;
                let line = self.line(part, self.sent);
                if part.event_type == "device" {
                    let mac = format!("02:00:00:00:00:{:02x}", self.sent % 20);
                    self.fleet.put_device(&mac, line.clone().into_bytes());
                    self.sent += 1;
                }
                self.fleet.send(&part.event_type, line);
                self.sent += 1;
                self.events += 1;
            }
        }
    }
}

/// One step of the ramp (or the overload), as measured over its hold.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Step {
    /// Gateways publishing.
    pub gateways: usize,
    /// Times the mix's rate each sends.
    pub load: f64,
    /// Seconds held.
    pub hold_s: f64,
    /// Lines offered a second, all gateways (bucket puts included).
    pub offered_per_s: f64,
    /// Lines JetStream acknowledged a second.
    pub acked_per_s: f64,
    /// Lines waiting in all spools a third into the hold and at its end.
    pub spooled_third: u64,
    pub spooled_end: u64,
    /// Lines dropped (queue or spool full) during the hold.
    pub dropped: u64,
    /// Publish failures during the hold (acknowledgements timed out; each retried).
    pub errors: u64,
    /// Queued-to-acknowledged, ms, of the lines acknowledged during the hold.
    pub p50_publish_ms: f64,
    pub p99_publish_ms: f64,
    pub max_publish_ms: f64,
    /// CPU over the hold, as a share of one CPU (%): the three servers together, and
    /// this process (the gateways' publishers and spools, and the generator).
    pub servers_cpu_pct: f64,
    pub gateways_cpu_pct: f64,
    /// No drops, the spools not growing (a second's lines at most beyond where they were
    /// a third in), p99 under a second.
    pub sustained: bool,
}

/// What the ramp found.
#[derive(Debug, serde::Serialize)]
pub struct RampFigures {
    /// The mix each gateway sends.
    pub mix: Mix,
    /// Each step in order.
    pub steps: Vec<Step>,
    /// The most gateways sustained, and the lines a second that is.
    pub gateways: usize,
    pub events_per_s: f64,
    /// p50 and p99 at that step, ms.
    pub p50_publish_ms: f64,
    pub p99_publish_ms: f64,
    /// The overload: twice the sustained load on the same gateways.
    pub overload: Option<Step>,
    /// Seconds from the load dropping to every spool empty.
    pub drain_s: Option<f64>,
    /// Lines handed to the publishers, and acknowledged, over the whole run.
    pub lines_sent: u64,
    pub lines_acked: u64,
    /// Event lines handed over, and messages in the event stream.
    pub events_sent: u64,
    pub stream_messages: u64,
    /// Lines handed over but never acknowledged, and event lines stored more than once
    /// (messages beyond the lines sent): both 0 when nothing was lost or doubled.
    pub lost: u64,
    pub stored_twice: u64,
    /// Bytes the event stream stores per message (one copy).
    pub stream_bytes_per_message: f64,
    /// A gateway-day of the mix in the event stream: one copy, and on the three
    /// servers' disks together (every replica, the bucket's stream included), MB.
    pub stream_mb_per_gateway_day: f64,
    pub cluster_disk_mb_per_gateway_day: f64,
}

/// CPU time of a process so far, seconds.
fn cpu_s(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|t| t.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|t| t.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

struct Run<'a> {
    nats: &'a Nats,
    mix: &'a Mix,
    gateways: Vec<Gateway>,
    /// The first this many are driven; the rest stay connected, idle.
    active: usize,
    text: String,
    spools: crate::env::TempDir,
}

/// The sensor writes its lines once a poll (`poll_interval`, 1 s by default), so a
/// gateway's lines reach its publisher as one burst a second. The gateways' bursts are
/// spread over [`SLOTS`] ticks of that second.
const TICK: Duration = Duration::from_millis(100);
const SLOTS: u64 = 10;

impl Run<'_> {
    fn add_gateways(&mut self, n: usize) -> Result<()> {
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        while self.gateways.len() < n {
            let g = self.gateways.len();
            let c = Config::parse(&self.text, "bench.toml")?
                .output
                .nats
                .context("[output.nats]")?;
            let host = format!("gw{g:05}");
            let dir = self.spools.join(&host);
            let h = host.clone();
            // Made inside the cluster's namespace, so the publisher's connection is too.
            let fleet = self
                .nats
                .ns
                .run(move || Fleet::start(&c, None, &h, Some(&dir), 65_536))?;
            // Gateways start at different points of their cycle, as real ones do.
            let mut next = || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let slot = next() % SLOTS;
            let due = self
                .mix
                .parts
                .iter()
                .map(|_| (next() % 1000) as f64 / 1000.0)
                .collect();
            self.gateways.push(Gateway {
                fleet,
                host,
                due,
                sent: 0,
                events: 0,
                slot,
                last: Instant::now(),
            });
        }
        Ok(())
    }

    /// Lines sent, acknowledged, waiting, dropped; publish failures (each retried).
    fn totals(&self) -> (u64, u64, u64, u64, u64) {
        let mut t = (0, 0, 0, 0, 0);
        for g in &self.gateways {
            let s = g.fleet.stats();
            t.0 += g.sent;
            t.1 += s.published;
            t.2 += s.spooled;
            t.3 += s.queue_full + s.spool_full;
            t.4 += s.errors;
        }
        t
    }

    fn latency(&self) -> hdrhistogram::Histogram<u64> {
        let mut all = sensor_user::emit::nats::latency_histogram();
        for g in &self.gateways {
            all.add(g.fleet.publish_latency()).expect("same bounds");
        }
        all
    }

    /// Drives the active gateways at `load` for `secs`: each tick, the gateways of that
    /// tick's slot send what came due since they last sent.
    fn drive(&mut self, load: f64, secs: f64, mut at_third: impl FnMut(&Self)) {
        let start = Instant::now();
        let mut last = start;
        let mut third_done = false;
        let mut tick = 0u64;
        while start.elapsed().as_secs_f64() < secs {
            std::thread::sleep(TICK.saturating_sub(last.elapsed()));
            last = Instant::now();
            tick += 1;
            let mix = self.mix;
            for g in self.gateways[..self.active]
                .iter_mut()
                .filter(|g| g.slot == tick % SLOTS)
            {
                // A gateway idle meanwhile (made, or past the ramp) starts with one poll.
                let dt = g.last.elapsed().as_secs_f64().min(1.0);
                g.last = last;
                g.drive(mix, dt, load);
            }
            if !third_done && start.elapsed().as_secs_f64() >= secs / 3.0 {
                at_third(self);
                third_done = true;
            }
        }
    }

    fn step(&mut self, load: f64, hold_s: f64) -> Step {
        let pids = self.nats.pids();
        let me = std::process::id();
        let cpu0: f64 = pids.iter().map(|p| cpu_s(*p)).sum();
        let own0 = cpu_s(me);
        let before = self.totals();
        let lat0 = self.latency();
        let t0 = Instant::now();
        let mut third = 0;
        self.drive(load, hold_s, |r| third = r.totals().2);
        let secs = t0.elapsed().as_secs_f64();
        let after = self.totals();
        let mut lat = self.latency();
        lat.subtract(&lat0)
            .expect("later histogram holds the earlier");
        let q = |x: f64| {
            if lat.is_empty() {
                0.0
            } else {
                lat.value_at_quantile(x) as f64 / 1e3
            }
        };
        let offered_per_s = (after.0 - before.0) as f64 / secs;
        let dropped = after.3 - before.3;
        let p99 = q(0.99);
        Step {
            gateways: self.active,
            load,
            hold_s: secs,
            offered_per_s,
            acked_per_s: (after.1 - before.1) as f64 / secs,
            spooled_third: third,
            spooled_end: after.2,
            dropped,
            errors: after.4 - before.4,
            p50_publish_ms: q(0.5),
            p99_publish_ms: p99,
            max_publish_ms: lat.max() as f64 / 1e3,
            servers_cpu_pct: (pids.iter().map(|p| cpu_s(*p)).sum::<f64>() - cpu0) / secs * 100.0,
            gateways_cpu_pct: (cpu_s(me) - own0) / secs * 100.0,
            sustained: dropped == 0
                && after.2 as f64 <= third as f64 + offered_per_s
                && p99 < 1000.0,
        }
    }
}

/// Ramps the gateways through `levels` at the mix's rate, holding each `hold_s` after
/// `warm_s`, until one is not sustained; then twice the load on the most sustained for
/// `hold_s`, then none until the spools are empty; then counts what reached the stream.
pub fn ramp(mix: Mix, levels: &[usize], warm_s: f64, hold_s: f64) -> Result<RampFigures> {
    let mut nats = Nats::new("kwbr", 3);
    nats.start_all();
    nats.wait_ready(Duration::from_secs(30));
    let quoted: Vec<String> = nats.urls().iter().map(|u| format!("\"{u}\"")).collect();
    let text = format!(
        "[output.nats]\nurl = [{}]\nreplicas = 3\ndrain_timeout = \"60s\"\n",
        quoted.join(", ")
    );
    let mut run = Run {
        nats: &nats,
        mix: &mix,
        gateways: Vec::new(),
        active: 0,
        text,
        spools: crate::env::TempDir::new(),
    };
    let mut steps = Vec::new();
    let mut best: Option<Step> = None;
    for &n in levels {
        run.add_gateways(n)?;
        run.active = n;
        run.drive(1.0, warm_s, |_| {});
        let s = run.step(1.0, hold_s);
        eprintln!(
            "fleet ramp: {} gateways, {:.0} lines/s offered, {:.0} acknowledged, spooled {} -> {}, p50 {:.1} ms, p99 {:.1} ms, servers {:.0}% CPU, gateways {:.0}%, publish failures {}{}",
            s.gateways,
            s.offered_per_s,
            s.acked_per_s,
            s.spooled_third,
            s.spooled_end,
            s.p50_publish_ms,
            s.p99_publish_ms,
            s.servers_cpu_pct,
            s.gateways_cpu_pct,
            s.errors,
            if s.sustained { "" } else { ": not sustained" }
        );
        steps.push(s.clone());
        if !s.sustained {
            break;
        }
        best = Some(s);
    }
    let best = best.context("not even the first step was sustained")?;
    // The overload runs on the sustained step's gateways; those added past it idle.
    run.active = best.gateways;
    let overload = run.step(2.0, hold_s);
    eprintln!(
        "fleet overload: {} gateways at twice the mix, {:.0} lines/s offered, {:.0} acknowledged, spooled {} -> {}, dropped {}, publish failures {}",
        overload.gateways,
        overload.offered_per_s,
        overload.acked_per_s,
        overload.spooled_third,
        overload.spooled_end,
        overload.dropped,
        overload.errors
    );
    let t = Instant::now();
    let mut drain_s = None;
    while t.elapsed() < Duration::from_secs(600) {
        if run.totals().2 == 0 {
            drain_s = Some(t.elapsed().as_secs_f64());
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let gateways = std::mem::take(&mut run.gateways);
    let (mut lines_sent, mut events_sent) = (0, 0);
    for g in &gateways {
        lines_sent += g.sent;
        events_sent += g.events;
    }
    let mut lines_acked = 0;
    for g in gateways {
        lines_acked += g.fleet.stats().published;
        drop(g);
    }
    let (stream_messages, stream_bytes) = nats.with_client(|js| {
        Box::pin(async move {
            let mut s = js
                .get_stream("KETTLEWATCH")
                .await
                .expect("the event stream");
            let i = s.info().await.expect("stream info");
            (i.state.messages, i.state.bytes)
        })
    });
    let disk = nats.store_bytes();
    let per_message = stream_bytes as f64 / stream_messages.max(1) as f64;
    let day_lines = mix.per_s() * 86_400.0;
    let day_events: f64 = mix.parts.iter().map(|p| p.per_s).sum::<f64>() * 86_400.0;
    Ok(RampFigures {
        gateways: best.gateways,
        events_per_s: best.offered_per_s,
        p50_publish_ms: best.p50_publish_ms,
        p99_publish_ms: best.p99_publish_ms,
        mix,
        steps,
        overload: Some(overload),
        drain_s,
        lines_sent,
        lines_acked,
        events_sent,
        stream_messages,
        lost: lines_sent.saturating_sub(lines_acked),
        stored_twice: stream_messages.saturating_sub(events_sent),
        stream_bytes_per_message: per_message,
        stream_mb_per_gateway_day: per_message * day_events / 1e6,
        cluster_disk_mb_per_gateway_day: disk as f64 / lines_sent.max(1) as f64 * day_lines / 1e6,
    })
}
