//! The ring buffer to userspace: one record per new flow, new device, discovery frame or
//! DNS answer; a full ring is counted, never waited on.

use sensor_common::{Event, stats};

use crate::maps::{EVENTS, Stats};

/// Sends an event record; counts it lost when the ring is full.
#[inline(always)]
pub(crate) fn emit(st: &mut Stats, ev: Event) {
    match EVENTS.reserve::<Event>(0) {
        Some(mut slot) => {
            slot.write(ev);
            slot.submit(0);
        }
        None => st[stats::RINGBUF_FULL as usize] += 1,
    }
}
