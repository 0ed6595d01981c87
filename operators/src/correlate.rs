//! Signals → incidents: what is one problem, and its lifecycle.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use kaizen_model::{
    ChangeRef, Incident, IncidentStatus, Severity, Signal, SignalKind, SignalRef, SignalState,
    StableHasher, Symbol, Timestamp,
};

use crate::{OriginRanker, ServiceGraph};

/// How [`IncidentCorrelator`] groups signals and paces its output.
#[derive(Clone, Debug)]
pub struct CorrelatorConfig {
    /// A signal that may not open an incident alone waits this long for one to join.
    pub join_window: Duration,
    /// A signal joins an incident one of whose services still showing symptoms is at most
    /// this many hops away along dependencies, in either direction
    /// ([`ServiceGraph::causal_distance`]): a failure travels from a dependency to its
    /// callers, never sideways between siblings.
    pub max_hops: usize,
    /// An incident resolves after all its signals cleared and stayed clear this long.
    pub quiet_period: Duration,
    /// The first version waits this long after the first signal, so that it already carries
    /// the initial burst of related signals (Alertmanager's `group_wait`).
    pub group_wait: Duration,
    /// Later versions are emitted at most this often (Alertmanager's `group_interval`).
    pub group_interval: Duration,
    /// Changes this long before an incident opens are suspects.
    pub change_lookback: Duration,
    /// Signals below this severity join incidents but never open one.
    pub open_severity: Severity,
    /// Signals of these kinds open an incident only when critical; below that they join one.
    /// Statistical detectors (learned baselines, log templates) see many series and so raise
    /// more chance alarms than alerts people wrote; alone, a warning from them is not an
    /// incident.
    pub needs_corroboration: Vec<SignalKind>,
    /// At most this many signals are remembered per incident (the rest are counted).
    pub max_signals: usize,
    /// A signal that clears and fires again within this long is its problem flapping: it
    /// rejoins its incident whatever else that incident shows. Later, it is judged like a new
    /// signal: a fault that comes back after its incident went quiet is a new occurrence.
    pub flap_window: Duration,
    /// Signals of these kinds trail their cause by their windows: an error-budget burn over
    /// 30 minutes stays up to 30 minutes after the errors stopped. Once an incident's other
    /// signals have cleared, these neither hold it open nor draw new signals into it, or one
    /// incident would take in every fault that follows within the window.
    pub lagging: Vec<SignalKind>,
}

