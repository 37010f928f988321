//! First-payload sampling (sensor-ebpf/src/payload.rs) under BPF_PROG_TEST_RUN: which
//! frames of a flow are copied, how much of them, within which rate, and nothing when
//! sampling is off.

use kettlewatch_tests::{
    env,
    frames::{self, cat, eth, ethertype as et, tcp_flags},
    xdp::{Program, XDP_PASS, nonzero_stats},
};
use sensor_common::{FLOW_SERVING, MacAddr, PAYLOAD_BURST, PAYLOAD_BYTES, proto};
use sensor_user::{
    config::SensorConfig,
    kernel::{
        loader::{MapSizes, Mode},
        records::KernelEvent,
    },
};

const DEV: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x17]);
const OTHER: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x18]);
const GW: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x01]);
const DEV_V4: [u8; 4] = [198, 51, 100, 23];
const SRV_V4: [u8; 4] = [203, 0, 113, 99];

fn tcp(src: MacAddr, sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    cat(&[
        &eth(GW, src, &[], et::IPV4),
        &frames::ipv4(
            DEV_V4,
            SRV_V4,
            proto::TCP,
            &[],
            0,
            &frames::tcp(sport, dport, flags, payload),
        ),
    ])
}

fn udp(src: MacAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    cat(&[
        &eth(GW, src, &[], et::IPV4),
        &frames::ipv4(
            DEV_V4,
            SRV_V4,
            proto::UDP,
            &[],
            0,
            &frames::udp(sport, dport, payload),
        ),
    ])
}

/// The payload records in the ring, as (header, bytes).
fn payloads(p: &mut Program) -> Vec<(sensor_common::Event, Vec<u8>)> {
    p.events()
        .into_iter()
        .filter_map(|e| match e {
            KernelEvent::Payload(h, b) => Some((h, b)),
            _ => None,
        })
        .collect()
}

fn load(mode: Mode) -> Program {
    Program::load_mode(MapSizes::from(&SensorConfig::default()), mode)
}

const HELLO: &[u8] =
    b"GET /status HTTP/1.1\r\nHost: cloud.example\r\nUser-Agent: Kettle/1.2\r\n\r\n";

#[test]
fn a_tcp_flows_first_payload_is_copied_once_and_handshake_frames_are_not() {
    if !env::have_root() {
        return;
    }
    let mut p = load(Mode::LIVE);
    let syn = tcp(DEV, 50000, 8080, tcp_flags::SYN, &[]);
    let ack = tcp(DEV, 50000, 8080, tcp_flags::ACK, &[]);
    // A bare ACK padded to Ethernet's 60-byte minimum: padding is not payload.
    let mut padded = ack.clone();
    padded.resize(60, 0);
    let data = tcp(DEV, 50000, 8080, tcp_flags::PSH | tcp_flags::ACK, HELLO);
    let more = tcp(
        DEV,
        50000,
        8080,
        tcp_flags::PSH | tcp_flags::ACK,
        b"more bytes",
    );
    for f in [&syn, &ack, &padded, &data, &more, &data, &more] {
        assert_eq!(p.run(f), XDP_PASS);
    }
    let got = payloads(&mut p);
    assert_eq!(got.len(), 1, "one record for the flow");
    let (head, bytes) = &got[0];
    assert_eq!(bytes.as_slice(), HELLO, "the payload, from its first byte");
    assert_eq!(head.key.mac, DEV);
    assert_eq!(head.key.port, 8080);
    assert_eq!(head.key.proto, proto::TCP);
    assert_eq!(head.src_port, 50000);
    let st = nonzero_stats(&p.stats());
    assert_eq!(st.get("payload_copied"), Some(&1));
    assert_eq!(st.get("payload_skipped"), None);
}

#[test]
fn a_udp_flows_first_datagram_is_copied_and_a_long_one_is_cut() {
    if !env::have_root() {
        return;
    }
    let mut p = load(Mode::LIVE);
    let long: Vec<u8> = (0..1800u32).map(|i| (i % 251) as u8).collect();
    p.run(&udp(DEV, 40000, 5060, &long));
    p.run(&udp(DEV, 40000, 5060, b"second"));
    let got = payloads(&mut p);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].1.as_slice(),
        &long[..PAYLOAD_BYTES],
        "cut at the bound"
    );
}

