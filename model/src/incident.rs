//! A set of correlated signals with a lifecycle.

use serde::{Deserialize, Serialize};

use crate::{Severity, SignalKind, Symbol, Timestamp};

/// Lifecycle of an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// First emitted.
    Open,
    /// Emitted again with new content while still open.
    Updated,
    /// All its signals cleared and stayed clear for the quiet period.
    Resolved,
}

impl IncidentStatus {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Updated => "updated",
            IncidentStatus::Resolved => "resolved",
        }
    }
}

/// A signal as an incident remembers it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalRef {
    /// Which detector.
    pub kind: SignalKind,
    /// Identity within the kind.
    pub key: String,
    /// Service.
    pub service: Symbol,
    /// Alert / metric / template / rule name.
    pub name: Symbol,
    /// How bad.
    pub severity: Severity,
    /// One line for a person.
    pub summary: String,
    /// When it began.
    pub onset: Timestamp,
    /// When it cleared, if it has.
    pub ended: Option<Timestamp>,
    /// Peak observed value, where there is one.
    pub value: Option<f64>,
    /// Largest deviation from normal seen (see `Signal::strength`).
    #[serde(default)]
    pub strength: f64,
}

/// One candidate for where the incident started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OriginCandidate {
    /// The service.
    pub service: Symbol,
    /// Relative confidence in `[0, 1]`; candidates are sorted by it, highest first.
    pub score: f64,
    /// Why, in words a responder reads at a glance.
    pub evidence: Vec<String>,
    /// The largest deviation from normal among its signals, in units of the series' usual
    /// spread (learned-baseline signals only): comparable across incidents, so concurrent
    /// incidents can be triaged by how abnormal they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deviation: Option<f64>,
}

/// A change near the incident in time and in the graph: a suspect.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeRef {
    /// When it happened.
    pub ts: Timestamp,
    /// Where.
    pub service: Symbol,
    /// `deploy`, `config`, …
    pub change_kind: Symbol,
    /// New version, if any.
    pub version: Option<String>,
    /// What it was.
    pub description: String,
}

/// A set of correlated signals: what is one problem.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Deterministic id: the same input always gives the same id.
    pub id: String,
    /// Starts at 1; bumped on every emitted change.
    pub version: u32,
    /// Open, updated or resolved.
    pub status: IncidentStatus,
    /// Highest severity among its signals.
    pub severity: Severity,
    /// Event time of the first signal.
    pub opened_at: Timestamp,
    /// Event time of this version.
    pub updated_at: Timestamp,
    /// Event time it resolved.
    pub resolved_at: Option<Timestamp>,
    /// Every service with a signal, sorted.
    pub services: Vec<Symbol>,
    /// User-facing services affected, sorted.
    pub impacted: Vec<Symbol>,
    /// Ranked probable origins.
    pub origin: Vec<OriginCandidate>,
    /// The signals, in onset order.
    pub signals: Vec<SignalRef>,
    /// Suspect changes, most recent first.
    pub changes: Vec<ChangeRef>,
}
