//! Alerts: normalised, deduplicated, flap-suppressed, silenced, inhibited and grouped, the way
//! Alertmanager does it — so one noisy alert never becomes ten signals.

mod matcher;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kaizen_model::{
    Alert, AlertStatus, Event, EventBody, Labels, Severity, Signal, SignalKind, SignalState,
    StableHasher, Symbol, Timestamp,
};
use serde::{Deserialize, Serialize};

pub use matcher::{InhibitRule, MatchOp, Matcher, MatcherError, Silence};

use crate::Detector;

/// How alerts are deduplicated, grouped, inhibited and silenced.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertConfig {
    /// A firing alert not re-sent for this long is resolved (Alertmanager's `resolve_timeout`):
    /// senders re-send firing alerts periodically.
    #[serde(with = "kaizen_model::duration_serde")]
    pub resolve_timeout: Duration,
    /// A resolve followed by a re-fire within this window is a flap: the alert stays open and
    /// its flap count goes up, instead of closing and reopening.
    #[serde(with = "kaizen_model::duration_serde")]
    pub flap_window: Duration,
    /// Labels that define a group (besides the service, which always does: a group never
    /// spans services).
    pub group_by: Vec<String>,
    /// A new group waits this long before its first signal, to collect its initial burst.
    #[serde(with = "kaizen_model::duration_serde")]
    pub group_wait: Duration,
    /// A changed group signals again at most this often.
    #[serde(with = "kaizen_model::duration_serde")]
    pub group_interval: Duration,
    /// Inhibition rules.
    pub inhibit_rules: Vec<InhibitRule>,
    /// Silences.
    pub silences: Vec<Silence>,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            resolve_timeout: Duration::from_secs(300),
            flap_window: Duration::from_secs(120),
            group_by: vec!["alertname".to_owned()],
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(60),
            inhibit_rules: Vec::new(),
            silences: Vec::new(),
        }
    }
}

/// What the pipeline absorbed rather than passed on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlertStats {
    /// Notifications for alerts already firing.
    pub deduplicated: u64,
    /// Re-fires within the flap window.
    pub flaps: u64,
    /// Notifications muted by a silence.
    pub silenced: u64,
    /// Alerts left out of a group's signal because another alert inhibited them.
    pub inhibited: u64,
}

struct TrackedAlert {
    group: String,
    name: Symbol,
    severity: Severity,
    labels: Labels,
    summary: String,
    onset: Timestamp,
    last_seen: Timestamp,
    flaps: u32,
    resolved_at: Option<Timestamp>,
}

struct Group {
    service: Symbol,
    name: Symbol,
    created: Timestamp,
    alerts: BTreeSet<String>,
    open: bool,
    last_flush: Option<Timestamp>,
    flush_due: Option<Timestamp>,
}

/// A scheduled timer: due time, kind, and the alert fingerprint or group key.
type TimerKey = (Timestamp, Timer, String);

/// When a firing alert expires: `resolve_timeout` after it was last seen.
fn expiry(config: &AlertConfig, last_seen: Timestamp, fp: &str) -> TimerKey {
    (
        last_seen.plus(config.resolve_timeout),
        Timer::Expire,
        fp.to_owned(),
    )
}

