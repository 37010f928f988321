//! `cargo xtask bench`: kernel cost per frame through BPF_PROG_TEST_RUN, written as a
//! markdown table and JSON. Not part of the tests: these are measurements, not checks.
//!
//! - baseline: the object's empty XDP program, repeat = 1,000,000 on one frame;
//! - known flow: the sensor on a frame whose flow exists, same repeat;
//! - new flow: the sensor on 200,000 distinct frames, one run each: a new flow each, while
//!   the 65,536-entry map fills (frames 0-60,000) and once it is full and every insert
//!   evicts (frames 70,000-200,000). Its baseline is the empty program run the same way,
//!   since one-shot runs carry the kernel's timer cost.
//!
//! Each figure is the median of 5 rounds.
//!
//! Then, at 1k, 64k and 1M live flows: the sensor on known flows picked at random among
//! them (so the flow cache mostly misses, one-shot runs again), and the time to poll the
//! flow map, in batches and key by key.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use aya::{
    Ebpf,
    programs::{TestRun as _, TestRunOptions, Xdp},
};
use clap::Parser;
use kettlewatch_tests::frames::{self, cat, eth, ethertype as et};
use sensor_common::{maps, proto};
use sensor_user::{
    config::SensorConfig,
    kernel::loader::{self, MapSizes},
    kernel::maps::KernelMaps,
};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Directory for results.md and results.json.
    #[arg(long)]
    out: PathBuf,
    /// Rounds per figure (the median is reported, with the lowest and highest).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Frames per end-to-end run.
    #[arg(long, default_value_t = 4_000_000)]
    e2e_frames: u32,
    /// Run only the end-to-end comparison (veth pair, live frames).
    #[arg(long)]
    e2e_only: bool,
}

const REPEAT: u32 = 1_000_000;
const NEW_FLOWS: u32 = 200_000;
const DEV: [u8; 6] = [0x02, 0, 0x5e, 0x10, 0, 0x17];
const GW: [u8; 6] = [0x02, 0, 0x5e, 0x10, 0, 0x01];

#[derive(Clone, Copy)]
enum Kind {
    V4Tcp,
    V6Udp,
    VlanV4Udp,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::V4Tcp => "IPv4/TCP",
            Kind::V6Udp => "IPv6/UDP",
            Kind::VlanV4Udp => "802.1Q IPv4/UDP",
        }
    }

    /// A 64-byte-class frame to destination number `n`.
    fn frame(self, n: u32) -> Vec<u8> {
        let b = n.to_be_bytes();
        match self {
            Kind::V4Tcp => cat(&[
                &eth(GW, DEV, &[], et::IPV4),
                &frames::ipv4(
                    [198, 51, 100, 23],
                    [10, b[1], b[2], b[3]],
                    proto::TCP,
                    &[],
                    0,
                    &frames::tcp(50000, 443, 0x10, &[0; 6]),
                ),
            ]),
            Kind::V6Udp => {
                let mut dst = [0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                dst[12..].copy_from_slice(&b);
                cat(&[
                    &eth(GW, DEV, &[], et::IPV6),
                    &frames::ipv6(
                        [
                            0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x17,
                        ],
                        dst,
                        proto::UDP,
                        &frames::udp(50000, 443, &[0; 10]),
                    ),
                ])
            }
            Kind::VlanV4Udp => cat(&[
                &eth(GW, DEV, &[(et::VLAN, 10)], et::IPV4),
                &frames::ipv4(
                    [198, 51, 100, 23],
                    [10, b[1], b[2], b[3]],
                    proto::UDP,
                    &[],
                    0,
                    &frames::udp(50000, 123, &[0; 14]),
                ),
            ]),
        }
    }
}

fn prog<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp> {
    let p: &mut Xdp = ebpf.program_mut(name).context("program")?.try_into()?;
    Ok(p)
}

