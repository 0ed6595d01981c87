//! kaizen's sources, sinks and codecs: how events get in and insights get out.
//!
//! Sources: Kafka consumer groups ([`kafka`]), HTTP webhooks and Slack button clicks ([`http`]),
//! and files, directories and stdin ([`JsonlSource`]: one message per line in any format, inputs
//! merged by event time), each message decoded by its format's codec ([`codecs`]: native, OTLP
//! JSON and protobuf, Alertmanager, Grafana, PagerDuty, CloudWatch, Vector, Fluent Bit,
//! prometheus-kafka-adapter, `auto`). Sinks: the terminal ([`TerminalSink`]), JSON Lines
//! ([`JsonlSink`]), a Kafka topic, Slack (one message per incident, [`slack`]) and dead letters
//! for input that could not be decoded (a file, [`DeadLetterSink`], or a Kafka topic). Metrics
//! for `GET /metrics` are kept in [`metrics`]. Each source and sink is one module with a typed
//! config; adding a format touches one file and its tests.
//!
//! This crate knows nothing of detection or dataflow: it turns bytes into [`kaizen_model::Event`]s
//! (or a [`DecodeFailure`] that says where and why) and [`kaizen_model::Insight`]s into bytes.

pub mod codecs;
mod dead_letter;
pub use kaizen_model::duration_serde;
mod history_file;
pub mod http;
mod jsonl_sink;
mod jsonl_source;
pub mod kafka;
mod latest;
pub mod metrics;
pub mod slack;
mod terminal;

pub use codecs::{CodecError, DecodeContext, Format, OtlpSignal};
pub use dead_letter::DeadLetterSink;
pub use history_file::{load_history, HistoryWriter};
pub use http::{HttpConfig, HttpDeps, HttpError, HttpServer, Readiness, RejectedPayload};
pub use jsonl_sink::JsonlSink;
pub use jsonl_source::{
    expand_formatted_inputs, expand_inputs, read_topology, split_format, DecodeFailure, InputSpec,
    JsonlSource, SourceError,
};
pub use kafka::{KafkaDeadLetter, KafkaInsightSink, KafkaSource, KafkaSourceConfig};
pub use latest::LatestInsights;
pub use metrics::{Counter, Gauge, MetricDef, Registry};
pub use slack::{SlackConfig, SlackSink, SlackStats};
pub use terminal::{TerminalSink, TerminalStyle};

use kaizen_model::Insight;

/// Where insights go. Sinks must tolerate seeing the same `(id, version)` twice.
pub trait InsightSink: Send {
    /// Delivers one insight version.
    fn emit(&mut self, insight: &Insight) -> std::io::Result<()>;
    /// Makes everything emitted so far durable / visible.
    fn flush(&mut self) -> std::io::Result<()>;
}
