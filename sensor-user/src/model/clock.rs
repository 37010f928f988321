//! Time: the kernel stamps frames with its monotonic clock; events carry wall-clock time.

/// Converts kernel monotonic nanoseconds to nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug)]
pub struct TimeBase {
    /// Added to a kernel timestamp to get epoch nanoseconds.
    offset_ns: i128,
}

impl TimeBase {
    /// Live mode: the offset between CLOCK_REALTIME and CLOCK_MONOTONIC now.
    pub fn live() -> Self {
        Self {
            offset_ns: i128::from(realtime_ns()) - i128::from(monotonic_ns()),
        }
    }

    /// Replay mode: the kernel clock already holds capture (epoch) time.
    pub fn identity() -> Self {
        Self { offset_ns: 0 }
    }

    /// Whether kernel times are the live monotonic clock (not a capture's).
    pub fn is_live(&self) -> bool {
        self.offset_ns != 0
    }

    /// The kernel timestamp of an epoch time.
    pub fn to_kernel_ns(&self, epoch_ns: u64) -> u64 {
        (i128::from(epoch_ns) - self.offset_ns).max(0) as u64
    }

    /// The kernel timestamp of an epoch time, negative before this boot (a device first
    /// seen in an earlier boot).
    pub fn to_kernel_ns_signed(&self, epoch_ns: u64) -> i64 {
        (i128::from(epoch_ns) - self.offset_ns).clamp(i128::from(i64::MIN), i128::from(i64::MAX))
            as i64
    }

    /// Epoch nanoseconds of a kernel timestamp.
    pub fn to_epoch_ns(&self, kernel_ns: u64) -> u64 {
        (i128::from(kernel_ns) + self.offset_ns).max(0) as u64
    }
}

fn clock_ns(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec; these clocks always exist on Linux.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CLOCK_MONOTONIC, the clock of `bpf_ktime_get_ns`.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// CLOCK_REALTIME in nanoseconds since the epoch.
pub fn realtime_ns() -> u64 {
    clock_ns(libc::CLOCK_REALTIME)
}

/// EVE's timestamp form: `2026-11-24T14:02:11.532118+0000`.
pub fn eve_timestamp(epoch_ns: u64) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(epoch_ns as i64);
    t.format("%Y-%m-%dT%H:%M:%S%.6f%z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eve_timestamp_has_microseconds_and_offset() {
        assert_eq!(
            eve_timestamp(1_795_960_931_532_118_999),
            "2026-11-29T14:02:11.532118+0000"
        );
    }

    #[test]
    fn live_base_maps_now_to_now() {
        let base = TimeBase::live();
        let wall = base.to_epoch_ns(monotonic_ns());
        let diff = wall.abs_diff(realtime_ns());
        assert!(diff < 1_000_000_000, "off by {diff} ns");
    }
}
