//! Stage two of running rules: per (rule, group) state — windows, sessions, sequence
//! matchers and the alert lifecycle — fed [`RuleRow`]s in event-time order and watermarks, like
//! every detector (see `kaizen_operators::Detector` for the timing contract).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use kaizen_model::{
    Explanation, FxBuildHasher, IncidentStatus, Insight, Signal, SignalKind, SignalState,
    StableHasher, Symbol, TimelineEntry, Timestamp,
};

use crate::aggregate::{Acc, AggFn};
use crate::check::AggSpec;
use crate::evidence::Evidence;
use crate::expr::Ctx;
use crate::filter::{RowKind, RuleRow};
use crate::firing::{Lifecycle, Transition};
use crate::graph::Dependencies;
use crate::join::{JoinBuffers, JoinPlan};
use crate::plan::{Rule, Shape, Window};
use crate::ruleset::RuleSet;
use crate::sequence::Matcher;
use crate::syntax::Emit;
use crate::value::Value;

/// How long a row-by-row condition (filter, sequence, session rules) counts as holding after
/// its latest hit — Prometheus's staleness period.
pub const QUIET_MS: u64 = 5 * 60_000;

/// Input events kept per window for explanations.
const EVIDENCE: usize = 5;

/// What a rule produces.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleOutput {
    /// A signal for correlation, with why (on open).
    Signal(Signal, Option<Explanation>),
    /// An insight straight to the sinks (`EMIT INSIGHT`).
    Insight(Insight),
}

#[derive(Clone, Debug)]
struct Win {
    start: u64,
    end: u64,
    accs: Vec<Acc>,
    count: u64,
    evidence: Vec<Evidence>,
}

impl Win {
    fn new(rule: &Rule, start: u64, end: u64) -> Win {
        let accs = match &rule.shape {
            Shape::Aggregate { aggs, .. } => aggs.iter().map(|a| a.f.start()).collect(),
            _ => Vec::new(),
        };
        Win {
            start,
            end,
            accs,
            count: 0,
            evidence: Vec::new(),
        }
    }

    /// Folds in what was aggregated elsewhere: a stage-one partial (a pane or a whole
    /// session), or a pane into the sliding window it belongs to.
    fn absorb(&mut self, aggs: &[AggSpec], accs: &[Acc], count: u64, evidence: &[Evidence]) {
        for ((acc, spec), other) in self.accs.iter_mut().zip(aggs).zip(accs) {
            acc.merge(spec.f, other);
        }
        self.count += count;
        for e in evidence {
            if self.evidence.len() < EVIDENCE {
                self.evidence.push(e.clone());
            }
        }
    }

    fn add(&mut self, rule: &Rule, row: &RuleRow) {
        self.count += 1;
        if let Shape::Aggregate { aggs, .. } = &rule.shape {
            for (acc, (spec, v)) in self.accs.iter_mut().zip(aggs.iter().zip(&row.values)) {
                acc.add(spec.f, row.ts, v);
            }
        }
        if self.evidence.len() < EVIDENCE {
            if let Some(e) = &row.evidence {
                self.evidence.push(e.clone());
            }
        }
    }
}

/// What the latest hit looked like, for summaries and explanations.
#[derive(Clone, Debug, Default)]
struct Hit {
    values: Vec<Value>,
    window: Option<(u64, u64)>,
    evidence: Vec<Evidence>,
    count: u64,
    /// For rules whose group does not name the service: the services of the rows, most
    /// rows first.
    services: Vec<Symbol>,
}

#[derive(Debug)]
struct Group {
    service: Symbol,
    life: Lifecycle,
    windows: BTreeMap<u64, Win>,
    session: Option<(Win, u64)>,
    matcher: Matcher,
    join: JoinBuffers,
    /// For sliding windows: the end of the next window to evaluate.
    hop_next: Option<u64>,
    /// The timer set for this group (others in the queue for it are stale).
    scheduled: Option<u64>,
    hit: Hit,
    opened: Option<Opened>,
}

