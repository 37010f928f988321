//! The stats array (`STATS`) every program counts in, and the capture clock (`CLOCK`)
//! a replay writes.

use aya::{
    Ebpf,
    maps::{MapData, PerCpuArray, PerCpuValues},
};
use sensor_common::{maps, stats};

use super::object::{MapsError, typed};

/// The stats and clock maps.
pub struct StatsMaps {
    stats: PerCpuArray<MapData, [u64; stats::COUNT as usize]>,
    clock: PerCpuArray<MapData, u64>,
    cpus: usize,
}

impl StatsMaps {
    /// Takes the stats and clock maps out of a loaded object.
    pub fn take(ebpf: &mut Ebpf, cpus: usize) -> Result<Self, MapsError> {
        Ok(Self {
            stats: typed(ebpf, maps::STATS)?,
            clock: typed(ebpf, maps::CLOCK)?,
            cpus,
        })
    }

    /// The stats counters summed over CPUs.
    pub fn read(&self) -> Result<[u64; stats::COUNT as usize], MapsError> {
        let per_cpu = self.stats.get(&0, 0).map_err(|source| MapsError::Map {
            name: maps::STATS,
            source,
        })?;
        let mut out = [0u64; stats::COUNT as usize];
        for cpu in per_cpu.iter() {
            for (o, v) in out.iter_mut().zip(cpu) {
                *o += v;
            }
        }
        Ok(out)
    }

    /// Sets the replay clock on every CPU.
    pub fn set_clock(&mut self, ns: u64) -> Result<(), MapsError> {
        let values =
            PerCpuValues::try_from(vec![ns; self.cpus]).map_err(|source| MapsError::Io {
                name: maps::CLOCK,
                source,
            })?;
        self.clock
            .set(0, values, 0)
            .map_err(|source| MapsError::Map {
                name: maps::CLOCK,
                source,
            })
    }

    /// Each CPU's change-log write position (the kernel keeps it among the stats).
    pub fn log_heads(&self) -> Result<Vec<u64>, MapsError> {
        let per_cpu = self.stats.get(&0, 0).map_err(|source| MapsError::Map {
            name: maps::STATS,
            source,
        })?;
        Ok(per_cpu
            .iter()
            .map(|s| s[stats::DIRTY_LOGGED as usize])
            .collect())
    }
}