/// When a resolved alert is gone for good: `flap_window` after it resolved.
fn finality(config: &AlertConfig, resolved_at: Timestamp, fp: &str) -> TimerKey {
    (
        resolved_at.plus(config.flap_window),
        Timer::Finalize,
        fp.to_owned(),
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// Not re-sent for `resolve_timeout`: resolved.
    Expire,
    /// Resolved and not re-fired within the flap window: gone.
    Finalize,
    /// A group's signal is due.
    Flush,
}

/// The alert detector: notifications in, one signal per alert *group* out — `Open` when the
/// group first fires (after `group_wait`), `Open` again (an update, same key) when its alerts
/// change (at most every `group_interval`), `Close` when none is left firing.
///
/// Run it on one worker: silences and inhibition look across services.
///
/// ```
/// use kaizen_model::{Event, SignalState};
/// use kaizen_operators::{AlertPipeline, Detector};
/// let mut alerts = AlertPipeline::default();
/// let mut out = Vec::new();
/// for (ts, status) in [(0, "firing"), (60, "firing"), (120, "resolved")] {
///     let line = format!(r#"{{"ts":{},"kind":"alert","service":"db","name":"Down","status":"{status}"}}"#, 1_767_600_000 + ts);
///     alerts.on_event(&Event::from_json(&line).unwrap(), &mut out);
/// }
/// alerts.on_watermark(kaizen_model::Timestamp::from_millis(1_767_601_000_000), &mut out);
/// let states: Vec<_> = out.iter().map(|s| s.state).collect();
/// assert_eq!(states, [SignalState::Open, SignalState::Close]);
/// ```
pub struct AlertPipeline {
    config: AlertConfig,
    alerts: BTreeMap<String, TrackedAlert>,
    groups: BTreeMap<String, Group>,
    timers: BTreeSet<TimerKey>,
    stats: AlertStats,
}

impl Default for AlertPipeline {
    fn default() -> Self {
        AlertPipeline::new(AlertConfig::default())
    }
}

impl AlertPipeline {
    /// A pipeline with this configuration.
    pub fn new(config: AlertConfig) -> Self {
        AlertPipeline {
            config,
            alerts: BTreeMap::new(),
            groups: BTreeMap::new(),
            timers: BTreeSet::new(),
            stats: AlertStats::default(),
        }
    }

    /// Counts of what was absorbed.
    pub fn stats(&self) -> AlertStats {
        self.stats
    }

    /// Alerts currently tracked (firing or within their flap window).
    pub fn tracked(&self) -> usize {
        self.alerts.len()
    }

    fn fire_timers_before(&mut self, t: Timestamp, out: &mut Vec<Signal>) {
        while let Some((due, timer, key)) = self.timers.first().cloned() {
            if due >= t {
                break;
            }
            self.timers.remove(&(due, timer, key.clone()));
            match timer {
                Timer::Expire | Timer::Finalize => self.forget(&key, due),
                Timer::Flush => self.flush(&key, due, out),
            }
        }
    }

    fn observe(&mut self, ts: Timestamp, service: &Symbol, alert: &Alert) {
        let labels = match_labels(service, alert);
        if self.config.silences.iter().any(|s| s.mutes(&labels, ts)) {
            self.stats.silenced += 1;
            return;
        }
        let fp = alert.fingerprint.clone();
        match alert.status {
            AlertStatus::Firing => {
                let summary = summary_of(service, alert);
                let severity = Severity::parse_lenient(alert.severity.as_str());
                if let Some(a) = self.alerts.get_mut(&fp) {
                    self.timers.remove(&expiry(&self.config, a.last_seen, &fp));
                    let mut changed = a.severity != severity;
                    if let Some(r) = a.resolved_at.take() {
                        self.timers.remove(&finality(&self.config, r, &fp));
                        a.flaps += 1;
                        self.stats.flaps += 1;
                        changed = true;
                    } else {
                        self.stats.deduplicated += 1;
                    }
                    a.last_seen = ts;
                    a.severity = severity;
                    a.summary = summary;
                    let group = a.group.clone();
                    self.timers.insert(expiry(&self.config, ts, &fp));
                    if changed {
                        self.touch(&group, ts);
                    }
                } else {
                    let group = self.group_key(service, &labels);
                    self.groups.entry(group.clone()).or_insert_with(|| Group {
                        service: service.clone(),
                        name: group_name(&self.config.group_by, &labels),
                        created: ts,
                        alerts: BTreeSet::new(),
                        open: false,
                        last_flush: None,
                        flush_due: None,
                    });
                    if let Some(g) = self.groups.get_mut(&group) {
                        g.alerts.insert(fp.clone());
                    }
                    self.alerts.insert(
                        fp.clone(),
                        TrackedAlert {
                            group: group.clone(),
                            name: alert.name.clone(),
                            severity,
                            labels,
                            summary,
                            onset: ts,
                            last_seen: ts,
                            flaps: 0,
                            resolved_at: None,
                        },
                    );
                    self.timers.insert(expiry(&self.config, ts, &fp));
                    self.touch(&group, ts);
                    self.touch_inhibitable(ts);
                }
            }
            AlertStatus::Resolved => {
                let Some(a) = self.alerts.get_mut(&fp) else {
                    return;
                };
                if a.resolved_at.is_none() {
                    self.timers.remove(&expiry(&self.config, a.last_seen, &fp));
                    a.resolved_at = Some(ts);
                    self.timers.insert(finality(&self.config, ts, &fp));
                }
            }
        }
    }

    /// The alert is gone for good: drop it from its group and let the group signal the change.
    fn forget(&mut self, fp: &str, now: Timestamp) {
        let Some(a) = self.alerts.remove(fp) else {
            return;
        };
        // Whichever timer did not fire is moot now.
        self.timers.remove(&expiry(&self.config, a.last_seen, fp));
        if let Some(r) = a.resolved_at {
            self.timers.remove(&finality(&self.config, r, fp));
        }
        if let Some(g) = self.groups.get_mut(&a.group) {
            g.alerts.remove(fp);
        }
        self.touch(&a.group, now);
        self.touch_inhibitable(now);
    }

    /// Inhibition depends on other alerts: when any alert comes or goes, every group may change.
    fn touch_inhibitable(&mut self, now: Timestamp) {
        if self.config.inhibit_rules.is_empty() {
            return;
        }
        let keys: Vec<String> = self.groups.keys().cloned().collect();
        for k in keys {
            self.touch(&k, now);
        }
    }

    fn touch(&mut self, group: &str, now: Timestamp) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if g.flush_due.is_some() {
            return;
        }
        let due = match g.last_flush {
            None => g.created.plus(self.config.group_wait),
            Some(last) => last.plus(self.config.group_interval),
        }
        .max(now);
        g.flush_due = Some(due);
        self.timers.insert((due, Timer::Flush, group.to_owned()));
    }

    fn is_inhibited(&self, fp: &str, target: &TrackedAlert) -> bool {
        self.config.inhibit_rules.iter().any(|rule| {
            self.alerts.iter().any(|(other, source)| {
                other != fp
                    && source.resolved_at.is_none()
                    && rule.inhibits(&source.labels, &target.labels)
            })
        })
    }

    fn flush(&mut self, key: &str, now: Timestamp, out: &mut Vec<Signal>) {
        let Some(g) = self.groups.get(key) else {
            return;
        };
        let active: Vec<(&String, &TrackedAlert)> = g
            .alerts
            .iter()
            .filter_map(|fp| self.alerts.get(fp).map(|a| (fp, a)))
            .filter(|(_, a)| a.resolved_at.is_none() || a.flaps > 0)
            .collect();
        let (visible, muted): (Vec<_>, Vec<_>) = active
            .into_iter()
            .partition(|(fp, a)| !self.is_inhibited(fp, a));
        let muted = muted.len() as u64;
        let signal = if let Some(onset) = visible.iter().map(|(_, a)| a.onset).min() {
            let severity = visible
                .iter()
                .map(|(_, a)| a.severity)
                .max()
                .unwrap_or_default();
            let flaps: u32 = visible.iter().map(|(_, a)| a.flaps).sum();
            let mut summary = match visible.as_slice() {
                [(_, a)] => a.summary.clone(),
                many => {
                    let names: BTreeSet<&str> = many.iter().map(|(_, a)| a.name.as_str()).collect();
                    let names: Vec<&str> = names.into_iter().collect();
                    format!(
                        "{} alerts firing on {}: {}",
                        many.len(),
                        g.service,
                        names.join(", ")
                    )
                }
            };
            if flaps > 0 {
                summary.push_str(&format!(" (flapped {flaps}×)"));
            }
            Some(Signal {
                ts: now,
                onset,
                service: g.service.clone(),
                kind: SignalKind::Alert,
                state: SignalState::Open,
                key: key.to_owned(),
                name: g.name.clone(),
                severity,
                summary,
                value: Some(visible.len() as f64),
                strength: 0.0,
            })
        } else if g.open {
            Some(Signal {
                ts: now,
                onset: g.created,
                service: g.service.clone(),
                kind: SignalKind::Alert,
                state: SignalState::Close,
                key: key.to_owned(),
                name: g.name.clone(),
                severity: Severity::Info,
                summary: format!("{} resolved on {}", g.name, g.service),
                value: Some(0.0),
                strength: 0.0,
            })
        } else {
            None
        };
        self.stats.inhibited += muted;
        let empty = g.alerts.is_empty();
        if let Some(g) = self.groups.get_mut(key) {
            g.flush_due = None;
            g.last_flush = Some(now);
            if let Some(s) = &signal {
                g.open = s.state == SignalState::Open;
            }
        }
        if empty {
            self.groups.remove(key);
        }
        out.extend(signal);
    }

    fn group_key(&self, service: &Symbol, labels: &Labels) -> String {
        let mut h = StableHasher::new();
        h.write_str(service.as_str());
        for l in &self.config.group_by {
            h.write_str(l);
            h.write_str(labels.get(l).map_or("", |v| v.as_str()));
        }
        format!("alerts/{service}/{:016x}", h.finish())
    }
}

