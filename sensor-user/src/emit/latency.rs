//! Alert latency: from the kernel stamping a flow's first packet to its alert line being
//! handed to the output, kept as a bounded sample for percentiles in `stats`.

/// Samples kept (the newest win).
const SAMPLES: usize = 10_000;

/// A bounded sample of latencies in nanoseconds.
#[derive(Debug, Default)]
pub struct Latency {
    samples: Vec<u64>,
    next: usize,
    /// Latencies measured in all.
    pub count: u64,
}

impl Latency {
    /// Records one latency.
    pub fn record(&mut self, ns: u64) {
        if self.samples.len() < SAMPLES {
            self.samples.push(ns);
        } else {
            self.samples[self.next] = ns;
            self.next = (self.next + 1) % SAMPLES;
        }
        self.count += 1;
    }

    /// The `q` quantile (0..=1) of the sample, in microseconds.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        let mut v = self.samples.clone();
        v.sort_unstable();
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        Some(v[i] as f64 / 1000.0)
    }

    /// The `latency` section of `stats`.
    pub fn stats(&self) -> serde_json::Value {
        serde_json::json!({
            "alerts_measured": self.count,
            "p50_us": self.quantile_us(0.5),
            "p99_us": self.quantile_us(0.99),
            "max_us": self.quantile_us(1.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_known_sample() {
        let mut l = Latency::default();
        assert_eq!(l.quantile_us(0.5), None);
        for i in 1..=100u64 {
            l.record(i * 1000);
        }
        assert_eq!(l.quantile_us(0.5), Some(51.0));
        assert_eq!(l.quantile_us(0.99), Some(99.0));
        for _ in 0..20_000 {
            l.record(5_000);
        }
        assert_eq!(l.quantile_us(1.0), Some(5.0), "old samples age out");
        assert_eq!(l.count, 20_100);
    }
}
