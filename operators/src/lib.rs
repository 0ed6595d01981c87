//! kaizen's detectors and correlators as plain, incremental state machines: feed events and
//! watermarks in, get signals (or incidents) out.
//!
//! Everything here is pure logic — no I/O, no timely, no clocks — so each piece is unit-tested
//! on its own and benchmarked alone. The engine only wires these into the dataflow.
//!
//! # The contract every detector keeps
//!
//! * Events arrive in non-decreasing event time (`ts`) for the keys a detector instance owns.
//! * `on_watermark(w)` promises no event with `ts < w` will follow.
//! * A timer due at `d` fires before any event with `ts > d`, and on any watermark `w > d` —
//!   so the output depends only on the sequence of events, never on how watermarks happened to be
//!   batched. That is what makes replays byte-for-byte deterministic across worker counts.
//!
//! ```
//! use kaizen_model::{Event, Severity};
//! use kaizen_operators::{Detector, ThresholdDetector, ThresholdRule};
//!
//! let mut detector = ThresholdDetector::new(vec![ThresholdRule::above("http_error_ratio", 0.05, Severity::Critical)]);
//! let mut signals = Vec::new();
//! for (i, v) in [0.01, 0.2, 0.3, 0.25].iter().enumerate() {
//!     let line = format!(r#"{{"ts":{},"kind":"metric","service":"payments","name":"http_error_ratio","value":{v}}}"#, 1_767_600_000 + 10 * i);
//!     detector.on_event(&Event::from_json(&line).unwrap(), &mut signals);
//! }
//! assert_eq!(signals.len(), 1);
//! assert_eq!(signals[0].service.as_str(), "payments");
//! ```

mod alerts;
mod anomaly;
mod changes;
mod cold_start;
mod correlate;
mod golden;
mod graph;
mod insight;
mod learned_edges;
mod origin;
mod recall;
mod releases;
mod slo;
mod stack_traces;
mod templates;
mod threshold;

pub use alerts::{
    AlertConfig, AlertPipeline, AlertStats, InhibitRule, MatchOp, Matcher, MatcherError, Silence,
};
// The two detector modules below re-export their whole public surface while they are being
// built; narrow to explicit names once they settle.
#[allow(unused_imports)]
pub use anomaly::*;
pub use changes::ChangeFeed;
pub use cold_start::{ColdStartConfig, ColdStartDetector};
pub use correlate::{CorrelatorConfig, IncidentCorrelator};
pub use golden::{
    GoldenSignals, SignalMapping, ERROR_RATIO, EXPORT_SPREAD_MS, LATENCY_P99_MS, REQUEST_RATE,
    RESTARTS, RESTART_WINDOW_MS,
};
pub use graph::ServiceGraph;
pub use insight::InsightBuilder;
pub use learned_edges::{CallEdge, LearnedEdges};
pub use origin::OriginRanker;
pub use recall::{fingerprint, template_shape, IncidentRecall, RecallConfig};
pub use releases::{ReleaseWatch, RETIRED_AFTER_MS};
pub use slo::{BurnWindow, SloBurnDetector};
pub use stack_traces::{StackTraceFolder, MAX_GAP_MS};
#[allow(unused_imports)]
pub use templates::*;
pub use threshold::{ThresholdDetector, ThresholdRule};

use kaizen_model::{Event, Signal, Timestamp};

/// A detector: events and watermarks in, signals out (see the crate docs for the contract).
pub trait Detector {
    /// Short stable name, used in metrics and logs.
    fn name(&self) -> &'static str;
    /// Feeds one event (in event-time order). Events a detector does not handle are ignored.
    fn on_event(&mut self, event: &Event, out: &mut Vec<Signal>);
    /// No event with `ts < watermark` will follow: fire timers due before it.
    fn on_watermark(&mut self, watermark: Timestamp, out: &mut Vec<Signal>);
}
