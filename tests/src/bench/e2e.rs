//! End to end through a veth pair: frames made in the kernel on one end (the object's
//! `kw_bench_gen` run with BPF_PROG_TEST_RUN in live-frames mode, XDP_TX to the peer),
//! counted on the other end by the sensor or by what users run instead. Every count is
//! reconciled: frames sent, frames that reached the receiving interface, frames counted.

use std::{
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use aya::{
    Ebpf,
    programs::{TestRun as _, TestRunAttrs, TestRunOptions, Xdp, XdpMode},
};
use sensor_common::{MacAddr, maps, proto};
use sensor_user::kernel::loader;

use crate::{
    frames::{self, cat, eth, ethertype as et},
    netns::Netns,
    proc::Sensor,
};

/// Who counts the frames on the receiving end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// An empty XDP program (XDP_PASS): the ceiling; counted by the interface.
    EmptyXdp,
    /// `kettlewatch run` on the interface: its kernel `frames` counter.
    Sensor,
    /// `tcpdump -w /dev/null` (AF_PACKET through libpcap): packets captured.
    Tcpdump,
    /// pmacct's `pmacctd`, memory plugin, per source and destination host.
    Pmacctd,
    /// `softflowd`, flows per host pair and ports: packets processed.
    Softflowd,
}

impl Counter {
    /// All of them, the ceiling first.
    pub const ALL: [Counter; 5] = [
        Counter::EmptyXdp,
        Counter::Sensor,
        Counter::Tcpdump,
        Counter::Pmacctd,
        Counter::Softflowd,
    ];

    /// Its name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Counter::EmptyXdp => "empty XDP program",
            Counter::Sensor => "kettlewatch (XDP, counters per flow)",
            Counter::Tcpdump => "tcpdump -w /dev/null (AF_PACKET)",
            Counter::Pmacctd => "pmacctd (libpcap, per host pair)",
            Counter::Softflowd => "softflowd (libpcap, per flow)",
        }
    }

    fn tool(self) -> Option<&'static str> {
        match self {
            Counter::Tcpdump => Some("tcpdump"),
            Counter::Pmacctd => Some("pmacctd"),
            Counter::Softflowd => Some("softflowd"),
            _ => None,
        }
    }
}

/// One run of one counter.
#[derive(Clone, Debug)]
pub struct Run {
    /// Who counted.
    pub counter: Counter,
    /// Frames the generator made.
    pub sent: u64,
    /// Frames the receiving interface took in (its rx_packets).
    pub reached: u64,
    /// Frames the receiving interface dropped before any program saw them (its ring full).
    pub dropped_at_rx: u64,
    /// Frames the counter says it counted.
    pub counted: u64,
    /// Frames the counter says it lost (kernel drops it reports), when it reports them.
    pub lost_reported: Option<u64>,
    /// Seconds the generator ran.
    pub secs: f64,
}

impl Run {
    /// Frames counted per second of generation.
    pub fn rate(&self) -> f64 {
        self.counted as f64 / self.secs
    }
}

/// The two namespaces and the veth between them, removed on drop.
pub struct Pair {
    src_ns: Netns,
    rx_ns: Netns,
    tx_ifindex: u32,
    source: Option<Ebpf>,
    dir: crate::env::TempDir,
}

const TX_MAC: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x17]);
const RX_MAC: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x01]);

