//! New, spiking and error log templates per service, as signals.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kaizen_model::{
    Event, EventBody, Level, Severity, Signal, SignalKind, SignalState, Symbol, Timestamp,
};

use super::miner::{TemplateConfig, TemplateId, TemplateMiner};
use crate::Detector;

/// How [`LogTemplateDetector`] decides what is new, spiking or an error.
#[derive(Clone, Debug)]
pub struct LogTemplateConfig {
    /// The miner each service gets.
    pub miner: TemplateConfig,
    /// A service reports NEW templates only after this many lines…
    pub warmup_lines: u64,
    /// …and this much event time since its first line: before that everything is new.
    pub warmup: Duration,
    /// A NEW signal closes after this long without a line of its template.
    pub new_quiet: Duration,
    /// An ERROR signal closes after this long without an error line of its template.
    pub error_quiet: Duration,
    /// Rates are counted per window of this length (aligned to the epoch, so deterministic).
    pub window: Duration,
    /// Weight of the latest window in the EWMA baseline of a template's rate.
    pub baseline_alpha: f64,
    /// Completed windows a template needs before it can spike (a baseline to compare with).
    pub baseline_windows: u32,
    /// SPIKE opens when a window's count reaches this multiple of the baseline (at least 1/window)…
    pub spike_factor: f64,
    /// …and at least this many lines; it closes after a window below half of both.
    pub spike_min_count: u64,
    /// An open ERROR signal escalates to critical at this many error lines in one window.
    pub error_critical_count: u64,
    /// Services tracked at once; beyond it the least recently seen is dropped.
    pub max_services: usize,
    /// Template text in signal names is cut to this many characters.
    pub max_name_chars: usize,
}

impl Default for LogTemplateConfig {
    fn default() -> Self {
        LogTemplateConfig {
            miner: TemplateConfig::default(),
            warmup_lines: 1000,
            warmup: Duration::from_secs(15 * 60),
            new_quiet: Duration::from_secs(10 * 60),
            error_quiet: Duration::from_secs(5 * 60),
            window: Duration::from_secs(60),
            baseline_alpha: 0.1,
            baseline_windows: 5,
            spike_factor: 5.0,
            spike_min_count: 20,
            error_critical_count: 50,
            max_services: 10_000,
            max_name_chars: 120,
        }
    }
}

/// Which signal of a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    New,
    Spike,
    Error,
    /// The end of a rate window (a timer only, never a signal).
    Window,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::New => "new",
            Kind::Spike => "spike",
            Kind::Error => "error",
            Kind::Window => "window",
        }
    }
}

/// One open signal of a template.
#[derive(Clone, Debug)]
struct Episode {
    onset: Timestamp,
    lines: u64,
    peak: u64,
    severity: Severity,
}

#[derive(Default)]
struct TemplateState {
    window_start: Timestamp,
    /// Due time of the scheduled end of the current window, when one is running.
    window_due: Option<Timestamp>,
    /// End of the last completed window (for the decay over empty windows).
    closed_until: Option<Timestamp>,
    count: u64,
    errors: u64,
    baseline: f64,
    windows: u32,
    last_seen: Timestamp,
    last_error: Timestamp,
    episodes: BTreeMap<Kind, (Episode, Option<Timestamp>)>,
}

struct ServiceState {
    miner: TemplateMiner,
    lines: u64,
    first_ts: Timestamp,
    last_ts: Timestamp,
    templates: BTreeMap<TemplateId, TemplateState>,
}

/// A scheduled check: (due, service, template, what).
type Timer = (Timestamp, Symbol, TemplateId, Kind);

/// Mines log templates per service and signals NEW templates (after the service's warm-up),
/// SPIKEs of a template's rate over its learned baseline, and ERROR templates (error/fatal
/// lines, or panics and exceptions in lines without a level), each as `Open` then `Close`.
///
/// ERROR opens on the first error line of a template even during warm-up: an error is worth
/// a look by itself, and a chronic one stays a single open signal rather than flapping.
/// When the miner merges templates, the absorbed ones' open signals close ("merged") and
/// their counts move to the survivor; an evicted template's open signals close too.
///
/// Deterministic: state lives in `BTreeMap`s, timers fire by event time (a timer due at `d`
/// fires before any event later than `d` and on any watermark past `d`), so the signals
/// depend only on the events.
///
/// ```
/// use kaizen_model::{Event, Severity, SignalState};
/// use kaizen_operators::{Detector, LogTemplateDetector};
/// let mut detector = LogTemplateDetector::default();
/// let mut out = Vec::new();
/// for (ts, id) in [(0, 17), (30, 99)] {
///     let line = format!(r#"{{"ts":{},"kind":"log","service":"db","level":"error","message":"query {id} failed: deadlock"}}"#, 1_767_600_000 + ts);
///     detector.on_event(&Event::from_json(&line).unwrap(), &mut out);
/// }
/// assert_eq!(out.len(), 1);
/// assert_eq!((out[0].state, out[0].severity), (SignalState::Open, Severity::Warning));
/// assert_eq!(out[0].summary, r#"db: error log "query <*> failed: deadlock""#);
/// ```
pub struct LogTemplateDetector {
    config: LogTemplateConfig,
    services: BTreeMap<Symbol, ServiceState>,
    timers: BTreeSet<Timer>,
}

