//! kaizen's data model: the one normalised [`Event`] type every source decodes into, the
//! [`Signal`]s detectors conclude, the [`Incident`]s correlation builds and the [`Insight`]s
//! people read — plus event time ([`Timestamp`]), interned strings ([`Symbol`]) and the service
//! [`Topology`].
//!
//! This crate is for types and their native JSON Lines encoding (see `docs/formats.md`).
//! It is not for I/O, detection or dataflow: it depends on neither timely nor any connector, so
//! every other crate can share it.
//!
//! ```
//! use kaizen_model::{Event, EventBody};
//! let line = r#"{"ts":"2026-01-05T10:00:00Z","kind":"metric","service":"checkout","name":"error_ratio","value":0.12}"#;
//! let event = Event::from_json(line).unwrap();
//! assert_eq!(event.service.as_str(), "checkout");
//! assert!(matches!(event.body, EventBody::Metric(ref m) if m.value == 0.12));
//! assert_eq!(Event::from_json(&event.to_json()).unwrap(), event);
//! ```

pub mod duration_serde;
mod event;
mod hash;
mod history;
mod incident;
mod insight;
mod signal;
mod symbol;
mod time;
mod topology;

pub use event::{
    Alert, AlertStatus, Attributes, Change, DecodeError, Event, EventBody, EventKind, Feedback,
    FeedbackAction, Labels, Level, Log, Metric, MetricKind, SeriesKeys, Span, SpanStatus,
};
pub use hash::{FxBuildHasher, FxHasher, Prehashed, PrehashedMap, StableHasher};
pub use history::{Fingerprint, PastIncident};
pub use incident::{ChangeRef, Incident, IncidentStatus, OriginCandidate, SignalRef};
pub use insight::{Explanation, Insight, Novelty, SimilarIncident, TimelineEntry};
pub use signal::{Severity, Signal, SignalKind, SignalState};
pub use symbol::Symbol;
pub use time::{peek_ts, Timestamp, TimestampError};
pub use topology::{ServiceInfo, Slo, Topology, TopologyError};
