//! The XDP program (sensor-ebpf/src/main.rs and parse.rs) under BPF_PROG_TEST_RUN:
//! crafted frames in, exact map contents, stats counters and ring-buffer events out.

use std::collections::BTreeMap;

use kettlewatch_tests::{
    env,
    frames::{self, cat, eth, ethertype as et, tcp_flags},
    xdp::{Program, XDP_PASS, nonzero_stats},
};
use sensor_common::{FLOW_SERVING, FlowKey, MacAddr, proto};
use sensor_user::kernel::records::KernelEvent;

const DEV: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x17]);
const GW: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x01]);
const DEV_V4: [u8; 4] = [198, 51, 100, 23];
const SRV_V4: [u8; 4] = [203, 0, 113, 99];
const DEV_V6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x17,
];
const SRV_V6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99,
];

fn key(addr: [u8; 16], port: u16, proto: u8) -> FlowKey {
    FlowKey {
        addr,
        mac: DEV,
        port,
        proto,
        ..FlowKey::default()
    }
}

fn udp4(sport: u16, dport: u16, payload: usize) -> Vec<u8> {
    cat(&[
        &eth(GW, DEV, &[], et::IPV4),
        &frames::ipv4(
            DEV_V4,
            SRV_V4,
            proto::UDP,
            &[],
            0,
            &frames::udp(sport, dport, &vec![0xab; payload]),
        ),
    ])
}

fn tcp4(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    cat(&[
        &eth(GW, DEV, &[], et::IPV4),
        &frames::ipv4(
            DEV_V4,
            SRV_V4,
            proto::TCP,
            &[],
            0,
            &frames::tcp(sport, dport, flags, &[]),
        ),
    ])
}

/// Runs frames, asserting each passes (monitor mode never drops).
fn run_all(p: &mut Program, frames: &[Vec<u8>]) {
    for f in frames {
        assert_eq!(p.run(f), XDP_PASS, "monitor mode must pass every frame");
    }
}

fn stats(pairs: &[(&'static str, u64)]) -> BTreeMap<&'static str, u64> {
    pairs.iter().copied().collect()
}

#[test]
fn ipv4_udp_counts_flow_device_and_reports_once() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    let f = udp4(40000, 5000, 100);
    let len = f.len() as u64;
    let t0 = p.clock();
    run_all(&mut p, &[f.clone(), f.clone(), f]);

    let flows = p.flows();
    assert_eq!(flows.len(), 1, "{flows:?}");
    let t = flows[&key(frames::mapped(SRV_V4), 5000, proto::UDP)];
    assert_eq!((t.packets, t.bytes), (3, 3 * len));
    assert_eq!(t.first_seen_ns, t0);
    // The first frame went through the flow map with its time; the next two hit the flow
    // cache, which keeps no time (userspace dates them by the poll that sees them).
    assert_eq!(t.last_seen_ns, t0);
    assert_eq!(t.cached_packets, 2);

    // The device map holds what is not in a flow: first sight, flows opened, non-IP.
    let devices = p.devices();
    assert_eq!(devices.len(), 1);
    let d = devices[&DEV];
    assert_eq!((d.new_flows, d.non_ip_packets, d.non_ip_bytes), (1, 0, 0));
    assert_eq!(d.last_seen_ns, t0);

    assert_eq!(
        nonzero_stats(&p.stats()),
        stats(&[
            ("frames", 3),
            ("bytes", 3 * len),
            ("ipv4", 3),
            ("new_flows", 1),
            ("new_devices", 1),
            // No policy is loaded for the device: its flow's verdict says so.
            ("verdict_no_policy", 1),
            // Three frames of one flow: logged once as changed, for the next poll.
            ("dirty_logged", 1),
            // Its first datagram's payload, for the decoders (xdp_payload.rs).
            ("payload_copied", 1),
        ])
    );

    // The first datagram's payload record is xdp_payload.rs's business.
    let ev: Vec<KernelEvent> = p
        .events()
        .into_iter()
        .filter(|e| !matches!(e, KernelEvent::Payload(..)))
        .collect();
    assert_eq!(ev.len(), 2, "one new-device and one new-flow event: {ev:?}");
    let KernelEvent::NewDevice(d) = ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!((d.key.mac, d.dst_mac, d.ts_ns), (DEV, GW, t0));
    let KernelEvent::NewFlow(n) = ev[1] else {
        panic!("{ev:?}")
    };
    assert_eq!(n.key, key(frames::mapped(SRV_V4), 5000, proto::UDP));
    assert_eq!(n.src_addr, frames::mapped(DEV_V4));
    assert_eq!(
        (n.src_port, n.dst_port, n.frame_len as u64),
        (40000, 5000, len)
    );
    assert_eq!(n.ethertype, et::IPV4);
}

#[test]
fn source_port_does_not_split_a_destination() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    run_all(
        &mut p,
        &[
            udp4(40000, 53, 10),
            udp4(40001, 53, 10),
            udp4(40002, 53, 10),
        ],
    );
    let flows = p.flows();
    assert_eq!(flows.len(), 1);
    assert_eq!(
        flows[&key(frames::mapped(SRV_V4), 53, proto::UDP)].packets,
        3
    );
    assert_eq!(p.stats()[sensor_common::stats::NEW_FLOWS as usize], 1);
}

#[test]
fn tcp_flags_accumulate() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    run_all(
        &mut p,
        &[
            tcp4(50412, 443, tcp_flags::SYN),
            tcp4(50412, 443, tcp_flags::ACK | tcp_flags::PSH),
        ],
    );
    let t = p.flows()[&key(frames::mapped(SRV_V4), 443, proto::TCP)];
    assert_eq!(t.packets, 2);
    assert_eq!(
        t.tcp_flags,
        tcp_flags::SYN | tcp_flags::ACK | tcp_flags::PSH
    );
}

