//! `kettlewatch run` on the gateway of a namespace lab: known traffic from known devices
//! must come out of the JSON stream with exactly those counts; a killed sensor must leave
//! nothing attached; attach problems get a sentence that says what to do.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr, UdpSocket},
    time::Duration,
};

use kettlewatch_tests::{
    announce,
    env::{self, TempDir},
    events,
    lab::{FAST_CONFIG, Lab, SERVERS_V4, SERVERS_V6},
    proc::Sensor,
};
use sensor_user::model::addr::mac;
use serde_json::Value;

const ATTACHED: &str = "watching lan0";

fn send_udp(lab: &Lab, dev: usize, to: SocketAddr, n: usize, payload: usize) {
    let from: IpAddr = match to {
        SocketAddr::V4(_) => lab.devices[dev].v4.into(),
        SocketAddr::V6(_) => lab.devices[dev].v6.into(),
    };
    lab.devices[dev].ns.run(move || {
        let s = UdpSocket::bind((from, 0)).expect("bind in device namespace");
        for _ in 0..n {
            s.send_to(&vec![0x5a; payload], to).expect("send");
        }
    });
}

/// (device mac, dest ip, dest port, proto).
type FlowId = (String, String, u64, String);

/// Per flow: (sum of pkts_delta, sum of bytes_delta, last pkts_toserver, last
/// bytes_toserver).
fn flow_sums(evs: &[Value]) -> BTreeMap<FlowId, (u64, u64, u64, u64)> {
    let mut m = BTreeMap::new();
    for e in events::of_type(evs, "flow") {
        let port = e["dest_port"]
            .as_u64()
            .unwrap_or_else(|| e["icmp_type"].as_u64().unwrap_or(0) << 8);
        let k = (
            e["iot"]["device"]["mac"].as_str().unwrap().to_string(),
            e["dest_ip"].as_str().unwrap_or("").to_string(),
            port,
            e["proto"].as_str().unwrap().to_string(),
        );
        let v = m.entry(k).or_insert((0, 0, 0, 0));
        v.0 += e["iot"]["flow"]["pkts_delta"].as_u64().unwrap();
        v.1 += e["iot"]["flow"]["bytes_delta"].as_u64().unwrap();
        v.2 = e["flow"]["pkts_toserver"].as_u64().unwrap();
        v.3 = e["flow"]["bytes_toserver"].as_u64().unwrap();
    }
    m
}

