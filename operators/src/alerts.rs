//! Alert lifecycle per fingerprint: repeats deduplicated, silence means resolved.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kaizen_model::{
    Alert, AlertStatus, Event, EventBody, Severity, Signal, SignalKind, SignalState, Symbol,
    Timestamp,
};

use crate::Detector;

/// How [`AlertTracker`] treats alerts.
#[derive(Clone, Debug)]
pub struct AlertTrackerConfig {
    /// A firing alert not re-sent for this long is considered resolved (Alertmanager's
    /// `resolve_timeout`, default 5 minutes): senders re-send firing alerts periodically.
    pub resolve_timeout: Duration,
}

impl Default for AlertTrackerConfig {
    fn default() -> Self {
        AlertTrackerConfig {
            resolve_timeout: Duration::from_secs(300),
        }
    }
}

struct Firing {
    onset: Timestamp,
    last_seen: Timestamp,
    service: Symbol,
    name: Symbol,
    severity: Severity,
    summary: String,
}

/// Turns a stream of alert notifications into signals on state *transitions* only: the first
/// `firing` opens, repeats are absorbed, `resolved` (or `resolve_timeout` of silence) closes.
///
/// ```
/// use kaizen_model::{Event, SignalState};
/// use kaizen_operators::{AlertTracker, Detector};
/// let mut tracker = AlertTracker::default();
/// let mut out = Vec::new();
/// for (ts, status) in [(0, "firing"), (60, "firing"), (120, "resolved")] {
///     let line = format!(r#"{{"ts":{},"kind":"alert","service":"db","name":"Down","status":"{status}"}}"#, 1_767_600_000 + ts);
///     tracker.on_event(&Event::from_json(&line).unwrap(), &mut out);
/// }
/// let states: Vec<_> = out.iter().map(|s| s.state).collect();
/// assert_eq!(states, [SignalState::Open, SignalState::Close]);
/// ```
#[derive(Default)]
pub struct AlertTracker {
    config: AlertTrackerConfig,
    firing: HashMap<String, Firing>,
    /// Expiry → fingerprints, to fire resolve timeouts in a deterministic order.
    expiries: BTreeMap<(Timestamp, String), ()>,
}

impl AlertTracker {
    /// A tracker with the given configuration.
    pub fn new(config: AlertTrackerConfig) -> Self {
        AlertTracker {
            config,
            ..Default::default()
        }
    }

    /// Number of alerts currently firing.
    pub fn firing(&self) -> usize {
        self.firing.len()
    }

    fn expire_before(&mut self, t: Timestamp, out: &mut Vec<Signal>) {
        while let Some(((due, fingerprint), ())) = self.expiries.first_key_value() {
            if *due >= t {
                break;
            }
            let (due, fingerprint) = (*due, fingerprint.clone());
            self.expiries.remove(&(due, fingerprint.clone()));
            if let Some(f) = self.firing.remove(&fingerprint) {
                out.push(close_signal(
                    &fingerprint,
                    &f,
                    due,
                    "no longer re-sent; timed out",
                ));
            }
        }
    }

    fn observe(&mut self, ts: Timestamp, service: &Symbol, alert: &Alert, out: &mut Vec<Signal>) {
        let summary = alert
            .annotations
            .get("summary")
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{} firing on {}", alert.name, service));
        match alert.status {
            AlertStatus::Firing => {
                let timeout = self.config.resolve_timeout;
                if let Some(f) = self.firing.get_mut(&alert.fingerprint) {
                    self.expiries
                        .remove(&(f.last_seen.plus(timeout), alert.fingerprint.clone()));
                    f.last_seen = ts;
                    f.summary = summary;
                } else {
                    let severity = Severity::parse_lenient(alert.severity.as_str());
                    out.push(Signal {
                        ts,
                        onset: ts,
                        service: service.clone(),
                        kind: SignalKind::Alert,
                        state: SignalState::Open,
                        key: alert.fingerprint.clone(),
                        name: alert.name.clone(),
                        severity,
                        summary: summary.clone(),
                        value: None,
                    });
                    self.firing.insert(
                        alert.fingerprint.clone(),
                        Firing {
                            onset: ts,
                            last_seen: ts,
                            service: service.clone(),
                            name: alert.name.clone(),
                            severity,
                            summary,
                        },
                    );
                }
                self.expiries
                    .insert((ts.plus(timeout), alert.fingerprint.clone()), ());
            }
            AlertStatus::Resolved => {
                if let Some(f) = self.firing.remove(&alert.fingerprint) {
                    self.expiries.remove(&(
                        f.last_seen.plus(self.config.resolve_timeout),
                        alert.fingerprint.clone(),
                    ));
                    out.push(close_signal(&alert.fingerprint, &f, ts, "resolved"));
                }
            }
        }
    }
}

