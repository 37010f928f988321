//! The engine driven by synthetic ring-buffer records and polls, with no kernel: what a
//! user reads in the stream for a new device, a flow outside its policy, a flow a DNS
//! answer allowed a moment before, and a discovery frame.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use sensor_common::{DISCOVERY_BYTES, Event, EventKind, FlowKey, MacAddr, policy::verdict, proto};
use serde_json::Value;

use super::{build, sensor::Sensor};
use crate::{
    config::Config,
    emit::{eve::Eve, output::Output, sinks::Sinks},
    judge::policy,
    model::clock::TimeBase,
};

const DEV: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x17]);
const GW: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x01]);
const T0: u64 = 1_700_000_000_000_000_000;

/// A writer the test reads back after the sensor is gone.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn sensor(config: &str) -> (Sensor, Shared) {
    let config = Config::parse(config, "test.toml").unwrap();
    let buf = Shared::default();
    let out = Output::from_writer(Box::new(buf.clone()), 1024).wait_when_full();
    let eve = Eve {
        host: "gw-test".into(),
        in_iface: "lan0".into(),
        time: TimeBase::identity(),
        flow_id_seed: 0,
    };
    let parts = build::Parts {
        eve,
        sinks: Sinks::new(out),
        store: None,
        kernel: None,
        local: policy::private_ranges(),
    };
    let sensor = build::Builder::new(&config).unwrap().build(parts, T0);
    (sensor.unwrap(), buf)
}

/// Stops the sensor and returns every line it wrote, parsed.
fn lines(mut s: Sensor, buf: Shared, now: u64) -> Vec<Value> {
    s.finish(now, &[0; sensor_common::stats::COUNT as usize], None);
    drop(s);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn bytes_of(ev: &Event) -> Vec<u8> {
    // SAFETY: Event is repr(C) without implicit padding.
    unsafe { std::slice::from_raw_parts((ev as *const Event).cast(), size_of::<Event>()) }.to_vec()
}

fn mapped(v4: [u8; 4]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[10] = 0xff;
    a[11] = 0xff;
    a[12..].copy_from_slice(&v4);
    a
}

fn new_flow(ts: u64, dst: [u8; 4], port: u16, v: u8) -> Vec<u8> {
    bytes_of(&Event {
        ts_ns: ts,
        key: FlowKey::from_parts(
            unsafe { std::mem::transmute::<[u8; 16], [u32; 4]>(mapped(dst)) },
            DEV,
            port,
            proto::TCP,
            0,
        ),
        src_addr: mapped([192, 168, 1, 23]),
        src_port: 40000,
        dst_mac: GW,
        kind: EventKind::NewFlow as u8,
        tcp_flags: 2,
        dst_port: port,
        frame_len: 74,
        ethertype: 0x0800,
        verdict: v,
        ..Event::default()
    })
}

/// A record carrying a frame (discovery, DNS answer), as the kernel writes it.
fn frame_record(ts: u64, kind: EventKind, mac: MacAddr, frame: &[u8]) -> Vec<u8> {
    let mut b = bytes_of(&Event {
        ts_ns: ts,
        key: FlowKey {
            mac,
            ..FlowKey::default()
        },
        kind: kind as u8,
        frame_len: frame.len() as u32,
        ethertype: 0x0800,
        ..Event::default()
    });
    b.extend((frame.len() as u32).to_ne_bytes());
    b.extend(0u32.to_ne_bytes());
    let mut data = frame.to_vec();
    data.resize(DISCOVERY_BYTES, 0);
    b.extend(data);
    b
}

/// An Ethernet frame from the gateway to the device answering `name` with `addr`.
fn dns_answer(name: &str, addr: [u8; 4]) -> Vec<u8> {
    use simple_dns::{
        CLASS, Name, Packet, PacketFlag, QCLASS, QTYPE, Question, ResourceRecord, TYPE,
        rdata::{A, RData},
    };
    let mut p = Packet::new_reply(7);
    p.set_flags(PacketFlag::RECURSION_AVAILABLE);
    p.questions.push(Question::new(
        Name::new_unchecked(name),
        QTYPE::TYPE(TYPE::A),
        QCLASS::CLASS(CLASS::IN),
        false,
    ));
    p.answers.push(ResourceRecord::new(
        Name::new_unchecked(name),
        CLASS::IN,
        300,
        RData::A(A::from(std::net::Ipv4Addr::from(addr))),
    ));
    let payload = p.build_bytes_vec().unwrap();
    let mut out = Vec::new();
    etherparse::PacketBuilder::ethernet2(GW.0, DEV.0)
        .ipv4([192, 168, 1, 1], [192, 168, 1, 23], 64)
        .udp(53, 40000)
        .write(&mut out, &payload)
        .unwrap();
    out
}

fn alerts<'a>(evs: &'a [Value], rule: &str) -> Vec<&'a Value> {
    evs.iter()
        .filter(|e| e["event_type"] == "alert" && e["iot"]["rule"]["id"] == rule)
        .collect()
}

