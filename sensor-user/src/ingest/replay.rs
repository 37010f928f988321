//! Replay: the same eBPF program, run by the kernel over capture frames with
//! BPF_PROG_TEST_RUN, time taken from the capture, feeding the same engine as `run`.

use sensor_common::MacAddr;

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    path::PathBuf,
};

use anyhow::Context as _;
use aya::programs::{TestRun as _, TestRunOptions};
use serde_json::json;

use crate::{
    config::Config,
    emit::eve::Eve,
    emit::sinks::{Sinks, TextSink},
    engine::{build, sensor::Sensor, writes::KernelWrites},
    ingest::pcap::{Capture, CaptureError, Frame},
    judge::policy,
    kernel::loader::{self, MapSizes},
    kernel::maps::{KernelMaps, intel::IntelMaps, policy::PolicyMaps},
    model::clock::TimeBase,
    store::state::Store,
};

/// BPF_PROG_TEST_RUN takes at least an Ethernet header ...
const MIN_FRAME: usize = 14;
/// ... and, for a multi-buffer program, a linear page plus MAX_SKB_FRAGS (17) pages.
const MAX_FRAME: usize = (4096 - 256 - 320) + 17 * 4096;

/// What `replay` was asked to do.
pub struct ReplayArgs {
    /// Capture files, in order.
    pub captures: Vec<PathBuf>,
    /// The configuration.
    pub config: Config,
    /// Output path (`-` for stdout).
    pub output: String,
    /// JSON, or the terminal view (resolved: not `auto`).
    pub format: crate::emit::text::Format,
    /// The gateway's MAC, when known; otherwise inferred.
    pub gateway_mac: Option<MacAddr>,
    /// Keep the inventory here (none: nothing persists).
    pub state_dir: Option<PathBuf>,
}

/// Replay counters, reported in the `replay` section of `stats` events.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReplayCounters {
    /// Frames read from captures.
    pub frames: u64,
    /// Frames run through the XDP program.
    pub frames_run: u64,
    /// Frames the gateway sent (not LAN ingress, so not run through XDP).
    pub gateway_frames: u64,
    /// Frames shorter than an Ethernet header (counted, not run).
    pub too_short: u64,
    /// Frames longer than BPF_PROG_TEST_RUN takes (their first part is run).
    pub truncated: u64,
    /// Frames the kernel refused to run.
    pub run_errors: u64,
}

