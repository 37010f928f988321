//! The generations the kernel checks on every frame (`sensor_common::Generations`): the
//! policy's, moved on by `policy.rs` when a policy changes, and the poll epoch,
//! moved on by `flows.rs` at each poll, on the map reader thread. They share one array
//! value so the per-frame path reads both with one lookup; each writer changes its own
//! field and writes the pair under one lock, so neither puts back the other's old value.

use std::sync::{Arc, Mutex, PoisonError};

use aya::{
    Ebpf,
    maps::{Array, MapData},
};
use sensor_common::maps;

use super::object::MapsError;

/// The shared writer of [`maps::POLICY_GEN`].
pub struct Generations {
    map: Mutex<(
        Array<MapData, sensor_common::Generations>,
        sensor_common::Generations,
    )>,
}

impl Generations {
    /// Takes the map out of a loaded object.
    pub fn take(ebpf: &mut Ebpf) -> Result<Arc<Self>, MapsError> {
        let map = ebpf
            .take_map(maps::POLICY_GEN)
            .ok_or(MapsError::Missing(maps::POLICY_GEN))?;
        let map = Array::try_from(map).map_err(|source| MapsError::Map {
            name: maps::POLICY_GEN,
            source,
        })?;
        Ok(Arc::new(Self {
            map: Mutex::new((map, sensor_common::Generations::default())),
        }))
    }

    /// Writes a new policy generation.
    pub fn set_policy(&self, generation: u32) -> Result<(), MapsError> {
        self.write(|g| g.policy = generation)
    }

    /// Writes a new poll epoch.
    pub fn set_poll(&self, epoch: u32) -> Result<(), MapsError> {
        self.write(|g| g.poll = epoch)
    }

    fn write(&self, change: impl FnOnce(&mut sensor_common::Generations)) -> Result<(), MapsError> {
        let mut guard = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let (map, current) = &mut *guard;
        let mut next = *current;
        change(&mut next);
        map.set(0, &next, 0).map_err(|source| MapsError::Map {
            name: maps::POLICY_GEN,
            source,
        })?;
        *current = next;
        Ok(())
    }
}
