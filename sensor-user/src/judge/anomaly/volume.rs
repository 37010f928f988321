//! Volume: a device's bytes and packets per interval against its own learned rate, kept
//! apart upstream and downstream. The rate is an EWMA, its spread an EWMA of absolute
//! deviations (a robust stand-in for the median absolute deviation); a spike must clear
//! the band, a ratio to the mean, and a floor, so quiet devices don't alert on noise.

use std::collections::HashMap;

use sensor_common::MacAddr;
use serde_json::json;

use super::{Detector, Finding, Poll};
use crate::{config::AnomalyConfig, judge::rules};

/// Thresholds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VolumeRule {
    /// Intervals before a series' rate is trusted.
    pub warmup: u32,
    /// Band width in deviations.
    pub k: f64,
    /// Minimum ratio to the mean.
    pub ratio: f64,
    /// Minimum value (bytes or packets) in the interval.
    pub floor: f64,
}

/// One series (a device, a direction, a unit).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Series {
    mean: f64,
    dev: f64,
    n: u32,
}

/// A spike: the value, and the rate it was measured against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spike {
    /// This interval's value.
    pub value: f64,
    /// The learned mean.
    pub mean: f64,
    /// The band's upper edge.
    pub limit: f64,
}

const ALPHA: f64 = 0.2;

impl Series {
    /// Takes one interval's value; returns a spike when it is one.
    pub fn on_interval(&mut self, x: f64, r: &VolumeRule) -> Option<Spike> {
        let limit = (self.mean + r.k * self.dev)
            .max(self.mean * r.ratio)
            .max(r.floor);
        let spike = self.n >= r.warmup && x > limit;
        // A spike is clipped before it is learned: one burst must not become the norm.
        let learn = if spike { limit } else { x };
        if self.n == 0 {
            self.mean = learn;
        } else {
            self.dev = (1.0 - ALPHA) * self.dev + ALPHA * (learn - self.mean).abs();
            self.mean = (1.0 - ALPHA) * self.mean + ALPHA * learn;
        }
        self.n = self.n.saturating_add(1);
        spike.then_some(Spike {
            value: x,
            mean: self.mean,
            limit,
        })
    }
}

/// The detector: each device's traffic summed per interval, upstream from its flows and
/// downstream from what the gateway sent it.
pub struct Volume {
    interval_ns: u64,
    bytes: VolumeRule,
    packets: VolumeRule,
    series: HashMap<(MacAddr, &'static str, &'static str), Series>,
    /// Per device this interval: upstream bytes, packets; downstream bytes, packets.
    acc: HashMap<MacAddr, [u64; 4]>,
    egress_prev: HashMap<MacAddr, (u64, u64)>,
    next_interval_ns: Option<u64>,
}

/// The detector, with `[anomaly]`'s interval and thresholds.
pub fn detector(c: &AnomalyConfig) -> Box<dyn Detector> {
    let rule = |floor: u64| VolumeRule {
        warmup: c.volume_warmup,
        k: c.volume_k,
        ratio: c.volume_ratio,
        floor: floor as f64,
    };
    Box::new(Volume {
        interval_ns: c.volume_interval.get_ref().as_nanos() as u64,
        bytes: rule(c.volume_floor_bytes),
        packets: rule(c.volume_floor_packets),
        series: HashMap::new(),
        acc: HashMap::new(),
        egress_prev: HashMap::new(),
        next_interval_ns: None,
    })
}

impl Detector for Volume {
    fn on_poll(&mut self, poll: &Poll<'_>) -> Vec<Finding> {
        let now = poll.now;
        for d in poll.deltas {
            let a = self.acc.entry(d.key.mac).or_default();
            a[0] += d.bytes;
            a[1] += d.packets;
        }
        for (mac, packets, bytes) in poll.egress {
            let prev = self
                .egress_prev
                .insert(*mac, (*packets, *bytes))
                .unwrap_or((*packets, *bytes));
            let a = self.acc.entry(*mac).or_default();
            a[2] += bytes.saturating_sub(prev.1);
            a[3] += packets.saturating_sub(prev.0);
        }
        let next = *self.next_interval_ns.get_or_insert(now + self.interval_ns);
        if now < next {
            return Vec::new();
        }
        self.next_interval_ns = Some(now + self.interval_ns);
        let mut out = Vec::new();
        let acc: Vec<(MacAddr, [u64; 4])> = self.acc.drain().collect();
        for (mac, v) in acc {
            for (i, direction, unit) in [
                (0, "upstream", "bytes"),
                (1, "upstream", "packets"),
                (2, "downstream", "bytes"),
                (3, "downstream", "packets"),
            ] {
                let rule = if unit == "bytes" {
                    self.bytes
                } else {
                    self.packets
                };
                let spike = self
                    .series
                    .entry((mac, direction, unit))
                    .or_default()
                    .on_interval(v[i] as f64, &rule);
                if let Some(s) = spike {
                    out.push(Finding {
                        rule: &rules::VOLUME_SPIKE,
                        mac,
                        flow: None,
                        metadata: json!({
                            "direction": [direction],
                            "unit": [unit],
                            "value": [format!("{:.0}", s.value)],
                            "usual": [format!("{:.0}", s.mean)],
                            "limit": [format!("{:.0}", s.limit)],
                            "interval_s": [(self.interval_ns / 1_000_000_000).to_string()],
                        }),
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: VolumeRule = VolumeRule {
        warmup: 6,
        k: 6.0,
        ratio: 4.0,
        floor: 10_000.0,
    };

    fn steady(s: &mut Series, v: f64, n: usize) {
        for _ in 0..n {
            assert_eq!(s.on_interval(v, &R), None);
        }
    }

    #[test]
    fn twenty_times_the_usual_rate_is_a_spike() {
        let mut s = Series::default();
        steady(&mut s, 50_000.0, 20);
        let spike = s.on_interval(1_000_000.0, &R).expect("20x");
        assert!(
            spike.limit >= 200_000.0 && spike.limit < 1_000_000.0,
            "{spike:?}"
        );
    }

    #[test]
    fn just_under_and_just_over_the_ratio() {
        let mut s = Series::default();
        steady(&mut s, 50_000.0, 20);
        // A steady series has no spread: the ratio (4x) is the edge.
        assert_eq!(s.on_interval(199_999.0, &R), None);
        let mut s = Series::default();
        steady(&mut s, 50_000.0, 20);
        assert!(s.on_interval(200_001.0, &R).is_some());
    }

    #[test]
    fn quiet_devices_stay_under_the_floor() {
        let mut s = Series::default();
        steady(&mut s, 100.0, 20);
        assert_eq!(
            s.on_interval(9_999.0, &R),
            None,
            "100x, but under the floor"
        );
        let mut s = Series::default();
        steady(&mut s, 100.0, 20);
        assert!(s.on_interval(10_001.0, &R).is_some(), "just over it");
    }

    #[test]
    fn nothing_before_warmup_and_noisy_devices_get_a_wider_band() {
        let mut s = Series::default();
        assert_eq!(s.on_interval(10.0, &R), None);
        assert_eq!(s.on_interval(10_000_000.0, &R), None, "still warming up");
        let mut noisy = Series::default();
        for i in 0..40 {
            let v = if i % 2 == 0 { 20_000.0 } else { 180_000.0 };
            noisy.on_interval(v, &R);
        }
        assert_eq!(
            noisy.on_interval(390_000.0, &R),
            None,
            "inside its own spread"
        );
    }
}