/// Average ns per run over `repeat` runs of one frame, as the kernel measures it.
fn repeat_ns(p: &Xdp, frame: &[u8], repeat: u32) -> Result<f64> {
    let r = p.test_run(TestRunOptions {
        data_in: Some(frame),
        repeat,
        ..TestRunOptions::default()
    })?;
    Ok(r.duration.as_nanos() as f64)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// "median (lowest-highest)" of the rounds: one figure and how much it moved.
fn spread(v: &[f64]) -> String {
    spread_with(v, 1)
}

/// [`spread`] with `digits` decimals.
fn spread_with(v: &[f64], digits: usize) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let m = median(v.to_vec());
    format!("{m:.digits$} ({lo:.digits$}-{hi:.digits$})")
}

/// The end-to-end table: each counter's rate and its ratio to the empty program in the
/// same round, with every frame accounted for.
fn e2e(args: &Args) -> Result<(String, serde_json::Value)> {
    use kettlewatch_tests::bench::e2e::{self, Counter};
    let bin = kettlewatch_tests::env::workspace().join("target/release/kettlewatch");
    let rounds = args.rounds;
    let runs = e2e::measure(args.e2e_frames, rounds, &bin)?;
    let empty: Vec<&e2e::Run> = runs
        .iter()
        .filter(|r| r.counter == Counter::EmptyXdp)
        .collect();
    let mut md = String::from(
        "\n| counter on the receiving veth | million frames counted per second, median (lowest-highest) | ratio to the empty program, same round | sent | reached the interface | dropped at the interface | counted | not counted (reached - counted) | lost, as the counter reports |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut js = Vec::new();
    for c in Counter::ALL {
        let mine: Vec<&e2e::Run> = runs.iter().filter(|r| r.counter == c).collect();
        let rates: Vec<f64> = mine.iter().map(|r| r.rate()).collect();
        let ratios: Vec<f64> = mine
            .iter()
            .zip(&empty)
            .map(|(r, e)| r.rate() / e.rate())
            .collect();
        let sum = |f: fn(&e2e::Run) -> u64| mine.iter().map(|r| f(r)).sum::<u64>();
        let lost = mine.iter().map(|r| r.lost_reported).sum::<Option<u64>>();
        md += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            c.name(),
            spread_with(&rates.iter().map(|r| r / 1e6).collect::<Vec<_>>(), 2),
            spread_with(&ratios, 2),
            sum(|r| r.sent),
            sum(|r| r.reached),
            sum(|r| r.dropped_at_rx),
            sum(|r| r.counted),
            sum(|r| r.reached) - sum(|r| r.counted),
            lost.map_or("not reported".to_string(), |l| l.to_string()),
        );
        js.push(json!({
            "counter": c.name(), "rates_per_s": rates, "ratio_to_empty": ratios,
            "sent": sum(|r| r.sent), "reached": sum(|r| r.reached), "dropped_at_rx": sum(|r| r.dropped_at_rx),
            "counted": sum(|r| r.counted), "lost_reported": lost,
        }));
    }
    md += &format!(
        "\nEnd to end: {} frames per run (IPv4/UDP, 64 bytes, {} flows) made by `kw_bench_gen` with BPF_PROG_TEST_RUN in live-frames mode (batches of 64) on one end of a veth pair in its own namespace and sent (XDP_TX) to the other end, where the counter runs; {rounds} rounds, the counters in rotating order. Rate = frames the counter counted / seconds the generator ran. The libpcap counters and tcpdump run above the empty XDP program (veth passes XDP frames only to a peer with a program).\n",
        args.e2e_frames,
        maps::BENCH_GEN_FLOWS
    );
    Ok((md, json!(js)))
}

struct Loaded {
    ebpf: Ebpf,
    maps: KernelMaps,
    ring: aya::maps::RingBuf<aya::maps::MapData>,
}

