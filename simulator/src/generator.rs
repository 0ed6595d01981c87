//! The tick loop: one metric interval at a time, metrics and alerts at the tick, then that
//! window's changes, logs and spans sorted by time, written into reusable [`Frame`]s. Memory
//! stays bounded by a few frames.

use kaizen_model::{
    Attributes, Change, Event, EventBody, Feedback, FeedbackAction, Labels, Level, Metric,
    MetricKind, Span, SpanStatus, Symbol, Timestamp,
};

use crate::alerts::{AlertBook, Observed};
use crate::effects::{self, Effect, Role};
use crate::estate::{Kind, Service};
use crate::frame::{Frame, FrameSink, Inline};
use crate::logs::{self, Ctx};
use crate::metrics::{self, CPU, ERR, MEM, NAMES, P50, P99, SAT};
use crate::plan::{plan, Cause, Plan};
use crate::rng::{push_hex, round_to, Rng};
use crate::templates;
use crate::ScenarioConfig;

/// A frame is handed over once it holds at least this many events (after a whole tick).
const FRAME_EVENTS: usize = 4096;
/// Calls exceeding this are cut off by the caller and reported as errors.
const CLIENT_TIMEOUT_MS: f64 = 5_000.0;

/// What a run produced.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Stats {
    pub events: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

/// Per-service state carried from tick to tick.
struct Live {
    version: String,
    pods: Vec<String>,
    /// Current typical latencies and error ratio (for spans).
    p50: f64,
    p99: f64,
    err: f64,
}

struct Keys {
    pod: Symbol,
    trace: Symbol,
}

/// Runs the scenario, calling `emit` for each event in time order until it returns false.
pub(crate) fn run(config: &ScenarioConfig, emit: &mut dyn FnMut(&Event) -> bool) -> Stats {
    run_frames(config, &mut Inline { emit, spare: None })
}

/// Runs the scenario, handing batches of events (in time order) to `sink`.
pub(crate) fn run_frames(config: &ScenarioConfig, sink: &mut dyn FrameSink) -> Stats {
    let plan = plan(config);
    let mut generator = Generator::new(config, &plan, sink.fresh());
    generator.run(sink);
    generator.stats
}

struct Generator<'p> {
    plan: &'p Plan,
    instances: usize,
    interval: u64,
    log_rate: f64,
    span_rate: f64,
    /// Prebuilt metric events, `[service][instance][metric]` flattened.
    series: Vec<Event>,
    mem_offsets: Vec<f64>,
    base_mem: Vec<f64>,
    live: Vec<Live>,
    effects: Vec<Effect>,
    roles: Vec<Role>,
    alerts: AlertBook,
    frame: Frame,
    stats: Stats,
    metric_rng: Rng,
    log_rng: Rng,
    span_rng: Rng,
    keys: Keys,
    scratch: String,
    restarts: Vec<(u64, usize, u32)>,
}