impl Default for LogTemplateDetector {
    fn default() -> Self {
        LogTemplateDetector::new(LogTemplateConfig::default())
    }
}

impl LogTemplateDetector {
    /// A detector with this configuration.
    pub fn new(config: LogTemplateConfig) -> Self {
        LogTemplateDetector {
            config,
            services: BTreeMap::new(),
            timers: BTreeSet::new(),
        }
    }

    /// Number of services with state.
    pub fn services(&self) -> usize {
        self.services.len()
    }

    /// Number of live templates of a service.
    pub fn templates(&self, service: &str) -> usize {
        self.services
            .get(&Symbol::new(service))
            .map_or(0, |s| s.miner.len())
    }

    fn fire_before(&mut self, t: Timestamp, out: &mut Vec<Signal>) {
        while let Some(timer) = self.timers.first().cloned() {
            if timer.0 >= t {
                break;
            }
            self.timers.remove(&timer);
            let (due, service, id, kind) = timer;
            match kind {
                Kind::Window => self.end_window(&service, id, due, out),
                _ => self.close(&service, id, kind, due, "quiet", out),
            }
        }
    }

    fn observe(
        &mut self,
        ts: Timestamp,
        service: &Symbol,
        level: Level,
        message: &str,
        out: &mut Vec<Signal>,
    ) {
        if !self.services.contains_key(service) {
            self.make_room(ts, out);
            let miner = TemplateMiner::new(self.config.miner.clone());
            self.services.insert(
                service.clone(),
                ServiceState {
                    miner,
                    lines: 0,
                    first_ts: ts,
                    last_ts: ts,
                    templates: BTreeMap::new(),
                },
            );
        }
        let Some(s) = self.services.get_mut(service) else {
            return;
        };
        s.lines += 1;
        s.last_ts = ts;
        let warmed =
            s.lines > self.config.warmup_lines && ts.since(s.first_ts) >= self.config.warmup;
        let m = s.miner.observe(message);
        let (id, is_new) = (m.id, m.is_new);
        let merged: Vec<TemplateId> = m.merged.to_vec();
        let evicted = m.evicted;
        for gone in merged {
            self.fold(service, gone, id, ts, out);
        }
        if let Some(gone) = evicted {
            self.drop_template(service, gone, ts, "evicted", out);
        }
        let severity = error_severity(level, message);
        let c = self.config.clone();
        let Some(s) = self.services.get_mut(service) else {
            return;
        };
        let st = s.templates.entry(id).or_default();
        st.last_seen = ts;
        // The window: start one if none runs, after decaying the baseline over idle windows.
        if st.window_due.is_none() {
            let w = c.window.as_millis().max(1) as u64;
            st.window_start = Timestamp(ts.0 - ts.0 % w);
            if let Some(until) = st.closed_until {
                let idle = st.window_start.0.saturating_sub(until.0) / w;
                st.baseline *= (1.0 - c.baseline_alpha).powi(idle.min(10_000) as i32);
                st.windows = st.windows.saturating_add(idle as u32);
            }
            let due = Timestamp(st.window_start.0 + w - 1);
            st.window_due = Some(due);
            self.timers.insert((due, service.clone(), id, Kind::Window));
        }
        st.count += 1;
        for (kind, (e, _)) in st.episodes.iter_mut() {
            if *kind != Kind::Error || severity.is_some() {
                e.lines += 1;
            }
        }
        let mut opens: Vec<(Kind, Severity, String, f64)> = Vec::new();
        if is_new && warmed {
            opens.push((
                Kind::New,
                Severity::Info.max(level_severity(level)),
                String::new(),
                1.0,
            ));
        }
        if let Some(sev) = severity {
            st.errors += 1;
            st.last_error = ts;
            let escalate = sev < Severity::Critical && st.errors >= c.error_critical_count;
            match st.episodes.get_mut(&Kind::Error) {
                None => opens.push((Kind::Error, sev, String::new(), 1.0)),
                Some((e, _)) if escalate && e.severity < Severity::Critical => {
                    e.severity = Severity::Critical;
                    opens.push((
                        Kind::Error,
                        Severity::Critical,
                        format!(" at {} lines in {}", st.errors, fmt_duration(c.window)),
                        st.errors as f64,
                    ));
                }
                Some(_) => {}
            }
        }
        let reference = st.baseline.max(1.0);
        if warmed
            && st.windows >= c.baseline_windows
            && st.count >= c.spike_min_count
            && st.count as f64 >= c.spike_factor * reference
            && !st.episodes.contains_key(&Kind::Spike)
        {
            let detail = format!(
                " ×{:.0} over baseline ({} lines in {}, baseline {:.1})",
                st.count as f64 / reference,
                st.count,
                fmt_duration(c.window),
                st.baseline
            );
            opens.push((Kind::Spike, Severity::Warning, detail, st.count as f64));
        }
        for (kind, sev, detail, value) in opens {
            self.open(service, id, kind, sev, ts, &detail, value, out);
        }
        // Quiet timers restart with every line (NEW) or error line (ERROR).
        self.reschedule(service, id, Kind::New, ts.plus(c.new_quiet));
        if severity.is_some() {
            self.reschedule(service, id, Kind::Error, ts.plus(c.error_quiet));
        }
    }

