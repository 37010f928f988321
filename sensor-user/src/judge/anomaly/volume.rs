//! Volume: a device's bytes and packets per interval against its own learned rate, kept
//! apart upstream and downstream. The rate is an EWMA, its spread an EWMA of absolute
//! deviations (a robust stand-in for the median absolute deviation); a spike must clear
//! the band, a ratio to the mean, and a floor, so quiet devices don't alert on noise.

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
