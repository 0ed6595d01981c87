//! JSON log records from log shippers (Vector, Fluent Bit): one flat-ish object per log line,
//! with the line, its time and maybe its level under field names that differ per shipper, and
//! Kubernetes metadata under `kubernetes`. Each shipper module describes its names with a
//! [`Shipper`]; the mapping is the same for all and is written down in `docs/formats.md`.

use kaizen_model::{Attributes, Event, EventBody, Level, Log, Symbol, Timestamp};
use serde_json::{Map, Value};

use super::common::{for_each_document, missing, parse_time, sniff_level, value_text};
use super::{CodecError, DecodeContext, Format};

/// Where a shipper puts things.
pub(super) struct Shipper {
    /// The format, for errors.
    pub(super) format: Format,
    /// The log line, first present wins.
    pub(super) message_keys: &'static [&'static str],
    /// The event time, first present wins (RFC 3339 text or a unix number).
    pub(super) time_keys: &'static [&'static str],
    /// Kubernetes metadata field names inside `kubernetes`: namespace, pod labels, node.
    pub(super) k8s_namespace: &'static str,
    pub(super) k8s_labels: &'static str,
    pub(super) k8s_node: &'static str,
}

/// Level fields written by applications and parsers, first present wins.
const LEVEL_KEYS: [&str; 6] = [
    "level",
    "severity",
    "log.level",
    "loglevel",
    "lvl",
    "severity_text",
];

/// Top-level fields that name the service explicitly.
const SERVICE_KEYS: [&str; 4] = ["service", "service.name", "service_name", "app"];

/// Pod labels that name the workload, in order.
const K8S_SERVICE_LABELS: [&str; 4] = [
    "app.kubernetes.io/name",
    "app",
    "k8s-app",
    "app.kubernetes.io/instance",
];

/// Decodes every record of the message (one object, an array, or one per line).
pub(super) fn decode(
    shipper: &Shipper,
    payload: &[u8],
    ctx: &DecodeContext<'_>,
    out: &mut Vec<Event>,
) -> Result<(), CodecError> {
    for_each_document(shipper.format, payload, |i, record: Map<String, Value>| {
        out.push(record_event(shipper, i, &record, ctx)?);
        Ok(())
    })
}

fn text(v: Option<&Value>) -> Option<String> {
    v.map(value_text).filter(|s| !s.is_empty())
}

/// `kubernetes.<key>` as nested object or as a literal dotted top-level key.
fn k8s<'a>(record: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    match record.get("kubernetes") {
        Some(Value::Object(k)) => k.get(key),
        _ => record.get(&format!("kubernetes.{key}")),
    }
}

fn record_event(
    s: &Shipper,
    i: usize,
    record: &Map<String, Value>,
    ctx: &DecodeContext<'_>,
) -> Result<Event, CodecError> {
    let field = |f: &str| {
        if i == 0 {
            f.to_owned()
        } else {
            format!("[{i}].{f}")
        }
    };
    let message = s
        .message_keys
        .iter()
        .find_map(|k| record.get(*k).map(value_text))
        .ok_or_else(|| missing(s.format, field(&s.message_keys.join(" or "))))?;
    let ts = match s
        .time_keys
        .iter()
        .find_map(|k| record.get(*k).map(|v| (*k, v)))
    {
        Some((k, v)) => time_value(v).ok_or_else(|| {
            super::common::invalid(s.format, field(k), format!("unreadable time {v}"))
        })?,
        None => ctx
            .received
            .ok_or_else(|| missing(s.format, field(&s.time_keys.join(" or "))))?,
    };
    let level = LEVEL_KEYS
        .iter()
        .find_map(|k| text(record.get(*k)))
        .map(|l| Level::parse_lenient(&l))
        .or_else(|| sniff_level(&message))
        .unwrap_or_default();
    let labels = k8s(record, s.k8s_labels).and_then(Value::as_object);
    let service = SERVICE_KEYS
        .iter()
        .find_map(|k| text(record.get(*k)))
        .or_else(|| {
            K8S_SERVICE_LABELS
                .iter()
                .find_map(|k| text(labels?.get(*k)))
        })
        .or_else(|| text(k8s(record, "container_name")))
        .or_else(|| text(record.get("host")).or_else(|| text(record.get("hostname"))))
        .ok_or_else(|| {
            missing(
                s.format,
                field("service (service, kubernetes labels, container_name or host)"),
            )
        })?;
    let mut attrs: Vec<(Symbol, String)> = [
        ("k8s.namespace.name", s.k8s_namespace),
        ("k8s.pod.name", "pod_name"),
        ("k8s.container.name", "container_name"),
        ("k8s.node.name", s.k8s_node),
    ]
    .into_iter()
    .filter_map(|(name, key)| Some((Symbol::new(name), text(k8s(record, key))?)))
    .collect();
    let used = |k: &str| {
        s.message_keys.contains(&k)
            || s.time_keys.contains(&k)
            || LEVEL_KEYS.contains(&k)
            || k.starts_with("kubernetes")
    };
    attrs.extend(
        record
            .iter()
            .filter(|(k, v)| !used(k) && !v.is_object() && !v.is_array())
            .map(|(k, v)| (Symbol::new(k), value_text(v))),
    );
    Ok(Event {
        ts,
        service: Symbol::new(&service),
        body: EventBody::Log(Log {
            level,
            message,
            attributes: Attributes::from_pairs(attrs),
        }),
    })
}

fn time_value(v: &Value) -> Option<Timestamp> {
    match v {
        Value::String(s) => parse_time(s).ok(),
        Value::Number(n) => match n.as_u64() {
            Some(u) => Some(Timestamp::from_unix_integer(u)),
            None => Timestamp::from_unix_number(n.as_f64()?).ok(),
        },
        _ => None,
    }
}
