//! The dataflow: only wiring. Each operator hosts a state machine from `kaizen-operators`.

use std::cmp::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;

use differential_dataflow::input::{Input as _, InputSession};
use differential_dataflow::AsCollection;
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::{Concat, OkErr, Probe};
use timely::dataflow::{InputHandle, ProbeHandle, Stream};
use timely::progress::frontier::MutableAntichain;

use std::collections::BTreeMap;

use kaizen_model::{
    Event, EventBody, Explanation, Feedback, Incident, Insight, PastIncident, Signal, SignalKind,
    StableHasher, Symbol, Timestamp,
};
use kaizen_operators::{
    GoldenSignals, IncidentCorrelator, IncidentRecall, InsightBuilder, LearnedEdges, ReleaseWatch,
    ServiceGraph, SignalMapping, StackTraceFolder,
};

use crate::config::{DetectorFactory, EngineConfig};
use crate::ordered::EventTimeBuffer;
use crate::rules::{evaluate_rules, insight_ts, Detected, IncidentRules, LiveFilter};

/// An event with its position in the input, which breaks event-time ties deterministically.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Stamped {
    pub(crate) seq: u64,
    pub(crate) event: Event,
}

/// A service-graph edge, caller → callee.
type Edge = (Symbol, Symbol);

/// What the dataflow hands to the driver: insights for the sinks, and history records to
/// persist (the dataflow itself does no I/O).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Output {
    Insight(Insight),
    History(PastIncident),
}

pub(crate) type OutputTx = Sender<Output>;

/// What the correlator consumes besides the graph: detectors' and rules' signals, why rules
/// fired, rules' own insights, and responders' feedback.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Finding {
    Signal(Signal),
    Explain {
        ts: Timestamp,
        key: String,
        explanation: Explanation,
    },
    Insight(Box<Insight>),
    Feedback {
        ts: Timestamp,
        service: Symbol,
        feedback: Feedback,
    },
}

impl Finding {
    fn ts(&self) -> Timestamp {
        match self {
            Finding::Signal(s) => s.ts,
            Finding::Explain { ts, .. } | Finding::Feedback { ts, .. } => *ts,
            Finding::Insight(i) => insight_ts(i),
        }
    }
}

/// Sends what the dataflow produced so far on to a driver's report channel.
pub(crate) fn forward<R: From<Output>>(
    outputs: &std::sync::mpsc::Receiver<Output>,
    tx: &Sender<R>,
) {
    for o in outputs.try_iter() {
        // The receiver only goes away when the run is being torn down.
        let _ = tx.send(o.into());
    }
}

/// Feeds the configured topology's edges (worker 0 only: a differential input counts every
/// worker's insertions) and closes the input.
pub(crate) fn load_topology(
    mut topology: InputSession<u64, Edge, isize>,
    worker_index: usize,
    config: &EngineConfig,
) {
    if worker_index == 0 {
        for edge in config.topology.edges() {
            topology.insert(edge);
        }
    }
    topology.close();
}

/// The handles the driver holds to feed and observe one worker's dataflow.
pub(crate) struct Handles {
    pub(crate) events: InputHandle<u64, CapacityContainerBuilder<Vec<Stamped>>>,
    pub(crate) topology: InputSession<u64, Edge, isize>,
    pub(crate) probe: ProbeHandle<u64>,
}

