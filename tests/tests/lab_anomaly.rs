//! Behaviour detectors in a namespace lab (sensor-user/src/anomaly): a telnet sweep, an
//! upload burst, a device asking a resolver outside the LAN, and steady devices that must
//! stay quiet.

use std::{
    net::{IpAddr, SocketAddr, TcpStream, UdpSocket},
    time::Duration,
};

use kettlewatch_tests::{
    announce,
    env::{self, TempDir},
    events,
    lab::Lab,
    proc::Sensor,
    registrar::Registrar,
    sshd::Sshd,
};
use serde_json::Value;

/// The lab's sensor with every device's baseline in monitor mode.
fn monitored(lab: &Lab) -> (TempDir, Sensor) {
    let config = format!(
        "{}[baseline]\nmode = \"monitor\"\n",
        kettlewatch_tests::lab::FAST_CONFIG
    );
    lab.watch(&config, &[])
}

/// A server on the lab's internet side at `at` that accepts and closes `n` connections.
fn closing_server(lab: &Lab, at: SocketAddr, n: usize) -> std::thread::JoinHandle<()> {
    let l = lab
        .inet
        .run(move || std::net::TcpListener::bind(at).expect("bind"));
    std::thread::spawn(move || {
        for c in l.incoming().take(n) {
            drop(c);
        }
    })
}

/// Stops the sensor once it wrote an `unanswered_retries` alert: every event, and that
/// alert, the only one.
fn one_retry_alert(sensor: Sensor) -> (Vec<Value>, Value) {
    let seen = sensor.wait_for_line(
        |l| l.contains("\"unanswered_retries\""),
        Duration::from_secs(5),
    );
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    assert!(
        seen.is_some(),
        "no unanswered_retries: {:#?}",
        anomalies(&evs)
    );
    let r = events::alerts(&evs, "unanswered_retries");
    assert_eq!(r.len(), 1, "{r:#?}");
    let alert = r[0].clone();
    (evs, alert)
}

fn anomalies(evs: &[Value]) -> Vec<&Value> {
    events::of_type(evs, "alert")
        .into_iter()
        .filter(|a| a["iot"]["rule"]["source"] == "anomaly")
        .collect()
}

