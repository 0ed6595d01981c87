//! OTLP → kaizen events, shared by `otlp_proto` and `otlp_json` (both decode into the same
//! [`otlp_schema`](super::otlp_schema) types, so the two encodings cannot drift apart).
//!
//! Logs become Log events, every gauge / sum data point one Metric event, histograms and
//! summaries a few derived series (`_count`, `_sum`, `_p99`, quantiles), spans Span events.
//! The mapping tables are in `docs/formats.md`; metrics are in [`otlp_metrics`](super::otlp_metrics).

use kaizen_model::{Attributes, Event, EventBody, Level, Log, Span, SpanStatus, Symbol, Timestamp};

use super::common::invalid;
pub(super) use super::otlp_metrics::metrics;
use super::otlp_schema::{
    AnyValue, KeyValue, LogsRequest, Resource, TracesRequest, SPAN_KIND_CONSUMER, SPAN_KIND_SERVER,
    STATUS_CODE_ERROR,
};
use super::{CodecError, DecodeContext, Format};

/// The service of a resource without `service.name` (what OpenTelemetry SDKs report too).
const UNKNOWN_SERVICE: &str = "unknown_service";

/// Resource attributes copied onto every log record: where it ran, not what it said.
const LOG_RESOURCE_ATTRIBUTES: [&str; 6] = [
    "service.instance.id",
    "host.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "deployment.environment",
    "deployment.environment.name",
];

/// Span attributes naming the callee, in the order they are tried (OpenTelemetry semantic
/// conventions: `peer.service` is explicit; `server.address` is current, `net.peer.name` older).
const PEER_ATTRIBUTES: [&str; 3] = ["peer.service", "server.address", "net.peer.name"];

/// `AnyValue` as text: scalars as written, bytes as hex, arrays and maps as compact JSON-like
/// text (`["a","b"]`, `{"k":"v"}`), so a structured body stays readable and greppable.
pub(super) fn any_text(v: &AnyValue) -> String {
    let mut s = String::new();
    write_any(v, &mut s, 0);
    s
}

/// [`any_text`] for an owned value: a string value is moved, not copied (the hot path: log
/// bodies and attribute values are almost always strings).
pub(super) fn into_text(v: AnyValue) -> String {
    match v.string_value {
        Some(s) => s,
        None => any_text(&v),
    }
}

fn write_any(v: &AnyValue, s: &mut String, depth: usize) {
    use std::fmt::Write;
    if let Some(x) = &v.string_value {
        s.push_str(x);
    } else if let Some(x) = v.bool_value {
        let _ = write!(s, "{x}");
    } else if let Some(x) = v.int_value {
        let _ = write!(s, "{x}");
    } else if let Some(x) = v.double_value {
        let _ = write!(s, "{x}");
    } else if let Some(x) = &v.bytes_value {
        for b in x {
            let _ = write!(s, "{b:02x}");
        }
    } else if depth > 16 {
        s.push('…');
    } else if let Some(a) = &v.array_value {
        s.push('[');
        for (i, item) in a.values.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            write_nested(item, s, depth);
        }
        s.push(']');
    } else if let Some(kv) = &v.kvlist_value {
        s.push('{');
        for (i, pair) in kv.values.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "{:?}:", pair.key);
            match &pair.value {
                Some(item) => write_nested(item, s, depth),
                None => s.push_str("null"),
            }
        }
        s.push('}');
    }
}

fn write_nested(v: &AnyValue, s: &mut String, depth: usize) {
    match &v.string_value {
        Some(x) => {
            use std::fmt::Write;
            let _ = write!(s, "{x:?}");
        }
        None => write_any(v, s, depth + 1),
    }
}

fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().find(|kv| kv.key == key)?.value.as_ref()
}

pub(super) fn find_text(attrs: &[KeyValue], key: &str) -> Option<String> {
    find(attrs, key).map(any_text).filter(|s| !s.is_empty())
}

pub(super) fn resource_attrs(resource: &Option<Resource>) -> &[KeyValue] {
    resource.as_ref().map_or(&[], |r| r.attributes.as_slice())
}

pub(super) fn service_of(resource: &Option<Resource>) -> Symbol {
    let attrs = resource_attrs(resource);
    match find(attrs, "service.name").and_then(|v| v.string_value.as_deref()) {
        Some(s) if !s.is_empty() => Symbol::new(s),
        _ => Symbol::new(UNKNOWN_SERVICE),
    }
}

/// Event time from a nanosecond field, then the transport's time; an error naming `what`.
pub(super) fn time_of(
    format: Format,
    nanos: &[u64],
    ctx: &DecodeContext<'_>,
    what: &str,
) -> Result<Timestamp, CodecError> {
    nanos
        .iter()
        .find(|n| **n != 0)
        .map(|n| Timestamp::from_millis(n / 1_000_000))
        .or(ctx.received)
        .ok_or_else(|| {
            invalid(
                format,
                what,
                "no timestamp (0) and no record time to fall back on",
            )
        })
}

