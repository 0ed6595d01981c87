//! The one normalised input type, and its native JSON Lines encoding (`docs/formats.md`).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{StableHasher, Symbol, Timestamp};

mod native_reader;
mod series_keys;

pub use series_keys::SeriesKeys;

/// One observation from the estate: every source decodes into this.
///
/// In human-readable formats (JSON) it (de)serialises as the flat native object of
/// `docs/formats.md`; in binary formats (timely's exchange between processes) as a compact tuple.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Event time: when it happened, not when kaizen saw it.
    pub ts: Timestamp,
    /// The service the event is about (for spans, the caller; for feedback, may be empty).
    pub service: Symbol,
    /// What kind of event, with its fields.
    pub body: EventBody,
}

/// The kinds of event, each with its own fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum EventBody {
    /// An alert from Alertmanager, Grafana, PagerDuty, CloudWatch, … (firing or resolved).
    Alert(Alert),
    /// One sample of a metric series.
    Metric(Metric),
    /// One log line.
    Log(Log),
    /// One call between services (caller = `service`).
    Span(Span),
    /// A deploy, config change, feature flag flip, scaling action…
    Change(Change),
    /// A responder's verdict on an incident or a remedy.
    Feedback(Feedback),
}

/// The kind of an event, without its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// [`Alert`]
    Alert,
    /// [`Metric`]
    Metric,
    /// [`Log`]
    Log,
    /// [`Span`]
    Span,
    /// [`Change`]
    Change,
    /// [`Feedback`]
    Feedback,
}

impl EventKind {
    /// The `kind` value in the native format.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Alert => "alert",
            EventKind::Metric => "metric",
            EventKind::Log => "log",
            EventKind::Span => "span",
            EventKind::Change => "change",
            EventKind::Feedback => "feedback",
        }
    }
}

/// Sorted `key → value` pairs whose keys and values are both interned (metric and alert labels:
/// low cardinality by contract).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Vec<(Symbol, Symbol)>);

impl Labels {
    /// Builds labels from pairs; sorts by key, last value wins on duplicate keys.
    pub fn from_pairs<I: IntoIterator<Item = (Symbol, Symbol)>>(pairs: I) -> Self {
        let mut v: Vec<(Symbol, Symbol)> = pairs.into_iter().collect();
        v.reverse();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.dedup_by(|a, b| a.0 == b.0);
        Labels(v)
    }
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Symbol> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.0[i].1)
    }
    /// Pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Symbol, &Symbol)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
    /// No labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    fn hash_into(&self, h: &mut StableHasher) {
        for (k, v) in &self.0 {
            h.write_str(k.as_str());
            h.write_str(v.as_str());
        }
    }
}

/// Sorted `key → value` pairs with interned keys and free-form values (log attributes,
/// alert annotations: values are often unique).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes(Vec<(Symbol, String)>);

impl Attributes {
    /// Builds attributes from pairs; sorts by key, last value wins on duplicate keys.
    pub fn from_pairs<I: IntoIterator<Item = (Symbol, String)>>(pairs: I) -> Self {
        let mut v: Vec<(Symbol, String)> = pairs.into_iter().collect();
        v.reverse();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.dedup_by(|a, b| a.0 == b.0);
        Attributes(v)
    }
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }
    /// Pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Symbol, &str)> {
        self.0.iter().map(|(k, v)| (k, v.as_str()))
    }
    /// No attributes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether an alert is firing or has resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// The condition holds.
    Firing,
    /// The condition no longer holds.
    Resolved,
}

/// An alert notification, normalised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Alert rule name (`alertname` in Alertmanager).
    pub name: Symbol,
    /// Firing or resolved.
    pub status: AlertStatus,
    /// `critical`, `warning`, `info`, … as the source says it.
    pub severity: Symbol,
    /// The dedup key: given by the source, or derived from name, service and labels.
    pub fingerprint: String,
    /// Identifying labels.
    pub labels: Labels,
    /// Descriptive annotations (`summary`, `description`, `runbook_url`, …).
    pub annotations: Attributes,
}

impl Alert {
    /// The fingerprint Alertmanager would use when the source gives none: a stable hash of
    /// the alert name, the service and the sorted labels.
    pub fn derive_fingerprint(name: &str, service: &str, labels: &Labels) -> String {
        let mut h = StableHasher::new();
        h.write_str(name);
        h.write_str(service);
        labels.hash_into(&mut h);
        format!("{:016x}", h.finish())
    }
}

