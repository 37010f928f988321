//! Unit tests of the EVE builders: each event fits our schema and Suricata's.
use super::*;
use crate::model::flow::{FlowRecord, FlowTotals, Origin, Reason};
use sensor_common::FlowKey;

/// Every event these tests build must fit the published schema, and an event type
/// Suricata also writes must fit Suricata's schema with our `iot` object added.
fn valid(v: Value) -> Value {
    let schema: Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schema/eve.schema.json"
    )))
    .unwrap();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let mut errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    if v["event_type"] != "device" {
        let mut suricata: Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/eve/schema.json"
        )))
        .unwrap();
        suricata["properties"]["iot"] = json!({"type": "object"});
        let validator = jsonschema::options().build(&suricata).unwrap();
        errors.extend(
            validator
                .iter_errors(&v)
                .map(|e| format!("Suricata's: {e}")),
        );
    }
    assert!(errors.is_empty(), "{v}\n{errors:?}");
    v
}

fn eve() -> Eve {
    Eve {
        host: "gw-lab-1".into(),
        in_iface: "lan0".into(),
        time: TimeBase::identity(),
        flow_id_seed: 0,
    }
}

fn mapped(v4: [u8; 4]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[10] = 0xff;
    a[11] = 0xff;
    a[12..].copy_from_slice(&v4);
    a
}

/// A `flow` event as written: its line, parsed back.
fn flow(e: &Eve, now_ns: u64, r: &FlowRecord) -> Value {
    serde_json::from_str(&e.flow_line(now_ns, r)).expect("a flow line is JSON")
}

#[test]
fn device_and_stats_events_fit_the_schema() {
    let mut d = crate::track::devices::DeviceTable::default();
    d.on_seen(MacAddr([2, 0, 0, 0, 0, 1]), 5);
    d.on_address(
        MacAddr([2, 0, 0, 0, 0, 1]),
        "2001:db8::1".parse().unwrap(),
        6,
    );
    let dev = &d.take_changed()[0];
    let v = valid(eve().device(
        7,
        dev,
        None,
        Some(crate::model::device::Phase::Learning(9)),
        None,
    ));
    assert_eq!(v["iot"]["device"]["baseline"]["phase"], "learning");
    assert_eq!(v["iot"]["device"]["inventory_status"], "unknown");
    let declared = Declared {
        name: Some("lobby-camera".into()),
        category: Some("camera".into()),
        criticality: Some(crate::model::vocab::Criticality::High),
        listed: true,
        set_by: None,
        state: None,
    };
    let missing = crate::model::alert::Alert::new(
        &crate::judge::rules::MISSING_DEVICE,
        crate::model::alert::About::Device(MacAddr([2, 0, 0, 0, 0, 1])),
        "inventory",
    )
    .with_metadata(json!({"last_seen": ["never"]}));
    let who = Subject {
        device: Some(dev),
        declared: Some(&declared),
    };
    let a = valid(eve().alert(8, &missing, who));
    assert_eq!(a["alert"]["signature_id"], 9_100_007);
    assert_eq!(a["iot"]["device"]["name"], "lobby-camera");
    assert_eq!(a["iot"]["device"]["criticality"], "high");
    assert_eq!(a["src_ip"], "2001:db8::1");
    assert_eq!(v["iot"]["device"]["addresses"][0], "2001:db8::1");
    let kernel = [1u64; sensor_common::stats::COUNT as usize];
    let counters = SensorCounters {
        alerts: 2,
        ..SensorCounters::default()
    };
    let v = valid(eve().stats(9, 3, &kernel, &counters, &Tables::default(), Vec::new()));
    assert_eq!(v["iot"]["sensor"]["alerts"], 2);
    assert_eq!(v["iot"]["kernel"]["cache_flush_lost"], 1);
    // Suricata's keys, for dashboards built on them.
    assert_eq!(v["stats"]["uptime"], 3);
    assert_eq!(v["stats"]["detect"]["alert"], 2);
    assert_eq!(v["stats"]["capture"]["kernel_packets"], 1);
    assert_eq!(
        v["stats"]["capture"]["kernel_drops"], 2,
        "insert failed + flush lost"
    );
    assert_eq!(v["stats"]["decoder"]["invalid"], 5);
    assert_eq!(v["stats"]["ips"]["blocked"], 2);
}

