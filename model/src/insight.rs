//! What a person reads.

use serde::{Deserialize, Serialize};

use crate::{ChangeRef, IncidentStatus, OriginCandidate, Severity, Symbol, Timestamp};

/// A past incident that looks like this one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimilarIncident {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Similarity in `[0, 1]`.
    pub similarity: f64,
    /// What fixed it, if anyone said.
    pub remedy: Option<String>,
    /// How long it took to resolve, in seconds.
    pub resolved_in_secs: Option<u64>,
}

/// How often incidents like this one happened before (PagerDuty's outlier classes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Novelty {
    /// Nothing similar in the history.
    New,
    /// A few similar past incidents.
    Rare,
    /// Happens regularly.
    Frequent,
}

/// One line of an incident's story.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// When.
    pub ts: Timestamp,
    /// What happened.
    pub text: String,
}

/// An incident as responders read it: what sinks render. Re-emitting the same `(id, version)`
/// is harmless — sinks are idempotent on that pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Insight {
    /// Deterministic id (`inc-` + 16 hex digits).
    pub id: String,
    /// Version, from 1.
    pub version: u32,
    /// Open, updated or resolved.
    pub status: IncidentStatus,
    /// One line.
    pub title: String,
    /// Highest severity.
    pub severity: Severity,
    /// Services with signals, sorted.
    pub services: Vec<Symbol>,
    /// User-facing services affected, sorted.
    pub impacted: Vec<Symbol>,
    /// How they are affected, one line per service, in words a responder reads at a glance.
    #[serde(default)]
    pub impact: Vec<String>,
    /// Ranked probable origins with evidence.
    pub origin: Vec<OriginCandidate>,
    /// Recent changes near the origin.
    pub suspect_changes: Vec<ChangeRef>,
    /// Similar past incidents and what fixed them, most similar first.
    pub similar: Vec<SimilarIncident>,
    /// How often something like this happened before (absent when recall is off).
    #[serde(default)]
    pub novelty: Option<Novelty>,
    /// What happened, in order.
    pub timeline: Vec<TimelineEntry>,
    /// Event time of the first signal.
    pub opened_at: Timestamp,
    /// Event time of this version.
    pub updated_at: Timestamp,
    /// Event time of resolution.
    pub resolved_at: Option<Timestamp>,
    /// Why rules fired, for insights that rules contributed to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub explain: Vec<Explanation>,
}

/// Why a rule fired: which rule, which window and group, which values and which input events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// Rule name.
    pub rule: String,
    /// Where the rule is defined (`file:line`).
    pub source: String,
    /// The group (or partition) the rule fired for, as column = value.
    pub group: Vec<(String, String)>,
    /// The window evaluated, for windowed rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<(Timestamp, Timestamp)>,
    /// The rule's result columns when it fired.
    pub values: Vec<(String, String)>,
    /// The first input events that contributed (time, kind, service and a short text).
    pub events: Vec<String>,
    /// How many input events contributed in all.
    pub event_count: u64,
}