impl<'p> Generator<'p> {
    fn new(config: &ScenarioConfig, plan: &'p Plan, frame: Frame) -> Generator<'p> {
        let estate = &plan.estate;
        let instances = config.instances.max(1);
        let names: Vec<Symbol> = NAMES.iter().map(|n| Symbol::new(n)).collect();
        let instance_key = Symbol::new("instance");
        let mut series = Vec::with_capacity(estate.services.len() * instances * NAMES.len());
        let mut mem_offsets = Vec::with_capacity(estate.services.len() * instances);
        let mut offsets_rng = Rng::stream(config.seed, "memory", 0);
        for s in &estate.services {
            for i in 0..instances {
                let labels = Labels::from_pairs([(
                    instance_key.clone(),
                    Symbol::new(&format!("{}-{i}", s.name)),
                )]);
                mem_offsets.push(offsets_rng.uniform(-0.03, 0.03));
                for name in &names {
                    series.push(Event {
                        ts: Timestamp::from_millis(plan.start),
                        service: s.name.clone(),
                        body: EventBody::Metric(Metric {
                            name: name.clone(),
                            value: 0.0,
                            metric_kind: MetricKind::Gauge,
                            labels: labels.clone(),
                        }),
                    });
                }
            }
        }
        let live = estate
            .services
            .iter()
            .zip(&plan.initial_versions)
            .map(|(s, v)| Live {
                version: v.clone(),
                pods: s.pods(v, instances),
                p50: s.base.p50,
                p99: s.base.p99,
                err: s.base.err,
            })
            .collect();
        let mut restarts: Vec<(u64, usize, u32)> = plan
            .faults
            .iter()
            .flat_map(|f| {
                f.restarts
                    .iter()
                    .enumerate()
                    .map(move |(k, &r)| (r, f.origin, k as u32 + 1))
            })
            .collect();
        restarts.sort_unstable();
        Generator {
            plan,
            instances,
            interval: (config.metric_interval.as_millis() as u64).max(1000),
            log_rate: finite_rate(config.log_rate),
            span_rate: finite_rate(config.span_rate),
            series,
            mem_offsets,
            base_mem: estate.services.iter().map(|s| s.base.mem).collect(),
            live,
            effects: vec![Effect::default(); estate.services.len()],
            roles: Vec::new(),
            alerts: AlertBook::new(estate),
            frame,
            stats: Stats::default(),
            metric_rng: Rng::stream(config.seed, "metrics", 0),
            log_rng: Rng::stream(config.seed, "logs", 0),
            span_rng: Rng::stream(config.seed, "spans", 0),
            keys: Keys {
                pod: Symbol::new("pod"),
                trace: Symbol::new("trace_id"),
            },
            scratch: String::with_capacity(256),
            restarts,
        }
    }

    fn run(&mut self, sink: &mut dyn FrameSink) {
        let (mut change_i, mut restart_i) = (0, 0);
        let mut t = self.plan.start;
        while t < self.plan.end {
            let wend = (t + self.interval).min(self.plan.end);
            let before = self.frame.len();
            effects::compute(
                &self.plan.faults,
                &self.base_mem,
                t,
                &mut self.effects,
                &mut self.roles,
            );
            self.metrics_and_alerts(t);
            while let Some(c) = self.plan.changes.get(change_i).filter(|c| c.ts < wend) {
                self.change(c);
                change_i += 1;
            }
            while let Some(&(r, svc, k)) = self.restarts.get(restart_i).filter(|r| r.0 < wend) {
                self.restart_logs(r.max(t), wend, svc, k);
                restart_i += 1;
            }
            self.logs(t, wend);
            self.spans(t, wend);
            let last = self.frame.finish_window().unwrap_or(t).max(t);
            if self.frame.len() > before {
                self.stats.events += (self.frame.len() - before) as u64;
                self.stats.first.get_or_insert(Timestamp::from_millis(t));
                self.stats.last = Some(Timestamp::from_millis(last));
            }
            if self.frame.len() >= FRAME_EVENTS {
                let full = std::mem::replace(&mut self.frame, sink.fresh());
                if !sink.full(full) {
                    return;
                }
            }
            t = wend;
        }
        if self.frame.len() > 0 {
            let full = std::mem::take(&mut self.frame);
            sink.full(full);
        }
    }

    fn metrics_and_alerts(&mut self, t: u64) {
        let estate = &self.plan.estate;
        let season = metrics::season(t);
        let per_svc = self.instances * NAMES.len();
        let first = self.frame.metric_tick(&self.series);
        for (si, s) in estate.services.iter().enumerate() {
            let e = &self.effects[si];
            let mut o = Observed::default();
            let mut p50_sum = 0.0;
            for inst in 0..self.instances {
                let v = metrics::sample(
                    &s.base,
                    self.mem_offsets[si * self.instances + inst],
                    self.instances,
                    season,
                    e,
                    &mut self.metric_rng,
                );
                let base = first + si * per_svc + inst * NAMES.len();
                for (m, value) in v.iter().enumerate() {
                    let ev = self.frame.metric(base + m);
                    ev.ts = Timestamp::from_millis(t);
                    if let EventBody::Metric(x) = &mut ev.body {
                        x.value = *value;
                    }
                }
                o.err += v[ERR];
                o.cpu += v[CPU];
                o.p99 = o.p99.max(v[P99]);
                o.mem = o.mem.max(v[MEM]);
                o.sat = o.sat.max(v[SAT]);
                p50_sum += v[P50];
            }
            let n = self.instances as f64;
            o.err /= n;
            o.cpu /= n;
            let live = &mut self.live[si];
            live.err = o.err;
            live.p50 = p50_sum / n;
            live.p99 = o.p99;
            let frame = &mut self.frame;
            self.alerts
                .evaluate(estate, si, t, &o, e, &mut |ev| frame.push_now(ev));
        }
    }

    fn change(&mut self, c: &crate::plan::PlannedChange) {
        let s = &self.plan.estate.services[c.svc];
        if let Some(v) = &c.version {
            let live = &mut self.live[c.svc];
            live.version.clone_from(v);
            live.pods = s.pods(v, self.instances);
        }
        let e = self.frame.window_slot(c.ts, &s.name);
        e.body = EventBody::Change(Change {
            change_kind: c.kind.clone(),
            version: c.version.clone(),
            description: c.description.clone(),
            author: Some(c.author.clone()),
        });
        // The responder who applied the remedy says it worked, as a Slack button would. The
        // feedback names the service, not an incident id: the simulator cannot know kaizen's ids.
        if let Cause::FaultRollback(f) | Cause::FaultFix(f) = c.cause {
            if let Some(fault) = self.plan.faults.get(f) {
                let e = self.frame.window_slot(c.ts, &s.name);
                e.body = EventBody::Feedback(Feedback {
                    incident: String::new(),
                    action: FeedbackAction::RemedyWorked,
                    remedy: Some(fault.remedy.clone()),
                    user: Some(c.author.clone()),
                });
            }
        }
    }

    fn restart_logs(&mut self, r: u64, wend: u64, svc: usize, count: u32) {
        let s = &self.plan.estate.services[svc];
        for (i, pod) in self.live[svc].pods.iter().enumerate() {
            let ts = (r + i as u64 * 997).min(wend - 1);
            self.scratch.clear();
            self.scratch
                .push_str("OOMKilled: container restarted (restart count ");
            self.scratch.push_str(&count.to_string());
            self.scratch.push(')');
            let attrs = Attributes::from_pairs([(self.keys.pod.clone(), pod.clone())]);
            self.frame
                .push_log(ts, &s.name, Level::Error, &self.scratch, attrs);
        }
    }

    fn logs(&mut self, t: u64, wend: u64) {
        if self.log_rate <= 0.0 {
            return;
        }
        let estate = &self.plan.estate;
        let secs = (wend - t) as f64 / 1000.0;
        for (si, s) in estate.services.iter().enumerate() {
            let n = self.log_rng.count(self.log_rate * secs);
            let templates = templates::benign(s.kind);
            for _ in 0..n {
                let peer = neighbour(estate, s, &mut self.log_rng);
                let (level, _, text) = templates::pick(templates, &mut self.log_rng);
                let ctx = Ctx {
                    svc: s,
                    peer: peer.map_or("client", |p| p.name.as_str()),
                    routes: peer.map_or(&[][..], |p| &p.ops[..]),
                    version: &self.live[si].version,
                    table: None,
                    p50: s.base.p50,
                };
                let out = LogOut {
                    frame: &mut self.frame,
                    rng: &mut self.log_rng,
                    scratch: &mut self.scratch,
                    keys: &self.keys,
                };
                out.emit(t, wend, &s.name, &self.live[si].pods, level, text, &ctx);
            }
        }
        for ri in 0..self.roles.len() {
            let role = self.roles[ri];
            let f = &self.plan.faults[role.fault];
            let s = &estate.services[role.svc];
            let scale = if role.via.is_none() { 1.5 } else { 0.8 };
            let n = self
                .log_rng
                .count(self.log_rate * scale * role.strength * secs);
            let via = role.via.map(|v| &estate.services[v]);
            let templates =
                templates::fault(f.kind, s.kind, via.map(|v| v.kind), role.hop, role.strength);
            for _ in 0..n {
                let (level, _, text) = templates::pick(templates, &mut self.log_rng);
                let ctx = Ctx {
                    svc: s,
                    peer: via.map_or(s.name.as_str(), |v| v.name.as_str()),
                    routes: via.map_or(&[][..], |v| &v.ops[..]),
                    version: &self.live[role.svc].version,
                    table: Some(f.table)
                        .filter(|_| f.kind == crate::faults::FaultKind::DatabaseSlowdown),
                    p50: self.live[role.svc].p50,
                };
                let out = LogOut {
                    frame: &mut self.frame,
                    rng: &mut self.log_rng,
                    scratch: &mut self.scratch,
                    keys: &self.keys,
                };
                out.emit(
                    t,
                    wend,
                    &s.name,
                    &self.live[role.svc].pods,
                    level,
                    text,
                    &ctx,
                );
            }
        }
    }

    fn spans(&mut self, t: u64, wend: u64) {
        if self.span_rate <= 0.0 {
            return;
        }
        let estate = &self.plan.estate;
        let mean = self.span_rate * (wend - t) as f64 / 1000.0;
        for s in &estate.services {
            for &ci in &s.callees {
                let callee = &estate.services[ci];
                let state = &self.live[ci];
                for _ in 0..self.span_rng.count(mean) {
                    let rng = &mut self.span_rng;
                    let ts = t + rng.below(wend - t);
                    let op = if callee.kind == Kind::Queue {
                        &callee.ops[usize::from(s.kind == Kind::Worker).min(callee.ops.len() - 1)]
                    } else {
                        &callee.ops[rng.index(callee.ops.len())]
                    };
                    let mut duration = if rng.chance(0.9) {
                        state.p50 * rng.uniform(0.5, 1.6)
                    } else {
                        state.p50 + (state.p99 - state.p50) * rng.uniform(0.3, 1.05)
                    };
                    let mut status = if rng.chance(state.err) {
                        SpanStatus::Error
                    } else {
                        SpanStatus::Ok
                    };
                    if duration > CLIENT_TIMEOUT_MS {
                        duration = CLIENT_TIMEOUT_MS + rng.uniform(0.0, 15.0);
                        status = SpanStatus::Error;
                    }
                    let (hi, lo) = (rng.next_u64(), rng.next_u64());
                    let e = self.frame.window_slot(ts, &s.name);
                    let fill = |trace: &mut String| {
                        trace.clear();
                        push_hex(trace, hi, 16);
                        push_hex(trace, lo, 16);
                    };
                    if let EventBody::Span(x) = &mut e.body {
                        x.peer = Some(callee.name.clone());
                        x.operation = op.clone();
                        x.duration_ms = round_to(duration, 100.0);
                        x.status = status;
                        match &mut x.trace_id {
                            Some(tr) => fill(tr),
                            None => {
                                let mut tr = String::with_capacity(32);
                                fill(&mut tr);
                                x.trace_id = Some(tr);
                            }
                        }
                    } else {
                        let mut tr = String::with_capacity(32);
                        fill(&mut tr);
                        e.body = EventBody::Span(Span {
                            peer: Some(callee.name.clone()),
                            operation: op.clone(),
                            duration_ms: round_to(duration, 100.0),
                            status,
                            trace_id: Some(tr),
                        });
                    }
                }
            }
        }
    }
}

/// The parts of the generator a log line needs (split out to borrow alongside the estate).
struct LogOut<'a> {
    frame: &'a mut Frame,
    rng: &'a mut Rng,
    scratch: &'a mut String,
    keys: &'a Keys,
}