/// Whether a metric series is a gauge (a level) or a monotonic counter (resets to zero on restart).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// A level that goes up and down.
    #[default]
    Gauge,
    /// A monotonically increasing count.
    Counter,
}

/// One metric sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Metric name, e.g. `http_error_ratio`.
    pub name: Symbol,
    /// The sample.
    pub value: f64,
    /// Gauge or counter.
    pub metric_kind: MetricKind,
    /// Series labels (the series is `service` + `name` + labels).
    pub labels: Labels,
}

impl Metric {
    /// A stable identity for the series this sample belongs to.
    pub fn series_key(&self, service: &Symbol) -> u64 {
        let mut h = StableHasher::new();
        h.write_str(service.as_str());
        h.write_str(self.name.as_str());
        self.labels.hash_into(&mut h);
        h.finish()
    }
}

/// Log severity.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// trace
    Trace,
    /// debug
    Debug,
    /// info (the default when a source gives none)
    #[default]
    Info,
    /// warn / warning
    Warn,
    /// error
    Error,
    /// fatal / critical / panic / emergency
    Fatal,
}

impl Level {
    /// Reads the usual spellings (`WARNING`, `err`, `crit`, syslog names…); unknown text is `Info`.
    pub fn parse_lenient(s: &str) -> Level {
        // Lower-cased on the stack: this runs per log line, and the longest spelling has 9
        // bytes (a heap copy per line showed in the decode profile).
        let mut buf = [0u8; 9];
        let Some(lower) = buf.get_mut(..s.len()) else {
            return Level::Info;
        };
        lower.copy_from_slice(s.as_bytes());
        lower.make_ascii_lowercase();
        match &*lower {
            b"trace" | b"finest" | b"finer" => Level::Trace,
            b"debug" | b"fine" => Level::Debug,
            b"warn" | b"warning" => Level::Warn,
            b"error" | b"err" | b"severe" => Level::Error,
            b"fatal" | b"critical" | b"crit" | b"panic" | b"emerg" | b"emergency" | b"alert" => {
                Level::Fatal
            }
            _ => Level::Info,
        }
    }
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }
}

/// One log line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Log {
    /// Severity.
    pub level: Level,
    /// The message as written.
    pub message: String,
    /// Structured attributes (host, pod, trace id…).
    pub attributes: Attributes,
}

/// Outcome of a span.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanStatus {
    /// Succeeded.
    #[default]
    Ok,
    /// Failed.
    Error,
}

/// One call from `service` (the caller) to `peer` (the callee).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// The callee service, when the span is a client call.
    pub peer: Option<Symbol>,
    /// Operation name, e.g. `POST /checkout`.
    pub operation: Symbol,
    /// Duration in milliseconds.
    pub duration_ms: f64,
    /// Ok or error.
    pub status: SpanStatus,
    /// Trace id, if known.
    pub trace_id: Option<String>,
}

/// A change to the estate: the usual suspect.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// `deploy`, `config`, `feature_flag`, `scale`, `rollback`, …
    pub change_kind: Symbol,
    /// New version, if any.
    pub version: Option<String>,
    /// Human description.
    pub description: String,
    /// Who or what made it.
    pub author: Option<String>,
}

/// What a responder said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackAction {
    /// Someone is on it.
    Acknowledge,
    /// The incident is over.
    Resolve,
    /// The named remedy fixed it.
    RemedyWorked,
    /// The suggestion did not help.
    NotHelpful,
}

/// A responder's verdict, e.g. from a Slack button.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// The insight / incident id it is about; empty when it names only a service (then it is
    /// about the latest incident involving `Event::service`, as a chat command would be).
    pub incident: String,
    /// What they said.
    pub action: FeedbackAction,
    /// The remedy, for `remedy_worked` / `not_helpful`.
    pub remedy: Option<String>,
    /// Who said it.
    pub user: Option<String>,
}

/// A native JSONL line that could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or a field has the wrong type.
    #[error("{0}")]
    Json(String),
    /// A required field is absent.
    #[error("missing field `{field}` for kind `{kind}`")]
    Missing {
        /// Event kind.
        kind: &'static str,
        /// The absent field.
        field: &'static str,
    },
    /// A field has a value outside its domain.
    #[error("invalid `{field}`: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

