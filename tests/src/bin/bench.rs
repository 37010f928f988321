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
use aya::Ebpf;
use clap::Parser;
use kettlewatch_tests::bench::{
    first_payload, known_flow,
    run::{DEV, Kind, median, prog, repeat_ns, spread, spread_with},
    userspace::{alert_latency, intel_load, pipeline, scale},
};
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
    /// Run only the alert-latency lab, `rounds` times (p50 and p99 of each round).
    #[arg(long)]
    latency_only: bool,
    /// Run only the per-frame tables (empty, known flow, new flow, parse only), for
    /// comparing two builds of the eBPF program.
    #[arg(long)]
    frames_only: bool,
    /// Run only the userspace pipeline table (events in, first poll, steady poll, memory),
    /// at `--pipeline-flows` live flows.
    #[arg(long)]
    pipeline_only: bool,
    /// Run only the new-flow breakdown (what the policy verdict and the ring record cost).
    #[arg(long)]
    new_flow_steps: bool,
    /// Run only the known-flow breakdown (a bare flow-map lookup among 64k flows, in the
    /// sensor's per-CPU layout and with one value per flow, against the sensor).
    #[arg(long)]
    known_flow_steps: bool,
    /// Run only the first-payload breakdown (a flow's first payload copied, against the
    /// same segment on a known flow, and a known flow with sampling off).
    #[arg(long)]
    first_payload_steps: bool,
    /// Live flows for `--pipeline-only` (repeatable; default 65,536 and 1,000,000).
    #[arg(long)]
    pipeline_flows: Vec<u32>,
    /// Run only the home-router profile for this many minutes: 20 devices on a live lab,
    /// 15 busy destinations each and one more a minute; the sensor's CPU and memory.
    #[arg(long)]
    home_minutes: Option<u64>,
    /// Run only the idle profile for this many minutes: the home router's 20 devices,
    /// sending nothing; the sensor's CPU and memory.
    #[arg(long)]
    idle_minutes: Option<u64>,
    /// Run only the fleet inventory: `--fleet-gateways` publishers put
    /// `--fleet-devices` devices each into a three-node JetStream cluster, then
    /// `kettlewatch devices --nats` lists them, `rounds` times.
    #[arg(long)]
    fleet_kv_only: bool,
    /// Simulated gateways for the fleet inventory.
    #[arg(long, default_value_t = 100)]
    fleet_gateways: usize,
    /// Devices per simulated gateway.
    #[arg(long, default_value_t = 1000)]
    fleet_devices: usize,
    /// Run only the fleet ramp: gateways sending the home router's event mix into a
    /// three-node JetStream cluster, step by step until the spools grow; then twice the
    /// load, then none until the spools drain.
    #[arg(long)]
    fleet_ramp_only: bool,
    /// The ramp's steps, in gateways.
    #[arg(long, value_delimiter = ',', default_values_t = [250, 500, 750, 1000, 1250, 1500, 2000])]
    fleet_steps: Vec<usize>,
    /// Seconds each step is held and measured (after 5 s of warming).
    #[arg(long, default_value_t = 30.0)]
    fleet_hold_s: f64,
    /// The event mix: a home-router run's JSON (`--home-minutes N` writes one).
    #[arg(long, default_value = "tests/bench-results/home-mix.json")]
    fleet_mix: PathBuf,
}

const REPEAT: u32 = 1_000_000;
const NEW_FLOWS: u32 = 200_000;

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
    /// The benchmark programs' own object.
    bench: Ebpf,
    maps: KernelMaps,
    ring: aya::maps::RingBuf<aya::maps::MapData>,
}

fn load() -> Result<Loaded> {
    load_with(MapSizes::from(&SensorConfig::default()), true)
}