/// Replays captures; returns the capture errors met (the stream covers what was read).
pub fn replay(args: ReplayArgs) -> anyhow::Result<Vec<CaptureError>> {
    // Open every file first, so a bad path or link type fails before any output.
    for path in &args.captures {
        Capture::open(path)?;
    }
    let gateway = match args.gateway_mac {
        Some(m) => Some(m),
        None => infer_gateway(&args.captures),
    };
    if let Some(g) = gateway {
        tracing::info!(
            gateway = %g,
            "the gateway's frames are not LAN ingress"
        );
    }
    let mut builder = Some(build::Builder::new(&args.config)?);
    let sizes = MapSizes::from(&args.config.sensor);
    let mut ebpf = loader::load(
        sizes,
        loader::Mode::REPLAY.payloads(args.config.sensor.payload_sampling),
    )?;
    let (mut maps, mut ring) = KernelMaps::take(&mut ebpf)?;
    // Offline: wait for a slow reader rather than drop a line.
    let (events, view) =
        crate::emit::text::open_outputs(&args.output, args.format, args.config.output.queue_lines)
            .with_context(|| format!("opening {}", args.output))?;
    let mut sinks = Sinks::new(events.wait_when_full());
    if let Some(v) = view {
        sinks.add(Box::new(TextSink::new(v.wait_when_full())));
    }
    // The fleet output's spool is the state directory's when there is one: what the
    // broker did not take goes out at the next start.
    if let Some(n) = &args.config.output.nats {
        sinks.add(Box::new(
            crate::emit::nats::Fleet::start(
                n,
                args.config.base_dir.as_deref(),
                &args.config.sensor.name,
                args.state_dir.as_deref(),
                args.config.output.queue_lines,
            )?
            .wait_when_full(),
        ));
    }
    let eve = Eve {
        host: args.config.sensor.name.clone(),
        in_iface: "replay".into(),
        flow_id_seed: 0,
        time: TimeBase::identity(),
    };
    let poll_ns = args.config.sensor.poll_interval.get_ref().as_nanos() as u64;
    // Forensics is stateless unless asked: the same capture gives the same stream.
    let store = match &args.state_dir {
        Some(d) => Some(Store::open(d)?),
        None => None,
    };
    // Policy over the private ranges as the local network: there is no interface to ask.
    let mut parts = Some(build::Parts {
        eve,
        sinks,
        store,
        kernel: Some(KernelWrites::new(
            PolicyMaps::take(&mut ebpf, maps.generations.clone())?,
            IntelMaps::take(&mut ebpf)?,
        )),
        local: policy::private_ranges(),
    });
    let mut sensor: Option<Sensor> = None;
    let mut counters = ReplayCounters::default();
    let mut errors = Vec::new();
    let mut now = 0u64;
    let mut next_poll = 0u64;
    let prog: &aya::programs::Xdp = ebpf
        .program(sensor_common::maps::XDP_PROGRAM)
        .context("no XDP program")?
        .try_into()?;
    let egress: &aya::programs::SchedClassifier = ebpf
        .program(sensor_common::maps::EGRESS_PROGRAM)
        .context("no egress program")?
        .try_into()?;

    let mut progress = Progress::new(&args.captures);
    'captures: for path in &args.captures {
        let mut cap = Capture::open(path)?;
        while let Some(frame) = cap.next_frame() {
            if counters.frames % 1024 == 0 {
                progress.show(&cap, counters.frames);
            }
            let frame: Frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(error = %e, "capture unreadable; reporting what was read before it");
                    errors.push(e);
                    break;
                }
            };
            counters.frames += 1;
            // Time never runs backwards in the stream, even if a capture's does.
            now = now.max(frame.ts_ns);
            // Built at the first frame: feeds are judged at the capture's time.
            if sensor.is_none() {
                next_poll = now + poll_ns;
                let p = parts.take().expect("built once");
                let b = builder.take().expect("built once");
                sensor = Some(b.build(p, now)?);
            }
            let s = sensor.as_mut().expect("built above");
            // `replay CAPTURE | head`: the reader has what it wanted.
            if s.output_closed() {
                break 'captures;
            }
            if s.stats_due(now) || now >= next_poll {
                s.poll(&maps, now);
                next_poll = now + poll_ns;
                if s.stats_due(now) {
                    let k = maps
                        .stats
                        .read()
                        .unwrap_or([0; sensor_common::stats::COUNT as usize]);
                    s.write_stats(now, &k, Some(("replay", counters_json(&counters))));
                }
            }
            if gateway.is_some_and(|g| frame.data.get(6..12) == Some(&g.0[..])) {
                // LAN egress: what the gateway tells devices (DNS answers).
                counters.gateway_frames += 1;
                if frame.data.len() >= MIN_FRAME && frame.data.len() <= MAX_FRAME {
                    if let Err(e) = maps.stats.set_clock(now) {
                        anyhow::bail!("setting the replay clock: {e}");
                    }
                    let opts = TestRunOptions {
                        data_in: Some(&frame.data),
                        repeat: 1,
                        ..TestRunOptions::default()
                    };
                    if let Err(e) = egress.test_run(opts) {
                        if counters.run_errors == 0 {
                            tracing::warn!(error = %e, "BPF_PROG_TEST_RUN refused a gateway frame (counted as run_errors)");
                        }
                        counters.run_errors += 1;
                    }
                    while let Some(item) = ring.next() {
                        s.on_record(&item);
                    }
                }
                continue;
            }
            if frame.data.len() < MIN_FRAME {
                counters.too_short += 1;
                continue;
            }
            let data = if frame.data.len() > MAX_FRAME {
                counters.truncated += 1;
                &frame.data[..MAX_FRAME]
            } else {
                &frame.data[..]
            };
            if let Err(e) = maps.stats.set_clock(now) {
                anyhow::bail!("setting the replay clock: {e}");
            }
            let opts = TestRunOptions {
                data_in: Some(data),
                repeat: 1,
                ..TestRunOptions::default()
            };
            match prog.test_run(opts) {
                Ok(_) => counters.frames_run += 1,
                Err(e) => {
                    if counters.run_errors == 0 {
                        tracing::warn!(error = %e, "BPF_PROG_TEST_RUN refused a frame (counted as run_errors)");
                    }
                    counters.run_errors += 1;
                }
            }
            while let Some(item) = ring.next() {
                s.on_record(&item);
            }
            s.end_batch(now);
        }
        progress.file_done(&cap);
    }
    drop(progress);
    let mut s = match sensor {
        Some(s) => s,
        None => builder
            .take()
            .expect("unused")
            .build(parts.take().expect("unused"), now)?,
    };
    s.poll(&maps, now);
    let k = maps.stats.read()?;
    s.finish(now, &k, Some(("replay", counters_json(&counters))));
    Ok(errors)
}

/// Progress over all the captures on a terminal (stderr; hidden otherwise), never in the
/// event stream: bytes of the files read, frames, rate and time left.
struct Progress {
    bar: indicatif::ProgressBar,
    /// Bytes of the files before the current one.
    done: u64,
}