impl Pair {
    /// Builds the pair and loads the generator.
    pub fn new() -> Result<Self> {
        crate::netns::sweep_stale();
        let p = crate::env::unique("");
        let src_ns = Netns::new(&format!("{p}-gen"));
        let rx_ns = Netns::new(&format!("{p}-rx"));
        for ns in [&src_ns, &rx_ns] {
            // Neither end sends anything of its own (no IPv6 router solicitations or MLD
            // reports in the counts).
            ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1");
            ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1");
        }
        src_ns.ip(&[
            "link",
            "add",
            "tx0",
            "type",
            "veth",
            "peer",
            "name",
            "rx0",
            "netns",
            &rx_ns.name,
        ]);
        src_ns.ip(&[
            "link",
            "set",
            "tx0",
            "address",
            &crate::lab::mac_str(TX_MAC),
        ]);
        rx_ns.ip(&[
            "link",
            "set",
            "rx0",
            "address",
            &crate::lab::mac_str(RX_MAC),
        ]);
        src_ns.ip(&["link", "set", "tx0", "up"]);
        rx_ns.ip(&["link", "set", "rx0", "up"]);
        let tx_ifindex = src_ns.run(|| {
            // SAFETY: a NUL-terminated name.
            unsafe { libc::if_nametoindex(c"tx0".as_ptr()) }
        });
        ensure!(tx_ifindex != 0, "tx0 has no ifindex");
        let mut source = Ebpf::load(loader::BENCH_OBJECT).context("the benchmark object")?;
        xdp(&mut source, maps::BENCH_GEN_PROGRAM)?.load()?;
        Ok(Self {
            src_ns,
            rx_ns,
            tx_ifindex,
            source: Some(source),
            dir: crate::env::TempDir::new(),
        })
    }

    /// The receiving interface's (rx_packets, rx_dropped).
    fn rx_stats(&self) -> Result<(u64, u64)> {
        let out = self.rx_ns.ip(&["-s", "-j", "link", "show", "rx0"]);
        let v: serde_json::Value = serde_json::from_str(&out)?;
        let rx = &v[0]["stats64"]["rx"];
        Ok((
            rx["packets"].as_u64().context("rx packets")?,
            rx["dropped"].as_u64().context("rx dropped")?,
        ))
    }

    /// Makes `frames` frames in the kernel and sends them to rx0; returns the seconds it took.
    fn generate(&mut self, frames: u32) -> Result<f64> {
        let mut source = self.source.take().context("generator")?;
        let ifindex = self.tx_ifindex;
        let (source, secs) = self.src_ns.run(move || -> Result<(Ebpf, f64)> {
            let frame = frame();
            // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
            // egress_ifindex. Live frames leave through ingress_ifindex on XDP_TX.
            let mut ctx = [0u8; 24];
            ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
            ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
            let t = Instant::now();
            xdp(&mut source, maps::BENCH_GEN_PROGRAM)?
                .test_run(TestRunOptions {
                    data_in: Some(&frame),
                    ctx_in: Some(&ctx),
                    repeat: frames,
                    attrs: TestRunAttrs::new().xdp_live_frames(64),
                    ..TestRunOptions::default()
                })
                .context("BPF_PROG_TEST_RUN, live frames")?;
            Ok((source, t.elapsed().as_secs_f64()))
        })?;
        self.source = Some(source);
        Ok(secs)
    }

    /// One run: `counter` on rx0, `frames` frames sent.
    pub fn run(
        &mut self,
        counter: Counter,
        frames: u32,
        sensor_bin: &std::path::Path,
    ) -> Result<Run> {
        if let Some(tool) = counter.tool() {
            ensure!(crate::env::have_tool(tool), "{tool} is not installed");
        }
        // Everything but the sensor runs above the empty program: veth hands frames to a
        // peer over XDP only when the peer has a program (or GRO), as a gateway NIC would
        // run some XDP program anyway.
        let empty = if counter == Counter::Sensor {
            None
        } else {
            Some(self.attach_empty()?)
        };
        let consumer = Consumer::start(counter, &self.rx_ns, &self.dir, sensor_bin)?;
        let (rx0, drop0) = self.rx_stats()?;
        let secs = self.generate(frames)?;
        // Userspace counters drain what is queued for them.
        std::thread::sleep(Duration::from_millis(3000));
        let (rx1, drop1) = self.rx_stats()?;
        let (counted, lost_reported) = consumer.finish(&self.rx_ns)?;
        drop(empty);
        Ok(Run {
            counter,
            sent: u64::from(frames),
            reached: rx1 - rx0,
            dropped_at_rx: drop1 - drop0,
            counted,
            lost_reported,
            secs,
        })
    }

