//! What detectors conclude.

use serde::{Deserialize, Serialize};

use crate::{Symbol, Timestamp};

/// How bad something is. Ordered: `Info < Warning < Critical`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing.
    #[default]
    Info,
    /// Needs attention soon.
    Warning,
    /// Wake someone up.
    Critical,
}

impl Severity {
    /// Reads alert severities as sources spell them (`page`, `high`, `P1`, `error`, …).
    pub fn parse_lenient(s: &str) -> Severity {
        match s.to_ascii_lowercase().as_str() {
            "critical" | "crit" | "page" | "high" | "p1" | "p2" | "error" | "fatal" | "sev1"
            | "sev2" | "disaster" => Severity::Critical,
            "warning" | "warn" | "medium" | "p3" | "average" | "sev3" | "minor" | "major" => {
                Severity::Warning
            }
            _ => Severity::Info,
        }
    }
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Which detector produced a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// An alert (deduplicated) fires or resolves.
    Alert,
    /// A metric series left (or returned to) its normal range.
    MetricAnomaly,
    /// A log template is new, spiking or error-level.
    LogTemplate,
    /// A user rule matched.
    Rule,
    /// A service is burning its error budget too fast (multi-window, multi-burn-rate).
    SloBurn,
    /// A change (deploy, config, flag) happened: a suspect, not a symptom.
    Change,
}

impl SignalKind {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::Alert => "alert",
            SignalKind::MetricAnomaly => "metric_anomaly",
            SignalKind::LogTemplate => "log_template",
            SignalKind::Rule => "rule",
            SignalKind::SloBurn => "slo_burn",
            SignalKind::Change => "change",
        }
    }
}

/// Where in its life a signal is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalState {
    /// The condition began.
    Open,
    /// The condition ended.
    Close,
    /// A point-in-time fact with no duration (a deploy).
    Instant,
}

/// A detector's conclusion about one service: small, typed and keyed.
///
/// `(kind, key)` identifies the condition across its `Open` and `Close`; `ts` is when this state
/// change happened in event time and `onset` when the condition began.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// Event time of this state change.
    pub ts: Timestamp,
    /// When the condition began (equal to `ts` for `Open` and `Instant`).
    pub onset: Timestamp,
    /// The service it is about.
    pub service: Symbol,
    /// Which detector.
    pub kind: SignalKind,
    /// Open, close or instant.
    pub state: SignalState,
    /// Identity of the condition within its kind (alert fingerprint, series id, …).
    pub key: String,
    /// Human name: alert name, metric name, template, rule name, change kind.
    pub name: Symbol,
    /// How bad.
    pub severity: Severity,
    /// One line for a person.
    pub summary: String,
    /// The observed value that made it fire, where there is one.
    pub value: Option<f64>,
    /// How far from normal, in units of the usual spread (never less than 1 % of the usual
    /// level), for detectors that learn a baseline; 0 when the detector has no such measure.
    /// Origin ranking compares it across services.
    #[serde(default)]
    pub strength: f64,
}