/// Builds the dataflow on one worker.
// `ok_err` routes records by returning `Result`; both arms carry the same (moved) record.
#[allow(clippy::result_large_err)]
pub(crate) fn build(
    worker: &mut timely::worker::Worker,
    config: &EngineConfig,
    outputs: OutputTx,
) -> Handles {
    let detectors = config.detector_factory();
    let alert_detectors = config.alert_detector_factory();
    let golden = Arc::new(config.golden.clone());
    let correlator = IncidentCorrelator::new(
        config.correlator.clone(),
        graph_services_only(&config.topology),
    );
    let recall = IncidentRecall::new(config.recall.clone(), config.history.iter().cloned());
    let graph = Arc::new(kaizen_rules::Dependencies::from_topology(&config.topology));
    let incident_rules = config
        .rules
        .clone()
        .map(|live| IncidentRules::new(live, graph.clone()));
    let rules = config.rules.clone().map(|live| (live, graph));
    worker.dataflow::<u64, _, _>(|scope| {
        let mut events = InputHandle::new();
        let stream = events.to_stream(scope);
        let (topology, topology_edges) = scope.new_collection::<Edge, isize>();

        // Records are split by what consumes them — moved, not cloned — so that only spans,
        // not every event, are copied for their second consumer.
        type Events<'s> = Stream<'s, u64, Vec<Stamped>>;
        let (feedback, rest): (Events<'_>, Events<'_>) =
            stream.ok_err(|s: Stamped| match s.event.body {
                EventBody::Feedback(_) => Ok(s),
                _ => Err(s),
            });
        let (alerts, rest): (Events<'_>, Events<'_>) =
            rest.ok_err(|s: Stamped| match s.event.body {
                EventBody::Alert(_) => Ok(s),
                _ => Err(s),
            });
        let (others, spans): (Events<'_>, Events<'_>) =
            rest.ok_err(|s: Stamped| match s.event.body {
                EventBody::Span(_) => Err(s),
                _ => Ok(s),
            });
        type Found<'s> = Stream<'s, u64, Vec<Finding>>;
        type Rows<'s> = Stream<'s, u64, Vec<kaizen_rules::RuleRow>>;
        let (found, rows): (Found<'_>, Rows<'_>) = detect(
            others.concat(spans.clone()),
            |s| route(&s.event.service),
            detectors,
            golden.clone(),
            rules.clone(),
        )
        .concat(detect(
            alerts,
            |_| 0,
            alert_detectors,
            golden.clone(),
            rules.clone(),
        ))
        .ok_err(|d| match d {
            Detected::Found(f) => Ok(f),
            Detected::Row(r) => Err(r),
        });
        let mut signals = found.concat(feedback_findings(feedback));
        if let Some((live, graph)) = rules {
            signals = signals.concat(evaluate_rules(rows, live, graph));
        }
        let graph = call_edges(spans, config.span_edge_ttl)
            .as_collection()
            .concat(topology_edges)
            .distinct();
        let probe = ProbeHandle::new();
        let builder = InsightBuilder::with_topology(&config.topology);
        correlate(
            signals,
            graph.inner,
            correlator,
            recall,
            builder,
            incident_rules,
        )
        .probe_with(&probe)
        .sink(Pipeline, "Outputs", move |(input, _frontier)| {
            input.for_each(|_, data| {
                for output in data.drain(..) {
                    // The receiver only goes away when the run is being torn down.
                    let _ = outputs.send(output);
                }
            });
        });
        Handles {
            events,
            topology,
            probe,
        }
    })
}

fn graph_services_only(topology: &kaizen_model::Topology) -> ServiceGraph {
    let mut g = ServiceGraph::default();
    g.set_services(topology);
    g
}

/// Routes a service to a worker: stable across runs, so state lives in one place.
fn route(service: &Symbol) -> u64 {
    StableHasher::hash_str(service.as_str())
}

pub(crate) fn first(frontier: &MutableAntichain<u64>) -> Option<u64> {
    frontier.frontier().first().copied()
}

