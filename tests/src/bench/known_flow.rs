//! Where a known flow's time goes when its frames miss the flow cache: the same frames,
//! picked at random among 65,536 live flows and interleaved, through the empty program,
//! the parser, a bare lookup in a per-CPU map like the sensor's flow map, the same in a
//! map with one value per flow, and the sensor. The inserts that filled the two maps
//! are timed too, so a new flow's map cost under either layout comes out of one run.

use anyhow::{Context as _, Result};
use aya::{Ebpf, EbpfLoader, maps::HashMap as BpfHashMap};
use sensor_common::{FlowCounters, FlowKey, maps, stats};
use sensor_user::{
    config::SensorConfig,
    kernel::{
        loader::{self, MapSizes},
        maps::KernelMaps,
    },
};

use super::run::{Kind, median, prog, repeat_ns, spread};

/// Live flows: the 64k row of the scale table, in maps a quarter larger (as `scale`).
pub const LIVE: u32 = 65_536;

/// Random frames per round, each through every load.
const FRAMES: u32 = 100_000;

/// One round's medians (ns, one-shot runs).
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Round {
    /// The empty program.
    pub empty: f64,
    /// The parser alone.
    pub parse: f64,
    /// The parser and a lookup in the per-CPU map, this CPU's counts added.
    pub lookup: f64,
    /// The same in the map with one value per flow (counts added plainly, see
    /// `kw_bench_shared_lookup`).
    pub shared_lookup: f64,
    /// The sensor on the same frames.
    pub sensor: f64,
    /// While filling: the parser, a lookup that misses and an insert, per-CPU map.
    pub insert: f64,
    /// The same into the map with one value per flow.
    pub shared_insert: f64,
}

/// Runs `rounds` rounds, each on freshly loaded objects.
pub fn measure(rounds: usize) -> Result<Vec<Round>> {
    (0..rounds).map(round).collect()
}

fn round(round: usize) -> Result<Round> {
    let flows = LIVE + LIVE / 4;
    let sizes = MapSizes {
        flows,
        ..MapSizes::from(&SensorConfig::default())
    };
    let mut sensor = loader::load(sizes, loader::Mode::LIVE)?;
    let (kernel, mut ring) = KernelMaps::take(&mut sensor)?;
    let mut bench = EbpfLoader::new()
        .map_max_entries(maps::BENCH_FLOWS, flows)
        .map_max_entries(maps::BENCH_SHARED_FLOWS, flows)
        .load(loader::BENCH_OBJECT)
        .context("the benchmark object")?;
    const LOADS: [&str; 6] = [
        maps::BENCH_PASS_PROGRAM,
        maps::BENCH_PARSE_PROGRAM,
        maps::BENCH_INSERT_PROGRAM,
        maps::BENCH_LOOKUP_PROGRAM,
        maps::BENCH_SHARED_INSERT_PROGRAM,
        maps::BENCH_SHARED_LOOKUP_PROGRAM,
    ];
    for name in LOADS {
        prog(&mut bench, name)?.load()?;
    }
    let (mut insert, mut shared_insert) = (Vec::new(), Vec::new());
    for i in 0..LIVE {
        let f = Kind::V4Tcp.frame(i);
        repeat_ns(prog(&mut sensor, maps::XDP_PROGRAM)?, &f, 1)?;
        insert.push(repeat_ns(
            prog(&mut bench, maps::BENCH_INSERT_PROGRAM)?,
            &f,
            1,
        )?);
        shared_insert.push(repeat_ns(
            prog(&mut bench, maps::BENCH_SHARED_INSERT_PROGRAM)?,
            &f,
            1,
        )?);
        if i % 1024 == 1023 {
            while ring.next().is_some() {}
        }
    }
    // Each frame through every load in turn, the order rotating, so that the host's
    // fast and slow minutes fall on all of them alike.
    let order: [(&str, bool); 5] = [
        (maps::BENCH_PASS_PROGRAM, false),
        (maps::BENCH_PARSE_PROGRAM, false),
        (maps::BENCH_LOOKUP_PROGRAM, false),
        (maps::BENCH_SHARED_LOOKUP_PROGRAM, false),
        (maps::XDP_PROGRAM, true),
    ];
    let mut ns: [Vec<f64>; 5] = Default::default();
    let mut rng = fastrand::Rng::with_seed(round as u64 + 1);
    for n in 0..FRAMES {
        let f = Kind::V4Tcp.frame(rng.u32(0..LIVE));
        for k in 0..order.len() {
            let i = (k + n as usize) % order.len();
            let (name, is_sensor) = order[i];
            let object = if is_sensor { &mut sensor } else { &mut bench };
            ns[i].push(repeat_ns(prog(object, name)?, &f, 1)?);
        }
    }
    // Every random frame found its flow in every map: no map evicted while filling.
    let created = kernel.stats.read()?[stats::NEW_FLOWS as usize];
    anyhow::ensure!(
        created == u64::from(LIVE),
        "the sensor created {created} flows for {LIVE}"
    );
    for name in [maps::BENCH_FLOWS, maps::BENCH_SHARED_FLOWS] {
        let held = entries(&bench, name)?;
        anyhow::ensure!(held == LIVE as usize, "{name} holds {held} of {LIVE} flows");
    }
    let [empty, parse, lookup, shared_lookup, sensor_ns] = ns.map(median);
    let r = Round {
        empty,
        parse,
        lookup,
        shared_lookup,
        sensor: sensor_ns,
        insert: median(insert),
        shared_insert: median(shared_insert),
    };
    eprintln!("known-flow steps round {round}: {r:?}");
    Ok(r)
}