impl Default for CorrelatorConfig {
    fn default() -> Self {
        CorrelatorConfig {
            join_window: Duration::from_secs(10 * 60),
            max_hops: 3,
            quiet_period: Duration::from_secs(10 * 60),
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(60),
            change_lookback: Duration::from_secs(30 * 60),
            open_severity: Severity::Warning,
            needs_corroboration: vec![SignalKind::MetricAnomaly, SignalKind::LogTemplate],
            max_signals: 256,
            flap_window: Duration::from_secs(10 * 60),
            lagging: vec![SignalKind::SloBurn],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Emit,
    Resolve,
}

struct OpenIncident {
    opened_at: Timestamp,
    signals: Vec<SignalRef>,
    dropped_signals: usize,
    version: u32,
    last_emit: Option<Timestamp>,
    dirty: bool,
    emit_due: Option<Timestamp>,
    resolve_due: Option<Timestamp>,
}

impl OpenIncident {
    fn services(&self) -> BTreeSet<&Symbol> {
        self.signals.iter().map(|s| &s.service).collect()
    }
    /// Whether the incident's symptoms have cleared: all its signals, or all but the
    /// `lagging` ones when it has others.
    fn all_clear(&self, lagging: &[SignalKind]) -> bool {
        let leading = || self.signals.iter().filter(|s| !lagging.contains(&s.kind));
        if leading().next().is_none() {
            return self.signals.iter().all(|s| s.ended.is_some());
        }
        leading().all(|s| s.ended.is_some())
    }
}

/// Joins signals into incidents along the service graph and in time, tracks each incident's
/// lifecycle (open → updated → resolved) and emits a new [`Incident`] version when it changes,
/// paced like Alertmanager (`group_wait`, `group_interval`).
///
/// Feed signals in event-time order with [`on_signal`](Self::on_signal) and watermarks with
/// [`on_watermark`](Self::on_watermark); the graph is updated through
/// [`graph_mut`](Self::graph_mut).
pub struct IncidentCorrelator {
    config: CorrelatorConfig,
    graph: ServiceGraph,
    ranker: OriginRanker,
    open: BTreeMap<String, OpenIncident>,
    /// Open signals that may not open an incident alone, waiting (up to the join window) for
    /// an incident nearby to join.
    pending: BTreeMap<(SignalKind, String), Signal>,
    changes: VecDeque<ChangeRef>,
    timers: BTreeSet<(Timestamp, Timer, String)>,
}

impl IncidentCorrelator {
    /// A correlator over `graph`.
    pub fn new(config: CorrelatorConfig, graph: ServiceGraph) -> Self {
        let ranker = OriginRanker {
            change_lookback: config.change_lookback,
            ..OriginRanker::default()
        };
        IncidentCorrelator {
            config,
            graph,
            ranker,
            open: BTreeMap::new(),
            pending: BTreeMap::new(),
            changes: VecDeque::new(),
            timers: BTreeSet::new(),
        }
    }

    /// The service graph, to apply edge updates.
    pub fn graph_mut(&mut self) -> &mut ServiceGraph {
        &mut self.graph
    }

    /// Number of incidents not yet resolved.
    pub fn open_incidents(&self) -> usize {
        self.open.len()
    }

    /// Feeds one signal (in event-time order).
    pub fn on_signal(&mut self, signal: &Signal, out: &mut Vec<Incident>) {
        self.fire_timers_before(signal.ts, out);
        match signal.state {
            SignalState::Instant => self.on_change(signal),
            SignalState::Open => self.on_open(signal),
            SignalState::Close => self.on_close(signal),
        }
    }

    /// No signal with `ts < watermark` will follow.
    pub fn on_watermark(&mut self, watermark: Timestamp, out: &mut Vec<Incident>) {
        self.fire_timers_before(watermark, out);
    }

    fn on_change(&mut self, signal: &Signal) {
        let horizon = signal.ts.minus(self.config.change_lookback);
        while self.changes.front().is_some_and(|c| c.ts < horizon) {
            self.changes.pop_front();
        }
        self.changes.push_back(ChangeRef {
            ts: signal.ts,
            service: signal.service.clone(),
            change_kind: signal.name.clone(),
            version: None,
            description: signal.summary.clone(),
        });
        let ids: Vec<String> = self
            .open
            .iter()
            .filter(|(_, inc)| inc.services().contains(&signal.service))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.touch(&id, signal.ts);
        }
    }

    fn on_open(&mut self, signal: &Signal) {
        let flap = self.config.flap_window;
        let existing = self.open.iter().find_map(|(id, inc)| {
            inc.signals
                .iter()
                .any(|s| {
                    s.kind == signal.kind
                        && s.key == signal.key
                        && s.ended.is_none_or(|end| signal.ts <= end.plus(flap))
                })
                .then(|| id.clone())
        });
        let target = existing.or_else(|| self.best_incident_for(signal));
        let id = match target {
            Some(id) => id,
            None if !self.may_open(signal) => {
                let horizon = signal.ts.minus(self.config.join_window);
                self.pending.retain(|_, p| p.ts >= horizon);
                self.pending
                    .entry((signal.kind, signal.key.clone()))
                    .or_insert_with(|| signal.clone());
                return;
            }
            None => {
                let id = incident_id(signal);
                self.open.insert(
                    id.clone(),
                    OpenIncident {
                        opened_at: signal.onset,
                        signals: Vec::new(),
                        dropped_signals: 0,
                        version: 0,
                        last_emit: None,
                        dirty: true,
                        emit_due: None,
                        resolve_due: None,
                    },
                );
                self.schedule(&id, Timer::Emit, signal.ts.plus(self.config.group_wait));
                self.adopt_pending(&id, signal);
                id
            }
        };
        let max_signals = self.config.max_signals;
        if let Some(inc) = self.open.get_mut(&id) {
            if let Some(s) = inc
                .signals
                .iter_mut()
                .find(|s| s.kind == signal.kind && s.key == signal.key)
            {
                s.ended = None;
                s.severity = s.severity.max(signal.severity);
                s.strength = s.strength.max(signal.strength);
                s.summary.clone_from(&signal.summary);
                s.value = max_value(s.value, signal.value);
            } else if inc.signals.len() < max_signals {
                inc.signals.push(signal_ref(signal));
            } else {
                inc.dropped_signals += 1;
            }
        }
        // A lagging signal coming back to a settled incident leaves its resolution as it was.
        let lagging = &self.config.lagging;
        if let Some(due) = self
            .open
            .get_mut(&id)
            .filter(|i| !i.all_clear(lagging))
            .and_then(|i| i.resolve_due.take())
        {
            self.timers.remove(&(due, Timer::Resolve, id.clone()));
        }
        self.touch(&id, signal.ts);
    }

    /// A new incident takes in the waiting signals that are recent and near it in the graph,
    /// with their own onsets (they may well be the origin's first symptoms).
    fn adopt_pending(&mut self, id: &str, opener: &Signal) {
        let horizon = opener.ts.minus(self.config.join_window);
        let near: Vec<(SignalKind, String)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.ts >= horizon)
            .filter(|(_, p)| {
                self.graph
                    .causal_distance(&p.service, &opener.service, self.config.max_hops)
                    .is_some()
            })
            .map(|(k, _)| k.clone())
            .collect();
        let max_signals = self.config.max_signals;
        for k in near {
            if let (Some(p), Some(inc)) = (self.pending.remove(&k), self.open.get_mut(id)) {
                inc.opened_at = inc.opened_at.min(p.onset);
                if inc.signals.len() < max_signals {
                    inc.signals.push(signal_ref(&p));
                } else {
                    inc.dropped_signals += 1;
                }
            }
        }
    }

