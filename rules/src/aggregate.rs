//! Aggregate functions: one accumulator per (group, window, aggregate).

use std::collections::{BTreeMap, BTreeSet};

use crate::ddsketch::DdSketch;

use crate::value::Value;

/// An aggregate function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AggFn {
    /// `count(*)`.
    CountAll,
    /// `count(x)`: non-null values.
    Count,
    /// `count_distinct(x)` / `count(DISTINCT x)`.
    CountDistinct,
    /// `sum(x)`.
    Sum,
    /// `avg(x)`.
    Avg,
    /// `min(x)`.
    Min,
    /// `max(x)`.
    Max,
    /// `stddev(x)` (sample standard deviation).
    Stddev,
    /// `percentile(x, q)`, `p50(x)`, `p95(x)`, `p99(x)`; q in (0, 1].
    Percentile(f64),
    /// `rate(x)`: per-second increase of a counter in the window (resets count as restarts);
    /// `rate(*)`: rows per second.
    Rate,
    /// `rate(*)`.
    RateAll,
    /// `first(x)`: the earliest value.
    First,
    /// `last(x)`: the latest value.
    Last,
    /// Rows per value. Not callable from rules: a rule whose group does not name the service
    /// tallies its rows' services with it, to say which services what fired is about.
    Tally,
}

impl AggFn {
    /// The aggregate called `name` with `star` for `f(*)`, if there is one. Percentiles get
    /// their quantile later.
    pub fn parse(name: &str, star: bool, distinct: bool) -> Option<AggFn> {
        Some(match (name.to_ascii_lowercase().as_str(), star, distinct) {
            ("count", true, _) => AggFn::CountAll,
            ("count", false, true) | ("count_distinct", false, _) => AggFn::CountDistinct,
            ("count", false, false) => AggFn::Count,
            ("sum", false, _) => AggFn::Sum,
            ("avg", false, _) => AggFn::Avg,
            ("min", false, _) => AggFn::Min,
            ("max", false, _) => AggFn::Max,
            ("stddev" | "stddev_samp", false, _) => AggFn::Stddev,
            ("percentile" | "quantile", false, _) => AggFn::Percentile(0.5),
            ("p50" | "median", false, _) => AggFn::Percentile(0.5),
            ("p90", false, _) => AggFn::Percentile(0.9),
            ("p95", false, _) => AggFn::Percentile(0.95),
            ("p99", false, _) => AggFn::Percentile(0.99),
            ("rate", true, _) => AggFn::RateAll,
            ("rate", false, _) => AggFn::Rate,
            ("first", false, _) => AggFn::First,
            ("last", false, _) => AggFn::Last,
            _ => return None,
        })
    }

    /// Every aggregate name, for suggestions.
    pub const NAMES: [&'static str; 17] = [
        "count",
        "count_distinct",
        "sum",
        "avg",
        "min",
        "max",
        "stddev",
        "percentile",
        "p50",
        "p90",
        "p95",
        "p99",
        "median",
        "rate",
        "first",
        "last",
        "quantile",
    ];

    /// A fresh accumulator.
    pub fn start(self) -> Acc {
        match self {
            AggFn::CountAll | AggFn::Count | AggFn::RateAll => Acc::Count(0),
            AggFn::CountDistinct => Acc::Distinct(BTreeSet::new()),
            AggFn::Sum | AggFn::Avg | AggFn::Stddev => Acc::Moments {
                n: 0,
                mean: 0.0,
                m2: 0.0,
                sum: 0.0,
            },
            AggFn::Min | AggFn::Max | AggFn::First | AggFn::Last => Acc::Pick(Value::Null),
            AggFn::Percentile(_) => Acc::Quantiles(Quantiles::Exact(Vec::new())),
            AggFn::Rate => Acc::Counter {
                first: None,
                last: None,
                increase: 0.0,
            },
            AggFn::Tally => Acc::Tally(BTreeMap::new()),
        }
    }
}

