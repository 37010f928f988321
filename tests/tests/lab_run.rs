//! `kettlewatch run` on the gateway of a namespace lab, its lifecycle: known traffic from
//! known devices comes out of the JSON stream with exactly those counts; a killed sensor
//! leaves nothing attached; attach problems get a sentence that says what to do; the
//! interface going away ends the run clearly; privileges are dropped after attaching; a
//! reader that closes standard output ends the run quietly.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr, UdpSocket},
    time::Duration,
};

use kettlewatch_tests::{
    env::{self, TempDir},
    events,
    lab::{ATTACHED, FAST_CONFIG, Lab, SERVERS_V4, SERVERS_V6},
    proc::Sensor,
};
use serde_json::Value;

/// (device mac, dest ip, dest port, proto).
type FlowId = (String, String, u64, String);

/// Per flow: (sum of `flow.pkts_*`, sum of `flow.bytes_*`, the last record's
/// `iot.flow.pkts_total`, its `bytes_total`): a SIEM's sum and the sensor's totals.
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
        let f = &e["flow"];
        v.0 += f["pkts_toserver"].as_u64().unwrap() + f["pkts_toclient"].as_u64().unwrap();
        v.1 += f["bytes_toserver"].as_u64().unwrap() + f["bytes_toclient"].as_u64().unwrap();
        v.2 = e["iot"]["flow"]["pkts_total"].as_u64().unwrap();
        v.3 = e["iot"]["flow"]["bytes_total"].as_u64().unwrap();
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
    lab.send_udp(0, srv_a, 7, 100);
    lab.send_udp(1, srv_b, 11, 200);
    lab.send_udp(1, srv_b6, 5, 50);
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
    let d = |i: usize| lab.devices[i].mac.to_string();
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
            "{key:?}: (summed packets, summed bytes, total packets, total bytes)"
        );
    }

    // Every device shows up with the addresses it used.
    for (i, dev) in lab.devices.iter().enumerate() {
        let last = events::last_device(&evs, dev.mac.to_string());
        let addrs: Vec<&str> = last["iot"]["device"]["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(
            addrs.contains(&dev.v4.to_string().as_str()),
            "device {i}: {addrs:?}; its events: {:#?}; stats: {}",
            evs.iter()
                .filter(|e| e.to_string().contains(&dev.mac.to_string()))
                .collect::<Vec<_>>(),
            events::of_type(&evs, "stats")
                .last()
                .map_or(String::new(), |s| s["iot"]["kernel"].to_string())
        );
        if i == 1 {
            assert!(
                addrs.contains(&dev.v6.to_string().as_str()),
                "device 1: {addrs:?}"
            );
        }
    }
    assert!(
        events::of_type(&evs, "device")
            .iter()
            .all(|e| e["ether"]["src_mac"] != kettlewatch_tests::lab::GW_MAC.to_string()),
        "the gateway is not a device"
    );

    // Health: the last stats event accounts for every frame and lost nothing.
    let stats = events::of_type(&evs, "stats");
    let last = &stats.last().expect("a final stats event")["iot"];
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
        assert_eq!(e["host"], "lab");
        assert_eq!(e["in_iface"], "lan0");
    }
}