/// What a firing said when it opened; its close says the same.
#[derive(Debug)]
struct Opened {
    onset: u64,
    summary: String,
    why: Explanation,
    /// The service it is attributed to first, then any others it is about.
    services: Vec<Symbol>,
}

type GroupKey = (u64, Vec<Value>);

/// Stage two: [`RuleRow`]s and watermarks in, signals and insights out.
pub struct RuleEvaluator {
    rules: Arc<RuleSet>,
    groups: HashMap<GroupKey, Group, FxBuildHasher>,
    timers: BTreeSet<(u64, u64, Vec<Value>)>,
    graph: Option<Arc<Dependencies>>,
}

impl RuleEvaluator {
    /// An evaluator for `rules`.
    pub fn new(rules: Arc<RuleSet>) -> RuleEvaluator {
        RuleEvaluator {
            rules,
            groups: HashMap::default(),
            timers: BTreeSet::new(),
            graph: None,
        }
    }

    /// With the service dependency graph, for `depends_on` and friends.
    pub fn with_graph(mut self, graph: Arc<Dependencies>) -> RuleEvaluator {
        self.graph = Some(graph);
        self
    }

    /// Swaps in a new rule set at event time `now`: groups of unchanged rules keep their
    /// state; firing groups of removed or changed rules resolve.
    pub fn set_rules(&mut self, rules: Arc<RuleSet>, now: u64, out: &mut Vec<RuleOutput>) {
        let gone: Vec<GroupKey> = self
            .groups
            .keys()
            .filter(|(id, _)| rules.by_id(*id).is_none())
            .cloned()
            .collect();
        for key in gone {
            if let (Some(mut g), Some(rule)) =
                (self.groups.remove(&key), self.rules.by_id(key.0).cloned())
            {
                if g.life.is_firing() {
                    emit(&rule, &key.1, &mut g, Transition::Close { at: now }, out);
                }
            }
        }
        self.timers.retain(|(_, id, _)| rules.by_id(*id).is_some());
        self.rules = rules;
    }

    /// Number of live groups (for metrics and tests).
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// Feeds one row (rows arrive in (ts, seq) order).
    pub fn on_row(&mut self, mut row: RuleRow, out: &mut Vec<RuleOutput>) {
        self.fire_due(row.ts, true, out);
        let Some(rule) = self.rules.by_id(row.rule).cloned() else {
            return;
        };
        let key = (row.rule, std::mem::take(&mut row.key));
        if !self.groups.contains_key(&key) {
            self.groups.insert(
                key.clone(),
                Group {
                    service: row.service.clone(),
                    life: Lifecycle::default(),
                    windows: BTreeMap::new(),
                    session: None,
                    matcher: Matcher::default(),
                    join: JoinBuffers::default(),
                    hop_next: None,
                    scheduled: None,
                    hit: Hit::default(),
                    opened: None,
                },
            );
        }
        if let Some(g) = self.groups.get_mut(&key) {
            match (&rule.join, row.kind) {
                (Some(plan), RowKind::Side(side)) => {
                    for joined in pairs(&rule, plan, g, &row, side, self.graph.as_deref()) {
                        apply(&rule, &key.1, g, &joined, out);
                    }
                }
                _ => apply(&rule, &key.1, g, &row, out),
            }
        }
        self.schedule_after(&rule, &key, None);
    }

    /// No row with `ts < watermark` will follow.
    pub fn on_watermark(&mut self, watermark: u64, out: &mut Vec<RuleOutput>) {
        self.fire_due(watermark, false, out);
    }

    fn fire_due(&mut self, t: u64, inclusive: bool, out: &mut Vec<RuleOutput>) {
        while let Some((due, _, _)) = self.timers.first() {
            if *due > t || (*due == t && !inclusive) {
                break;
            }
            let Some((due, id, key)) = self.timers.pop_first() else {
                break;
            };
            let Some(rule) = self.rules.by_id(id).cloned() else {
                continue;
            };
            let gk = (id, key);
            match self.groups.get_mut(&gk) {
                // A timer the group has since moved is stale.
                Some(g) if g.scheduled == Some(due) => {
                    g.scheduled = None;
                    on_time(&rule, &gk.1, g, due, out);
                }
                _ => continue,
            }
            self.schedule_after(&rule, &gk, Some(due));
        }
    }

