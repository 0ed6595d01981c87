//! Codecs: the wire formats SREs already ship, decoded into kaizen [`Event`]s.
//!
//! Every Kafka topic (or HTTP endpoint) is read with one [`Format`], named in the config by its
//! stable name (`alertmanager`, `otlp_proto_logs`, …, or `auto`). One message may carry many
//! events (an OTLP batch, an Alertmanager notification with many alerts, several native lines),
//! so [`decode`] appends to a caller-owned `Vec` and says how many it added.
//!
//! A message is decoded whole or rejected whole: on error `out` is left exactly as it was and
//! the [`CodecError`] says why, so the caller can send the original bytes and that reason to the
//! dead-letter topic without losing or duplicating anything. No input can make a codec panic.
//!
//! Mappings per format are documented in `docs/formats.md` ("Input formats").

use std::fmt;
use std::str::FromStr;

use kaizen_model::{Event, Timestamp};

mod alertmanager;
mod auto;
mod cloudwatch;
mod common;
mod fluentbit;
mod grafana;
mod log_lines;
mod native;
mod otlp;
mod otlp_json;
mod otlp_metrics;
mod otlp_proto;
mod otlp_schema;
mod pagerduty;
mod prometheus_kafka_adapter;
mod vector;

pub use auto::detect;

/// Which OpenTelemetry signal an OTLP message carries. Protobuf bytes do not say it by
/// themselves, so it comes from the format name, the topic name, or (last) a look at the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OtlpSignal {
    /// `ExportLogsServiceRequest`.
    Logs,
    /// `ExportMetricsServiceRequest`.
    Metrics,
    /// `ExportTraceServiceRequest`.
    Traces,
}

impl OtlpSignal {
    /// The signal the Collector's Kafka exporter writes to `topic` by default (`otlp_logs`,
    /// `otlp_metrics`, `otlp_spans`), also recognised inside longer names such as
    /// `prod.otlp_spans.v1`, `logs` or `traces`.
    pub fn from_topic(topic: &str) -> Option<OtlpSignal> {
        let t = topic.to_ascii_lowercase();
        if t.contains("log") {
            Some(OtlpSignal::Logs)
        } else if t.contains("metric") {
            Some(OtlpSignal::Metrics)
        } else if t.contains("span") || t.contains("trace") {
            Some(OtlpSignal::Traces)
        } else {
            None
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            OtlpSignal::Logs => "logs",
            OtlpSignal::Metrics => "metrics",
            OtlpSignal::Traces => "traces",
        }
    }
}

/// An input format, configured per topic by its stable name (see [`Format::ALL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// kaizen's native JSON Lines (one or more lines per message).
    Native,
    /// OTLP/JSON as the Collector's Kafka exporter writes it; the signal is read from the
    /// top-level key (`resourceLogs`, `resourceMetrics`, `resourceSpans`).
    OtlpJson,
    /// OTLP/protobuf; `None` takes the signal from the topic name, then from the bytes.
    OtlpProto(Option<OtlpSignal>),
    /// Prometheus Alertmanager webhook (version 4).
    Alertmanager,
    /// Grafana unified alerting webhook contact point.
    Grafana,
    /// PagerDuty Events API v2 event.
    PagerDuty,
    /// AWS CloudWatch alarm state change, as EventBridge delivers it.
    CloudWatch,
    /// Vector JSON log events.
    Vector,
    /// Fluent Bit JSON log records.
    FluentBit,
    /// prometheus-kafka-adapter JSON samples.
    PrometheusKafkaAdapter,
    /// Detect the format from the payload ([`detect`]).
    Auto,
}

impl Format {
    /// Every format, in the order of their config names.
    pub const ALL: [Format; 14] = [
        Format::Native,
        Format::OtlpJson,
        Format::OtlpProto(None),
        Format::OtlpProto(Some(OtlpSignal::Logs)),
        Format::OtlpProto(Some(OtlpSignal::Metrics)),
        Format::OtlpProto(Some(OtlpSignal::Traces)),
        Format::Alertmanager,
        Format::Grafana,
        Format::PagerDuty,
        Format::CloudWatch,
        Format::Vector,
        Format::FluentBit,
        Format::PrometheusKafkaAdapter,
        Format::Auto,
    ];