    fn on_close(&mut self, signal: &Signal) {
        if self
            .pending
            .remove(&(signal.kind, signal.key.clone()))
            .is_some()
        {
            return;
        }
        let Some(id) = self.open.iter().find_map(|(id, inc)| {
            inc.signals
                .iter()
                .any(|s| s.kind == signal.kind && s.key == signal.key && s.ended.is_none())
                .then(|| id.clone())
        }) else {
            return;
        };
        let quiet = self.config.quiet_period;
        let lagging = &self.config.lagging;
        let mut resolve_at = None;
        if let Some(inc) = self.open.get_mut(&id) {
            // A lagging signal clearing after the rest must not postpone the resolution.
            let was_clear = inc.all_clear(lagging);
            for s in inc
                .signals
                .iter_mut()
                .filter(|s| s.kind == signal.kind && s.key == signal.key)
            {
                s.ended = Some(signal.ts);
                s.value = max_value(s.value, signal.value);
                s.strength = s.strength.max(signal.strength);
            }
            if !was_clear && inc.all_clear(lagging) {
                resolve_at = Some(signal.ts.plus(quiet));
            }
        }
        self.touch(&id, signal.ts);
        if let Some(due) = resolve_at {
            self.schedule(&id, Timer::Resolve, due);
        }
    }

    fn may_open(&self, signal: &Signal) -> bool {
        signal.severity >= self.config.open_severity
            && (signal.severity == Severity::Critical
                || !self.config.needs_corroboration.contains(&signal.kind))
    }

    /// The open incident a new signal belongs to: recently active, close in the graph, and
    /// on a dependency path with one of its possible causes.
    ///
    /// Closeness alone merges two faults through a service both of them hurt: a caller sick
    /// from one dependency is one hop from its other dependency, which may be failing on its
    /// own. So the signal's service must also depend on, or be depended on by (any number of
    /// hops), one of the incident's roots — its sick services none of whose dependencies in
    /// the incident is sick — or be one of them.
    fn best_incident_for(&self, signal: &Signal) -> Option<String> {
        // An incident still showing symptoms draws signals however long its last new one is
        // past: a caller's error budget may take half an hour of its errors to page.
        self.open
            .iter()
            .filter(|(_, inc)| !inc.all_clear(&self.config.lagging))
            .filter_map(|(id, inc)| {
                // Only services still showing symptoms attract new signals: an incident in its
                // quiet period does not absorb a fresh problem next door.
                let sick: BTreeSet<&Symbol> = inc
                    .signals
                    .iter()
                    .filter(|s| s.ended.is_none())
                    .map(|s| &s.service)
                    .collect();
                let hops = sick
                    .iter()
                    .filter_map(|s| {
                        self.graph
                            .causal_distance(&signal.service, s, self.config.max_hops)
                    })
                    .min()?;
                let related = |root: &&Symbol| {
                    **root == signal.service
                        || self.graph.depends_on(&signal.service, root)
                        || self.graph.depends_on(root, &signal.service)
                };
                let is_root = |r: &&&Symbol| !sick.iter().any(|s| self.graph.depends_on(r, s));
                sick.iter().filter(is_root).any(related).then_some(())?;
                Some((hops, inc.opened_at, id))
            })
            .min()
            .map(|(_, _, id)| id.clone())
    }

