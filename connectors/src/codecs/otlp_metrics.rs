//! OTLP metrics → kaizen Metric events: every gauge / sum data point is one event; histograms
//! and summaries, which kaizen's detectors cannot read as such, become a few plain series
//! (`<name>_count`, `<name>_sum`; `<name>_bucket{le}` as Prometheus counts them, so that the
//! golden signals take each export's own p99 from cumulative points; for delta points and
//! exponential histograms `<name>_p99` estimated from the buckets; one `<name>` per
//! summary quantile with a `quantile` label). Labels are the point's attributes plus the
//! resource's `service.instance.id` as `instance`, so two pods never share a series.

use kaizen_model::{Event, EventBody, Labels, Metric, MetricKind, Symbol, Timestamp};

use super::common::invalid;
use super::otlp::{any_text, find_text, resource_attrs, service_of, time_of};
use super::otlp_schema::{
    ExponentialHistogramDataPoint, HistogramDataPoint, KeyValue, MetricsRequest,
    TEMPORALITY_CUMULATIVE,
};
use super::{CodecError, DecodeContext, Format};

/// The `DataPointFlags.NO_RECORDED_VALUE` bit: the point marks a gap, it has no value.
const NO_RECORDED_VALUE: u32 = 1;

/// Where one metric's events go: the shared parts of every sample.
struct MetricSink<'a> {
    service: &'a Symbol,
    instance: Option<&'a str>,
    out: &'a mut Vec<Event>,
    /// The newest sample time so far, for the resource's `target_info`.
    newest: Option<Timestamp>,
}

impl MetricSink<'_> {
    fn labels(&self, attrs: &[KeyValue], extra: Option<(&str, String)>) -> Labels {
        let instance = self
            .instance
            .map(|i| (Symbol::new("instance"), Symbol::new(i)));
        let extra = extra.map(|(k, v)| (Symbol::new(k), Symbol::new(&v)));
        Labels::from_pairs(
            instance
                .into_iter()
                .chain(attrs.iter().filter_map(|kv| {
                    Some((
                        Symbol::new(&kv.key),
                        Symbol::new(&any_text(kv.value.as_ref()?)),
                    ))
                }))
                .chain(extra),
        )
    }

    fn push(&mut self, ts: Timestamp, name: &str, value: f64, kind: MetricKind, labels: Labels) {
        if !value.is_finite() {
            return;
        }
        self.newest = Some(self.newest.map_or(ts, |n| n.max(ts)));
        self.out.push(Event {
            ts,
            service: self.service.clone(),
            body: EventBody::Metric(Metric {
                name: Symbol::new(name),
                value,
                metric_kind: kind,
                labels,
            }),
        });
    }
}

