//! Wiring for user rules: stage one ([`kaizen_rules::RuleFilter`]) runs inside `detect`, next
//! to the detectors, on rows already routed by service and ordered by event time; its
//! [`RuleRow`]s are exchanged by (rule, group) to stage two here. Rules over `incidents` run
//! apart, after correlation, where the incidents are made ([`IncidentRules`]).

use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::Stream;

use kaizen_model::{Insight, Timestamp};
use std::sync::Arc;

use kaizen_rules::{
    Dependencies, LiveRules, RowKind, RuleEvaluator, RuleFilter, RuleOutput, RuleRow,
};

use crate::dataflow::{emit_and_downgrade, first, Finding, Output};
use crate::ordered::EventTimeBuffer;

/// What `detect` emits: findings for the correlator, rows for the rules.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) enum Detected {
    Found(Finding),
    Row(RuleRow),
}

/// Stage one, as `detect` holds it: follows the live rule set.
pub(crate) struct LiveFilter {
    live: LiveRules,
    generation: u64,
    filter: RuleFilter,
}

impl LiveFilter {
    pub(crate) fn new(live: LiveRules, graph: Arc<Dependencies>) -> Self {
        let generation = live.generation();
        let filter = RuleFilter::new(live.current()).with_graph(graph);
        LiveFilter {
            live,
            generation,
            filter,
        }
    }

    /// The filter, with the newest rules swapped in.
    pub(crate) fn current(&mut self) -> &mut RuleFilter {
        let g = self.live.generation();
        if g != self.generation {
            self.generation = g;
            self.filter.set_rules(self.live.current());
        }
        &mut self.filter
    }
}

/// Stage two, as an operator holds it: follows the live rule set, and evaluates its rows in
/// order once event time before the frontier is complete.
struct LiveEvaluator {
    live: LiveRules,
    generation: u64,
    evaluator: RuleEvaluator,
    buffer: EventTimeBuffer<RuleRow>,
}

impl LiveEvaluator {
    fn new(live: LiveRules, graph: Arc<Dependencies>) -> Self {
        LiveEvaluator {
            generation: live.generation(),
            evaluator: RuleEvaluator::new(live.current()).with_graph(graph),
            live,
            buffer: EventTimeBuffer::default(),
        }
    }

    fn push(&mut self, row: RuleRow) {
        self.buffer.push(row.ts, row);
    }

    /// Swaps the newest rules in (as of event time `now`), then evaluates the rows before
    /// `frontier` (all of them when `None`) and moves event time up to it.
    fn advance(&mut self, frontier: Option<u64>, now: u64, out: &mut Vec<RuleOutput>) {
        let g = self.live.generation();
        if g != self.generation {
            self.generation = g;
            self.evaluator.set_rules(self.live.current(), now, out);
        }
        for r in self.buffer.release_before(frontier, row_order) {
            self.evaluator.on_row(r, out);
        }
        if let Some(f) = frontier {
            self.evaluator.on_watermark(f, out);
        }
    }
}

fn row_order(a: &RuleRow, b: &RuleRow) -> std::cmp::Ordering {
    let kind = |r: &RuleRow| match r.kind {
        RowKind::Hit => 0,
        RowKind::Miss => 1,
        RowKind::Side(side) => 2 + u64::from(side),
        RowKind::Partial => 4,
        RowKind::Classes(bits) => 5 + bits,
    };
    (a.ts, a.seq, a.rule, kind(a)).cmp(&(b.ts, b.seq, b.rule, kind(b)))
}

/// Stage two: every (rule, group) lives on one worker; rows are fed in event-time order.
pub(crate) fn evaluate_rules<'s>(
    rows: Stream<'s, u64, Vec<RuleRow>>,
    live: LiveRules,
    graph: Arc<Dependencies>,
) -> Stream<'s, u64, Vec<Finding>> {
    rows.unary_frontier(
        Exchange::new(|r: &RuleRow| r.route()),
        "EvaluateRules",
        move |cap, _| {
            let mut cap = Some(cap);
            let mut stage = LiveEvaluator::new(live, graph);
            let mut produced = Vec::new();
            let mut out = Vec::new();
            move |(input, frontier), output| {
                input.for_each_stamp(|_, data| {
                    for batch in data {
                        for r in batch.drain(..) {
                            stage.push(r);
                        }
                    }
                });
                let f = first(frontier);
                let now = f.or(cap.as_ref().map(|c| *c.time())).unwrap_or_default();
                stage.advance(f, now, &mut produced);
                for o in produced.drain(..) {
                    match o {
                        RuleOutput::Signal(signal, explain) => {
                            if let Some(explanation) = explain {
                                out.push(Finding::Explain {
                                    ts: signal.ts,
                                    key: signal.key.clone(),
                                    explanation,
                                });
                            }
                            out.push(Finding::Signal(signal));
                        }
                        RuleOutput::Insight(i) => out.push(Finding::Insight(Box::new(i))),
                    }
                }
                emit_and_downgrade(&mut cap, f, &mut out, output);
            }
        },
    )
}