fn load() -> Result<Loaded> {
    // Live mode (replay = false): the clock comes from bpf_ktime_get_*, as on a gateway.
    let mut ebpf = loader::load(MapSizes::from(&SensorConfig::default()), false)?;
    prog(&mut ebpf, maps::BENCH_PASS_PROGRAM)?.load()?;
    prog(&mut ebpf, maps::BENCH_PARSE_PROGRAM)?.load()?;
    let (maps, ring) = KernelMaps::take(&mut ebpf)?;
    // The device is monitored against an allow-list, so every new flow takes a policy
    // verdict (device lookup, trie lookup, port rules): the figures include it.
    let mut policy = sensor_user::kernel::policy_maps::PolicyMaps::take(&mut ebpf)?;
    let mut allow = std::collections::BTreeMap::new();
    let rule = |port, proto| sensor_common::policy::PortRule {
        port,
        proto,
        _pad: 0,
    };
    let mut e = sensor_common::policy::AllowEntry::default();
    e.rules[0] = rule(443, proto::TCP);
    e.rules[1] = rule(123, proto::UDP);
    e.rules[2] = rule(443, proto::UDP);
    e.count = 3;
    allow.insert("10.0.0.0/8".parse()?, e);
    allow.insert("2001:db8:2::/48".parse()?, e);
    for i in 0..14u8 {
        allow.insert(format!("203.0.113.{i}/32").parse()?, e);
    }
    let device = sensor_common::policy::DevicePolicy {
        group: 1,
        mode: sensor_common::policy::mode::MONITOR,
        _pad: [0; 3],
    };
    policy.apply_device(DEV, Some((device, &allow)))?;
    Ok(Loaded { ebpf, maps, ring })
}