#[test]
fn syn_frames_are_counted_per_flow_through_the_cache_and_the_map() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    // 25 connection attempts from new source ports (one flow: same server and port),
    // the handshake frames of one that succeeded, and data: only SYNs count.
    let mut frames = Vec::new();
    for i in 0..25u16 {
        frames.push(tcp4(40000 + i, 22, tcp_flags::SYN));
    }
    frames.push(tcp4(40000, 22, tcp_flags::ACK));
    for _ in 0..10 {
        frames.push(tcp4(40000, 22, tcp_flags::ACK | tcp_flags::PSH));
    }
    run_all(&mut p, &frames);
    let t = p.flows()[&key(frames::mapped(SRV_V4), 22, proto::TCP)];
    assert_eq!(t.packets, 36);
    assert_eq!(t.syns, 25, "SYNs, counted in the cache and the map alike");
}

#[test]
fn device_answering_from_a_service_port_is_keyed_by_that_port() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    // SYN-ACKs from the device's port 443 to two clients' ephemeral ports.
    run_all(
        &mut p,
        &[
            tcp4(443, 51000, tcp_flags::SYN | tcp_flags::ACK),
            tcp4(443, 51001, tcp_flags::ACK),
        ],
    );
    let flows = p.flows();
    let k = FlowKey {
        flags: FLOW_SERVING,
        ..key(frames::mapped(SRV_V4), 443, proto::TCP)
    };
    assert_eq!(flows.keys().copied().collect::<Vec<_>>(), vec![k]);
    assert_eq!(flows[&k].packets, 2);
    let ev = p.events();
    let KernelEvent::NewFlow(n) = ev[1] else {
        panic!("{ev:?}")
    };
    assert_eq!(
        (n.src_port, n.dst_port),
        (443, 51000),
        "the client's port is in the event"
    );
}

#[test]
fn ipv4_options_are_skipped() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    // IHL 6 and 7: NOP padding, then the UDP header.
    for opts in [&[1u8, 1, 1, 0][..], &[1u8; 8][..]] {
        let f = cat(&[
            &eth(GW, DEV, &[], et::IPV4),
            &frames::ipv4(
                DEV_V4,
                SRV_V4,
                proto::UDP,
                opts,
                0,
                &frames::udp(1234, 7000 + opts.len() as u16, b"x"),
            ),
        ]);
        run_all(&mut p, &[f]);
    }
    let flows = p.flows();
    assert!(
        flows.contains_key(&key(frames::mapped(SRV_V4), 7004, proto::UDP)),
        "{flows:?}"
    );
    assert!(
        flows.contains_key(&key(frames::mapped(SRV_V4), 7008, proto::UDP)),
        "{flows:?}"
    );
    assert_eq!(p.stats()[sensor_common::stats::IPV4 as usize], 2);
}

