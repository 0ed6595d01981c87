//! Evidence: a short description of an input row, for explanations (`12:03:04 #17 log
//! payments: error Connection pool exhausted…`).
//!
//! Rows are described far more often than an explanation is written (a window keeps the first
//! few of its rows whether or not it ever fires), so a description keeps the few fields it
//! shows and is only formatted when it is displayed. One description is shared (by reference
//! count) by every rule that keeps the same row.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use kaizen_model::{
    AlertStatus, EventBody, EventKind, IncidentStatus, Level, SignalKind, SpanStatus, Symbol,
};

use crate::schema::Row;
use crate::value::Value;

/// Characters of free text (log messages, signal summaries) a description keeps.
const MAX: usize = 100;

/// A described input row; displays as the text explanations show.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Evidence(Arc<Described>);

#[derive(Debug, Serialize, Deserialize)]
enum Described {
    /// An input event.
    Event {
        ts: u64,
        seq: u64,
        kind: EventKind,
        service: Symbol,
        what: What,
    },
    /// A detector's signal.
    Signal {
        ts: u64,
        kind: SignalKind,
        service: Symbol,
        /// Clipped.
        summary: String,
    },
    /// A version of an incident.
    Incident {
        ts: u64,
        id: String,
        status: IncidentStatus,
        service: Symbol,
        /// Clipped.
        title: String,
    },
    /// Text already written (joined pairs).
    Text(Arc<str>),
}

/// The part of an event a description shows.
#[derive(Debug, Serialize, Deserialize)]
enum What {
    Alert(Symbol, AlertStatus),
    Metric(Symbol, f64),
    /// Level and the clipped message.
    Log(Level, String),
    Span {
        operation: Symbol,
        peer: Option<Symbol>,
        duration_ms: f64,
        status: SpanStatus,
    },
    Change(Symbol, Option<String>),
    Nothing,
}

/// `s`, clipped to [`MAX`] characters with `…` after.
fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn clock(ms: u64) -> String {
    kaizen_model::Timestamp::from_millis(ms).clock()
}

impl Evidence {
    /// Describes `row`, input position `seq`.
    pub fn of(row: &Row<'_>, seq: u64) -> Evidence {
        Evidence(Arc::new(match row {
            Row::Event(e, _) => Described::Event {
                ts: e.ts.as_millis(),
                seq,
                kind: e.kind(),
                service: e.service.clone(),
                what: match &e.body {
                    EventBody::Alert(a) => What::Alert(a.name.clone(), a.status),
                    EventBody::Metric(m) => What::Metric(m.name.clone(), m.value),
                    EventBody::Log(l) => What::Log(l.level, clip(&l.message)),
                    EventBody::Span(s) => What::Span {
                        operation: s.operation.clone(),
                        peer: s.peer.clone(),
                        duration_ms: s.duration_ms,
                        status: s.status,
                    },
                    EventBody::Change(c) => What::Change(c.change_kind.clone(), c.version.clone()),
                    EventBody::Feedback(_) => What::Nothing,
                },
            },
            Row::Signal(s) => Described::Signal {
                ts: s.ts.as_millis(),
                kind: s.kind,
                service: s.service.clone(),
                summary: clip(&s.summary),
            },
            Row::Incident(i) => Described::Incident {
                ts: i.insight.updated_at.as_millis(),
                id: i.insight.id.clone(),
                status: i.insight.status,
                service: i.service.clone(),
                title: clip(&i.insight.title),
            },
        }))
    }

    /// Evidence that is already text.
    pub fn text(text: impl Into<Arc<str>>) -> Evidence {
        Evidence(Arc::new(Described::Text(text.into())))
    }
}

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            What::Alert(name, status) => {
                f.write_str(&format!("{} {:?}", name.as_str(), status).to_lowercase())
            }
            What::Metric(name, value) => write!(f, "{} = {}", name.as_str(), Value::Num(*value)),
            What::Log(level, message) => write!(f, "{} {message}", level.as_str()),
            What::Span {
                operation,
                peer,
                duration_ms,
                status,
            } => write!(
                f,
                "{} → {} {:.0} ms {:?}",
                operation.as_str(),
                peer.as_ref().map_or("-", Symbol::as_str),
                duration_ms,
                status
            ),
            What::Change(kind, version) => {
                write!(f, "{} {}", kind.as_str(), version.as_deref().unwrap_or(""))
            }
            What::Nothing => Ok(()),
        }
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            Described::Event {
                ts,
                seq,
                kind,
                service,
                what,
            } => write!(
                f,
                "{} #{seq} {} {}: {what}",
                clock(*ts),
                kind.as_str(),
                service.as_str()
            ),
            Described::Signal {
                ts,
                kind,
                service,
                summary,
            } => write!(
                f,
                "{} signal {} {}: {summary}",
                clock(*ts),
                kind.as_str(),
                service.as_str()
            ),
            Described::Incident {
                ts,
                id,
                status,
                service,
                title,
            } => write!(
                f,
                "{} incident {id} {} {}: {title}",
                clock(*ts),
                status.as_str(),
                service.as_str()
            ),
            Described::Text(t) => f.write_str(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_model::Event;

    #[test]
    fn displays_as_the_text_it_stands_for() {
        let line = r#"{"ts":"2026-01-05T12:03:04.000Z","kind":"log","service":"payments","level":"error","message":"Connection pool exhausted"}"#;
        let e = Event::from_json(line).unwrap();
        let row = Row::Event(&e, None);
        assert_eq!(
            Evidence::of(&row, 17).to_string(),
            "12:03:04 #17 log payments: error Connection pool exhausted"
        );
        let long = "x".repeat(150);
        let line = format!(
            r#"{{"ts":"2026-01-05T12:03:04.000Z","kind":"log","service":"a","level":"info","message":"{long}"}}"#
        );
        let e = Event::from_json(&line).unwrap();
        let text = Evidence::of(&Row::Event(&e, None), 1).to_string();
        assert!(text.ends_with(&format!("{}…", "x".repeat(100))), "{text}");
        assert_eq!(Evidence::text("a ⨝ b").to_string(), "a ⨝ b");
    }
}
