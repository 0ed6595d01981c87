//! Running the dataflow over a finite input: files, directories, stdin, in any format.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use kaizen_connectors::{DecodeFailure, InsightSink, JsonlSource, SourceError};
use kaizen_model::{Insight, PastIncident, Timestamp};

use crate::dataflow::{self, Output, Stamped};
use crate::EngineConfig;

/// A replay that could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// An input could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The input held no events at all.
    #[error("the input is empty: no events were read")]
    EmptyInput,
    /// Writing insights failed.
    #[error("writing insights failed: {0}")]
    Sink(#[from] std::io::Error),
    /// The timely runtime failed to start or a worker failed.
    #[error("dataflow runtime: {0}")]
    Runtime(String),
    /// The configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Callbacks for what happens during a replay besides insights.
#[derive(Default)]
pub struct ReplayHooks<'a> {
    /// A line could not be decoded (it was skipped and counted).
    pub on_decode_failure: Option<&'a mut dyn FnMut(&DecodeFailure)>,
    /// An event arrived later than the allowed lateness (it was not processed, and counted).
    pub on_late: Option<&'a mut dyn FnMut(&DecodeFailure)>,
    /// Periodic progress: events read so far and the newest event time.
    pub on_progress: Option<&'a mut dyn FnMut(u64, Option<Timestamp>)>,
    /// A history record changed (an incident resolved, or feedback arrived): persist it.
    pub on_history: Option<&'a mut dyn FnMut(&PastIncident)>,
}

/// Ingest-to-output latency over all events, in microseconds of wall time: from reading an
/// event to the dataflow's output frontier passing its event time (all its insights emitted).
#[derive(Clone, Debug, Default, Serialize)]
pub struct LatencySummary {
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Worst.
    pub max_us: u64,
}

/// What a replay did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReplayReport {
    /// Events processed.
    pub events: u64,
    /// Lines that could not be decoded (skipped, counted, reported).
    pub decode_failures: u64,
    /// Events later than the allowed lateness (not processed, counted, reported).
    pub late_events: u64,
    /// Insight versions emitted.
    pub insights: u64,
    /// Earliest event time seen.
    pub first_event: Option<Timestamp>,
    /// Latest event time seen.
    pub last_event: Option<Timestamp>,
    /// Wall time of the run.
    pub elapsed_secs: f64,
    /// Ingest → output latency.
    pub latency: LatencySummary,
}

impl From<Output> for Report {
    fn from(o: Output) -> Report {
        match o {
            Output::Insight(i) => Report::Insight(i),
            Output::History(p) => Report::History(p),
        }
    }
}

enum Report {
    Insight(Insight),
    History(PastIncident),
    DecodeFailure(DecodeFailure),
    Late(DecodeFailure),
    Progress(u64, Option<Timestamp>),
}

#[derive(Default)]
struct SourceStats {
    events: u64,
    decode_failures: u64,
    late: u64,
    first: Option<u64>,
    last: Option<u64>,
    latency: Option<LatencySummary>,
}

impl SourceStats {
    fn merge(&mut self, other: SourceStats) {
        self.events += other.events;
        self.decode_failures += other.decode_failures;
        self.late += other.late;
        self.first = self.first.into_iter().chain(other.first).min();
        self.last = self.last.into_iter().chain(other.last).max();
        // Worker 0's latency stands for all: every worker reads at the same pace.
        if self.latency.is_none() {
            self.latency = other.latency;
        }
    }
}

/// A worker's input and its share of the lines.
type Reader = (JsonlSource, Share);

/// Which lines a reader decodes: line `i` (counting non-blank lines across all inputs, in the
/// source's merged order, which is the same for every reader) belongs to reader `i % peers`.
/// Every reader still sees every line's event times (a native line's peeked, another format's
/// decoded by every reader), so all agree on the watermark and on which events are late,
/// whatever the number of readers.
#[derive(Clone, Copy, Debug)]
struct Share {
    index: u64,
    peers: u64,
}

impl Share {
    fn new(index: usize, peers: usize) -> Share {
        Share {
            index: index as u64,
            peers: peers.max(1) as u64,
        }
    }
}

