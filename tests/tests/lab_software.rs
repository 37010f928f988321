//! The software inventory and its known vulnerabilities in a namespace lab: a device
//! serving HTTP with an embedded web server's banner, a device opening SSH connections
//! with an old client's identification; real TCP through the gateway, the kernel's
//! first-payload copy, the real NVD and KEV slices (`tests/fixtures/vulns`) as feeds.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    time::Duration,
};

use kettlewatch_tests::{
    env::{self, TempDir},
    events,
    lab::{FAST_CONFIG, Lab, SERVERS_V4},
};
use serde_json::Value;

/// A banner as a real GoAhead 2.5 answers (rapid7/recog's HTTP server fingerprints).
const GOAHEAD: &[u8] = b"HTTP/1.0 200 OK\r\nServer: GoAhead-Webs/2.5.0 PeerSec-MatrixSSL/3.4.2-OPEN\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nok";
/// The SSH identification string of arkime's ssh2.pcap server.
const OLD_SSH: &[u8] = b"SSH-1.99-OpenSSH_3.9p1\r\n";

fn config() -> String {
    let v = env::fixtures().join("vulns");
    format!(
        "{FAST_CONFIG}\n[[vulns.feed]]\npath = \"{}\"\nformat = \"nvd\"\n\n[[vulns.feed]]\npath = \"{}\"\nformat = \"kev\"\n",
        v.join("nvdcve-2.0-slice.json").display(),
        v.join("kev-slice.json").display()
    )
}

/// `n` HTTP requests from the internet side to device 0's web server.
fn fetch_from_outside(lab: &Lab, n: usize) {
    let to = SocketAddr::new(lab.devices[0].v4.into(), 80);
    lab.inet.run(move || {
        for _ in 0..n {
            let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5)).expect("connect");
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
            let mut body = Vec::new();
            let _ = s.read_to_end(&mut body);
        }
    });
}