const POLICY: &str = "[[policy]]\nname = \"cam\"\ndevices = [\"02:00:5e:10:00:17\"]\nallow = [\"198.51.100.1:443/tcp\", \"cloud.example.com\"]\nmode = \"monitor\"\n";

#[test]
fn a_flow_outside_the_policy_alerts_once_and_a_new_device_is_reported() {
    let (mut s, buf) = sensor(POLICY);
    let ts = 5_000_000_000;
    s.on_record(&bytes_of(&Event {
        ts_ns: ts,
        key: FlowKey {
            mac: DEV,
            ..FlowKey::default()
        },
        kind: EventKind::NewDevice as u8,
        ..Event::default()
    }));
    s.on_record(&new_flow(ts, [198, 51, 100, 1], 443, verdict::ALLOWED));
    s.on_record(&new_flow(
        ts + 1,
        [203, 0, 113, 66],
        23,
        verdict::UNEXPECTED,
    ));
    s.on_record(&new_flow(
        ts + 2,
        [203, 0, 113, 66],
        23,
        verdict::UNEXPECTED,
    ));
    s.end_batch(T0 + ts);
    let evs = lines(s, buf, T0 + ts + 10);
    let a = alerts(&evs, "unexpected_destination");
    assert_eq!(a.len(), 1, "once per device and destination: {a:?}");
    assert_eq!(a[0]["dest_ip"], "203.0.113.66");
    assert_eq!(a[0]["dest_port"], 23);
    assert_eq!(a[0]["iot"]["rule"]["source"], "declared");
    assert_eq!(a[0]["alert"]["metadata"]["policy"][0], "cam");
    assert!(alerts(&evs, "new_port").is_empty(), "{evs:?}");
    assert_eq!(alerts(&evs, "new_device").len(), 1);
    let dev = evs
        .iter()
        .find(|e| e["event_type"] == "device")
        .expect("a device event");
    assert_eq!(dev["iot"]["device"]["mac"], "02:00:5e:10:00:17");
    let stats = evs
        .iter()
        .rev()
        .find(|e| e["event_type"] == "stats")
        .unwrap();
    assert_eq!(stats["iot"]["sensor"]["events"], 4);
    let written = evs.iter().filter(|e| e["event_type"] == "alert").count();
    assert_eq!(
        stats["iot"]["sensor"]["alerts"], written,
        "every alert is counted"
    );
    // The anomaly stage got the carried verdict (monitoring, not allowed): telnet is a
    // protocol the device had not used.
    assert_eq!(alerts(&evs, "new_protocol").len(), 1, "{evs:?}");
}

