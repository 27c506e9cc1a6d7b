//! Streaming statistics with a latency histogram.

use std::collections::BTreeMap;

/// Significant bits a histogram bucket keeps (the leading one included): buckets are
/// 2^-(`BITS` - 1) of a power of two wide.
const BITS: u32 = 11;
/// Low bits of an `f64` dropped to make a bucket key.
const SHIFT: u32 = 52 - (BITS - 1);

/// Count, sum, min, max and mean of a stream of non-negative values (latencies, sizes), and a
/// histogram for percentiles.
///
/// The histogram buckets a value by its leading 11 significant bits (`BITS`): a percentile is
/// the nearest-rank sample rounded down to 11 significant bits (relative error below 2^-10,
/// under 0.1%), clamped to `[min, max]`; it is exact when the samples have at most 11
/// significant bits (integers below 2048, for instance) and when it is the min or the max.
/// Buckets live in a `BTreeMap`, so every result is deterministic, and memory grows with the
/// number of distinct buckets (at most 1024 per power of two), not with the samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    /// Bucket key (the value's bits shifted right by `SHIFT`) → samples.
    hist: BTreeMap<u64, u64>,
}

impl Stats {
    /// No samples.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sample; it must be finite and ≥ 0 (a negative zero counts as zero).
    pub fn record(&mut self, v: f64) {
        assert!(
            v.is_finite() && v >= 0.0,
            "a sample must be finite and non-negative, got {v}"
        );
        let v = v + 0.0; // -0.0 → 0.0
        if self.count == 0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.count += 1;
        self.sum += v;
        *self.hist.entry(v.to_bits() >> SHIFT).or_insert(0) += 1;
    }

