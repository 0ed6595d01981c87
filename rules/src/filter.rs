//! Stage one of running rules: each row (event or signal) is tested against the rules that
//! read its stream, and what a rule needs of it — its group key, aggregate arguments or
//! pattern classes — goes on as a small [`RuleRow`]. This stage is stateless but for the log
//! template miners, so it runs wherever the row is; stage two ([`crate::RuleEvaluator`]) runs
//! where the row's group lives.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use kaizen_model::{
    Event, EventBody, FxBuildHasher, FxHasher, Insight, Labels, Metric, Signal, StableHasher,
    Symbol,
};
use kaizen_operators::{TemplateConfig, TemplateMiner};

use crate::aggregate::Acc;
use crate::dispatch::Dispatch;
use crate::evidence::Evidence;
use crate::expr::{Ctx, Expr};
use crate::graph::Dependencies;
use crate::plan::{Rule, Shape};
use crate::ruleset::RuleSet;
use crate::schema::{series_text, IncidentRow, Row, StreamName, TemplateRef};
use crate::value::Value;

/// What a row means to one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RowKind {
    /// The rule's condition holds for this row (filter rules), or the row feeds its group's
    /// aggregates.
    Hit,
    /// The row was selected but its value is out of the bad range: the condition does not
    /// hold for this key now.
    Miss,
    /// For sequences: the pattern variables the row satisfies (bit i = variable i).
    Classes(u64),
    /// For joins: a row of the left (0) or right (1) side, carrying the columns the rule reads.
    Side(u8),
    /// Partial aggregates of one pane, combined where the rows were (see [`Partial`]).
    Partial,
}

/// A pane's aggregates, combined in stage one before the exchange: one row per (rule, group,
/// pane) instead of one per input row. Only for rules whose group includes `service`, so one
/// worker sees every row of a group and the result does not depend on the worker count.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Partial {
    /// One accumulator per aggregate.
    pub accs: Vec<Acc>,
    /// Rows combined.
    pub count: u64,
    /// The first few rows, described.
    pub evidence: Vec<Evidence>,
    /// The pane, `[start, end)` in ms.
    pub start: u64,
    /// See `start`.
    pub end: u64,
}

/// Rows a partial keeps described (its first few).
const PARTIAL_EVIDENCE: usize = 5;

/// A row as one rule sees it, routed to the worker that holds the rule's group.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RuleRow {
    /// The rule's id.
    pub rule: u64,
    /// Group / partition key.
    pub key: Vec<Value>,
    /// Event time, ms.
    pub ts: u64,
    /// Input position (ties in event time are broken by it).
    pub seq: u64,
    /// The row's service.
    pub service: Symbol,
    /// Hit, miss or classes.
    pub kind: RowKind,
    /// Outputs (filter rules), aggregate arguments or measure arguments.
    pub values: Vec<Value>,
    /// A short description of the input, for explanations.
    pub evidence: Option<Evidence>,
    /// Combined aggregates (`RowKind::Partial`).
    pub partial: Option<Box<Partial>>,
}

impl RuleRow {
    /// Where the row's group lives: every row of one (rule, key) goes to one place.
    pub fn route(&self) -> u64 {
        let mut h = StableHasher::new();
        h.write_str(&self.rule.to_string());
        for v in &self.key {
            v.hash_into(&mut h);
        }
        h.finish()
    }
}

/// Stage one: rows in, [`RuleRow`]s out.
pub struct RuleFilter {
    rules: Arc<RuleSet>,
    dispatch: Dispatch,
    miners: HashMap<Symbol, TemplateMiner>,
    needs_templates: bool,
    reads_series: bool,
    series: SeriesTexts,
    graph: Option<Arc<Dependencies>>,
    local: Local,
}

/// Each metric series' text (`name{k="v",…}`), formatted once rather than on every sample.
/// Found by the addresses of its interned name and labels, and checked against them.
#[derive(Default)]
struct SeriesTexts {
    texts: HashMap<u64, (Symbol, Labels, Value), FxBuildHasher>,
}