/// Appends one Metric event per gauge / sum data point and the derived series of histograms
/// and summaries. Non-finite values and points flagged "no recorded value" are skipped.
pub(super) fn metrics(
    format: Format,
    req: MetricsRequest,
    ctx: &DecodeContext<'_>,
    out: &mut Vec<Event>,
) -> Result<(), CodecError> {
    for rm in req.resource_metrics {
        let service = service_of(&rm.resource);
        let instance = find_text(resource_attrs(&rm.resource), "service.instance.id");
        let mut sink = MetricSink {
            service: &service,
            instance: instance.as_deref(),
            out,
            newest: None,
        };
        for sm in rm.scope_metrics {
            for m in sm.metrics {
                if m.name.is_empty() {
                    return Err(invalid(format, "metric.name", "empty"));
                }
                let what = "dataPoint.timeUnixNano";
                let name = m.name.as_str();
                let (points, kind) = match (&m.gauge, &m.sum) {
                    (Some(g), _) => (g.data_points.as_slice(), MetricKind::Gauge),
                    (None, Some(s)) => {
                        let counter =
                            s.is_monotonic && s.aggregation_temporality == TEMPORALITY_CUMULATIVE;
                        let kind = if counter {
                            MetricKind::Counter
                        } else {
                            MetricKind::Gauge
                        };
                        (s.data_points.as_slice(), kind)
                    }
                    _ => (&[][..], MetricKind::Gauge),
                };
                for p in points {
                    let value = match (p.as_double, p.as_int) {
                        (Some(d), _) => d,
                        (None, Some(i)) => i as f64,
                        (None, None) => continue,
                    };
                    if p.flags & NO_RECORDED_VALUE != 0 {
                        continue;
                    }
                    let ts = time_of(format, &[p.time_unix_nano], ctx, what)?;
                    let labels = sink.labels(&p.attributes, None);
                    sink.push(ts, name, value, kind, labels);
                }
                if let Some(h) = &m.histogram {
                    let kind = counter_if(h.aggregation_temporality);
                    for p in &h.data_points {
                        if p.flags & NO_RECORDED_VALUE != 0 {
                            continue;
                        }
                        let ts = time_of(format, &[p.time_unix_nano], ctx, what)?;
                        let labels = sink.labels(&p.attributes, None);
                        derived(&mut sink, ts, name, p.count, p.sum, kind, &labels);
                        buckets(&mut sink, ts, name, p, kind);
                        // A cumulative point's quantile is over the process's whole life; the
                        // buckets let the golden signals take each export's own.
                        if kind == MetricKind::Gauge {
                            if let Some(q) = explicit_quantile(p, 0.99) {
                                let p99 = format!("{name}_p99");
                                sink.push(ts, &p99, q, MetricKind::Gauge, labels);
                            }
                        }
                    }
                }
                if let Some(h) = &m.exponential_histogram {
                    let kind = counter_if(h.aggregation_temporality);
                    for p in &h.data_points {
                        if p.flags & NO_RECORDED_VALUE != 0 {
                            continue;
                        }
                        let ts = time_of(format, &[p.time_unix_nano], ctx, what)?;
                        let labels = sink.labels(&p.attributes, None);
                        derived(&mut sink, ts, name, p.count, p.sum, kind, &labels);
                        if let Some(q) = exponential_quantile(p, 0.99) {
                            sink.push(ts, &format!("{name}_p99"), q, MetricKind::Gauge, labels);
                        }
                    }
                }
                if let Some(s) = &m.summary {
                    for p in &s.data_points {
                        if p.flags & NO_RECORDED_VALUE != 0 {
                            continue;
                        }
                        let ts = time_of(format, &[p.time_unix_nano], ctx, what)?;
                        let labels = sink.labels(&p.attributes, None);
                        derived(
                            &mut sink,
                            ts,
                            name,
                            p.count,
                            Some(p.sum),
                            MetricKind::Counter,
                            &labels,
                        );
                        for q in &p.quantile_values {
                            let labels = sink
                                .labels(&p.attributes, Some(("quantile", q.quantile.to_string())));
                            sink.push(ts, name, q.value, MetricKind::Gauge, labels);
                        }
                    }
                }
            }
        }
        target_info(&mut sink, resource_attrs(&rm.resource));
    }
    Ok(())
}

/// Resource attributes that say which build runs, as OpenTelemetry's Prometheus exporters
/// put them on `target_info`.
const BUILD_ATTRIBUTES: [&str; 3] = [
    "service.version",
    "container.image.tag",
    "k8s.deployment.revision",
];

/// `target_info{service.version=…} 1` once per resource that names its build: how a release
/// is seen when no deploy event is sent (the releases watch turns a new version into a change).
fn target_info(sink: &mut MetricSink<'_>, attrs: &[KeyValue]) {
    let Some(ts) = sink.newest else {
        return;
    };
    let build: Vec<(Symbol, Symbol)> = BUILD_ATTRIBUTES
        .iter()
        .filter_map(|k| Some((Symbol::new(k), Symbol::new(&find_text(attrs, k)?))))
        .collect();
    if build.is_empty() {
        return;
    }
    let instance = sink
        .instance
        .map(|i| (Symbol::new("instance"), Symbol::new(i)));
    let labels = Labels::from_pairs(instance.into_iter().chain(build));
    sink.push(ts, "target_info", 1.0, MetricKind::Gauge, labels);
}

fn counter_if(temporality: i32) -> MetricKind {
    if temporality == TEMPORALITY_CUMULATIVE {
        MetricKind::Counter
    } else {
        MetricKind::Gauge
    }
}

/// `<name>_count` and `<name>_sum`, counters when cumulative (they only grow until a restart).
fn derived(
    sink: &mut MetricSink<'_>,
    ts: Timestamp,
    name: &str,
    count: u64,
    sum: Option<f64>,
    kind: MetricKind,
    labels: &Labels,
) {
    sink.push(
        ts,
        &format!("{name}_count"),
        count as f64,
        kind,
        labels.clone(),
    );
    if let Some(sum) = sum {
        sink.push(ts, &format!("{name}_sum"), sum, kind, labels.clone());
    }
}

/// `<name>_bucket{le}` as Prometheus counts them: observations at most each bound, and
/// `le="+Inf"` for all of them.
fn buckets(
    sink: &mut MetricSink<'_>,
    ts: Timestamp,
    name: &str,
    p: &HistogramDataPoint,
    kind: MetricKind,
) {
    if p.bucket_counts.len() != p.explicit_bounds.len() + 1 {
        return;
    }
    let bucket = format!("{name}_bucket");
    let mut at_most = 0u64;
    for (i, &c) in p.bucket_counts.iter().enumerate() {
        at_most = at_most.saturating_add(c);
        let le = match p.explicit_bounds.get(i) {
            Some(b) => b.to_string(),
            None => "+Inf".to_owned(),
        };
        let labels = sink.labels(&p.attributes, Some(("le", le)));
        sink.push(ts, &bucket, at_most as f64, kind, labels);
    }
}