    fn attach_empty(&self) -> Result<Ebpf> {
        self.rx_ns.run(|| -> Result<Ebpf> {
            let mut e = Ebpf::load(loader::BENCH_OBJECT).context("the benchmark object")?;
            let p = xdp(&mut e, maps::BENCH_PASS_PROGRAM)?;
            p.load()?;
            p.attach(c"rx0", XdpMode::Driver)?;
            Ok(e)
        })
    }
}

fn xdp<'a>(e: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp> {
    Ok(e.program_mut(name).context(name.to_string())?.try_into()?)
}

/// The frame the generator copies: IPv4/UDP from a device to a server, 64 bytes on the wire.
fn frame() -> Vec<u8> {
    cat(&[
        &eth(RX_MAC, TX_MAC, &[], et::IPV4),
        &frames::ipv4(
            [198, 51, 100, 23],
            [203, 0, 113, 10],
            proto::UDP,
            &[],
            0,
            &frames::udp(10_000, 443, &[0; 18]),
        ),
    ])
}

/// A counting process (or none, for the empty program) and how to read its count.
enum Consumer {
    None,
    Sensor(Box<Sensor>),
    Tcpdump(Child),
    Pmacctd(Child, std::path::PathBuf),
    Softflowd(Child, std::path::PathBuf),
}

impl Consumer {
    fn start(
        counter: Counter,
        ns: &Netns,
        dir: &crate::env::TempDir,
        sensor_bin: &std::path::Path,
    ) -> Result<Self> {
        Ok(match counter {
            Counter::EmptyXdp => Consumer::None,
            Counter::Sensor => {
                // SAFETY: set before the sensor process starts; nothing reads it concurrently.
                unsafe { std::env::set_var("KETTLEWATCH_BIN", sensor_bin) };
                let cfg = dir.join("kw.toml");
                std::fs::write(&cfg, "[sensor]\nstats_interval = \"1s\"\n")?;
                let mut s = Sensor::start(ns, "rx0", &["--config", cfg.to_str().unwrap()], false);
                s.wait_for_log("watching rx0", Duration::from_secs(30));
                Consumer::Sensor(Box::new(s))
            }
            Counter::Tcpdump => {
                let mut c = ns
                    .cmd("tcpdump")
                    .args(["-i", "rx0", "-n", "-w", "/dev/null"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()?;
                wait_stderr(&mut c, "listening on")?;
                Consumer::Tcpdump(c)
            }
            Counter::Pmacctd => {
                let pipe = dir.join("pmacct.pipe");
                // The buffers pmacct's QUICKSTART suggests for a busy link: its defaults
                // lose most frames between the capture and the memory plugin.
                let conf = dir.join("pmacctd.conf");
                std::fs::write(
                    &conf,
                    format!(
                        "daemonize: false\npcap_interface: rx0\nplugins: memory\naggregate: src_host, dst_host\nimt_path: {}\nplugin_pipe_size: 10240000\nplugin_buffer_size: 10240\n",
                        pipe.display()
                    ),
                )?;
                let c = ns
                    .cmd("pmacctd")
                    .arg("-f")
                    .arg(&conf)
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(dir.join("pmacctd.log"))?)
                    .spawn()?;
                wait_until(|| pmacct_packets(ns, &pipe).is_ok())?;
                Consumer::Pmacctd(c, pipe)
            }
            Counter::Softflowd => {
                let ctl = dir.join("softflowd.ctl");
                let c = ns
                    .cmd("softflowd")
                    .args(["-d", "-i", "rx0", "-n", "127.0.0.1:9995", "-c"])
                    .arg(&ctl)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()?;
                wait_until(|| softflowd_packets(ns, &ctl).is_ok())?;
                Consumer::Softflowd(c, ctl)
            }
        })
    }

    /// Stops the counter; returns (counted, lost it reported).
    fn finish(self, ns: &Netns) -> Result<(u64, Option<u64>)> {
        match self {
            Consumer::None => Ok((0, None)),
            Consumer::Sensor(s) => {
                let out = s.stop();
                let stats = crate::events::last_stats_line(&out.stdout)
                    .context("the sensor wrote no stats line")?;
                let k = &stats["kernel"];
                Ok((k["frames"].as_u64().context("kernel.frames")?, None))
            }
            Consumer::Tcpdump(c) => {
                // SAFETY: signalling our own child.
                unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
                let out = c.wait_with_output()?;
                let err = String::from_utf8_lossy(&out.stderr);
                let n = |what: &str| {
                    err.lines()
                        .find(|l| l.ends_with(what))
                        .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
                };
                Ok((
                    n("packets captured").context(format!("tcpdump said: {err}"))?,
                    n("packets dropped by kernel"),
                ))
            }
            Consumer::Pmacctd(mut c, pipe) => {
                let n = pmacct_packets(ns, &pipe);
                let _ = c.kill();
                let _ = c.wait();
                Ok((n?, None))
            }
            Consumer::Softflowd(mut c, ctl) => {
                let n = softflowd_packets(ns, &ctl);
                let _ = c.kill();
                let _ = c.wait();
                Ok((n?, None))
            }
        }
    }
}

fn wait_stderr(c: &mut Child, needle: &str) -> Result<()> {
    use std::io::Read as _;
    let mut err = c.stderr.take().context("stderr")?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    let start = Instant::now();
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let n = err.read(&mut buf)?;
        if n == 0 || start.elapsed() > Duration::from_secs(20) {
            bail!("never said {needle:?}: {}", String::from_utf8_lossy(&seen));
        }
        seen.extend_from_slice(&buf[..n]);
    }
    // The rest (tcpdump's totals at exit) is read by wait_with_output.
    c.stderr = Some(err);
    Ok(())
}

