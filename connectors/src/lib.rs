//! kaizen's sources, sinks and codecs: how events get in and insights get out.
//!
//! Sources now: native JSON Lines from files, directories and stdin ([`JsonlSource`]). Sinks now:
//! the terminal ([`TerminalSink`]), JSON Lines ([`JsonlSink`]) and a dead-letter file for input
//! that could not be decoded ([`DeadLetterSink`]). Each source and sink is one module with a typed
//! config; adding a format touches one file and its tests.
//!
//! This crate knows nothing of detection or dataflow: it turns bytes into [`kaizen_model::Event`]s
//! (or a [`DecodeFailure`] that says where and why) and [`kaizen_model::Insight`]s into bytes.

pub mod codecs;
mod dead_letter;
pub mod duration_serde;
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
    expand_inputs, read_topology, DecodeFailure, InputSpec, JsonlSource, SourceError,
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