#[test]
fn sweeps_bursts_and_foreign_resolvers_alert_and_steady_devices_do_not() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    // 0: sweeps telnet, 1: uploads a burst, 2: asks a foreign resolver, 3-5: steady,
    // 6: sweeps its LAN peers (the gateway sees its ARP requests).
    let lab = Lab::build(7);
    let dir = TempDir::new();
    let cfg = dir.join("kw.toml");
    std::fs::write(
        &cfg,
        "[sensor]\nname = \"lab\"\npoll_interval = \"200ms\"\nflow_report = \"1s\"\nstats_interval = \"1s\"\n\n\
         [baseline]\nmode = \"monitor\"\n\n\
         [anomaly]\nvolume_interval = \"1s\"\nvolume_warmup = 4\nvolume_floor_bytes = 50000\nvolume_floor_packets = 100\n",
    )
    .unwrap();
    let mut sensor = Sensor::start(&lab.gw, "lan0", &["--config", cfg.to_str().unwrap()], false);
    sensor.wait_for_log("watching lan0", Duration::from_secs(30));
    // Steady traffic from every device but the sweeper for a few intervals.
    let steady = |lab: &Lab, dev: usize, bytes: usize| {
        let from: IpAddr = lab.devices[dev].v4.into();
        lab.devices[dev].ns.run(move || {
            let s = UdpSocket::bind((from, 0)).unwrap();
            for _ in 0..10 {
                s.send_to(&vec![0x5a; bytes / 10], "203.0.113.10:5000")
                    .unwrap();
            }
        });
    };
    for _ in 0..7 {
        for dev in 1..6 {
            steady(&lab, dev, 20_000);
        }
        std::thread::sleep(Duration::from_millis(1000));
    }
    // The sweep: telnet SYNs to 64 addresses in the "internet".
    let t0 = std::time::Instant::now();
    lab.devices[0].ns.run(|| {
        for i in 0..64u8 {
            let port = if i % 2 == 0 { 23 } else { 2323 };
            let to = SocketAddr::from(([203, 0, 113, 100 + i % 100], port));
            let _ = TcpStream::connect_timeout(&to, Duration::from_millis(5));
        }
    });
    // The burst: device 1 uploads 20 times its usual rate.
    steady(&lab, 1, 400_000);
    // The resolver: device 2 asks one in the "internet" directly.
    let from: IpAddr = lab.devices[2].v4.into();
    lab.devices[2].ns.run(move || {
        let s = UdpSocket::bind((from, 0)).unwrap();
        s.send_to(
            &announce::dns_query(9, "cloud.example.com"),
            "203.0.113.53:53",
        )
        .unwrap();
    });
    for dev in 3..6 {
        steady(&lab, dev, 20_000);
    }
    // The lateral sweep: 40 LAN addresses nobody has; each costs an ARP request.
    let from: IpAddr = lab.devices[6].v4.into();
    lab.devices[6].ns.run(move || {
        let s = UdpSocket::bind((from, 0)).unwrap();
        for i in 0..40u8 {
            let _ = s.send_to(b"hi", SocketAddr::from(([198, 51, 100, 160 + i], 9)));
        }
    });
    let scan = sensor.wait_for_line(|l| l.contains("\"scan_fanout\""), Duration::from_secs(5));
    assert!(scan.is_some(), "scan_fanout");
    assert!(
        t0.elapsed() < Duration::from_millis(2500),
        "within two poll intervals of the sweep's end (and its own time)"
    );
    std::thread::sleep(Duration::from_millis(2500));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    let found = anomalies(&evs);
    let by = |id: &str, dev: usize| {
        found
            .iter()
            .filter(|a| {
                a["iot"]["rule"]["id"] == id
                    && a["ether"]["src_mac"] == lab.devices[dev].mac.to_string()
            })
            .count()
    };
    assert_eq!(by("scan_fanout", 0), 1, "{found:#?}");
    let scan = found
        .iter()
        .find(|a| a["iot"]["rule"]["id"] == "scan_fanout")
        .unwrap();
    let ports = scan["alert"]["metadata"]["top_ports"].to_string();
    assert!(
        ports.contains("\"23 (") && ports.contains("\"2323 ("),
        "{ports}"
    );
    assert_eq!(by("volume_spike", 1), 1, "{found:#?}");
    assert_eq!(by("scan_fanout", 6), 1, "the LAN sweep: {found:#?}");
    assert_eq!(by("unexpected_dns_server", 2), 1, "{found:#?}");
    for dev in 3..6 {
        let any: Vec<_> = found
            .iter()
            .filter(|a| a["ether"]["src_mac"] == lab.devices[dev].mac.to_string())
            .collect();
        assert!(any.is_empty(), "steady device {dev}: {any:#?}");
    }
}