/// Replays `source` through the engine, writing every insight version to `sink` in emission
/// order (which is deterministic: event-time order of the incidents' changes).
///
/// Decode failures and late events are counted, passed to the hooks and skipped; they never
/// stop the run. Unreadable inputs and an empty input are errors.
pub fn replay(
    source: JsonlSource,
    config: &EngineConfig,
    sink: &mut dyn InsightSink,
    mut hooks: ReplayHooks<'_>,
) -> Result<ReplayReport, EngineError> {
    if config.workers == 0 {
        return Err(EngineError::Config("--workers must be at least 1".into()));
    }
    if config.tick.is_zero() {
        return Err(EngineError::Config("tick must be positive".into()));
    }
    let started = Instant::now();
    let (tx, rx) = mpsc::channel::<Report>();
    // Files can be read by every worker, each decoding its share of the lines; stdin and
    // other one-shot readers are read and decoded by worker 0 alone.
    let peers = config.workers;
    let mut shares: Vec<Option<Reader>> = (0..peers).map(|_| None).collect();
    let reopened: Option<Vec<JsonlSource>> = (peers > 1)
        .then(|| (1..peers).map(|_| source.reopen()).collect())
        .flatten();
    match reopened {
        Some(others) => {
            shares[0] = Some((source, Share::new(0, peers)));
            for (i, s) in others.into_iter().enumerate() {
                shares[i + 1] = Some((s, Share::new(i + 1, peers)));
            }
        }
        None => shares[0] = Some((source, Share::new(0, 1))),
    }
    let shares: Arc<Vec<Mutex<Option<Reader>>>> =
        Arc::new(shares.into_iter().map(Mutex::new).collect());
    let worker_config = config.clone();
    let guards = timely::execute(timely::Config::process(config.workers), move |worker| {
        let (output_tx, output_rx) = mpsc::channel::<Output>();
        let handles = dataflow::build(worker, &worker_config, output_tx);
        let taken = shares
            .get(worker.index())
            .and_then(|m| m.lock().ok().and_then(|mut s| s.take()));
        drive(worker, handles, taken, &worker_config, &tx, output_rx)
    })
    .map_err(EngineError::Runtime)?;

    let mut insights = 0u64;
    let mut sink_error = None;
    for report in rx {
        match report {
            Report::Insight(insight) => {
                insights += 1;
                if sink_error.is_none() {
                    if let Err(e) = sink.emit(&insight) {
                        sink_error = Some(e);
                    }
                }
            }
            Report::History(p) => {
                if let Some(h) = hooks.on_history.as_mut() {
                    h(&p);
                }
            }
            Report::DecodeFailure(f) => {
                if let Some(h) = hooks.on_decode_failure.as_mut() {
                    h(&f);
                }
            }
            Report::Late(f) => {
                if let Some(h) = hooks.on_late.as_mut() {
                    h(&f);
                }
            }
            Report::Progress(n, t) => {
                if let Some(h) = hooks.on_progress.as_mut() {
                    h(n, t);
                }
            }
        }
    }
    let mut stats = SourceStats::default();
    for result in guards.join() {
        match result {
            Ok(Ok(Some(s))) => stats.merge(s),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(e) => return Err(EngineError::Runtime(e)),
        }
    }
    if let Some(e) = sink_error {
        return Err(e.into());
    }
    sink.flush()?;
    if stats.events == 0 && stats.decode_failures == 0 && stats.late == 0 {
        return Err(EngineError::EmptyInput);
    }
    Ok(ReplayReport {
        events: stats.events,
        decode_failures: stats.decode_failures,
        late_events: stats.late,
        insights,
        first_event: stats.first.map(Timestamp::from_millis),
        last_event: stats.last.map(Timestamp::from_millis),
        elapsed_secs: started.elapsed().as_secs_f64(),
        latency: stats.latency.unwrap_or_default(),
    })
}