#[test]
fn known_traffic_appears_in_flow_events_with_exact_counts() {
    if !env::have_root() || !env::have_tool("ip") || !env::have_tool("ping") {
        return;
    }
    let lab = Lab::build(3);
    let (_dir, sensor) = lab.watch(FAST_CONFIG, &[]);

    let srv_a = SocketAddr::new(SERVERS_V4[0].into(), 5000);
    let srv_b = SocketAddr::new(SERVERS_V4[1].into(), 6000);
    let srv_b6 = SocketAddr::new(SERVERS_V6[1].into(), 6000);
    send_udp(&lab, 0, srv_a, 7, 100);
    send_udp(&lab, 1, srv_b, 11, 200);
    send_udp(&lab, 1, srv_b6, 5, 50);
    let ping = lab.devices[2]
        .ns
        .cmd("ping")
        .args([
            "-c",
            "3",
            "-i",
            "0.2",
            "-s",
            "56",
            "-q",
            &SERVERS_V4[2].to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "ping through the lab gateway: {ping:?}"
    );
    // Let one more poll see the last frames before stopping (the stop flushes anyway).
    std::thread::sleep(Duration::from_millis(500));
    let out = sensor.stop();
    assert!(
        out.status.success(),
        "sensor exit: {:?}\n{}",
        out.status,
        out.stderr
    );

    let evs = events::parse(&out.stdout);
    let sums = flow_sums(&evs);
    let d = |i: usize| mac(lab.devices[i].mac);
    // Frame sizes on the wire: Ethernet 14 + IPv4 20 / IPv6 40 + UDP 8 + payload;
    // ping -s 56 is 64 bytes of ICMP.
    let expected = [
        ((d(0), "203.0.113.10".to_string(), 5000, "UDP"), 7, 42 + 100),
        (
            (d(1), "203.0.113.20".to_string(), 6000, "UDP"),
            11,
            42 + 200,
        ),
        (
            (d(1), "2001:db8:2::20".to_string(), 6000, "UDP"),
            5,
            62 + 50,
        ),
        (
            (d(2), "203.0.113.30".to_string(), 8 << 8, "ICMP"),
            3,
            14 + 20 + 64,
        ),
    ];
    for ((mac, ip, port, proto), n, frame) in expected {
        let key = (mac, ip, port, proto.to_string());
        let got = sums
            .get(&key)
            .unwrap_or_else(|| panic!("no flow event for {key:?}; flows: {sums:#?}"));
        assert_eq!(
            *got,
            (n, n * frame, n, n * frame),
            "{key:?}: (sum of pkts_delta, sum of bytes_delta, pkts_toserver, bytes_toserver)"
        );
    }

    // Every device shows up with the addresses it used.
    let devices = events::of_type(&evs, "device");
    for (i, dev) in lab.devices.iter().enumerate() {
        let last = devices
            .iter()
            .rev()
            .find(|e| e["iot"]["device"]["mac"] == mac(dev.mac))
            .unwrap_or_else(|| panic!("no device event for device {i}"));
        let addrs: Vec<&str> = last["iot"]["device"]["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(
            addrs.contains(&dev.v4.to_string().as_str()),
            "device {i}: {addrs:?}"
        );
        if i == 1 {
            assert!(
                addrs.contains(&dev.v6.to_string().as_str()),
                "device 1: {addrs:?}"
            );
        }
    }
    assert!(
        devices
            .iter()
            .all(|e| e["ether"]["src_mac"] != mac(kettlewatch_tests::lab::GW_MAC)),
        "the gateway is not a device"
    );

    // Health: the last stats event accounts for every frame and lost nothing.
    let stats = events::of_type(&evs, "stats");
    let last = &stats.last().expect("a final stats event")["stats"];
    let k = &last["kernel"];
    let classified: u64 = sensor_common::stats::FRAME_CLASSES
        .iter()
        .map(|i| {
            k[sensor_common::stats::NAMES[*i as usize]]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(k["frames"].as_u64().unwrap(), classified);
    assert!(k["ipv4"].as_u64().unwrap() >= 7 + 11 + 3);
    assert_eq!(k["ringbuf_full"], 0);
    assert_eq!(k["flow_insert_failed"], 0);
    assert_eq!(last["sensor"]["events_malformed"], 0);
    assert_eq!(last["sensor"]["output_errors"], 0);
    for e in &evs {
        assert_eq!(e["sensor"], "lab");
        assert_eq!(e["in_iface"], "lan0");
    }
}

fn xdp_attached(lab: &Lab) -> bool {
    lab.gw.ip(&["link", "show", "lan0"]).contains("xdp")
}

/// The bpf links a process holds: (link type, link id), from its fds' fdinfo.
fn links_of(pid: u32) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(info) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        let field = |k: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
        };
        if let (Some(t), Some(id)) = (field("link_type:"), field("link_id:")) {
            out.push((t, id.parse().unwrap()));
        }
    }
    out.sort();
    out
}

