//! The sensor's eBPF programs (XDP ingress, TC egress) loaded in this process, run on frames with BPF_PROG_TEST_RUN,
//! its maps read back. Time comes from the replay clock so results are deterministic.

use std::collections::BTreeMap;

use aya::{
    Ebpf,
    maps::{MapData, RingBuf},
    programs::{TestRun, TestRunOptions, TestRunResult},
};
use sensor_common::{FlowKey, MacAddr};
use sensor_user::{
    config::SensorConfig,
    engine::sensor::KernelStats,
    kernel::loader::{self, MapSizes},
    kernel::maps::KernelMaps,
    kernel::maps::policy::PolicyMaps,
    kernel::records::{KernelEvent, decode},
    model::device::DeviceTotals,
    model::flow::FlowTotals,
};

/// XDP_PASS.
pub const XDP_PASS: u32 = 2;

/// One loaded instance with its own maps.
pub struct Program {
    ebpf: Ebpf,
    maps: KernelMaps,
    policy: PolicyMaps,
    intel: sensor_user::kernel::maps::intel::IntelMaps,
    ring: RingBuf<MapData>,
    clock: u64,
}

impl Program {
    /// Loads with default map sizes.
    pub fn load() -> Self {
        Self::load_sized(MapSizes::from(&SensorConfig::default()))
    }

    /// Loads with the given map sizes.
    pub fn load_sized(sizes: MapSizes) -> Self {
        Self::load_mode(sizes, loader::Mode::REPLAY)
    }

    /// Loads with the given map sizes and mode (a replay clock either way, which the
    /// tests advance).
    pub fn load_mode(sizes: MapSizes, mode: loader::Mode) -> Self {
        pin_to_this_cpu();
        let mode = loader::Mode {
            replay: true,
            ..mode
        };
        let mut ebpf = loader::load(sizes, mode).expect("load the sensor's eBPF object");
        let (maps, ring) = KernelMaps::take(&mut ebpf).expect("maps");
        let policy = PolicyMaps::take(&mut ebpf, maps.generations.clone()).expect("policy maps");
        let intel =
            sensor_user::kernel::maps::intel::IntelMaps::take(&mut ebpf).expect("intel map");
        Self {
            ebpf,
            maps,
            policy,
            intel,
            ring,
            clock: 1_000_000_000,
        }
    }

    /// Runs one frame at the current clock, which then advances by 1 ms; returns the
    /// XDP action.
    pub fn run(&mut self, frame: &[u8]) -> u32 {
        self.tick();
        let prog = loader::xdp(&mut self.ebpf).expect("program");
        test_run(prog, frame, "ingress")
    }

    /// Runs one frame through the egress TC program at the current clock, which then
    /// advances by 1 ms; returns the TC action.
    pub fn run_egress(&mut self, frame: &[u8]) -> i32 {
        self.tick();
        let prog = loader::egress(&mut self.ebpf).expect("egress program");
        test_run(prog, frame, "egress") as i32
    }

    /// Writes the clock for the next frame, then advances it by 1 ms.
    fn tick(&mut self) {
        self.maps.stats.set_clock(self.clock).expect("set clock");
        self.clock += 1_000_000;
    }

    /// What the egress program counted per device: (MAC, packets, bytes).
    pub fn egress(&self) -> Vec<(MacAddr, u64, u64)> {
        let mut v = self.maps.devices.egress().expect("read egress");
        v.sort();
        v
    }

    /// The policy maps, to write devices' policies and allow-lists.
    pub fn policy(&mut self) -> &mut PolicyMaps {
        &mut self.policy
    }

    /// The intel trie, to write feeds and canaries.
    pub fn intel(&mut self) -> &mut sensor_user::kernel::maps::intel::IntelMaps {
        &mut self.intel
    }

    /// The clock value the next frame will carry.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// The flow map, summed over CPUs.
    pub fn flows(&self) -> BTreeMap<FlowKey, FlowTotals> {
        self.maps
            .flows
            .all()
            .expect("read flows")
            .into_iter()
            .collect()
    }

    /// Polls read only the flows that changed (the sensor's live mode), and the whole
    /// map every `sweep`.
    pub fn read_changes(&mut self, sweep: std::time::Duration) {
        self.maps.flows.read_changes(sweep);
    }

    /// Reads maps with batch lookups (the default) or key by key, as on kernels
    /// without them.
    pub fn set_batched(&mut self, on: bool) {
        self.maps.set_batched(on);
    }

    /// One poll's read of the flow map, as the sensor makes it.
    pub fn read_flows(&self) -> sensor_user::kernel::maps::flows::FlowRead {
        self.maps.flows.read(&self.maps.stats).expect("read flows")
    }

    /// Whole reads of the flow map so far, and how many an overflowing change log forced.
    pub fn sweeps(&self) -> (u64, u64) {
        self.maps.flows.sweeps()
    }

    /// The device map, summed over CPUs.
    pub fn devices(&self) -> BTreeMap<MacAddr, DeviceTotals> {
        self.maps
            .devices
            .read()
            .expect("read devices")
            .into_iter()
            .collect()
    }

    /// The stats array, summed over CPUs.
    pub fn stats(&self) -> KernelStats {
        self.maps.stats.read().expect("read stats")
    }

    /// Drains the ring buffer.
    pub fn events(&mut self) -> Vec<KernelEvent> {
        let mut out = Vec::new();
        while let Some(item) = self.ring.next() {
            out.push(decode(&item).expect("decodable event"));
        }
        out
    }
}

/// One BPF_PROG_TEST_RUN of `frame`; panics naming the program on a refusal.
fn test_run<P>(prog: &P, frame: &[u8], which: &str) -> u32
where
    P: for<'a> TestRun<Opts<'a> = TestRunOptions<'a>, Result = TestRunResult>,
{
    prog.test_run(TestRunOptions {
        data_in: Some(frame),
        repeat: 1,
        ..TestRunOptions::default()
    })
    .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN ({which}) on {} bytes: {e}", frame.len()))
    .return_value
}

/// Stats as a name -> value map, zeros left out, for readable assertions.
pub fn nonzero_stats(s: &KernelStats) -> BTreeMap<&'static str, u64> {
    sensor_common::stats::NAMES
        .iter()
        .zip(s)
        .filter(|(_, v)| **v != 0)
        .map(|(n, v)| (*n, *v))
        .collect()
}

/// Keeps the calling test thread on the CPU it runs on: BPF_PROG_TEST_RUN runs the
/// program on the caller's CPU, and the flow cache and LRU lists are per CPU, so a test
/// that migrated between two frames would see another CPU's cache (seen as a flaky
/// `cached_frames_of_an_evicted_flow_are_counted_as_lost` while CI ran beside it).
fn pin_to_this_cpu() {
    // SAFETY: plain syscalls on this thread with a zeroed, then filled, cpu_set_t.
    unsafe {
        let cpu = libc::sched_getcpu();
        if cpu < 0 {
            return;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        let rc = libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(
            rc,
            0,
            "pinning the test thread to CPU {cpu}: {}",
            std::io::Error::last_os_error()
        );
    }
}
