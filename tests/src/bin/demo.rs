//! `cargo xtask demo`: a lab of simulated IoT devices behind a gateway, the sensor on the
//! gateway's LAN interface, its readable view (`--format text`) on the terminal and its EVE
//! JSON in `target/kettlewatch-demo/eve.json`, until Ctrl-C or `--duration`. The lab is
//! torn down on every exit path (its guards drop).

use sensor_common::MacAddr;

use std::{
    io::{Read as _, Write as _},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use clap::Parser;
use kettlewatch_tests::{
    announce,
    env::TempDir,
    lab::{GW_V4, Lab, SERVERS_V4, SERVERS_V6},
    proc::Sensor,
};

#[derive(Parser)]
struct Args {
    /// The kettlewatch binary.
    #[arg(long)]
    sensor: PathBuf,
    /// Stop after this many seconds.
    #[arg(long)]
    duration: Option<u64>,
    /// Where the console listens (another free port if this one is taken).
    #[arg(long, default_value = "127.0.0.1:9561")]
    console: SocketAddr,
}

fn main() -> Result<()> {
    let args = Args::parse();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the demo builds network namespaces and loads eBPF: run it as root");
    }
    // SAFETY: still single-threaded.
    unsafe { std::env::set_var("KETTLEWATCH_BIN", &args.sensor) };
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || s.store(true, Ordering::SeqCst))?;

    let lab = Lab::build(3);
    let names = ["lobby-camera", "smart-plug", "kitchen-speaker"];
    eprintln!("kettlewatch demo: a gateway ({}) with", lab.gw.name);
    for (d, n) in lab.devices.iter().zip(names) {
        eprintln!("  {n:<16} {} {} {}", d.mac, d.v4, d.v6);
    }
    eprintln!("  servers {:?} in the \"internet\" namespace", SERVERS_V4);
    eprintln!("Declared: lobby-camera, smart-plug, and a garage-sensor that never shows up.");
    eprintln!(
        "The camera has a declared policy (cloud 203.0.113.10 only): its telnet attempt alerts."
    );
    eprintln!("Ctrl-C stops the sensor (it flushes its last records) and removes the lab.\n");

    let dir = TempDir::new();
    let cfg = dir.join("demo.toml");
    // The camera and the plug are declared; the speaker is not (a new_device alert), and a
    // declared garage sensor never shows up (a missing_device alert after 15 s).
    let mac = |m: MacAddr| m.to_string();
    std::fs::write(
        &cfg,
        format!(
            "[sensor]\nname = \"demo-gw\"\npoll_interval = \"1s\"\nflow_report = \"5s\"\nstats_interval = \"10s\"\n\n\
             [inventory]\nmissing_after = \"15s\"\n\n\
             [[policy]]\nname = \"lobby-camera\"\nallow = [\"203.0.113.10:443/tcp\", \"203.0.113.10:5004/udp\"]\n\n\
             [[device]]\nmac = \"{}\"\nname = \"lobby-camera\"\ncategory = \"camera\"\ncriticality = \"high\"\npolicy = \"lobby-camera\"\n\n\
             [[device]]\nmac = \"{}\"\nname = \"smart-plug\"\ncategory = \"plug-switch\"\ncriticality = \"low\"\n\n\
             [[device]]\nmac = \"02:00:5e:10:00:99\"\nname = \"garage-sensor\"\ncategory = \"thermostat-sensor\"\n",
            mac(lab.devices[0].mac),
            mac(lab.devices[1].mac)
        ),
    )?;
    let mut workers = Vec::new();
    for (addr, port) in [(SERVERS_V4[0], 443), (SERVERS_V4[1], 8883)] {
        let stop = stop.clone();
        workers.push(
            lab.inet
                .spawn(move || serve_tcp(SocketAddr::new(addr.into(), port), &stop)),
        );
    }
    // The terminal shows the readable view; the EVE JSON a SIEM would read goes to a file
    // that outlives the demo.
    let json_dir = kettlewatch_tests::env::workspace().join("target/kettlewatch-demo");
    std::fs::create_dir_all(&json_dir)?;
    let json = json_dir.join("eve.json");
    let _ = std::fs::remove_file(&json);
    eprintln!("EVE JSON lines: {}\n", json.display());
    let state = dir.join("state");
    let sensor_args = [
        "--state-dir",
        state.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        json.to_str().unwrap(),
        "--format",
        "text",
    ];
    let mut sensor = Sensor::start(&lab.gw, "lan0", &sensor_args, true);
    sensor.wait_for_log("watching lan0", Duration::from_secs(30));
    // The sensor runs in the gateway's namespace; the console over its state directory
    // runs here, where a browser on this machine can reach it.
    let console = Console::start(&args.sensor, &state, args.console)?;
    eprintln!(
        "Console: {}/ (each device's story and the alerts; it ends with the demo)\n",
        console.url
    );

    let st = stop.clone();
    workers.push(lab.devices[0].ns.spawn(move || {
        every(&st, |tick| {
            // ONVIF cameras say what they are over WS-Discovery.
            if tick % 30 == 0 {
                udp_send(
                    3702,
                    "239.255.255.250:3702",
                    announce::wsd_onvif_hello("DS-2CD2142FWD-I"),
                );
            }
            tcp_send(SocketAddr::new(SERVERS_V4[0].into(), 443), 1500);
            if tick % 2 == 0 {
                udp_burst(SocketAddr::new(SERVERS_V4[0].into(), 5004), 20, 1200);
            }
            // Now and then the camera reaches for telnet on an address it never used.
            if tick % 30 == 15 {
                tcp_send("203.0.113.99:23".parse().unwrap(), 0);
            }
        })
    }));
    let st = stop.clone();
    workers.push(lab.devices[1].ns.spawn(move || {
        every(&st, |tick| {
            // A Kasa plug answers the app's discovery broadcast.
            if tick % 30 == 1 {
                udp_send(
                    9999,
                    "198.51.100.255:9999",
                    announce::kasa_sysinfo("HS110(EU)", "IOT.SMARTPLUGSWITCH", "kettle"),
                );
            }
            if tick % 3 == 0 {
                tcp_send(SocketAddr::new(SERVERS_V4[1].into(), 8883), 200);
            }
            if tick % 10 == 0 {
                udp_burst(SocketAddr::new(SERVERS_V4[2].into(), 123), 1, 48);
            }
        })
    }));
    let st = stop.clone();
    workers.push(lab.devices[2].ns.spawn(move || {
        every(&st, |tick| {
            if tick % 2 == 0 {
                udp_burst(SocketAddr::new(SERVERS_V6[2].into(), 443), 5, 1000);
            }
            // A cast speaker announces itself over mDNS and looks up its cloud.
            if tick % 30 == 2 {
                udp_send(
                    5353,
                    "224.0.0.251:5353",
                    announce::mdns_cast_speaker("kitchen-speaker", "Google Home Mini"),
                );
            }
            if tick % 5 == 0 {
                udp_send(
                    0,
                    &format!("{GW_V4}:53"),
                    announce::dns_query(tick as u16, "clients3.google.com"),
                );
            }
        })
    }));

    let start = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if args
            .duration
            .is_some_and(|d| start.elapsed() >= Duration::from_secs(d))
        {
            stop.store(true, Ordering::SeqCst);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for w in workers {
        let _ = w.join();
    }
    let out = sensor.stop();
    let lines = std::fs::read_to_string(&json).map_or(0, |t| t.lines().count());
    eprintln!(
        "\nkettlewatch demo: sensor stopped ({}); {lines} EVE lines in {}; removing the lab",
        out.status,
        json.display()
    );
    drop(console);
    drop(lab);
    if !out.status.success() {
        bail!("the sensor failed:\n{}", out.stderr);
    }
    Ok(())
}

