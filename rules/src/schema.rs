//! The streams rules read, as tables with typed columns.
//!
//! A column is read straight from the event (no row is materialised), so a rule that filters
//! out an event costs only the columns its `WHERE` touches.

use kaizen_model::{EventBody, EventKind, Insight, Signal, Symbol};

use crate::value::{Type, Value};

/// A stream a rule can read (`FROM alerts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamName {
    /// Alerts from Alertmanager, Grafana, PagerDuty, CloudWatch (normalised).
    Alerts,
    /// Metric samples.
    Metrics,
    /// Log lines, with their mined template.
    Logs,
    /// Trace spans.
    Spans,
    /// Deploys, config changes, flags.
    Changes,
    /// Every event of the kinds above (for sequences across kinds).
    Events,
    /// Detectors' signals (anomalies, new templates, alerts, SLO burns).
    Signals,
    /// Every version of every incident correlation produces (rules over it may only
    /// `EMIT INSIGHT`: a signal would feed back into the correlation that made the incident).
    Incidents,
}

impl StreamName {
    /// Every stream, in documentation order.
    pub const ALL: [StreamName; 8] = [
        StreamName::Alerts,
        StreamName::Metrics,
        StreamName::Logs,
        StreamName::Spans,
        StreamName::Changes,
        StreamName::Events,
        StreamName::Signals,
        StreamName::Incidents,
    ];

    /// The table name.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamName::Alerts => "alerts",
            StreamName::Metrics => "metrics",
            StreamName::Logs => "logs",
            StreamName::Spans => "spans",
            StreamName::Changes => "changes",
            StreamName::Events => "events",
            StreamName::Signals => "signals",
            StreamName::Incidents => "incidents",
        }
    }

    /// Looks a table name up.
    pub fn parse(name: &str) -> Option<StreamName> {
        StreamName::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }

    /// Does an event of this kind belong to the stream?
    pub fn accepts(self, kind: EventKind) -> bool {
        matches!(
            (self, kind),
            (StreamName::Alerts, EventKind::Alert)
                | (StreamName::Metrics, EventKind::Metric)
                | (StreamName::Logs, EventKind::Log)
                | (StreamName::Spans, EventKind::Span)
                | (StreamName::Changes, EventKind::Change)
        ) || (self == StreamName::Events && kind != EventKind::Feedback)
    }

    /// The columns of this table.
    pub fn columns(self) -> &'static [Column] {
        use Column::*;
        match self {
            StreamName::Alerts => &[
                Ts,
                Service,
                Kind,
                Name,
                Status,
                Severity,
                Fingerprint,
                Labels,
                Annotations,
            ],
            StreamName::Metrics => &[Ts, Service, Kind, Name, Value, MetricKind, Labels, Series],
            StreamName::Logs => &[
                Ts, Service, Kind, Level, Message, Template, TemplateId, Labels,
            ],
            StreamName::Spans => &[
                Ts, Service, Kind, Name, Operation, Peer, DurationMs, Status, TraceId,
            ],
            StreamName::Changes => &[
                Ts,
                Service,
                Kind,
                Name,
                ChangeKind,
                Version,
                Description,
                Author,
            ],
            StreamName::Events => &[
                Ts, Service, Kind, Name, Value, Status, Severity, Level, Message, Template,
                TemplateId, Peer, DurationMs, ChangeKind, Version, Labels,
            ],
            StreamName::Signals => &[
                Ts, Service, Kind, Name, State, Severity, Summary, Value, Strength, Key, Onset,
            ],
            StreamName::Incidents => &[
                Ts,
                Id,
                Service,
                Kind,
                Name,
                Summary,
                Status,
                Severity,
                Onset,
                DurationMs,
                ServiceCount,
                Impacted,
                ImpactedCount,
                Novelty,
                Remedy,
                Similarity,
            ],
        }
    }

    /// The column of this table with `name`, if any.
    pub fn column(self, name: &str) -> Option<Column> {
        self.columns()
            .iter()
            .copied()
            .find(|c| c.as_str().eq_ignore_ascii_case(name))
    }
}