/// Polls read only the flows that changed; the whole map is read every
/// `flow_sweep_interval`, and that is when flows the kernel's LRU pushed out are found.
/// A scan through a full table pushes out its own one-frame flows, not a flow in use:
/// that one keeps its entry, and every frame of it reaches a record.
#[test]
fn a_scan_through_a_full_table_leaves_a_busy_flow_whole_and_sweeps_see_what_left() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(1);
    let (_dir, sensor) = lab.watch(SMALL_TABLE, &[]);
    let send = |to, payload| send_from_cpu0(&lab, to, payload);
    let first = SocketAddr::new(SERVERS_V4[0].into(), 5000);
    send(vec![(first, 3)], 100);
    // A poll reports the three; the next two wait for flow_report (60 s) ...
    wait_for_record(&sensor, first);
    send(vec![(first, 2)], 100);
    // ... and are read by the next poll. Then a device scans: 3,000 new flows, each one
    // frame, through the 64-entry table, in six bursts a poll apart (so a poll reads the
    // last flows of a burst before the next pushes them out).
    std::thread::sleep(Duration::from_millis(600));
    for burst in 0..6u16 {
        send(
            (6000 + burst * 500..6500 + burst * 500)
                .map(|port| (SocketAddr::new(SERVERS_V4[1].into(), port), 1))
                .collect(),
            10,
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // Past the next sweep.
    std::thread::sleep(Duration::from_secs(4));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    let reasons = records_to(&evs, first);
    let last = &events::of_type(&evs, "stats").last().expect("stats")["iot"];
    // The flow's first frame in a poll epoch looks it up in the kernel map, and the
    // kernel's LRU gives a flow looked up since its insert a second chance over the
    // scan's one-frame flows: the busy flow stays, and every frame of it is in a record.
    assert_eq!(
        reasons,
        vec![("report", 3), ("shutdown", 2)],
        "the busy flow's records: a report, then the two held back, at the stop; {last}"
    );
    assert!(
        last["sensor"]["flows_evicted"].as_u64().unwrap() >= 1,
        "sweeps saw the scan's flows leave the table: {last}"
    );
    assert!(last["kernel"]["dirty_logged"].as_u64().unwrap() >= 3000);
    assert!(last["sensor"]["flow_sweeps"].as_u64().unwrap() >= 3);
}

/// A flow that goes quiet ages out of a full table once other flows are in use: the
/// kernel's LRU clears a flow's second chance as it rotates its active list, and the
/// next sweep finds the flow gone. The frames a poll read but its report interval held
/// back reach a last record, marked `evicted`, instead of being lost with the entry.
#[test]
fn a_quiet_flow_the_table_ages_out_gets_its_held_back_frames_in_an_evicted_record() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(1);
    let (_dir, sensor) = lab.watch(SMALL_TABLE, &[]);
    let send =
        |to: &[SocketAddr], n| send_from_cpu0(&lab, to.iter().map(|a| (*a, n)).collect(), 100);
    let quiet = SocketAddr::new(SERVERS_V4[0].into(), 5000);
    send(&[quiet], 3);
    // A poll reports the three; the next two wait for flow_report (60 s), read by the
    // next poll, and the flow sends nothing more.
    wait_for_record(&sensor, quiet);
    send(&[quiet], 2);
    std::thread::sleep(Duration::from_millis(600));
    // Other flows in use: each sends a frame, and another a poll later (so the map
    // looks it up again and the LRU sees it used), in rounds of 30 (which fit the
    // 64-entry table until their second frame) one after another.
    for round in 0..20u16 {
        let busy: Vec<SocketAddr> = (0..30)
            .map(|n| SocketAddr::new(SERVERS_V4[1].into(), 6000 + round * 30 + n))
            .collect();
        send(&busy, 1);
        std::thread::sleep(Duration::from_millis(300));
        send(&busy, 1);
        std::thread::sleep(Duration::from_millis(300));
    }
    // Past the next sweep.
    std::thread::sleep(Duration::from_secs(3));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    let records = records_to(&evs, quiet);
    let last = &events::of_type(&evs, "stats").last().expect("stats")["iot"];
    assert_eq!(
        records,
        vec![("report", 3), ("evicted", 2)],
        "the quiet flow's records: a report, then the two held back when a sweep found it gone; {last}"
    );
}

/// A 64-entry flow table, polled every 200 ms and swept every 2 s, whose flows report at
/// most once a minute: the LRU tests' sensor.
const SMALL_TABLE: &str = "[sensor]\nname = \"lab\"\npoll_interval = \"200ms\"\nflow_report = \"60s\"\nflow_sweep_interval = \"2s\"\nmax_flows = 64\n";

/// Sends `n` datagrams of `payload` bytes to each address from the lab's first device,
/// every one from CPU 0: a kernel LRU node stays in the per-CPU list of the CPU that
/// inserted it until that CPU inserts again, so a flood from another CPU could never
/// evict it.
fn send_from_cpu0(lab: &Lab, to: Vec<(SocketAddr, usize)>, payload: usize) {
    let from: IpAddr = lab.devices[0].v4.into();
    lab.devices[0].ns.run(move || {
        // SAFETY: a zeroed cpu_set_t with CPU 0 set, for this thread.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set);
        }
        let s = UdpSocket::bind((from, 0)).unwrap();
        for (addr, n) in to {
            for _ in 0..n {
                s.send_to(&vec![0xab; payload], addr).unwrap();
            }
        }
    });
}