impl SeriesTexts {
    /// Series kept; beyond, the cache starts over (a bound, should labels churn).
    const MAX: usize = 100_000;

    fn get(&mut self, m: &Metric) -> Value {
        let mut h = FxHasher::default();
        h.write_u64(m.name.as_str().as_ptr() as u64);
        for (k, v) in m.labels.iter() {
            h.write_u64(k.as_str().as_ptr() as u64);
            h.write_u64(v.as_str().as_ptr() as u64);
        }
        let id = h.finish();
        if let Some((name, labels, text)) = self.texts.get(&id) {
            if *name == m.name && *labels == m.labels {
                return text.clone();
            }
        }
        let text = Value::Str(series_text(m).into());
        if self.texts.len() >= Self::MAX {
            self.texts.clear();
        }
        self.texts
            .insert(id, (m.name.clone(), m.labels.clone(), text.clone()));
        text
    }
}

/// Groups by key, found by the key's hash computed once per row (one lookup, and no copy
/// of the key unless the group is new).
struct Groups<T>(HashMap<u64, Vec<(Vec<Value>, T)>, FxBuildHasher>);

impl<T> Default for Groups<T> {
    fn default() -> Self {
        Groups(HashMap::default())
    }
}

/// The hash groups are found by (also what evidence budgets and misses are kept by).
fn key_hash(key: &[Value]) -> u64 {
    let mut h = FxHasher::default();
    key.hash(&mut h);
    h.finish()
}

impl<T> Groups<T> {
    fn get_mut(&mut self, hash: u64, key: &[Value]) -> Option<&mut T> {
        self.0
            .get_mut(&hash)?
            .iter_mut()
            .find(|(k, _)| Value::same_key(k, key))
            .map(|(_, t)| t)
    }

    fn get_or_insert(&mut self, hash: u64, key: &[Value], make: impl FnOnce() -> T) -> &mut T {
        let bucket = self.0.entry(hash).or_default();
        let i = match bucket.iter().position(|(k, _)| Value::same_key(k, key)) {
            Some(i) => i,
            None => {
                bucket.push((key.to_vec(), make()));
                bucket.len() - 1
            }
        };
        &mut bucket[i].1
    }

    fn remove(&mut self, hash: u64, key: &[Value]) -> Option<(Vec<Value>, T)> {
        let bucket = self.0.get_mut(&hash)?;
        let i = bucket.iter().position(|(k, _)| Value::same_key(k, key))?;
        let found = bucket.swap_remove(i);
        if bucket.is_empty() {
            self.0.remove(&hash);
        }
        Some(found)
    }

    fn first(&self) -> Option<&T> {
        self.0.values().find_map(|b| b.first()).map(|(_, t)| t)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn drain(&mut self) -> impl Iterator<Item = (Vec<Value>, T)> + '_ {
        self.0.drain().flat_map(|(_, b)| b)
    }

    fn retain(&mut self, mut keep: impl FnMut(&Vec<Value>, &mut T) -> bool) {
        self.0.retain(|_, b| {
            b.retain_mut(|(k, t)| keep(k, t));
            !b.is_empty()
        });
    }
}

/// One (rule, pane)'s groups: key → (partial, service, first input position).
type PaneGroups = Groups<(Partial, Symbol, u64)>;

/// A session being combined in stage one: its rows so far, the group's service, its first
/// input position and its last row's time.
struct OpenSession {
    partial: Partial,
    service: Symbol,
    seq: u64,
    last: u64,
}

/// What stage one keeps between rows: evidence budgets, panes and sessions being combined,
/// and which groups last sent a miss (a run of misses is one miss to the evaluator).
#[derive(Default)]
struct Local {
    evidence: EvidenceBudget,
    panes: HashMap<(u64, u64), PaneGroups, FxBuildHasher>,
    /// Open sessions: rule → group key → session.
    sessions: HashMap<u64, Groups<OpenSession>, FxBuildHasher>,
    /// No open session can end before this (a lower bound: sessions only grow).
    sessions_end: u64,
    /// The current row's group key (reused: most rows never need their own copy).
    key: Vec<Value>,
    missed: std::collections::HashSet<(u64, u64), FxBuildHasher>,
}

