//! What a flow's first payload costs in the kernel, against a known flow's frame: the
//! same data segments (IPv4/TCP, 300 bytes of payload), one per flow, each flow opened by
//! a SYN from its own device (so every device has tokens: the copy path, not the skip),
//! through the empty program and the sensor, first when each segment is its flow's first
//! payload (copied to the ring buffer) and again when it is not (a known flow, sampled
//! already); and the known flow once more with sampling off (`payload_sampling = false`),
//! so the one byte compare sampling adds to every known-flow frame shows as a difference.

use anyhow::Result;
use sensor_common::{MacAddr, maps, proto};
use sensor_user::{
    config::SensorConfig,
    kernel::{
        loader::{self, MapSizes},
        maps::KernelMaps,
    },
};

use super::run::{median, prog, repeat_ns, spread};
use crate::frames::{self, cat, eth, ethertype as et, tcp_flags};

/// Flows (and devices) per round: within the device table, the flow cache's reach
/// exceeded (so frames of a known flow go to the flow map, as at scale).
const FLOWS: u32 = 3_000;

/// One round's medians (ns, one-shot runs).
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Round {
    /// The empty program on the data segments.
    pub empty: f64,
    /// The sensor when each segment is its flow's first payload: copied.
    pub first_payload: f64,
    /// The same segments again: known flows, sampled already.
    pub known: f64,
    /// The known flows with sampling off.
    pub known_sampling_off: f64,
    /// First payloads copied in the round (the kernel's counter).
    pub copied: u64,
}

const GW: MacAddr = MacAddr([0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]);

fn device(i: u32) -> MacAddr {
    let b = i.to_be_bytes();
    MacAddr([0x02, 0x5e, 0x00, b[1], b[2], b[3]])
}

fn segment(i: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let b = i.to_be_bytes();
    cat(&[
        &eth(GW, device(i), &[], et::IPV4),
        &frames::ipv4(
            [198, 51, 100, 23],
            [10, b[1], b[2], b[3]],
            proto::TCP,
            &[],
            0,
            &frames::tcp(50000, 443, flags, payload),
        ),
    ])
}

/// Runs `rounds` rounds, each on freshly loaded objects.
pub fn measure(rounds: usize) -> Result<Vec<Round>> {
    (0..rounds).map(|_| round()).collect()
}

fn round() -> Result<Round> {
    let hello = [0x16u8; 300];
    let data: Vec<Vec<u8>> = (0..FLOWS)
        .map(|i| segment(i, tcp_flags::PSH | tcp_flags::ACK, &hello))
        .collect();
    let sizes = MapSizes {
        // Every record fits: the figure is the copy, not a full ring.
        ring_bytes: 8 << 20,
        ..MapSizes::from(&SensorConfig::default())
    };
    let mut measured = Vec::new();
    for sampling in [true, false] {
        let mut sensor = loader::load(sizes, loader::Mode::LIVE.payloads(sampling))?;
        let mut bench = aya::Ebpf::load(loader::BENCH_OBJECT)?;
        prog(&mut bench, maps::BENCH_PASS_PROGRAM)?.load()?;
        let (kernel, mut ring) = KernelMaps::take(&mut sensor)?;
        let p = prog(&mut sensor, maps::XDP_PROGRAM)?;
        for i in 0..FLOWS {
            repeat_ns(p, &segment(i, tcp_flags::SYN, &[]), 1)?;
        }
        while ring.next().is_some() {}
        let (mut first, mut known) = (Vec::new(), Vec::new());
        for f in &data {
            first.push(repeat_ns(p, f, 1)?);
        }
        for f in &data {
            known.push(repeat_ns(p, f, 1)?);
        }
        let copied = kernel.stats.read()?[sensor_common::stats::PAYLOAD_COPIED as usize];
        let empty_prog = prog(&mut bench, maps::BENCH_PASS_PROGRAM)?;
        let mut empty = Vec::new();
        for f in &data {
            empty.push(repeat_ns(empty_prog, f, 1)?);
        }
        measured.push((median(empty), median(first), median(known), copied));
    }
    let (empty, first_payload, known, copied) = measured[0];
    Ok(Round {
        empty,
        first_payload,
        known,
        known_sampling_off: measured[1].2,
        copied,
    })
}

/// The table: each figure over the one-shot empty program, and the ratio the
/// performance issue sets (a first payload at most twice a known flow).
pub fn table(rounds: &[Round]) -> String {
    type Step = dyn Fn(&Round) -> f64;
    let col = |f: &Step| spread(&rounds.iter().map(f).collect::<Vec<_>>());
    let mut md = format!(
        "| step (IPv4/TCP, 300-byte payload, one-shot runs; {FLOWS} flows, one device each) | ns over the one-shot empty program: median (lowest-highest round) |\n|---|---|\n"
    );
    let steps: [(&str, &Step); 5] = [
        ("a flow's first payload, copied to the ring buffer", &|r| {
            r.first_payload - r.empty
        }),
        (
            "the same segment on the known flow (sampled already)",
            &|r| r.known - r.empty,
        ),
        ("the known flow with sampling off", &|r| {
            r.known_sampling_off - r.empty
        }),
        ("first payload over known flow (ratio; target <= 2)", &|r| {
            (r.first_payload - r.empty) / (r.known - r.empty).max(1.0)
        }),
        ("first payloads copied per round", &|r| r.copied as f64),
    ];
    for (what, f) in steps {
        md += &format!("| {what} | {} |\n", col(f));
    }
    md
}