#[test]
fn a_served_banner_in_a_known_exploited_range_is_in_the_device_event_and_alerts_once() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(2);
    // Device 0 serves HTTP as an old embedded web server does.
    let web = lab.devices[0]
        .ns
        .run(|| TcpListener::bind("0.0.0.0:80").expect("bind :80 in the device"));
    let server = std::thread::spawn(move || {
        for c in web.incoming().take(3) {
            let Ok(mut c) = c else { continue };
            let mut req = [0u8; 512];
            let _ = c.read(&mut req);
            let _ = c.write_all(GOAHEAD);
        }
    });
    // An SSH server on the internet side that device 1 connects to.
    let ssh_at = SocketAddr::new(SERVERS_V4[0].into(), 22);
    let ssh = lab
        .inet
        .run(move || TcpListener::bind(ssh_at).expect("bind :22"));
    let ssh_server = std::thread::spawn(move || {
        for c in ssh.incoming().take(1) {
            let Ok(mut c) = c else { continue };
            let _ = c.write_all(b"SSH-2.0-OpenSSH_9.9\r\n");
            let mut buf = [0u8; 64];
            let _ = c.read(&mut buf);
        }
    });
    let state = TempDir::new();
    let state_dir = state.join("state");
    let sd = state_dir.to_str().unwrap().to_string();
    let (_dir, sensor) = lab.watch(&config(), &["--state-dir", &sd]);
    fetch_from_outside(&lab, 2);
    lab.devices[1].ns.run(move || {
        let mut s = TcpStream::connect_timeout(&ssh_at, Duration::from_secs(5)).expect("ssh");
        s.write_all(OLD_SSH).unwrap();
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf);
    });
    ssh_server.join().unwrap();
    let web_mac = lab.devices[0].mac.to_string();
    let kev_seen = sensor.wait_for_line(
        |l| l.contains("known_exploited_vulnerability"),
        Duration::from_secs(20),
    );
    assert!(kev_seen.is_some(), "no known_exploited_vulnerability alert");
    // Let the second device's records and a stats event come.
    std::thread::sleep(Duration::from_millis(1500));
    let first = sensor.stop();
    assert!(first.status.success(), "{}", first.stderr);
    let evs = events::parse(&first.stdout);

    let web = &events::last_device(&evs, &web_mac)["iot"]["device"];
    let sw = web["software"].as_array().expect("software");
    let goahead = sw
        .iter()
        .find(|e| e["product"] == "GoAhead")
        .unwrap_or_else(|| panic!("GoAhead in {web}"));
    assert_eq!(goahead["version"], "2.5.0");
    assert_eq!(goahead["sources"], serde_json::json!(["http_server"]));
    assert_eq!(
        goahead["cpe"],
        "cpe:2.3:a:embedthis:goahead:2.5.0:*:*:*:*:*:*:*"
    );
    let vulns = web["vulnerabilities"].as_array().expect("vulnerabilities");
    let kev = vulns
        .iter()
        .find(|v| v["cve"] == "CVE-2017-17562")
        .unwrap_or_else(|| panic!("CVE-2017-17562 in {web}"));
    assert_eq!(kev["known_exploited"], true);
    assert_eq!(kev["basis"], "version");
    assert_eq!(kev["product"], "GoAhead");
    assert!(
        ["high", "critical"].contains(&web["criticality"].as_str().unwrap()),
        "{web}"
    );
    assert!(
        web["why"].as_str().unwrap().contains("CVE-2017-17562"),
        "{web}"
    );
    assert_eq!(web["payload"]["serves"], serde_json::json!(["http"]));

    let alerts = events::alerts(&evs, "known_exploited_vulnerability");
    assert_eq!(alerts.len(), 1, "once per device and CVE: {alerts:?}");
    let a = alerts[0];
    assert_eq!(a["iot"]["device"]["mac"], web_mac.as_str());
    assert_eq!(
        a["alert"]["metadata"]["cve"],
        serde_json::json!(["CVE-2017-17562"])
    );

    // The old SSH client: in NVD's ranges, none known exploited, so no alert for it.
    let client = &events::last_device(&evs, lab.devices[1].mac.to_string())["iot"]["device"];
    let cves: Vec<&str> = client["vulnerabilities"]
        .as_array()
        .unwrap_or_else(|| panic!("vulnerabilities in {client}"))
        .iter()
        .map(|v| v["cve"].as_str().unwrap())
        .collect();
    assert!(cves.contains(&"CVE-2024-6387"), "{cves:?}");
    assert!(
        !cves.contains(&"CVE-2017-17562"),
        "another device's CVE: {cves:?}"
    );
    assert!(
        client["vulnerabilities"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["known_exploited"] == false && v["basis"] == "version")
    );
    // What the server answered it (copied on the gateway's egress) is about the server.
    assert_eq!(
        client["payload"]["servers_answer"],
        serde_json::json!(["ssh"])
    );
    assert_eq!(
        client["payload"]["server_banners"],
        serde_json::json!(["ssh: OpenSSH_9.9"])
    );
    assert!(
        !client["software"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["version"] == "9.9"),
        "a server's software is not the device's: {client}"
    );
    let stats = events::last_stats(&evs);
    let v = &stats["vulns"];
    assert_eq!(v["cves"], 25, "{v}");
    assert_eq!(v["feeds"][1]["date"], "2025-02-13T17:59:30.3638Z");
    assert!(v["feeds"][1]["age_days"].as_u64().unwrap() > 600, "{v}");

    // A new run with the same state: the device still carries the CVE, no second alert.
    let (_dir2, sensor) = lab.watch(&config(), &["--state-dir", &sd]);
    fetch_from_outside(&lab, 1);
    server.join().unwrap();
    let again = sensor.wait_for_line(
        |l| l.contains("\"event_type\":\"device\"") && l.contains("CVE-2017-17562"),
        Duration::from_secs(20),
    );
    assert!(again.is_some(), "the device event carries the CVE again");
    let second = sensor.stop();
    let evs: Vec<Value> = events::parse(&second.stdout);
    assert!(
        events::alerts(&evs, "known_exploited_vulnerability").is_empty(),
        "raised once per device and CVE, across restarts"
    );
    let table = std::process::Command::new(env::kettlewatch())
        .args(["devices", "--state-dir", &sd])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("GoAhead 2.5.0"), "{table}");
}