/// [`load`] with other map sizes, and with or without the device's policy.
fn load_with(sizes: MapSizes, with_policy: bool) -> Result<Loaded> {
    // Live mode (replay = false): the clock comes from bpf_ktime_get_*, as on a gateway.
    let mut ebpf = loader::load(sizes, loader::Mode::LIVE)?;
    let mut bench = Ebpf::load(loader::BENCH_OBJECT).context("the benchmark object")?;
    prog(&mut bench, maps::BENCH_PASS_PROGRAM)?.load()?;
    prog(&mut bench, maps::BENCH_PARSE_PROGRAM)?.load()?;
    prog(&mut bench, maps::BENCH_INSERT_PROGRAM)?.load()?;
    let (maps, ring) = KernelMaps::take(&mut ebpf)?;
    // The device is monitored against an allow-list, so every new flow takes a policy
    // verdict (device lookup, trie lookup, port rules): the figures include it.
    let mut policy =
        sensor_user::kernel::maps::policy::PolicyMaps::take(&mut ebpf, maps.generations.clone())?;
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
    if with_policy {
        policy.apply_device(DEV, Some((device, &allow)))?;
    }
    Ok(Loaded {
        ebpf,
        bench,
        maps,
        ring,
    })
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
        let object = if name.starts_with("kw_bench") {
            &mut l.bench
        } else {
            &mut l.ebpf
        };
        let p = prog(object, name)?;
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

/// Where a new flow's time goes (IPv4/TCP, one-shot runs while the map fills): the
/// same frames through three loads of the sensor that differ in one step each. Returns
/// per round (one-shot empty, as measured, without a policy, without a policy and with
/// the ring buffer full, parse only, parse with a flow-map lookup and insert).
fn new_flow_steps(rounds: usize) -> Result<Vec<[f64; 6]>> {
    let mut out = Vec::new();
    for round in 0..rounds {
        let base = 1_000_000 * (round as u32 + 1);
        let sizes = MapSizes::from(&SensorConfig::default());
        let mut l = load()?;
        let empty = one_shot_ns(
            &mut l,
            maps::BENCH_PASS_PROGRAM,
            Kind::V4Tcp,
            base,
            20_000,
            1024,
        )?
        .0;
        let one = |l: &mut Loaded, name: &str, count: u32| -> Result<f64> {
            Ok(one_shot_ns(l, name, Kind::V4Tcp, base, count, 1024)?.0)
        };
        let parse = one(&mut l, maps::BENCH_PARSE_PROGRAM, 20_000)?;
        // The same new frames into the benchmark object's own flow map.
        let insert = one(&mut l, maps::BENCH_INSERT_PROGRAM, 60_000)?;
        let full = one(&mut l, maps::XDP_PROGRAM, 60_000)?;
        let mut l = load_with(sizes, false)?;
        let no_policy = one_shot_ns(&mut l, maps::XDP_PROGRAM, Kind::V4Tcp, base, 60_000, 1024)?.0;
        // A one-page ring nobody reads is full after a few dozen records: every later
        // reserve fails (counted as ringbuf_full) and no record is written.
        let tiny = MapSizes {
            ring_bytes: 4096,
            ..sizes
        };
        let mut l = load_with(tiny, false)?;
        let no_ring = one_shot_ns(
            &mut l,
            maps::XDP_PROGRAM,
            Kind::V4Tcp,
            base,
            60_000,
            u32::MAX,
        )?
        .0;
        let s = l.maps.stats.read()?;
        anyhow::ensure!(
            s[sensor_common::stats::RINGBUF_FULL as usize] > 59_000,
            "the ring was not full: {} reserves failed",
            s[sensor_common::stats::RINGBUF_FULL as usize]
        );
        eprintln!(
            "new-flow steps round {round}: one-shot empty {empty:.0} ns, parse only {parse:.0}, parse and insert {insert:.0}, new flow {full:.0}, without a policy {no_policy:.0}, and without ring records {no_ring:.0}"
        );
        out.push([empty, full, no_policy, no_ring, parse, insert]);
    }
    Ok(out)
}

/// The new-flow breakdown as a table: each step's cost is the difference between two
/// loads, median over rounds with the lowest and highest round.
fn steps_table(rounds: &[[f64; 6]]) -> String {
    type Step = dyn Fn(&[f64; 6]) -> f64;
    let col = |f: &Step| spread(&rounds.iter().map(f).collect::<Vec<_>>());
    let mut md = String::from(
        "| step (IPv4/TCP, one-shot runs while the 65,536-entry map fills) | ns: median (lowest-highest round) |\n|---|---|\n",
    );
    let steps: [(&str, &Step); 6] = [
        ("new flow, over the one-shot empty program", &|r| {
            r[1] - r[0]
        }),
        ("parsing", &|r| r[4] - r[0]),
        (
            "the flow key, a flow-map lookup that misses, and the LRU insert (benchmark object's own map)",
            &|r| r[5] - r[4],
        ),
        (
            "the policy verdict (device policy, allow-list trie, ports)",
            &|r| r[1] - r[2],
        ),
        ("the ring record (reserve, write, submit)", &|r| r[2] - r[3]),
        (
            "the rest: flow-cache slot, device count, clocks, intel lookup, change log, stats",
            &|r| r[3] - r[5],
        ),
    ];
    for (what, f) in steps {
        md += &format!("| {what} | {} |\n", col(f));
    }
    md
}

/// The userspace pipeline table at each of `flows` live flows.
fn pipeline_table(flows: &[u32]) -> Result<(String, Vec<serde_json::Value>)> {
    let mut md = String::from(
        "\n| live flows | ring-buffer events into JSON lines (per second, userspace) | first poll of the whole map, read and processed (ms) | sensor resident growth (MB) | poll after 1% of flows changed: wall (ms) | its CPU, user + system (ms) | sweep (whole map) after 1% changed: wall (ms) | its CPU (ms) | the sweep's slices of 512 flows, as live mode takes them: median / p99 / longest (ms) (slices) | share of one CPU: 1 s polls, a sweep every 30 s |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut pipe_js = Vec::new();
    for &live in flows {
        let p = pipeline(live)?;
        // Of every sweep_every seconds' polls, one is a sweep.
        let per_s = p.sweep_every_s;
        let share = ((per_s - 1.0) * p.steady.1 + p.sweep.1) / per_s / 10.0;
        md += &format!(
            "| {live} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} / {:.2} / {:.1} ({}) | {share:.1}% |\n",
            p.events_per_s,
            p.first_poll_ms,
            p.rss_growth_mb,
            p.steady.0,
            p.steady.1,
            p.sweep.0,
            p.sweep.1,
            p.slices.0,
            p.slices.1,
            p.slices.2,
            p.slices.3
        );
        pipe_js.push(json!({
            "live_flows": live, "events_per_s": p.events_per_s, "poll_ms": p.first_poll_ms,
            "rss_growth_mb": p.rss_growth_mb, "steady_poll_ms": p.steady.0,
            "steady_poll_cpu_ms": p.steady.1, "sweep_ms": p.sweep.0, "sweep_cpu_ms": p.sweep.1,
            "sweep_every_s": p.sweep_every_s, "cpu_share_pct": share,
            "sweep_slice_ms": {"p50": p.slices.0, "p99": p.slices.1, "max": p.slices.2, "slices": p.slices.3},
        }));
    }
    Ok((md, pipe_js))
}

/// The fleet inventory's table and JSON (`fleet` in results.json).
fn fleet_kv(args: &Args) -> Result<(String, serde_json::Value)> {
    let bin = kettlewatch_tests::env::workspace().join("target/release/kettlewatch");
    let f = kettlewatch_tests::bench::fleet::kv_inventory(
        &bin,
        args.fleet_gateways,
        args.fleet_devices,
        args.rounds,
    )?;
    let md = format!(
        "\n| gateways | devices in the bucket | value (bytes) | put, all acknowledged (s) | `devices --nats` (s) | listed | a `get` per key (s) |\n|---|---|---|---|---|---|---|\n| {} | {} | {} | {:.1} | {} | {} | {:.1} |\n\nA three-node JetStream cluster on loopback (nats-server, the bucket at three replicas); each gateway its own `emit::nats::Fleet` (thread, connection, in-memory spool); `devices --nats` is the release binary listing the bucket as JSON, median (lowest-highest) of {} rounds; the last column reads the same bucket a key list and a `get` per key, as the listing did before 2026-12-07.\n",
        f.gateways,
        f.kv_devices,
        f.value_bytes,
        f.put_s,
        spread_with(&f.devices_nats_s, 2),
        f.listed,
        f.get_per_key_s,
        args.rounds
    );
    let (kv_devices, devices_nats_s) = (f.kv_devices, median(f.devices_nats_s.clone()));
    Ok((
        md,
        json!({"kv": f, "kv_devices": kv_devices, "devices_nats_s": devices_nats_s}),
    ))
}

/// The fleet ramp's table and JSON (`fleet` in results.json beside the inventory).
fn fleet_ramp(args: &Args) -> Result<(String, serde_json::Value)> {
    use kettlewatch_tests::bench::fleet;
    let path = if args.fleet_mix.is_relative() {
        kettlewatch_tests::env::workspace().join(&args.fleet_mix)
    } else {
        args.fleet_mix.clone()
    };
    let mix = fleet::Mix::from_home(&path)?;
    let f = fleet::ramp(mix, &args.fleet_steps, 5.0, args.fleet_hold_s)?;
    let mut md = format!(
        "\nEach gateway sends the mix of {}: {:.2} lines a second ({}), each `device` line also a put into the bucket.\n\n| gateways | load | lines offered a second | acknowledged a second | spooled a third in | at the end | dropped | publish failures | publish-to-ack p50 (ms) | p99 (ms) | max (ms) | servers' CPU (% of one) | gateways' CPU | sustained |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        f.mix.from,
        f.mix.per_s(),
        f.mix
            .parts
            .iter()
            .map(|p| format!("{} {:.3}/s of {} B", p.event_type, p.per_s, p.bytes))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for s in f.steps.iter().chain(&f.overload) {
        md += &format!(
            "| {} | {}x | {:.0} | {:.0} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {} |\n",
            s.gateways,
            s.load,
            s.offered_per_s,
            s.acked_per_s,
            s.spooled_third,
            s.spooled_end,
            s.dropped,
            s.errors,
            s.p50_publish_ms,
            s.p99_publish_ms,
            s.max_publish_ms,
            s.servers_cpu_pct,
            s.gateways_cpu_pct,
            if s.load > 1.0 {
                "(overload)"
            } else {
                yes_no(s.sustained)
            }
        );
    }
    md += &format!(
        "\nSustained: **{} gateways, {:.0} lines a second, p50 {:.1} ms, p99 {:.1} ms**. After the overload the spools drained in {}; {} lines handed to the publishers, {} acknowledged; {} event lines sent, {} messages in the stream ({} lost, {} stored twice). Disk: {:.0} bytes a message in the stream, {:.2} MB a gateway-day (one copy); {:.2} MB a gateway-day on the three servers' disks together (every replica, the bucket's stream included).\n",
        f.gateways,
        f.events_per_s,
        f.p50_publish_ms,
        f.p99_publish_ms,
        f.drain_s
            .map_or("more than 600 s".to_string(), |d| format!("{d:.1} s")),
        f.lines_sent,
        f.lines_acked,
        f.events_sent,
        f.stream_messages,
        f.lost,
        f.stored_twice,
        f.stream_bytes_per_message,
        f.stream_mb_per_gateway_day,
        f.cluster_disk_mb_per_gateway_day
    );
    let js = json!({
        "gateways": f.gateways, "events_per_s": f.events_per_s,
        "p99_publish_ms": f.p99_publish_ms,
        "disk_mb_per_gateway_day": f.cluster_disk_mb_per_gateway_day, "ramp": f,
    });
    Ok((md, js))
}

/// A partial run's files: `<name>.md` and `<name>.json` in the output directory, and the
/// table on standard output.
fn write_part(args: &Args, name: &str, md: &str, js: &serde_json::Value) -> Result<()> {
    std::fs::write(args.out.join(format!("{name}.md")), md)?;
    std::fs::write(
        args.out.join(format!("{name}.json")),
        serde_json::to_string_pretty(js)?,
    )?;
    println!("{md}");
    Ok(())
}

/// Alert latency is measured with no other flows, with idle flows that changed polls
/// read, and with idle flows that every poll sweeps (the whole map read and compared,
/// which the sensor does once every `flow_sweep_interval`).
const LATENCY_BACKGROUNDS: [(u32, bool); 3] = [(0, false), (100_000, false), (200_000, true)];

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    if args.e2e_only {
        let (md, js) = e2e(&args)?;
        return write_part(&args, "e2e", &md, &js);
    }
    if args.new_flow_steps {
        let rounds = new_flow_steps(args.rounds)?;
        return write_part(
            &args,
            "new_flow_steps",
            &steps_table(&rounds),
            &json!(rounds),
        );
    }
    if args.first_payload_steps {
        let rounds = first_payload::measure(args.rounds)?;
        return write_part(
            &args,
            "first_payload_steps",
            &first_payload::table(&rounds),
            &json!(rounds),
        );
    }
    if args.known_flow_steps {
        let rounds = known_flow::measure(args.rounds)?;
        return write_part(
            &args,
            "known_flow_steps",
            &known_flow::table(&rounds),
            &json!(rounds),
        );
    }
    if let Some((minutes, busy, part)) = args
        .home_minutes
        .map(|m| (m, 15, "home"))
        .or(args.idle_minutes.map(|m| (m, 0, "idle")))
    {
        let h = kettlewatch_tests::bench::userspace::home_profile(20, busy, minutes)?;
        let kept = if busy > 0 {
            "300, +20 a minute"
        } else {
            "none (idle)"
        };
        let md = format!(
            "| devices | destinations kept busy | minutes | flows opened | sensor CPU, share of one CPU | resident memory 30 s in (MB) | at the end | most |\n|---|---|---|---|---|---|---|---|\n| 20 | {kept} | {minutes} | {} | {:.2}% | {:.1} | {:.1} | {:.1} |\n",
            h.flows, h.cpu_pct, h.rss_start_mb, h.rss_end_mb, h.rss_max_mb
        );
        let js = json!({
            "devices": 20, "busy_per_device": busy, "minutes": minutes, "flows": h.flows,
            "cpu_pct": h.cpu_pct, "rss_start_mb": h.rss_start_mb,
            "rss_end_mb": h.rss_end_mb, "rss_max_mb": h.rss_max_mb, "events": h.events,
        });
        return write_part(&args, part, &md, &js);
    }
    if args.fleet_ramp_only {
        let (md, js) = fleet_ramp(&args)?;
        return write_part(&args, "fleet-ramp", &md, &json!({ "fleet": js }));
    }
    if args.fleet_kv_only {
        let (md, js) = fleet_kv(&args)?;
        return write_part(&args, "fleet-kv", &md, &json!({ "fleet": js }));
    }
    if args.pipeline_only {
        let flows = if args.pipeline_flows.is_empty() {
            vec![65_536, 1_000_000]
        } else {
            args.pipeline_flows.clone()
        };
        let (md, js) = pipeline_table(&flows)?;
        return write_part(&args, "pipeline", &md, &json!(js));
    }
    if args.latency_only {
        let mut md = String::from(
            "| idle flows polled meanwhile | every poll a sweep | round | alerts | p50 (us) | p99 (us) |\n|---|---|---|---|---|---|\n",
        );
        let mut js = Vec::new();
        for (background, sweeps) in LATENCY_BACKGROUNDS {
            for round in 1..=args.rounds {
                let (p50, p99, n) = alert_latency(background, sweeps)?;
                md += &format!(
                    "| {background} | {} | {round} | {n} | {p50:.0} | {p99:.0} |\n",
                    yes_no(sweeps)
                );
                js.push(json!({"background_flows": background, "sweep_every_poll": sweeps, "alerts": n, "p50_us": p50, "p99_us": p99}));
            }
        }
        return write_part(&args, "latency", &md, &json!(js));
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
                prog(&mut l.bench, maps::BENCH_PASS_PROGRAM)?,
                &f,
                REPEAT,
            )?);
            parse.push(repeat_ns(
                prog(&mut l.bench, maps::BENCH_PARSE_PROGRAM)?,
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
            let s = l.maps.stats.read()?;
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
    if args.frames_only {
        std::fs::write(args.out.join("frames.md"), &md)?;
        std::fs::write(
            args.out.join("frames.json"),
            serde_json::to_string_pretty(&js)?,
        )?;
        println!("{md}");
        return Ok(());
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
    let (pipe_md, pipe_js) = pipeline_table(&[65_536, 1_000_000])?;
    md += &pipe_md;
    md += "\nNew flow, step by step:\n\n";
    md += &steps_table(&new_flow_steps(args.rounds)?);
    md += "\nKnown flow at random among 64k, step by step:\n\n";
    let known_steps = known_flow::measure(args.rounds)?;
    md += &known_flow::table(&known_steps);
    md += "\nA flow's first payload, step by step:\n\n";
    let payload_steps = first_payload::measure(args.rounds)?;
    md += &first_payload::table(&payload_steps);
    md += "\nAlert latency (kernel stamp of the first packet to the alert line handed to the output), live lab, 2,000 alerts a round:\n\n| idle flows polled meanwhile | every poll a sweep | alerts | p50 (us) | p99 (us) |\n|---|---|---|---|---|\n";
    let mut latency_js = Vec::new();
    for (background, sweeps) in LATENCY_BACKGROUNDS {
        let (p50, p99, n) = alert_latency(background, sweeps)?;
        md += &format!(
            "| {background} | {} | {n} | {p50:.0} | {p99:.0} |\n",
            yes_no(sweeps)
        );
        latency_js.push(json!({"background_flows": background, "sweep_every_poll": sweeps, "alerts": n, "p50_us": p50, "p99_us": p99}));
    }
    md += "\n| intel prefixes | load: read, parse, check, merge, write the trie (ms) | userspace resident growth (MB) | kernel trie memory (MB) | new flow, one-shot (ns) |\n|---|---|---|---|---|\n";
    let mut intel_js = Vec::new();
    for n in [0u32, 10_000, 1_000_000] {
        let (ms, rss, kmem, new) = intel_load(n)?;
        md += &format!("| {n} | {ms:.0} | {rss:.1} | {kmem:.1} | {new:.1} |\n");
        intel_js.push(json!({"prefixes": n, "load_ms": ms, "rss_growth_mb": rss, "kernel_mb": kmem, "new_flow_one_shot_ns": new}));
    }
    // Live-frames BPF_PROG_TEST_RUN is refused on some kernels (EPERM on a Firecracker
    // 6.18 guest): the rest of the run is still worth its file.
    let (e2e_md, e2e_js) = e2e(&args).unwrap_or_else(|e| {
        (
            format!("\nEnd to end: could not run here: {e:#}\n"),
            json!({ "error": format!("{e:#}") }),
        )
    });
    md += &e2e_md;
    let (fleet_md, fleet_js) = fleet_kv(&args).unwrap_or_else(|e| {
        (
            format!("\nFleet inventory: could not run here: {e:#}\n"),
            json!({ "error": format!("{e:#}") }),
        )
    });
    md += &fleet_md;
    let (ramp_md, ramp_js) = fleet_ramp(&args).unwrap_or_else(|e| {
        (
            format!("\nFleet ramp: could not run here: {e:#}\n"),
            json!({ "error": format!("{e:#}") }),
        )
    });
    md += &ramp_md;
    // One `fleet` object: the inventory's keys and the ramp's side by side.
    let mut fleet_js = fleet_js;
    if let (Some(f), serde_json::Value::Object(r)) = (fleet_js.as_object_mut(), ramp_js) {
        f.extend(r);
    }
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
            &json!({"machine": note.trim(), "rows": js, "scale": scale_js, "intel": intel_js, "pipeline": pipe_js, "alert_latency": latency_js, "known_flow_steps": known_steps, "first_payload_steps": payload_steps, "end_to_end": e2e_js, "fleet": fleet_js}),
        )?,
    )?;
    println!("{md}");
    Ok(())
}