#[test]
fn ipv6_with_hop_by_hop_and_fragment_headers() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    let udp = frames::udp(5353, 8443, b"hello");
    let first = cat(&[
        &eth(GW, DEV, &[], et::IPV6),
        &frames::ipv6(
            DEV_V6,
            SRV_V6,
            0,
            &cat(&[
                &frames::hop_by_hop(44),
                &frames::fragment(17, 0, true),
                &udp,
            ]),
        ),
    ]);
    // A later fragment of the same datagram: no UDP header, so no port.
    let later = cat(&[
        &eth(GW, DEV, &[], et::IPV6),
        &frames::ipv6(
            DEV_V6,
            SRV_V6,
            44,
            &cat(&[&frames::fragment(17, 2, false), b"more data"]),
        ),
    ]);
    let plain = cat(&[
        &eth(GW, DEV, &[], et::IPV6),
        &frames::ipv6(DEV_V6, SRV_V6, proto::UDP, &udp),
    ]);
    run_all(&mut p, &[first.clone(), later.clone(), plain.clone()]);
    let flows = p.flows();
    assert_eq!(flows.len(), 2, "{flows:?}");
    let with_port = flows[&key(SRV_V6, 8443, proto::UDP)];
    assert_eq!(
        (with_port.packets, with_port.bytes),
        (2, (first.len() + plain.len()) as u64)
    );
    let no_port = flows[&key(SRV_V6, 0, proto::UDP)];
    assert_eq!((no_port.packets, no_port.bytes), (1, later.len() as u64));
    let s = nonzero_stats(&p.stats());
    assert_eq!((s["ipv6"], s["fragments"], s["new_flows"]), (3, 1, 2));
}

#[test]
fn ipv6_extension_chain_longer_than_the_parser_follows_is_unsupported() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    let mut rest = Vec::new();
    for _ in 0..7 {
        rest.extend(frames::hop_by_hop(60));
    }
    rest.extend(frames::udp(1, 2, b""));
    let f = cat(&[
        &eth(GW, DEV, &[], et::IPV6),
        &frames::ipv6(DEV_V6, SRV_V6, 60, &rest),
    ]);
    run_all(&mut p, std::slice::from_ref(&f));
    assert!(p.flows().is_empty());
    assert_eq!(
        nonzero_stats(&p.stats()),
        stats(&[("frames", 1), ("bytes", f.len() as u64), ("unsupported", 1)])
    );
}

#[test]
fn single_and_double_vlan_tags() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    let ip = frames::ipv4(
        DEV_V4,
        SRV_V4,
        proto::UDP,
        &[],
        0,
        &frames::udp(1000, 123, b"ntp"),
    );
    let single = cat(&[&eth(GW, DEV, &[(et::VLAN, 10)], et::IPV4), &ip]);
    let double = cat(&[
        &eth(GW, DEV, &[(et::QINQ, 100), (et::VLAN, 10)], et::IPV4),
        &ip,
    ]);
    let triple = cat(&[
        &eth(
            GW,
            DEV,
            &[(et::QINQ, 1), (et::VLAN, 2), (et::VLAN, 3)],
            et::IPV4,
        ),
        &ip,
    ]);
    run_all(&mut p, &[single.clone(), double.clone(), triple]);
    let t = p.flows()[&key(frames::mapped(SRV_V4), 123, proto::UDP)];
    assert_eq!(
        (t.packets, t.bytes),
        (2, (single.len() + double.len()) as u64)
    );
    let s = nonzero_stats(&p.stats());
    assert_eq!((s["ipv4"], s["unsupported"]), (2, 1));
    let ev = p.events();
    let KernelEvent::NewFlow(n) = ev[1] else {
        panic!("{ev:?}")
    };
    assert_eq!(n.vlan, 10);
}

#[test]
fn icmp_is_keyed_by_type_and_code() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    let echo4 = cat(&[
        &eth(GW, DEV, &[], et::IPV4),
        &frames::ipv4(DEV_V4, SRV_V4, proto::ICMP, &[], 0, &frames::icmp(8, 0)),
    ]);
    let echo6 = cat(&[
        &eth(GW, DEV, &[], et::IPV6),
        &frames::ipv6(DEV_V6, SRV_V6, proto::ICMPV6, &frames::icmp(128, 0)),
    ]);
    run_all(&mut p, &[echo4.clone(), echo4, echo6]);
    let flows = p.flows();
    assert_eq!(
        flows[&key(frames::mapped(SRV_V4), 8 << 8, proto::ICMP)].packets,
        2
    );
    assert_eq!(flows[&key(SRV_V6, 128 << 8, proto::ICMPV6)].packets, 1);
}