/// A column of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Column {
    Ts,
    Service,
    Kind,
    Name,
    Value,
    Status,
    Severity,
    Level,
    Message,
    Template,
    TemplateId,
    Fingerprint,
    MetricKind,
    Operation,
    Peer,
    DurationMs,
    TraceId,
    ChangeKind,
    Version,
    Description,
    Author,
    Labels,
    Annotations,
    State,
    Summary,
    Strength,
    Key,
    Onset,
    Series,
    Id,
    ServiceCount,
    Impacted,
    ImpactedCount,
    Novelty,
    Remedy,
    Similarity,
}

impl Column {
    /// The column's name in rules.
    pub fn as_str(self) -> &'static str {
        use Column::*;
        match self {
            Ts => "ts",
            Service => "service",
            Kind => "kind",
            Name => "name",
            Value => "value",
            Status => "status",
            Severity => "severity",
            Level => "level",
            Message => "message",
            Template => "template",
            TemplateId => "template_id",
            Fingerprint => "fingerprint",
            MetricKind => "metric_kind",
            Operation => "operation",
            Peer => "peer",
            DurationMs => "duration_ms",
            TraceId => "trace_id",
            ChangeKind => "change_kind",
            Version => "version",
            Description => "description",
            Author => "author",
            Labels => "labels",
            Annotations => "annotations",
            State => "state",
            Summary => "summary",
            Strength => "strength",
            Key => "key",
            Onset => "onset",
            Series => "series",
            Id => "id",
            ServiceCount => "service_count",
            Impacted => "impacted",
            ImpactedCount => "impacted_count",
            Novelty => "novelty",
            Remedy => "remedy",
            Similarity => "similarity",
        }
    }

    /// Its static type.
    pub fn ty(self) -> Type {
        use Column::*;
        match self {
            Ts | Onset => Type::Time,
            Value | DurationMs | Strength | ServiceCount | ImpactedCount | Similarity => Type::Num,
            Labels | Annotations => Type::Map,
            _ => Type::Str,
        }
    }

    /// Does reading it need the log's mined template?
    pub fn needs_template(self) -> bool {
        matches!(self, Column::Template | Column::TemplateId)
    }
}

/// A log line's mined template, when a rule needs it.
#[derive(Clone, Copy, Debug)]
pub struct TemplateRef<'a> {
    /// Stable id within the service (`T12`).
    pub id: u32,
    /// The template text with `<*>` for parameters.
    pub text: &'a str,
}

/// What a rule reads one row from.
#[derive(Clone, Copy, Debug)]
pub enum Row<'a> {
    /// An event (a log line with its template, when mined).
    Event(&'a kaizen_model::Event, Option<TemplateRef<'a>>),
    /// A detector's signal.
    Signal(&'a Signal),
    /// A version of an incident.
    Incident(&'a IncidentRow<'a>),
}

/// An incident version as the `incidents` table reads it.
#[derive(Debug)]
pub struct IncidentRow<'a> {
    /// The version.
    pub insight: &'a Insight,
    /// Its service: the probable origin, else the first service with signals.
    pub service: Symbol,
}

impl<'a> IncidentRow<'a> {
    /// Reads `insight` as a row.
    pub fn new(insight: &'a Insight) -> IncidentRow<'a> {
        let service = insight
            .origin
            .first()
            .map(|o| o.service.clone())
            .or_else(|| insight.services.first().cloned())
            .unwrap_or_else(|| Symbol::new("unknown"));
        IncidentRow { insight, service }
    }
}

impl Row<'_> {
    /// The row's event time in ms.
    pub fn ts_millis(&self) -> u64 {
        match self {
            Row::Event(e, _) => e.ts.as_millis(),
            Row::Signal(s) => s.ts.as_millis(),
            Row::Incident(i) => i.insight.updated_at.as_millis(),
        }
    }

    /// The service the row is about.
    pub fn service(&self) -> &Symbol {
        match self {
            Row::Event(e, _) => &e.service,
            Row::Signal(s) => &s.service,
            Row::Incident(i) => &i.service,
        }
    }

    /// Reads a column; NULL where the column does not apply to this row.
    pub fn get(&self, column: Column) -> Value {
        match self {
            Row::Event(e, tpl) => event_column(e, *tpl, column),
            Row::Signal(s) => signal_column(s, column),
            Row::Incident(i) => incident_column(i, column),
        }
    }