/// Batches read between forced catch-ups: bounds how far the reader runs ahead of the dataflow.
const MAX_BATCHES_AHEAD: usize = 16;
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// One worker's life: read and decode its share of the input and feed the dataflow, or, with
/// nothing to read, only step.
fn drive(
    worker: &mut timely::worker::Worker,
    handles: dataflow::Handles,
    source: Option<Reader>,
    config: &EngineConfig,
    tx: &mpsc::Sender<Report>,
    outputs: mpsc::Receiver<Output>,
) -> Result<Option<SourceStats>, SourceError> {
    let dataflow::Handles {
        mut events,
        topology,
        probe,
    } = handles;
    let forward = |outputs: &mpsc::Receiver<Output>| dataflow::forward(outputs, tx);
    dataflow::load_topology(topology, worker.index(), config);

    let Some((mut source, share)) = source else {
        drop(events);
        while !probe.done() {
            worker.step_or_park(Some(Duration::from_millis(5)));
            forward(&outputs);
        }
        forward(&outputs);
        return Ok(None);
    };

    let lateness = config.allowed_lateness.as_millis() as u64;
    let tick = (config.tick.as_millis() as u64).max(1);
    let watermark_after =
        |newest: Option<u64>| newest.map_or(0, |n| n.saturating_sub(lateness) / tick * tick);
    let mut stats = SourceStats::default();
    let mut histogram = Histogram::<u64>::new(3).ok();
    // The newest event time of every line read (all shares), and how many lines were read.
    let mut newest: Option<u64> = None;
    let mut line_index = 0u64;
    // The place of the next event in the input, across all shares (ties in event time).
    let mut next_seq = 0u64;
    let mut decoded = Vec::new();
    // (event time that completes the batch, when it was read, events in it)
    let mut in_flight: VecDeque<(u64, Instant, u64)> = VecDeque::new();
    let mut batches_ahead = 0usize;
    let mut last_progress = Instant::now();
    let mut outcome = Ok(());
    let mut finished = false;

    while !finished {
        let read_at = Instant::now();
        let mut batch_events = 0u64;
        let mut batch_max = 0u64;
        for _ in 0..config.batch_size.max(1) {
            match source.next_line() {
                Ok(true) => {}
                Ok(false) => {
                    finished = true;
                    break;
                }
                Err(e) => {
                    outcome = Err(e);
                    finished = true;
                    break;
                }
            }
            // Judged against every line read so far, not against the input's epoch, so the
            // verdict depends neither on batching nor on how lines are shared out.
            let watermark = watermark_after(newest);
            if let Some(t) = source.newest_time() {
                newest = Some(newest.map_or(t.as_millis(), |n| n.max(t.as_millis())));
            }
            // Every event gets a place of its own (a message may hold many), known to every
            // reader without decoding a native line.
            let first_seq = next_seq;
            next_seq += source.event_count().max(1) as u64;
            let nth = line_index;
            line_index += 1;
            if nth % share.peers != share.index {
                continue;
            }
            decoded.clear();
            if let Err(failure) = source.decode_events(&mut decoded) {
                stats.decode_failures += 1;
                let _ = tx.send(Report::DecodeFailure(failure));
                continue;
            }
            for (seq, event) in (first_seq..).zip(decoded.drain(..)) {
                let ts = event.ts.as_millis();
                if ts < watermark {
                    stats.late += 1;
                    let (name, line) = source.position();
                    let _ = tx.send(Report::Late(DecodeFailure {
                        source: name.to_owned(),
                        line,
                        reason: format!(
                            "late: event time {} is before the watermark {} (allowed lateness {:?})",
                            event.ts,
                            Timestamp::from_millis(watermark),
                            config.allowed_lateness
                        ),
                        raw: event.to_json(),
                    }));
                    continue;
                }
                stats.events += 1;
                batch_events += 1;
                batch_max = batch_max.max(ts);
                stats.first = Some(stats.first.map_or(ts, |f| f.min(ts)));
                stats.last = Some(stats.last.map_or(ts, |l| l.max(ts)));
                events.send(Stamped { seq, event });
            }
        }
        let watermark = watermark_after(newest);
        if watermark > *events.time() {
            events.advance_to(watermark);
        }
        if batch_events > 0 {
            in_flight.push_back((batch_max + 1, read_at, batch_events));
        }
        worker.step();
        batches_ahead += 1;
        if batches_ahead >= MAX_BATCHES_AHEAD {
            let now = *events.time();
            worker.step_while(|| probe.less_than(&now));
            batches_ahead = 0;
        }
        record_latencies(&probe, &mut in_flight, histogram.as_mut());
        forward(&outputs);
        if worker.index() == 0 && last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            let _ = tx.send(Report::Progress(
                line_index,
                newest.map(Timestamp::from_millis),
            ));
        }
    }

    // End of input: every event is complete, so event time closes just past the newest event.
    // Every operator must observe that final watermark before the input closes: timers due
    // before it fire, those after it stay pending — the same whatever the batching was.
    if let Some(last) = newest {
        if last + 1 > *events.time() {
            events.advance_to(last + 1);
        }
        worker.step_while(|| probe.less_than(&(last + 1)));
    }
    drop(events);
    while !probe.done() {
        worker.step();
        record_latencies(&probe, &mut in_flight, histogram.as_mut());
        forward(&outputs);
    }
    record_latencies(&probe, &mut in_flight, histogram.as_mut());
    forward(&outputs);
    if worker.index() == 0 {
        let _ = tx.send(Report::Progress(
            line_index,
            newest.map(Timestamp::from_millis),
        ));
    }
    stats.latency = histogram.as_ref().map(|h| LatencySummary {
        p50_us: h.value_at_quantile(0.5),
        p99_us: h.value_at_quantile(0.99),
        max_us: h.max(),
    });
    outcome.map(|()| Some(stats))
}

fn record_latencies(
    probe: &timely::dataflow::ProbeHandle<u64>,
    in_flight: &mut VecDeque<(u64, Instant, u64)>,
    mut histogram: Option<&mut Histogram<u64>>,
) {
    while let Some(&(complete_at, read_at, n)) = in_flight.front() {
        if probe.less_than(&complete_at) {
            break;
        }
        in_flight.pop_front();
        if let Some(h) = histogram.as_deref_mut() {
            let us = read_at.elapsed().as_micros() as u64;
            let _ = h.record_n(us.max(1), n);
        }
    }
}