/// The labels matchers see: the alert's own plus `alertname`, `service` and `severity`.
fn match_labels(service: &Symbol, alert: &Alert) -> Labels {
    let extra = [
        (Symbol::new("alertname"), alert.name.clone()),
        (Symbol::new("service"), service.clone()),
        (Symbol::new("severity"), alert.severity.clone()),
    ];
    Labels::from_pairs(
        extra
            .into_iter()
            .chain(alert.labels.iter().map(|(k, v)| (k.clone(), v.clone()))),
    )
}

fn group_name(group_by: &[String], labels: &Labels) -> Symbol {
    let values: Vec<&str> = group_by
        .iter()
        .filter_map(|l| labels.get(l).map(|v| v.as_str()))
        .collect();
    Symbol::new(&values.join("/"))
}

fn summary_of(service: &Symbol, alert: &Alert) -> String {
    alert
        .annotations
        .get("summary")
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{} firing on {service}", alert.name))
}

impl Detector for AlertPipeline {
    fn name(&self) -> &'static str {
        "alerts"
    }

    fn on_event(&mut self, event: &Event, out: &mut Vec<Signal>) {
        if let EventBody::Alert(alert) = &event.body {
            self.fire_timers_before(event.ts, out);
            self.observe(event.ts, &event.service, alert);
        }
    }

    fn on_watermark(&mut self, watermark: Timestamp, out: &mut Vec<Signal>) {
        self.fire_timers_before(watermark, out);
    }
}

#[cfg(test)]
mod tests;