/// Whether a bpf link exists (anywhere: link ids are global).
fn link_exists(id: u32) -> bool {
    std::process::Command::new("bpftool")
        .args(["link", "show", "id", &id.to_string()])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// kill -9 at a random moment under traffic, 20 times in a row: nothing stays attached,
/// and every restart finds the inventory intact (SQLite in WAL mode, one transaction per
/// batch).
#[test]
fn kill_9_twenty_times_under_traffic_leaves_nothing_attached_and_the_inventory_intact() {
    if !env::have_root() || !env::have_tool("ip") || !env::have_tool("bpftool") {
        return;
    }
    let lab = Lab::build(2);
    let state = TempDir::new();
    let sd = state.join("state");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut traffic = Vec::new();
    for dev in 0..2 {
        let stop = stop.clone();
        let from: IpAddr = lab.devices[dev].v4.into();
        traffic.push(lab.devices[dev].ns.spawn(move || {
            let s = UdpSocket::bind((from, 0)).unwrap();
            let mut i = 0u16;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                // New destinations keep coming: new flows, events and writes all the time.
                let to = SocketAddr::from(([203, 0, 113, 10], 5000 + (i % 2000)));
                let _ = s.send_to(&[0x5a; 64], to);
                i = i.wrapping_add(1);
                std::thread::sleep(Duration::from_micros(500));
            }
        }));
    }
    let mut rng = fastrand::Rng::with_seed(20);
    let kettlewatch = env::kettlewatch();
    let stored = |sd: &std::path::Path| -> Vec<String> {
        let out = std::process::Command::new(&kettlewatch)
            .args(["devices", "--json", "--state-dir"])
            .arg(sd)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the store opens: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["mac"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let mut seen_both = false;
    for round in 0..20 {
        let mut sensor = Sensor::start(
            &lab.gw,
            "lan0",
            &["--state-dir", sd.to_str().unwrap()],
            false,
        );
        sensor.wait_for_log(ATTACHED, Duration::from_secs(30));
        let links = links_of(sensor.pid());
        let types: Vec<&str> = links.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            types,
            ["tcx", "xdp"],
            "round {round}: both programs attached by links"
        );
        assert!(xdp_attached(&lab));
        std::thread::sleep(Duration::from_millis(rng.u64(50..600)));
        let out = sensor.kill9();
        assert_eq!(out.status.code(), None, "killed by a signal");
        // The links go with the process's last fd; give the kernel a moment.
        let mut gone = false;
        for _ in 0..50 {
            if !xdp_attached(&lab) && links.iter().all(|(_, id)| !link_exists(*id)) {
                gone = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            gone,
            "round {round}: a program is still attached after kill -9: {links:?}"
        );
        let macs = stored(&sd);
        let both = (0..2).all(|d| macs.contains(&mac(lab.devices[d].mac)));
        // Once stored, a device stays stored, whatever moment the kill came at.
        assert!(
            both || !seen_both,
            "round {round}: the inventory lost a device: {macs:?}"
        );
        seen_both |= both;
    }
    assert!(seen_both, "the devices were stored at some point");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in traffic {
        t.join().unwrap();
    }
}

#[test]
fn sigterm_detaches_and_exits_zero() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(1);
    let mut sensor = Sensor::start(&lab.gw, "lan0", &[], false);
    sensor.wait_for_log(ATTACHED, Duration::from_secs(30));
    let out = sensor.stop();
    assert!(out.status.success(), "{:?}: {}", out.status, out.stderr);
    assert!(!xdp_attached(&lab));
    let evs = events::parse(&out.stdout);
    assert_eq!(
        events::of_type(&evs, "stats").len(),
        1,
        "a final stats event"
    );
}

#[test]
fn attach_problems_are_explained() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(0);
    let bin = env::kettlewatch();
    let no_iface = lab
        .gw
        .cmd(bin.to_str().unwrap())
        .args(["run", "--iface", "nope0"])
        .output()
        .unwrap();
    assert!(!no_iface.status.success());
    let err = String::from_utf8_lossy(&no_iface.stderr);
    assert!(err.contains("no interface named \"nope0\""), "{err}");

    let mut first = Sensor::start(&lab.gw, "lan0", &[], false);
    first.wait_for_log(ATTACHED, Duration::from_secs(30));
    let second = lab
        .gw
        .cmd(bin.to_str().unwrap())
        .args(["run", "--iface", "lan0"])
        .output()
        .unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("already has an XDP program"), "{err}");
    let _ = first.stop();
}

#[test]
fn interface_down_and_up_keeps_counting_and_deletion_ends_the_run_clearly() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(1);
    let (_dir, mut sensor) = lab.watch(FAST_CONFIG, &[]);
    lab.gw.ip(&["link", "set", "lan0", "down"]);
    std::thread::sleep(Duration::from_millis(500));
    lab.gw.ip(&["link", "set", "lan0", "up"]);
    // The sensor is still attached and counts traffic sent after the interface came back.
    assert!(xdp_attached(&lab), "still attached after down/up");
    let srv = SocketAddr::new(SERVERS_V4[0].into(), 7777);
    send_udp(&lab, 0, srv, 4, 10);
    let seen = sensor.wait_for_line(
        |l| l.contains("\"dest_port\":7777") && l.contains("\"event_type\":\"flow\""),
        Duration::from_secs(10),
    );
    assert!(seen.is_some(), "traffic after down/up is counted");

    lab.gw.ip(&["link", "del", "lan0"]);
    // It notices within a poll or two and exits with a sentence, not a spin.
    assert!(
        sensor.wait_exit(Duration::from_secs(10)),
        "still running 10 s after the interface was deleted"
    );
    let out = sensor.stop();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("interface lan0 disappeared"),
        "{}",
        out.stderr
    );
    let evs = events::parse(&out.stdout);
    assert!(
        !events::of_type(&evs, "stats").is_empty(),
        "the last stats were written"
    );
}

/// A sensor with fast polls and stats, `extra` configuration, writing to `output`.
fn start_writing_to(lab: &Lab, dir: &TempDir, extra: &str, output: &std::path::Path) -> Sensor {
    let cfg = dir.join("kw.toml");
    std::fs::write(
        &cfg,
        format!(
            "[sensor]\npoll_interval = \"200ms\"\nflow_report = \"1s\"\nstats_interval = \"1s\"\n{extra}"
        ),
    )
    .unwrap();
    let args = [
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ];
    let mut sensor = Sensor::start(&lab.gw, "lan0", &args, false);
    sensor.wait_for_log(ATTACHED, Duration::from_secs(30));
    sensor
}

