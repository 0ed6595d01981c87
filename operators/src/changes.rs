//! Changes (deploys, config, flags) as instant signals: suspects for correlation.

use kaizen_model::{Event, EventBody, Severity, Signal, SignalKind, SignalState, Timestamp};

use crate::Detector;

/// Passes every change event on as an `Instant` signal of kind `Change`.
#[derive(Default)]
pub struct ChangeFeed;

impl Detector for ChangeFeed {
    fn name(&self) -> &'static str {
        "changes"
    }

    fn on_event(&mut self, event: &Event, out: &mut Vec<Signal>) {
        if let EventBody::Change(c) = &event.body {
            let what = match &c.version {
                Some(v) => format!("{} {} {v}", c.change_kind, event.service),
                None => format!("{} {}", c.change_kind, event.service),
            };
            out.push(Signal {
                ts: event.ts,
                onset: event.ts,
                service: event.service.clone(),
                kind: SignalKind::Change,
                state: SignalState::Instant,
                key: format!("{}@{}", event.service, event.ts.as_millis()),
                name: c.change_kind.clone(),
                severity: Severity::Info,
                summary: if c.description.is_empty() {
                    what
                } else {
                    c.description.clone()
                },
                value: None,
                strength: 0.0,
            });
        }
    }

    fn on_watermark(&mut self, _watermark: Timestamp, _out: &mut Vec<Signal>) {}
}