/// Events → signals: every worker runs its own detectors over the records `route`d to it, and
/// the rules' first stage over the same ordered records and the signals they produce.
fn detect<'s>(
    events: Stream<'s, u64, Vec<Stamped>>,
    route: fn(&Stamped) -> u64,
    factory: DetectorFactory,
    golden: Arc<Vec<SignalMapping>>,
    rules: Option<(kaizen_rules::LiveRules, Arc<kaizen_rules::Dependencies>)>,
) -> Stream<'s, u64, Vec<Detected>> {
    events.unary_frontier(Exchange::new(route), "Detect", move |cap, _info| {
        let mut cap = Some(cap);
        let mut detectors = factory();
        let mut golden = GoldenSignals::new(golden.to_vec());
        let mut releases = ReleaseWatch::default();
        let mut stack_traces = StackTraceFolder::default();
        let mut derived = Vec::new();
        let mut filter = rules.map(|(live, graph)| LiveFilter::new(live, graph));
        let mut buffer = EventTimeBuffer::default();
        let mut signals = Vec::new();
        let mut rows = Vec::new();
        let mut out = Vec::new();
        move |(input, frontier), output| {
            input.for_each_stamp(|_, data| {
                for batch in data {
                    for s in batch.drain(..) {
                        buffer.push(s.event.ts.as_millis(), s);
                    }
                }
            });
            let f = first(frontier);
            let ready =
                buffer.release_before(f, |a, b| (a.event.ts, a.seq).cmp(&(b.event.ts, b.seq)));
            let mut filter = filter.as_mut().map(LiveFilter::current);
            for s in &ready {
                // A release seen in telemetry is a change, before the sample that shows it.
                if let Some(change) = releases.on_event(&s.event) {
                    for d in &mut detectors {
                        d.on_event(&change, &mut signals);
                    }
                    if let Some(filter) = filter.as_mut() {
                        filter.on_event(&change, derived_seq(&change), &mut rows);
                    }
                }
                // Detectors see a golden signal under kaizen's name; rules see what was sent
                // and, besides, the golden signal.
                let renamed = golden.on_event(&s.event);
                let seen = renamed.as_ref().unwrap_or(&s.event);
                // A stack trace's frames are folded into its first line.
                if !stack_traces.folds(&s.event) {
                    for d in &mut detectors {
                        d.on_event(seen, &mut signals);
                    }
                }
                if let Some(filter) = filter.as_mut() {
                    filter.on_event(&s.event, s.seq, &mut rows);
                    if let Some(r) = &renamed {
                        filter.on_event(r, derived_seq(r), &mut rows);
                    }
                }
            }
            // Exports before the frontier are complete: their golden signals go on (all of
            // them once the input is exhausted).
            let complete = f.map_or(Timestamp::from_millis(u64::MAX), Timestamp::from_millis);
            golden.on_watermark(complete, &mut derived);
            for e in derived.drain(..) {
                for d in &mut detectors {
                    d.on_event(&e, &mut signals);
                }
                if let Some(filter) = filter.as_mut() {
                    filter.on_event(&e, derived_seq(&e), &mut rows);
                }
            }
            if let Some(f) = f {
                for d in &mut detectors {
                    d.on_watermark(Timestamp::from_millis(f), &mut signals);
                }
            }
            if let Some(filter) = filter.as_mut() {
                // Panes that ended before the frontier are complete: their partials go on.
                filter.flush(f, &mut rows);
            }
            if let Some(filter) = filter.as_mut().filter(|f| f.rules().reads_signals()) {
                for s in &signals {
                    filter.on_signal(s, &mut rows);
                }
            }
            out.extend(
                signals
                    .drain(..)
                    .map(|s| Detected::Found(Finding::Signal(s))),
            );
            out.extend(rows.drain(..).map(Detected::Row));
            emit_and_downgrade(&mut cap, f, &mut out, output);
        }
    })
}

/// A derived event's place among the input's events at the same time: a stable hash of what
/// it is, so that rule rows order the same on any number of workers.
fn derived_seq(e: &Event) -> u64 {
    let mut h = StableHasher::new();
    h.write_str(e.service.as_str());
    if let EventBody::Metric(m) = &e.body {
        h.write_str(m.name.as_str());
        for (k, v) in m.labels.iter() {
            h.write_str(k.as_str());
            h.write_str(v.as_str());
        }
    }
    h.write_u64(e.ts.as_millis());
    h.finish() | 1 << 63
}

