//! The device inventory in a namespace lab: host names from real DHCP clients, new and
//! missing devices, address changes, classification from announcements and a declared
//! mismatch, the inventory surviving kill -9, hostile names staying valid JSON, a device
//! that changes its randomised MAC keeping its identity.

use std::{
    net::{SocketAddr, UdpSocket},
    time::Duration,
};

use kettlewatch_tests::{
    announce,
    env::{self, TempDir},
    events,
    lab::{FAST_CONFIG, Lab, SERVERS_V4},
};
use serde_json::Value;

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
        let d = events::last_device(&evs, lab.devices[i].mac.to_string());
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
        lab.devices[0].mac
    );
    let (_dir, sensor) = lab.watch(&config, &[]);
    lab.send_udp(1, SocketAddr::new(SERVERS_V4[1].into(), 5555), 1, 10);
    // The declared camera keeps talking, so it is never missing.
    for _ in 0..12 {
        lab.send_udp(0, SocketAddr::new(SERVERS_V4[0].into(), 5555), 1, 10);
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
    let cam = lab.devices[0].mac.to_string();
    let plug = lab.devices[1].mac.to_string();
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
        let last = events::last_device(&evs, plug.as_str());
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

    let cam_dev = events::first_device(&evs, cam.as_str());
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
        lab.devices[0].mac
    );
    let (_dir, sensor) = lab.watch(&config, &[]);
    let srv = SocketAddr::new(SERVERS_V4[0].into(), 6060);
    lab.send_udp(0, srv, 1, 10);
    lab.send_udp(1, srv, 1, 10);
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
        .find(|a| a["ether"]["src_mac"] == lab.devices[1].mac.to_string().as_str())
        .expect("an alert for the device that took the address");
    assert_eq!(taken["alert"]["metadata"]["address"][0], camera_ip.as_str());
    assert_eq!(
        taken["alert"]["metadata"]["previous_mac"][0],
        lab.devices[0].mac.to_string().as_str()
    );
    assert_eq!(taken["alert"]["signature_id"], 9_100_009);
    let moved = changes
        .iter()
        .find(|a| a["ether"]["src_mac"] == lab.devices[0].mac.to_string().as_str())
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
        lab.devices[0].mac
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
        events::last_device(&evs, lab.devices[i].mac.to_string())["iot"]["device"].clone()
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
    assert_eq!(
        plug["product"],
        serde_json::json!({"brand": "TP-Link", "model": "HS110(EU)"}),
        "Kasa names its model; Kasa is TP-Link's"
    );
    assert_eq!(
        cam["product"],
        serde_json::json!({"model": "Google Home Mini"}),
        "the mDNS model, and no brand from a randomised MAC"
    );
    assert!(plug["confidence"].as_f64().unwrap() > 0.8);
    let mismatch: Vec<&Value> = events::of_type(&evs, "alert")
        .into_iter()
        .filter(|a| a["iot"]["rule"]["id"] == "category_mismatch")
        .collect();
    assert_eq!(mismatch.len(), 1, "{mismatch:?}");
    let m = mismatch[0];
    assert_eq!(m["ether"]["src_mac"], lab.devices[0].mac.to_string());
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
        .args(["-s", "/bin/true", "-x", "hostname:porch-bulb"])
        .output()
        .unwrap();
    assert!(out.status.success(), "udhcpc");
    let me = lab.devices[0].mac.to_string();
    // `devices` reads the store while the sensor writes it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let stored = loop {
        let all = stored_devices(&state_dir);
        if let Some(d) = all
            .into_iter()
            .find(|d| d["mac"] == me && d["profile"]["hostname"] == "porch-bulb")
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
        table.contains(&me) && table.contains("porch-bulb"),
        "{table}"
    );

    // A new run: the device is known, so no second new_device, and its first sight stays.
    let (_dir2, sensor) = lab.watch(FAST_CONFIG, &["--state-dir", sd]);
    lab.send_udp(0, SocketAddr::new(SERVERS_V4[0].into(), 4242), 2, 20);
    std::thread::sleep(Duration::from_millis(800));
    let second = sensor.stop();
    assert!(second.status.success(), "{}", second.stderr);
    let evs = events::parse(&second.stdout);
    assert!(
        !evs.iter().any(|e| e["iot"]["rule"]["id"] == "new_device"),
        "new_device is raised once per MAC, across restarts"
    );
    let dev = events::first_device(&evs, me);
    assert_eq!(
        dev["iot"]["device"]["first_seen"],
        sensor_user::model::clock::eve_timestamp(stored["first_seen_ns"].as_u64().unwrap()),
        "first sight comes from the store"
    );
    assert_eq!(
        dev["iot"]["device"]["hostname"], "porch-bulb",
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
        events::last_device(&evs, lab.devices[i].mac.to_string())["iot"]["device"].clone()
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
    let st = &events::of_type(&evs, "stats").last().unwrap()["iot"];
    assert_eq!(
        st["sensor"]["discovery_frames"], st["kernel"]["discovery_copied"],
        "every copied frame was decoded or counted"
    );
}