/// An accumulator's state. Serializable: partial aggregates travel between workers.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum Acc {
    /// Counting.
    Count(u64),
    /// Distinct values.
    Distinct(BTreeSet<Value>),
    /// Welford's running moments (sum, avg, stddev).
    Moments {
        /// Values seen.
        n: u64,
        /// Running mean.
        mean: f64,
        /// Sum of squared deviations.
        m2: f64,
        /// Sum.
        sum: f64,
    },
    /// Min / max / first / last.
    Pick(Value),
    /// Percentiles: exact while small, a DDSketch beyond.
    Quantiles(Quantiles),
    /// A counter's increase.
    Counter {
        /// First (ts, value).
        first: Option<(u64, f64)>,
        /// Latest (ts, value).
        last: Option<(u64, f64)>,
        /// Increase so far, counting resets.
        increase: f64,
    },
    /// Rows per value, and the time of each value's first row.
    Tally(BTreeMap<Value, (u64, u64)>),
}

impl Acc {
    /// Adds one row's argument (rows arrive in event-time order).
    pub fn add(&mut self, f: AggFn, ts: u64, v: &Value) {
        if f != AggFn::CountAll && f != AggFn::RateAll && v.is_null() {
            return;
        }
        match self {
            Acc::Count(n) => *n += 1,
            Acc::Tally(counts) => match counts.get_mut(v) {
                Some((n, _)) => *n += 1,
                None => {
                    counts.insert(v.clone(), (1, ts));
                }
            },
            Acc::Distinct(set) => {
                if !set.contains(v) {
                    set.insert(v.clone());
                }
            }
            Acc::Moments { n, mean, m2, sum } => {
                if let Some(x) = v.as_num().filter(|x| x.is_finite()) {
                    *n += 1;
                    *sum += x;
                    let d = x - *mean;
                    *mean += d / *n as f64;
                    *m2 += d * (x - *mean);
                }
            }
            Acc::Pick(cur) => {
                let replace = match f {
                    AggFn::First => cur.is_null(),
                    AggFn::Last => true,
                    AggFn::Min => cur.is_null() || v.compare(cur) == Some(std::cmp::Ordering::Less),
                    _ => cur.is_null() || v.compare(cur) == Some(std::cmp::Ordering::Greater),
                };
                if replace {
                    *cur = v.clone();
                }
            }
            Acc::Quantiles(q) => {
                if let Some(x) = v.as_num().filter(|x| x.is_finite()) {
                    q.record(x);
                }
            }
            Acc::Counter {
                first,
                last,
                increase,
            } => {
                let Some(x) = v.as_num().filter(|x| x.is_finite()) else {
                    return;
                };
                if let Some((_, prev)) = last {
                    // A counter that went down was restarted: it counted from zero again.
                    *increase += if x >= *prev { x - *prev } else { x };
                }
                if first.is_none() {
                    *first = Some((ts, x));
                }
                *last = Some((ts, x));
            }
        }
    }