#[test]
fn an_answer_seen_before_the_flow_clears_the_kernels_flag() {
    let (mut s, buf) = sensor(POLICY);
    let ts = 5_000_000_000;
    // The kernel judged the flow before userspace had written the answer into its
    // allow-list: the engine confirms on fresh state and stays quiet.
    s.on_record(&frame_record(
        ts,
        EventKind::DnsAnswer,
        DEV,
        &dns_answer("cloud.example.com", [203, 0, 113, 9]),
    ));
    s.on_record(&new_flow(
        ts + 1,
        [203, 0, 113, 9],
        443,
        verdict::UNEXPECTED,
    ));
    // An address nobody gave the device still alerts.
    s.on_record(&new_flow(
        ts + 2,
        [203, 0, 113, 10],
        443,
        verdict::UNEXPECTED,
    ));
    s.end_batch(T0 + ts);
    let evs = lines(s, buf, T0 + ts + 10);
    let a = alerts(&evs, "unexpected_destination");
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["dest_ip"], "203.0.113.10");
    let stats = evs
        .iter()
        .rev()
        .find(|e| e["event_type"] == "stats")
        .unwrap();
    assert_eq!(
        stats["iot"]["policy"]["cleared"], 1,
        "{}",
        stats["iot"]["policy"]
    );
}

#[test]
fn a_discovery_frame_names_the_device_and_a_malformed_one_is_counted() {
    let (mut s, buf) = sensor("");
    let frames = crate::testdata::frames("tcpdump/dhcp-mud.pcap");
    let dhcp = &frames[0];
    let mac: MacAddr = dhcp[6..12].try_into().unwrap();
    s.on_record(&frame_record(1_000, EventKind::Discovery, mac, dhcp));
    // Cut inside the DHCP message.
    let broken = dhcp[..60].to_vec();
    s.on_record(&frame_record(2_000, EventKind::Discovery, mac, &broken));
    s.on_record(&[1, 2, 3]);
    s.end_batch(T0 + 3_000);
    let evs = lines(s, buf, T0 + 4_000);
    let dev = evs
        .iter()
        .rev()
        .find(|e| e["event_type"] == "device")
        .expect("a device event");
    assert_eq!(dev["iot"]["device"]["mac"], "b8:27:eb:b8:53:c8");
    assert!(
        dev["iot"]["device"]["mud_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://")),
        "{dev}"
    );
    let sensor = &evs
        .iter()
        .rev()
        .find(|e| e["event_type"] == "stats")
        .unwrap()["iot"]["sensor"];
    assert_eq!(sensor["discovery_frames"], 2, "{sensor}");
    assert_eq!(sensor["discovery_malformed"], 1, "{sensor}");
    assert_eq!(sensor["events_malformed"], 1, "{sensor}");
}

#[test]
fn a_bot_talking_irc_while_learning_is_alerted_and_never_learned() {
    let (mut s, buf) = sensor("[baseline]\nmode = \"learn\"\n");
    let ts = 5_000_000_000;
    s.on_record(&new_flow(ts, [203, 0, 113, 9], 443, verdict::LEARNING));
    s.on_record(&new_flow(
        ts + 1,
        [203, 0, 113, 66],
        6667,
        verdict::LEARNING,
    ));
    s.on_record(&new_flow(
        ts + 2,
        [203, 0, 113, 66],
        6667,
        verdict::LEARNING,
    ));
    s.end_batch(T0 + ts);
    let evs = lines(s, buf, T0 + ts + 10);
    let a = alerts(&evs, "suspicious_service");
    assert_eq!(a.len(), 1, "once per device and destination: {a:?}");
    assert_eq!(a[0]["dest_port"], 6667);
    assert_eq!(a[0]["alert"]["signature_id"], 9_100_017);
    assert_eq!(a[0]["alert"]["metadata"]["service"][0], "irc");
    assert_eq!(a[0]["iot"]["rule"]["source"], "suspicious");
    let policy = &evs
        .iter()
        .rev()
        .find(|e| e["event_type"] == "stats")
        .unwrap()["iot"]["policy"];
    assert_eq!(
        policy["learned_entries"], 1,
        "only the HTTPS destination: {policy}"
    );
    assert_eq!(policy["suspicious"], 2, "{policy}");
    assert!(alerts(&evs, "unexpected_destination").is_empty());
}