/// A device with facts from every decoder, assessed and declared otherwise: every
/// field fits the schema, and the declaration wins over the observation.
#[test]
fn an_assessed_device_with_every_kind_of_fact_fits_the_schema() {
    use crate::discover::{Decoded, Facts, dns::DnsQuery, mqtt::MqttFacts, ssdp::SsdpFacts};
    let mac = MacAddr([2, 0, 0, 0, 0, 2]);
    let mut t = crate::track::devices::DeviceTable::default();
    t.on_seen(mac, 5);
    for facts in [
        Facts::Dns(DnsQuery {
            names: vec!["cam.example.com".into()],
            qtypes: Vec::new(),
            server: None,
        }),
        Facts::Ssdp(SsdpFacts {
            kind: "notify",
            server: Some("Linux UPnP/1.0 Roku/9.4".into()),
            nt: Some("urn:roku-com:device:player:1-0".into()),
            ..SsdpFacts::default()
        }),
        Facts::Mqtt(MqttFacts {
            protocol: "MQTT/4".into(),
            client_id: "dev-1".into(),
            username: None,
        }),
    ] {
        t.on_facts(Decoded { mac, facts }, 6);
    }
    let declared = Declared {
        name: Some("lobby-camera".into()),
        category: Some("camera".into()),
        criticality: None,
        listed: true,
        set_by: None,
        state: None,
    };
    let d = t.get(&mac).unwrap().clone();
    let a = crate::judge::assess::assess(
        &d,
        Some(&declared),
        &crate::judge::classify::Classifier::builtin(),
        &crate::judge::criticality::Thresholds::default(),
    );
    t.assess(&mac, a);
    let d = t.take_changed().pop().unwrap();
    let tie = crate::model::identity::Tie {
        identity: MacAddr([0x02, 0, 0x5e, 0, 0, 0x42]),
        by: crate::model::identity::Key::DhcpClientId,
    };
    let v = valid(eve().device(7, &d, Some(&declared), None, Some(tie)));
    let o = &v["iot"]["device"];
    assert_eq!(o["identity"]["tied_to"], "02:00:5e:00:00:42");
    assert_eq!(o["identity"]["by"], "dhcp_client_id");
    assert_eq!(o["category"], "camera");
    assert_eq!(o["category_source"], "declared");
    assert_eq!(o["observed"]["category"], "tv-media");
    assert_eq!(o["criticality"], "medium", "a camera's level");
    assert_eq!(o["dns"][0], "cam.example.com");
    assert_eq!(o["mqtt"]["client_id"], "dev-1");
    let evidence = o["evidence"].as_array().unwrap();
    assert!(
        evidence.iter().any(|e| e["fact"] == "ssdp_server"),
        "the SERVER header voted: {evidence:?}"
    );
    let weights: Vec<f64> = evidence
        .iter()
        .map(|e| e["weight"].as_f64().unwrap())
        .collect();
    assert!(
        weights.windows(2).all(|w| w[0] >= w[1]),
        "strongest first: {weights:?}"
    );
}

#[test]
fn community_id_matches_the_spec_example() {
    // The Community ID spec's baseline: 128.232.110.120:34855 -> 66.35.250.204:80 TCP.
    let id = community_id(
        "128.232.110.120".parse().unwrap(),
        "66.35.250.204".parse().unwrap(),
        34855,
        80,
        6,
        false,
        0,
    );
    assert_eq!(id.as_deref(), Some("1:LQU9qZlK+B5F3KDmev6m5PMibrg="));
}