    /// Folds `other` (the rows right after this accumulator's) in: windows that slide are
    /// assembled from the panes they cover.
    pub fn merge(&mut self, f: AggFn, other: &Acc) {
        match (self, other) {
            (Acc::Count(a), Acc::Count(b)) => *a += b,
            (Acc::Distinct(a), Acc::Distinct(b)) => a.extend(b.iter().cloned()),
            (Acc::Tally(a), Acc::Tally(b)) => {
                for (v, (n, first)) in b {
                    let e = a.entry(v.clone()).or_insert((0, *first));
                    e.0 += n;
                    e.1 = e.1.min(*first);
                }
            }
            (
                Acc::Moments { n, mean, m2, sum },
                Acc::Moments {
                    n: n2,
                    mean: mean2,
                    m2: m22,
                    sum: sum2,
                },
            ) => {
                if *n2 == 0 {
                    return;
                }
                if *n == 0 {
                    // Into an empty accumulator: exactly the rows' own moments.
                    (*n, *mean, *m2, *sum) = (*n2, *mean2, *m22, *sum2);
                    return;
                }
                // Chan et al.'s parallel update of mean and squared deviations.
                let total = *n + n2;
                let delta = mean2 - *mean;
                *m2 += m22 + delta * delta * (*n as f64) * (*n2 as f64) / total as f64;
                *mean += delta * (*n2 as f64) / total as f64;
                *n = total;
                *sum += sum2;
            }
            (Acc::Pick(cur), Acc::Pick(v)) => {
                if v.is_null() {
                    return;
                }
                let replace = match f {
                    AggFn::First => cur.is_null(),
                    AggFn::Last => true,
                    AggFn::Min => cur.is_null() || v.compare(cur) == Some(std::cmp::Ordering::Less),
                    _ => cur.is_null() || v.compare(cur) == Some(std::cmp::Ordering::Greater),
                };
                if replace {
                    *cur = v.clone();
                }
            }
            (Acc::Quantiles(a), Acc::Quantiles(b)) => a.merge(b),
            (
                Acc::Counter {
                    first,
                    last,
                    increase,
                },
                Acc::Counter {
                    first: f2,
                    last: l2,
                    increase: i2,
                },
            ) => {
                let Some((t2, v2)) = f2 else {
                    return;
                };
                if let Some((_, prev)) = last {
                    *increase += if *v2 >= *prev { v2 - *prev } else { *v2 };
                }
                *increase += i2;
                if first.is_none() {
                    *first = Some((*t2, *v2));
                }
                *last = *l2;
            }
            _ => {}
        }
    }

    /// The aggregate's value for a window of `window_ms`.
    pub fn result(&self, f: AggFn, window_ms: u64) -> Value {
        match (self, f) {
            (Acc::Count(n), AggFn::RateAll) => {
                Value::Num(*n as f64 / (window_ms.max(1) as f64 / 1000.0))
            }
            (Acc::Count(n), _) => Value::Num(*n as f64),
            (Acc::Distinct(set), _) => Value::Num(set.len() as f64),
            (Acc::Moments { n: 0, .. }, AggFn::Sum) => Value::Num(0.0),
            (Acc::Moments { n: 0, .. }, _) => Value::Null,
            (Acc::Moments { sum, .. }, AggFn::Sum) => Value::Num(*sum),
            (Acc::Moments { mean, .. }, AggFn::Avg) => Value::Num(*mean),
            (Acc::Moments { n, m2, .. }, _) => {
                if *n < 2 {
                    Value::Num(0.0)
                } else {
                    Value::Num((m2 / (*n - 1) as f64).sqrt())
                }
            }
            (Acc::Pick(v), _) => v.clone(),
            (Acc::Quantiles(values), AggFn::Percentile(q)) => {
                values.quantile(q).map_or(Value::Null, Value::Num)
            }
            (Acc::Quantiles(_), _) => Value::Null,
            (
                Acc::Counter {
                    first: Some((t0, _)),
                    last: Some((t1, _)),
                    increase,
                },
                _,
            ) if t1 > t0 => Value::Num(increase / ((t1 - t0) as f64 / 1000.0)),
            (Acc::Counter { .. }, _) => Value::Null,
            (Acc::Tally(_), _) => Value::Null,
        }
    }

    /// A tally's values, most rows first; among equals, the one seen first (then in value
    /// order).
    pub fn ranked(&self) -> Vec<&Value> {
        let Acc::Tally(counts) = self else {
            return Vec::new();
        };
        let mut ranked: Vec<(&Value, (u64, u64))> = counts.iter().map(|(v, c)| (v, *c)).collect();
        ranked.sort_by(|(_, (n1, t1)), (_, (n2, t2))| n2.cmp(n1).then(t1.cmp(t2)));
        ranked.into_iter().map(|(v, _)| v).collect()
    }
}

/// Values for percentiles: kept exactly up to [`Quantiles::EXACT`], then in a [`DdSketch`]
/// (every percentile within 1 % of the true value, negative values and ratios included) so
/// memory stays bounded however busy the window.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum Quantiles {
    /// Every value.
    Exact(Vec<f64>),
    /// Too many to keep.
    Sketch(Box<DdSketch>),
}

