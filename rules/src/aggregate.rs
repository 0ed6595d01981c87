//! Aggregate functions: one accumulator per (group, window, aggregate).

use std::collections::BTreeSet;

use hdrhistogram::Histogram;

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
            AggFn::Percentile(_) => Acc::Hist(None),
            AggFn::Rate => Acc::Counter {
                first: None,
                last: None,
                increase: 0.0,
            },
        }
    }
}

/// Percentiles keep three decimal places of the values they see.
const HIST_SCALE: f64 = 1000.0;

/// An accumulator's state.
#[derive(Clone, Debug)]
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
    /// Percentiles (allocated on the first value).
    Hist(Option<Box<Histogram<u64>>>),
    /// A counter's increase.
    Counter {
        /// First (ts, value).
        first: Option<(u64, f64)>,
        /// Latest (ts, value).
        last: Option<(u64, f64)>,
        /// Increase so far, counting resets.
        increase: f64,
    },
}

impl Acc {
    /// Adds one row's argument (rows arrive in event-time order).
    pub fn add(&mut self, f: AggFn, ts: u64, v: &Value) {
        if f != AggFn::CountAll && f != AggFn::RateAll && v.is_null() {
            return;
        }
        match self {
            Acc::Count(n) => *n += 1,
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
            Acc::Hist(h) => {
                let Some(x) = v.as_num().filter(|x| x.is_finite()) else {
                    return;
                };
                if h.is_none() {
                    // Three significant digits, resizing as values grow.
                    *h = Histogram::new(3).ok().map(Box::new);
                }
                if let Some(h) = h {
                    let _ = h.record((x.max(0.0) * HIST_SCALE).min(u64::MAX as f64 / 4.0) as u64);
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
            (Acc::Hist(Some(h)), AggFn::Percentile(q)) => {
                // The middle of the bucket, not its top: 2500 reads as 2500, not 2501.
                Value::Num(h.median_equivalent(h.value_at_quantile(q)) as f64 / HIST_SCALE)
            }
            (Acc::Hist(_), _) => Value::Null,
            (
                Acc::Counter {
                    first: Some((t0, _)),
                    last: Some((t1, _)),
                    increase,
                },
                _,
            ) if t1 > t0 => Value::Num(increase / ((t1 - t0) as f64 / 1000.0)),
            (Acc::Counter { .. }, _) => Value::Null,
        }
    }
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
    fn percentiles_from_hdrhistogram() {
        let xs: Vec<f64> = (1..=1000).map(f64::from).collect();
        let p99 = run(AggFn::Percentile(0.99), &xs)
            .as_num()
            .unwrap_or_default();
        assert!((p99 - 990.0).abs() <= 1.0, "{p99}");
        let p50 = run(AggFn::Percentile(0.5), &[0.25, 0.5, 0.75])
            .as_num()
            .unwrap_or_default();
        assert!((p50 - 0.5).abs() < 0.001, "{p50}");
    }

    #[test]
    fn counter_rate_survives_restarts() {
        // 0 → 10 → 20, restart, 5 → 15: increase 20 + 5 + 10 = 35 over 4 s.
        let r = run(AggFn::Rate, &[0.0, 10.0, 20.0, 5.0, 15.0]);
        assert_eq!(r, Value::Num(35.0 / 4.0));
    }
}