/// One datagram from device 0 to each of `ports` (offset by 20000) of the first server:
/// a new flow each.
fn new_flows(lab: &Lab, ports: std::ops::Range<u16>) {
    for port in ports {
        send_udp(
            lab,
            0,
            SocketAddr::new(SERVERS_V4[0].into(), 20000 + port),
            1,
            10,
        );
    }
}

#[test]
fn a_reader_that_stops_reading_does_not_stall_the_sensor() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    use std::{io::Read as _, os::unix::fs::OpenOptionsExt as _};
    let lab = Lab::build(1);
    let dir = TempDir::new();
    let fifo = dir.join("eve.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // Open the read end first (non-blocking), so the sensor's open for writing proceeds.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let sensor = start_writing_to(&lab, &dir, "[output]\nqueue_lines = 8\n", &fifo);
    // Nobody reads while 300 new flows make far more output than the pipe holds.
    new_flows(&lab, 0..300);
    std::thread::sleep(Duration::from_secs(3));
    // The reader comes back and reads everything.
    let mut text = Vec::new();
    let mut buf = [0u8; 65536];
    let drain = |reader: &mut std::fs::File, text: &mut Vec<u8>, buf: &mut [u8]| loop {
        match reader.read(buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    };
    drain(&mut reader, &mut text, &mut buf);
    std::thread::sleep(Duration::from_secs(2));
    drain(&mut reader, &mut text, &mut buf);
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    drain(&mut reader, &mut text, &mut buf);
    let text = String::from_utf8(text).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let evs = events::parse(&lines);
    let last = &events::of_type(&evs, "stats")
        .last()
        .expect("a final stats event")["stats"];
    assert!(
        last["sensor"]["output_dropped"].as_u64().unwrap() > 0,
        "lines were dropped: {last}"
    );
    assert_eq!(
        last["kernel"]["ringbuf_full"], 0,
        "the event loop kept reading the ring"
    );
    assert!(
        last["kernel"]["new_flows"].as_u64().unwrap() >= 300,
        "{last}"
    );
    assert!(
        out.stderr.contains("dropping lines"),
        "said what it lost: {}",
        out.stderr
    );
}

/// A tmpfs mounted for one test, unmounted on drop: a disk that can fill up.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: std::path::PathBuf, size: &str) -> Self {
        std::fs::create_dir_all(&at).unwrap();
        kettlewatch_tests::netns::sh(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "kwtest",
            at.to_str().unwrap(),
        ]);
        Self(at)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_loses_counted_lines_and_writing_resumes_when_space_returns() {
    if !env::have_root() || !env::have_tool("ip") || !env::have_tool("mount") {
        return;
    }
    let lab = Lab::build(1);
    let dir = TempDir::new();
    let disk = SmallDisk::mount(dir.join("disk"), "256k");
    let eve = disk.0.join("eve.json");
    // Fill the disk up to the last block before the sensor writes anything.
    let filler = disk.0.join("filler");
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = [b'x'; 4096];
        while f.write_all(&block).is_ok() {}
    }
    let mut sensor = start_writing_to(&lab, &dir, "", &eve);
    new_flows(&lab, 0..50);
    sensor.wait_for_log("writing events failed", Duration::from_secs(20));
    // Space comes back: the sensor writes again without being restarted.
    std::fs::remove_file(&filler).unwrap();
    new_flows(&lab, 50..100);
    sensor.wait_for_log("writing events works again", Duration::from_secs(20));
    let out = sensor.stop();
    assert!(
        out.status.success(),
        "kept running and stopped cleanly: {}",
        out.stderr
    );
    let text = std::fs::read_to_string(&eve).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Every line on disk is whole: a line either went out entirely or was counted lost.
    let evs = events::parse(&lines);
    let last = &events::of_type(&evs, "stats")
        .last()
        .expect("stats after the disk had room again")["stats"];
    assert!(
        last["sensor"]["output_errors"].as_u64().unwrap() > 0,
        "the lost lines are counted: {last}"
    );
    assert!(
        out.stderr.contains("lost to write errors"),
        "said at exit what it lost: {}",
        out.stderr
    );
}