/// Explanations show a few input events per window; describing every matching row would cost
/// more than the rule itself. A few descriptions per (rule, group) per minute are enough.
#[derive(Default)]
struct EvidenceBudget {
    spent: HashMap<(u64, u64), (u64, u8), FxBuildHasher>,
}

impl EvidenceBudget {
    const PER_MINUTE: u8 = 5;

    /// Spends one description of group `key_hash` of `rule` at `ts`, if there is one left.
    fn allow(&mut self, rule: u64, key_hash: u64, ts: u64) -> bool {
        let minute = ts / 60_000;
        if self.spent.len() > 100_000 {
            // Bounded: forget budgets rather than grow without limit.
            self.spent.clear();
        }
        let e = self.spent.entry((rule, key_hash)).or_insert((minute, 0));
        if e.0 != minute {
            *e = (minute, 0);
        }
        e.1 += 1;
        e.1 <= Self::PER_MINUTE
    }
}

impl RuleFilter {
    /// A filter for `rules`.
    pub fn new(rules: Arc<RuleSet>) -> RuleFilter {
        let needs_templates = rules.rules().iter().any(|r| r.needs_template);
        let reads_series = rules.rules().iter().any(|r| r.reads_series);
        RuleFilter {
            dispatch: Dispatch::new(&rules),
            rules,
            miners: HashMap::new(),
            needs_templates,
            reads_series,
            series: SeriesTexts::default(),
            graph: None,
            local: Local::default(),
        }
    }

    /// With the service dependency graph, for `depends_on` and friends.
    pub fn with_graph(mut self, graph: Arc<Dependencies>) -> RuleFilter {
        self.graph = Some(graph);
        self
    }

    /// Swaps in a new rule set (the template miners keep what they learned).
    pub fn set_rules(&mut self, rules: Arc<RuleSet>) {
        self.needs_templates = rules.rules().iter().any(|r| r.needs_template);
        self.reads_series = rules.rules().iter().any(|r| r.reads_series);
        self.dispatch = Dispatch::new(&rules);
        self.rules = rules;
    }

    /// The rules in use.
    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// Tests one event (events of one service arrive in event-time order).
    pub fn on_event(&mut self, event: &Event, seq: u64, out: &mut Vec<RuleRow>) {
        let rules = self.rules.clone();
        // The template miners see every log line a rule reads, whichever rules it selects.
        if rules.for_kind(event.kind()).is_empty() {
            return;
        }
        // Borrowed from the miner for this event (no copy of the template's text).
        let tpl = match (&event.body, self.needs_templates) {
            (EventBody::Log(log), true) => {
                let miner = self
                    .miners
                    .entry(event.service.clone())
                    .or_insert_with(|| TemplateMiner::new(TemplateConfig::default()));
                let m = miner.observe(&log.message);
                Some(TemplateRef {
                    id: m.id.0,
                    text: m.template,
                })
            }
            _ => None,
        };
        let targets = self.dispatch.targets(event);
        if targets.is_empty() {
            return;
        }
        // Only when a rule this event goes to reads it.
        let series = match (&event.body, self.reads_series) {
            (EventBody::Metric(m), true)
                if targets.iter().any(|t| rules.rules()[t.rule].reads_series) =>
            {
                Some(self.series.get(m))
            }
            _ => None,
        };
        let row = Row::Event(event, tpl);
        let row = Described::new(&row, seq, series);
        for &t in targets {
            let rule = &rules.rules()[t.rule];
            test(
                rule,
                self.dispatch.filter(t, rule),
                &row,
                self.graph.as_deref(),
                &mut self.local,
                out,
            );
        }
    }

