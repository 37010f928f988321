//! The device maps (`DEVICES`, `EGRESS`): what each device sent that is not in a flow,
//! and what the gateway sent it.

use aya::{Ebpf, maps::Map};
use sensor_common::{DeviceCounters, DeviceKey, MacAddr, maps};

use super::{
    batch::read_per_cpu,
    object::{MapsError, take},
};
use crate::model::device::DeviceTotals;

/// The device maps.
pub struct DeviceMaps {
    devices: Map,
    egress: Map,
    cpus: usize,
    /// Batch calls, not key by key (see `KernelMaps::set_batched`).
    pub(super) batched: bool,
}

impl DeviceMaps {
    /// Takes the device maps out of a loaded object.
    pub fn take(ebpf: &mut Ebpf, cpus: usize) -> Result<Self, MapsError> {
        Ok(Self {
            devices: take(ebpf, maps::DEVICES)?,
            egress: take(ebpf, maps::EGRESS)?,
            cpus,
            batched: true,
        })
    }

    /// What the gateway sent each device: (mac, packets, bytes), summed over CPUs.
    pub fn egress(&self) -> Result<Vec<(MacAddr, u64, u64)>, MapsError> {
        let rows = read_per_cpu::<DeviceKey, sensor_common::EgressCounters, (u64, u64)>(
            &self.egress,
            maps::EGRESS,
            self.cpus,
            self.batched,
            |v| {
                v.iter()
                    .fold((0, 0), |(p, b), c| (p + c.packets, b + c.bytes))
            },
        )?;
        Ok(rows.into_iter().map(|(k, (p, b))| (k.mac, p, b)).collect())
    }

    /// Every device with its counters summed over CPUs.
    pub fn read(&self) -> Result<Vec<(MacAddr, DeviceTotals)>, MapsError> {
        let rows = read_per_cpu::<DeviceKey, DeviceCounters, DeviceTotals>(
            &self.devices,
            maps::DEVICES,
            self.cpus,
            self.batched,
            DeviceTotals::sum,
        )?;
        Ok(rows.into_iter().map(|(k, t)| (k.mac, t)).collect())
    }
}