/// Asks the lab's resolver (the gateway's dnsmasq) `name` for record type `ty`; returns
/// the answer's RCODE.
fn ask(lab: &Lab, dev: usize, id: u16, name: &str, ty: simple_dns::TYPE) -> simple_dns::RCODE {
    let from: IpAddr = lab.devices[dev].v4.into();
    let q = announce::dns_query_for(id, name, ty);
    let answer = lab.devices[dev].ns.run(move || {
        let s = UdpSocket::bind((from, 0)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.send_to(&q, "198.51.100.1:53").unwrap();
        let mut buf = [0u8; 1500];
        let n = s.recv(&mut buf).expect("an answer from the lab's resolver");
        buf[..n].to_vec()
    });
    simple_dns::Packet::parse(&answer).unwrap().rcode()
}

/// Base32 text as a tunnel encodes data (deterministic, random-looking).
fn encoded(seed: u64, n: usize) -> String {
    announce::made_up(seed, n, announce::BASE32)
}

#[test]
fn a_dns_tunnel_and_generated_names_through_the_lans_resolver_alert() {
    if !env::have_root() || !env::have_tool("ip") || !env::have_tool("dnsmasq") {
        return;
    }
    // 0: tunnels through the LAN's resolver (TXT queries carrying base32 data, as dnscat2
    // does), 1: a DGA bot (NXDOMAIN for generated .com names), 2: an ordinary device
    // (its cloud's address, and TXT of a `_service` name as DNS-SD asks), 3: a command
    // channel asking one short name's TXT record again and again, 4: a channel asking
    // its own name server (a lab server's address, where nothing answers) for short
    // encoded names.
    let lab = Lab::build(5);
    // No upstream: every name under these domains is NXDOMAIN, nothing leaves the lab.
    let _dns = lab.dnsmasq_dns(&[
        ("tunnel.example", ""),
        ("com", ""),
        ("c2.example", ""),
        ("cloud.example.net", "203.0.113.10"),
    ]);
    let (_dir, sensor) = monitored(&lab);
    for i in 0..40u16 {
        let name = format!(
            "{}.{}.t.tunnel.example",
            encoded(u64::from(i), 48),
            encoded(u64::from(i) + 999, 16)
        );
        ask(&lab, 0, i, &name, simple_dns::TYPE::TXT);
        assert_eq!(
            ask(&lab, 2, 1000 + i, "cloud.example.net", simple_dns::TYPE::A),
            simple_dns::RCODE::NoError
        );
        ask(
            &lab,
            2,
            3000 + i,
            "_ipp._tcp.cloud.example.net",
            simple_dns::TYPE::TXT,
        );
        if i < 12 {
            ask(&lab, 3, 4000 + i, "cmd.c2.example", simple_dns::TYPE::TXT);
            let q = announce::dns_query_for(
                5000 + i,
                &format!("{}.ns.example", encoded(u64::from(i) + 7000, 24)),
                simple_dns::TYPE::A,
            );
            let from: IpAddr = lab.devices[4].v4.into();
            lab.devices[4].ns.run(move || {
                let s = UdpSocket::bind((from, 0)).unwrap();
                s.send_to(&q, "203.0.113.30:53").unwrap();
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for i in 0..14u16 {
        let name = format!("www.{}.com", encoded(u64::from(i) + 5000, 12));
        assert_eq!(
            ask(&lab, 1, 2000 + i, &name, simple_dns::TYPE::A),
            simple_dns::RCODE::NameError,
            "the lab's resolver says {name} does not exist"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let found = sensor.wait_for_line(|l| l.contains("\"dga_activity\""), Duration::from_secs(10));
    assert!(found.is_some(), "a dga_activity alert");
    std::thread::sleep(Duration::from_millis(500));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    let mac = |i: usize| lab.devices[i].mac.to_string();
    let tunnel = events::alerts(&evs, "dns_tunnel");
    assert_eq!(tunnel.len(), 3, "{tunnel:#?}");
    let of = |dev: usize| {
        tunnel
            .iter()
            .find(|a| a["iot"]["device"]["mac"] == mac(dev))
            .unwrap_or_else(|| panic!("no tunnel for device {dev}: {tunnel:#?}"))
    };
    let m = &of(0)["alert"]["metadata"];
    assert_eq!(m["domain"][0], "tunnel.example");
    // The tenth TXT query of encoded names is the hour's count; the thirtieth, the
    // minute's, is held back by the per-device limit and counted.
    assert_eq!(m["pace"][0], "slow", "{m}");
    assert_eq!(m["odd_types"], serde_json::json!(["TXT"]));
    assert_eq!(m["resolver"][0], "lan", "{m}");
    // 24-character names: through the LAN's resolver they would need 52.
    let m = &of(4)["alert"]["metadata"];
    assert_eq!(
        (&m["domain"][0], &m["pace"][0], &m["resolver"][0]),
        (&"ns.example".into(), &"slow".into(), &"other".into()),
        "{m}"
    );
    assert_eq!(m["resolver_address"][0], "203.0.113.30");
    let m = &of(3)["alert"]["metadata"];
    assert_eq!(m["domain"][0], "c2.example");
    assert_eq!(m["odd_type_queries"][0], "10", "{m}");
    let dga = events::alerts(&evs, "dga_activity");
    assert_eq!(dga.len(), 1, "{dga:#?}");
    assert_eq!(dga[0]["iot"]["device"]["mac"], mac(1));
    assert!(
        anomalies(&evs)
            .iter()
            .all(|a| a["iot"]["device"]["mac"] != mac(2)),
        "the ordinary device raised nothing: {:#?}",
        anomalies(&evs)
    );
}

#[test]
fn password_guessing_over_ssh_alerts_and_a_device_polling_https_does_not() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    // 0: 25 SSH connections to one server in a few seconds (a bot guessing passwords),
    // 1: 25 HTTPS connections to the same server (a chatty device without keep-alive).
    let lab = Lab::build(2);
    let (_dir, sensor) = monitored(&lab);
    for (dev, port) in [(0usize, 22u16), (1, 443)] {
        lab.devices[dev].ns.run(move || {
            let to = SocketAddr::from(([203, 0, 113, 10], port));
            for _ in 0..25 {
                // Nothing listens there: each attempt is one SYN and a reset.
                let _ = TcpStream::connect_timeout(&to, Duration::from_millis(200));
                std::thread::sleep(Duration::from_millis(40));
            }
        });
    }
    let found = sensor.wait_for_line(|l| l.contains("\"brute_force\""), Duration::from_secs(10));
    assert!(found.is_some(), "a brute_force alert");
    std::thread::sleep(Duration::from_millis(600));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    let a = events::alerts(&evs, "brute_force");
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0]["iot"]["device"]["mac"], lab.devices[0].mac.to_string());
    assert_eq!(a[0]["alert"]["signature_id"], 9_100_020);
    let m = &a[0]["alert"]["metadata"];
    assert_eq!(m["direction"][0], "outbound");
    assert_eq!(m["peer"][0], "203.0.113.10");
    assert_eq!(m["port"][0], "22");
    assert!(
        m["connections"][0]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 20,
        "{m}"
    );
    assert!(
        events::alerts(&evs, "syn_flood_participation").is_empty(),
        "25 connections are no flood"
    );
}

/// Beacons in a lab: device 0 posts a check-in over HTTP to an address on TCP/8888
/// every second, give or take a fifth, on a new connection each time (as an agent does);
/// device 1 does the same on TCP/80, HTTP's own port, like a device polling its cloud;
/// device 2 checks in on TCP/8888 with a server it resolved by a name of its own;
/// device 3 with a server it resolved by a name the knowledge base gives a product's
/// cloud (Meross's MQTT brokers). Devices 0 and 2 are beacons.
#[test]
fn check_ins_over_http_off_its_port_are_a_beacon_unless_to_a_products_cloud() {
    if !env::have_root() || !env::have_tool("ip") || !env::have_tool("dnsmasq") {
        return;
    }
    use std::io::{Read, Write};
    let lab = Lab::build(4);
    let c2 = SocketAddr::from(([203, 0, 113, 10], 8888));
    let web = SocketAddr::from(([203, 0, 113, 10], 80));
    let named = SocketAddr::from(([203, 0, 113, 20], 8888));
    let cloud = SocketAddr::from(([203, 0, 113, 30], 8888));
    let _dns = lab.dnsmasq_dns(&[
        ("agent.c2.example", "203.0.113.20"),
        ("mqtt-eu-3.meross.com", "203.0.113.30"),
    ]);
    const CHECK_INS: usize = 14;
    let mut servers = Vec::new();
    for at in [c2, web, named, cloud] {
        let l = lab
            .inet
            .run(move || std::net::TcpListener::bind(at).expect("bind"));
        servers.push(std::thread::spawn(move || {
            for c in l.incoming().take(CHECK_INS) {
                let Ok(mut c) = c else { continue };
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf);
                let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
            }
        }));
    }
    let config = format!(
        "{}[baseline]\nmode = \"learn\"\n",
        kettlewatch_tests::lab::FAST_CONFIG
    );
    let state = TempDir::new();
    let sd = state.join("state").to_str().unwrap().to_string();
    let (_dir, sensor) = lab.watch(&config, &["--state-dir", &sd]);
    for (dev, name) in [(2, "agent.c2.example"), (3, "mqtt-eu-3.meross.com")] {
        assert_eq!(
            ask(&lab, dev, 7, name, simple_dns::TYPE::A),
            simple_dns::RCODE::NoError
        );
    }
    // Jitter from a fixed sequence, so every run is the same beacon.
    let jitter = [
        0, 150, -120, 60, -180, 90, -30, 170, -90, 20, 110, -160, 40, -60,
    ];
    for (i, j) in jitter.iter().enumerate().take(CHECK_INS) {
        for (dev, to) in [(0usize, c2), (1, web), (2, named), (3, cloud)] {
            lab.devices[dev].ns.run(move || {
                let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2)).unwrap();
                let body = format!("{{\"id\":\"agent-7\",\"n\":{:02}}}", i % 10);
                let req = format!(
                    "POST /beacon HTTP/1.1\r\nHost: {to}\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                s.write_all(req.as_bytes()).unwrap();
                let mut buf = [0u8; 256];
                let _ = s.read(&mut buf);
            });
        }
        std::thread::sleep(Duration::from_millis((1000 + j) as u64));
    }
    for s in servers {
        s.join().unwrap();
    }
    let seen = sensor.wait_for_line(
        |l| l.contains("\"reached_by\":[\"name\"]"),
        Duration::from_secs(5),
    );
    assert!(seen.is_some(), "no beacon alert for the named server");
    std::thread::sleep(Duration::from_millis(600));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    let mut b = events::alerts(&evs, "beacon");
    b.sort_by_key(|a| a["iot"]["device"]["mac"].as_str().map(str::to_string));
    assert_eq!(b.len(), 2, "{b:#?}");
    let macs: Vec<_> = b
        .iter()
        .map(|a| a["iot"]["device"]["mac"].clone())
        .collect();
    assert_eq!(
        macs,
        [
            lab.devices[0].mac.to_string(),
            lab.devices[2].mac.to_string()
        ],
        "devices 0 and 2 only: {b:#?}"
    );
    let m = &b[0]["alert"]["metadata"];
    assert_eq!(
        (&m["destination"][0], &m["port"][0]),
        (&"203.0.113.10".into(), &"8888".into())
    );
    assert_eq!(m["service"][0], "http");
    assert_eq!(m["interval_s"][0], "1", "{m}");
    assert_eq!(m["reached_by"][0], "address");
    assert_eq!(
        b[0]["dest_port"], 8888,
        "the alert is about the flow: {}",
        b[0]
    );
    let m = &b[1]["alert"]["metadata"];
    assert_eq!(m["destination"][0], "203.0.113.20");
    assert_eq!(m["reached_by"][0], "name");
    // All were learned at their first packet; the beacons' destinations were taken back.
    let shown = std::process::Command::new(env::kettlewatch())
        .args(["baseline", "show", "--state-dir", &sd])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(shown.contains("203.0.113.10:80/tcp"), "{shown}");
    assert!(shown.contains("mqtt-eu-3.meross.com"), "{shown}");
    assert!(!shown.contains("203.0.113.10:8888"), "{shown}");
    assert!(!shown.contains("agent.c2.example"), "{shown}");
}

/// A bot retrying its dead command server: device 0 tries TCP/6667 at an address where
/// nothing listens, twenty times a second, for six seconds (each attempt one SYN,
/// refused: 120 unanswered SYNs); device 1 reaches a server that answers as often. Only device 0's flow never completes
/// a handshake: `unanswered_retries`, not a scan, not a flood.
#[test]
fn a_bot_retrying_a_dead_server_is_unanswered_retries_and_a_working_server_is_not() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(2);
    let dead = SocketAddr::from(([203, 0, 113, 20], 6667));
    let alive = SocketAddr::from(([203, 0, 113, 10], 8080));
    let server = closing_server(&lab, alive, 120);
    let (_dir, sensor) = monitored(&lab);
    for _ in 0..120 {
        for (dev, to) in [(0usize, dead), (1, alive)] {
            lab.devices[dev].ns.run(move || {
                let _ = TcpStream::connect_timeout(&to, Duration::from_millis(200));
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    server.join().unwrap();
    let (evs, r) = one_retry_alert(sensor);
    assert_eq!(r["iot"]["device"]["mac"], lab.devices[0].mac.to_string());
    let m = &r["alert"]["metadata"];
    assert_eq!(
        (&m["destination"][0], &m["port"][0]),
        (&"203.0.113.20".into(), &"6667".into())
    );
    for rule in ["scan_fanout", "syn_flood_participation"] {
        assert!(events::alerts(&evs, rule).is_empty(), "{rule}");
    }
}

/// SIP password guessing over UDP, where there are no connections to count: device 0 runs
/// SIPVicious' `svcrack` (Debian's package) through 300 passwords against a real
/// registrar (kamailio, digest authentication); device 1 is a phone that registers
/// with its password five times with `sipsak`. Only device 0 guessed.
#[test]
fn sip_password_guessing_over_udp_is_brute_force_and_a_phone_registering_is_not() {
    if !env::have_root()
        || !env::have_tool("ip")
        || !env::have_tool("kamailio")
        || !env::have_tool("svcrack")
        || !env::have_tool("sipsak")
    {
        return;
    }
    let lab = Lab::build(2);
    let registrar = SocketAddr::from(([203, 0, 113, 10], 5060));
    let _kamailio = Registrar::start(&lab.inet, registrar, "kettle-7319");
    let (_dir, sensor) = monitored(&lab);
    let out = lab.devices[0]
        .ns
        .cmd("svcrack")
        .args(["-u", "1000", "-r", "100-399", "-p", "5060", "203.0.113.10"])
        .output()
        .expect("svcrack");
    assert!(out.status.success(), "svcrack: {out:?}");
    for _ in 0..5 {
        let out = lab.devices[1]
            .ns
            .cmd("sipsak")
            .args([
                "-U",
                "-C",
                "empty",
                "-i",
                "-vv",
                "-s",
                "sip:1001@203.0.113.10",
            ])
            .args(["-a", "kettle-7319"])
            .output()
            .expect("sipsak");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said.contains("registering user 1001@... \tOK"),
            "the phone did not register: {out:?}"
        );
    }
    let found = sensor.wait_for_line(|l| l.contains("\"brute_force\""), Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(600));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    assert!(found.is_some(), "no brute_force: {:#?}", anomalies(&evs));
    let a = events::alerts(&evs, "brute_force");
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0]["iot"]["device"]["mac"], lab.devices[0].mac.to_string());
    let m = &a[0]["alert"]["metadata"];
    assert_eq!(
        (
            &m["direction"][0],
            &m["peer"][0],
            &m["port"][0],
            &m["service"][0]
        ),
        (
            &"outbound".into(),
            &"203.0.113.10".into(),
            &"5060".into(),
            &"sip".into()
        )
    );
    assert!(
        m["datagrams"][0].as_str().unwrap().parse::<u64>().unwrap() >= 40,
        "{m}"
    );
}

/// A short SSH guessing run: device 0 runs hydra (Debian's package) through ten
/// passwords against a real OpenSSH server, four at a time; device 1 logs in with its
/// key five times and uploads 200 KB each time. Only device 0 guessed.
#[test]
fn a_short_ssh_guessing_run_is_brute_force_and_sessions_that_work_are_not() {
    if !env::have_root()
        || !env::have_tool("ip")
        || !env::have_tool("sshd")
        || !env::have_tool("hydra")
    {
        return;
    }
    let lab = Lab::build(2);
    let server = SocketAddr::from(([203, 0, 113, 10], 22));
    let sshd = Sshd::start(&lab.inet, server);
    let dir = TempDir::new();
    let words = dir.join("passwords");
    let list: Vec<String> = (0..10).map(|i| format!("kettle-guess-{i}")).collect();
    std::fs::write(&words, list.join("\n") + "\n").unwrap();
    let upload = dir.join("upload");
    std::fs::write(&upload, vec![b'k'; 200_000]).unwrap();
    let (_dir, sensor) = monitored(&lab);
    let out = lab.devices[0]
        .ns
        .cmd("hydra")
        .args(["-l", "root", "-t", "4", "-I", "-P"])
        .arg(&words)
        .arg("ssh://203.0.113.10")
        .output()
        .expect("hydra");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("0 valid password"),
        "hydra did not finish its run: {out:?}"
    );
    for _ in 0..5 {
        let out = lab.devices[1]
            .ns
            .cmd("ssh")
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null", "-i"])
            .arg(sshd.client_key())
            .args(["root@203.0.113.10", "cat > /dev/null"])
            .stdin(std::fs::File::open(&upload).unwrap())
            .output()
            .expect("ssh");
        assert!(out.status.success(), "the key login failed: {out:?}");
    }
    let found = sensor.wait_for_line(|l| l.contains("\"brute_force\""), Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1500));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    assert!(found.is_some(), "no brute_force: {:#?}", anomalies(&evs));
    let a = events::alerts(&evs, "brute_force");
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0]["iot"]["device"]["mac"], lab.devices[0].mac.to_string());
    let m = &a[0]["alert"]["metadata"];
    assert_eq!(
        (&m["pattern"][0], &m["service"][0], &m["port"][0]),
        (&"short logins".into(), &"ssh".into(), &"22".into())
    );
}