/// Keys in one of the benchmark object's flow maps.
fn entries(bench: &Ebpf, name: &str) -> Result<usize> {
    let map = bench.map(name).context(name.to_string())?;
    if name == maps::BENCH_SHARED_FLOWS {
        let m = BpfHashMap::<_, FlowKey, FlowCounters>::try_from(map)?;
        return Ok(m.keys().filter(Result::is_ok).count());
    }
    let m = aya::maps::PerCpuHashMap::<_, FlowKey, FlowCounters>::try_from(map)?;
    Ok(m.keys().filter(Result::is_ok).count())
}

/// The breakdown as a markdown table: each step the difference of two loads, median
/// over rounds (lowest-highest round).
pub fn table(rounds: &[Round]) -> String {
    type Step = dyn Fn(&Round) -> f64;
    let col = |f: &Step| spread(&rounds.iter().map(f).collect::<Vec<_>>());
    let mut md = format!(
        "| step (IPv4/TCP, one-shot runs; {LIVE} live flows in maps of {}) | ns: median (lowest-highest round) |\n|---|---|\n",
        LIVE + LIVE / 4
    );
    let steps: [(&str, &Step); 7] = [
        (
            "known flow at random, the sensor, over the one-shot empty program",
            &|r| r.sensor - r.empty,
        ),
        ("parsing", &|r| r.parse - r.empty),
        (
            "the flow key, a lookup that finds the flow in a per-CPU LRU map like the sensor's, this CPU's counts added",
            &|r| r.lookup - r.parse,
        ),
        (
            "the same in an LRU map with one value per flow (counts added plainly; atomic adds would cost a few ns more)",
            &|r| r.shared_lookup - r.parse,
        ),
        (
            "the rest of the sensor: generations, the flow-cache set it misses, the slot handed over, clock, change log, stats",
            &|r| r.sensor - r.lookup,
        ),
        (
            "a new flow's lookup that misses and LRU insert, per-CPU map (while filling)",
            &|r| r.insert - r.parse,
        ),
        ("the same into the map with one value per flow", &|r| {
            r.shared_insert - r.parse
        }),
    ];
    for (what, f) in steps {
        md += &format!("| {what} | {} |\n", col(f));
    }
    md
}