    /// Marks an incident changed and makes sure a version will be emitted.
    fn touch(&mut self, id: &str, now: Timestamp) {
        let interval = self.config.group_interval;
        let Some(inc) = self.open.get_mut(id) else {
            return;
        };
        inc.dirty = true;
        if inc.emit_due.is_none() {
            let due = inc.last_emit.map_or(now, |t| t.plus(interval)).max(now);
            self.schedule(id, Timer::Emit, due);
        }
    }

    fn schedule(&mut self, id: &str, timer: Timer, due: Timestamp) {
        let Some(inc) = self.open.get_mut(id) else {
            return;
        };
        let slot = match timer {
            Timer::Emit => &mut inc.emit_due,
            Timer::Resolve => &mut inc.resolve_due,
        };
        if let Some(old) = slot.replace(due) {
            self.timers.remove(&(old, timer, id.to_owned()));
        }
        self.timers.insert((due, timer, id.to_owned()));
    }

    fn fire_timers_before(&mut self, t: Timestamp, out: &mut Vec<Incident>) {
        while let Some((due, timer, id)) = self.timers.first().cloned() {
            if due >= t {
                break;
            }
            self.timers.remove(&(due, timer, id.clone()));
            match timer {
                Timer::Emit => {
                    if let Some(inc) = self.open.get_mut(&id) {
                        inc.emit_due = None;
                        if inc.dirty {
                            out.extend(self.emit(&id, due, false));
                        }
                    }
                }
                Timer::Resolve => {
                    let lagging = &self.config.lagging;
                    if self.open.get(&id).is_some_and(|i| i.all_clear(lagging)) {
                        if let Some(inc) = self.open.get(&id) {
                            if let Some(due) = inc.emit_due {
                                self.timers.remove(&(due, Timer::Emit, id.clone()));
                            }
                        }
                        out.extend(self.emit(&id, due, true));
                        self.open.remove(&id);
                    }
                }
            }
        }
    }

    fn emit(&mut self, id: &str, now: Timestamp, resolved: bool) -> Option<Incident> {
        let lookback = self.config.change_lookback;
        let inc = self.open.get_mut(id)?;
        inc.version += 1;
        inc.dirty = false;
        inc.last_emit = Some(now);
        let mut signals = inc.signals.clone();
        signals.sort_by(|a, b| (a.onset, &a.service, &a.key).cmp(&(b.onset, &b.service, &b.key)));
        let services: Vec<Symbol> = inc.services().into_iter().cloned().collect();
        let since = inc.opened_at.minus(lookback);
        let mut changes: Vec<ChangeRef> = self
            .changes
            .iter()
            .filter(|c| c.ts >= since && c.ts <= now && services.contains(&c.service))
            .cloned()
            .collect();
        changes.sort_by(|a, b| b.ts.cmp(&a.ts).then_with(|| a.service.cmp(&b.service)));
        changes.truncate(5);
        let origin = self.ranker.rank(&signals, &changes, &self.graph);
        let impacted = services
            .iter()
            .filter(|s| self.graph.is_user_facing(s))
            .cloned()
            .collect();
        let severity = signals.iter().map(|s| s.severity).max().unwrap_or_default();
        let status = if resolved {
            IncidentStatus::Resolved
        } else if inc.version == 1 {
            IncidentStatus::Open
        } else {
            IncidentStatus::Updated
        };
        Some(Incident {
            id: id.to_owned(),
            version: inc.version,
            status,
            severity,
            opened_at: inc.opened_at,
            updated_at: now,
            resolved_at: resolved.then_some(now),
            services,
            impacted,
            origin,
            signals,
            changes,
        })
    }
}

fn incident_id(first: &Signal) -> String {
    let mut h = StableHasher::new();
    h.write_str(first.kind.as_str());
    h.write_str(&first.key);
    h.write_str(first.service.as_str());
    h.write_u64(first.onset.as_millis());
    format!("inc-{:016x}", h.finish())
}

fn signal_ref(s: &Signal) -> SignalRef {
    SignalRef {
        kind: s.kind,
        key: s.key.clone(),
        service: s.service.clone(),
        name: s.name.clone(),
        severity: s.severity,
        summary: s.summary.clone(),
        onset: s.onset,
        ended: None,
        value: s.value,
        strength: s.strength,
    }
}

fn max_value(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

#[cfg(test)]
mod tests;