impl LogOut<'_> {
    /// Renders `text` and queues it at a random time in `[t, wend)` from a random pod.
    #[allow(clippy::too_many_arguments)]
    fn emit(
        self,
        t: u64,
        wend: u64,
        service: &Symbol,
        pods: &[String],
        level: Level,
        text: &str,
        ctx: &Ctx<'_>,
    ) {
        let ts = t + self.rng.below(wend - t);
        self.scratch.clear();
        let rid = logs::render(self.scratch, text, ctx, self.rng);
        let pod = pods
            .get(self.rng.index(pods.len()))
            .cloned()
            .unwrap_or_default();
        let attrs = match rid {
            Some(r) => {
                let mut trace = String::with_capacity(32);
                push_hex(&mut trace, r, 16);
                push_hex(&mut trace, r.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15, 16);
                Attributes::from_pairs([
                    (self.keys.pod.clone(), pod),
                    (self.keys.trace.clone(), trace),
                ])
            }
            None => Attributes::from_pairs([(self.keys.pod.clone(), pod)]),
        };
        self.frame.push_log(ts, service, level, self.scratch, attrs);
    }
}

fn finite_rate(r: f64) -> f64 {
    if r.is_finite() && r > 0.0 {
        r
    } else {
        0.0
    }
}

/// A random neighbour of `s` (a callee if it has any, else a caller).
fn neighbour<'e>(
    estate: &'e crate::estate::Estate,
    s: &Service,
    rng: &mut Rng,
) -> Option<&'e Service> {
    let pool = if s.callees.is_empty() {
        &s.callers
    } else {
        &s.callees
    };
    pool.get(rng.index(pool.len()))
        .map(|&i| &estate.services[i])
}
