//! The baseline stage in a namespace lab (sensor-user/src/baseline.rs with the kernel's
//! verdicts): declared policies alert once per device and destination, enforce drops,
//! learning turns into monitoring by itself.

use std::{
    net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use kettlewatch_tests::{
    env::{self, TempDir},
    events,
    lab::{FAST_CONFIG, Lab},
    proc::Sensor,
};
use serde_json::Value;

/// Whether a TCP connection from device `dev` to `to` is established within a second.
fn connects(lab: &Lab, dev: usize, to: &str) -> bool {
    let to: SocketAddr = to.parse().unwrap();
    lab.devices[dev]
        .ns
        .run(move || TcpStream::connect_timeout(&to, Duration::from_secs(1)).is_ok())
}

/// TCP listeners in the lab's "internet" until dropped.
struct Servers {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Servers {
    fn start(lab: &Lab, addrs: &[&str]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = addrs
            .iter()
            .map(|a| {
                let a: SocketAddr = a.parse().unwrap();
                let stop = stop.clone();
                let (tx, rx) = std::sync::mpsc::channel();
                let h = lab.inet.spawn(move || {
                    let l = TcpListener::bind(a).expect("bind server");
                    l.set_nonblocking(true).unwrap();
                    tx.send(()).unwrap();
                    while !stop.load(Ordering::SeqCst) {
                        let _ = l.accept();
                        std::thread::sleep(Duration::from_millis(20));
                    }
                });
                rx.recv().unwrap();
                h
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Resolves `name` from device `dev` through the gateway's DNS; the A records' addresses.
fn resolve(lab: &Lab, dev: usize, name: &str) -> Vec<IpAddr> {
    let from: IpAddr = lab.devices[dev].v4.into();
    let q = kettlewatch_tests::announce::dns_query(0x4b57, name);
    let answer = lab.devices[dev].ns.run(move || {
        let s = UdpSocket::bind((from, 0)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.send_to(&q, "198.51.100.1:53").unwrap();
        let mut buf = [0u8; 1500];
        let n = s.recv(&mut buf).expect("a DNS answer");
        buf[..n].to_vec()
    });
    let p = simple_dns::Packet::parse(&answer).unwrap();
    p.answers
        .iter()
        .filter_map(|rr| match &rr.rdata {
            simple_dns::rdata::RData::A(a) => {
                Some(IpAddr::from(std::net::Ipv4Addr::from(a.address)))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_declared_policy_alerts_once_per_device_and_destination() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(1);
    let me = lab.devices[0].mac.to_string();
    let config = format!(
        "{FAST_CONFIG}[baseline]\nmode = \"monitor\"\n\n[[policy]]\nname = \"cams\"\ndevices = [\"{me}\"]\nallow = [\"203.0.113.10:4242/udp\"]\n"
    );
    let (_dir, sensor) = lab.watch(&config, &[]);
    lab.udp(0, 0, "203.0.113.10:4242", b"hello"); // allowed
    lab.udp(0, 0, "203.0.113.20:4242", b"hello"); // unexpected
    lab.udp(0, 0, "203.0.113.10:5000", b"hello"); // allowed address, new port
    lab.udp(0, 0, "203.0.113.20:4243", b"hello"); // the same unexpected destination again
    lab.udp(0, 0, "198.51.100.1:4242", b"hello"); // the gateway: the LAN is always allowed
    std::thread::sleep(Duration::from_millis(500));
    // More traffic on the alerted flow: its next record carries the repeat count.
    lab.udp(0, 0, "203.0.113.20:4242", b"hello");
    std::thread::sleep(Duration::from_millis(1500));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    let unexpected = events::alerts(&evs, "unexpected_destination");
    assert_eq!(unexpected.len(), 1, "{unexpected:#?}");
    let a = unexpected[0];
    assert_eq!(a["dest_ip"], "203.0.113.20");
    assert_eq!(a["dest_port"], 4242);
    assert_eq!(a["proto"], "UDP");
    assert_eq!(a["src_ip"], lab.devices[0].v4.to_string());
    assert_eq!(a["ether"]["src_mac"], me);
    assert_eq!(a["alert"]["action"], "allowed");
    assert_eq!(a["alert"]["signature_id"], 9_100_001);
    assert_eq!(a["iot"]["rule"]["source"], "declared");
    assert_eq!(
        a["iot"]["rule"]["expected"],
        serde_json::json!(["203.0.113.10:4242/udp"])
    );
    assert!(a["community_id"].as_str().unwrap().starts_with("1:"));
    let port = events::alerts(&evs, "new_port");
    assert_eq!(port.len(), 1, "{port:#?}");
    assert_eq!(
        (port[0]["dest_ip"].as_str(), port[0]["dest_port"].as_u64()),
        (Some("203.0.113.10"), Some(5000))
    );
    // The repeat is in the flow records, not another alert.
    let repeats = events::of_type(&evs, "flow")
        .into_iter()
        .filter(|f| f["dest_ip"] == "203.0.113.20")
        .filter_map(|f| f["iot"]["flow"]["alert_repeats"].as_u64())
        .max();
    assert_eq!(repeats, Some(1));
    let st = events::last_stats(&evs);
    assert_eq!(st["policy"]["alerts"], 2);
    assert_eq!(st["policy"]["repeats"], 1);
}

#[test]
fn enforce_blocks_the_unexpected_connection_and_counts_the_drops() {
    enforce_blocks("[[policy]]\nmode = \"enforce\"\n");
}

#[test]
fn a_global_enforce_blocks_for_a_policy_that_sets_no_mode() {
    enforce_blocks("[baseline]\nmode = \"enforce\"\n[[policy]]\n");
}

/// `mode_and_header` ends in the `[[policy]]` header, with the mode written in the policy or
/// in `[baseline]`; both have to drop the connection the policy does not allow.
fn enforce_blocks(mode_and_header: &str) {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(1);
    let _servers = Servers::start(&lab, &["203.0.113.10:7000", "203.0.113.20:7000"]);
    let me = lab.devices[0].mac.to_string();
    let config = format!(
        "{FAST_CONFIG}{mode_and_header}name = \"locked\"\ndevices = [\"{me}\"]\nallow = [\"203.0.113.10:7000/tcp\"]\n"
    );
    let (_dir, sensor) = lab.watch(&config, &[]);
    // The device's first frame makes it known; its policy is in the kernel a moment later.
    lab.udp(0, 0, "198.51.100.1:9", b"hello");
    let ready = sensor.wait_for_line(
        |l| l.contains("\"event_type\":\"device\""),
        Duration::from_secs(5),
    );
    assert!(ready.is_some());
    std::thread::sleep(Duration::from_millis(300));
    assert!(connects(&lab, 0, "203.0.113.10:7000"), "allowed");
    assert!(
        !connects(&lab, 0, "203.0.113.20:7000"),
        "blocked in the kernel"
    );
    std::thread::sleep(Duration::from_millis(1200));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    let st = events::last_stats(&evs);
    let dropped = st["kernel"]["dropped_policy"].as_u64().unwrap();
    assert!(dropped >= 1, "the SYN at least: {dropped}");
    let a = events::alerts(&evs, "unexpected_destination");
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0]["alert"]["action"], "blocked");
    assert_eq!(a[0]["dest_ip"], "203.0.113.20");
}

#[test]
fn learning_turns_into_monitoring_and_only_new_destinations_alert() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(1);
    let config = format!("{FAST_CONFIG}[baseline]\nmode = \"learn\"\nlearn_for = \"2s\"\n");
    let (_dir, sensor) = lab.watch(&config, &[]);
    lab.udp(0, 0, "203.0.113.10:4242", b"hello");
    lab.udp(0, 0, "203.0.113.30:123", b"hello");
    let switched = sensor.wait_for_line(
        |l| l.contains("\"event_type\":\"stats\"") && l.contains("\"mode\":\"monitor\""),
        Duration::from_secs(10),
    );
    assert!(switched.is_some(), "a stats event says learning ended");
    lab.udp(0, 0, "203.0.113.10:4242", b"hello"); // learned
    lab.udp(0, 0, "203.0.113.20:4242", b"hello"); // new
    std::thread::sleep(Duration::from_millis(1500));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    let a = events::alerts(&evs, "unexpected_destination");
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0]["dest_ip"], "203.0.113.20");
    assert_eq!(a[0]["iot"]["rule"]["source"], "learned");
    let expected: Vec<&str> = a[0]["iot"]["rule"]["expected"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        expected.contains(&"203.0.113.10:4242/udp") && expected.contains(&"203.0.113.30:123/udp"),
        "{expected:?}"
    );
    // The learned destination's flow is allowed now.
    let learned = events::of_type(&evs, "flow")
        .into_iter()
        .rev()
        .find(|f| f["dest_ip"] == "203.0.113.10")
        .unwrap();
    assert_eq!(learned["iot"]["flow"]["verdict"], "allowed", "{learned}");
    assert_eq!(events::last_stats(&evs)["policy"]["learned_entries"], 2);
}

#[test]
fn a_domain_policy_allows_exactly_what_the_device_resolved() {
    if !env::have_root() || !env::have_tool("ip") || !env::have_tool("dnsmasq") {
        return;
    }
    let lab = Lab::build(1);
    let _dns = lab.dnsmasq_dns(&[
        ("cloud.example.com", "203.0.113.10"),
        ("other.example.net", "203.0.113.20"),
    ]);
    let me = lab.devices[0].mac.to_string();
    let config = format!(
        "{FAST_CONFIG}[baseline]\nmode = \"monitor\"\n\n[[policy]]\nname = \"cams\"\ndevices = [\"{me}\"]\nallow = [\"cloud.example.com:4242/udp\"]\n"
    );
    let (_dir, sensor) = lab.watch(&config, &[]);
    // Resolve, then connect at once: the answer reaches the sensor before the new flow.
    let cloud = resolve(&lab, 0, "cloud.example.com");
    assert_eq!(cloud, vec![IpAddr::from([203, 0, 113, 10])]);
    lab.udp(0, 0, "203.0.113.10:4242", b"hello");
    let other = resolve(&lab, 0, "other.example.net");
    assert_eq!(other, vec![IpAddr::from([203, 0, 113, 20])]);
    lab.udp(0, 0, "203.0.113.20:4242", b"hello"); // resolved, but not allowed
    lab.udp(0, 0, "203.0.113.30:4242", b"hello"); // never resolved
    std::thread::sleep(Duration::from_millis(1500));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    let a = events::alerts(&evs, "unexpected_destination");
    let dests: Vec<&str> = a.iter().filter_map(|x| x["dest_ip"].as_str()).collect();
    assert_eq!(dests, ["203.0.113.20", "203.0.113.30"], "{a:#?}");
    assert_eq!(a[0]["iot"]["dns"]["rrname"], "other.example.net");
    assert!(a[1]["iot"].get("dns").is_none());
    assert_eq!(
        a[0]["iot"]["rule"]["expected"],
        serde_json::json!(["cloud.example.com:4242/udp"])
    );
    let st = events::last_stats(&evs);
    assert!(st["policy"]["dns_answers"].as_u64().unwrap() >= 2, "{st}");
    assert!(st["kernel"]["dns_answers_copied"].as_u64().unwrap() >= 2);
}

#[test]
fn a_device_announcing_a_mud_url_gets_the_mud_files_policy() {
    if !env::have_root() || !env::have_tool("ip") || !env::have_tool("dnsmasq") {
        return;
    }
    let fx = env::fixtures();
    let lab = Lab::build(1);
    let _dns = lab.dnsmasq_dns(&[("test.example.com", "203.0.113.10")]);
    // osMUD's copy of the draft's example bulb: from the device, test.example.com:443/tcp.
    let config = format!(
        "{FAST_CONFIG}[baseline]\nmode = \"monitor\"\n\n[mud]\ndir = \"{}\"\n",
        fx.join("mud/osmud").display()
    );
    let (_dir, sensor) = lab.watch(&config, &[]);
    let dev = lab.devices[0].mac;
    let discover = kettlewatch_tests::announce::dhcp_discover_with(
        dev,
        &[(161, b"https://lighting.example.com/lightbulb2000")],
    );
    let from: IpAddr = lab.devices[0].v4.into();
    lab.devices[0].ns.run(move || {
        let s = UdpSocket::bind((from, 68)).unwrap();
        s.set_broadcast(true).unwrap();
        s.send_to(&discover, "255.255.255.255:67").unwrap();
    });
    let announced = sensor.wait_for_line(|l| l.contains("lightbulb2000"), Duration::from_secs(5));
    assert!(announced.is_some(), "the device event shows the MUD URL");
    std::thread::sleep(Duration::from_millis(300));
    let allowed = resolve(&lab, 0, "test.example.com");
    assert_eq!(allowed, vec![IpAddr::from([203, 0, 113, 10])]);
    let _servers = Servers::start(&lab, &["203.0.113.10:443", "203.0.113.20:443"]);
    assert!(connects(&lab, 0, "203.0.113.10:443"));
    assert!(
        connects(&lab, 0, "203.0.113.20:443"),
        "monitor mode lets it through"
    );
    std::thread::sleep(Duration::from_millis(1200));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    // The osMUD folder holds a LICENSE file too: reported, not fatal.
    assert!(
        out.stderr.contains("MUD file not imported"),
        "{}",
        out.stderr
    );
    let evs = events::parse(&out.stdout);
    let a = events::alerts(&evs, "unexpected_destination");
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0]["dest_ip"], "203.0.113.20");
    assert_eq!(a[0]["iot"]["rule"]["source"], "mud");
    assert_eq!(
        a[0]["iot"]["rule"]["expected"],
        serde_json::json!(["test.example.com:443/tcp"])
    );
    let d = events::last_device(&evs, dev.to_string());
    assert_eq!(
        d["iot"]["device"]["mud_url"],
        "https://lighting.example.com/lightbulb2000"
    );
}

#[test]
fn baseline_show_and_export_print_what_was_learned() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(1);
    let state = TempDir::new();
    let sd = state.join("state");
    let dir = TempDir::new();
    let path = dir.join("kw.toml");
    std::fs::write(&path, FAST_CONFIG).unwrap();
    let mut sensor = Sensor::start(
        &lab.gw,
        "lan0",
        &[
            "--config",
            path.to_str().unwrap(),
            "--state-dir",
            sd.to_str().unwrap(),
        ],
        false,
    );
    sensor.wait_for_log("watching lan0", Duration::from_secs(30));
    lab.udp(0, 0, "203.0.113.10:4242", b"hello");
    lab.udp(0, 0, "203.0.113.30:123", b"hello");
    std::thread::sleep(Duration::from_millis(800));
    // kill -9: what was learned is already on disk.
    let _ = sensor.kill9();
    let kw = |args: &[&str]| {
        std::process::Command::new(env::kettlewatch())
            .args(args)
            .arg("--state-dir")
            .arg(&sd)
            .output()
            .unwrap()
    };
    let show = kw(&["baseline", "show"]);
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(
        show.contains(&lab.devices[0].mac.to_string()) && show.contains("203.0.113.10:4242/udp"),
        "{show}"
    );
    let me = lab.devices[0].mac.to_string();
    assert!(
        show.lines()
            .any(|l| l.starts_with(&me) && l.contains("learning")),
        "its learning window (24 h from its first sight) is listed: {show}"
    );
    let export = kw(&["baseline", "export"]);
    assert!(export.status.success());
    let toml = dir.join("learned.toml");
    std::fs::write(&toml, &export.stdout).unwrap();
    let check = std::process::Command::new(env::kettlewatch())
        .args(["check-config", toml.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "export is valid configuration: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let text = String::from_utf8_lossy(&export.stdout);
    assert!(
        text.contains("[[policy]]") && text.contains("\"203.0.113.10:4242/udp\""),
        "{text}"
    );
}

#[test]
fn a_reloaded_policy_applies_to_flows_already_open() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(1);
    let me = lab.devices[0].mac.to_string();
    let policy = |allow: &str, mode: &str| {
        format!(
            "{FAST_CONFIG}[baseline]\nmode = \"monitor\"\n\n[[policy]]\nname = \"p\"\ndevices = [\"{me}\"]\nmode = \"{mode}\"\nallow = [{allow}]\n"
        )
    };
    let (dir, mut sensor) = lab.watch(
        &policy(
            "\"203.0.113.10:4242/udp\", \"203.0.113.20:4242/udp\"",
            "monitor",
        ),
        &[],
    );
    let path = dir.join("kw.toml");
    lab.udp(0, 0, "203.0.113.20:4242", b"hello");
    std::thread::sleep(Duration::from_millis(500));
    // A broken file is refused with its location; the running policy stays.
    std::fs::write(&path, "[baseline]\nmode = \"sometimes\"\n").unwrap();
    sensor.signal(libc::SIGHUP);
    sensor.wait_for_log("configuration not reloaded", Duration::from_secs(5));
    // The destination is no longer allowed, and the device is enforced.
    std::fs::write(&path, policy("\"203.0.113.10:4242/udp\"", "enforce")).unwrap();
    sensor.signal(libc::SIGHUP);
    sensor.wait_for_log("configuration reloaded", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    lab.udp(0, 0, "203.0.113.20:4242", b"hello"); // the same flow, open since before
    sensor.wait_for_line(
        |l| l.contains("\"unexpected_destination\""),
        Duration::from_secs(5),
    );
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains("kw.toml:2:8"),
        "the broken file's location: {}",
        out.stderr
    );
    let evs = events::parse(&out.stdout);
    let a = events::alerts(&evs, "unexpected_destination");
    assert_eq!(
        a.len(),
        1,
        "one alert for the reopened flow; the stream:\n{}\nthe log:\n{}",
        out.stdout.join("\n"),
        out.stderr
    );
    assert_eq!(a[0]["dest_ip"], "203.0.113.20");
    assert_eq!(a[0]["alert"]["action"], "blocked");
    let st = events::last_stats(&evs);
    assert_eq!(
        st["kernel"]["dropped_policy"], 1,
        "the open flow's next frame"
    );
    assert!(st["policy"]["generation"].as_u64().unwrap() >= 2);
}