#[test]
fn non_ip_frames_count_for_the_device_only() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    let pad = [0u8; 46];
    let arp = cat(&[&eth(MacAddr::BROADCAST, DEV, &[], et::ARP), &pad]);
    let lldp = cat(&[
        &eth(MacAddr([0x01, 0x80, 0xc2, 0, 0, 0x0e]), DEV, &[], et::LLDP),
        &pad,
    ]);
    let eapol = cat(&[
        &eth(MacAddr([0x01, 0x80, 0xc2, 0, 0, 0x03]), DEV, &[], et::EAPOL),
        &pad,
    ]);
    run_all(&mut p, &[arp, lldp, eapol]);
    assert!(p.flows().is_empty());
    let d = p.devices()[&DEV];
    assert_eq!(
        (d.non_ip_packets, d.non_ip_bytes, d.new_flows),
        (3, 3 * 60, 0)
    );
    assert_eq!(
        nonzero_stats(&p.stats()),
        stats(&[
            ("frames", 3),
            ("bytes", 180),
            ("non_ip", 3),
            ("new_devices", 1),
            // ARP and LLDP are discovery frames; EAPOL is not.
            ("discovery_copied", 2),
        ])
    );
}

fn tcp4_payload(dport: u16, payload: &[u8]) -> Vec<u8> {
    cat(&[
        &eth(GW, DEV, &[], et::IPV4),
        &frames::ipv4(
            DEV_V4,
            SRV_V4,
            proto::TCP,
            &[],
            0,
            &frames::tcp(50000, dport, tcp_flags::PSH | tcp_flags::ACK, payload),
        ),
    ])
}

fn v6_from(src_mac: MacAddr, next: u8, rest: &[u8]) -> Vec<u8> {
    cat(&[
        &eth(GW, src_mac, &[], et::IPV6),
        &frames::ipv6(DEV_V6, SRV_V6, next, rest),
    ])
}

#[test]
fn discovery_frames_are_copied_whole_and_nothing_else_is() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    let pad = [0u8; 46];
    let copied = [
        udp4(68, 67, 548),                                          // DHCP request
        v6_from(DEV, proto::UDP, &frames::udp(546, 547, &[1; 60])), // DHCPv6
        udp4(40000, 53, 30),                                        // DNS query
        udp4(5353, 5353, 200),                                      // mDNS
        udp4(40000, 1900, 120),                                     // SSDP search
        udp4(1900, 40001, 300),                                     // SSDP answer
        udp4(40000, 3702, 600),                                     // WS-Discovery
        udp4(9999, 9999, 40),                                       // TP-Link Kasa
        udp4(49154, 6667, 188),                                     // Tuya
        tcp4_payload(
            1883,
            &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 0],
        ), // MQTT CONNECT
        v6_from(DEV, proto::ICMPV6, &cat(&[&frames::icmp(135, 0), &[0; 16]])), // NDP
        cat(&[&eth(MacAddr::BROADCAST, DEV, &[], et::ARP), &pad]),
        cat(&[
            &eth(MacAddr([0x01, 0x80, 0xc2, 0, 0, 0x0e]), DEV, &[], et::LLDP),
            &pad,
        ]),
        udp4(40000, 53, 1600), // longer than the copy
    ];
    let ignored = [
        udp4(40000, 443, 100),
        tcp4_payload(1883, &[0x30, 2, 0, 0]), // MQTT PUBLISH: telemetry, not identity
        tcp4(50001, 1883, tcp_flags::SYN),    // no payload
        v6_from(DEV, proto::ICMPV6, &frames::icmp(128, 0)), // echo request
        cat(&[
            &eth(MacAddr([0x01, 0x80, 0xc2, 0, 0, 0x03]), DEV, &[], et::EAPOL),
            &pad,
        ]),
    ];
    for f in copied.iter().chain(&ignored) {
        assert_eq!(p.run(f), XDP_PASS);
    }
    let st = nonzero_stats(&p.stats());
    assert_eq!(st["discovery_copied"], copied.len() as u64);
    assert!(!st.contains_key("discovery_rate_limited"));
    let records: Vec<Vec<u8>> = p
        .events()
        .into_iter()
        .filter_map(|e| match e {
            KernelEvent::Discovery(_, frame) => Some(frame),
            _ => None,
        })
        .collect();
    assert_eq!(records.len(), copied.len());
    for (got, sent) in records.iter().zip(&copied) {
        let n = sent.len().min(sensor_common::DISCOVERY_BYTES);
        assert_eq!(got.as_slice(), &sent[..n], "copied whole up to the bound");
    }
}