    /// The stable config name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::OtlpJson => "otlp_json",
            Format::OtlpProto(None) => "otlp_proto",
            Format::OtlpProto(Some(OtlpSignal::Logs)) => "otlp_proto_logs",
            Format::OtlpProto(Some(OtlpSignal::Metrics)) => "otlp_proto_metrics",
            Format::OtlpProto(Some(OtlpSignal::Traces)) => "otlp_proto_traces",
            Format::Alertmanager => "alertmanager",
            Format::Grafana => "grafana",
            Format::PagerDuty => "pagerduty",
            Format::CloudWatch => "cloudwatch",
            Format::Vector => "vector",
            Format::FluentBit => "fluentbit",
            Format::PrometheusKafkaAdapter => "prometheus_kafka_adapter",
            Format::Auto => "auto",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not one of [`Format::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {0:?} (expected one of: {list})", list = format_names())]
pub struct UnknownFormat(pub String);

fn format_names() -> String {
    Format::ALL.map(Format::name).join(", ")
}

impl FromStr for Format {
    type Err = UnknownFormat;
    /// Reads a config name; case, `-` for `_` and the spellings `otlp_proto_spans`,
    /// `otlp_proto_traces`, `fluent_bit` and `prometheus` are accepted.
    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        let alias = match norm.as_str() {
            "otlp_proto_spans" => Some(Format::OtlpProto(Some(OtlpSignal::Traces))),
            "fluent_bit" => Some(Format::FluentBit),
            "prometheus" => Some(Format::PrometheusKafkaAdapter),
            _ => None,
        };
        alias
            .or_else(|| Format::ALL.into_iter().find(|f| f.name() == norm))
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// What the transport knows about a message that the payload may not say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeContext<'a> {
    /// The topic it came from: picks the OTLP signal for `otlp_proto` and `auto`.
    pub topic: Option<&'a str>,
    /// When it was sent (the Kafka record timestamp, the HTTP receive time). Used as event time
    /// when the payload has none (PagerDuty resolve) and as the time of a webhook's re-sent
    /// firing alert, whose `startsAt` is when it first fired (see `docs/formats.md`).
    pub received: Option<Timestamp>,
}

/// Why a message could not be decoded. The text is what goes to the dead-letter topic.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CodecError {
    /// The payload is not JSON, or its JSON does not have the format's shape.
    #[error("{format}: invalid JSON: {reason}")]
    Json {
        /// The format it was decoded as.
        format: Format,
        /// serde_json's message, with line and column.
        reason: String,
    },
    /// The payload is not a valid protobuf message of the expected type.
    #[error("{format}: invalid protobuf ({signal}): {reason}")]
    Protobuf {
        /// The format it was decoded as.
        format: Format,
        /// The OTLP signal it was decoded as.
        signal: &'static str,
        /// prost's message.
        reason: String,
    },
    /// A field the format requires is absent.
    #[error("{format}: missing {field}")]
    Missing {
        /// The format.
        format: Format,
        /// The absent field (a path such as `alerts[2].labels.alertname`).
        field: String,
    },
    /// A field has a value outside its domain.
    #[error("{format}: invalid {field}: {reason}")]
    Invalid {
        /// The format.
        format: Format,
        /// The field (a path).
        field: String,
        /// Why.
        reason: String,
    },
    /// One line of a multi-line native message is not a valid event.
    #[error("native: line {line}: {reason}")]
    NativeLine {
        /// 1-based line number inside the message.
        line: usize,
        /// `Event::from_json`'s reason.
        reason: String,
    },
    /// `otlp_proto` could not tell whether the bytes are logs, metrics or traces.
    #[error(
        "otlp_proto: cannot tell the OTLP signal from the topic or the bytes; \
         configure otlp_proto_logs, otlp_proto_metrics or otlp_proto_traces"
    )]
    UnknownSignal,
    /// `auto` could not recognise the payload.
    #[error("auto: unrecognised payload: {0}")]
    Unrecognised(String),
}

/// Decodes one message in `format`, appending its events to `out`; returns how many it added.
/// Equivalent to [`decode_with`] with an empty [`DecodeContext`].
///
/// ```
/// use kaizen_connectors::codecs::{decode, Format};
/// let payload = br#"{"timestamp":"2026-01-05T10:00:00Z","value":"0.5","name":"cpu","labels":{"__name__":"cpu","job":"api"}}"#;
/// let mut out = Vec::new();
/// assert_eq!(decode(Format::PrometheusKafkaAdapter, payload, &mut out), Ok(1));
/// assert_eq!(out[0].service.as_str(), "api");
/// ```
pub fn decode(format: Format, payload: &[u8], out: &mut Vec<Event>) -> Result<usize, CodecError> {
    decode_with(format, payload, &DecodeContext::default(), out)
}

/// Decodes one message in `format` with what the transport knows about it; appends to `out`
/// and returns how many events it added. On error `out` is unchanged.
pub fn decode_with(
    format: Format,
    payload: &[u8],
    ctx: &DecodeContext<'_>,
    out: &mut Vec<Event>,
) -> Result<usize, CodecError> {
    let before = out.len();
    let result = match format {
        Format::Native => native::decode(payload, out),
        Format::OtlpJson => otlp_json::decode(payload, ctx, out),
        Format::OtlpProto(signal) => otlp_proto::decode(signal, payload, ctx, out),
        Format::Alertmanager => alertmanager::decode(payload, ctx, out),
        Format::Grafana => grafana::decode(payload, ctx, out),
        Format::PagerDuty => pagerduty::decode(payload, ctx, out),
        Format::CloudWatch => cloudwatch::decode(payload, ctx, out),
        Format::Vector => vector::decode(payload, ctx, out),
        Format::FluentBit => fluentbit::decode(payload, ctx, out),
        Format::PrometheusKafkaAdapter => prometheus_kafka_adapter::decode(payload, out),
        Format::Auto => match native::decode_if_native(payload, out) {
            Some(decoded) => decoded,
            None => match detect(payload, ctx) {
                Ok(Format::Auto) => Err(CodecError::Unrecognised("detection loop".into())),
                Ok(found) => decode_with(found, payload, ctx, out).map(|_| ()),
                Err(e) => Err(e),
            },
        },
    };
    match result {
        Ok(()) => Ok(out.len() - before),
        Err(e) => {
            out.truncate(before);
            tracing::debug!(format = %format, error = %e, "message rejected");
            Err(e)
        }
    }
}