#[test]
fn a_device_serving_sends_its_banner_once_on_its_service_port() {
    if !env::have_root() {
        return;
    }
    let mut p = load(Mode::LIVE);
    let banner = b"SSH-2.0-OpenSSH_5.3\r\n";
    // Two clients; the device answers each from port 22.
    for client_port in [50001, 50002] {
        p.run(&tcp(
            DEV,
            22,
            client_port,
            tcp_flags::SYN | tcp_flags::ACK,
            &[],
        ));
        p.run(&tcp(
            DEV,
            22,
            client_port,
            tcp_flags::PSH | tcp_flags::ACK,
            banner,
        ));
    }
    let got = payloads(&mut p);
    assert_eq!(got.len(), 1, "one serving flow, one banner");
    assert_eq!(got[0].0.key.port, 22);
    assert_eq!(got[0].0.key.flags & FLOW_SERVING, FLOW_SERVING);
    assert_eq!(got[0].1.as_slice(), banner);
}

#[test]
fn a_device_opening_flows_fast_is_limited_and_counted_and_others_get_through() {
    if !env::have_root() {
        return;
    }
    let mut p = load(Mode::LIVE);
    // 100 new flows within 100 ms of the test clock: the burst passes, the rest is counted.
    for port in 0..100u16 {
        p.run(&udp(DEV, 40000, 10000 + port, b"probe"));
    }
    p.run(&udp(OTHER, 40000, 10000, b"probe"));
    let st = nonzero_stats(&p.stats());
    assert_eq!(st["payload_copied"], PAYLOAD_BURST + 1);
    assert_eq!(st["payload_skipped"], 100 - PAYLOAD_BURST);
    let got = payloads(&mut p);
    assert_eq!(got.len() as u64, PAYLOAD_BURST + 1);
    assert_eq!(
        got.iter().filter(|(h, _)| h.key.mac == OTHER).count(),
        1,
        "the busy device did not starve another"
    );
    assert_eq!(st["new_flows"], 101, "every flow is still counted");
}

#[test]
fn with_sampling_off_nothing_is_copied_and_flows_are_counted_as_before() {
    if !env::have_root() {
        return;
    }
    let mut p = load(Mode::LIVE.payloads(false));
    p.run(&udp(DEV, 40000, 5060, b"INVITE sip:x SIP/2.0\r\n\r\n"));
    p.run(&tcp(DEV, 50000, 80, tcp_flags::SYN, &[]));
    p.run(&tcp(DEV, 50000, 80, tcp_flags::PSH | tcp_flags::ACK, HELLO));
    p.run(&tcp(DEV, 50000, 80, tcp_flags::PSH | tcp_flags::ACK, HELLO));
    assert!(payloads(&mut p).is_empty());
    let st = nonzero_stats(&p.stats());
    assert_eq!(st.get("payload_copied"), None);
    assert_eq!(st.get("payload_skipped"), None);
    assert_eq!(st["new_flows"], 2);
    let flows = p.flows();
    let http = flows
        .iter()
        .find(|(k, _)| k.port == 80)
        .expect("the TCP flow");
    assert_eq!(http.1.packets, 3);
}

