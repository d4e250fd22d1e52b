//! Metrics: bounded log-linear histograms with percentiles, counters and
//! per-second time series.

use std::collections::BTreeMap;

use serde::Serialize;

/// Sub-buckets per power of two (2^6 = 64, about 1.6% relative error).
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Values below this are counted exactly.
const LINEAR: u64 = SUB * 2;
const BUCKETS: usize = (LINEAR + (63 - SUB_BITS as u64) * SUB) as usize;

/// A histogram of `u64` values in fixed memory (~30 KB) with ~1.6% relative
/// precision; min, max, count and sum are exact.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl core::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("summary", &self.summary())
            .finish()
    }
}

/// Percentiles of a [`Histogram`], in the histogram's unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Smallest sample.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest sample.
    pub max: u64,
    /// Arithmetic mean.
    pub mean: f64,
}

fn bucket_of(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // >= SUB_BITS + 1
    let shift = e - SUB_BITS;
    let sub = (v >> shift) - SUB; // in [0, SUB)
    (LINEAR + u64::from(e - SUB_BITS - 1) * SUB + sub) as usize
}

/// The smallest value that falls in bucket `b`.
fn bucket_floor(b: usize) -> u64 {
    let b = b as u64;
    if b < LINEAR {
        return b;
    }
    let k = b - LINEAR;
    let e = k / SUB + u64::from(SUB_BITS) + 1;
    let sub = k % SUB;
    (SUB + sub) << (e - u64::from(SUB_BITS))
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Records one value.
    pub fn record(&mut self, v: u64) {
        self.counts[bucket_of(v)] += 1;
        self.count += 1;
        self.sum += u128::from(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value at quantile `q` in `[0, 1]` (lower bucket bound, clamped to
    /// the exact min/max); 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_floor(b).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// Count, min, p50, p90, p99, max and mean.
    pub fn summary(&self) -> Percentiles {
        if self.count == 0 {
            return Percentiles::default();
        }
        Percentiles {
            count: self.count,
            min: self.min,
            p50: self.quantile(0.5),
            p90: self.quantile(0.9),
            p99: self.quantile(0.99),
            max: self.max,
            mean: self.sum as f64 / self.count as f64,
        }
    }
}

/// The most seconds a time series holds; later samples are ignored.
pub const MAX_SERIES_SECONDS: usize = 1_000_000;

/// Named counters, histograms and per-second series that an observer
/// collects. Names are sorted so reports are stable.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Totals.
    pub counters: BTreeMap<&'static str, u64>,
    /// Distributions.
    pub histograms: BTreeMap<&'static str, Histogram>,
    /// Per-second sums, indexed by virtual second.
    pub series: BTreeMap<&'static str, Vec<u64>>,
}

impl Metrics {
    /// Adds `v` to counter `name`.
    pub fn add(&mut self, name: &'static str, v: u64) {
        *self.counters.entry(name).or_default() += v;
    }
    /// Records `v` in histogram `name`.
    pub fn record(&mut self, name: &'static str, v: u64) {
        self.histograms.entry(name).or_default().record(v);
    }
    /// Adds `v` to series `name` at virtual second `second`.
    pub fn add_at(&mut self, name: &'static str, second: u64, v: u64) {
        let s = second as usize;
        if s >= MAX_SERIES_SECONDS {
            return;
        }
        let row = self.series.entry(name).or_default();
        if row.len() <= s {
            row.resize(s + 1, 0);
        }
        row[s] += v;
    }
    /// A counter's value (0 if never touched).
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn percentiles_of_uniform() {
        let mut h = Histogram::new();
        for v in 1..=10_000 {
            h.record(v);
        }
        let s = h.summary();
        assert_eq!(s.count, 10_000);
        assert_eq!((s.min, s.max), (1, 10_000));
        for (got, want) in [(s.p50, 5_000.0), (s.p90, 9_000.0), (s.p99, 9_900.0)] {
            assert!((got as f64 - want).abs() / want < 0.02, "{got} vs {want}");
        }
        assert!((s.mean - 5_000.5).abs() < 1e-9);
        assert_eq!(Histogram::new().summary(), Percentiles::default());
    }

    proptest! {
        #[test]
        fn bucket_floor_inverts(v in any::<u64>()) {
            let b = bucket_of(v);
            prop_assert!(b < BUCKETS);
            let lo = bucket_floor(b);
            prop_assert!(lo <= v);
            // Relative error bound.
            prop_assert!((v - lo) as f64 <= (v as f64) / SUB as f64 + 1.0);
            prop_assert_eq!(bucket_of(lo), b);
        }
    }
}