#[test]
fn run_as_an_unprivileged_user_after_attaching() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(1);
    let (_dir, sensor) = lab.watch(FAST_CONFIG, &["--user", "nobody"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", sensor.pid())).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(field("Uid:"), vec!["65534"; 4], "{status}");
    assert_eq!(field("CapEff:"), vec!["0000000000000000"]);
    assert_eq!(field("CapPrm:"), vec!["0000000000000000"]);
    // Still counting, and still able to detach at the end.
    send_udp(&lab, 0, SocketAddr::new(SERVERS_V4[0].into(), 4242), 3, 20);
    std::thread::sleep(Duration::from_millis(500));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let sums = flow_sums(&events::parse(&out.stdout));
    let key = (
        mac(lab.devices[0].mac),
        "203.0.113.10".to_string(),
        4242,
        "UDP".to_string(),
    );
    assert_eq!(sums.get(&key).map(|v| v.0), Some(3), "{sums:#?}");
    assert!(!xdp_attached(&lab), "detached after dropping privileges");
}

#[test]
fn devices_appear_with_the_hostnames_their_dhcp_clients_send() {
    if !env::have_root()
        || !env::have_tool("ip")
        || !env::have_tool("dnsmasq")
        || !env::have_tool("busybox")
    {
        return;
    }
    let lab = Lab::build(2);
    let _dhcp = lab.dnsmasq();
    let (_dir, sensor) = lab.watch(FAST_CONFIG, &[]);
    let names = [
        ("lobby-camera", "acme-cam 1.0"),
        ("kitchen-plug", "plugco\"x\u{7}"),
    ];
    for (i, (host, vendor)) in names.iter().enumerate() {
        // A real client: busybox udhcpc gets a lease from the lab's dnsmasq and exits.
        let out = lab.devices[i]
            .ns
            .cmd("busybox")
            .args([
                "udhcpc",
                "-i",
                "eth0",
                "-f",
                "-q",
                "-n",
                "-t",
                "5",
                "-T",
                "1",
                "-s",
                "/bin/true",
            ])
            .args(["-x", &format!("hostname:{host}"), "-V", vendor])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "udhcpc on device {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    for (i, (host, vendor)) in names.iter().enumerate() {
        let d = events::of_type(&evs, "device")
            .into_iter()
            .rev()
            .find(|d| d["iot"]["device"]["mac"] == mac(lab.devices[i].mac))
            .unwrap_or_else(|| panic!("no device event for device {i}"));
        assert_eq!(d["iot"]["device"]["hostname"], *host, "{d}");
        // A quote survives (JSON-escaped); a control character does not.
        let expected = vendor.replace('\u{7}', "\u{fffd}");
        assert_eq!(
            d["iot"]["device"]["dhcp"]["vendor_class"],
            expected.as_str(),
            "{d}"
        );
        assert!(
            !d["iot"]["device"]["dhcp"]["parameter_request_list"]
                .as_str()
                .unwrap()
                .is_empty(),
            "udhcpc asks for options"
        );
    }
}

#[test]
fn the_inventory_says_which_devices_are_new_and_which_are_missing() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(2);
    let config = format!(
        "[sensor]\npoll_interval = \"200ms\"\nflow_report = \"1s\"\n[inventory]\nmissing_after = \"2s\"\n\n\
             [[device]]\nmac = \"{}\"\nname = \"lobby-camera\"\ncategory = \"camera\"\ncriticality = \"high\"\n\n\
             [[device]]\nmac = \"02:00:5e:10:00:99\"\nname = \"garage-sensor\"\n",
        mac(lab.devices[0].mac)
    );
    let (_dir, sensor) = lab.watch(&config, &[]);
    send_udp(&lab, 1, SocketAddr::new(SERVERS_V4[1].into(), 5555), 1, 10);
    // The declared camera keeps talking, so it is never missing.
    for _ in 0..12 {
        send_udp(&lab, 0, SocketAddr::new(SERVERS_V4[0].into(), 5555), 1, 10);
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    let alerts = events::of_type(&evs, "alert");
    let by_rule = |id: &str| -> Vec<&Value> {
        alerts
            .iter()
            .copied()
            .filter(|a| a["iot"]["rule"]["id"] == id)
            .collect()
    };
    let cam = mac(lab.devices[0].mac);
    let plug = mac(lab.devices[1].mac);
    let new: Vec<&str> = by_rule("new_device")
        .iter()
        .map(|a| a["ether"]["src_mac"].as_str().unwrap())
        .collect();
    assert!(
        new.contains(&plug.as_str()),
        "the undeclared device is new: {new:?}"
    );
    assert!(!new.contains(&cam.as_str()), "a declared device is not new");
    let mut unique = new.clone();
    unique.dedup();
    assert_eq!(unique.len(), new.len(), "once per MAC");
    let plug_alert = by_rule("new_device")
        .into_iter()
        .find(|a| a["ether"]["src_mac"] == plug.as_str())
        .unwrap();
    assert_eq!(plug_alert["alert"]["signature_id"], 9_100_006);
    // Raised at first sight: its address is whichever the device had shown by then (an
    // ARP or IPv6 link-local frame can come before its IPv4 traffic).
    if let Some(ip) = plug_alert.get("src_ip") {
        let last = events::of_type(&evs, "device")
            .into_iter()
            .rev()
            .find(|d| d["iot"]["device"]["mac"] == plug.as_str())
            .unwrap();
        let addrs = last["iot"]["device"]["addresses"].as_array().unwrap();
        assert!(addrs.contains(ip), "{ip} is one of {addrs:?}");
    }
    assert_eq!(plug_alert["iot"]["device"]["inventory_status"], "unknown");

    let missing = by_rule("missing_device");
    assert_eq!(
        missing.len(),
        1,
        "only the declared device that never showed: {missing:?}"
    );
    assert_eq!(missing[0]["ether"]["src_mac"], "02:00:5e:10:00:99");
    assert_eq!(missing[0]["iot"]["device"]["name"], "garage-sensor");
    assert_eq!(missing[0]["alert"]["metadata"]["last_seen"][0], "never");
    assert_eq!(missing[0]["iot"]["rule"]["source"], "inventory");

    let cam_dev = events::of_type(&evs, "device")
        .into_iter()
        .find(|d| d["iot"]["device"]["mac"] == cam.as_str())
        .unwrap();
    let d = &cam_dev["iot"]["device"];
    assert_eq!(
        (d["inventory_status"].as_str(), d["name"].as_str()),
        (Some("declared"), Some("lobby-camera"))
    );
    assert_eq!(
        (d["category"].as_str(), d["criticality"].as_str()),
        (Some("camera"), Some("high"))
    );
}

#[test]
fn taking_another_devices_address_or_a_declared_device_moving_alerts() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(2);
    let config = format!(
        "[sensor]\npoll_interval = \"200ms\"\n[[device]]\nmac = \"{}\"\nname = \"lobby-camera\"\n",
        mac(lab.devices[0].mac)
    );
    let (_dir, sensor) = lab.watch(&config, &[]);
    let srv = SocketAddr::new(SERVERS_V4[0].into(), 6060);
    send_udp(&lab, 0, srv, 1, 10);
    send_udp(&lab, 1, srv, 1, 10);
    std::thread::sleep(Duration::from_millis(300));
    // Device 1 takes the camera's address. Addresses are learned from new flows (ARP
    // discovery is not there yet), so each does it towards a destination it has not used.
    let camera_ip = lab.devices[0].v4.to_string();
    let srv_b = SocketAddr::new(SERVERS_V4[1].into(), 6061);
    let srv_c = SocketAddr::new(SERVERS_V4[2].into(), 6062);
    let d1 = &lab.devices[1].ns;
    d1.ip(&["addr", "add", &format!("{camera_ip}/32"), "dev", "eth0"]);
    let from = lab.devices[0].v4;
    d1.run(move || {
        let s = UdpSocket::bind((from, 0)).unwrap();
        s.send_to(b"mine now", srv_b).unwrap();
    });
    // The declared camera takes a second IPv4 address.
    let d0 = &lab.devices[0].ns;
    d0.ip(&["addr", "add", "198.51.100.50/32", "dev", "eth0"]);
    d0.run(move || {
        let s = UdpSocket::bind(("198.51.100.50", 0)).unwrap();
        s.send_to(b"moved", srv_c).unwrap();
    });
    std::thread::sleep(Duration::from_millis(500));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    let changes: Vec<&Value> = events::of_type(&evs, "alert")
        .into_iter()
        .filter(|a| a["iot"]["rule"]["id"] == "address_change")
        .collect();
    assert_eq!(changes.len(), 2, "{changes:#?}");
    let taken = changes
        .iter()
        .find(|a| a["ether"]["src_mac"] == mac(lab.devices[1].mac).as_str())
        .expect("an alert for the device that took the address");
    assert_eq!(taken["alert"]["metadata"]["address"][0], camera_ip.as_str());
    assert_eq!(
        taken["alert"]["metadata"]["previous_mac"][0],
        mac(lab.devices[0].mac).as_str()
    );
    assert_eq!(taken["alert"]["signature_id"], 9_100_009);
    let moved = changes
        .iter()
        .find(|a| a["ether"]["src_mac"] == mac(lab.devices[0].mac).as_str())
        .expect("an alert for the declared device that moved");
    assert_eq!(moved["alert"]["metadata"]["address"][0], "198.51.100.50");
    assert!(moved["alert"]["metadata"].get("previous_mac").is_none());
    assert_eq!(moved["iot"]["device"]["name"], "lobby-camera");
}