impl Event {
    /// The kind of this event.
    pub fn kind(&self) -> EventKind {
        match self.body {
            EventBody::Alert(_) => EventKind::Alert,
            EventBody::Metric(_) => EventKind::Metric,
            EventBody::Log(_) => EventKind::Log,
            EventBody::Span(_) => EventKind::Span,
            EventBody::Change(_) => EventKind::Change,
            EventBody::Feedback(_) => EventKind::Feedback,
        }
    }

    /// Decodes one line of kaizen's native JSON Lines format.
    pub fn from_json(line: &str) -> Result<Event, DecodeError> {
        let mut raw = RawEvent::default();
        if native_reader::read(line, &mut raw).is_none() {
            raw = serde_json::from_str(line).map_err(|e| DecodeError::Json(e.to_string()))?;
        }
        raw.into_event()
    }

    /// [`from_json`](Self::from_json) for a line that is the native format by its keys alone
    /// — an object with `kind` and `ts` and no field the format does not define — and `None`
    /// for any other line (or one the direct reader leaves to serde). Format detection uses
    /// it to skip a separate pass over the keys of the commonest message.
    ///
    /// ```
    /// use kaizen_model::Event;
    /// let line = r#"{"ts":1767607333,"kind":"log","service":"a","message":"m"}"#;
    /// assert!(matches!(Event::from_json_if_native(line), Some(Ok(_))));
    /// assert!(Event::from_json_if_native(r#"{"ts":1,"kind":"log","alerts":[]}"#).is_none());
    /// assert!(Event::from_json_if_native(r#"{"kind":"log","message":"m"}"#).is_none());
    /// ```
    pub fn from_json_if_native(line: &str) -> Option<Result<Event, DecodeError>> {
        let mut raw = RawEvent::default();
        let keys = native_reader::read(line, &mut raw)?;
        (keys.kind_and_ts() && !keys.unknown).then(|| raw.into_event())
    }

    /// Encodes this event as one line of the native format (no trailing newline).
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(192);
        self.write_json(&mut out);
        // serde_json only writes valid UTF-8.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends the native encoding of this event to `out` (no trailing newline).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Serialising plain fields into a Vec cannot fail.
        let _ = serde_json::to_writer(out, self);
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            return (&self.ts, &self.service, &self.body).serialize(serializer);
        }
        let mut m = serializer.serialize_map(None)?;
        m.serialize_entry("ts", &self.ts)?;
        m.serialize_entry("kind", self.kind().as_str())?;
        m.serialize_entry("service", &self.service)?;
        match &self.body {
            EventBody::Alert(a) => {
                m.serialize_entry("name", &a.name)?;
                m.serialize_entry("status", &a.status)?;
                m.serialize_entry("severity", &a.severity)?;
                m.serialize_entry("fingerprint", &a.fingerprint)?;
                if !a.labels.is_empty() {
                    m.serialize_entry("labels", &a.labels)?;
                }
                if !a.annotations.is_empty() {
                    m.serialize_entry("annotations", &a.annotations)?;
                }
            }
            EventBody::Metric(x) => {
                m.serialize_entry("name", &x.name)?;
                m.serialize_entry("value", &x.value)?;
                if x.metric_kind == MetricKind::Counter {
                    m.serialize_entry("metric_kind", &x.metric_kind)?;
                }
                if !x.labels.is_empty() {
                    m.serialize_entry("labels", &x.labels)?;
                }
            }
            EventBody::Log(l) => {
                m.serialize_entry("level", l.level.as_str())?;
                m.serialize_entry("message", &l.message)?;
                if !l.attributes.is_empty() {
                    m.serialize_entry("attributes", &l.attributes)?;
                }
            }
            EventBody::Span(x) => {
                if let Some(peer) = &x.peer {
                    m.serialize_entry("peer", peer)?;
                }
                m.serialize_entry("operation", &x.operation)?;
                m.serialize_entry("duration_ms", &x.duration_ms)?;
                m.serialize_entry("status", &x.status)?;
                if let Some(t) = &x.trace_id {
                    m.serialize_entry("trace_id", t)?;
                }
            }
            EventBody::Change(c) => {
                m.serialize_entry("change_kind", &c.change_kind)?;
                if let Some(v) = &c.version {
                    m.serialize_entry("version", v)?;
                }
                m.serialize_entry("description", &c.description)?;
                if let Some(a) = &c.author {
                    m.serialize_entry("author", a)?;
                }
            }
            EventBody::Feedback(f) => {
                if !f.incident.is_empty() {
                    m.serialize_entry("incident", &f.incident)?;
                }
                m.serialize_entry("action", &f.action)?;
                if let Some(r) = &f.remedy {
                    m.serialize_entry("remedy", r)?;
                }
                if let Some(u) = &f.user {
                    m.serialize_entry("user", u)?;
                }
            }
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if !deserializer.is_human_readable() {
            let (ts, service, body) = <(Timestamp, Symbol, EventBody)>::deserialize(deserializer)?;
            return Ok(Event { ts, service, body });
        }
        RawEvent::deserialize(deserializer)?
            .into_event()
            .map_err(de::Error::custom)
    }
}