/// Gives `out` at the held capability (a lower bound on every record's event time), then
/// moves the capability up to the frontier, or drops it when the input is exhausted.
pub(crate) fn emit_and_downgrade<D, Out>(
    cap: &mut Option<timely::dataflow::operators::Capability<u64>>,
    frontier: Option<u64>,
    out: &mut Vec<D>,
    output: &mut Out,
) where
    Out: OutputLike<D>,
{
    if let Some(c) = cap.as_ref() {
        if !out.is_empty() {
            output.give_all(c, out);
        }
    }
    match frontier {
        Some(f) => {
            if let Some(c) = cap.as_mut() {
                c.downgrade(&f);
            }
        }
        None => *cap = None,
    }
}

/// The one thing `emit_and_downgrade` needs of an output handle.
pub(crate) trait OutputLike<D> {
    fn give_all(&mut self, cap: &timely::dataflow::operators::Capability<u64>, data: &mut Vec<D>);
}

impl<D: 'static> OutputLike<D>
    for timely::dataflow::operators::generic::OutputBuilderSession<
        '_,
        u64,
        CapacityContainerBuilder<Vec<D>>,
    >
{
    fn give_all(&mut self, cap: &timely::dataflow::operators::Capability<u64>, data: &mut Vec<D>) {
        let mut session = self.session(cap);
        for d in data.drain(..) {
            session.give(d);
        }
    }
}

/// Feedback events → findings for recall. A plain map: feedback needs no ordering of its own
/// here, the correlator orders everything it consumes.
fn feedback_findings<'s>(events: Stream<'s, u64, Vec<Stamped>>) -> Stream<'s, u64, Vec<Finding>> {
    events.unary(Pipeline, "Feedback", |_cap, _info| {
        move |input, output| {
            input.for_each_stamp(|cap, data| {
                let mut session = output.session(&cap);
                for batch in data {
                    for s in batch.drain(..) {
                        if let EventBody::Feedback(feedback) = s.event.body {
                            session.give(Finding::Feedback {
                                ts: s.event.ts,
                                service: s.event.service,
                                feedback,
                            });
                        }
                    }
                }
            });
        }
    })
}

/// Spans → call edges: an edge enters the graph with its first span and leaves it `ttl` of
/// event time after its last (see [`LearnedEdges`]). Each worker learns from its own spans;
/// the graph downstream is the union.
fn call_edges<'s>(
    events: Stream<'s, u64, Vec<Stamped>>,
    ttl: std::time::Duration,
) -> Stream<'s, u64, Vec<(Edge, u64, isize)>> {
    events.unary_frontier(Pipeline, "CallEdges", move |cap, _info| {
        // Held at the frontier, which is never later than the next expiry: retractions are
        // sent at their exact expiry time.
        let mut held = Some(cap);
        let mut edges = LearnedEdges::new(ttl);
        let mut changes: Vec<(Edge, u64, isize)> = Vec::new();
        move |(input, frontier), output| {
            input.for_each_stamp(|_, data| {
                for batch in data {
                    for s in batch.iter() {
                        if let EventBody::Span(span) = &s.event.body {
                            if let Some(peer) = &span.peer {
                                let edge = (s.event.service.clone(), peer.clone());
                                let ts = s.event.ts.as_millis();
                                if edges.observe(&edge, ts) {
                                    changes.push((edge, ts, 1));
                                }
                            }
                        }
                    }
                }
            });
            let f = first(frontier);
            for (edge, t) in edges.expire_before(f.unwrap_or(u64::MAX)) {
                changes.push((edge, t, -1));
            }
            if let Some(h) = held.as_mut() {
                if !changes.is_empty() {
                    let floor = *h.time();
                    let mut session = output.session(&*h);
                    for (edge, t, diff) in changes.drain(..) {
                        session.give((edge, t.max(floor), diff));
                    }
                }
                match f {
                    Some(f) => h.downgrade(&f.max(*h.time())),
                    None => held = None,
                }
            }
        }
    })
}

