//! A fixed-bucket histogram of milliseconds: lock-free to record, bounded in memory, good for
//! percentiles (p50/p99 within one bucket width) and for Prometheus.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (ms) of the buckets: 1 ms steps to 100 ms, 10 ms steps to 1 s, 100 ms steps to
/// 10 s, then one overflow bucket. Resolution is at worst 10% of the value.
fn bucket_bounds() -> &'static [f64] {
    static BOUNDS: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    BOUNDS.get_or_init(|| {
        let mut b: Vec<f64> = (1..=100).map(f64::from).collect();
        b.extend((11..=100).map(|i| f64::from(i) * 10.0));
        b.extend((11..=100).map(|i| f64::from(i) * 100.0));
        b
    })
}

fn bucket_of(value_ms: f64) -> usize {
    let bounds = bucket_bounds();
    bounds.partition_point(|&upper| upper < value_ms)
}

/// Counts of values per bucket, plus their sum.
#[derive(Debug)]
pub struct Histogram {
    counts: Box<[AtomicU64]>,
    /// Sum in microseconds (for the mean and Prometheus `_sum`).
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: (0..=bucket_bounds().len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            sum_us: AtomicU64::new(0),
        }
    }

    /// Records one value; negative or NaN values count as 0.
    pub fn record(&self, value_ms: f64) {
        let v = if value_ms.is_finite() && value_ms > 0.0 {
            value_ms
        } else {
            0.0
        };
        self.counts[bucket_of(v)].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add((v * 1e3) as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

/// A copy of a histogram's counts.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct HistogramSnapshot {
    counts: Vec<u64>,
    sum_us: u64,
}

impl HistogramSnapshot {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn sum_ms(&self) -> f64 {
        self.sum_us as f64 / 1e3
    }

    /// The counts recorded since `earlier` (same histogram).
    pub fn since(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        if earlier.counts.len() != self.counts.len() {
            return self.clone();
        }
        HistogramSnapshot {
            counts: self
                .counts
                .iter()
                .zip(&earlier.counts)
                .map(|(a, b)| a.saturating_sub(*b))
                .collect(),
            sum_us: self.sum_us.saturating_sub(earlier.sum_us),
        }
    }

    /// The value below which a fraction `q` (0..=1) of the values lie: the upper bound of the
    /// bucket holding that rank. `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        let bounds = bucket_bounds();
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bounds.get(i).copied().unwrap_or(f64::INFINITY));
            }
        }
        None
    }

    /// `(upper bound ms, cumulative count)` per bucket, for Prometheus.
    pub fn cumulative_buckets(&self) -> Vec<(f64, u64)> {
        let mut seen = 0;
        let bounds = bucket_bounds();
        self.counts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                seen += c;
                (bounds.get(i).copied().unwrap_or(f64::INFINITY), seen)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_from_tables() {
        let cases: &[(&str, &[f64], f64, Option<f64>)] = &[
            ("empty", &[], 0.5, None),
            ("one value", &[42.3], 0.5, Some(43.0)),
            (
                "p50 of 1..=100",
                &(1..=100).map(f64::from).collect::<Vec<_>>(),
                0.5,
                Some(50.0),
            ),
            (
                "p99 of 1..=100",
                &(1..=100).map(f64::from).collect::<Vec<_>>(),
                0.99,
                Some(99.0),
            ),
            (
                "coarser above 100 ms",
                &[250.0, 251.0, 260.0],
                0.5,
                Some(260.0),
            ),
            ("seconds", &[3_450.0], 0.5, Some(3_500.0)),
            ("overflow", &[60_000.0], 0.5, Some(f64::INFINITY)),
            (
                "negative and NaN count as 0",
                &[-5.0, f64::NAN],
                1.0,
                Some(1.0),
            ),
        ];
        for (name, values, q, expected) in cases {
            let h = Histogram::new();
            for v in *values {
                h.record(*v);
            }
            assert_eq!(h.snapshot().quantile(*q), *expected, "{name}");
        }
    }

    #[test]
    fn since_subtracts() {
        let h = Histogram::new();
        h.record(5.0);
        let before = h.snapshot();
        h.record(500.0);
        h.record(500.0);
        let delta = h.snapshot().since(&before);
        assert_eq!(delta.count(), 2);
        assert_eq!(delta.quantile(0.5), Some(500.0));
        assert_eq!(delta.sum_ms(), 1000.0);
        assert_eq!(h.snapshot().cumulative_buckets().last().unwrap().1, 3);
    }
}