#[test]
fn a_cloud_endpoint_learned_by_address_follows_its_name_after_learning() {
    // A lock connected before the sensor saw any DNS answer: learning recorded the
    // address. A later answer names that address; after learning, the name is allowed at
    // whatever address the cloud rotates it to, and only an unrelated address alerts.
    let (mut s, buf) = sensor("[baseline]\nlearn_for = \"10s\"\n");
    let t = T0 + 1_000_000_000;
    s.on_record(&new_flow(t, [203, 0, 113, 10], 8883, verdict::LEARNING));
    s.end_batch(t);
    s.on_record(&frame_record(
        t + 1_000,
        EventKind::DnsAnswer,
        DEV,
        &dns_answer("a1b2c3-ats.iot.example.com", [203, 0, 113, 10]),
    ));
    s.end_batch(t + 1_000);
    // Past the device's window (its first sight + 10 s).
    let later = t + 20_000_000_000;
    s.on_poll(
        later,
        Vec::new(),
        vec![(DEV, crate::model::device::DeviceTotals::default())],
    );
    s.on_record(&frame_record(
        later + 1,
        EventKind::DnsAnswer,
        DEV,
        &dns_answer("a1b2c3-ats.iot.example.com", [203, 0, 113, 11]),
    ));
    s.on_record(&new_flow(
        later + 2,
        [203, 0, 113, 11],
        8883,
        verdict::UNEXPECTED,
    ));
    s.on_record(&new_flow(
        later + 3,
        [203, 0, 113, 99],
        8883,
        verdict::UNEXPECTED,
    ));
    s.end_batch(later + 3);
    let evs = lines(s, buf, later + 10);
    let a = alerts(&evs, "unexpected_destination");
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["dest_ip"], "203.0.113.99");
    let expected = a[0]["iot"]["rule"]["expected"].to_string();
    assert!(
        expected.contains("a1b2c3-ats.iot.example.com:8883/tcp")
            && !expected.contains("203.0.113.10"),
        "the learned entry is the name now: {expected}"
    );
    let policy = &evs
        .iter()
        .rev()
        .find(|e| e["event_type"] == "stats")
        .unwrap()["iot"]["policy"];
    assert_eq!(policy["renamed"], 1, "{policy}");
    assert_eq!(policy["mode"], "monitor", "{policy}");
    assert_eq!(policy["devices_learning"], 0, "{policy}");
    let phases: Vec<&Value> = evs
        .iter()
        .filter(|e| e["event_type"] == "device")
        .map(|e| &e["iot"]["device"]["baseline"]["phase"])
        .collect();
    assert_eq!(
        phases.last().copied(),
        Some(&Value::from("monitoring")),
        "the device is reported again when its window ends: {phases:?}"
    );
}

/// An Ethernet frame from the gateway to the device saying `name` does not exist.
fn nxdomain(name: &str) -> Vec<u8> {
    use simple_dns::{CLASS, Name, Packet, QCLASS, QTYPE, Question, RCODE, TYPE};
    let mut p = Packet::new_reply(9);
    *p.rcode_mut() = RCODE::NameError;
    p.questions.push(Question::new(
        Name::new_unchecked(name),
        QTYPE::TYPE(TYPE::A),
        QCLASS::CLASS(CLASS::IN),
        false,
    ));
    let payload = p.build_bytes_vec().unwrap();
    let mut out = Vec::new();
    etherparse::PacketBuilder::ethernet2(GW.0, DEV.0)
        .ipv4([192, 168, 1, 1], [192, 168, 1, 23], 64)
        .udp(53, 40000)
        .write(&mut out, &payload)
        .unwrap();
    out
}