#[test]
fn one_device_flooding_discovery_is_limited_and_counted_and_others_get_through() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    // 40 queries within 40 ms: the burst (32) passes, the rest is counted, not copied.
    for _ in 0..40 {
        p.run(&udp4(40000, 53, 30));
    }
    let other = [0x02, 0, 0x5e, 0x10, 0, 0x18];
    p.run(&v6_from(
        MacAddr(other),
        proto::UDP,
        &frames::udp(40000, 53, &[0; 30]),
    ));
    let st = nonzero_stats(&p.stats());
    assert_eq!(st["discovery_copied"], sensor_common::DISCOVERY_BURST + 1);
    assert_eq!(
        st["discovery_rate_limited"],
        40 - sensor_common::DISCOVERY_BURST
    );
    let from_other = p
        .events()
        .into_iter()
        .filter(|e| matches!(e, KernelEvent::Discovery(h, _) if h.key.mac == other))
        .count();
    assert_eq!(from_other, 1, "the flood did not starve another device");
}

#[test]
fn truncated_at_every_layer_is_counted_and_creates_nothing() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    let tcp = tcp4(50000, 443, tcp_flags::SYN);
    let vlan = cat(&[&eth(GW, DEV, &[(et::VLAN, 7)], et::IPV4), &tcp[14..]]);
    let v6 = cat(&[
        &eth(GW, DEV, &[], et::IPV6),
        &frames::ipv6(
            DEV_V6,
            SRV_V6,
            0,
            &cat(&[&frames::hop_by_hop(proto::UDP), &frames::udp(1, 2, b"")]),
        ),
    ]);
    let mut expect = BTreeMap::new();
    let mut frames_run = 0;
    let mut bytes = 0;
    let mut cut =
        |p: &mut Program, f: &[u8], range: std::ops::Range<usize>, reason: &'static str| {
            for n in range {
                assert_eq!(p.run(&f[..n]), XDP_PASS);
                *expect.entry(reason).or_insert(0u64) += 1;
                frames_run += 1;
                bytes += n as u64;
            }
        };
    // BPF_PROG_TEST_RUN refuses frames under 14 bytes, so L2 truncation shows in the tag.
    cut(&mut p, &vlan, 14..18, "truncated_l2");
    cut(&mut p, &tcp, 14..34, "truncated_l3");
    cut(&mut p, &tcp, 34..54, "truncated_l4");
    cut(&mut p, &v6, 14..62, "truncated_l3");
    cut(&mut p, &v6, 62..70, "truncated_l4");
    assert!(p.flows().is_empty(), "malformed frames create no flow");
    assert!(p.devices().is_empty(), "malformed frames create no device");
    assert!(p.events().is_empty());
    expect.insert("frames", frames_run);
    expect.insert("bytes", bytes);
    assert_eq!(nonzero_stats(&p.stats()), expect);
}

#[test]
fn bad_ihl_and_wrong_ip_version_are_counted() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    let mut bad_ihl = tcp4(1, 2, 0);
    bad_ihl[14] = 0x44;
    let mut v6_in_v4 = tcp4(1, 2, 0);
    v6_in_v4[14] = 0x65;
    run_all(&mut p, &[bad_ihl, v6_in_v4]);
    let s = nonzero_stats(&p.stats());
    assert_eq!((s["bad_ihl"], s["unsupported"], s["frames"]), (1, 1, 2));
    assert!(p.flows().is_empty());
}

#[test]
fn every_frame_is_counted_exactly_once() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    let mut all = vec![udp4(1, 2, 3), tcp4(4, 5, tcp_flags::SYN)];
    let t = tcp4(6, 7, 0);
    all.push(t[..20].to_vec());
    all.push(cat(&[&eth(GW, DEV, &[], et::ARP), &[0u8; 28]]));
    run_all(&mut p, &all);
    let s = p.stats();
    use sensor_common::stats as st;
    let classified: u64 = st::FRAME_CLASSES.iter().map(|i| s[*i as usize]).sum();
    assert_eq!(s[st::FRAMES as usize], all.len() as u64);
    assert_eq!(classified, all.len() as u64);
}

/// The object with a 4-entry flow map, so a few flows push one out.
fn four_flow_program() -> Program {
    Program::load_sized(sensor_user::kernel::loader::MapSizes {
        flows: 4,
        devices: 16,
        ring_bytes: 4096,
    })
}