fn wait_until(ready: impl Fn() -> bool) -> Result<()> {
    let start = Instant::now();
    while !ready() {
        if start.elapsed() > Duration::from_secs(20) {
            bail!("not ready after 20 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // libpcap opens the interface after the control socket exists.
    std::thread::sleep(Duration::from_millis(500));
    Ok(())
}

/// Packets in pmacctd's memory table, summed over its host pairs.
fn pmacct_packets(ns: &Netns, pipe: &std::path::Path) -> Result<u64> {
    let out = ns
        .cmd("pmacct")
        .args(["-s", "-O", "csv", "-p"])
        .arg(pipe)
        .output()?;
    ensure!(out.status.success(), "pmacct -s failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().context("no header")?.split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "PACKETS")
        .context("no PACKETS column")?;
    Ok(lines
        .filter_map(|l| l.split(',').nth(col)?.trim().parse::<u64>().ok())
        .sum())
}

/// Packets softflowd says it processed.
fn softflowd_packets(ns: &Netns, ctl: &std::path::Path) -> Result<u64> {
    let out = ns
        .cmd("softflowctl")
        .arg("-c")
        .arg(ctl)
        .arg("statistics")
        .output()?;
    ensure!(out.status.success(), "softflowctl statistics failed");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            let l = l.trim();
            l.strip_prefix("Number of packets processed:")
                .or_else(|| l.strip_prefix("Packets processed:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .with_context(|| format!("softflowctl said: {text}"))
}

/// Runs every counter `rounds` times, in a rotating order so drift hits each alike.
pub fn measure(frames: u32, rounds: usize, sensor_bin: &std::path::Path) -> Result<Vec<Run>> {
    let mut pair = Pair::new()?;
    let mut runs = Vec::new();
    for r in 0..rounds {
        for i in 0..Counter::ALL.len() {
            let c = Counter::ALL[(i + r) % Counter::ALL.len()];
            let mut run = pair.run(c, frames, sensor_bin)?;
            if c == Counter::EmptyXdp {
                // The empty program counts nothing itself: the interface's count is its count.
                run.counted = run.reached;
            }
            eprintln!(
                "e2e round {r}: {}: sent {}, reached rx0 {}, dropped at rx0 {}, counted {} (lost reported {:?}), {:.2} s, {:.0} frames/s",
                c.name(),
                run.sent,
                run.reached,
                run.dropped_at_rx,
                run.counted,
                run.lost_reported,
                run.secs,
                run.rate()
            );
            runs.push(run);
        }
    }
    Ok(runs)
}