/// What the gateway sends a device, through the TC egress program: the first segment
/// with payload and PSH of a flow the device already has, under the device's flow key.
#[test]
fn a_flows_first_payload_to_the_device_is_copied_once_under_its_flow() {
    if !env::have_root() {
        return;
    }
    let mut p = load(Mode::LIVE);
    let to_dev = |sport: u16, dport: u16, flags: u8, payload: &[u8]| {
        cat(&[
            &eth(DEV, GW, &[], et::IPV4),
            &frames::ipv4(
                SRV_V4,
                DEV_V4,
                proto::TCP,
                &[],
                0,
                &frames::tcp(sport, dport, flags, payload),
            ),
        ])
    };
    let greeting = b"220 ftp.example.org FTP server (tnftpd 20100324+GSSAPI) ready.\r\n";
    // A server the device never contacted: no flow, nothing copied.
    p.run_egress(&to_dev(
        2121,
        50000,
        tcp_flags::PSH | tcp_flags::ACK,
        greeting,
    ));
    // The device connects; the server answers: a bare ACK, then data without PSH, then
    // its greeting (PSH), then more.
    p.run(&tcp(DEV, 50000, 2121, tcp_flags::SYN, &[]));
    p.run_egress(&to_dev(2121, 50000, tcp_flags::ACK, &[]));
    p.run_egress(&to_dev(2121, 50000, tcp_flags::ACK, b"partial"));
    p.run_egress(&to_dev(
        2121,
        50000,
        tcp_flags::PSH | tcp_flags::ACK,
        greeting,
    ));
    p.run_egress(&to_dev(
        2121,
        50000,
        tcp_flags::PSH | tcp_flags::ACK,
        b"331 more\r\n",
    ));
    // A client reaching the device's own service (it answered the SYN from port 22).
    p.run(&tcp(DEV, 22, 50001, tcp_flags::SYN | tcp_flags::ACK, &[]));
    p.run_egress(&to_dev(
        50001,
        22,
        tcp_flags::PSH | tcp_flags::ACK,
        b"SSH-2.0-x\r\n",
    ));
    let got: Vec<(sensor_common::Event, Vec<u8>)> = p
        .events()
        .into_iter()
        .filter_map(|e| match e {
            KernelEvent::PayloadIn(h, b) => Some((h, b)),
            _ => None,
        })
        .collect();
    assert_eq!(got.len(), 2, "one per flow: {got:?}");
    let (head, bytes) = &got[0];
    assert_eq!(bytes.as_slice(), greeting);
    assert_eq!(head.key.mac, DEV, "the device's flow");
    assert_eq!((head.key.port, head.key.flags), (2121, 0));
    let (head, bytes) = &got[1];
    assert_eq!(bytes.as_slice(), b"SSH-2.0-x\r\n");
    assert_eq!((head.key.port, head.key.flags), (22, FLOW_SERVING));
    // With sampling off, egress copies nothing either.
    let mut p = load(Mode::LIVE.payloads(false));
    p.run(&tcp(DEV, 50000, 2121, tcp_flags::SYN, &[]));
    p.run_egress(&to_dev(
        2121,
        50000,
        tcp_flags::PSH | tcp_flags::ACK,
        greeting,
    ));
    assert!(
        !p.events()
            .iter()
            .any(|e| matches!(e, KernelEvent::PayloadIn(..)))
    );
}

/// Flows whose frames go through the flow map (more than the flow cache holds) are
/// copied once each too: the map learns a flow was sampled even when its cache slot is
/// handed over without counts to flush.
#[test]
fn flows_beyond_the_flow_cache_are_copied_once_each() {
    if !env::have_root() {
        return;
    }
    let mut p = load(Mode::LIVE);
    let dev = |i: u16| MacAddr([0x02, 0x5e, 0, 0, (i >> 8) as u8, i as u8]);
    let n = 3_000u16;
    for i in 0..n {
        p.run(&tcp(dev(i), 50000, 8080, tcp_flags::SYN, &[]));
    }
    p.events();
    for round in 0..2 {
        // Read as it goes: the ring holds some 600 copies.
        let mut copied = 0;
        for i in 0..n {
            p.run(&tcp(
                dev(i),
                50000,
                8080,
                tcp_flags::PSH | tcp_flags::ACK,
                HELLO,
            ));
            if i % 256 == 255 {
                copied += payloads(&mut p).len();
            }
        }
        copied += payloads(&mut p).len();
        let want = if round == 0 { n as usize } else { 0 };
        assert_eq!(copied, want, "round {round}");
    }
    assert_eq!(nonzero_stats(&p.stats())["payload_copied"], n as u64);
}