    /// Reads a text column without allocating, where the row holds it as text.
    pub fn text(&self, column: Column) -> Option<&str> {
        use Column as C;
        let Row::Event(e, tpl) = self else {
            return match (self, column) {
                (Row::Signal(s), C::Service) => Some(s.service.as_str()),
                (Row::Signal(s), C::Name) => Some(s.name.as_str()),
                (Row::Signal(s), C::Summary) => Some(&s.summary),
                (Row::Signal(s), C::Kind) => Some(s.kind.as_str()),
                (Row::Signal(s), C::Severity) => Some(s.severity.as_str()),
                (Row::Incident(i), C::Service) => Some(i.service.as_str()),
                (Row::Incident(i), C::Id) => Some(&i.insight.id),
                (Row::Incident(i), C::Name | C::Summary) => Some(&i.insight.title),
                (Row::Incident(_), C::Kind) => Some("incident"),
                (Row::Incident(i), C::Severity) => Some(i.insight.severity.as_str()),
                (Row::Incident(i), C::Status) => Some(i.insight.status.as_str()),
                _ => None,
            };
        };
        if column == C::Service {
            return Some(e.service.as_str());
        }
        if column == C::Kind {
            return Some(e.kind().as_str());
        }
        match (&e.body, column) {
            (EventBody::Alert(a), C::Name) => Some(a.name.as_str()),
            (EventBody::Alert(a), C::Severity) => Some(a.severity.as_str()),
            (EventBody::Alert(a), C::Fingerprint) => Some(&a.fingerprint),
            (EventBody::Metric(m), C::Name) => Some(m.name.as_str()),
            (EventBody::Log(l), C::Message) => Some(&l.message),
            (EventBody::Log(l), C::Level) => Some(l.level.as_str()),
            (EventBody::Log(_), C::Template) => tpl.map(|t| t.text),
            (EventBody::Span(s), C::Name | C::Operation) => Some(s.operation.as_str()),
            (EventBody::Span(s), C::Peer) => s.peer.as_ref().map(Symbol::as_str),
            (EventBody::Change(c), C::Name | C::ChangeKind) => Some(c.change_kind.as_str()),
            (EventBody::Change(c), C::Description) => Some(&c.description),
            _ => None,
        }
    }

    /// Reads `labels['key']` (alert labels, metric labels, log attributes) or
    /// `annotations['key']`.
    pub fn label(&self, map: Column, key: &str) -> Value {
        let Row::Event(e, _) = self else {
            return Value::Null;
        };
        match (&e.body, map) {
            (EventBody::Alert(a), Column::Annotations) => {
                a.annotations.get(key).map_or(Value::Null, Value::str)
            }
            (EventBody::Alert(a), _) => a.labels.get(key).cloned().map_or(Value::Null, Value::Sym),
            (EventBody::Metric(m), Column::Labels) => {
                m.labels.get(key).cloned().map_or(Value::Null, Value::Sym)
            }
            (EventBody::Log(l), Column::Labels) => {
                l.attributes.get(key).map_or(Value::Null, Value::str)
            }
            _ => Value::Null,
        }
    }
}

/// A metric's series, `name{k="v",…}`, as Prometheus writes it.
pub(crate) fn series_text(m: &kaizen_model::Metric) -> String {
    let labels: Vec<String> = m
        .labels
        .iter()
        .map(|(k, v)| format!("{}=\"{}\"", k.as_str(), v.as_str()))
        .collect();
    format!("{}{{{}}}", m.name.as_str(), labels.join(","))
}

fn sym(s: &Symbol) -> Value {
    Value::Sym(s.clone())
}

fn opt_str(s: &Option<String>) -> Value {
    s.as_deref().map_or(Value::Null, Value::str)
}