impl Quantiles {
    /// Values kept exactly before switching to a sketch.
    pub const EXACT: usize = 1024;

    fn record(&mut self, x: f64) {
        match self {
            Quantiles::Exact(v) if v.len() < Self::EXACT => v.push(x),
            Quantiles::Exact(v) => {
                let mut sketch = DdSketch::new();
                v.iter().for_each(|y| sketch.record(*y));
                sketch.record(x);
                *self = Quantiles::Sketch(Box::new(sketch));
            }
            Quantiles::Sketch(s) => s.record(x),
        }
    }

    fn merge(&mut self, other: &Quantiles) {
        match (&mut *self, other) {
            // Kept sorted: a sliding window is assembled from its panes by merging, and its
            // percentiles read without sorting every value of the window again.
            (Quantiles::Exact(a), Quantiles::Exact(b)) if a.len() + b.len() <= Self::EXACT => {
                merge_sorted(a, b);
            }
            (_, Quantiles::Exact(v)) => v.iter().for_each(|x| self.record(*x)),
            (Quantiles::Sketch(a), Quantiles::Sketch(b)) => a.merge(b),
            (Quantiles::Exact(v), Quantiles::Sketch(b)) => {
                let mut sketch = b.clone();
                v.iter().for_each(|x| sketch.record(*x));
                *self = Quantiles::Sketch(sketch);
            }
        }
    }

    fn quantile(&self, q: f64) -> Option<f64> {
        match self {
            Quantiles::Exact(v) if v.is_empty() => None,
            Quantiles::Exact(v) => {
                // Nearest rank, as the sketch reports it.
                let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
                if is_sorted(v) {
                    return Some(v[rank - 1]);
                }
                let mut sorted = v.clone();
                sorted.sort_by(f64::total_cmp);
                Some(sorted[rank - 1])
            }
            Quantiles::Sketch(s) => s.quantile(q),
        }
    }
}

fn is_sorted(v: &[f64]) -> bool {
    v.is_sorted_by(|a, b| a.total_cmp(b).is_le())
}

