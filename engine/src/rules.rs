//! Wiring for user rules: stage one ([`kaizen_rules::RuleFilter`]) runs inside `detect`, next
//! to the detectors, on rows already routed by service and ordered by event time; its
//! [`RuleRow`]s are exchanged by (rule, group) to stage two here.

use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::Stream;

use kaizen_model::Timestamp;
use std::sync::Arc;

use kaizen_rules::{
    Dependencies, LiveRules, RowKind, RuleEvaluator, RuleFilter, RuleOutput, RuleRow,
};

use crate::dataflow::{emit_and_downgrade, first, Finding};
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
            let mut generation = live.generation();
            let mut evaluator = RuleEvaluator::new(live.current()).with_graph(graph.clone());
            let mut buffer: EventTimeBuffer<RuleRow> = EventTimeBuffer::default();
            let mut produced = Vec::new();
            let mut out = Vec::new();
            move |(input, frontier), output| {
                input.for_each_stamp(|_, data| {
                    for batch in data {
                        for r in batch.drain(..) {
                            buffer.push(r.ts, r);
                        }
                    }
                });
                let f = first(frontier);
                let g = live.generation();
                if g != generation {
                    generation = g;
                    let now = f.or(cap.as_ref().map(|c| *c.time())).unwrap_or_default();
                    evaluator.set_rules(live.current(), now, &mut produced);
                }
                for r in buffer.release_before(f, row_order) {
                    evaluator.on_row(r, &mut produced);
                }
                if let Some(f) = f {
                    evaluator.on_watermark(f, &mut produced);
                }
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