/// One-shot runs over distinct frames: medians while the flow map fills (the first
/// 60,000 of 65,536) and once it is full (every insert evicts). The ring buffer is drained
/// every `drain_every` frames: the kernel wakes the reader (an irq_work) only for an event
/// written when the reader had caught up, so 1 models a flood the reader trails, and
/// draining after every frame models an isolated new flow that wakes a sleeping reader.
fn one_shot_ns(
    l: &mut Loaded,
    name: &str,
    kind: Kind,
    base: u32,
    count: u32,
    drain_every: u32,
) -> Result<(f64, f64)> {
    let (mut filling, mut full) = (Vec::new(), Vec::new());
    for i in 0..count {
        let f = kind.frame(base + i);
        let p = prog(&mut l.ebpf, name)?;
        let ns = repeat_ns(p, &f, 1)?;
        if i < 60_000 {
            filling.push(ns);
        } else if i >= 70_000 {
            full.push(ns);
        }
        if i % drain_every == drain_every - 1 {
            while l.ring.next().is_some() {}
        }
    }
    let full = if full.is_empty() { 0.0 } else { median(full) };
    Ok((median(filling), full))
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Loads `n` IPv4 prefixes (/30s in 11.0.0.0/8) from a plain feed file the way the sensor
/// does (read, parse, check, merge, write the trie); returns load time (ms), userspace
/// resident growth (MB), the trie's kernel memory (MB), and then a new flow's one-shot
/// cost (ns) with them loaded.
fn intel_load(n: u32) -> Result<(f64, f64, f64, f64)> {
    let dir = std::env::temp_dir().join(format!("kw-bench-intel-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let feed = dir.join("feed.txt");
    let mut text = String::with_capacity(n as usize * 16);
    let base = u32::from(std::net::Ipv4Addr::new(11, 0, 0, 0));
    for i in 0..n {
        text += &format!("{}/30\n", std::net::Ipv4Addr::from(base + i * 4));
    }
    std::fs::write(&feed, text)?;
    let cfg = sensor_user::config::Config::parse(
        &format!(
            "[[intel.feed]]\npath = \"{}\"\nformat = \"plain\"\n",
            feed.display()
        ),
        "bench.toml",
    )?;
    let mut ebpf = loader::load(MapSizes::from(&SensorConfig::default()), false)?;
    let (_maps, mut ring) = KernelMaps::take(&mut ebpf)?;
    let mut intel = sensor_user::judge::intel::IntelMaps::take(&mut ebpf)?;
    let rss0 = rss_kb();
    let t = std::time::Instant::now();
    let mut set = sensor_user::judge::intel::IntelSet::default();
    set.load(&cfg, 0);
    let want = set.kernel();
    intel.apply(&want)?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let rss_mb = rss_kb().saturating_sub(rss0) as f64 / 1024.0;
    let kernel_mb = intel.kernel_bytes().unwrap_or(0) as f64 / 1_048_576.0;
    assert_eq!(intel.len(), n as usize, "every prefix loaded");
    let sensor = prog(&mut ebpf, maps::XDP_PROGRAM)?;
    let mut ns = Vec::new();
    for i in 0..20_000u32 {
        ns.push(repeat_ns(sensor, &Kind::V4Tcp.frame(3_000_000 + i), 1)?);
        if i % 1024 == 1023 {
            while ring.next().is_some() {}
        }
    }
    std::fs::remove_dir_all(&dir)?;
    Ok((load_ms, rss_mb, kernel_mb, median(ns)))
}

/// Alert latency on a live lab: a monitored device with an empty baseline opens 2,000 new
/// flows (500 a second), each an `unexpected_destination`; the sensor's `stats.latency`
/// gives p50 and p99 from the kernel's stamp on the first packet to the line handed to
/// the output. Returns (p50 us, p99 us, alerts measured).
fn alert_latency() -> Result<(f64, f64, u64)> {
    use kettlewatch_tests::{lab::Lab, proc::Sensor};
    let bin = kettlewatch_tests::env::workspace().join("target/release/kettlewatch");
    // SAFETY: the benchmark is single-threaded here.
    unsafe { std::env::set_var("KETTLEWATCH_BIN", &bin) };
    let lab = Lab::build(1);
    let dir = kettlewatch_tests::env::TempDir::new();
    let cfg = dir.join("kw.toml");
    std::fs::write(
        &cfg,
        "[sensor]\nstats_interval = \"1s\"\n[baseline]\nmode = \"monitor\"\n",
    )?;
    let mut sensor = Sensor::start(&lab.gw, "lan0", &["--config", cfg.to_str().unwrap()], false);
    sensor.wait_for_log("watching lan0", std::time::Duration::from_secs(30));
    let from: std::net::IpAddr = lab.devices[0].v6.into();
    lab.devices[0].ns.run(move || {
        let s = std::net::UdpSocket::bind((from, 0)).unwrap();
        for i in 0..2000u16 {
            let to = std::net::SocketAddr::from((
                std::net::Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0x10, i),
                443,
            ));
            let _ = s.send_to(b"x", to);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let out = sensor.stop();
    let last = kettlewatch_tests::events::last_stats_line(&out.stdout).context("a stats line")?;
    let l = &last["latency"];
    Ok((
        l["p50_us"].as_f64().unwrap_or(f64::NAN),
        l["p99_us"].as_f64().unwrap_or(f64::NAN),
        l["alerts_measured"].as_u64().unwrap_or(0),
    ))
}

/// The userspace pipeline at scale: `live` new flows created in the kernel, their
/// ring-buffer events taken in by a sensor (default configuration, lines to /dev/null) as
/// it would on a gateway, then one poll of the whole map. Returns events per second
/// (userspace time only), the poll (ms, read and process) and resident growth (MB).
type Pipeline = (f64, f64, f64, (f64, f64));

fn pipeline(live: u32) -> Result<Pipeline> {
    use sensor_user::{
        emit::eve::Eve,
        emit::output::Output,
        engine::sensor::{Sensor, Stages},
        model::clock,
    };
    let sizes = MapSizes {
        flows: live + live / 4,
        ..MapSizes::from(&SensorConfig::default())
    };
    let mut ebpf = loader::load(sizes, false)?;
    let (maps, mut ring) = KernelMaps::take(&mut ebpf)?;
    let pm = sensor_user::kernel::policy_maps::PolicyMaps::take(&mut ebpf)?;
    let im = sensor_user::judge::intel::IntelMaps::take(&mut ebpf)?;
    let config = sensor_user::config::Config::default();
    let time = clock::TimeBase::live();
    let now = clock::realtime_ns();
    let stages = Stages {
        classifier: sensor_user::judge::classify::Classifier::builtin(),
        store: None,
        baseline: sensor_user::judge::baseline::start(
            &config,
            None,
            Vec::new(),
            now,
            &time,
            Some(pm),
        )?,
        intel: sensor_user::judge::intel::stage::Intel::start(
            &config,
            Some(im),
            (now / 1_000_000_000) as i64,
        ),
    };
    let out = Output::open("/dev/null", 65_536)?;
    let eve = Eve {
        sensor: "bench".into(),
        in_iface: "bench0".into(),
        time,
    };
    let rss0 = rss_kb();
    let mut sensor = Sensor::new(eve, &config, stages, out, now);
    let sensor_prog = prog(&mut ebpf, maps::XDP_PROGRAM)?;
    let mut user = std::time::Duration::ZERO;
    let mut events = 0u64;
    for i in 0..live {
        repeat_ns(sensor_prog, &Kind::V4Tcp.frame(i), 1)?;
        if i % 1024 == 1023 || i == live - 1 {
            let t = std::time::Instant::now();
            while let Some(item) = ring.next() {
                sensor.on_record(&item);
                events += 1;
            }
            sensor.end_batch(clock::realtime_ns());
            user += t.elapsed();
        }
    }
    let t = std::time::Instant::now();
    sensor.poll(&maps, clock::realtime_ns());
    let poll_ms = t.elapsed().as_secs_f64() * 1e3;
    let rss_mb = rss_kb().saturating_sub(rss0) as f64 / 1024.0;
    // A steady poll: 1% of the flows got traffic since the last one. Its CPU time (user
    // and system: most of a poll is the kernel's batch copy) is what the sensor spends
    // every poll_interval.
    for i in (0..live).step_by(100) {
        repeat_ns(sensor_prog, &Kind::V4Tcp.frame(i), 1)?;
    }
    let cpu0 = cpu_ms();
    let t = std::time::Instant::now();
    sensor.poll(&maps, clock::realtime_ns());
    let steady = (t.elapsed().as_secs_f64() * 1e3, cpu_ms() - cpu0);
    Ok((events as f64 / user.as_secs_f64(), poll_ms, rss_mb, steady))
}

/// CPU time of this process so far (user + system), ms.
fn cpu_ms() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    ms(ru.ru_utime) + ms(ru.ru_stime)
}

/// Known-flow cost and poll time with `live` flows in the map.
type Scale = (f64, (f64, f64), f64, f64, f64);

fn scale(live: u32, empty_one_shot: f64) -> Result<Scale> {
    let sizes = MapSizes {
        flows: live + live / 4,
        ..MapSizes::from(&SensorConfig::default())
    };
    let mut ebpf = loader::load(sizes, false)?;
    let (mut maps, mut ring) = KernelMaps::take(&mut ebpf)?;
    let sensor = prog(&mut ebpf, maps::XDP_PROGRAM)?;
    for i in 0..live {
        repeat_ns(sensor, &Kind::V4Tcp.frame(i), 1)?;
        if i % 1024 == 1023 {
            while ring.next().is_some() {}
        }
    }
    let mut rng = fastrand::Rng::with_seed(u64::from(live));
    // Five batches of 20,000: the median of all, and the lowest and highest batch
    // median, so the plot shows how much the figure moves.
    let mut batches = Vec::new();
    for _ in 0..5 {
        let mut ns = Vec::new();
        for _ in 0..20_000 {
            ns.push(repeat_ns(sensor, &Kind::V4Tcp.frame(rng.u32(0..live)), 1)?);
        }
        batches.push(ns);
    }
    let known = median(batches.concat());
    let meds: Vec<f64> = batches.into_iter().map(median).collect();
    let range = (
        meds.iter().copied().fold(f64::INFINITY, f64::min),
        meds.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let s = maps.stats()?;
    anyhow::ensure!(
        s[sensor_common::stats::NEW_FLOWS as usize] == u64::from(live),
        "populating {live} flows created {}",
        s[sensor_common::stats::NEW_FLOWS as usize]
    );
    let time = |maps: &KernelMaps| -> Result<f64> {
        let t = std::time::Instant::now();
        let n = maps.flows()?.len();
        anyhow::ensure!(n as u32 == live, "poll read {n} of {live} flows");
        Ok(t.elapsed().as_secs_f64() * 1000.0)
    };
    let batched = median((0..3).map(|_| time(&maps)).collect::<Result<Vec<_>>>()?);
    // The same read without merging the flow cache and building the snapshot: the
    // kernel's batch copy and the per-CPU fold alone.
    let rows_only = median(
        (0..3)
            .map(|_| {
                let t = std::time::Instant::now();
                let n = maps.flow_rows()?.len();
                anyhow::ensure!(n as u32 == live, "read {n} of {live} flows");
                Ok(t.elapsed().as_secs_f64() * 1000.0)
            })
            .collect::<Result<Vec<_>>>()?,
    );
    maps.set_batched(false);
    let by_key = time(&maps)?;
    eprintln!(
        "{live} live flows: known flow {known:.0} ns (one-shot empty {empty_one_shot:.0} ns), poll {batched:.1} ms batched (flow map alone {rows_only:.1} ms), {by_key:.1} ms key by key"
    );
    Ok((known, range, batched, rows_only, by_key))
}

fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    if args.e2e_only {
        let (md, js) = e2e(&args)?;
        std::fs::write(args.out.join("e2e.md"), &md)?;
        std::fs::write(
            args.out.join("e2e.json"),
            serde_json::to_string_pretty(&js)?,
        )?;
        println!("{md}");
        return Ok(());
    }
    let mut rows = Vec::new();
    let mut parse_rows = Vec::new();
    let mut spreads = Vec::new();
    for kind in [Kind::V4Tcp, Kind::V6Udp, Kind::VlanV4Udp] {
        let mut parse = Vec::new();
        let (mut empty, mut known, mut empty1, mut new, mut evict, mut woken) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for round in 0..args.rounds {
            let mut l = load()?;
            let f = kind.frame(1);
            empty.push(repeat_ns(
                prog(&mut l.ebpf, maps::BENCH_PASS_PROGRAM)?,
                &f,
                REPEAT,
            )?);
            parse.push(repeat_ns(
                prog(&mut l.ebpf, maps::BENCH_PARSE_PROGRAM)?,
                &f,
                REPEAT,
            )?);
            let sensor = prog(&mut l.ebpf, maps::XDP_PROGRAM)?;
            repeat_ns(sensor, &f, 1)?; // creates the flow
            known.push(repeat_ns(sensor, &f, REPEAT)?);
            let base = 1_000_000 * (round as u32 + 1);
            empty1.push(one_shot_ns(&mut l, maps::BENCH_PASS_PROGRAM, kind, base, 20_000, 1024)?.0);
            let (n, e) = one_shot_ns(&mut l, maps::XDP_PROGRAM, kind, base, NEW_FLOWS, 1024)?;
            new.push(n);
            evict.push(e);
            let mut fresh = load()?;
            woken.push(one_shot_ns(&mut fresh, maps::XDP_PROGRAM, kind, base, 5_000, 1)?.0);
            let s = l.maps.stats()?;
            eprintln!(
                "{} round {round}: empty {:.1} ns, known {:.1} ns, one-shot empty {:.1} ns, new flow {:.1} ns, new flow evicting {:.1} ns, new flow waking the reader {:.1} ns (flows created {}, insert failures {}, ring full {})",
                kind.name(),
                empty[round],
                known[round],
                empty1[round],
                new[round],
                evict[round],
                woken[round],
                s[sensor_common::stats::NEW_FLOWS as usize],
                s[sensor_common::stats::FLOW_INSERT_FAILED as usize],
                s[sensor_common::stats::RINGBUF_FULL as usize],
            );
        }
        parse_rows.push((kind, median(parse)));
        spreads.push([
            spread(&empty),
            spread(&known),
            spread(&empty1),
            spread(&new),
            spread(&evict),
            spread(&woken),
        ]);
        rows.push((
            kind,
            median(empty),
            median(known),
            median(empty1),
            median(new),
            median(evict),
            median(woken),
        ));
    }

    let mut md = String::from(
        "Each ns figure: median of the rounds (lowest-highest).\n\n| frame | empty XDP (ns) | sensor, known flow (ns) | over empty | ratio | empty, one-shot (ns) | new flow, map filling (ns) | over empty | new flow, map full: LRU evicts (ns) | over empty | new flow waking the reader (ns) |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut js = Vec::new();
    for ((kind, e, k, e1, n, ev, w), sp) in rows.iter().zip(&spreads) {
        md += &format!(
            "| {} | {} | {} | +{:.1} | {:.2}x | {} | {} | +{:.1} | {} | +{:.1} | {} |\n",
            kind.name(),
            sp[0],
            sp[1],
            k - e,
            k / e,
            sp[2],
            sp[3],
            n - e1,
            sp[4],
            ev - e1,
            sp[5],
        );
        js.push(json!({
            "frame": kind.name(), "empty_ns": e, "known_flow_ns": k,
            "empty_one_shot_ns": e1, "new_flow_ns": n, "new_flow_evicting_ns": ev, "new_flow_waking_reader_ns": w,
        }));
    }
    md += "\n| frame | empty XDP (ns) | parse only (ns) | over empty | sensor, known flow (ns) | over parse only |\n|---|---|---|---|---|---|\n";
    for ((kind, p), (_, e, k, ..)) in parse_rows.iter().zip(&rows) {
        md += &format!(
            "| {} | {e:.1} | {p:.1} | +{:.1} | {k:.1} | +{:.1} |\n",
            kind.name(),
            p - e,
            k - p
        );
    }
    let empty1 = rows.first().map_or(0.0, |r| r.3);
    md += "\n| live flows | known flow, random among them, one-shot (ns): median (lowest-highest batch) | over one-shot empty | poll flow map, batched (ms) | of which the flow map's batch read and per-CPU fold (ms) | poll, key by key (ms) |\n|---|---|---|---|---|---|\n";
    let mut scale_js = Vec::new();
    let mut known_points = Vec::new();
    let mut known_ranges = Vec::new();
    for live in [1_000u32, 16_384, 65_536, 262_144, 1_000_000] {
        let (known, (lo, hi), batched, rows_only, by_key) = scale(live, empty1)?;
        known_points.push((f64::from(live), known));
        known_ranges.push((f64::from(live), lo, hi));
        md += &format!(
            "| {live} | {known:.1} ({lo:.1}-{hi:.1}) | +{:.1} | {batched:.1} | {rows_only:.1} | {by_key:.1} |\n",
            known - empty1
        );
        scale_js.push(json!({"live_flows": live, "known_flow_one_shot_ns": known, "poll_batched_ms": batched, "flow_map_read_ms": rows_only, "poll_by_key_ms": by_key}));
    }
    md += "\n| live flows | ring-buffer events into JSON lines (per second, userspace) | first poll of the whole map, read and processed (ms) | sensor resident growth (MB) | steady poll, 1% of flows changed: wall (ms) | its CPU, user + system (ms) | share of one CPU at the default 1 s poll interval |\n|---|---|---|---|---|---|---|\n";
    let mut pipe_js = Vec::new();
    for live in [65_536u32, 1_000_000] {
        let (eps, poll, rss, (steady_ms, steady_cpu)) = pipeline(live)?;
        md += &format!(
            "| {live} | {eps:.0} | {poll:.0} | {rss:.0} | {steady_ms:.0} | {steady_cpu:.0} | {:.0}% |\n",
            steady_cpu / 10.0
        );
        pipe_js.push(
            json!({"live_flows": live, "events_per_s": eps, "poll_ms": poll, "rss_growth_mb": rss, "steady_poll_ms": steady_ms, "steady_poll_cpu_ms": steady_cpu}),
        );
    }
    let (p50, p99, n) = alert_latency()?;
    md += &format!(
        "\nAlert latency (kernel stamp of the first packet to the alert line handed to the output), live lab, {n} alerts: p50 {p50:.0} us, p99 {p99:.0} us.\n"
    );
    let latency_js = json!({"alerts": n, "p50_us": p50, "p99_us": p99});
    md += "\n| intel prefixes | load: read, parse, check, merge, write the trie (ms) | userspace resident growth (MB) | kernel trie memory (MB) | new flow, one-shot (ns) |\n|---|---|---|---|---|\n";
    let mut intel_js = Vec::new();
    for n in [0u32, 10_000, 1_000_000] {
        let (ms, rss, kmem, new) = intel_load(n)?;
        md += &format!("| {n} | {ms:.0} | {rss:.1} | {kmem:.1} | {new:.1} |\n");
        intel_js.push(json!({"prefixes": n, "load_ms": ms, "rss_growth_mb": rss, "kernel_mb": kmem, "new_flow_one_shot_ns": new}));
    }
    let (e2e_md, e2e_js) = e2e(&args)?;
    md += &e2e_md;
    use kettlewatch_tests::bench::plot;
    let png = args.out.join("ns_per_frame.png");
    plot::ns_per_frame(
        &png,
        "XDP cost per frame (BPF_PROG_TEST_RUN, one-shot runs)",
        &[
            plot::Series {
                name: "sensor, known flow picked at random among the live flows".into(),
                points: known_points.clone(),
                ranges: known_ranges,
            },
            plot::Series {
                name: "empty XDP program".into(),
                points: known_points.iter().map(|p| (p.0, empty1)).collect(),
                ranges: Vec::new(),
            },
        ],
    )?;
    md += &format!("\nPlot: {}\n", png.display());
    let host = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let note = format!(
        "\nMachine: {host}, {} CPUs, Linux {}. BPF_PROG_TEST_RUN, median of {} rounds; repeat = {REPEAT} for empty and known flow; {NEW_FLOWS} distinct frames, one run each, the device monitored against a 16-entry allow-list (every new flow takes a policy verdict); ring buffer drained every 1,024 frames, for new flows (map of 65,536 flows: filling = frames 0-60,000, full = 70,000-200,000); 5,000 frames drained after each for a new flow that wakes the reader. Live-flow rows: IPv4/TCP flows created one frame each, then 100,000 one-shot runs on flows picked at random among them; poll = one read of the whole flow map and flow cache (median of 3 batched, 1 key by key). Intel rows: a plain feed file of /30 prefixes loaded as the sensor loads it, then 20,000 new flows (median) that miss them.\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        kernel.trim(),
        args.rounds
    );
    md += &note;
    std::fs::write(args.out.join("results.md"), &md)?;
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(
            &json!({"machine": note.trim(), "rows": js, "scale": scale_js, "intel": intel_js, "pipeline": pipe_js, "alert_latency": latency_js, "end_to_end": e2e_js}),
        )?,
    )?;
    println!("{md}");
    Ok(())
}