impl Progress {
    fn new(captures: &[PathBuf]) -> Self {
        use std::io::IsTerminal as _;
        let total: u64 = captures
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        let bar = if std::io::stderr().is_terminal() {
            indicatif::ProgressBar::new(total)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ~{eta} left, {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Self { bar, done: 0 }
    }

    fn show(&self, cap: &Capture, frames: u64) {
        self.bar.set_position(self.done + cap.bytes_read());
        self.bar.set_message(format!("{frames} frames"));
    }

    fn file_done(&mut self, cap: &Capture) {
        self.done += cap.bytes_read();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

fn counters_json(c: &ReplayCounters) -> serde_json::Value {
    json!({
        "frames": c.frames,
        "frames_run": c.frames_run,
        "gateway_frames": c.gateway_frames,
        "too_short": c.too_short,
        "truncated": c.truncated,
        "run_errors": c.run_errors,
    })
}

/// The gateway is the MAC every off-LAN conversation goes through: frames from the
/// internet carry it as their source, frames to the internet as their destination. The MAC
/// with the most distinct off-LAN addresses in those two roles wins; a tie names none
/// (two routers talking, a DHCP relay and its server): taking the wrong one would hide
/// the other's frames from the program, so every frame is treated as LAN ingress instead.
pub fn infer_gateway(captures: &[PathBuf]) -> Option<MacAddr> {
    lead(&off_lan_addresses(captures))
}

fn lead(seen: &HashMap<MacAddr, HashSet<IpAddr>>) -> Option<MacAddr> {
    let mut counts: Vec<(usize, MacAddr)> = seen.iter().map(|(m, ips)| (ips.len(), *m)).collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    match counts.as_slice() {
        [] => None,
        [(_, only)] => Some(*only),
        [(first, mac), (second, _), ..] => (first > second).then_some(*mac),
    }
}

fn off_lan_addresses(captures: &[PathBuf]) -> HashMap<MacAddr, HashSet<IpAddr>> {
    let mut seen: HashMap<MacAddr, HashSet<IpAddr>> = HashMap::new();
    for path in captures {
        let Ok(mut cap) = Capture::open(path) else {
            continue;
        };
        while let Some(Ok(frame)) = cap.next_frame() {
            let Some(a) = addresses_of(&frame.data) else {
                continue;
            };
            if is_off_lan(a.src_ip) {
                seen.entry(a.src_mac).or_default().insert(a.src_ip);
            }
            if is_off_lan(a.dst_ip) && !a.dst_mac.is_multicast() {
                seen.entry(a.dst_mac).or_default().insert(a.dst_ip);
            }
        }
    }
    seen
}

struct Addresses {
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src_ip: IpAddr,
    dst_ip: IpAddr,
}

fn addresses_of(data: &[u8]) -> Option<Addresses> {
    use etherparse::{LinkSlice, NetSlice, SlicedPacket};
    let p = SlicedPacket::from_ethernet(data).ok()?;
    let Some(LinkSlice::Ethernet2(e)) = p.link else {
        return None;
    };
    let (src_ip, dst_ip) = match p.net? {
        NetSlice::Ipv4(v4) => (
            IpAddr::V4(v4.header().source_addr()),
            IpAddr::V4(v4.header().destination_addr()),
        ),
        NetSlice::Ipv6(v6) => (
            IpAddr::V6(v6.header().source_addr()),
            IpAddr::V6(v6.header().destination_addr()),
        ),
        _ => return None,
    };
    Some(Addresses {
        src_mac: MacAddr(e.source()),
        dst_mac: MacAddr(e.destination()),
        src_ip,
        dst_ip,
    })
}

fn is_off_lan(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || (o[0] == 100 && (o[1] & 0xc0) == 64))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s & 0xfe00) == 0xfc00
                || (s & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(counts: &[(u8, usize)]) -> HashMap<MacAddr, HashSet<IpAddr>> {
        counts
            .iter()
            .map(|(m, n)| {
                let ips = (0..*n)
                    .map(|i| IpAddr::from([198, 51, 100, i as u8]))
                    .collect();
                (MacAddr([0, 0, 0, 0, 0, *m]), ips)
            })
            .collect()
    }

    #[test]
    fn the_gateway_is_the_clear_leader_and_a_tie_names_none() {
        assert_eq!(lead(&seen(&[])), None);
        assert_eq!(lead(&seen(&[(1, 1)])), Some(MacAddr([0, 0, 0, 0, 0, 1])));
        assert_eq!(
            lead(&seen(&[(1, 3), (2, 40), (3, 2)])),
            Some(MacAddr([0, 0, 0, 0, 0, 2]))
        );
        // A DHCP relay and the server it forwards to: one off-LAN address each.
        assert_eq!(lead(&seen(&[(1, 1), (2, 1)])), None);
    }
}
