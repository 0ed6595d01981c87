//! Building blocks of the wire formats: OTLP/JSON (the protobuf JSON mapping with OTLP's rules:
//! camelCase keys, 64-bit integers as strings, enums as integers, ids as hex) and
//! prometheus-kafka-adapter's sample JSON.

use serde_json::{json, Map, Value};

/// `AggregationTemporality.CUMULATIVE`.
pub(super) const CUMULATIVE: u8 = 2;
/// `Span.SpanKind` values.
pub(super) const SPAN_KIND_CLIENT: u8 = 3;
pub(super) const SPAN_KIND_PRODUCER: u8 = 4;
pub(super) const SPAN_KIND_CONSUMER: u8 = 5;

/// Milliseconds since the epoch as OTLP's `fixed64` nanoseconds (a JSON string).
pub(super) fn nanos(ms: u64) -> String {
    format!("{ms}000000")
}

/// An attribute value.
pub(super) enum V<'a> {
    Str(&'a str),
    Int(i64),
}

/// One `KeyValue`.
pub(super) fn kv(key: &str, value: V<'_>) -> Value {
    let value = match value {
        V::Str(s) => json!({ "stringValue": s }),
        V::Int(i) => json!({ "intValue": i.to_string() }),
    };
    json!({ "key": key, "value": value })
}

/// Attributes from `(key, value)` pairs.
pub(super) fn attrs<'a>(pairs: impl IntoIterator<Item = (&'a str, V<'a>)>) -> Value {
    Value::Array(pairs.into_iter().map(|(k, v)| kv(k, v)).collect())
}

/// A scope with its metrics (or log records, or spans, under `items_key`).
pub(super) fn scope(name: &str, version: &str, items_key: &str, items: Vec<Value>) -> Value {
    let mut m = Map::new();
    m.insert("scope".into(), json!({ "name": name, "version": version }));
    m.insert(items_key.into(), Value::Array(items));
    Value::Object(m)
}

/// A gauge with one double point.
pub(super) fn gauge(name: &str, unit: &str, ts: u64, value: f64, point_attrs: Value) -> Value {
    json!({
        "name": name,
        "unit": unit,
        "gauge": { "dataPoints": [ {
            "attributes": point_attrs,
            "timeUnixNano": nanos(ts),
            "asDouble": value,
        } ] }
    })
}

/// A gauge with one integer point.
pub(super) fn gauge_int(name: &str, unit: &str, ts: u64, value: i64, point_attrs: Value) -> Value {
    json!({
        "name": name,
        "unit": unit,
        "gauge": { "dataPoints": [ {
            "attributes": point_attrs,
            "timeUnixNano": nanos(ts),
            "asInt": value.to_string(),
        } ] }
    })
}

/// A cumulative sum with integer points `(attributes, value)` since `start`.
pub(super) fn sum_int(
    name: &str,
    unit: &str,
    monotonic: bool,
    start: u64,
    ts: u64,
    points: Vec<(Value, i64)>,
) -> Value {
    let points: Vec<Value> = points
        .into_iter()
        .map(|(a, v)| {
            json!({
                "attributes": a,
                "startTimeUnixNano": nanos(start),
                "timeUnixNano": nanos(ts),
                "asInt": v.to_string(),
            })
        })
        .collect();
    json!({
        "name": name,
        "unit": unit,
        "sum": {
            "aggregationTemporality": CUMULATIVE,
            "isMonotonic": monotonic,
            "dataPoints": points,
        }
    })
}

/// One cumulative explicit-bucket histogram point.
pub(super) struct HistogramPoint {
    pub attributes: Value,
    /// Observations per bucket (`bounds.len() + 1` of them).
    pub bucket_counts: Vec<u64>,
    pub sum: f64,
}

/// A cumulative histogram since `start`.
pub(super) fn histogram(
    name: &str,
    unit: &str,
    bounds: &[f64],
    start: u64,
    ts: u64,
    points: Vec<HistogramPoint>,
) -> Value {
    let points: Vec<Value> = points
        .into_iter()
        .map(|p| {
            let count: u64 = p.bucket_counts.iter().sum();
            json!({
                "attributes": p.attributes,
                "startTimeUnixNano": nanos(start),
                "timeUnixNano": nanos(ts),
                "count": count.to_string(),
                "sum": p.sum,
                "bucketCounts": p.bucket_counts.iter().map(u64::to_string).collect::<Vec<_>>(),
                "explicitBounds": bounds,
            })
        })
        .collect();
    json!({
        "name": name,
        "unit": unit,
        "histogram": { "aggregationTemporality": CUMULATIVE, "dataPoints": points }
    })
}

/// `2026-01-05T00:00:12Z`: prometheus-kafka-adapter formats sample times with Go's
/// `time.RFC3339`, which keeps whole seconds.
pub(super) fn rfc3339_seconds(ms: u64) -> String {
    let full = kaizen_model::Timestamp::from_millis(ms).rfc3339_bytes();
    let mut s = String::from_utf8_lossy(&full[..19]).into_owned();
    s.push('Z');
    s
}

/// One prometheus-kafka-adapter message: a sample with its labels (`__name__` included).
pub(super) fn prom_sample(name: &str, ts: u64, value: f64, labels: &[(&str, &str)]) -> Vec<u8> {
    let mut l = Map::new();
    l.insert("__name__".into(), Value::String(name.to_owned()));
    for (k, v) in labels {
        l.insert((*k).to_owned(), Value::String((*v).to_owned()));
    }
    let v = json!({
        "timestamp": rfc3339_seconds(ts),
        "value": value.to_string(),
        "name": name,
        "labels": Value::Object(l),
    });
    serde_json::to_vec(&v).unwrap_or_default()
}