/// OTLP severity number (1–24, in blocks of four) → level; 0 means "read the text".
fn level_of(number: i32, text: &str) -> Level {
    match number {
        1..=4 => Level::Trace,
        5..=8 => Level::Debug,
        9..=12 => Level::Info,
        13..=16 => Level::Warn,
        17..=20 => Level::Error,
        21.. => Level::Fatal,
        _ => Level::parse_lenient(text),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Appends one Log event per log record.
pub(super) fn logs(
    format: Format,
    req: LogsRequest,
    ctx: &DecodeContext<'_>,
    out: &mut Vec<Event>,
) -> Result<(), CodecError> {
    let (trace_id, span_id) = (Symbol::new("trace_id"), Symbol::new("span_id"));
    for rl in req.resource_logs {
        let service = service_of(&rl.resource);
        let res_attrs = resource_attrs(&rl.resource);
        let shared: Vec<(Symbol, String)> = LOG_RESOURCE_ATTRIBUTES
            .iter()
            .filter_map(|k| find_text(res_attrs, k).map(|v| (Symbol::new(k), v)))
            .collect();
        for sl in rl.scope_logs {
            for rec in sl.log_records {
                let ts = time_of(
                    format,
                    &[rec.time_unix_nano, rec.observed_time_unix_nano],
                    ctx,
                    "logRecord.timeUnixNano",
                )?;
                let mut attrs = Vec::with_capacity(shared.len() + rec.attributes.len() + 2);
                attrs.extend(shared.iter().cloned());
                attrs.extend(
                    rec.attributes
                        .into_iter()
                        .filter_map(|kv| Some((Symbol::new(&kv.key), into_text(kv.value?)))),
                );
                if !rec.trace_id.is_empty() {
                    attrs.push((trace_id.clone(), hex(&rec.trace_id)));
                }
                if !rec.span_id.is_empty() {
                    attrs.push((span_id.clone(), hex(&rec.span_id)));
                }
                let body = rec.body.map(into_text).unwrap_or_default();
                let message = if body.is_empty() {
                    rec.event_name
                } else {
                    body
                };
                out.push(Event {
                    ts,
                    service: service.clone(),
                    body: EventBody::Log(Log {
                        level: level_of(rec.severity_number, &rec.severity_text),
                        message,
                        attributes: Attributes::from_pairs(attrs),
                    }),
                });
            }
        }
    }
    Ok(())
}

/// `payments.shop.svc.cluster.local:8080` → `payments`: a Kubernetes service DNS name is cut to
/// the service; other hosts lose only their port; IPv6 addresses are kept whole.
fn peer_name(raw: &str) -> &str {
    if raw.starts_with('[') {
        return raw.find(']').map_or(raw, |end| &raw[..=end]);
    }
    let host = match raw.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => raw,
    };
    if host.ends_with(".svc") || host.contains(".svc.") {
        host.split('.').next().unwrap_or(host)
    } else {
        host
    }
}

/// Appends one Span event per span: caller = the resource's service, callee = the first of
/// [`PEER_ATTRIBUTES`] on client, producer and internal spans (server and consumer spans have
/// no callee).
pub(super) fn traces(
    format: Format,
    req: TracesRequest,
    ctx: &DecodeContext<'_>,
    out: &mut Vec<Event>,
) -> Result<(), CodecError> {
    for rs in req.resource_spans {
        let service = service_of(&rs.resource);
        for ss in rs.scope_spans {
            for span in ss.spans {
                let ts = time_of(
                    format,
                    &[span.start_time_unix_nano, span.end_time_unix_nano],
                    ctx,
                    "span.startTimeUnixNano",
                )?;
                let peer = if matches!(span.kind, SPAN_KIND_SERVER | SPAN_KIND_CONSUMER) {
                    None
                } else {
                    PEER_ATTRIBUTES
                        .iter()
                        .find_map(|k| find_text(&span.attributes, k))
                        .map(|p| Symbol::new(peer_name(&p)))
                };
                let nanos = span
                    .end_time_unix_nano
                    .saturating_sub(span.start_time_unix_nano);
                let error = span
                    .status
                    .as_ref()
                    .is_some_and(|s| s.code == STATUS_CODE_ERROR);
                out.push(Event {
                    ts,
                    service: service.clone(),
                    body: EventBody::Span(Span {
                        peer,
                        operation: Symbol::new(&span.name),
                        duration_ms: nanos as f64 / 1e6,
                        status: if error {
                            SpanStatus::Error
                        } else {
                            SpanStatus::Ok
                        },
                        trace_id: (!span.trace_id.is_empty()).then(|| hex(&span.trace_id)),
                    }),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_and_levels() {
        assert_eq!(
            peer_name("payments.shop.svc.cluster.local:8080"),
            "payments"
        );
        assert_eq!(peer_name("api.stripe.com:443"), "api.stripe.com");
        assert_eq!(peer_name("[::1]:80"), "[::1]");
        assert_eq!(peer_name("fe80::1"), "fe80::1");
        assert_eq!(level_of(10, "x"), Level::Info);
        assert_eq!(level_of(17, ""), Level::Error);
        assert_eq!(level_of(0, "WARNING"), Level::Warn);
        assert_eq!(level_of(-3, ""), Level::Info);
    }
}