#[test]
fn map_sizes_come_from_the_config() {
    if !env::have_root() {
        return;
    }
    let mut p = four_flow_program();
    for port in 0..40 {
        run_all(&mut p, &[udp4(40000, 1000 + port, 1)]);
    }
    // An LRU map of 4 holds at most 4; when the kernel finds no entry to reuse, the
    // insert fails and is counted: every new flow is either created or counted.
    let n = p.flows().len();
    assert!((1..=4).contains(&n), "{n} flows in a map of 4");
    let s = p.stats();
    use sensor_common::stats as st;
    assert_eq!(
        s[st::NEW_FLOWS as usize] + s[st::FLOW_INSERT_FAILED as usize],
        40
    );
    assert!(s[st::NEW_FLOWS as usize] > 4, "LRU evicts to make room");
}

/// Destination ports whose flows share `of`'s flow-cache set, `n` of them.
fn colliding_ports(of: u16, proto: u8, n: usize) -> Vec<u16> {
    let set = key(frames::mapped(SRV_V4), of, proto).cache_set();
    let ports: Vec<u16> = (1024..u16::MAX)
        .filter(|p| *p != of && key(frames::mapped(SRV_V4), *p, proto).cache_set() == set)
        .take(n)
        .collect();
    assert_eq!(ports.len(), n, "{n} colliding ports");
    ports
}

#[test]
fn flows_sharing_a_cache_set_keep_exact_counts() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    let [b_port, c_port] = colliding_ports(5000, proto::UDP, 2)[..] else {
        unreachable!()
    };
    let a = udp4(40000, 5000, 10);
    let b = udp4(40000, b_port, 300);
    let c = udp4(40000, c_port, 50);
    // Three flows for a set of two slots: each time the third comes, the slot used
    // least recently hands its counts to the flow map.
    let order = [&a, &a, &b, &a, &c, &b, &b, &a, &c, &a];
    for f in order {
        assert_eq!(p.run(f), XDP_PASS);
    }
    let flows = p.flows();
    let got = |port, f: &Vec<u8>| {
        let t = flows[&key(frames::mapped(SRV_V4), port, proto::UDP)];
        assert_eq!(t.bytes, t.packets * f.len() as u64, "port {port}");
        t.packets
    };
    assert_eq!((got(5000, &a), got(b_port, &b), got(c_port, &c)), (5, 3, 2));
    assert_eq!(
        p.stats()[sensor_common::stats::CACHE_FLUSH_LOST as usize],
        0
    );
}

#[test]
fn two_busy_flows_that_hash_alike_both_stay_in_the_cache() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    let b_port = colliding_ports(5000, proto::UDP, 1)[0];
    let a = udp4(40000, 5000, 10);
    let b = udp4(40000, b_port, 10);
    // Their first frames go through the map; then they alternate, as two busy flows do.
    run_all(&mut p, &[a.clone(), b.clone()]);
    for _ in 0..5 {
        run_all(&mut p, &[a.clone(), b.clone()]);
    }
    let flows = p.flows();
    for port in [5000, b_port] {
        let t = flows[&key(frames::mapped(SRV_V4), port, proto::UDP)];
        assert_eq!(
            (t.packets, t.cached_packets),
            (6, 5),
            "port {port}: every frame after the first counted in the cache"
        );
    }
}

#[test]
fn a_poll_reads_only_the_flows_that_changed() {
    if !env::have_root() {
        return;
    }
    polls_read_only_what_changed(true);
}

#[test]
fn without_batch_lookups_a_poll_still_reads_only_the_flows_that_changed() {
    if !env::have_root() {
        return;
    }
    // Kernels without BPF_MAP_LOOKUP_BATCH: the change log is read whole, key by key,
    // and must give the same flows, across the ring's end and on overflow alike.
    polls_read_only_what_changed(false);
}