/// Each `flow` record of the flow to `to`: why it was written, and the frames it reports.
/// Waits for the first flow record to `to`: a fixed sleep let a slow first poll read
/// the next frames too, and the test then saw one record where it meant two.
fn wait_for_record(sensor: &Sensor, to: SocketAddr) {
    let line = sensor.wait_for_line(
        |l| {
            serde_json::from_str::<Value>(l).is_ok_and(|e| {
                e["event_type"] == "flow"
                    && e["dest_ip"] == to.ip().to_string()
                    && e["dest_port"] == to.port()
            })
        },
        env::slow(Duration::from_secs(10)),
    );
    assert!(line.is_some(), "no flow record to {to} within 10 s");
}

fn records_to(evs: &[Value], to: SocketAddr) -> Vec<(&str, u64)> {
    events::of_type(evs, "flow")
        .into_iter()
        .filter(|e| e["dest_ip"] == to.ip().to_string() && e["dest_port"] == to.port())
        .map(|e| {
            (
                e["iot"]["flow"]["reason"].as_str().unwrap(),
                e["flow"]["pkts_toserver"].as_u64().unwrap(),
            )
        })
        .collect()
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
        // Before 6.6 the egress program is a netlink filter, not a link: what kill -9
        // leaves of it is the next test's.
        let expected: &[&str] = if tcx() { &["tcx", "xdp"] } else { &["xdp"] };
        assert_eq!(
            types, expected,
            "round {round}: the programs attached by links"
        );
        assert!(lab.xdp_attached());
        std::thread::sleep(Duration::from_millis(rng.u64(50..600)));
        let out = sensor.kill9();
        assert_eq!(out.status.code(), None, "killed by a signal");
        // The links go with the process's last fd; give the kernel a moment.
        let mut gone = false;
        for _ in 0..50 {
            if !lab.xdp_attached() && links.iter().all(|(_, id)| !link_exists(*id)) {
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
        let both = (0..2).all(|d| macs.contains(&lab.devices[d].mac.to_string()));
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

/// Whether this kernel attaches TC programs by tcx links (Linux 6.6 and later).
fn tcx() -> bool {
    aya::util::KernelVersion::current().is_ok_and(|v| v >= aya::util::KernelVersion::new(6, 6, 0))
}

/// The egress path kernels before 6.6 take, run here on any kernel: a netlink filter is
/// not a link, so kill -9 leaves it attached (the XDP link still goes); the next start
/// removes it and says so, a clean stop removes its own, and there is never more than one.
#[test]
fn a_netlink_egress_filter_left_by_kill_9_is_replaced_at_the_next_start() {
    if !env::have_root() || !env::have_tool("ip") || !env::have_tool("tc") {
        return;
    }
    let lab = Lab::build(1);
    let netlink: &[&str] = &["--egress-attach", "netlink"];
    let mut sensor = Sensor::start(&lab.gw, "lan0", netlink, false);
    sensor.wait_for_log(ATTACHED, Duration::from_secs(30));
    assert_eq!(lab.egress_filters(), 1, "one egress filter while running");
    let links = links_of(sensor.pid());
    assert_eq!(links.len(), 1, "only XDP is a link: {links:?}");
    let out = sensor.kill9();
    assert_eq!(out.status.code(), None, "killed by a signal");
    let mut xdp_gone = false;
    for _ in 0..50 {
        if !lab.xdp_attached() {
            xdp_gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(xdp_gone, "the XDP link went with the process");
    assert_eq!(
        lab.egress_filters(),
        1,
        "kill -9 leaves the netlink egress filter attached"
    );

    let mut sensor = Sensor::start(&lab.gw, "lan0", netlink, false);
    sensor.wait_for_log(ATTACHED, Duration::from_secs(30));
    assert_eq!(
        lab.egress_filters(),
        1,
        "the next start replaced the leftover filter instead of adding one"
    );
    let out = sensor.stop();
    assert!(out.status.success(), "{:?}: {}", out.status, out.stderr);
    assert!(
        out.stderr
            .contains("removed the egress filter an earlier run left attached"),
        "the start said it removed the leftover: {}",
        out.stderr
    );
    assert!(
        out.stderr
            .lines()
            .any(|l| l.contains(ATTACHED) && l.contains("\"netlink\"")),
        "the start said how egress is attached: {}",
        out.stderr
    );
    assert_eq!(lab.egress_filters(), 0, "a clean stop removes its filter");
    assert!(!lab.xdp_attached());
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
    assert!(!lab.xdp_attached());
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
    assert!(lab.xdp_attached(), "still attached after down/up");
    let srv = SocketAddr::new(SERVERS_V4[0].into(), 7777);
    lab.send_udp(0, srv, 4, 10);
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

/// The whitespace-separated values of a `/proc/PID/status` line such as `Uid:`.
fn status_field<'a>(status: &'a str, name: &str) -> Vec<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in {status}"))
        .split_whitespace()
        .collect()
}

/// Device 0's three datagrams to 203.0.113.10:4242 are in the stream's flow records.
fn assert_three_packets_to_4242(lab: &Lab, stdout: &[String]) {
    let sums = flow_sums(&events::parse(stdout));
    let key = (
        lab.devices[0].mac.to_string(),
        "203.0.113.10".to_string(),
        4242,
        "UDP".to_string(),
    );
    assert_eq!(sums.get(&key).map(|v| v.0), Some(3), "{sums:#?}");
}

#[test]
fn run_as_an_unprivileged_user_after_attaching() {
    unprivileged_run(false);
}

/// With a netlink egress filter, `--user` keeps CAP_NET_ADMIN (and nothing else it does
/// not need), so the clean stop still removes the filter.
#[test]
fn run_as_an_unprivileged_user_keeps_net_admin_for_a_netlink_egress_filter() {
    unprivileged_run(true);
}

/// Runs with `--user nobody`: uid 65534 and only the capabilities this kernel still
/// needs (CAP_BPF before 6.5 while kernel.unprivileged_bpf_disabled is set; CAP_NET_ADMIN
/// for a netlink egress filter), still counting, and detached at the end.
fn unprivileged_run(netlink: bool) {
    if !env::have_root() || !env::have_tool("ip") || (netlink && !env::have_tool("tc")) {
        return;
    }
    const CAP_NET_ADMIN: u64 = 1 << 12;
    const CAP_BPF: u64 = 1 << 39;
    let before_6_5 = aya::util::KernelVersion::current()
        .is_ok_and(|v| v < aya::util::KernelVersion::new(6, 5, 0));
    let sysctl = std::fs::read_to_string("/proc/sys/kernel/unprivileged_bpf_disabled")
        .map_or(true, |v| v.trim() != "0");
    let mut expected = 0;
    if before_6_5 && sysctl {
        expected |= CAP_BPF;
    }
    // Before 6.6 the egress program is a netlink filter whatever was asked.
    if netlink || !tcx() {
        expected |= CAP_NET_ADMIN;
    }
    let lab = Lab::build(1);
    let mut extra = vec!["--user", "nobody"];
    if netlink {
        extra.extend(["--egress-attach", "netlink"]);
    }
    let (_dir, sensor) = lab.watch(FAST_CONFIG, &extra);
    let status = std::fs::read_to_string(format!("/proc/{}/status", sensor.pid())).unwrap();
    let field = |name: &str| status_field(&status, name);
    assert_eq!(field("Uid:"), vec!["65534"; 4], "{status}");
    let want = format!("{expected:016x}");
    assert_eq!(field("CapEff:"), vec![want.as_str()], "{status}");
    assert_eq!(field("CapPrm:"), vec![want.as_str()], "{status}");
    assert_eq!(field("CapInh:"), vec!["0000000000000000"], "{status}");
    assert_eq!(field("NoNewPrivs:"), vec!["1"], "{status}");
    if netlink || !tcx() {
        assert_eq!(lab.egress_filters(), 1, "the egress filter is attached");
    }
    // Still counting, and still able to detach at the end.
    lab.send_udp(0, SocketAddr::new(SERVERS_V4[0].into(), 4242), 3, 20);
    std::thread::sleep(Duration::from_millis(500));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    assert_three_packets_to_4242(&lab, &out.stdout);
    assert!(!lab.xdp_attached(), "detached after dropping privileges");
    assert_eq!(
        lab.egress_filters(),
        0,
        "no egress filter left: {}",
        out.stderr
    );
    if expected != 0 {
        assert!(
            out.stderr
                .contains("running with only the capabilities it still needs"),
            "the log says what it keeps: {}",
            out.stderr
        );
    }
}

/// The privileges the packaged unit gives the sensor (`sensor-user/packaging/
/// kettlewatch.service`): a user that is not root, with CAP_BPF, CAP_NET_ADMIN and
/// CAP_PERFMON as ambient capabilities, the bounding set cut to those three and
/// no_new_privs. It attaches, counts, writes its state and detaches.
#[test]
fn runs_as_a_non_root_user_with_only_the_units_three_capabilities() {
    if !env::have_root() || !env::have_tool("ip") || !env::have_tool("setpriv") {
        return;
    }
    let lab = Lab::build(1);
    let dir = env::TempDir::new();
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let cfg = dir.join("kw.toml");
    std::fs::write(&cfg, FAST_CONFIG).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    let caps = "-all,+bpf,+net_admin,+perfmon";
    let wrapper = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        &format!("--inh-caps={caps}"),
        &format!("--ambient-caps={caps}"),
        &format!("--bounding-set={caps}"),
        "--no-new-privs",
    ];
    let args = [
        "--config",
        cfg.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ];
    let mut sensor = Sensor::start_under(&lab.gw, &wrapper, "lan0", &args, false);
    sensor.wait_for_log(ATTACHED, Duration::from_secs(30));
    let status = std::fs::read_to_string(format!("/proc/{}/status", sensor.pid())).unwrap();
    let field = |name: &str| status_field(&status, name);
    assert_eq!(field("Uid:"), vec!["65534"; 4], "{status}");
    // CAP_NET_ADMIN (12), CAP_PERFMON (38), CAP_BPF (39), and nothing else.
    let three = format!("{:016x}", (1u64 << 12) | (1 << 38) | (1 << 39));
    assert_eq!(field("CapEff:"), vec![three.as_str()], "{status}");
    assert_eq!(field("CapBnd:"), vec![three.as_str()], "{status}");
    assert_eq!(field("NoNewPrivs:"), vec!["1"], "{status}");
    lab.send_udp(0, SocketAddr::new(SERVERS_V4[0].into(), 4242), 3, 20);
    std::thread::sleep(Duration::from_millis(800));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    assert_three_packets_to_4242(&lab, &out.stdout);
    assert!(!lab.xdp_attached(), "detached");
    assert!(
        std::fs::read_dir(&state).unwrap().count() > 0,
        "the inventory was written by the unprivileged user"
    );
}

/// `kettlewatch run ... | head -n 2`: once the reader has its lines and leaves, the run
/// stops by itself, exits 0 without a word about lost lines, and detaches.
#[test]
fn a_reader_that_closes_stdout_ends_the_run_quietly_and_detaches() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(1);
    let dir = TempDir::new();
    let cfg = dir.join("kw.toml");
    std::fs::write(&cfg, FAST_CONFIG).unwrap();
    let stderr = dir.join("stderr");
    let script = format!(
        "timeout 60 ip netns exec {} {} run --iface lan0 --format json --config {} --state-dir {} 2>{} | head -n 2; exit ${{PIPESTATUS[0]}}",
        lab.gw.name,
        env::kettlewatch().display(),
        cfg.display(),
        dir.join("state").display(),
        stderr.display()
    );
    let run = std::thread::spawn(move || {
        std::process::Command::new("bash")
            .args(["-c", &script])
            .output()
            .expect("run bash")
    });
    // Traffic until the run ends, so there are lines to write after the reader left.
    let to = SocketAddr::new(IpAddr::V4(SERVERS_V4[0]), 40001);
    while !run.is_finished() {
        lab.send_udp(0, to, 5, 64);
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = run.join().unwrap();
    let said = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert_eq!(
        out.status.code(),
        Some(0),
        "run's exit (124 is timeout's: it never noticed the reader left)\n{said}"
    );
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 2, "head got its lines");
    events::parse(&lines);
    assert!(
        !said.contains("WARN") && !said.contains("ERROR") && !said.contains("lost"),
        "nothing to say about a reader that left: {said}"
    );
    assert!(!lab.xdp_attached(), "detached on the way out");
}