/// `a` and `b` together, sorted, into `a`. The standard sort finds the runs already sorted
/// (a pane sorted on arrival) and merges them, so two sorted panes cost one linear pass.
fn merge_sorted(a: &mut Vec<f64>, b: &[f64]) {
    a.extend_from_slice(b);
    a.sort_by(f64::total_cmp);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: AggFn, values: &[f64]) -> Value {
        let mut acc = f.start();
        for (i, v) in values.iter().enumerate() {
            acc.add(f, i as u64 * 1000, &Value::Num(*v));
        }
        acc.result(f, 60_000)
    }

    #[test]
    fn basic_aggregates() {
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(run(AggFn::Count, &xs), Value::Num(8.0));
        assert_eq!(run(AggFn::Sum, &xs), Value::Num(40.0));
        assert_eq!(run(AggFn::Avg, &xs), Value::Num(5.0));
        assert_eq!(run(AggFn::Min, &xs), Value::Num(2.0));
        assert_eq!(run(AggFn::Max, &xs), Value::Num(9.0));
        assert_eq!(run(AggFn::First, &xs), Value::Num(2.0));
        assert_eq!(run(AggFn::Last, &xs), Value::Num(9.0));
        assert_eq!(run(AggFn::CountDistinct, &xs), Value::Num(5.0));
        let sd = run(AggFn::Stddev, &xs).as_num().unwrap_or_default();
        assert!((sd - 2.138).abs() < 0.001, "{sd}");
        assert_eq!(run(AggFn::RateAll, &xs), Value::Num(8.0 / 60.0));
        assert!(run(AggFn::Avg, &[]).is_null());
    }

    #[test]
    fn percentiles_past_the_exact_values_stay_within_one_percent() {
        let xs: Vec<f64> = (1..=5000).map(f64::from).collect();
        let p99 = run(AggFn::Percentile(0.99), &xs)
            .as_num()
            .unwrap_or_default();
        assert!((p99 - 4950.0).abs() <= 49.5, "{p99}");
        // Ratios in [0, 1] and negative values: the old histogram made these 0.
        let ratios: Vec<f64> = (0..4000).map(|i| f64::from(i) / 4000.0).collect();
        for q in [0.5, 0.9, 0.99] {
            let got = run(AggFn::Percentile(q), &ratios)
                .as_num()
                .unwrap_or_default();
            let want = ((q * 4000.0).ceil() - 1.0) / 4000.0;
            assert!((got - want).abs() <= 0.01 * want, "q={q}: {got} vs {want}");
        }
        let negatives: Vec<f64> = (1..=3000).map(|i| -f64::from(i) / 10.0).collect();
        let p10 = run(AggFn::Percentile(0.1), &negatives)
            .as_num()
            .unwrap_or_default();
        assert!((p10 - -270.0).abs() <= 2.7, "{p10}");
        let p50 = run(AggFn::Percentile(0.5), &[0.25, 0.5, 0.75])
            .as_num()
            .unwrap_or_default();
        assert!((p50 - 0.5).abs() < 0.001, "{p50}");
    }

    #[test]
    fn merged_panes_equal_one_window() {
        let xs: Vec<f64> = (1..=3000).map(|i| f64::from(i % 97)).collect();
        for f in [
            AggFn::Count,
            AggFn::Sum,
            AggFn::Avg,
            AggFn::Stddev,
            AggFn::Min,
            AggFn::Max,
            AggFn::First,
            AggFn::Last,
            AggFn::CountDistinct,
            AggFn::Percentile(0.9),
            AggFn::Rate,
        ] {
            let mut whole = f.start();
            let mut panes = vec![f.start(), f.start(), f.start()];
            for (i, x) in xs.iter().enumerate() {
                whole.add(f, i as u64 * 1000, &Value::Num(*x));
                panes[i / 1000].add(f, i as u64 * 1000, &Value::Num(*x));
            }
            let mut merged = f.start();
            for p in &panes {
                merged.merge(f, p);
            }
            let (a, b) = (whole.result(f, 60_000), merged.result(f, 60_000));
            let close = match (a.as_num(), b.as_num()) {
                (Some(x), Some(y)) => {
                    (x - y).abs() <= 1e-6 * x.abs().max(1.0)
                        || matches!(f, AggFn::Percentile(_)) && (x - y).abs() <= 0.1
                }
                _ => a == b,
            };
            assert!(close, "{f:?}: {a} vs {b}");
        }
    }

    #[test]
    fn exact_percentiles_of_merged_panes_match_one_window() {
        let xs: Vec<f64> = (0..600).map(|i| f64::from((i * 37) % 101) - 7.5).collect();
        let f = AggFn::Percentile(0.95);
        let mut whole = f.start();
        let mut panes = vec![f.start(), f.start(), f.start()];
        for (i, x) in xs.iter().enumerate() {
            whole.add(f, i as u64, &Value::Num(*x));
            panes[i % 3].add(f, i as u64, &Value::Num(*x));
        }
        // Panes as stage two holds them (sorted on arrival), then a window from them.
        let mut window = f.start();
        for p in &panes {
            let mut pane = f.start();
            pane.merge(f, p);
            window.merge(f, &pane);
        }
        let Acc::Quantiles(Quantiles::Exact(v)) = &window else {
            panic!("not exact: {window:?}");
        };
        assert!(is_sorted(v));
        for q in [0.01, 0.5, 0.95, 1.0] {
            let g = AggFn::Percentile(q);
            assert_eq!(window.result(g, 1), whole.result(g, 1), "q = {q}");
        }
    }

    #[test]
    fn counter_rate_survives_restarts() {
        // 0 → 10 → 20, restart, 5 → 15: increase 20 + 5 + 10 = 35 over 4 s.
        let r = run(AggFn::Rate, &[0.0, 10.0, 20.0, 5.0, 15.0]);
        assert_eq!(r, Value::Num(35.0 / 4.0));
    }
}