fn event_column(e: &kaizen_model::Event, tpl: Option<TemplateRef<'_>>, column: Column) -> Value {
    use Column as C;
    match column {
        C::Ts => return Value::Num(e.ts.as_millis() as f64),
        C::Service => return sym(&e.service),
        C::Kind => return Value::Static(e.kind().as_str()),
        _ => {}
    }
    match (&e.body, column) {
        (EventBody::Alert(a), C::Name) => sym(&a.name),
        (EventBody::Alert(a), C::Status) => Value::Static(match a.status {
            kaizen_model::AlertStatus::Firing => "firing",
            kaizen_model::AlertStatus::Resolved => "resolved",
        }),
        (EventBody::Alert(a), C::Severity) => sym(&a.severity),
        (EventBody::Alert(a), C::Fingerprint) => Value::str(&a.fingerprint),
        (EventBody::Metric(m), C::Name) => sym(&m.name),
        (EventBody::Metric(m), C::Value) => Value::Num(m.value),
        (EventBody::Metric(m), C::Series) => Value::Str(series_text(m).into()),
        (EventBody::Metric(m), C::MetricKind) => Value::Static(match m.metric_kind {
            kaizen_model::MetricKind::Gauge => "gauge",
            kaizen_model::MetricKind::Counter => "counter",
        }),
        (EventBody::Log(l), C::Level) => Value::Static(l.level.as_str()),
        (EventBody::Log(l), C::Message) => Value::str(&l.message),
        (EventBody::Log(_), C::Template) => tpl.map_or(Value::Null, |t| Value::str(t.text)),
        (EventBody::Log(_), C::TemplateId) => {
            tpl.map_or(Value::Null, |t| Value::Str(format!("T{}", t.id).into()))
        }
        (EventBody::Span(s), C::Name | C::Operation) => sym(&s.operation),
        (EventBody::Span(s), C::Peer) => s.peer.as_ref().map_or(Value::Null, sym),
        (EventBody::Span(s), C::DurationMs) => Value::Num(s.duration_ms),
        (EventBody::Span(s), C::Status) => Value::Static(match s.status {
            kaizen_model::SpanStatus::Ok => "ok",
            kaizen_model::SpanStatus::Error => "error",
        }),
        (EventBody::Span(s), C::TraceId) => opt_str(&s.trace_id),
        (EventBody::Change(c), C::Name | C::ChangeKind) => sym(&c.change_kind),
        (EventBody::Change(c), C::Version) => opt_str(&c.version),
        (EventBody::Change(c), C::Description) => Value::str(&c.description),
        (EventBody::Change(c), C::Author) => opt_str(&c.author),
        _ => Value::Null,
    }
}

fn signal_column(s: &Signal, column: Column) -> Value {
    use Column as C;
    match column {
        C::Ts => Value::Num(s.ts.as_millis() as f64),
        C::Onset => Value::Num(s.onset.as_millis() as f64),
        C::Service => sym(&s.service),
        C::Kind => Value::Static(s.kind.as_str()),
        C::Name => sym(&s.name),
        C::State => Value::Static(match s.state {
            kaizen_model::SignalState::Open => "open",
            kaizen_model::SignalState::Close => "close",
            kaizen_model::SignalState::Instant => "instant",
        }),
        C::Severity => Value::Static(s.severity.as_str()),
        C::Summary => Value::str(&s.summary),
        C::Value => s.value.map_or(Value::Null, Value::Num),
        C::Strength => Value::Num(s.strength),
        C::Key => Value::str(&s.key),
        _ => Value::Null,
    }
}

fn incident_column(row: &IncidentRow<'_>, column: Column) -> Value {
    use Column as C;
    let i = row.insight;
    let best = i.similar.first();
    match column {
        C::Ts => Value::Num(i.updated_at.as_millis() as f64),
        C::Onset => Value::Num(i.opened_at.as_millis() as f64),
        C::DurationMs => Value::Num(
            i.updated_at
                .as_millis()
                .saturating_sub(i.opened_at.as_millis()) as f64,
        ),
        C::Id => Value::str(&i.id),
        C::Service => sym(&row.service),
        C::Kind => Value::Static("incident"),
        C::Name | C::Summary => Value::str(&i.title),
        C::Status => Value::Static(i.status.as_str()),
        C::Severity => Value::Static(i.severity.as_str()),
        C::ServiceCount => Value::Num(i.services.len() as f64),
        C::Impacted => {
            let names: Vec<&str> = i.impacted.iter().map(Symbol::as_str).collect();
            Value::Str(names.join(",").into())
        }
        C::ImpactedCount => Value::Num(i.impacted.len() as f64),
        C::Novelty => i.novelty.map_or(Value::Null, |n| {
            Value::Static(match n {
                kaizen_model::Novelty::New => "new",
                kaizen_model::Novelty::Rare => "rare",
                kaizen_model::Novelty::Frequent => "frequent",
            })
        }),
        C::Remedy => best
            .and_then(|s| s.remedy.as_deref())
            .map_or(Value::Null, Value::str),
        C::Similarity => best.map_or(Value::Null, |s| Value::Num(s.similarity)),
        _ => Value::Null,
    }
}
