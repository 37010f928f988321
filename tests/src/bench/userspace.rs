//! The benchmarks' userspace figures: loading a large feed, alert latency on a live lab,
//! the ring-buffer-to-poll pipeline, and the known-flow cost and poll time at scale.

use anyhow::{Context as _, Result};
use sensor_common::maps;
use sensor_user::{
    config::SensorConfig,
    kernel::loader::{self, MapSizes},
    kernel::maps::KernelMaps,
};

use super::run::{Kind, cpu_ms, median, prog, repeat_ns, rss_kb};

/// Loads `n` IPv4 prefixes (/30s in 11.0.0.0/8) from a plain feed file the way the sensor
/// does (read, parse, check, merge, write the trie); returns load time (ms), userspace
/// resident growth (MB), the trie's kernel memory (MB), and then a new flow's one-shot
/// cost (ns) with them loaded.
pub fn intel_load(n: u32) -> Result<(f64, f64, f64, f64)> {
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
    let mut ebpf = loader::load(MapSizes::from(&SensorConfig::default()), loader::Mode::LIVE)?;
    let (_maps, mut ring) = KernelMaps::take(&mut ebpf)?;
    let mut intel = sensor_user::kernel::maps::intel::IntelMaps::take(&mut ebpf)?;
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

/// Alert latency on a live lab: a monitored device with an empty allow-list opens 2,000
/// new flows (500 a second), each an `unexpected_destination`; the sensor's `iot.latency`
/// gives p50 and p99 from the kernel's stamp on the first packet to the line handed to
/// the output. With `background` > 0 a second device first opens that many allowed flows
/// (no alerts), so every poll during the measurement walks them; with `sweep_every_poll`
/// every poll reads and compares the whole map (a sweep), as the sensor does once every
/// `flow_sweep_interval`. Returns (p50 us, p99 us, alerts measured).
pub fn alert_latency(background: u32, sweep_every_poll: bool) -> Result<(f64, f64, u64)> {
    use crate::{lab::Lab, proc::Sensor};
    let bin = crate::env::workspace().join("target/release/kettlewatch");
    // SAFETY: the benchmark is single-threaded here.
    unsafe { std::env::set_var("KETTLEWATCH_BIN", &bin) };
    let lab = Lab::build(2);
    let dir = crate::env::TempDir::new();
    let cfg = dir.join("kw.toml");
    std::fs::write(
        &cfg,
        format!(
            "[sensor]\nstats_interval = \"1s\"\nmax_flows = 262144\n{}[baseline]\nmode = \"monitor\"\n\
             [[policy]]\nname = \"measured\"\ndevices = [\"{}\"]\nallow = []\n\
             [[policy]]\nname = \"background\"\ndevices = [\"{}\"]\nallow = [\"2001:db8:3::/48\"]\n",
            if sweep_every_poll {
                "flow_sweep_interval = \"1s\"\n"
            } else {
                ""
            },
            lab.devices[0].mac,
            lab.devices[1].mac
        ),
    )?;
    let mut sensor = Sensor::start(&lab.gw, "lan0", &["--config", cfg.to_str().unwrap()], false);
    sensor.wait_for_log("watching lan0", std::time::Duration::from_secs(30));
    if background > 0 {
        let from: std::net::IpAddr = lab.devices[1].v6.into();
        lab.devices[1].ns.run(move || {
            let s = std::net::UdpSocket::bind((from, 0)).unwrap();
            for i in 0..background {
                let to = std::net::SocketAddr::from((
                    std::net::Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, (i >> 16) as u16, i as u16),
                    443,
                ));
                let _ = s.send_to(b"x", to);
            }
        });
        // Long enough for the ring's records to be taken in and a few polls to see them.
        std::thread::sleep(std::time::Duration::from_secs(5));
    }
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
    let last = crate::events::last_stats_line(&out.stdout).context("a stats line")?;
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
pub struct Pipeline {
    /// Ring-buffer events taken in per second of userspace time.
    pub events_per_s: f64,
    /// The first poll (a whole read), read and processed.
    pub first_poll_ms: f64,
    /// Resident growth after it.
    pub rss_growth_mb: f64,
    /// A poll after 1% of the flows changed: (wall ms, CPU ms).
    pub steady: (f64, f64),
    /// A sweep after 1% of the flows changed: (wall ms, CPU ms).
    pub sweep: (f64, f64),
    /// The sweep's slices as live mode takes them (between two of which the ring buffer
    /// is read): median, 99th percentile and longest (ms), and how many.
    pub slices: (f64, f64, f64, usize),
    /// The default interval between sweeps (s).
    pub sweep_every_s: f64,
}

pub fn pipeline(live: u32) -> Result<Pipeline> {
    use sensor_user::{
        emit::eve::Eve,
        emit::{output::Output, sinks::Sinks},
        engine::{build, writes::KernelWrites},
        model::clock,
    };
    let sizes = MapSizes {
        flows: live + live / 4,
        ..MapSizes::from(&SensorConfig::default())
    };
    let mut ebpf = loader::load(sizes, loader::Mode::LIVE)?;
    let (mut maps, mut ring) = KernelMaps::take(&mut ebpf)?;
    let sweep_every = *SensorConfig::default().flow_sweep_interval.get_ref();
    maps.flows.read_changes(sweep_every);
    let pm =
        sensor_user::kernel::maps::policy::PolicyMaps::take(&mut ebpf, maps.generations.clone())?;
    let im = sensor_user::kernel::maps::intel::IntelMaps::take(&mut ebpf)?;
    let config = sensor_user::config::Config::default();
    // The classifier before the resident baseline, as before: the figure is the tables'.
    let builder = build::Builder::new(&config)?;
    let now = clock::realtime_ns();
    let eve = Eve {
        host: "bench".into(),
        in_iface: "bench0".into(),
        time: clock::TimeBase::live(),
        flow_id_seed: 0,
    };
    let parts = build::Parts {
        eve,
        sinks: Sinks::new(Output::open("/dev/null", 65_536)?),
        store: None,
        kernel: Some(KernelWrites::new(pm, im)),
        local: Vec::new(),
    };
    let rss0 = rss_kb();
    let mut sensor = builder.build(parts, now)?;
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
    let read = sensor_user::engine::sensor::PollRead::read(&maps, clock::realtime_ns());
    let read_ms = t.elapsed().as_secs_f64() * 1e3;
    sensor.apply_poll(read);
    let poll_ms = t.elapsed().as_secs_f64() * 1e3;
    eprintln!("{live} flows: first poll {poll_ms:.0} ms, of which the kernel read {read_ms:.0} ms");
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
    // The same again, as a sweep: the whole map read and compared, which the sensor does
    // every flow_sweep_interval (and whenever the change log overflowed).
    for i in (0..live).step_by(100) {
        repeat_ns(sensor_prog, &Kind::V4Tcp.frame(i), 1)?;
    }
    maps.flows.sweep_next();
    // Taken in a slice at a time, as live mode does: each slice is what an alert raised
    // meanwhile waits for at most.
    sensor.slice_polls(true);
    let cpu0 = cpu_ms();
    let t = std::time::Instant::now();
    let read = sensor_user::engine::sensor::PollRead::read(&maps, clock::realtime_ns());
    let mut slices = Vec::new();
    if sensor.apply_poll(read).is_none() {
        loop {
            let s = std::time::Instant::now();
            let done = sensor.fold_slice(sensor_user::ingest::live::POLL_ROWS_PER_SLICE);
            slices.push(s.elapsed().as_secs_f64() * 1e3);
            if *slices.last().unwrap() > 1.0 {
                eprintln!(
                    "TMP slice {} of {:.2} ms, done {}",
                    slices.len(),
                    slices.last().unwrap(),
                    done.is_some()
                );
            }
            if done.is_some() {
                break;
            }
        }
    }
    let sweep = (t.elapsed().as_secs_f64() * 1e3, cpu_ms() - cpu0);
    anyhow::ensure!(
        slices.len() * sensor_user::ingest::live::POLL_ROWS_PER_SLICE >= live as usize,
        "the sweep of {live} flows took {} slices",
        slices.len()
    );
    let count = slices.len();
    slices.sort_by(f64::total_cmp);
    let pick = |q: f64| slices[((count - 1) as f64 * q).round() as usize];
    let slices = (pick(0.5), pick(0.99), slices[count - 1], count);
    let (sweeps, overflows) = maps.flows.sweeps();
    anyhow::ensure!(
        (sweeps, overflows) == (2, 0),
        "expected the first poll and the forced one to be the only sweeps, got {sweeps} ({overflows} forced by the log)"
    );
    Ok(Pipeline {
        events_per_s: events as f64 / user.as_secs_f64(),
        first_poll_ms: poll_ms,
        rss_growth_mb: rss_mb,
        steady,
        sweep,
        slices,
        sweep_every_s: sweep_every.as_secs_f64(),
    })
}

/// Known-flow cost and poll time with `live` flows in the map.
pub type Scale = (f64, (f64, f64), f64, f64, f64);

pub fn scale(live: u32, empty_one_shot: f64) -> Result<Scale> {
    let sizes = MapSizes {
        flows: live + live / 4,
        ..MapSizes::from(&SensorConfig::default())
    };
    let mut ebpf = loader::load(sizes, loader::Mode::LIVE)?;
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
    let s = maps.stats.read()?;
    anyhow::ensure!(
        s[sensor_common::stats::NEW_FLOWS as usize] == u64::from(live),
        "populating {live} flows created {}",
        s[sensor_common::stats::NEW_FLOWS as usize]
    );
    let time = |maps: &KernelMaps| -> Result<f64> {
        let t = std::time::Instant::now();
        let n = maps.flows.all()?.len();
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
                let n = maps.flows.rows()?.len();
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

/// What the sensor costs on a home router: `devices` devices, each keeping
/// `per_device` destinations busy (a datagram to each every 2 s) and opening one new
/// destination a minute, for `minutes`; with `per_device` 0 the devices send nothing (an
/// idle sensor). Samples the sensor's CPU time and resident memory every 10 s from /proc.
pub struct HomeProfile {
    /// Flows the sensor saw opened.
    pub flows: u64,
    /// Its CPU time over the run, as a share of one CPU (%).
    pub cpu_pct: f64,
    /// Resident memory 30 s in, at the end, and the most seen (MB).
    pub rss_start_mb: f64,
    pub rss_end_mb: f64,
    pub rss_max_mb: f64,
    /// The events it wrote, by `event_type`: how many and their bytes (the mix the fleet
    /// benchmark's simulated gateways send).
    pub events: std::collections::BTreeMap<String, EventCount>,
}

/// One event type's share of a run's output.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct EventCount {
    /// Events written.
    pub count: u64,
    /// Their bytes, the newline left out.
    pub bytes: u64,
}

/// Events by `event_type` in an EVE stream.
pub fn event_mix(eve: &str) -> std::collections::BTreeMap<String, EventCount> {
    let mut mix = std::collections::BTreeMap::<String, EventCount>::new();
    for line in eve.lines().filter(|l| l.starts_with('{')) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let t = v["event_type"].as_str().unwrap_or("event").to_string();
        let e = mix.entry(t).or_default();
        e.count += 1;
        e.bytes += line.len() as u64;
    }
    mix
}

pub fn home_profile(devices: usize, per_device: u16, minutes: u64) -> Result<HomeProfile> {
    use crate::{lab::Lab, proc::Sensor};
    let bin = crate::env::workspace().join("target/release/kettlewatch");
    // SAFETY: the benchmark is single-threaded here.
    unsafe { std::env::set_var("KETTLEWATCH_BIN", &bin) };
    let lab = Lab::build(devices);
    let mut sensor = Sensor::start(&lab.gw, "lan0", &[], false);
    sensor.wait_for_log("watching lan0", std::time::Duration::from_secs(30));
    let pid = sensor.pid();
    let proc_stat = move || -> Option<(f64, f64)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces): utime is the 12th.
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let rss_kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some((ticks / hz * 1e3, rss_kb / 1024.0))
    };
    let end = std::time::Instant::now() + std::time::Duration::from_secs(minutes * 60);
    let mut senders = Vec::new();
    for (i, d) in lab.devices.iter().enumerate().filter(|_| per_device > 0) {
        let from: std::net::IpAddr = d.v6.into();
        senders.push(d.ns.spawn(move || {
            let s = std::net::UdpSocket::bind((from, 0)).unwrap();
            let dest = |n: u16| {
                std::net::SocketAddr::from((
                    std::net::Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0x100 + i as u16, n),
                    443,
                ))
            };
            let mut open = per_device;
            let mut last_new = std::time::Instant::now();
            while std::time::Instant::now() < end {
                for n in 0..open {
                    let _ = s.send_to(b"kettle status", dest(n));
                }
                if last_new.elapsed() >= std::time::Duration::from_secs(60) {
                    open += 1;
                    last_new = std::time::Instant::now();
                }
                std::thread::sleep(std::time::Duration::from_secs(2));
            }
        }));
    }
    std::thread::sleep(std::time::Duration::from_secs(30));
    let (cpu0, rss_start) = proc_stat().context("the sensor's /proc entry")?;
    let t0 = std::time::Instant::now();
    let mut rss_max = rss_start;
    let mut last = (cpu0, rss_start);
    while std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_secs(10));
        if let Some(s) = proc_stat() {
            rss_max = rss_max.max(s.1);
            last = s;
        }
    }
    let wall_ms = t0.elapsed().as_secs_f64() * 1e3;
    for s in senders {
        let _ = s.join();
    }
    let out = sensor.stop();
    let stats = crate::events::last_stats_line(&out.stdout).context("a stats line")?;
    Ok(HomeProfile {
        flows: stats["kernel"]["new_flows"].as_u64().unwrap_or(0),
        cpu_pct: (last.0 - cpu0) / wall_ms * 100.0,
        rss_start_mb: rss_start,
        rss_end_mb: last.1,
        rss_max_mb: rss_max,
        events: event_mix(&out.stdout.join("\n")),
    })
}