fn close_signal(fingerprint: &str, f: &Firing, ts: Timestamp, why: &str) -> Signal {
    Signal {
        ts,
        onset: f.onset,
        service: f.service.clone(),
        kind: SignalKind::Alert,
        state: SignalState::Close,
        key: fingerprint.to_owned(),
        name: f.name.clone(),
        severity: f.severity,
        summary: format!("{} {why}", f.name),
        value: None,
    }
}

impl Detector for AlertTracker {
    fn name(&self) -> &'static str {
        "alerts"
    }

    fn on_event(&mut self, event: &Event, out: &mut Vec<Signal>) {
        if let EventBody::Alert(alert) = &event.body {
            self.expire_before(event.ts, out);
            self.observe(event.ts, &event.service, alert, out);
        }
    }

    fn on_watermark(&mut self, watermark: Timestamp, out: &mut Vec<Signal>) {
        self.expire_before(watermark, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(ts: u64, fingerprint: &str, status: &str) -> Event {
        Event::from_json(&format!(
            r#"{{"ts":{},"kind":"alert","service":"api","name":"HighErrorRate","severity":"critical","status":"{status}","fingerprint":"{fingerprint}"}}"#,
            1_767_600_000 + ts
        ))
        .unwrap()
    }

    #[test]
    fn repeats_are_deduplicated_and_resolve_closes() {
        let mut t = AlertTracker::default();
        let mut out = Vec::new();
        for ts in [0, 60, 120, 180] {
            t.on_event(&alert(ts, "a", "firing"), &mut out);
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].severity, Severity::Critical);
        t.on_event(&alert(200, "a", "resolved"), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].state, SignalState::Close);
        assert_eq!(out[1].onset, out[0].ts);
        // A resolve for something not firing is absorbed.
        t.on_event(&alert(210, "a", "resolved"), &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn silence_times_out_at_the_expiry_not_at_the_watermark() {
        let mut t = AlertTracker::default();
        let mut out = Vec::new();
        t.on_event(&alert(0, "a", "firing"), &mut out);
        t.on_event(&alert(0, "b", "firing"), &mut out);
        t.on_watermark(
            Timestamp::from_millis(1_767_600_000_000 + 299_000),
            &mut out,
        );
        assert_eq!(out.len(), 2);
        t.on_watermark(
            Timestamp::from_millis(1_767_600_000_000 + 3_600_000),
            &mut out,
        );
        assert_eq!(out.len(), 4);
        assert_eq!(
            out[2].ts,
            Timestamp::from_millis(1_767_600_000_000 + 300_000)
        );
        assert_eq!((out[2].key.as_str(), out[3].key.as_str()), ("a", "b"));
        assert_eq!(t.firing(), 0);
    }

    #[test]
    fn path_independent_timeouts() {
        // The same events with and without an intermediate watermark give the same signals.
        let run = |with_watermark: bool| {
            let mut t = AlertTracker::default();
            let mut out = Vec::new();
            t.on_event(&alert(0, "a", "firing"), &mut out);
            if with_watermark {
                t.on_watermark(
                    Timestamp::from_millis(1_767_600_000_000 + 100_000),
                    &mut out,
                );
            }
            t.on_event(&alert(400, "a", "firing"), &mut out);
            out
        };
        assert_eq!(run(true), run(false));
        assert_eq!(run(false).len(), 3);
    }
}