    /// Sets the group's next timer, or forgets the group when nothing is left to do. A timer
    /// that just fired at `fired` is never re-armed at or before it: time only moves forward.
    fn schedule_after(&mut self, rule: &Rule, key: &GroupKey, fired: Option<u64>) {
        let Some(g) = self.groups.get_mut(key) else {
            return;
        };
        let due = match (next_due(rule, g), fired) {
            (Some(d), Some(f)) if d <= f => Some(f + 1),
            (d, _) => d,
        };
        match due {
            // An earlier timer is already set: it fires, finds nothing due yet (every timer
            // action is idempotent) and re-arms — far cheaper than re-queueing on every row
            // while a session or a quiet period keeps moving.
            Some(due) if g.scheduled.is_some_and(|s| s <= due) => {}
            Some(due) => {
                g.scheduled = Some(due);
                self.timers.insert((due, key.0, key.1.clone()));
            }
            None if !g.life.is_active() && g.matcher.is_idle() && g.join.is_empty() => {
                self.groups.remove(key);
            }
            None => g.scheduled = None,
        }
    }
}

fn instant(rule: &Rule) -> bool {
    !matches!(
        &rule.shape,
        Shape::Aggregate {
            window: Window::Tumble { .. } | Window::Hop { .. },
            ..
        }
    )
}

fn next_due(rule: &Rule, g: &Group) -> Option<u64> {
    let mut due: Option<u64> = None;
    let mut at = |t: u64| due = Some(due.map_or(t, |d| d.min(t)));
    if let Some(t) = rule.join.as_ref().and_then(|plan| g.join.next_expiry(plan)) {
        at(t);
    }
    match (&rule.shape, g.hop_next) {
        (
            Shape::Aggregate {
                window: Window::Hop { .. },
                ..
            },
            Some(e),
        ) => at(e),
        (
            Shape::Aggregate {
                window: Window::Hop { .. },
                ..
            },
            None,
        ) => {}
        _ => {
            if let Some(w) = g.windows.values().map(|w| w.end).min() {
                at(w);
            }
        }
    }
    if let (
        Some((_, last)),
        Shape::Aggregate {
            window: Window::Session { gap },
            ..
        },
    ) = (&g.session, &rule.shape)
    {
        at(last + gap);
    }
    if instant(rule) && g.life.is_active() && !g.life.is_clearing() {
        match (rule.reads_states(), g.life.pending_since()) {
            (true, Some(since)) => at(since + rule.for_ms),
            (true, None) => {}
            (false, _) => {
                if let Some(h) = g.life.last_hit() {
                    at(h + QUIET_MS);
                }
            }
        }
    }
    if let Some(c) = g.life.clears_at(rule.keep_ms) {
        at(c);
    }
    if let (Shape::Sequence(plan), false) = (&rule.shape, g.matcher.is_idle()) {
        if let Some(w) = plan.within {
            // Checked again when the oldest partial match can no longer complete.
            at(g.hit.window.map_or(0, |(s, _)| s) + w + 1);
        }
    }
    due
}