/// The flat wire shape: every field of every kind, all optional, strings borrowed from the
/// input where possible. Unknown fields are ignored so producers can add their own.
#[derive(Default, Deserialize)]
struct RawEvent<'a> {
    ts: Option<Timestamp>,
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    service: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    severity: Option<Cow<'a, str>>,
    fingerprint: Option<String>,
    #[serde(default)]
    labels: Option<Labels>,
    #[serde(default)]
    annotations: Option<Attributes>,
    value: Option<f64>,
    #[serde(borrow)]
    metric_kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    level: Option<Cow<'a, str>>,
    message: Option<String>,
    #[serde(default)]
    attributes: Option<Attributes>,
    #[serde(borrow)]
    peer: Option<Cow<'a, str>>,
    #[serde(borrow)]
    operation: Option<Cow<'a, str>>,
    duration_ms: Option<f64>,
    trace_id: Option<String>,
    #[serde(borrow)]
    change_kind: Option<Cow<'a, str>>,
    version: Option<String>,
    description: Option<String>,
    author: Option<String>,
    incident: Option<String>,
    #[serde(borrow)]
    action: Option<Cow<'a, str>>,
    remedy: Option<String>,
    user: Option<String>,
}

fn need<T>(v: Option<T>, kind: &'static str, field: &'static str) -> Result<T, DecodeError> {
    v.ok_or(DecodeError::Missing { kind, field })
}

impl RawEvent<'_> {
    fn into_event(self) -> Result<Event, DecodeError> {
        let kind_text = self.kind.as_deref().ok_or(DecodeError::Missing {
            kind: "event",
            field: "kind",
        })?;
        let kind = match kind_text {
            "alert" => "alert",
            "metric" => "metric",
            "log" => "log",
            "span" => "span",
            "change" => "change",
            "feedback" => "feedback",
            other => {
                return Err(DecodeError::Invalid {
                    field: "kind",
                    reason: format!(
                        "unknown kind {other:?} (expected alert, metric, log, span, change or feedback)"
                    ),
                })
            }
        };
        let ts = need(self.ts, kind, "ts")?;
        let service = match (&self.service, kind) {
            (Some(s), _) if !s.is_empty() => Symbol::new(s),
            (_, "feedback") => Symbol::default(),
            _ => {
                return Err(DecodeError::Missing {
                    kind,
                    field: "service",
                })
            }
        };
        let body = match kind {
            "alert" => {
                let name = Symbol::new(&need(self.name, kind, "name")?);
                let status = match self.status.as_deref() {
                    None | Some("firing") => AlertStatus::Firing,
                    Some("resolved") => AlertStatus::Resolved,
                    Some(other) => {
                        return Err(DecodeError::Invalid {
                            field: "status",
                            reason: format!("{other:?} (expected firing or resolved)"),
                        })
                    }
                };
                let labels = self.labels.unwrap_or_default();
                let severity = self
                    .severity
                    .as_deref()
                    .or_else(|| labels.get("severity").map(Symbol::as_str))
                    .map(Symbol::new)
                    .unwrap_or_else(|| Symbol::new("warning"));
                let fingerprint = self.fingerprint.unwrap_or_else(|| {
                    Alert::derive_fingerprint(name.as_str(), service.as_str(), &labels)
                });
                EventBody::Alert(Alert {
                    name,
                    status,
                    severity,
                    fingerprint,
                    labels,
                    annotations: self.annotations.unwrap_or_default(),
                })
            }
            "metric" => {
                let value = need(self.value, kind, "value")?;
                let metric_kind = match self.metric_kind.as_deref() {
                    None | Some("gauge") => MetricKind::Gauge,
                    Some("counter") => MetricKind::Counter,
                    Some(other) => {
                        return Err(DecodeError::Invalid {
                            field: "metric_kind",
                            reason: format!("{other:?} (expected gauge or counter)"),
                        })
                    }
                };
                EventBody::Metric(Metric {
                    name: Symbol::new(&need(self.name, kind, "name")?),
                    value,
                    metric_kind,
                    labels: self.labels.unwrap_or_default(),
                })
            }
            "log" => EventBody::Log(Log {
                level: self
                    .level
                    .as_deref()
                    .map(Level::parse_lenient)
                    .unwrap_or_default(),
                message: need(self.message, kind, "message")?,
                attributes: self.attributes.unwrap_or_default(),
            }),
            "span" => EventBody::Span(Span {
                peer: self.peer.as_deref().map(Symbol::new),
                operation: Symbol::new(self.operation.as_deref().unwrap_or("")),
                duration_ms: self.duration_ms.unwrap_or(0.0),
                status: match self.status.as_deref() {
                    None | Some("ok") | Some("unset") => SpanStatus::Ok,
                    Some("error") => SpanStatus::Error,
                    Some(other) => {
                        return Err(DecodeError::Invalid {
                            field: "status",
                            reason: format!("{other:?} (expected ok or error)"),
                        })
                    }
                },
                trace_id: self.trace_id,
            }),
            "change" => EventBody::Change(Change {
                change_kind: Symbol::new(self.change_kind.as_deref().unwrap_or("deploy")),
                version: self.version,
                description: self.description.unwrap_or_default(),
                author: self.author,
            }),
            _ => EventBody::Feedback(Feedback {
                incident: match self.incident {
                    Some(id) if !id.is_empty() => id,
                    _ if !service.is_empty() => String::new(),
                    _ => {
                        return Err(DecodeError::Missing {
                            kind,
                            field: "incident (or service)",
                        })
                    }
                },
                action: match need(self.action, kind, "action")?.as_ref() {
                    "acknowledge" | "ack" => FeedbackAction::Acknowledge,
                    "resolve" => FeedbackAction::Resolve,
                    "remedy_worked" => FeedbackAction::RemedyWorked,
                    "not_helpful" => FeedbackAction::NotHelpful,
                    other => {
                        return Err(DecodeError::Invalid {
                            field: "action",
                            reason: format!(
                                "{other:?} (expected acknowledge, resolve, remedy_worked or not_helpful)"
                            ),
                        })
                    }
                },
                remedy: self.remedy,
                user: self.user,
            }),
        };
        Ok(Event { ts, service, body })
    }
}

