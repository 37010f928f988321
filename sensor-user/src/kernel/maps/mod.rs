//! The kernel's maps seen from userspace, a file per map family as
//! `sensor-ebpf/src/maps.rs` declares them: flows, devices, stats and clock are read
//! (polls, replay), the policy, intel and generations maps written (what the judge
//! stage decided, handed over by the engine). One error type, `object::MapsError`.

pub mod batch;
pub mod devices;
pub mod flows;
pub mod generations;
pub mod intel;
pub mod lpm;
pub mod object;
pub mod policy;
pub mod stats;

use std::sync::Arc;

use aya::{
    Ebpf,
    maps::{MapData, RingBuf},
};
use sensor_common::maps;

use devices::DeviceMaps;
use flows::FlowMaps;
use generations::Generations;
use object::{MapsError, typed};
use stats::StatsMaps;

/// The maps a poll reads, taken out of the loaded object.
pub struct KernelMaps {
    /// Flows, the flow cache and the change log.
    pub flows: FlowMaps,
    /// Devices and what the gateway sent them.
    pub devices: DeviceMaps,
    /// The stats counters and the replay clock.
    pub stats: StatsMaps,
    /// The generations the kernel checks per frame: the policy writer moves the
    /// policy's on, polls the epoch.
    pub generations: Arc<Generations>,
}

impl KernelMaps {
    /// Takes the maps a poll reads out of a loaded object; the ring buffer comes apart,
    /// since it is read on its own schedule.
    pub fn take(ebpf: &mut Ebpf) -> Result<(Self, RingBuf<MapData>), MapsError> {
        let cpus = aya::util::nr_cpus()
            .map_err(|(_, source)| MapsError::Io {
                name: "possible cpus",
                source,
            })?
            .get() as usize;
        let generations = Generations::take(ebpf)?;
        let maps = Self {
            flows: FlowMaps::take(ebpf, generations.clone(), cpus)?,
            devices: DeviceMaps::take(ebpf, cpus)?,
            stats: StatsMaps::take(ebpf, cpus)?,
            generations,
        };
        Ok((maps, typed(ebpf, maps::EVENTS)?))
    }

    /// Reads maps key by key instead of in batches: the fallback for kernels without
    /// BPF_MAP_LOOKUP_BATCH, switchable so the benchmarks can compare the two.
    pub fn set_batched(&mut self, on: bool) {
        self.flows.batched = on;
        self.devices.batched = on;
    }
}