#[test]
fn a_burst_of_nxdomain_for_generated_names_is_a_dga_and_one_typo_is_not() {
    let (mut s, buf) = sensor("");
    let t = T0 + 1_000_000_000;
    s.on_record(&frame_record(
        t,
        EventKind::DnsAnswer,
        DEV,
        &nxdomain("wpad.lan"),
    ));
    // What a DGA bot asks: a dozen random second-level names a second apart.
    let generated = [
        "xkqzvbwpmt",
        "qhrtzlkwvn",
        "bvmxqpzrtk",
        "ztkwqhvnbx",
        "mwqzxtkvrp",
        "rkvbzqtwxm",
        "tqzwmkxvbh",
        "hvxqkzrtwm",
        "wzbtqxkmvr",
        "kxmvzqwtrb",
        "pzqkvxmtwh",
        "vbkzqmxtrw",
    ];
    for (i, g) in generated.iter().enumerate() {
        let name = format!("www.{g}.com");
        s.on_record(&frame_record(
            t + (i as u64 + 1) * 1_000_000_000,
            EventKind::DnsAnswer,
            DEV,
            &nxdomain(&name),
        ));
    }
    s.end_batch(t + 20_000_000_000);
    let evs = lines(s, buf, t + 21_000_000_000);
    let a = alerts(&evs, "dga_activity");
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["alert"]["signature_id"], 9_100_019);
    assert_eq!(a[0]["iot"]["device"]["mac"], "02:00:5e:10:00:17");
    assert_eq!(a[0]["alert"]["metadata"]["nxdomain_domains"][0], "10");
}

#[test]
fn a_sliced_poll_lets_an_alert_go_first_and_writes_every_flow_once() {
    // Live mode: a poll is taken in a slice at a time, so an alert raised meanwhile is
    // not written behind all of its flows; nothing is lost at stop.
    let (mut s, buf) = sensor("[baseline]\nmode = \"monitor\"\n");
    s.slice_polls(true);
    let t = T0 + 1_000_000_000;
    let flows: Vec<_> = (0..300u16)
        .map(|i| {
            let key = FlowKey::from_parts(
                unsafe { std::mem::transmute::<[u8; 16], [u32; 4]>(mapped([198, 51, 100, 7])) },
                DEV,
                1000 + i,
                proto::UDP,
                0,
            );
            let totals = crate::model::flow::FlowTotals {
                packets: 1,
                bytes: 60,
                first_seen_ns: t,
                last_seen_ns: t,
                ..Default::default()
            };
            (key, totals)
        })
        .collect();
    s.on_poll(
        t,
        flows,
        vec![(DEV, crate::model::device::DeviceTotals::default())],
    );
    assert!(s.folding(), "the poll's 300 flows wait to be taken in");
    assert!(
        s.fold_slice(100).is_none(),
        "one slice is not the whole poll"
    );
    s.on_record(&new_flow(
        t + 5,
        [203, 0, 113, 50],
        443,
        verdict::UNEXPECTED,
    ));
    s.end_batch(t + 5);
    let evs = lines(s, buf, t + 10);
    let kinds: Vec<&str> = evs
        .iter()
        .map(|e| e["event_type"].as_str().unwrap_or(""))
        .collect();
    let first_alert = kinds.iter().position(|k| *k == "alert").expect("an alert");
    let flows_before = kinds[..first_alert]
        .iter()
        .filter(|k| **k == "flow")
        .count();
    assert_eq!(flows_before, 100, "one slice before the alert: {kinds:?}");
    let mut ports: Vec<u64> = evs
        .iter()
        .filter(|e| e["event_type"] == "flow" && e["proto"] == "UDP")
        .map(|e| e["dest_port"].as_u64().unwrap())
        .collect();
    ports.sort_unstable();
    assert_eq!(
        ports,
        (1000..1300).collect::<Vec<u64>>(),
        "every queued flow written once"
    );
}
