//! The benchmark object (sensor-ebpf/src/bin/kw-bench.rs) under BPF_PROG_TEST_RUN: each
//! program loads and does what `cargo xtask bench` counts on, and the shipped binary
//! holds none of them.

use anyhow::{Context as _, Result};
use aya::{
    Ebpf,
    programs::{TestRun, TestRunOptions, Xdp},
};
use kettlewatch_tests::{
    env,
    frames::{self, cat, eth, ethertype as et},
};
use sensor_common::{FlowCounters, FlowKey, MacAddr, maps, proto};
use sensor_user::kernel::loader;

const XDP_ABORTED: u32 = 0;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

fn loaded(name: &str) -> Result<Ebpf> {
    let mut e = Ebpf::load(loader::BENCH_OBJECT).context("the benchmark object loads")?;
    let p: &mut Xdp = e.program_mut(name).context(name.to_string())?.try_into()?;
    p.load()
        .with_context(|| format!("{name} passes the verifier"))?;
    Ok(e)
}

/// Runs `frame` once; the action and the frame as the program left it.
fn run(e: &mut Ebpf, name: &str, frame: &[u8]) -> (u32, Vec<u8>) {
    let p: &mut Xdp = e.program_mut(name).unwrap().try_into().unwrap();
    let mut out = vec![0u8; frame.len() + 256];
    let r = p
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..TestRunOptions::default()
        })
        .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN of {name}: {e}"));
    out.truncate(r.data_size_out as usize);
    (r.return_value, out)
}

fn udp_frame(dport: u16) -> Vec<u8> {
    cat(&[
        &eth(
            MacAddr([0x02, 0, 0, 0, 0, 1]),
            MacAddr([0x02, 0, 0, 0, 0, 2]),
            &[],
            et::IPV4,
        ),
        &frames::ipv4(
            [198, 51, 100, 23],
            [203, 0, 113, 9],
            proto::UDP,
            &[],
            0,
            &frames::udp(40000, dport, &[0; 18]),
        ),
    ])
}

#[test]
fn the_empty_parse_only_insert_and_lookup_programs_pass_every_frame() {
    if !env::have_root() {
        return;
    }
    for name in [
        maps::BENCH_PASS_PROGRAM,
        maps::BENCH_PARSE_PROGRAM,
        maps::BENCH_INSERT_PROGRAM,
        maps::BENCH_LOOKUP_PROGRAM,
        maps::BENCH_SHARED_INSERT_PROGRAM,
        maps::BENCH_SHARED_LOOKUP_PROGRAM,
    ] {
        let mut e = loaded(name).unwrap();
        for frame in [udp_frame(53), vec![0xff; 20], vec![0; 14]] {
            let (action, out) = run(&mut e, name, &frame);
            assert_eq!(action, XDP_PASS, "{name} on {} bytes", frame.len());
            assert_eq!(out, frame, "{name} leaves the frame alone");
        }
    }
}

/// Packets the benchmark object's flow map `map` holds for `frame`'s flow, summed over
/// CPUs; `None` when the flow is not there.
fn packets(e: &Ebpf, map: &str, frame: &[u8]) -> Option<u64> {
    use aya::maps::{HashMap, PerCpuHashMap};
    let m = e.map(map).expect(map);
    let keys: Vec<FlowKey> = if map == maps::BENCH_SHARED_FLOWS {
        HashMap::<_, FlowKey, FlowCounters>::try_from(m)
            .unwrap()
            .keys()
            .map(Result::unwrap)
            .collect()
    } else {
        PerCpuHashMap::<_, FlowKey, FlowCounters>::try_from(m)
            .unwrap()
            .keys()
            .map(Result::unwrap)
            .collect()
    };
    let port = u16::from_be_bytes([frame[36], frame[37]]);
    let key = keys.into_iter().find(|k| k.port == port)?;
    Some(if map == maps::BENCH_SHARED_FLOWS {
        HashMap::<_, FlowKey, FlowCounters>::try_from(m)
            .unwrap()
            .get(&key, 0)
            .unwrap()
            .packets
    } else {
        PerCpuHashMap::<_, FlowKey, FlowCounters>::try_from(m)
            .unwrap()
            .get(&key, 0)
            .unwrap()
            .iter()
            .map(|c| c.packets)
            .sum()
    })
}