/// Polls between sweeps read the flows the change log and the flow cache name, and no
/// other; batch lookups of the log's unread range or a key-by-key read of all of it.
fn polls_read_only_what_changed(batched: bool) {
    let mut p = Program::load();
    p.set_batched(batched);
    p.read_changes(std::time::Duration::from_secs(3600));
    let port = |n: u16| key(frames::mapped(SRV_V4), n, proto::UDP);
    let (a, b, c) = (5000, 5001, 5002);
    let sets = [a, b, c].map(|n| port(n).cache_set());
    assert!(sets[0] != sets[1] && sets[1] != sets[2] && sets[0] != sets[2]);
    run_all(
        &mut p,
        &[udp4(40000, a, 10), udp4(40000, b, 10), udp4(40000, c, 10)],
    );
    let first = p.read_flows();
    assert!(first.complete, "the first poll reads the whole map");
    assert_eq!(first.rows.len(), 3);

    // A's frames hit the flow cache (the map never sees them), and so does B's second
    // frame; E is new, in B's cache set.
    let e = colliding_ports(b, proto::UDP, 1)[0];
    run_all(
        &mut p,
        &[udp4(40000, a, 10), udp4(40000, a, 10), udp4(40000, b, 10)],
    );
    run_all(&mut p, &[udp4(40000, e, 10)]);
    let read = p.read_flows();
    assert!(!read.complete, "a poll between sweeps reads what changed");
    let got: BTreeMap<FlowKey, u64> = read.rows.iter().map(|(k, t)| (*k, t.packets)).collect();
    assert_eq!(
        got,
        BTreeMap::from([(port(a), 3), (port(b), 2), (port(e), 1)]),
        "C did not change and is not read"
    );
    // Nothing since: nothing to read.
    let idle = p.read_flows();
    assert!(!idle.complete && idle.rows.is_empty(), "{:?}", idle.rows);

    // Polls copy only the log slots written since the last one, which can run across the
    // end of the ring: 4,085 flows take the log to within a few slots of its end (4,096
    // per CPU), then 10 more cross it (the harness runs every frame on one CPU).
    let bulk: Vec<u16> = (20_000..24_085).collect();
    run_all(
        &mut p,
        &bulk.iter().map(|n| udp4(40000, *n, 10)).collect::<Vec<_>>(),
    );
    // (A flow whose cached frames a new flow's slot pushed to the map is a change too.)
    let earlier = [a, b, c, e];
    let ports_read = |read: &sensor_user::kernel::maps::flows::FlowRead| {
        let mut ports: std::collections::BTreeSet<u16> =
            read.rows.iter().map(|(k, _)| k.port).collect();
        ports.retain(|p| !earlier.contains(p));
        ports
    };
    let read = p.read_flows();
    assert!(!read.complete, "4,085 changes fit in the log");
    assert_eq!(ports_read(&read), bulk.iter().copied().collect());
    let crossing: Vec<u16> = (30_000..30_010).collect();
    run_all(
        &mut p,
        &crossing
            .iter()
            .map(|n| udp4(40000, *n, 10))
            .collect::<Vec<_>>(),
    );
    let read = p.read_flows();
    assert!(!read.complete);
    assert_eq!(
        ports_read(&read),
        crossing.iter().copied().collect(),
        "every flow logged across the ring's end, and no other"
    );

    // More new flows than the log holds between two polls (4,096 per CPU for the default
    // table): the poll reads the whole map instead of missing any.
    let ports: Vec<u16> = (10_000..14_200).collect();
    let many: Vec<Vec<u8>> = ports.iter().map(|n| udp4(40000, *n, 10)).collect();
    run_all(&mut p, &many);
    let overflow = p.read_flows();
    assert!(
        overflow.complete,
        "an overflowing log falls back to a whole read"
    );
    let every: std::collections::BTreeSet<u16> = ports
        .into_iter()
        .chain([a, b, c, e])
        .chain(bulk)
        .chain(crossing)
        .collect();
    assert_eq!(overflow.rows.len(), every.len());
    assert_eq!(
        p.sweeps(),
        (2, 1),
        "two whole reads (the first poll and the overflow), one forced by the log: what stats reports as flow_sweeps and flow_log_overflows"
    );
}

#[test]
fn cached_frames_of_an_evicted_flow_are_counted_as_lost() {
    if !env::have_root() {
        return;
    }
    let mut p = four_flow_program();
    let set_a = key(frames::mapped(SRV_V4), 5000, proto::UDP).cache_set();
    let a = udp4(40000, 5000, 10);
    // A: one frame into the map, three pending in the cache.
    for _ in 0..4 {
        p.run(&a);
    }
    // Enough other flows (none in A's cache set) to push A out of a 4-entry LRU map.
    let others: Vec<u16> = (6000..u16::MAX)
        .filter(|port| key(frames::mapped(SRV_V4), *port, proto::UDP).cache_set() != set_a)
        .take(64)
        .collect();
    for port in &others {
        p.run(&udp4(40000, *port, 10));
    }
    assert!(
        !p.flows()
            .contains_key(&key(frames::mapped(SRV_V4), 5000, proto::UDP)),
        "A was evicted"
    );
    // Two flows that take A's set: the second takes A's slot, and the cache hands A's
    // three frames over: lost, counted.
    for port in colliding_ports(5000, proto::UDP, 2) {
        p.run(&udp4(40000, port, 10));
    }
    assert_eq!(
        p.stats()[sensor_common::stats::CACHE_FLUSH_LOST as usize],
        3
    );
}