/// Orders what the correlator consumes at one event time: graph changes first, then signals in
/// a content-based order (independent of which worker produced them), then feedback.
enum CorrelatorInput {
    Edge(Edge, u64, isize),
    Found(Finding),
}

impl CorrelatorInput {
    fn ts(&self) -> u64 {
        match self {
            CorrelatorInput::Edge(_, t, _) => *t,
            CorrelatorInput::Found(f) => f.ts().as_millis(),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            CorrelatorInput::Edge(..) => 0,
            // Why a rule fired arrives before its signal opens or grows an incident.
            CorrelatorInput::Found(Finding::Explain { .. }) => 1,
            CorrelatorInput::Found(Finding::Signal(_)) => 2,
            CorrelatorInput::Found(Finding::Insight(_)) => 3,
            CorrelatorInput::Found(Finding::Feedback { .. }) => 4,
        }
    }

    fn order(a: &Self, b: &Self) -> Ordering {
        use CorrelatorInput::{Edge as E, Found as F};
        a.ts()
            .cmp(&b.ts())
            .then_with(|| a.rank().cmp(&b.rank()))
            .then_with(|| match (a, b) {
                (E(x, _, dx), E(y, _, dy)) => (x, dx).cmp(&(y, dy)),
                (F(Finding::Explain { key: x, .. }), F(Finding::Explain { key: y, .. })) => {
                    x.cmp(y)
                }
                (F(Finding::Insight(x)), F(Finding::Insight(y))) => {
                    (&x.id, x.version).cmp(&(&y.id, y.version))
                }
                (F(Finding::Signal(x)), F(Finding::Signal(y))) => {
                    (&x.service, x.kind, &x.key, x.state, &x.name, &x.summary)
                        .cmp(&(&y.service, y.kind, &y.key, y.state, &y.name, &y.summary))
                }
                (
                    F(Finding::Feedback {
                        service: s1,
                        feedback: f1,
                        ..
                    }),
                    F(Finding::Feedback {
                        service: s2,
                        feedback: f2,
                        ..
                    }),
                ) => (s1, &f1.incident, &f1.remedy, &f1.user).cmp(&(
                    s2,
                    &f2.incident,
                    &f2.remedy,
                    &f2.user,
                )),
                _ => Ordering::Equal,
            })
    }
}