#[test]
fn flow_event_has_eve_fields() {
    let r = FlowRecord {
        key: FlowKey {
            addr: mapped([203, 0, 113, 99]),
            mac: MacAddr([2, 0, 0x5e, 0x10, 0, 0x17]),
            port: 443,
            proto: 6,
            ..FlowKey::default()
        },
        origin: Some(Origin {
            src: "198.51.100.23".parse().unwrap(),
            src_port: 50412,
            dst_port: 443,
            dst_mac: MacAddr([2, 0, 0x5e, 0x10, 0, 1]),
            verdict: sensor_common::policy::Verdict::Unset,
            ts_ns: 0,
        }),
        totals: FlowTotals {
            packets: 10,
            bytes: 1000,
            first_seen_ns: 1_000_000_000,
            last_seen_ns: 3_000_000_000,
            tcp_flags: 0x12,
            cached_packets: 0,
            verdict: sensor_common::policy::Verdict::Unset,
            policy_gen: 0,
            syns: 1,
        },
        delta_packets: 4,
        delta_bytes: 400,
        reason: Reason::Report,
        alert_repeats: None,
        alerted: false,
        app_proto: Some("irc"),
    };
    let v = valid(flow(&eve(), 5_000_000_000, &r));
    assert_eq!(v["event_type"], "flow");
    assert_eq!(v["app_proto"], "irc");
    assert_eq!(v["timestamp"], "1970-01-01T00:00:05.000000+0000");
    assert_eq!(v["src_ip"], "198.51.100.23");
    assert_eq!(v["src_port"], 50412);
    assert_eq!(v["dest_ip"], "203.0.113.99");
    assert_eq!(v["dest_port"], 443);
    assert_eq!(v["proto"], "TCP");
    assert_eq!(v["ether"]["dest_mac"], "02:00:5e:10:00:01");
    // NetFlow-style: what is new since the last record, the totals under iot.
    assert_eq!(v["flow"]["pkts_toserver"], 4);
    assert_eq!(v["flow"]["bytes_toserver"], 400);
    assert_eq!(v["iot"]["flow"]["pkts_total"], 10);
    assert_eq!(v["iot"]["flow"]["bytes_total"], 1000);
    assert_eq!(v["flow"]["age"], 2);
    assert_eq!(v["flow"]["state"], "established", "an ACK was sent");
    assert_eq!(v["flow"]["alerted"], false);
    assert!(
        v["flow"].get("reason").is_none(),
        "an interim record ends nothing"
    );
    assert_eq!(v["iot"]["flow"]["reason"], "report");
    assert_eq!(v["iot"]["device"]["mac"], "02:00:5e:10:00:17");
    assert!(v["community_id"].as_str().unwrap().starts_with("1:"));
    // One id per flow within a run, another run's differs.
    let id = v["flow_id"].as_u64().unwrap();
    assert!((1..1 << 53).contains(&id));
    assert_eq!(flow(&eve(), 9, &r)["flow_id"], id);
    let other = Eve {
        flow_id_seed: 7,
        ..eve()
    };
    assert_ne!(flow(&other, 9, &r)["flow_id"], id);
    let mut elsewhere = r.clone();
    elsewhere.key.port = 8443;
    assert_ne!(flow(&eve(), 9, &elsewhere)["flow_id"], id);
}

#[test]
fn a_flows_last_record_says_why_it_ended_in_suricatas_words() {
    let mut r = FlowRecord {
        key: FlowKey {
            addr: mapped([203, 0, 113, 5]),
            port: 443,
            proto: 6,
            ..FlowKey::default()
        },
        origin: None,
        totals: FlowTotals {
            packets: 5,
            tcp_flags: 0x11,
            ..FlowTotals::default()
        },
        delta_packets: 1,
        delta_bytes: 60,
        reason: Reason::Evicted,
        alert_repeats: None,
        alerted: false,
        app_proto: None,
    };
    let v = valid(flow(&eve(), 0, &r));
    assert_eq!(v["flow"]["reason"], "forced");
    assert_eq!(v["flow"]["state"], "closed", "a FIN on its last record");
    assert_eq!(v["iot"]["flow"]["reason"], "evicted");
    r.reason = Reason::Report;
    assert_eq!(valid(flow(&eve(), 0, &r))["flow"]["state"], "established");
    r.key.proto = 17;
    assert_eq!(
        valid(flow(&eve(), 0, &r))["flow"]["state"],
        "new",
        "one side of UDP"
    );
}