    /// Emits the combined panes that end at or before `frontier` (all of them at the end of
    /// input, `None`): no row of theirs can arrive any more.
    pub fn flush(&mut self, frontier: Option<u64>, out: &mut Vec<RuleRow>) {
        self.flush_sessions(frontier, out);
        let done = |end: u64| frontier.is_none_or(|f| end <= f);
        let pane_done = |groups: &PaneGroups| groups.first().is_some_and(|(p, _, _)| done(p.end));
        if !self.local.panes.values().any(pane_done) {
            return;
        }
        let mut rows: Vec<RuleRow> = Vec::new();
        self.local.panes.retain(|(rule, _), groups| {
            if !pane_done(groups) {
                return true;
            }
            for (key, (partial, service, seq)) in groups.drain() {
                rows.push(RuleRow {
                    rule: *rule,
                    key,
                    // The pane's last instant: after its rows, before its window closes.
                    ts: partial.end - 1,
                    seq,
                    service,
                    kind: RowKind::Partial,
                    values: Vec::new(),
                    evidence: None,
                    partial: Some(Box::new(partial)),
                });
            }
            false
        });
        rows.sort_by_key(|r| (r.ts, r.seq, r.rule));
        out.extend(rows);
    }

    /// Emits the sessions that ended at or before `frontier` (`last + gap <= frontier`: a row
    /// at `last + gap` or later would start a new one); all of them at the end of input.
    fn flush_sessions(&mut self, frontier: Option<u64>, out: &mut Vec<RuleRow>) {
        if frontier.is_some_and(|f| f < self.local.sessions_end) || self.local.sessions.is_empty() {
            return;
        }
        let rules = self.rules.clone();
        let mut rows: Vec<RuleRow> = Vec::new();
        let mut next_end = u64::MAX;
        self.local.sessions.retain(|rule, groups| {
            // A removed rule's sessions go too (stage two ignores rows of unknown rules).
            let gap = rules
                .by_id(*rule)
                .and_then(|r| r.session_gap())
                .unwrap_or(0);
            groups.retain(|key, open| {
                let end = open.last.saturating_add(gap);
                let ts = match frontier {
                    Some(f) if end <= f => end.saturating_sub(1),
                    Some(_) => {
                        next_end = next_end.min(end);
                        return true;
                    }
                    // End of input: no later row will close it; sent as of its last row, so
                    // it moves no timer past the input.
                    None => open.last,
                };
                rows.push(session_row(*rule, key.clone(), open, ts));
                false
            });
            !groups.is_empty()
        });
        self.local.sessions_end = next_end;
        rows.sort_by_key(|r| (r.ts, r.seq, r.rule));
        out.extend(rows);
    }

    /// Tests one detector signal.
    pub fn on_signal(&mut self, signal: &Signal, out: &mut Vec<RuleRow>) {
        let row = Row::Signal(signal);
        // Signals have no input position; their content orders them.
        let mut h = StableHasher::new();
        h.write_str(&signal.key);
        h.write_str(signal.kind.as_str());
        self.test_all(
            RuleSet::for_signals,
            &Described::new(&row, h.finish(), None),
            out,
        );
    }

    /// Tests one incident version (rules over `incidents`).
    pub fn on_incident(&mut self, insight: &Insight, out: &mut Vec<RuleRow>) {
        let incident = IncidentRow::new(insight);
        let row = Row::Incident(&incident);
        // Versions of one incident are ordered by version; ties between incidents by id.
        let mut h = StableHasher::new();
        h.write_str(&insight.id);
        h.write_u64(u64::from(insight.version));
        self.test_all(
            RuleSet::for_incidents,
            &Described::new(&row, h.finish(), None),
            out,
        );
    }

    /// Tests a row that is not an event against every rule `reading` it.
    fn test_all(
        &mut self,
        reading: fn(&RuleSet) -> &[usize],
        row: &Described<'_, '_>,
        out: &mut Vec<RuleRow>,
    ) {
        let rules = self.rules.clone();
        for &i in reading(&rules) {
            let rule = &rules.rules()[i];
            test(
                rule,
                rule.filter.as_ref(),
                row,
                self.graph.as_deref(),
                &mut self.local,
                out,
            );
        }
    }
}

