//! The XDP program's threat-intelligence and canary lookup (sensor-ebpf/src/main.rs:
//! `evaluate_full`) under BPF_PROG_TEST_RUN: hits and misses for IPv4 and IPv6, the
//! longest prefix deciding, block mode, and the entry's id in the new-flow event.

use std::collections::BTreeMap;

use ipnet::IpNet;
use kettlewatch_tests::{
    env,
    frames::{self, cat, eth, ethertype as et, tcp_flags},
    xdp::{Program, XDP_PASS, nonzero_stats},
};
use sensor_common::{
    MacAddr,
    policy::{IntelEntry, intel_flags, verdict},
    proto,
};
use sensor_user::kernel::records::KernelEvent;

const XDP_DROP: u32 = 1;
const DEV: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x17]);
const GW: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x01]);

fn tcp4(dst: [u8; 4]) -> Vec<u8> {
    cat(&[
        &eth(GW, DEV, &[], et::IPV4),
        &frames::ipv4(
            [198, 51, 100, 23],
            dst,
            proto::TCP,
            &[],
            0,
            &frames::tcp(50000, 443, tcp_flags::SYN, &[]),
        ),
    ])
}

fn udp6(last: u8, net: u8) -> Vec<u8> {
    let src = [
        0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x17,
    ];
    let dst = [
        0x20, 0x01, 0x0d, 0xb8, 0, net, 0, 0, 0, 0, 0, 0, 0, 0, 0, last,
    ];
    cat(&[
        &eth(GW, DEV, &[], et::IPV6),
        &frames::ipv6(src, dst, proto::UDP, &frames::udp(40000, 443, &[0; 8])),
    ])
}

fn load(p: &mut Program, entries: &[(&str, u32, u8)]) {
    let want: BTreeMap<IpNet, IntelEntry> = entries
        .iter()
        .map(|(n, id, flags)| {
            (
                n.parse().unwrap(),
                IntelEntry {
                    id: *id,
                    flags: *flags,
                    _pad: [0; 3],
                },
            )
        })
        .collect();
    p.intel().apply(&want).expect("write intel");
}

fn new_flows(p: &mut Program) -> Vec<(u8, u32)> {
    p.events()
        .into_iter()
        .filter_map(|e| match e {
            KernelEvent::NewFlow(ev) => Some((ev.verdict, ev.intel_id)),
            _ => None,
        })
        .collect()
}

#[test]
fn hits_and_misses_for_ipv4_and_ipv6_with_the_longest_prefix_deciding() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    load(
        &mut p,
        &[
            ("203.0.113.0/24", 1, intel_flags::INTEL),
            ("203.0.113.128/25", 2, intel_flags::CANARY),
            ("2001:db8:66::/48", 3, intel_flags::INTEL),
        ],
    );
    for f in [
        tcp4([203, 0, 113, 5]),   // the /24
        tcp4([203, 0, 113, 200]), // the longer /25: a canary
        tcp4([192, 0, 2, 1]),     // miss
        udp6(9, 0x66),            // IPv6 hit
        udp6(9, 0x67),            // IPv6 miss
    ] {
        assert_eq!(p.run(&f), XDP_PASS, "not blocking");
    }
    assert_eq!(
        new_flows(&mut p),
        [
            (verdict::INTEL, 1),
            (verdict::CANARY, 2),
            (verdict::NO_POLICY, 0),
            (verdict::INTEL, 3),
            (verdict::NO_POLICY, 0)
        ]
    );
    let st = nonzero_stats(&p.stats());
    assert_eq!((st["verdict_intel"], st["verdict_canary"]), (2, 1));
}

#[test]
fn block_mode_drops_every_frame_to_a_listed_destination() {
    if !env::have_root() {
        return;
    }
    let mut p = Program::load();
    load(
        &mut p,
        &[("203.0.113.0/24", 7, intel_flags::INTEL | intel_flags::BLOCK)],
    );
    let bad = tcp4([203, 0, 113, 5]);
    for _ in 0..3 {
        assert_eq!(p.run(&bad), XDP_DROP);
    }
    assert_eq!(p.run(&tcp4([192, 0, 2, 1])), XDP_PASS);
    assert_eq!(new_flows(&mut p)[0], (verdict::INTEL_BLOCKED, 7));
    assert_eq!(nonzero_stats(&p.stats())["dropped_intel"], 3);
    // Taken off the feed: the next frame passes (a dropped flow is judged at every frame).
    load(&mut p, &[]);
    assert_eq!(p.run(&bad), XDP_PASS);
}