fn apply(rule: &Rule, key: &[Value], g: &mut Group, row: &RuleRow, out: &mut Vec<RuleOutput>) {
    match (&rule.shape, row.kind) {
        (Shape::Filter { .. }, RowKind::Hit) => {
            g.hit = Hit {
                values: row.values.clone(),
                window: None,
                evidence: row.evidence.iter().cloned().collect(),
                count: 1,
                services: Vec::new(),
            };
            if let Some(t) = g.life.hit(row.ts, rule.for_ms) {
                emit(rule, key, g, t, out);
            }
        }
        (_, RowKind::Miss) => {
            if let Some(t) = g.life.miss(row.ts, rule.keep_ms) {
                emit(rule, key, g, t, out);
            }
        }
        (Shape::Aggregate { window, aggs, .. }, RowKind::Partial) => {
            let Some(p) = row.partial.as_deref() else {
                return;
            };
            let width = match *window {
                Window::Tumble { size } => size,
                Window::Hop { slide, .. } => slide,
                Window::Session { .. } => {
                    // A whole session, combined in stage one: closes `gap` after its end.
                    let (w, last) = g
                        .session
                        .get_or_insert_with(|| (Win::new(rule, p.start, p.start), p.start));
                    w.absorb(aggs, &p.accs, p.count, &p.evidence);
                    w.end = p.end;
                    *last = p.end;
                    return;
                }
            };
            let w = g
                .windows
                .entry(p.start)
                .or_insert_with(|| Win::new(rule, p.start, p.start + width));
            w.absorb(aggs, &p.accs, p.count, &p.evidence);
            if matches!(window, Window::Hop { .. }) && g.hop_next.is_none() {
                g.hop_next = Some(p.start + width);
            }
        }
        (Shape::Aggregate { window, .. }, RowKind::Hit) => match *window {
            Window::Tumble { size } => {
                let start = row.ts - row.ts % size;
                g.windows
                    .entry(start)
                    .or_insert_with(|| Win::new(rule, start, start + size))
                    .add(rule, row);
            }
            Window::Hop { slide, .. } => {
                // One pane per slide; a window is assembled from the panes it covers.
                let start = row.ts - row.ts % slide;
                g.windows
                    .entry(start)
                    .or_insert_with(|| Win::new(rule, start, start + slide))
                    .add(rule, row);
                if g.hop_next.is_none() {
                    g.hop_next = Some(start + slide);
                }
            }
            Window::Session { .. } => {
                let (w, last) = g
                    .session
                    .get_or_insert_with(|| (Win::new(rule, row.ts, row.ts), row.ts));
                w.add(rule, row);
                w.end = row.ts;
                *last = row.ts;
            }
        },
        (Shape::Sequence(plan), RowKind::Classes(bits)) => {
            if g.matcher.is_idle() {
                g.hit.window = Some((row.ts, row.ts));
            }
            if let Some(m) = g.matcher.on_row(plan, row.ts, bits, &row.values) {
                g.hit = Hit {
                    values: m.values,
                    window: Some((m.start, row.ts)),
                    evidence: row.evidence.iter().cloned().collect(),
                    count: 1,
                    services: Vec::new(),
                };
                if let Some(t) = g.life.hit(row.ts, rule.for_ms) {
                    emit(rule, key, g, t, out);
                }
            }
        }
        _ => {}
    }
}

/// A join row meets the other side's buffered rows: each pair that passes the residual
/// condition becomes a hit row carrying the rule's outputs (filter) or aggregate arguments.
fn pairs(
    rule: &Rule,
    plan: &JoinPlan,
    g: &mut Group,
    row: &RuleRow,
    side: u8,
    graph: Option<&Dependencies>,
) -> Vec<RuleRow> {
    let mut joined = Vec::new();
    g.join.add(
        plan,
        side as usize,
        row.ts,
        row.values.clone(),
        row.evidence.clone(),
        |l, r, other| {
            let cx = Ctx::pair(l, r).with_graph(graph);
            if plan
                .residual
                .as_ref()
                .is_some_and(|c| !c.eval(&cx).is_true())
            {
                return;
            }
            let values = match &rule.shape {
                Shape::Filter { outputs } => outputs.iter().map(|(_, e)| e.eval(&cx)).collect(),
                Shape::Aggregate { aggs, .. } => aggs
                    .iter()
                    .map(|a| a.arg.as_ref().map_or(Value::Null, |e| e.eval(&cx)))
                    .collect(),
                Shape::Sequence(_) => Vec::new(),
            };
            let evidence = match (&row.evidence, other) {
                (Some(a), Some(b)) => Some(Evidence::text(format!("{b} ⨝ {a}"))),
                (a, b) => a.clone().or_else(|| b.cloned()),
            };
            joined.push(RuleRow {
                kind: RowKind::Hit,
                values,
                evidence,
                ..row.clone()
            });
        },
    );
    joined
}