/// Labels and attributes are JSON objects in human-readable formats and pair lists otherwise.
macro_rules! pairs_serde {
    ($ty:ident, $val:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if !serializer.is_human_readable() {
                    return self.0.serialize(serializer);
                }
                let mut m = serializer.serialize_map(Some(self.0.len()))?;
                for (k, v) in &self.0 {
                    m.serialize_entry(k.as_str(), v)?;
                }
                m.end()
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if !deserializer.is_human_readable() {
                    return Ok($ty(Vec::deserialize(deserializer)?));
                }
                let pairs = deserializer.deserialize_map(PairVisitor::<$val>(PhantomData))?;
                Ok($ty::from_pairs(pairs))
            }
        }
    };
}
pairs_serde!(Labels, Symbol);
pairs_serde!(Attributes, String);

/// Reads a JSON object of scalars as `(key, text)` pairs: strings as they are, numbers and
/// booleans as their JSON text, so `{"code":503}` and `{"code":"503"}` mean the same.
struct PairVisitor<V>(PhantomData<V>);

trait FromText: Sized {
    fn from_text(s: &str) -> Self;
}
impl FromText for Symbol {
    fn from_text(s: &str) -> Self {
        Symbol::new(s)
    }
}
impl FromText for String {
    fn from_text(s: &str) -> Self {
        s.to_owned()
    }
}

impl<'de, V: FromText> Visitor<'de> for PairVisitor<V> {
    type Value = Vec<(Symbol, V)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of string, number or boolean values")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(4));
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let value: ScalarText<'de> = map.next_value()?;
            out.push((Symbol::new(&key), V::from_text(&value.0)));
        }
        Ok(out)
    }
}

/// A JSON scalar as text.
struct ScalarText<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for ScalarText<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ScalarText<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number, boolean or null")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ScalarText(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ScalarText(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(ScalarText(Cow::Owned(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(ScalarText(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(ScalarText(Cow::Owned(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ScalarText(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(ScalarText(Cow::Owned(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ScalarText(Cow::Borrowed("")))
            }
        }
        d.deserialize_any(V)
    }
}
