//! Mutation fuzzing of the XDP program through BPF_PROG_TEST_RUN: frames from the fixture
//! captures and crafted ones, mutated at random, with the sensor's invariants checked
//! after every frame.

use std::path::Path;

use sensor_common::{MacAddr, stats as st};
use sensor_user::ingest::pcap::Capture;

use crate::{
    frames::{self, cat, eth, ethertype as et},
    xdp::{Program, XDP_PASS},
};

/// Flow-map size for fuzzing: large enough that a run of a few hundred thousand frames
/// never evicts, so every frame can be accounted for exactly.
const MAP_FLOWS: u32 = 1 << 18;

/// What a run saw.
#[derive(Debug, Default)]
pub struct Report {
    /// Frames run.
    pub frames: u64,
    /// Final kernel counters.
    pub stats: Vec<(&'static str, u64)>,
    /// Flows in the map at the end.
    pub flows: usize,
}

/// Seed frames: every frame of the captures under `fixtures` (when given), and crafted
/// frames for each layer the parser knows.
pub fn seeds(fixtures: Option<&Path>) -> Vec<Vec<u8>> {
    let dev = MacAddr([2, 0, 0x5e, 0x10, 0, 0x17]);
    let gw = MacAddr([2, 0, 0x5e, 0x10, 0, 1]);
    let v6a = [0x20, 1, 0xd, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x17];
    let v6b = [0x20, 1, 0xd, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99];
    let v4 = |proto, l4: &[u8]| {
        cat(&[
            &eth(gw, dev, &[], et::IPV4),
            &frames::ipv4([198, 51, 100, 23], [203, 0, 113, 9], proto, &[], 0, l4),
        ])
    };
    let mut out = vec![
        v4(6, &frames::tcp(40000, 443, 2, b"")),
        v4(17, &frames::udp(40000, 53, b"query")),
        v4(1, &frames::icmp(8, 0)),
        cat(&[
            &eth(gw, dev, &[(et::QINQ, 5), (et::VLAN, 6)], et::IPV6),
            &frames::ipv6(
                v6a,
                v6b,
                0,
                &cat(&[
                    &frames::hop_by_hop(44),
                    &frames::fragment(17, 0, true),
                    &frames::udp(1, 2, b"x"),
                ]),
            ),
        ]),
        cat(&[&eth(MacAddr::BROADCAST, dev, &[], et::ARP), &[0u8; 28]]),
    ];
    if let Some(dir) = fixtures {
        for sub in [
            "captures/ndpi",
            "captures/tcpdump",
            "captures/charrua",
            "captures/nku-lifecycle/xiaodu_plug_lifecycle",
        ] {
            let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
                continue;
            };
            let mut paths: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
            paths.sort();
            for p in paths {
                let Ok(mut cap) = Capture::open(&p) else {
                    continue;
                };
                while let Some(Ok(f)) = cap.next_frame() {
                    if f.data.len() >= 14 {
                        out.push(f.data);
                    }
                }
            }
        }
    }
    out
}

const INTERESTING_U8: [u8; 10] = [0, 1, 0x40, 0x45, 0x46, 0x4f, 0x60, 0x7f, 0x80, 0xff];
const INTERESTING_U16: [u16; 9] = [
    0x0800, 0x86dd, 0x8100, 0x88a8, 0x0806, 0, 0xffff, 0x002c, 0x3b00,
];