fn on_time(rule: &Rule, key: &[Value], g: &mut Group, now: u64, out: &mut Vec<RuleOutput>) {
    if let Some(plan) = &rule.join {
        g.join.expire(plan, now);
    }
    if let Shape::Aggregate {
        window,
        having,
        aggs,
        ..
    } = &rule.shape
    {
        if let Window::Hop { slide, size } = *window {
            close_hops(rule, key, g, now, slide, size, out);
        } else {
            let closing: Vec<u64> = g
                .windows
                .range(..)
                .filter(|(_, w)| w.end <= now)
                .map(|(s, _)| *s)
                .collect();
            for start in closing {
                if let Some(w) = g.windows.remove(&start) {
                    close_window(rule, key, g, w, having.as_ref(), aggs.len(), out);
                }
            }
        }
        if let (Window::Session { gap }, Some((_, last))) = (window, &g.session) {
            if last + gap <= now {
                if let Some((mut w, last)) = g.session.take() {
                    w.end = last + gap;
                    close_window(rule, key, g, w, having.as_ref(), aggs.len(), out);
                }
            }
        }
        // An active group with no rows in the next window must see that window close too,
        // or a condition that stopped holding would never be told so.
        if g.life.is_active() && g.windows.is_empty() {
            let next = match *window {
                Window::Tumble { size } => Some((now - now % size, size)),
                // Panes: `close_hops` keeps evaluating while the group is active.
                Window::Hop { .. } | Window::Session { .. } => None,
            };
            if let Some((start, size)) = next {
                if start + size > now {
                    g.windows.insert(start, Win::new(rule, start, start + size));
                }
            }
        }
    }
    if let Some(since) = g.life.pending_since().filter(|_| rule.reads_states()) {
        let due = since + rule.for_ms;
        if due <= now {
            if let Some(t) = g.life.hit(due, rule.for_ms) {
                emit(rule, key, g, t, out);
            }
        }
    } else if instant(rule) && g.life.is_active() && !g.life.is_clearing() {
        if let Some(h) = g.life.last_hit().filter(|_| !rule.reads_states()) {
            if h + QUIET_MS <= now {
                if let Some(t) = g.life.miss(h + QUIET_MS, rule.keep_ms) {
                    emit(rule, key, g, t, out);
                }
            }
        }
    }
    if let Some(t) = g.life.tick(now, rule.keep_ms) {
        emit(rule, key, g, t, out);
    }
    if let Shape::Sequence(plan) = &rule.shape {
        g.matcher.expire(plan, now);
    }
}

/// Evaluates every sliding window that ended by `now`, from the panes it covers, and drops
/// panes no later window needs.
fn close_hops(
    rule: &Rule,
    key: &[Value],
    g: &mut Group,
    now: u64,
    slide: u64,
    size: u64,
    out: &mut Vec<RuleOutput>,
) {
    let Shape::Aggregate { aggs, having, .. } = &rule.shape else {
        return;
    };
    while let Some(end) = g.hop_next.filter(|e| *e <= now) {
        let start = end.saturating_sub(size);
        let mut w = Win::new(rule, start, end);
        for pane in g.windows.range(start..end).map(|(_, p)| p) {
            w.absorb(aggs, &pane.accs, pane.count, &pane.evidence);
        }
        if w.count > 0 || g.life.is_active() {
            close_window(rule, key, g, w, having.as_ref(), aggs.len(), out);
        }
        // Panes starting before the next window's start are done.
        let keep_from = (end + slide).saturating_sub(size);
        g.windows.retain(|s, _| *s >= keep_from);
        g.hop_next = (!g.windows.is_empty() || g.life.is_active()).then_some(end + slide);
    }
}