/// The event time a rule output counts at.
pub(crate) fn insight_ts(i: &kaizen_model::Insight) -> Timestamp {
    i.updated_at
}

/// Rules over `incidents`: both stages in one place, fed every incident version correlation
/// emits and the correlator's watermark. They may only emit insights (the checker rejects a
/// signal, which would feed back into the correlation that made the incident).
pub(crate) struct IncidentRules {
    filter: LiveFilter,
    /// Rows wait in stage two until the correlator's frontier passes them: an incident's
    /// resolution is emitted late in event time (after its quiet period), so versions do not
    /// come in order.
    evaluator: LiveEvaluator,
    /// The latest frontier seen: a reload swaps rules in as of it.
    frontier: u64,
    rows: Vec<RuleRow>,
    produced: Vec<RuleOutput>,
}

impl IncidentRules {
    pub(crate) fn new(live: LiveRules, graph: Arc<Dependencies>) -> Self {
        IncidentRules {
            filter: LiveFilter::new(live.clone(), graph.clone()),
            evaluator: LiveEvaluator::new(live, graph),
            frontier: 0,
            rows: Vec::new(),
            produced: Vec::new(),
        }
    }

    /// A version correlation just emitted.
    pub(crate) fn on_incident(&mut self, insight: &Insight) {
        self.filter.current().on_incident(insight, &mut self.rows);
        for r in self.rows.drain(..) {
            self.evaluator.push(r);
        }
    }

    /// Event time is complete before `frontier` (all of it when `None`): evaluates the rows
    /// before it and sends what fired to `out`.
    pub(crate) fn on_watermark(&mut self, frontier: Option<u64>, out: &mut Vec<Output>) {
        self.frontier = frontier.unwrap_or(self.frontier).max(self.frontier);
        self.evaluator
            .advance(frontier, self.frontier, &mut self.produced);
        for o in self.produced.drain(..) {
            match o {
                RuleOutput::Insight(i) => out.push(Output::Insight(i)),
                RuleOutput::Signal(s, _) => tracing::warn!(
                    rule = s.name.as_str(),
                    "a rule over incidents emitted a signal; dropped (the checker should have rejected it)"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_rules::RuleSet;

    const T0: u64 = 1_767_225_600_000;
    const MIN: u64 = 60_000;

    const LONG: &str = "CREATE RULE long EMIT INSIGHT SUMMARY 'still open: {{name}}' \
        AS SELECT id, name FROM incidents WHERE status <> 'resolved' FOR INTERVAL '30' MINUTE;\n";
    const OPENED: &str = "CREATE RULE opened EMIT INSIGHT SUMMARY 'opened: {{name}}' \
        AS SELECT id, name FROM incidents WHERE status = 'open';\n";

    fn rules(text: &str) -> RuleSet {
        let (set, errors) = RuleSet::from_text("t.sql", text);
        assert!(errors.is_empty(), "{errors:?}");
        set
    }

    fn incident(id: &str, at: u64) -> Insight {
        let json = format!(
            r#"{{"id":"{id}","version":1,"status":"open","title":"{id} trouble","severity":"critical",
                "services":["api"],"impacted":[],"origin":[{{"service":"api","score":1.0,"evidence":[]}}],
                "suspect_changes":[],"similar":[],"timeline":[],"opened_at":{at},"updated_at":{at},
                "resolved_at":null}}"#
        );
        serde_json::from_str(&json).expect("a valid insight")
    }

    fn titles(out: &[Output]) -> Vec<String> {
        out.iter()
            .filter_map(|o| match o {
                Output::Insight(i) => Some(i.title.clone()),
                Output::History(_) => None,
            })
            .collect()
    }

    #[test]
    fn a_reload_keeps_unchanged_incident_rules_pending_and_adds_new_ones() {
        let live = LiveRules::new(rules(LONG));
        let mut stage = IncidentRules::new(live.clone(), Arc::new(Dependencies::default()));
        let mut out = Vec::new();
        stage.on_incident(&incident("inc-a", T0));
        stage.on_watermark(Some(T0 + 10 * MIN), &mut out);
        assert!(out.is_empty());
        // `long` is unchanged, so its pending FOR survives the reload; `opened` is new.
        live.replace(rules(&format!("{LONG}{OPENED}")));
        stage.on_watermark(Some(T0 + 31 * MIN), &mut out);
        assert_eq!(titles(&out), ["still open: inc-a trouble"]);
        out.clear();
        stage.on_incident(&incident("inc-b", T0 + 40 * MIN));
        stage.on_watermark(Some(T0 + 41 * MIN), &mut out);
        assert_eq!(titles(&out), ["opened: inc-b trouble"]);
    }
}
