//! A DDSketch (Masson, Rim, Lee, VLDB 2019): quantiles of a stream of floats in bounded
//! memory with a relative-error guarantee.
//!
//! For: the percentiles of rules past the values kept exactly. Every quantile it reports is
//! within [`ALPHA`] (1 %) of the true value of that rank — for ratios in [0, 1], sub-millisecond
//! latencies, large counts and negative values alike — as long as no store had to collapse
//! (it keeps [`MAX_BUCKETS`] buckets per sign: values spanning more than a factor of about
//! 10^17 lose precision at the small end first). Not for: exact answers, or NaN/infinities
//! (ignored).

use serde::{Deserialize, Serialize};

/// The relative accuracy of every quantile.
pub const ALPHA: f64 = 0.01;
/// Buckets kept per sign before the smallest magnitudes are merged.
pub const MAX_BUCKETS: usize = 2048;
/// Magnitudes below this count as zero (their logarithm is not usable).
const MIN_MAGNITUDE: f64 = 1e-12;

/// Counts of values by logarithmic bucket: bucket `i` holds magnitudes in (γ^(i-1), γ^i].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Store {
    /// Index of `counts[0]`.
    offset: i32,
    counts: Vec<u64>,
}

impl Store {
    fn add(&mut self, index: i32, n: u64) {
        if self.counts.is_empty() {
            self.offset = index;
            self.counts.push(0);
        }
        if index < self.offset {
            let grow = (self.offset - index) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = index;
        }
        let at = (index - self.offset) as usize;
        if at >= self.counts.len() {
            self.counts.resize(at + 1, 0);
        }
        self.counts[at] += n;
        if self.counts.len() > MAX_BUCKETS {
            // The smallest magnitudes go into one bucket: large values keep their precision.
            let excess = self.counts.len() - MAX_BUCKETS;
            let folded: u64 = self.counts.drain(..excess).sum();
            self.counts[0] += folded;
            self.offset += excess as i32;
        }
    }

    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The bucket index holding the `rank`-th smallest (0-based) magnitude.
    fn index_at(&self, rank: u64) -> Option<i32> {
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen > rank {
                return Some(self.offset + i as i32);
            }
        }
        None
    }

    fn iter(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (self.offset + i as i32, *c))
    }
}

/// The sketch: positive and negative magnitudes in their own stores, zeros counted apart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DdSketch {
    positive: Store,
    negative: Store,
    zeros: u64,
    count: u64,
    min: f64,
    max: f64,
}

impl Default for DdSketch {
    fn default() -> Self {
        DdSketch {
            positive: Store::default(),
            negative: Store::default(),
            zeros: 0,
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

fn gamma() -> f64 {
    (1.0 + ALPHA) / (1.0 - ALPHA)
}

fn index_of(magnitude: f64) -> i32 {
    (magnitude.ln() / gamma().ln()).ceil() as i32
}

/// The value reported for a bucket: within ALPHA of every magnitude in it.
fn value_of(index: i32) -> f64 {
    let g = gamma();
    2.0 * g.powi(index) / (g + 1.0)
}

impl DdSketch {
    /// An empty sketch.
    pub fn new() -> Self {
        DdSketch::default()
    }

    /// Values recorded (NaN and infinities are not).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Records `x`; NaN and infinities are ignored.
    pub fn record(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        if x.abs() < MIN_MAGNITUDE {
            self.zeros += 1;
        } else if x > 0.0 {
            self.positive.add(index_of(x), 1);
        } else {
            self.negative.add(index_of(-x), 1);
        }
        self.count += 1;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &DdSketch) {
        for (i, c) in other.positive.iter() {
            self.positive.add(i, c);
        }
        for (i, c) in other.negative.iter() {
            self.negative.add(i, c);
        }
        self.zeros += other.zeros;
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The value of nearest rank `ceil(q·n)` (as the exact path reports it), within ALPHA;
    /// q = 0 and q = 1 give the exact min and max. `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || q.is_nan() {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        if q == 0.0 {
            return Some(self.min);
        }
        if q == 1.0 {
            return Some(self.max);
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count) - 1;
        let negatives = self.negative.total();
        let value = if rank < negatives {
            // The negative store counts magnitudes upwards; ranks count values upwards.
            let index = self.negative.index_at(negatives - 1 - rank)?;
            -value_of(index)
        } else if rank < negatives + self.zeros {
            0.0
        } else {
            value_of(self.positive.index_at(rank - negatives - self.zeros)?)
        };
        Some(value.clamp(self.min, self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so the tests need no crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn exact(sorted: &[f64], q: f64) -> f64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    fn check(name: &str, values: Vec<f64>) {
        let mut s = DdSketch::new();
        values.iter().for_each(|x| s.record(*x));
        let mut sorted = values;
        sorted.sort_by(f64::total_cmp);
        for q in [0.01, 0.1, 0.5, 0.9, 0.99, 0.999] {
            let want = exact(&sorted, q);
            let got = s.quantile(q).unwrap_or(f64::NAN);
            assert!(
                (got - want).abs() <= ALPHA * want.abs() + 1e-12,
                "{name} q={q}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn every_quantile_is_within_one_percent() {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        let n = 100_000;
        check("ratios", (0..n).map(|_| r.next()).collect());
        // Log-normal-ish latencies in ms: exp of a sum of uniforms.
        check(
            "latencies",
            (0..n)
                .map(|_| (3.0 + 2.0 * (r.next() + r.next() + r.next() - 1.5)).exp())
                .collect(),
        );
        check(
            "sub-millisecond",
            (0..n).map(|_| 0.0001 + 0.0009 * r.next()).collect(),
        );
        check(
            "both signs and zeros",
            (0..n)
                .map(|i| match i % 5 {
                    0 => 0.0,
                    1 | 2 => -1000.0 * r.next(),
                    _ => 50.0 * r.next(),
                })
                .collect(),
        );
    }

    #[test]
    fn merging_equals_one_sketch_over_all_values() {
        let mut r = Rng(7);
        let xs: Vec<f64> = (0..20_000).map(|_| r.next() * 100.0 - 20.0).collect();
        let mut whole = DdSketch::new();
        xs.iter().for_each(|x| whole.record(*x));
        let (mut a, mut b) = (DdSketch::new(), DdSketch::new());
        xs[..7_000].iter().for_each(|x| a.record(*x));
        xs[7_000..].iter().for_each(|x| b.record(*x));
        a.merge(&b);
        for q in [0.0, 0.25, 0.5, 0.75, 0.99, 1.0] {
            assert_eq!(a.quantile(q), whole.quantile(q), "q={q}");
        }
        assert_eq!(a.count(), whole.count());
    }

    #[test]
    fn memory_is_bounded_and_extremes_are_exact() {
        let mut s = DdSketch::new();
        let mut x = 1e-9;
        while x < 1e12 {
            s.record(x);
            x *= 1.001;
        }
        assert!(s.positive.counts.len() <= MAX_BUCKETS);
        assert_eq!(s.quantile(0.0), Some(1e-9));
        assert!(s.quantile(1.0).is_some_and(|m| m >= 0.999e12));
        // The large end keeps its precision after a collapse.
        let p99 = s.quantile(0.99).unwrap_or_default();
        assert!(p99 > 1e11 * 0.5, "{p99}");
    }

    #[test]
    fn nan_and_infinities_are_ignored() {
        let mut s = DdSketch::new();
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            s.record(x);
        }
        assert_eq!((s.count(), s.quantile(0.5)), (0, None));
        s.record(2.0);
        assert_eq!(s.quantile(0.5).map(|v| (v - 2.0).abs() <= 0.02), Some(true));
    }
}