fn close_window(
    rule: &Rule,
    key: &[Value],
    g: &mut Group,
    w: Win,
    having: Option<&crate::expr::Expr>,
    n_aggs: usize,
    out: &mut Vec<RuleOutput>,
) {
    let Shape::Aggregate { aggs, outputs, .. } = &rule.shape else {
        return;
    };
    debug_assert_eq!(n_aggs, aggs.len());
    let span = w.end.saturating_sub(w.start).max(1);
    let results: Vec<Value> = aggs
        .iter()
        .zip(&w.accs)
        .map(|(a, acc)| acc.result(a.f, span))
        .collect();
    let cx = Ctx {
        row: None,
        group: key,
        aggs: &results,
        window: (w.start, w.end),
        pair: None,
        graph: None,
        series: None,
    };
    let holds = having.is_none_or(|h| h.eval(&cx).is_true()) && (w.count > 0 || having.is_some());
    let transition = if holds {
        let tally = aggs.iter().zip(&w.accs).find(|(a, _)| a.f == AggFn::Tally);
        g.hit = Hit {
            values: outputs.iter().map(|(_, e)| e.eval(&cx)).collect(),
            window: Some((w.start, w.end)),
            evidence: w.evidence,
            count: w.count,
            services: tally.map_or_else(Vec::new, |(_, acc)| {
                acc.ranked()
                    .into_iter()
                    .filter_map(|v| v.as_str().map(Symbol::new))
                    .collect()
            }),
        };
        g.life.hit(w.end, rule.for_ms)
    } else {
        g.life.miss(w.end, rule.keep_ms)
    };
    if let Some(t) = transition {
        emit(rule, key, g, t, out);
    }
}

fn outputs_of(rule: &Rule) -> &[(String, crate::expr::Expr)] {
    match &rule.shape {
        Shape::Filter { outputs } | Shape::Aggregate { outputs, .. } => outputs,
        Shape::Sequence(s) => &s.outputs,
    }
}

fn lookup(rule: &Rule, key: &[Value], hit: &Hit, name: &str) -> Option<String> {
    if let Some(i) = rule.keys.iter().position(|(n, _)| n == name) {
        return key.get(i).map(Value::to_string);
    }
    if let Some(i) = outputs_of(rule).iter().position(|(n, _)| n == name) {
        return hit.values.get(i).map(Value::to_string);
    }
    match name {
        "rule" => Some(rule.name.clone()),
        "severity" => Some(rule.severity.as_str().to_string()),
        "window_start" => hit.window.map(|(s, _)| Timestamp::from_millis(s).clock()),
        "window_end" => hit.window.map(|(_, e)| Timestamp::from_millis(e).clock()),
        "value" => first_number(hit).map(|n| Value::Num(n).to_string()),
        _ => None,
    }
}

fn first_number(hit: &Hit) -> Option<f64> {
    hit.values.iter().find_map(|v| match v {
        Value::Num(n) => Some(*n),
        _ => None,
    })
}

fn summary(rule: &Rule, key: &[Value], hit: &Hit) -> String {
    if let Some((_, t)) = rule.annotations.iter().find(|(k, _)| k == "summary") {
        return t.render(|name| lookup(rule, key, hit, name));
    }
    let mut parts = vec![rule.name.clone()];
    for (i, (n, _)) in rule.keys.iter().enumerate() {
        if let Some(v) = key.get(i) {
            parts.push(format!("{n}={v}"));
        }
    }
    for (i, (n, _)) in outputs_of(rule).iter().enumerate() {
        if rule.keys.iter().any(|(k, _)| k == n) {
            continue;
        }
        if let Some(v) = hit.values.get(i) {
            parts.push(format!("{n}={v}"));
        }
    }
    parts.join(" ")
}

