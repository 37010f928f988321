//! The XDP program's policy verdicts (sensor-ebpf/src/main.rs: `evaluate`, the generation
//! check, enforce) under BPF_PROG_TEST_RUN: allow-list entries written through
//! `PolicyMaps` as the sensor writes them, verdicts read back from the stats, the flow map
//! and the new-flow events.

use std::collections::BTreeMap;

use ipnet::IpNet;
use kettlewatch_tests::{
    env,
    frames::{self, cat, eth, ethertype as et, tcp_flags},
    xdp::{Program, XDP_PASS, nonzero_stats},
};
use sensor_common::{
    MacAddr,
    policy::{AllowEntry, DevicePolicy, PortRule, Verdict, mode, verdict},
    proto,
};
use sensor_user::kernel::records::KernelEvent;

const XDP_DROP: u32 = 1;
const DEV: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x17]);
const OTHER: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x18]);
const GW: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x01]);
const DEV_V4: [u8; 4] = [198, 51, 100, 23];
const DEV_V6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x17,
];

fn tcp4(src: MacAddr, dst: [u8; 4], dport: u16) -> Vec<u8> {
    cat(&[
        &eth(GW, src, &[], et::IPV4),
        &frames::ipv4(
            DEV_V4,
            dst,
            proto::TCP,
            &[],
            0,
            &frames::tcp(50000, dport, tcp_flags::SYN, &[]),
        ),
    ])
}

fn udp6(dst: [u8; 16], dport: u16) -> Vec<u8> {
    cat(&[
        &eth(GW, DEV, &[], et::IPV6),
        &frames::ipv6(
            DEV_V6,
            dst,
            proto::UDP,
            &frames::udp(40000, dport, &[0; 20]),
        ),
    ])
}

fn entry(rules: &[(u16, u8)]) -> AllowEntry {
    let mut e = AllowEntry {
        count: rules.len() as u8,
        ..AllowEntry::default()
    };
    for (i, (port, proto)) in rules.iter().enumerate() {
        e.rules[i] = PortRule {
            port: *port,
            proto: *proto,
            _pad: 0,
        };
    }
    e
}

fn set(p: &mut Program, mac: MacAddr, m: u8, allow: &[(&str, AllowEntry)]) {
    let entries: BTreeMap<IpNet, AllowEntry> = allow
        .iter()
        .map(|(n, e)| (n.parse().unwrap(), *e))
        .collect();
    let policy = DevicePolicy {
        group: if mac == DEV { 1 } else { 2 },
        mode: m,
        _pad: [0; 3],
    };
    p.policy()
        .apply_device(mac, Some((policy, &entries)))
        .expect("write policy");
}

fn verdicts(p: &mut Program) -> Vec<u8> {
    p.events()
        .into_iter()
        .filter_map(|e| match e {
            KernelEvent::NewFlow(ev) => Some(ev.verdict),
            _ => None,
        })
        .collect()
}

#[test]
fn allowed_unexpected_wrong_port_ipv6_and_no_policy() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    set(
        &mut p,
        DEV,
        mode::MONITOR,
        &[
            ("203.0.113.0/24", entry(&[(443, proto::TCP)])),
            ("2001:db8:2::/64", entry(&[(0, proto::UDP)])),
        ],
    );
    let frames = [
        tcp4(DEV, [203, 0, 113, 10], 443), // allowed
        tcp4(DEV, [192, 0, 2, 66], 443),   // unexpected
        tcp4(DEV, [203, 0, 113, 10], 23),  // allowed address, wrong port
        udp6(
            [
                0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x30,
            ],
            123,
        ), // IPv6 allowed
        udp6(
            [
                0x20, 0x01, 0x0d, 0xb8, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x30,
            ],
            123,
        ), // IPv6 unexpected
        tcp4(OTHER, [192, 0, 2, 66], 443), // no policy
    ];
    for f in &frames {
        assert_eq!(p.run(f), XDP_PASS, "monitor mode never drops");
    }
    assert_eq!(
        verdicts(&mut p),
        [
            verdict::ALLOWED,
            verdict::UNEXPECTED,
            verdict::NEW_PORT,
            verdict::ALLOWED,
            verdict::UNEXPECTED,
            verdict::NO_POLICY
        ]
    );
    let st = nonzero_stats(&p.stats());
    assert_eq!(st["verdict_allowed"], 2);
    assert_eq!(st["verdict_unexpected"], 2);
    assert_eq!(st["verdict_new_port"], 1);
    assert_eq!(st["verdict_no_policy"], 1);
    assert!(!st.contains_key("dropped_policy"));
    // The verdict is kept with the flow's counters.
    let flows = p.flows();
    let unexpected = flows
        .iter()
        .find(|(k, _)| k.addr == frames::mapped([192, 0, 2, 66]) && k.mac == DEV)
        .unwrap();
    assert_eq!(unexpected.1.verdict, Verdict::Unexpected);
}