#[test]
fn devices_that_announce_themselves_are_classified_and_a_declared_mismatch_alerts() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(3);
    // Device 0 is declared a camera; it will announce itself as a cast speaker.
    let config = format!(
        "{FAST_CONFIG}[[device]]\nmac = \"{}\"\nname = \"lobby-camera\"\ncategory = \"camera\"\ncriticality = \"high\"\n",
        mac(lab.devices[0].mac)
    );
    let (_dir, sensor) = lab.watch(&config, &[]);
    lab.udp(
        0,
        5353,
        "224.0.0.251:5353",
        &announce::mdns_cast_speaker("kitchen-speaker", "Google Home Mini"),
    );
    lab.udp(
        1,
        40000,
        "239.255.255.250:1900",
        &announce::ssdp_notify(
            "Roku/9.4.0 UPnP/1.0 Roku/9.4.0",
            "urn:roku-com:device:player:1-0",
            "http://198.51.100.11:8060/",
        ),
    );
    lab.udp(
        2,
        9999,
        "198.51.100.255:9999",
        &announce::kasa_sysinfo("HS110(EU)", "IOT.SMARTPLUGSWITCH", "kettle"),
    );
    let done = sensor.wait_for_line(
        |l| l.contains("\"IOT.SMARTPLUGSWITCH\"") && l.contains("\"event_type\":\"device\""),
        Duration::from_secs(10),
    );
    assert!(done.is_some(), "the plug's announcement arrived");
    std::thread::sleep(Duration::from_millis(300));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    let last = |i: usize| {
        events::of_type(&evs, "device")
            .into_iter()
            .rev()
            .find(|d| d["iot"]["device"]["mac"] == mac(lab.devices[i].mac))
            .unwrap_or_else(|| panic!("no device event for device {i}"))["iot"]["device"]
            .clone()
    };
    let cam = last(0);
    assert_eq!(cam["category"], "camera", "the declaration wins: {cam}");
    assert_eq!(cam["category_source"], "declared");
    assert_eq!(cam["observed"]["category"], "speaker", "{cam}");
    assert_eq!(cam["hostname"], "kitchen-speaker");
    assert_eq!(cam["criticality"], "high");
    assert!(cam["why"].as_str().unwrap().starts_with("declared high"));
    assert_eq!(
        cam["mdns"]["models"],
        serde_json::json!(["Google Home Mini"])
    );
    let roku = last(1);
    assert_eq!(roku["category"], "tv-media", "{roku}");
    assert_eq!(roku["category_source"], "observed");
    assert_eq!(roku["criticality"], "low");
    let plug = last(2);
    assert_eq!(plug["category"], "plug-switch", "{plug}");
    assert_eq!(plug["kasa"]["model"], "HS110(EU)");
    assert!(plug["confidence"].as_f64().unwrap() > 0.8);
    let mismatch: Vec<&Value> = events::of_type(&evs, "alert")
        .into_iter()
        .filter(|a| a["iot"]["rule"]["id"] == "category_mismatch")
        .collect();
    assert_eq!(mismatch.len(), 1, "{mismatch:?}");
    let m = mismatch[0];
    assert_eq!(m["ether"]["src_mac"], mac(lab.devices[0].mac));
    assert_eq!(
        m["alert"]["metadata"]["observed_category"],
        serde_json::json!(["speaker"])
    );
    assert_eq!(
        m["alert"]["metadata"]["declared_category"],
        serde_json::json!(["camera"])
    );
}