/// A finished session's row: its combined aggregates, at event time `ts`.
fn session_row(rule: u64, key: Vec<Value>, open: &mut OpenSession, ts: u64) -> RuleRow {
    RuleRow {
        rule,
        key,
        ts,
        seq: open.seq,
        service: open.service.clone(),
        kind: RowKind::Partial,
        values: Vec::new(),
        evidence: None,
        partial: Some(Box::new(std::mem::replace(
            &mut open.partial,
            Partial {
                accs: Vec::new(),
                count: 0,
                evidence: Vec::new(),
                start: 0,
                end: 0,
            },
        ))),
    }
}

/// A row, its input position, and its description once a rule needed it (one description
/// serves every rule).
struct Described<'r, 'a> {
    row: &'r Row<'a>,
    seq: u64,
    evidence: std::cell::OnceCell<Evidence>,
    /// A metric's `series`, when a rule reads it.
    series: Option<Value>,
}

impl<'r, 'a> Described<'r, 'a> {
    fn new(row: &'r Row<'a>, seq: u64, series: Option<Value>) -> Self {
        Described {
            row,
            seq,
            evidence: std::cell::OnceCell::new(),
            series,
        }
    }

    fn evidence(&self) -> Evidence {
        self.evidence
            .get_or_init(|| Evidence::of(self.row, self.seq))
            .clone()
    }
}