#[test]
fn learning_devices_are_allowed_and_marked_learning() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    set(&mut p, DEV, mode::LEARN, &[]);
    p.run(&tcp4(DEV, [192, 0, 2, 66], 443));
    assert_eq!(verdicts(&mut p), [verdict::LEARNING]);
    assert_eq!(nonzero_stats(&p.stats())["verdict_learning"], 1);
}

#[test]
fn enforce_drops_every_frame_of_a_blocked_flow_until_it_is_allowed() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    set(
        &mut p,
        DEV,
        mode::ENFORCE,
        &[("203.0.113.0/24", entry(&[(443, proto::TCP)]))],
    );
    let bad = tcp4(DEV, [192, 0, 2, 66], 443);
    assert_eq!(p.run(&tcp4(DEV, [203, 0, 113, 10], 443)), XDP_PASS);
    for _ in 0..3 {
        assert_eq!(p.run(&bad), XDP_DROP);
    }
    assert_eq!(
        p.run(&tcp4(DEV, [203, 0, 113, 10], 80)),
        XDP_DROP,
        "wrong port"
    );
    let st = nonzero_stats(&p.stats());
    assert_eq!(st["dropped_policy"], 4);
    assert_eq!(st["verdict_blocked"], 2);
    assert_eq!(
        verdicts(&mut p),
        [verdict::ALLOWED, verdict::BLOCKED, verdict::BLOCKED]
    );
    // The address gets allowed (a DNS answer arriving late): the very next frame passes,
    // without a new generation, because a blocked flow is evaluated at every frame.
    set(
        &mut p,
        DEV,
        mode::ENFORCE,
        &[
            ("203.0.113.0/24", entry(&[(443, proto::TCP)])),
            ("192.0.2.66/32", entry(&[(443, proto::TCP)])),
        ],
    );
    assert_eq!(p.run(&bad), XDP_PASS);
    assert_eq!(nonzero_stats(&p.stats())["dropped_policy"], 4);
}

#[test]
fn a_new_generation_takes_verdicts_again_for_flows_already_counted() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    let any = AllowEntry {
        any: 1,
        ..AllowEntry::default()
    };
    set(&mut p, DEV, mode::MONITOR, &[("203.0.113.0/24", any)]);
    let f = tcp4(DEV, [203, 0, 113, 10], 443);
    p.run(&f);
    p.run(&f); // from the flow cache
    // The policy shrinks and the device is enforced: without a new generation the cached
    // verdict would stand ...
    set(
        &mut p,
        DEV,
        mode::ENFORCE,
        &[(
            "203.0.113.99/32",
            AllowEntry {
                any: 1,
                ..AllowEntry::default()
            },
        )],
    );
    p.policy().bump_generation().unwrap();
    // ... with it, the next frame (a flow-cache hit) is evaluated again and dropped.
    assert_eq!(p.run(&f), XDP_DROP);
    let st = nonzero_stats(&p.stats());
    assert_eq!(st.get("verdict_allowed"), Some(&1), "{st:?}");
    assert_eq!(st["verdict_blocked"], 1, "counted once, when it changed");
    let flow = p.flows().into_iter().find(|(k, _)| k.mac == DEV).unwrap().1;
    assert_eq!((flow.packets, flow.verdict), (3, Verdict::Blocked));
}