#[test]
fn the_lookup_programs_count_the_flows_the_insert_programs_created() {
    if !env::have_root() {
        return;
    }
    // The known-flow breakdown subtracts these programs from the sensor: each lookup
    // must find its flow and count the frame, in its own map and no other.
    for (insert, lookup, map, other) in [
        (
            maps::BENCH_INSERT_PROGRAM,
            maps::BENCH_LOOKUP_PROGRAM,
            maps::BENCH_FLOWS,
            maps::BENCH_SHARED_FLOWS,
        ),
        (
            maps::BENCH_SHARED_INSERT_PROGRAM,
            maps::BENCH_SHARED_LOOKUP_PROGRAM,
            maps::BENCH_SHARED_FLOWS,
            maps::BENCH_FLOWS,
        ),
    ] {
        let mut e = loaded(insert).unwrap();
        let p: &mut Xdp = e.program_mut(lookup).unwrap().try_into().unwrap();
        p.load().unwrap();
        let (a, b) = (udp_frame(5000), udp_frame(5001));
        run(&mut e, lookup, &a);
        assert_eq!(packets(&e, map, &a), None, "{lookup} creates nothing");
        run(&mut e, insert, &a);
        run(&mut e, insert, &a);
        assert_eq!(
            packets(&e, map, &a),
            Some(1),
            "{insert}: one insert per flow"
        );
        for _ in 0..3 {
            run(&mut e, lookup, &a);
        }
        assert_eq!(packets(&e, map, &a), Some(4), "{lookup} counts each frame");
        assert_eq!(packets(&e, map, &b), None);
        assert_eq!(packets(&e, other, &a), None, "{insert} wrote {other}");
    }
}

#[test]
fn the_traffic_source_spreads_frames_over_its_flows_and_transmits_them() {
    if !env::have_root() {
        return;
    }
    let name = maps::BENCH_GEN_PROGRAM;
    let mut e = loaded(name).unwrap();
    let frame = udp_frame(1);
    let mut ports = std::collections::BTreeSet::new();
    for _ in 0..64 {
        let (action, out) = run(&mut e, name, &frame);
        assert_eq!(action, XDP_TX);
        assert_eq!(out.len(), frame.len());
        assert_eq!(out[..36], frame[..36], "only the destination port changes");
        let port = u16::from_be_bytes([out[36], out[37]]);
        assert!(
            (10_000..10_000 + maps::BENCH_GEN_FLOWS as u16).contains(&port),
            "{port}"
        );
        ports.insert(port);
    }
    assert!(ports.len() > 32, "random ports, not one: {ports:?}");
    let (action, _) = run(&mut e, name, &frame[..30]);
    assert_eq!(action, XDP_ABORTED, "too short to hold a UDP port");
}

#[test]
fn the_shipped_binary_holds_no_benchmark_program() {
    let bin = std::fs::read(env::kettlewatch()).expect("the kettlewatch binary");
    let has = |needle: &[u8]| bin.windows(needle.len()).any(|w| w == needle);
    assert!(
        has(maps::XDP_PROGRAM.as_bytes()),
        "the sensor's object is embedded"
    );
    for name in [
        maps::BENCH_PASS_PROGRAM,
        maps::BENCH_PARSE_PROGRAM,
        maps::BENCH_INSERT_PROGRAM,
        maps::BENCH_LOOKUP_PROGRAM,
        maps::BENCH_SHARED_INSERT_PROGRAM,
        maps::BENCH_SHARED_LOOKUP_PROGRAM,
        maps::BENCH_GEN_PROGRAM,
    ] {
        assert!(!has(name.as_bytes()), "{name} is in the shipped binary");
    }
    assert!(
        !loader::OBJECT
            .windows(b"kw_bench".len())
            .any(|w| w == b"kw_bench"),
        "the sensor's object holds a benchmark program"
    );
}