/// Tests `rule` (whose `WHERE` is `filter` as far as it is left to test) against one row.
fn test(
    rule: &Rule,
    filter: Option<&Expr>,
    described: &Described<'_, '_>,
    graph: Option<&Dependencies>,
    local: &mut Local,
    out: &mut Vec<RuleRow>,
) {
    let (row, seq) = (described.row, described.seq);
    let cx = Ctx::row(row)
        .with_graph(graph)
        .with_series(described.series.as_ref());
    if let Some(plan) = &rule.join {
        for side in 0..2 {
            let reads = match row {
                Row::Event(e, _) => plan.streams[side].accepts(e.kind()),
                Row::Signal(_) => plan.streams[side] == StreamName::Signals,
                Row::Incident(_) => plan.streams[side] == StreamName::Incidents,
            };
            if !reads
                || plan.filters[side]
                    .as_ref()
                    .is_some_and(|f| !f.eval(&cx).is_true())
            {
                continue;
            }
            out.push(RuleRow {
                rule: rule.id,
                key: plan.keys[side].iter().map(|e| e.eval(&cx)).collect(),
                ts: row.ts_millis(),
                seq,
                service: row.service().clone(),
                kind: RowKind::Side(side as u8),
                values: plan.slots[side].iter().map(|e| e.eval(&cx)).collect(),
                evidence: Some(described.evidence()),
                partial: None,
            });
        }
        return;
    }
    if let Some(f) = filter {
        if !f.eval(&cx).is_true() {
            return;
        }
    }
    let ts = row.ts_millis();
    local.key.clear();
    local.key.extend(rule.keys.iter().map(|(_, e)| e.eval(&cx)));
    if let (Some(pane), Shape::Aggregate { aggs, .. }) = (rule.pane(ts), &rule.shape) {
        // Value terms are plain filters for aggregates (only filter rules turn them into misses).
        if rule
            .condition
            .as_ref()
            .is_some_and(|c| !c.eval(&cx).is_true())
        {
            return;
        }
        // Accumulated in place: no row, no key copy once the group has a pane.
        let slot = local.panes.entry((rule.id, pane.0)).or_default();
        let (partial, _, _) = slot.get_or_insert(key_hash(&local.key), &local.key, || {
            let partial = Partial {
                accs: aggs.iter().map(|a| a.f.start()).collect(),
                count: 0,
                // Its first row is always described: room for all at once, not grown twice.
                evidence: Vec::with_capacity(PARTIAL_EVIDENCE),
                start: pane.0,
                end: pane.1,
            };
            (partial, row.service().clone(), seq)
        });
        for (acc, spec) in partial.accs.iter_mut().zip(aggs) {
            let v = spec.arg.as_ref().map_or(Value::Null, |e| e.eval(&cx));
            acc.add(spec.f, ts, &v);
        }
        partial.count += 1;
        if partial.evidence.len() < PARTIAL_EVIDENCE {
            partial.evidence.push(described.evidence());
        }
        return;
    }
    if let (Some(gap), Shape::Aggregate { aggs, .. }) = (rule.session_gap(), &rule.shape) {
        if rule
            .condition
            .as_ref()
            .is_some_and(|c| !c.eval(&cx).is_true())
        {
            return;
        }
        let groups = local.sessions.entry(rule.id).or_default();
        let hash = key_hash(&local.key);
        // A row `gap` or more after the session's last row starts a new session: the one
        // before is complete, and goes on now, ahead of this row.
        if groups
            .get_mut(hash, &local.key)
            .is_some_and(|open| ts >= open.last.saturating_add(gap))
        {
            if let Some((key, mut open)) = groups.remove(hash, &local.key) {
                let end = open.last.saturating_add(gap);
                out.push(session_row(rule.id, key, &mut open, end.saturating_sub(1)));
            }
        }
        let sessions_end = &mut local.sessions_end;
        let open = groups.get_or_insert(hash, &local.key, || {
            *sessions_end = (*sessions_end).min(ts.saturating_add(gap));
            OpenSession {
                partial: Partial {
                    accs: aggs.iter().map(|a| a.f.start()).collect(),
                    count: 0,
                    evidence: Vec::with_capacity(PARTIAL_EVIDENCE),
                    start: ts,
                    end: ts,
                },
                service: row.service().clone(),
                seq,
                last: ts,
            }
        });
        // Every row spends evidence budget, as it would travelling alone.
        let allowed = local.evidence.allow(rule.id, hash, ts);
        let partial = &mut open.partial;
        for (acc, spec) in partial.accs.iter_mut().zip(aggs) {
            let v = spec.arg.as_ref().map_or(Value::Null, |e| e.eval(&cx));
            acc.add(spec.f, ts, &v);
        }
        partial.count += 1;
        partial.end = ts;
        open.last = ts;
        if allowed && partial.evidence.len() < PARTIAL_EVIDENCE {
            partial.evidence.push(described.evidence());
        }
        return;
    }
    let (kind, values) = match &rule.shape {
        Shape::Filter { outputs } => {
            let holds = rule
                .condition
                .as_ref()
                .is_none_or(|c| c.eval(&cx).is_true());
            if holds {
                (
                    RowKind::Hit,
                    outputs.iter().map(|(_, e)| e.eval(&cx)).collect(),
                )
            } else {
                (RowKind::Miss, Vec::new())
            }
        }
        Shape::Aggregate { .. }
            if rule
                .condition
                .as_ref()
                .is_some_and(|c| !c.eval(&cx).is_true()) =>
        {
            return;
        }
        Shape::Aggregate { aggs, .. } => (
            RowKind::Hit,
            aggs.iter()
                .map(|a| a.arg.as_ref().map_or(Value::Null, |e| e.eval(&cx)))
                .collect(),
        ),
        Shape::Sequence(plan) => {
            let bits = plan.classify(&cx);
            if bits == 0 {
                return;
            }
            (
                RowKind::Classes(bits),
                plan.measures
                    .iter()
                    .map(|m| m.arg.as_ref().map_or(Value::Null, |e| e.eval(&cx)))
                    .collect(),
            )
        }
    };
    let hash = key_hash(&local.key);
    if rule.groups_by_service {
        let id = (rule.id, hash);
        match kind {
            // The evaluator already knows this group's condition is not holding.
            RowKind::Miss if !local.missed.insert(id) => return,
            RowKind::Hit => {
                local.missed.remove(&id);
            }
            _ => {}
        }
    }
    let evidence = (kind != RowKind::Miss && local.evidence.allow(rule.id, hash, ts))
        .then(|| described.evidence());
    out.push(RuleRow {
        rule: rule.id,
        key: local.key.clone(),
        ts,
        seq,
        service: row.service().clone(),
        kind,
        values,
        evidence,
        partial: None,
    });
}