    /// Moves the quiet timer of an open episode to `due`.
    fn reschedule(&mut self, service: &Symbol, id: TemplateId, kind: Kind, due: Timestamp) {
        let Some(st) = self
            .services
            .get_mut(service)
            .and_then(|s| s.templates.get_mut(&id))
        else {
            return;
        };
        let Some((_, timer)) = st.episodes.get_mut(&kind) else {
            return;
        };
        if let Some(old) = timer.take() {
            self.timers.remove(&(old, service.clone(), id, kind));
        }
        *timer = Some(due);
        self.timers.insert((due, service.clone(), id, kind));
    }

    #[allow(clippy::too_many_arguments)]
    fn open(
        &mut self,
        service: &Symbol,
        id: TemplateId,
        kind: Kind,
        severity: Severity,
        ts: Timestamp,
        detail: &str,
        value: f64,
        out: &mut Vec<Signal>,
    ) {
        let (name, text) = self.names(service, id);
        let Some(st) = self
            .services
            .get_mut(service)
            .and_then(|s| s.templates.get_mut(&id))
        else {
            return;
        };
        let reopened = st.episodes.contains_key(&kind);
        let episode = st.episodes.entry(kind).or_insert_with(|| {
            (
                Episode {
                    onset: ts,
                    lines: 1,
                    peak: 0,
                    severity,
                },
                None,
            )
        });
        episode.0.peak = episode.0.peak.max(st.count);
        let onset = episode.0.onset;
        let what = match kind {
            Kind::New => format!("new log template \"{text}\""),
            Kind::Spike | Kind::Window => format!("log template \"{text}\" spiking"),
            Kind::Error => format!(
                "{} log \"{text}\"",
                if severity == Severity::Critical && !reopened {
                    "fatal"
                } else {
                    "error"
                }
            ),
        };
        out.push(Signal {
            ts,
            onset,
            service: service.clone(),
            kind: SignalKind::LogTemplate,
            state: SignalState::Open,
            key: key(service, id, kind),
            name,
            severity,
            summary: format!("{service}: {what}{detail}"),
            value: Some(value),
            strength: 0.0,
        });
    }

    /// Closes an open episode at `ts` (a quiet timer, a fallen rate, a merge or an eviction).
    fn close(
        &mut self,
        service: &Symbol,
        id: TemplateId,
        kind: Kind,
        ts: Timestamp,
        why: &str,
        out: &mut Vec<Signal>,
    ) {
        let (name, text) = self.names(service, id);
        let Some(st) = self
            .services
            .get_mut(service)
            .and_then(|s| s.templates.get_mut(&id))
        else {
            return;
        };
        let Some((e, timer)) = st.episodes.remove(&kind) else {
            return;
        };
        if let Some(t) = timer {
            self.timers.remove(&(t, service.clone(), id, kind));
        }
        let span = fmt_duration(ts.since(e.onset));
        let (what, value) = match (kind, why) {
            (Kind::New, "quiet") => (
                format!(
                    "new log template \"{text}\" quiet for {} ({} in {span})",
                    fmt_duration(self.config.new_quiet),
                    lines(e.lines)
                ),
                e.lines,
            ),
            (Kind::Error, "quiet") => (
                format!(
                    "error log \"{text}\" quiet for {} ({} in {span})",
                    fmt_duration(self.config.error_quiet),
                    lines(e.lines)
                ),
                e.lines,
            ),
            (Kind::Spike, "quiet") => (
                format!(
                    "log template \"{text}\" back to {} lines in {} (peak {})",
                    st.count,
                    fmt_duration(self.config.window),
                    e.peak
                ),
                e.peak,
            ),
            (_, why) => (
                format!("{} log template \"{text}\" {why}", kind.as_str()),
                e.lines,
            ),
        };
        out.push(Signal {
            ts,
            onset: e.onset,
            service: service.clone(),
            kind: SignalKind::LogTemplate,
            state: SignalState::Close,
            key: key(service, id, kind),
            name,
            severity: e.severity,
            summary: format!("{service}: {what}"),
            value: Some(value as f64),
            strength: 0.0,
        });
    }
}

impl Detector for LogTemplateDetector {
    fn name(&self) -> &'static str {
        "log_templates"
    }

    fn on_event(&mut self, event: &Event, out: &mut Vec<Signal>) {
        self.fire_before(event.ts, out);
        if let EventBody::Log(log) = &event.body {
            self.observe(event.ts, &event.service, log.level, &log.message, out);
        }
    }

    fn on_watermark(&mut self, watermark: Timestamp, out: &mut Vec<Signal>) {
        self.fire_before(watermark, out);
    }
}

mod lifecycle;

use lifecycle::{error_severity, fmt_duration, key, level_severity, lines};

#[cfg(test)]
mod tests;