#[test]
fn serving_flow_puts_the_client_first() {
    let r = FlowRecord {
        key: FlowKey {
            addr: mapped([203, 0, 113, 5]),
            mac: MacAddr([2, 0, 0, 0, 0, 0x17]),
            port: 554,
            proto: 6,
            flags: FLOW_SERVING,
            ..FlowKey::default()
        },
        origin: Some(Origin {
            src: "198.51.100.23".parse().unwrap(),
            src_port: 554,
            dst_port: 41000,
            dst_mac: MacAddr([0; 6]),
            verdict: sensor_common::policy::Verdict::Unset,
            ts_ns: 0,
        }),
        totals: FlowTotals {
            packets: 3,
            bytes: 300,
            ..FlowTotals::default()
        },
        delta_packets: 3,
        delta_bytes: 300,
        reason: Reason::Shutdown,
        alert_repeats: None,
        alerted: true,
        app_proto: None,
    };
    let v = valid(flow(&eve(), 0, &r));
    assert_eq!(v["src_ip"], "203.0.113.5");
    assert_eq!(v["src_port"], 41000);
    assert_eq!(v["dest_ip"], "198.51.100.23");
    assert_eq!(v["dest_port"], 554);
    assert_eq!(v["flow"]["pkts_toclient"], 3);
    assert_eq!(v["flow"]["pkts_toserver"], 0);
    assert_eq!(v["flow"]["reason"], "shutdown");
    assert_eq!(v["flow"]["alerted"], true);
    assert_eq!(v["iot"]["flow"]["direction"], "serving");
}

#[test]
fn icmp_flow_has_type_and_code_not_ports() {
    let r = FlowRecord {
        key: FlowKey {
            addr: mapped([203, 0, 113, 5]),
            port: 8 << 8,
            proto: 1,
            ..FlowKey::default()
        },
        origin: None,
        totals: FlowTotals::default(),
        delta_packets: 0,
        delta_bytes: 0,
        reason: Reason::Report,
        alert_repeats: None,
        alerted: false,
        app_proto: None,
    };
    let v = valid(flow(&eve(), 0, &r));
    assert_eq!(v["icmp_type"], 8);
    assert_eq!(v["icmp_code"], 0);
    assert!(v.get("dest_port").is_none());
    assert!(v.get("src_ip").is_none(), "unknown without the event");
}

#[test]
fn a_large_batch_of_flow_lines_comes_back_in_the_records_order() {
    // Past the pool's threshold: the lines are made on several threads, and each must
    // still be its own record's, in the records' order.
    let e = eve();
    let records: Vec<FlowRecord> = (0..3000u16)
        .map(|n| FlowRecord {
            key: FlowKey {
                addr: mapped([203, 0, 113, (n % 250) as u8]),
                port: 1000 + n,
                proto: 17,
                ..FlowKey::default()
            },
            origin: None,
            totals: FlowTotals {
                packets: u64::from(n) + 1,
                ..FlowTotals::default()
            },
            delta_packets: u64::from(n) + 1,
            delta_bytes: 60,
            reason: Reason::Report,
            alert_repeats: None,
            alerted: false,
            app_proto: None,
        })
        .collect();
    let mut lines = FlowLines::default();
    let got = lines.serialize(&e, 7, &records);
    let one_by_one: Vec<String> = records.iter().map(|r| e.flow_line(7, r)).collect();
    assert_eq!(got.len(), records.len());
    assert!(got == one_by_one, "lines out of order or changed");
    let ports: Vec<u64> = got
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["dest_port"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(ports.iter().copied().eq((0..3000u64).map(|n| 1000 + n)));
    if std::thread::available_parallelism().is_ok_and(|n| n.get() > 1) {
        assert!(lines.pooled(), "a batch this large goes to the pool");
    }
}
