//! prometheus-kafka-adapter's JSON serialization: Prometheus `remote_write` samples, one per
//! Kafka message, as `{"timestamp": RFC 3339, "value": "<float as text>", "name": …,
//! "labels": {"__name__": …, …}}`. Several samples in one message (an array, or one per line)
//! are read too.
//!
//! Prometheus has no metric types on the wire, so the usual naming conventions decide: names
//! ending in `_total`, `_count`, `_sum` or `_bucket` are counters, everything else a gauge.
//! Values `NaN` (Prometheus' staleness marker) and `±Inf` are not samples and are skipped.

use kaizen_model::{Event, EventBody, Metric, MetricKind, Symbol};
use serde::Deserialize;
use serde_json::Value;

use super::common::{
    for_each_document, invalid, missing, service_from_labels, TextMap, TimeValue, UNKNOWN_SERVICE,
};
use super::{CodecError, Format};

const FORMAT: Format = Format::PrometheusKafkaAdapter;

#[derive(Deserialize)]
struct Sample {
    #[serde(default)]
    timestamp: Option<TimeValue>,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    labels: TextMap,
}

/// Decodes every sample of the message.
pub(super) fn decode(payload: &[u8], out: &mut Vec<Event>) -> Result<(), CodecError> {
    for_each_document(FORMAT, payload, |i, s: Sample| {
        let field = |f: &str| {
            if i == 0 {
                f.to_owned()
            } else {
                format!("[{i}].{f}")
            }
        };
        let ts = s
            .timestamp
            .as_ref()
            .ok_or_else(|| missing(FORMAT, field("timestamp")))?
            .get(FORMAT, &field("timestamp"))?;
        let value = match &s.value {
            Some(Value::String(t)) => parse_value(t),
            Some(Value::Number(n)) => n.as_f64(),
            _ => None,
        }
        .ok_or_else(|| match &s.value {
            None => missing(FORMAT, field("value")),
            Some(v) => invalid(FORMAT, field("value"), format!("{v} is not a number")),
        })?;
        if !value.is_finite() {
            return Ok(());
        }
        let name = s
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
            .or_else(|| s.labels.get("__name__"))
            .ok_or_else(|| missing(FORMAT, field("name")))?;
        let counter = ["_total", "_count", "_sum", "_bucket"]
            .iter()
            .any(|suffix| name.ends_with(suffix));
        let service = service_from_labels(&s.labels)
            .or_else(|| s.labels.get("instance"))
            .unwrap_or(UNKNOWN_SERVICE);
        out.push(Event {
            ts,
            service: Symbol::new(service),
            body: EventBody::Metric(Metric {
                name: Symbol::new(name),
                value,
                metric_kind: if counter {
                    MetricKind::Counter
                } else {
                    MetricKind::Gauge
                },
                labels: s.labels.labels(),
            }),
        });
        Ok(())
    })
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)` output back to a float, with Prometheus'
/// spellings of the special values.
fn parse_value(t: &str) -> Option<f64> {
    match t.trim() {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        other => other.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codecs::common::test_util::{all, fixture, metric};
    use crate::codecs::Format;
    use kaizen_model::Timestamp;

    #[test]
    fn specials_are_skipped_and_shapes_checked() {
        let mut out = Vec::new();
        let inf = br#"{"value":"+Inf","timestamp":"1970-01-01T00:00:10Z","name":"foo","labels":{"__name__":"foo"}}"#;
        decode(inf, &mut out).unwrap();
        assert!(out.is_empty());
        let two = b"{\"value\":\"1\",\"timestamp\":\"2026-01-05T10:00:00Z\",\"labels\":{\"__name__\":\"http_requests_total\",\"job\":\"api\"}}\n{\"value\":2.5,\"timestamp\":1767607200000,\"name\":\"up\",\"labels\":{}}";
        decode(two, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        let EventBody::Metric(m) = &out[0].body else {
            panic!()
        };
        assert_eq!(
            (m.name.as_str(), m.metric_kind, m.labels.len()),
            ("http_requests_total", MetricKind::Counter, 1)
        );
        assert_eq!(out[1].service.as_str(), UNKNOWN_SERVICE);
        let err = |j: &[u8]| decode(j, &mut Vec::new()).unwrap_err().to_string();
        assert_eq!(
            err(br#"{"value":"1","name":"x"}"#),
            "prometheus_kafka_adapter: missing timestamp"
        );
        assert!(err(br#"{"value":"abc","name":"x","timestamp":1}"#).contains("invalid value"));
        assert_eq!(
            err(br#"{"value":"1","timestamp":1}"#),
            "prometheus_kafka_adapter: missing name"
        );
    }

    #[test]
    fn prometheus_kafka_adapter_samples() {
        let events = all(
            Format::PrometheusKafkaAdapter,
            fixture!("prometheus_kafka_adapter/samples.jsonl"),
        );
        assert_eq!(events.len(), 1, "+Inf is not a sample");
        let m = metric(&events, "foo");
        assert_eq!((m.value, events[0].ts), (456.0, Timestamp::from_millis(0)));
        assert_eq!(m.labels.get("__name__"), None);

        let events = all(
            Format::PrometheusKafkaAdapter,
            fixture!("prometheus_kafka_adapter/sample.json"),
        );
        let m = metric(&events, "http_error_ratio");
        assert_eq!(
            (events[0].service.as_str(), m.value, m.metric_kind),
            ("checkout", 0.0123, MetricKind::Gauge)
        );
        assert_eq!(
            m.labels.get("instance").map(|v| v.as_str()),
            Some("checkout-0:9090")
        );
    }
}