/// `kettlewatch console` over the demo's state directory, killed on drop.
struct Console {
    child: std::process::Child,
    url: String,
}

impl Console {
    fn start(bin: &std::path::Path, state: &std::path::Path, at: SocketAddr) -> Result<Self> {
        for listen in [at, SocketAddr::new(at.ip(), 0)] {
            let mut child = std::process::Command::new(bin)
                .args([
                    "console",
                    "--name",
                    "demo-gw",
                    "--listen",
                    &listen.to_string(),
                ])
                .arg("--state-dir")
                .arg(state)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()?;
            let stderr = child.stderr.take().expect("piped");
            let mut said = String::new();
            let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
            while let Some(line) = lines.next() {
                let line = line?;
                if let Some(url) = line.strip_prefix("console at ") {
                    let url = url.trim().trim_end_matches('/').to_string();
                    // Read on, so its later messages never meet a closed pipe.
                    std::thread::spawn(move || lines.for_each(drop));
                    return Ok(Self { child, url });
                }
                said.push_str(&line);
                said.push('\n');
            }
            // It ended without listening (the port is taken): the next address.
            let _ = child.wait();
            eprintln!("console on {listen}: {}", said.trim());
        }
        bail!("the console could not start")
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Calls `f(tick)` once a second until `stop`.
fn every(stop: &AtomicBool, mut f: impl FnMut(u64)) {
    let mut tick = 0;
    while !stop.load(Ordering::SeqCst) {
        f(tick);
        tick += 1;
        for _ in 0..10 {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn serve_tcp(addr: SocketAddr, stop: &AtomicBool) {
    let l = TcpListener::bind(addr).expect("bind server");
    l.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        match l.accept() {
            Ok((mut c, _)) => {
                let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn tcp_send(to: SocketAddr, bytes: usize) {
    if let Ok(mut s) = TcpStream::connect_timeout(&to, Duration::from_millis(300)) {
        let _ = s.write_all(&vec![0x42; bytes]);
    }
}

fn udp_burst(to: SocketAddr, n: usize, bytes: usize) {
    let any: IpAddr = if to.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    if let Ok(s) = UdpSocket::bind((any, 0)) {
        for _ in 0..n {
            let _ = s.send_to(&vec![0x17; bytes], to);
        }
    }
}

/// One datagram from `sport` (0: any) on every address.
fn udp_send(sport: u16, to: &str, payload: Vec<u8>) {
    let to: SocketAddr = to.parse().expect("address");
    if let Ok(s) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, sport)) {
        let _ = s.set_broadcast(true);
        let _ = s.send_to(&payload, to);
    }
}