/// A command server that worked, then died: device 0 talks to its C2 on TCP/6667 three
/// times, the server goes away (its port refuses), and the bot retries 120 times while
/// its connections to an HTTP server keep working. `unanswered_retries`, though the
/// flow once completed handshakes.
#[test]
fn a_bot_retrying_a_server_that_died_is_unanswered_retries() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(1);
    let c2 = SocketAddr::from(([203, 0, 113, 20], 6667));
    let web = SocketAddr::from(([203, 0, 113, 10], 8080));
    let c2_listener = lab
        .inet
        .run(move || std::net::TcpListener::bind(c2).expect("bind"));
    let web_server = closing_server(&lab, web, 120);
    let (_dir, sensor) = monitored(&lab);
    let talk = move |to: SocketAddr| {
        if let Ok(mut s) = TcpStream::connect_timeout(&to, Duration::from_millis(200)) {
            use std::io::Write as _;
            let _ = s.write_all(b"PING :c2\r\n");
        }
    };
    for _ in 0..3 {
        lab.devices[0].ns.run(move || talk(c2));
        let _ = c2_listener.accept();
        std::thread::sleep(Duration::from_millis(300));
    }
    // The server is seized: its port refuses from now on.
    drop(c2_listener);
    for _ in 0..120 {
        lab.devices[0].ns.run(move || {
            talk(c2);
            talk(web);
        });
        std::thread::sleep(Duration::from_millis(50));
    }
    web_server.join().unwrap();
    let (_, r) = one_retry_alert(sensor);
    let m = &r["alert"]["metadata"];
    assert_eq!(
        (&m["destination"][0], &m["port"][0]),
        (&"203.0.113.20".into(), &"6667".into())
    );
}