/// busybox udhcpc on device `dev` with host name `host` and, when given, client id
/// `client_id` (hex, option 61); panics with its output when it gets no lease.
fn dhcp_with(lab: &Lab, dev: usize, host: &str, client_id: Option<&str>) {
    let mut cmd = lab.devices[dev].ns.cmd("busybox");
    cmd.args([
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
    .args(["-x", &format!("hostname:{host}")]);
    if let Some(id) = client_id {
        cmd.args(["-x", &format!("0x3d:{id}")]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "udhcpc on device {dev}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Device `dev` takes MAC `mac`, as a phone does when it rotates its randomised MAC; its
/// routes come back with the link.
fn new_mac(lab: &Lab, dev: usize, mac: &str) {
    let ns = &lab.devices[dev].ns;
    ns.ip(&["link", "set", "eth0", "down"]);
    ns.ip(&["link", "set", "eth0", "address", mac]);
    ns.ip(&["link", "set", "eth0", "up"]);
    ns.ip(&["route", "replace", "default", "via", "198.51.100.1"]);
}

/// One device, many MACs: a device that changes its (randomised) MAC and asks DHCP again
/// with the same client id and host name is the same identity: no second `new_device`,
/// and its device event says which MAC it was tied to. A different device, and a MAC that
/// never says who it is (after `identity_grace`), are new.
#[test]
fn a_device_that_changes_its_randomised_mac_keeps_its_identity() {
    if !env::have_root()
        || !env::have_tool("ip")
        || !env::have_tool("dnsmasq")
        || !env::have_tool("busybox")
    {
        return;
    }
    let lab = Lab::build(2);
    let _dhcp = lab.dnsmasq();
    let config = format!("{FAST_CONFIG}[inventory]\nidentity_grace = \"2s\"\n");
    let (_dir, sensor) = lab.watch(&config, &[]);
    let first = lab.devices[0].mac.to_string();
    let other = lab.devices[1].mac.to_string();
    dhcp_with(&lab, 0, "den-tablet", Some("ff00a1b2c3d4e5f6"));
    dhcp_with(&lab, 1, "hall-sensor", Some("ff0011223344"));
    assert!(
        sensor
            .wait_for_line(
                |l| l.contains("den-tablet") && l.contains(&first),
                Duration::from_secs(10)
            )
            .is_some(),
        "the first MAC's device event"
    );
    // The same device, a new randomised MAC (locally administered), the same DHCP identity.
    let rotated = "06:3c:1d:7a:52:e9";
    new_mac(&lab, 0, rotated);
    dhcp_with(&lab, 0, "den-tablet", Some("ff00a1b2c3d4e5f6"));
    // Device 1 also takes a new MAC but says nothing about itself: after the grace it is new.
    let silent = "0a:77:31:c0:fe:01";
    new_mac(&lab, 1, silent);
    lab.send_udp(1, SocketAddr::new(SERVERS_V4[0].into(), 40002), 2, 10);
    assert!(
        sensor
            .wait_for_line(
                |l| l.contains("\"new_device\"") && l.contains(silent),
                Duration::from_secs(15)
            )
            .is_some(),
        "the silent MAC is new once its grace has passed"
    );
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    let new_for: Vec<String> = events::alerts(&evs, "new_device")
        .iter()
        .map(|a| a["iot"]["device"]["mac"].as_str().unwrap().to_string())
        .collect();
    assert!(new_for.contains(&first), "{new_for:?}");
    assert!(
        new_for.contains(&other),
        "a different client id is another device: {new_for:?}"
    );
    assert!(
        !new_for.iter().any(|m| m == rotated),
        "the rotated MAC is the same identity: {new_for:?}"
    );
    assert_eq!(
        new_for.iter().filter(|m| *m == silent).count(),
        1,
        "{new_for:?}"
    );
    let d = events::last_device(&evs, rotated);
    let id = &d["iot"]["device"]["identity"];
    assert_eq!(id["tied_to"], first.as_str(), "{d}");
    assert_eq!(id["by"], "dhcp_client_id", "{d}");
    assert_eq!(id["randomised_mac"], true);
    assert_eq!(d["iot"]["device"]["mac_scope"], "local");
    assert!(
        events::last_device(&evs, silent)["iot"]["device"]
            .get("identity")
            .is_none(),
        "nothing tied the silent MAC"
    );
}