fn stored_devices(state: &std::path::Path) -> Vec<Value> {
    let out = std::process::Command::new(env::kettlewatch())
        .args(["devices", "--json", "--state-dir"])
        .arg(state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_inventory_survives_kill_9_and_is_listed_while_the_sensor_runs() {
    if !env::have_root()
        || !env::have_tool("ip")
        || !env::have_tool("dnsmasq")
        || !env::have_tool("busybox")
    {
        return;
    }
    let lab = Lab::build(1);
    let _dhcp = lab.dnsmasq();
    let state = TempDir::new();
    let state_dir = state.join("state");
    let sd = state_dir.to_str().unwrap();
    let (_dir, sensor) = lab.watch(FAST_CONFIG, &["--state-dir", sd]);
    let out = lab.devices[0]
        .ns
        .cmd("busybox")
        .args([
            "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "5", "-T", "1",
        ])
        .args(["-s", "/bin/true", "-x", "hostname:porch-light"])
        .output()
        .unwrap();
    assert!(out.status.success(), "udhcpc");
    let me = mac(lab.devices[0].mac);
    // `devices` reads the store while the sensor writes it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let stored = loop {
        let all = stored_devices(&state_dir);
        if let Some(d) = all
            .into_iter()
            .find(|d| d["mac"] == me && d["profile"]["hostname"] == "porch-light")
        {
            break d;
        }
        assert!(std::time::Instant::now() < deadline, "never stored");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(stored["category"], "light", "{stored}");
    assert_eq!(stored["new_device_reported"], true);
    let first = sensor.kill9();
    assert!(
        events::parse(&first.stdout)
            .iter()
            .any(|e| e["iot"]["rule"]["id"] == "new_device"),
        "the first run reported the new device"
    );
    // The process is gone; the store is intact.
    let after = stored_devices(&state_dir);
    assert_eq!(after.iter().filter(|d| d["mac"] == me).count(), 1);
    let table = std::process::Command::new(env::kettlewatch())
        .args(["devices", "--state-dir", sd])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains(&me) && table.contains("porch-light"),
        "{table}"
    );

    // A new run: the device is known, so no second new_device, and its first sight stays.
    let (_dir2, sensor) = lab.watch(FAST_CONFIG, &["--state-dir", sd]);
    send_udp(&lab, 0, SocketAddr::new(SERVERS_V4[0].into(), 4242), 2, 20);
    std::thread::sleep(Duration::from_millis(800));
    let second = sensor.stop();
    assert!(second.status.success(), "{}", second.stderr);
    let evs = events::parse(&second.stdout);
    assert!(
        !evs.iter().any(|e| e["iot"]["rule"]["id"] == "new_device"),
        "new_device is raised once per MAC, across restarts"
    );
    let dev = events::of_type(&evs, "device")
        .into_iter()
        .find(|d| d["iot"]["device"]["mac"] == me)
        .expect("the device shows up again");
    assert_eq!(
        dev["iot"]["device"]["first_seen"],
        sensor_user::model::clock::eve_timestamp(stored["first_seen_ns"].as_u64().unwrap()),
        "first sight comes from the store"
    );
    assert_eq!(
        dev["iot"]["device"]["hostname"], "porch-light",
        "profile restored"
    );
}

/// What hostile devices put in their names and headers reaches the stream escaped and
/// bounded: control characters, quotes, backslashes, invalid UTF-8, 10,000 bytes.
#[test]
fn hostile_names_and_headers_stay_valid_bounded_json() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(2);
    let (_dir, sensor) = lab.watch(FAST_CONFIG, &[]);
    let mut name = b"evil\"\\\x00\x1b[31m\n".to_vec();
    name.extend([0xff, 0xfe, 0xc3]);
    name.resize(255, b'A');
    lab.udp(
        0,
        68,
        "255.255.255.255:67",
        &announce::dhcp_discover(lab.devices[0].mac, &name),
    );
    let mut server = b"Evil/1.0 \"quoted\" back\\slash \t tab ".to_vec();
    server.extend([0xff, 0xfe]);
    server.resize(1200, b'S');
    let notify = |server: &[u8]| {
        let mut m =
            b"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nNT: upnp:rootdevice\r\nSERVER: "
                .to_vec();
        m.extend(server);
        m.extend(b"\r\n\r\n");
        m
    };
    lab.udp(1, 40000, "239.255.255.250:1900", &notify(&server));
    // 10,000 bytes: IP fragments; the kernel copies the first 1,536 of the first one.
    server.resize(10_000, b'X');
    lab.udp(1, 40000, "239.255.255.250:1900", &notify(&server));
    let saw = sensor.wait_for_line(
        |l| l.contains("\"servers\"") && l.contains("Evil/1.0"),
        Duration::from_secs(10),
    );
    assert!(saw.is_some(), "the SSDP header reached a device event");
    std::thread::sleep(Duration::from_millis(500));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    // Every line is one valid JSON object that fits the schema (whose network strings
    // are at most 255 characters).
    let evs = events::parse(&out.stdout);
    let dev = |i: usize| {
        events::of_type(&evs, "device")
            .into_iter()
            .rev()
            .find(|d| d["iot"]["device"]["mac"] == mac(lab.devices[i].mac))
            .unwrap_or_else(|| panic!("no device event for device {i}"))["iot"]["device"]
            .clone()
    };
    let host = dev(0)["hostname"].as_str().unwrap().to_string();
    assert!(host.starts_with("evil\"\\"), "{host:?}");
    assert!(host.chars().count() <= 255);
    assert!(!host.chars().any(char::is_control), "{host:?}");
    assert!(
        host.contains('\u{fffd}'),
        "invalid UTF-8 and controls replaced: {host:?}"
    );
    let servers = dev(1)["ssdp"]["servers"].clone();
    for s in servers.as_array().unwrap() {
        let s = s.as_str().unwrap();
        assert!(s.starts_with("Evil/1.0 \"quoted\" back\\slash"), "{s:?}");
        assert_eq!(s.chars().count(), 255, "truncated to 255 characters");
    }
    let st = &events::of_type(&evs, "stats").last().unwrap()["stats"];
    assert_eq!(
        st["sensor"]["discovery_frames"], st["kernel"]["discovery_copied"],
        "every copied frame was decoded or counted"
    );
}