/// One mutation of `seed`.
pub fn mutate(rng: &mut fastrand::Rng, seed: &[u8]) -> Vec<u8> {
    let mut f = seed.to_vec();
    for _ in 0..rng.usize(1..=4) {
        match rng.u8(0..8) {
            // Flip a bit in the headers, where the parser looks.
            0 | 1 => {
                let i = rng.usize(0..f.len().min(128));
                f[i] ^= 1 << rng.u8(0..8);
            }
            2 => {
                let i = rng.usize(0..f.len().min(128));
                f[i] = INTERESTING_U8[rng.usize(0..INTERESTING_U8.len())];
            }
            3 => {
                // A 16-bit field to a value the parser branches on (EtherTypes, next headers).
                let i = rng.usize(0..f.len().min(128).saturating_sub(1).max(1));
                let v = INTERESTING_U16[rng.usize(0..INTERESTING_U16.len())].to_be_bytes();
                f[i] = v[0];
                if i + 1 < f.len() {
                    f[i + 1] = v[1];
                }
            }
            4 => f.truncate(rng.usize(14..=f.len().max(14))),
            5 => {
                let n = rng.usize(1..64);
                f.extend((0..n).map(|_| rng.u8(..)));
            }
            6 => {
                let i = rng.usize(12..f.len().max(13));
                let ins: Vec<u8> = (0..rng.usize(1..9)).map(|_| rng.u8(..)).collect();
                f.splice(i.min(f.len())..i.min(f.len()), ins);
            }
            _ => {
                // Random bytes after a valid Ethernet header.
                let n = rng.usize(0..200);
                f.truncate(14);
                f.extend((0..n).map(|_| rng.u8(..)));
            }
        }
    }
    if f.len() < 14 {
        f.resize(14, 0);
    }
    f
}

fn snapshot(p: &Program) -> [u64; st::COUNT as usize] {
    p.stats()
}

/// Runs `iterations` mutated frames; panics with the frame (hex) at the first broken
/// invariant.
pub fn run(seeds: &[Vec<u8>], iterations: u64, seed: u64) -> Report {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut p = Program::load_sized(sensor_user::kernel::loader::MapSizes {
        flows: MAP_FLOWS,
        devices: 65_536,
        ring_bytes: 1 << 20,
    });
    let mut before = snapshot(&p);
    for i in 0..iterations {
        let base = &seeds[rng.usize(0..seeds.len())];
        let f = mutate(&mut rng, base);
        let action = p.run(&f);
        let hex = || f.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(action, XDP_PASS, "frame {i} was not passed: {}", hex());
        let after = snapshot(&p);
        for (k, (a, b)) in after.iter().zip(&before).enumerate() {
            assert!(
                a >= b,
                "frame {i}: counter {} went backwards: {}",
                st::NAMES[k],
                hex()
            );
        }
        assert_eq!(
            after[st::FRAMES as usize],
            before[st::FRAMES as usize] + 1,
            "frame {i}: {}",
            hex()
        );
        let classes = |s: &[u64; st::COUNT as usize]| -> u64 {
            st::FRAME_CLASSES.iter().map(|c| s[*c as usize]).sum()
        };
        assert_eq!(
            classes(&after),
            classes(&before) + 1,
            "frame {i} not counted in exactly one class: {}",
            hex()
        );
        let malformed = [
            st::ERR_TRUNCATED_L2,
            st::ERR_TRUNCATED_L3,
            st::ERR_BAD_IHL,
            st::ERR_TRUNCATED_L4,
            st::ERR_UNSUPPORTED,
        ]
        .iter()
        .any(|c| after[*c as usize] > before[*c as usize]);
        if malformed {
            for c in [st::NEW_FLOWS, st::NEW_DEVICES] {
                assert_eq!(
                    after[c as usize],
                    before[c as usize],
                    "frame {i}: a malformed frame created state: {}",
                    hex()
                );
            }
        }
        p.events();
        before = after;
    }
    // Every well-formed IP frame is in a flow, or in a counter that says it was lost. Once
    // the map has filled, the LRU evicts flows silently (the sensor reports evicted flows
    // from its polls, which this loop does not run): then nothing may be counted twice.
    let s = snapshot(&p);
    let flows = p.flows();
    let in_flows: u64 = flows.values().map(|t| t.packets).sum();
    let ip = s[st::IPV4 as usize] + s[st::IPV6 as usize];
    let lost = s[st::FLOW_INSERT_FAILED as usize] + s[st::CACHE_FLUSH_LOST as usize];
    if s[st::NEW_FLOWS as usize] <= u64::from(MAP_FLOWS) {
        assert_eq!(in_flows + lost, ip, "IP frames in flows plus lost ones");
    } else {
        assert!(
            in_flows + lost <= ip,
            "IP frames counted twice: {in_flows} + {lost} > {ip}"
        );
    }
    Report {
        frames: iterations,
        stats: st::NAMES
            .iter()
            .zip(s)
            .filter(|(_, v)| *v > 0)
            .map(|(n, v)| (*n, v))
            .collect(),
        flows: flows.len(),
    }
}