fn explanation(rule: &Rule, key: &[Value], hit: &Hit) -> Explanation {
    Explanation {
        rule: rule.name.clone(),
        source: rule.source.clone(),
        group: rule
            .keys
            .iter()
            .zip(key)
            .map(|((n, _), v)| (n.clone(), v.to_string()))
            .collect(),
        window: hit
            .window
            .map(|(s, e)| (Timestamp::from_millis(s), Timestamp::from_millis(e))),
        values: outputs_of(rule)
            .iter()
            .zip(&hit.values)
            .map(|((n, _), v)| (n.clone(), v.to_string()))
            .collect(),
        events: hit.evidence.iter().map(|e| e.to_string()).collect(),
        event_count: hit.count,
    }
}

fn key_text(rule: &Rule, key: &[Value]) -> String {
    let parts: Vec<String> = key.iter().map(Value::to_string).collect();
    format!("{}:{}", rule.name, parts.join(","))
}

fn service_of(rule: &Rule, key: &[Value], g: &Group) -> Symbol {
    match rule
        .keys
        .iter()
        .position(|(n, _)| n == "service")
        .and_then(|i| key.get(i))
    {
        Some(v) => Symbol::new(&v.to_string()),
        None => g.hit.services.first().unwrap_or(&g.service).clone(),
    }
}

fn emit(rule: &Rule, key: &[Value], g: &mut Group, t: Transition, out: &mut Vec<RuleOutput>) {
    let (state, at) = match t {
        Transition::Open { at, .. } => (SignalState::Open, at),
        Transition::Close { at } => (SignalState::Close, at),
    };
    let opened = match (t, g.opened.take()) {
        (Transition::Close { .. }, Some(o)) => o,
        (t, _) => {
            let service = service_of(rule, key, g);
            let mut services = vec![service.clone()];
            services.extend(g.hit.services.iter().filter(|s| **s != service).cloned());
            Opened {
                onset: match t {
                    Transition::Open { onset, .. } => onset,
                    Transition::Close { at } => at,
                },
                summary: summary(rule, key, &g.hit),
                why: explanation(rule, key, &g.hit),
                services,
            }
        }
    };
    let (onset, text, why) = (opened.onset, opened.summary.clone(), opened.why.clone());
    let service = opened.services.first().unwrap_or(&g.service).clone();
    let mut services = opened.services.clone();
    services.sort();
    if state == SignalState::Open {
        g.opened = Some(opened);
    }
    // Signals explain themselves when they open; an insight carries its why in every version.
    let explain = (state == SignalState::Open || rule.emit == Emit::Insight).then_some(why);
    match rule.emit {
        Emit::Signal => out.push(RuleOutput::Signal(
            Signal {
                ts: Timestamp::from_millis(at),
                onset: Timestamp::from_millis(onset),
                service,
                kind: SignalKind::Rule,
                state,
                key: key_text(rule, key),
                name: Symbol::new(&rule.name),
                severity: rule.severity,
                summary: text,
                value: first_number(&g.hit),
                strength: 0.0,
            },
            explain,
        )),
        Emit::Insight => {
            let mut h = StableHasher::new();
            h.write_str(&key_text(rule, key));
            h.write_str(&onset.to_string());
            let open = state == SignalState::Open;
            let mut timeline = vec![TimelineEntry {
                ts: Timestamp::from_millis(onset),
                text: format!("rule {} fired: {text}", rule.name),
            }];
            if !open {
                timeline.push(TimelineEntry {
                    ts: Timestamp::from_millis(at),
                    text: format!("rule {} resolved", rule.name),
                });
            }
            out.push(RuleOutput::Insight(Insight {
                id: format!("rule-{:016x}", h.finish()),
                version: if open { 1 } else { 2 },
                status: if open {
                    IncidentStatus::Open
                } else {
                    IncidentStatus::Resolved
                },
                title: text,
                severity: rule.severity,
                services,
                impacted: Vec::new(),
                impact: Vec::new(),
                origin: Vec::new(),
                suspect_changes: Vec::new(),
                similar: Vec::new(),
                novelty: None,
                timeline,
                opened_at: Timestamp::from_millis(onset),
                updated_at: Timestamp::from_millis(at),
                resolved_at: (!open).then(|| Timestamp::from_millis(at)),
                explain: explain.into_iter().collect(),
            }));
        }
    }
}
