//! Threat intelligence and canaries in a namespace lab (sensor-user/src/intel with the
//! kernel's intel trie): a listed address, a listed domain looked up, a canary touched,
//! and a feed edited while the sensor runs.

use std::time::Duration;

use kettlewatch_tests::{
    announce,
    env::{self, TempDir},
    events,
    lab::{FAST_CONFIG, Lab},
    proc::Sensor,
};

#[test]
fn listed_addresses_domains_and_canaries_alert_and_feed_edits_apply_live() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(2);
    let dir = TempDir::new();
    std::fs::write(dir.join("c2.txt"), "# lab C2\n203.0.113.20\n").unwrap();
    std::fs::write(dir.join("doms.txt"), "evil.example.net\n").unwrap();
    let cfg = dir.join("kw.toml");
    std::fs::write(
        &cfg,
        format!(
            "{FAST_CONFIG}[[intel.feed]]\npath = \"c2.txt\"\nformat = \"plain\"\n\n[[intel.feed]]\npath = \"doms.txt\"\nformat = \"domains\"\n\n[canary]\naddresses = [\"203.0.113.66\"]\n"
        ),
    )
    .unwrap();
    let mut sensor = Sensor::start(&lab.gw, "lan0", &["--config", cfg.to_str().unwrap()], false);
    sensor.wait_for_log("watching lan0", Duration::from_secs(30));
    lab.udp(0, 0, "203.0.113.20:4242", b"beacon");
    lab.udp(0, 0, "203.0.113.20:4243", b"beacon"); // same indicator: no second alert
    lab.udp(
        0,
        0,
        "198.51.100.1:53",
        &announce::dns_query(7, "a.evil.example.net"),
    );
    lab.udp(0, 0, "203.0.113.66:9", b"probe");
    std::thread::sleep(Duration::from_millis(500));
    // Edit the feed while the sensor runs: .20 leaves it, .30 joins it.
    std::thread::sleep(Duration::from_millis(1100)); // a new mtime second
    std::fs::write(dir.join("c2.txt"), "# lab C2\n203.0.113.30\n").unwrap();
    sensor.wait_for_log("configuration reloaded", Duration::from_secs(5));
    lab.udp(0, 0, "203.0.113.30:4242", b"beacon");
    lab.udp(1, 0, "203.0.113.20:4242", b"beacon"); // no longer listed
    std::thread::sleep(Duration::from_millis(1200));
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    let ip = events::alerts(&evs, "threat_intel_ip");
    let hits: Vec<(String, String)> = ip
        .iter()
        .map(|a| {
            (
                a["ether"]["src_mac"].as_str().unwrap().to_string(),
                a["dest_ip"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let d0 = lab.devices[0].mac.to_string();
    assert_eq!(
        hits,
        [
            (d0.clone(), "203.0.113.20".into()),
            (d0.clone(), "203.0.113.30".into())
        ],
        "{ip:#?}"
    );
    let a = ip[0];
    assert_eq!(a["alert"]["signature_id"], 9_100_003);
    assert_eq!(a["alert"]["severity"], 1);
    assert_eq!(a["alert"]["action"], "allowed");
    assert_eq!(a["iot"]["rule"]["source"], "intel");
    assert_eq!(a["iot"]["intel"]["feed"], "c2");
    assert_eq!(a["iot"]["intel"]["indicator"], "203.0.113.20/32");
    assert_eq!(
        (a["dest_port"].as_u64(), a["proto"].as_str()),
        (Some(4242), Some("UDP"))
    );
    let dom = events::alerts(&evs, "threat_intel_domain");
    assert_eq!(dom.len(), 1, "{dom:#?}");
    assert_eq!(dom[0]["iot"]["dns"]["rrname"], "a.evil.example.net");
    assert_eq!(dom[0]["iot"]["intel"]["indicator"], "evil.example.net");
    assert_eq!(dom[0]["iot"]["intel"]["feed"], "doms");
    assert_eq!(
        dom[0]["alert"]["metadata"]["via"],
        serde_json::json!(["query"])
    );
    let canary = events::alerts(&evs, "canary_contact");
    assert_eq!(canary.len(), 1, "{canary:#?}");
    assert_eq!(canary[0]["dest_ip"], "203.0.113.66");
    assert_eq!(canary[0]["alert"]["severity"], 1);
    assert_eq!(canary[0]["iot"]["rule"]["source"], "canary");
    let st = &events::of_type(&evs, "stats").last().unwrap()["iot"];
    assert_eq!(
        st["intel"]["kernel_entries"], 2,
        "one listed address and the canary"
    );
    assert!(st["kernel"]["verdict_intel"].as_u64().unwrap() >= 2);
}

#[test]
fn a_tor_relay_on_a_zeek_feed_alerts_while_learning_and_is_never_learned() {
    if !env::have_root() || !env::have_tool("ip") {
        return;
    }
    let lab = Lab::build(1);
    let dir = TempDir::new();
    // A Tor relay list as the Zeek intel feeds publish it (tests/fixtures/intel/zeek/
    // tor-exit.intel has the real one), with a lab address in it.
    std::fs::write(
        dir.join("tor-exit.intel"),
        "#fields\tindicator\tindicator_type\tmeta.source\tmeta.do_notice\tmeta.desc\n\
         203.0.113.20\tIntel::ADDR\tCPS-TOR-INTEL\tF\tCPS-TOR-INTEL\n",
    )
    .unwrap();
    let cfg = dir.join("kw.toml");
    std::fs::write(
        &cfg,
        format!(
            "{FAST_CONFIG}[baseline]\nmode = \"learn\"\nlearn_for = \"3s\"\n\n[[intel.feed]]\npath = \"tor-exit.intel\"\nformat = \"zeek\"\nname = \"tor-exit\"\n"
        ),
    )
    .unwrap();
    let mut sensor = Sensor::start(&lab.gw, "lan0", &["--config", cfg.to_str().unwrap()], false);
    sensor.wait_for_log("watching lan0", Duration::from_secs(30));
    // While learning: the cloud it always uses, and a Tor relay on an ordinary port.
    lab.udp(0, 0, "203.0.113.10:4242", b"hello");
    lab.udp(0, 0, "203.0.113.20:443", b"circuit");
    let switched = sensor.wait_for_line(
        |l| l.contains("\"event_type\":\"stats\"") && l.contains("\"mode\":\"monitor\""),
        Duration::from_secs(10),
    );
    assert!(switched.is_some(), "learning ended");
    let out = sensor.stop();
    assert!(out.status.success(), "{}", out.stderr);
    let evs = events::parse(&out.stdout);
    let hits = events::alerts(&evs, "threat_intel_ip");
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert_eq!(hits[0]["dest_ip"], "203.0.113.20");
    assert_eq!(hits[0]["iot"]["intel"]["feed"], "tor-exit");
    let st = events::last_stats(&evs);
    assert_eq!(
        st["policy"]["learned_entries"], 1,
        "only the cloud destination was learned: {}",
        st["policy"]
    );
    assert_eq!(st["policy"]["intel_not_learned"], 1, "{}", st["policy"]);
}