/// The `q` quantile of an explicit-bucket histogram, interpolated linearly inside the bucket
/// that holds it (Prometheus' `histogram_quantile`); the first bucket starts at `min` (or 0),
/// the overflow bucket ends at `max` (or its lower bound). `None` for an empty histogram.
pub(super) fn explicit_quantile(p: &HistogramDataPoint, q: f64) -> Option<f64> {
    let total = p
        .bucket_counts
        .iter()
        .fold(0u64, |a, c| a.saturating_add(*c));
    if total == 0 || p.bucket_counts.len() != p.explicit_bounds.len() + 1 {
        return None;
    }
    let rank = q * total as f64;
    let mut seen = 0u64;
    for (i, &c) in p.bucket_counts.iter().enumerate() {
        if c == 0 || (seen.saturating_add(c) as f64) < rank {
            seen = seen.saturating_add(c);
            continue;
        }
        let lower = match i {
            0 => p
                .min
                .unwrap_or(0.0)
                .min(p.explicit_bounds.first().copied().unwrap_or(0.0)),
            _ => p.explicit_bounds[i - 1],
        };
        let upper = match p.explicit_bounds.get(i) {
            Some(u) => *u,
            None => return Some(p.max.unwrap_or(lower).max(lower)),
        };
        let frac = ((rank - seen as f64) / c as f64).clamp(0.0, 1.0);
        return Some(lower + (upper - lower) * frac);
    }
    None
}

/// The `q` quantile of an exponential histogram: bucket `i` holds `(base^i, base^(i+1)]` with
/// `base = 2^(2^-scale)`; negative buckets mirror the positive ones, the zero bucket holds 0.
/// Interpolated linearly inside the bucket that holds the rank.
pub(super) fn exponential_quantile(p: &ExponentialHistogramDataPoint, q: f64) -> Option<f64> {
    let base = 2f64.powf(2f64.powi(-p.scale.clamp(-10, 20)));
    let bound = |i: i64| base.powf(i as f64);
    // (lower, upper, count) in ascending value order
    let mut buckets: Vec<(f64, f64, u64)> = Vec::new();
    if let Some(n) = &p.negative {
        for (k, &c) in n.bucket_counts.iter().enumerate().rev() {
            let i = i64::from(n.offset) + k as i64;
            buckets.push((-bound(i + 1), -bound(i), c));
        }
    }
    buckets.push((0.0, 0.0, p.zero_count));
    if let Some(pos) = &p.positive {
        for (k, &c) in pos.bucket_counts.iter().enumerate() {
            let i = i64::from(pos.offset) + k as i64;
            buckets.push((bound(i), bound(i + 1), c));
        }
    }
    let total = buckets.iter().fold(0u64, |a, b| a.saturating_add(b.2));
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut seen = 0u64;
    for (lower, upper, c) in buckets {
        if c == 0 || (seen.saturating_add(c) as f64) < rank {
            seen = seen.saturating_add(c);
            continue;
        }
        let frac = ((rank - seen as f64) / c as f64).clamp(0.0, 1.0);
        let v = lower + (upper - lower) * frac;
        return v.is_finite().then_some(v);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codecs::otlp_schema::Buckets;

    #[test]
    fn quantiles_from_buckets() {
        let p = HistogramDataPoint {
            count: 100,
            bucket_counts: vec![50, 40, 9, 1],
            explicit_bounds: vec![10.0, 100.0, 1000.0],
            ..Default::default()
        };
        // rank 99 falls at the end of the third bucket (100, 1000]
        assert_eq!(explicit_quantile(&p, 0.99), Some(1000.0));
        assert_eq!(explicit_quantile(&p, 0.5), Some(10.0));
        let overflow = HistogramDataPoint {
            bucket_counts: vec![0, 0, 0, 5],
            max: Some(4000.0),
            ..p.clone()
        };
        assert_eq!(explicit_quantile(&overflow, 0.99), Some(4000.0));
        let bad = HistogramDataPoint {
            bucket_counts: vec![1],
            ..p
        };
        assert_eq!(explicit_quantile(&bad, 0.99), None);

        let e = ExponentialHistogramDataPoint {
            scale: 0,
            zero_count: 1,
            positive: Some(Buckets {
                offset: 1,
                bucket_counts: vec![0, 2],
            }),
            ..Default::default()
        };
        // buckets (2,4] ×0, (4,8] ×2: rank 2.97 is near the top of (4,8]
        let q = exponential_quantile(&e, 0.99).unwrap();
        assert!((7.8..=8.0).contains(&q), "{q}");
    }
}