    /// Adds the samples of `other` (as if they had been recorded here after ours).
    pub fn merge(&mut self, other: &Stats) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            self.min = other.min;
            self.max = other.max;
        } else {
            self.min = self.min.min(other.min);
            self.max = self.max.max(other.max);
        }
        self.count += other.count;
        self.sum += other.sum;
        for (&k, &n) in &other.hist {
            *self.hist.entry(k).or_insert(0) += n;
        }
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the samples (0 if none), added in the order they were recorded.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// The smallest sample.
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// The largest sample.
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// The mean.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// The `p`-th percentile (0 ≤ `p` ≤ 100) by nearest rank: the sample of rank
    /// `ceil(p / 100 × count)` (at least 1) in increasing order, to the histogram's resolution.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        assert!((0.0..=100.0).contains(&p), "percentile {p} outside 0..=100");
        if self.count == 0 {
            return None;
        }
        // p × count first: exact for integral p, so a whole rank is not pushed up by rounding.
        let rank = ((p * self.count as f64 / 100.0).ceil() as u64).clamp(1, self.count);
        if rank == self.count {
            return Some(self.max);
        }
        let mut seen = 0;
        for (&k, &n) in &self.hist {
            seen += n;
            if seen >= rank {
                return Some(f64::from_bits(k << SHIFT).clamp(self.min, self.max));
            }
        }
        unreachable!("the histogram holds every sample")
    }

    /// The median.
    pub fn p50(&self) -> Option<f64> {
        self.percentile(50.0)
    }

    /// The 99th percentile.
    pub fn p99(&self) -> Option<f64> {
        self.percentile(99.0)
    }

    /// The histogram in increasing order: each bucket's lower bound and its samples (for a
    /// CDF, accumulate the counts).
    pub fn buckets(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.hist
            .iter()
            .map(|(&k, &n)| (f64::from_bits(k << SHIFT), n))
    }

    /// The cumulative distribution: per bucket, its lower bound × `scale` (a unit conversion)
    /// and the fraction of samples at most in that bucket; empty without samples.
    pub fn cdf(&self, scale: f64) -> Vec<(f64, f64)> {
        let n = self.count.max(1) as f64;
        let mut acc = 0u64;
        self.buckets()
            .map(|(v, k)| {
                acc += k;
                (v * scale, acc as f64 / n)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn cdf_accumulates_the_buckets_to_one() {
        let mut s = Stats::new();
        for v in [1.0, 2.0, 2.0, 4.0] {
            s.record(v);
        }
        assert_eq!(s.cdf(10.0), vec![(10.0, 0.25), (20.0, 0.75), (40.0, 1.0)]);
        assert!(Stats::new().cdf(1.0).is_empty());
    }
    use super::*;

    #[test]
    fn empty() {
        let s = Stats::new();
        assert_eq!(s.count(), 0);
        assert_eq!(s.sum(), 0.0);
        assert_eq!(
            (s.min(), s.max(), s.mean(), s.p50()),
            (None, None, None, None)
        );
        assert_eq!(s.buckets().count(), 0);
    }

    #[test]
    fn moments_and_exact_percentiles_of_small_integers() {
        let mut s = Stats::new();
        // 1..=100 shuffled deterministically (37 is coprime with 100).
        for i in 0..100u32 {
            s.record(f64::from((i * 37) % 100 + 1));
        }
        assert_eq!(s.count(), 100);
        assert_eq!(s.sum(), 5050.0);
        assert_eq!(s.min(), Some(1.0));
        assert_eq!(s.max(), Some(100.0));
        assert_eq!(s.mean(), Some(50.5));
        assert_eq!(s.p50(), Some(50.0));
        assert_eq!(s.p99(), Some(99.0));
        assert_eq!(s.percentile(0.0), Some(1.0));
        assert_eq!(s.percentile(100.0), Some(100.0));
        assert_eq!(s.percentile(0.5), Some(1.0));
        assert_eq!(s.percentile(1.5), Some(2.0));
        assert_eq!(s.buckets().map(|b| b.1).sum::<u64>(), 100);
    }

    #[test]
    fn percentiles_of_large_values_are_within_the_resolution() {
        let mut s = Stats::new();
        let v = |i: u64| 1e6 + (i as f64) * 12_345.678;
        for i in 0..10_000 {
            s.record(v(i));
        }
        for (p, rank) in [(50.0, 5000u64), (99.0, 9900), (99.9, 9990)] {
            let exact = v(rank - 1);
            let got = s.percentile(p).unwrap();
            assert!(
                got <= exact && (exact - got) / exact < 1.0 / 1024.0,
                "{p}: {got} vs {exact}"
            );
        }
        // The extremes are exact whatever the resolution.
        assert_eq!(s.percentile(100.0), Some(v(9999)));
        assert_eq!(s.percentile(0.0), Some(v(0)));
    }

    #[test]
    fn one_repeated_value_is_exact() {
        let mut s = Stats::new();
        for _ in 0..7 {
            s.record(431.123_456_789);
        }
        assert_eq!(s.p50(), Some(431.123_456_789));
        assert_eq!(s.p99(), Some(431.123_456_789));
        let mean = s.mean().unwrap();
        assert!((mean - 431.123_456_789).abs() < 1e-12, "{mean}");
    }

    #[test]
    fn zero_and_tiny_values() {
        let mut s = Stats::new();
        s.record(-0.0);
        s.record(0.0);
        s.record(2e-9);
        assert_eq!(s.min().map(f64::to_bits), Some(0));
        assert_eq!(s.p50(), Some(0.0));
        let p99 = s.p99().unwrap();
        assert!(p99 <= 2e-9 && p99 > 2e-9 * (1.0 - 1.0 / 1024.0));
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let (mut a, mut b, mut all) = (Stats::new(), Stats::new(), Stats::new());
        for i in 0..500u32 {
            let v = f64::from(i * i % 997) * 1.5;
            if i % 3 == 0 { &mut a } else { &mut b }.record(v);
        }
        for i in 0..500u32 {
            if i % 3 == 0 {
                all.record(f64::from(i * i % 997) * 1.5);
            }
        }
        for i in 0..500u32 {
            if i % 3 != 0 {
                all.record(f64::from(i * i % 997) * 1.5);
            }
        }
        a.merge(&b);
        assert_eq!(a, all);
        let mut e = Stats::new();
        e.merge(&a);
        assert_eq!(e, a);
    }

    #[test]
    #[should_panic(expected = "finite and non-negative")]
    fn refuses_negative_samples() {
        Stats::new().record(-1.0);
    }
}