/// Signals + graph changes → incident versions → insights, on worker 0 (the signal rate is
/// orders of magnitude below the event rate).
fn correlate<'s>(
    findings: Stream<'s, u64, Vec<Finding>>,
    edges: Stream<'s, u64, Vec<(Edge, u64, isize)>>,
    mut correlator: IncidentCorrelator,
    mut recall: IncidentRecall,
    builder: InsightBuilder,
    mut rules: Option<IncidentRules>,
) -> Stream<'s, u64, Vec<Output>> {
    findings.binary_frontier(
        edges,
        Exchange::new(|_: &Finding| 0),
        Exchange::new(|_: &(Edge, u64, isize)| 0),
        "Correlate",
        move |cap, _info| {
            let mut cap = Some(cap);
            let mut buffer: EventTimeBuffer<CorrelatorInput> = EventTimeBuffer::default();
            let mut incidents = Vec::new();
            let mut history = Vec::new();
            let mut explains = Explains::default();
            let mut out: Vec<Output> = Vec::new();
            move |(signals, f1), (edges, f2), output| {
                signals.for_each_stamp(|_, data| {
                    for batch in data {
                        for s in batch.drain(..) {
                            buffer.push(s.ts().as_millis(), CorrelatorInput::Found(s));
                        }
                    }
                });
                edges.for_each_stamp(|_, data| {
                    for batch in data {
                        for (e, t, d) in batch.drain(..) {
                            buffer.push(t, CorrelatorInput::Edge(e, t, d));
                        }
                    }
                });
                let f = match (first(f1), first(f2)) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                for item in buffer.release_before(f, CorrelatorInput::order) {
                    let feedback = match item {
                        CorrelatorInput::Edge((a, b), _, diff) => {
                            correlator.graph_mut().update_edge(&a, &b, diff as i64);
                            None
                        }
                        CorrelatorInput::Found(Finding::Signal(s)) => {
                            correlator.on_signal(&s, &mut incidents);
                            None
                        }
                        CorrelatorInput::Found(Finding::Explain {
                            ts,
                            key,
                            explanation,
                        }) => {
                            explains.insert(ts, key, explanation);
                            None
                        }
                        CorrelatorInput::Found(Finding::Insight(i)) => {
                            out.push(Output::Insight(*i));
                            None
                        }
                        CorrelatorInput::Found(Finding::Feedback {
                            ts,
                            service,
                            feedback,
                        }) => {
                            // Incidents that changed before this feedback go out (and reach
                            // recall) first, so the feedback finds them.
                            correlator.on_watermark(ts, &mut incidents);
                            Some((ts, service, feedback))
                        }
                    };
                    enrich(
                        &builder,
                        &mut recall,
                        &explains,
                        &mut incidents,
                        &mut history,
                        rules.as_mut(),
                        &mut out,
                    );
                    if let Some((ts, service, feedback)) = feedback {
                        recall.on_feedback(ts, &service, &feedback, &mut history);
                    }
                }
                if let Some(f) = f {
                    correlator.on_watermark(Timestamp::from_millis(f), &mut incidents);
                }
                enrich(
                    &builder,
                    &mut recall,
                    &explains,
                    &mut incidents,
                    &mut history,
                    rules.as_mut(),
                    &mut out,
                );
                if let Some(rules) = rules.as_mut() {
                    rules.on_watermark(f, &mut out);
                }
                emit_and_downgrade(&mut cap, f, &mut out, output);
            }
        },
    )
}

/// Incident versions → insights with recall, in order; history records follow the insight
/// that produced them. Rules over `incidents` see every version.
fn enrich(
    builder: &InsightBuilder,
    recall: &mut IncidentRecall,
    explains: &Explains,
    incidents: &mut Vec<Incident>,
    history: &mut Vec<PastIncident>,
    mut rules: Option<&mut IncidentRules>,
    out: &mut Vec<Output>,
) {
    for incident in incidents.drain(..) {
        let mut insight = builder.build(&incident);
        insight.explain = incident
            .signals
            .iter()
            .filter(|s| s.kind == SignalKind::Rule)
            .filter_map(|s| explains.get(&s.key))
            .cloned()
            .collect();
        recall.on_incident(&incident, &mut insight, history);
        if let Some(rules) = rules.as_deref_mut() {
            rules.on_incident(&insight);
        }
        out.push(Output::Insight(insight));
        out.extend(history.drain(..).map(Output::History));
    }
    out.extend(history.drain(..).map(Output::History));
}

/// Why rules fired, by signal key, for the insights their signals join. Bounded: the oldest
/// explanations go first.
#[derive(Default)]
struct Explains {
    by_key: BTreeMap<String, (Timestamp, Explanation)>,
}

impl Explains {
    const MAX: usize = 10_000;

    fn insert(&mut self, ts: Timestamp, key: String, explanation: Explanation) {
        self.by_key.insert(key, (ts, explanation));
        if self.by_key.len() > Self::MAX {
            let oldest = self
                .by_key
                .iter()
                .min_by_key(|(k, (t, _))| (*t, (*k).clone()))
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.by_key.remove(&k);
            }
        }
    }

    fn get(&self, key: &str) -> Option<&Explanation> {
        self.by_key.get(key).map(|(_, e)| e)
    }
}
