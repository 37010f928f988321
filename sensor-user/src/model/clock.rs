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

/// Epoch ns of an EVE timestamp (`2026-11-24T14:02:11.532118+0000`), if it is one.
pub fn parse_eve_timestamp(s: &str) -> Option<u64> {
    chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .ok()?
        .timestamp_nanos_opt()
        .and_then(|n| u64::try_from(n).ok())
}

/// EVE's timestamp form: `2026-11-24T14:02:11.532118+0000`.
pub fn eve_timestamp(epoch_ns: u64) -> String {
    use chrono::{Datelike as _, Timelike as _};
    // chrono's `format` parses its pattern on every call: at a poll's hundreds of
    // thousands of flow records (three times each) that was a tenth of the poll. The
    // calendar stays chrono's; only the digits are written here.
    let t = chrono::DateTime::from_timestamp_nanos(epoch_ns as i64).naive_utc();
    let digits = |s: &mut String, n: u32, width: u32| {
        for i in (0..width).rev() {
            s.push(char::from(b'0' + (n / 10u32.pow(i) % 10) as u8));
        }
    };
    let mut s = String::with_capacity(31);
    digits(&mut s, t.year() as u32, 4);
    for (sep, n) in [
        ('-', t.month()),
        ('-', t.day()),
        ('T', t.hour()),
        (':', t.minute()),
        (':', t.second()),
    ] {
        s.push(sep);
        digits(&mut s, n, 2);
    }
    s.push('.');
    digits(&mut s, t.nanosecond() / 1000, 6);
    s.push_str("+0000");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eve_timestamp_writes_what_chrono_formats() {
        for ns in [
            0u64,
            1_000,
            999_999_999,
            951_782_400_123_456_789, // 2000-02-29, a leap day
            1_795_960_931_532_118_999,
            4_102_444_799_999_999_999, // the last microsecond of 2099
        ] {
            let t = chrono::DateTime::from_timestamp_nanos(ns as i64);
            assert_eq!(
                eve_timestamp(ns),
                t.format("%Y-%m-%dT%H:%M:%S%.6f%z").to_string(),
                "{ns}"
            );
        }
    }

    #[test]
    fn eve_timestamp_has_microseconds_and_offset() {
        assert_eq!(
            eve_timestamp(1_795_960_931_532_118_999),
            "2026-11-29T14:02:11.532118+0000"
        );
    }

    #[test]
    fn an_eve_timestamp_reads_back_to_its_microsecond() {
        let ns = 1_795_960_931_532_118_999;
        assert_eq!(
            parse_eve_timestamp(&eve_timestamp(ns)),
            Some(ns / 1000 * 1000)
        );
        assert_eq!(parse_eve_timestamp("2026-11-29 14:02:11"), None);
    }

    #[test]
    fn live_base_maps_now_to_now() {
        let base = TimeBase::live();
        let wall = base.to_epoch_ns(monotonic_ns());
        let diff = wall.abs_diff(realtime_ns());
        assert!(diff < 1_000_000_000, "off by {diff} ns");
    }
}