#[test]
fn a_cached_flow_the_lru_evicted_is_created_again_at_the_next_poll_with_its_frames() {
    if !env::have_root() {
        return;
    }
    let mut p = four_flow_program();
    p.read_changes(std::time::Duration::from_secs(3600));
    let a_key = key(frames::mapped(SRV_V4), 5000, proto::UDP);
    let a = udp4(40000, 5000, 10);
    // A: one frame into the map, three pending in the cache.
    for _ in 0..4 {
        p.run(&a);
    }
    // Other flows (none in A's cache set) push A out of the 4-entry map; A keeps its slot.
    let others: Vec<u16> = (6000..u16::MAX)
        .filter(|port| {
            key(frames::mapped(SRV_V4), *port, proto::UDP).cache_set() != a_key.cache_set()
        })
        .take(64)
        .collect();
    for port in &others {
        p.run(&udp4(40000, *port, 10));
    }
    assert!(!p.flows().contains_key(&a_key), "A was evicted");
    let new_flows = p.stats()[sensor_common::stats::NEW_FLOWS as usize];
    // A poll moves the epoch on; A's next frame is a cache hit, the first of the epoch.
    let _ = p.read_flows();
    p.run(&a);
    let stats = p.stats();
    assert_eq!(
        p.flows().get(&a_key).map(|t| t.packets),
        Some(4),
        "A is in the map again, with its three cached frames and this one"
    );
    assert_eq!(
        stats[sensor_common::stats::NEW_FLOWS as usize],
        new_flows + 1,
        "created again as a new flow (an event, a verdict)"
    );
    assert_eq!(
        stats[sensor_common::stats::CACHE_FLUSH_LOST as usize],
        0,
        "no cached frame lost"
    );
}

#[test]
fn the_object_has_every_map_and_program_the_constants_name() {
    if !env::have_root() {
        return;
    }
    // The #[map] macro takes literals only; this keeps them and sensor-common in step.
    let ebpf = aya::EbpfLoader::new()
        .load(sensor_user::kernel::loader::OBJECT)
        .expect("load the object");
    let maps: Vec<&str> = ebpf.maps().map(|(n, _)| n).collect();
    for name in sensor_common::maps::ALL {
        assert!(
            maps.contains(&name),
            "map {name} missing from the object: {maps:?}"
        );
    }
    let mut progs: Vec<&str> = ebpf.programs().map(|(n, _)| n).collect();
    progs.sort();
    // The benchmark programs are an object of their own (tests/tests/xdp_bench.rs).
    assert_eq!(
        progs,
        [
            sensor_common::maps::EGRESS_PROGRAM,
            sensor_common::maps::XDP_PROGRAM,
            sensor_common::maps::PAYLOAD_PROGRAM,
        ],
        "the sensor's object holds its three programs and nothing else"
    );
}

/// Linux's verifier gives up after a million instructions, and older kernels prune less
/// than this one: Linux 6.1 processed over a million on a program 6.18 accepts (found by
/// `cargo xtask vm-test`). Half the limit on the host is the budget that keeps headroom for
/// them; both clock variants are measured, as each is verified on its own.
#[test]
fn both_programs_verify_well_under_the_instruction_limit() {
    if !env::have_root() {
        return;
    }
    const BUDGET: u32 = 500_000;
    use sensor_user::kernel::loader::Mode;
    for mode in [Mode::LIVE, Mode::REPLAY, Mode::LIVE.payloads(false)] {
        let mut ebpf = sensor_user::kernel::loader::load(
            sensor_user::kernel::loader::MapSizes::from(
                &sensor_user::config::SensorConfig::default(),
            ),
            mode,
        )
        .unwrap_or_else(|e| panic!("load ({mode:?}): {e}"));
        let xdp = sensor_user::kernel::loader::xdp(&mut ebpf).expect("xdp program");
        let ingress = xdp.info().expect("xdp info").verified_instruction_count();
        let egress = sensor_user::kernel::loader::egress(&mut ebpf)
            .expect("egress program")
            .info()
            .expect("egress info")
            .verified_instruction_count();
        println!("{mode:?}: verified instructions ingress {ingress:?}, egress {egress:?}");
        for (name, n) in [("ingress", ingress), ("egress", egress)] {
            let n = n.unwrap_or_else(|| {
                panic!("the kernel did not report {name}'s verified instructions")
            });
            assert!(
                n <= BUDGET,
                "{name} ({mode:?}) took {n} verified instructions, over the {BUDGET} budget"
            );
        }
    }
}
