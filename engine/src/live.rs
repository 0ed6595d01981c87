//! Running the dataflow over unbounded sources (Kafka partitions, HTTP ingest) until told to
//! stop, with at-least-once delivery end to end.
//!
//! Event time comes from the payload. Each worker tracks a watermark per source partition; a
//! partition that has been silent for `idle_timeout` stops holding the watermark back, so an
//! idle partition never stalls the dataflow. Offsets are committed only for records whose
//! insights are delivered: the driver learns how far the output has progressed (the probe's
//! frontier), the sinks are flushed up to it, and only then are records older than that
//! frontier minus `commit_horizon` (how far back the operators' state reaches) committed. A
//! restart therefore replays the horizon and rebuilds the state; sinks are idempotent on
//! `(id, version)`, so what they see twice is harmless.
//!
//! An incident's id comes from its first signal, so a restart must re-read an incident whole
//! (with the horizon before it) to rebuild it under the same id: a restart from the middle of
//! one would lose its later versions, resolution included, and open a new incident (a second
//! Slack message) for its tail. Commits therefore never land inside an incident's reach, from
//! the horizon before its first signal to its resolution (see `Spans`); an incident open
//! longer than `max_incident_hold` stops holding them back. At shutdown, once the sinks are
//! flushed, a last commit covers everything delivered.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kaizen_connectors::InsightSink;
use kaizen_model::{Event, IncidentStatus, Insight, PastIncident};

use crate::dataflow::{self, Output, Stamped};
use crate::replay::EngineError;
use crate::EngineConfig;

/// A source partition: a Kafka topic-partition, or an ingest endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    /// Topic or endpoint name.
    pub stream: String,
    /// Partition number (0 for unpartitioned sources).
    pub partition: i32,
}

/// One thing a source yields.
#[derive(Debug)]
pub enum Polled {
    /// A decoded event, from `offset` of `from` (several events can share an offset: a message
    /// may be a batch).
    Event {
        /// The event.
        event: Event,
        /// Its partition.
        from: Partition,
        /// Its offset there.
        offset: i64,
    },
    /// Bytes that could not be decoded: they go to the dead-letter sink with the reason.
    Rejected {
        /// The original bytes.
        raw: Vec<u8>,
        /// Why.
        reason: String,
        /// Its partition.
        from: Partition,
        /// Its offset there.
        offset: i64,
    },
}

/// An unbounded source owned by one worker.
pub trait LiveSource: Send {
    /// Appends what arrived within `timeout` (possibly nothing).
    fn poll(&mut self, timeout: Duration, out: &mut Vec<Polled>) -> Result<(), String>;
    /// Commits: for each partition, the next offset to read after a restart.
    fn commit(&mut self, offsets: &[(Partition, i64)]) -> Result<(), String>;
    /// Messages left to read per owned partition, where the source knows (for metrics).
    fn lag(&self) -> Vec<(Partition, i64)> {
        Vec::new()
    }
}

/// A source as the driver holds it.
pub type BoxedSource = Box<dyn LiveSource>;

/// How the live driver paces itself.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// A partition silent this long stops holding the watermark back.
    pub idle_timeout: Duration,
    /// Only records this much older than the delivered output are committed (the longest
    /// reach of the operators' state: windows, quiet periods, change lookback).
    pub commit_horizon: Duration,
    /// How often sinks are flushed and offsets committed.
    pub commit_every: Duration,
    /// When set, event time also advances with the wall clock, this far behind it, so windows
    /// close when every source is quiet (for sources whose events carry real-time stamps).
    pub wall_clock_lag: Option<Duration>,
    /// An open incident holds commits back to `commit_horizon` before its first signal, so
    /// that a restart rebuilds it whole, under the same id; one open longer than this (event
    /// time) stops holding them, and a restart may then see its tail as a new incident.
    pub max_incident_hold: Duration,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            idle_timeout: Duration::from_secs(10),
            commit_horizon: Duration::from_secs(30 * 60),
            commit_every: Duration::from_secs(5),
            wall_clock_lag: None,
            max_incident_hold: Duration::from_secs(24 * 3600),
        }
    }
}

/// Undecodable input: partition, offset, original bytes, reason.
pub type OnRejected<'a> = &'a mut dyn FnMut(&Partition, i64, &[u8], &str);
/// An event later than the allowed lateness: partition, offset, event.
pub type OnLate<'a> = &'a mut dyn FnMut(&Partition, i64, &Event);

/// Events accepted from a partition (for throughput metrics).
pub type OnEvents<'a> = &'a mut dyn FnMut(&Partition, u64);
/// Messages left to read in a partition (consumer lag).
pub type OnLag<'a> = &'a mut dyn FnMut(&Partition, i64);

/// What happened besides insights (for metrics, logs and the dead-letter sink).
#[derive(Default)]
pub struct LiveHooks<'a> {
    /// Undecodable input.
    pub on_rejected: Option<OnRejected<'a>>,
    /// An event later than the allowed lateness.
    pub on_late: Option<OnLate<'a>>,
    /// A history record to persist.
    pub on_history: Option<&'a mut dyn FnMut(&PastIncident)>,
    /// Events accepted, per partition (for throughput and lag metrics).
    pub on_events: Option<OnEvents<'a>>,
    /// A commit failed (the records will be re-read after a restart).
    pub on_commit_error: Option<&'a mut dyn FnMut(&str)>,
    /// Consumer lag, reported with every commit round.
    pub on_lag: Option<OnLag<'a>>,
}

/// Totals of a live run.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct LiveReport {
    /// Events fed to the dataflow.
    pub events: u64,
    /// Undecodable records.
    pub rejected: u64,
    /// Late events.
    pub late: u64,
    /// Insight versions delivered.
    pub insights: u64,
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
    Rejected(Partition, i64, Vec<u8>, String),
    Late(Partition, i64, Event),
    Events(Partition, u64),
    Frontier(u64),
    CommitError(String),
    Lag(Partition, i64),
}

/// The newest event time seen per partition, and when it last spoke.
#[derive(Default)]
struct Clocks {
    partitions: BTreeMap<Partition, (u64, Instant)>,
}

impl Clocks {
    fn observe(&mut self, p: &Partition, ts: u64) {
        let now = Instant::now();
        let e = self.partitions.entry(p.clone()).or_insert((ts, now));
        e.0 = e.0.max(ts);
        e.1 = now;
    }

    /// The least newest-time over partitions that spoke recently (`None` when all are idle).
    fn active(&self, idle: Duration) -> Option<u64> {
        self.partitions
            .values()
            .filter(|(_, seen)| seen.elapsed() < idle)
            .map(|(t, _)| *t)
            .min()
    }

    /// The newest time seen on any partition.
    fn newest(&self) -> Option<u64> {
        self.partitions.values().map(|(t, _)| *t).max()
    }

    /// [`Clocks::active`], or the newest time when every partition is idle.
    #[cfg(test)]
    fn event_time(&self, idle: Duration) -> Option<u64> {
        self.active(idle).or_else(|| self.newest())
    }
}

/// What every worker knows of the others' event time: a worker with no active partition (or
/// none at all) must not hold the shared frontier back, so the watermark is the least time over
/// workers with active partitions, or the newest time anyone saw when all are idle.
struct SharedClocks {
    active: Vec<AtomicU64>,
    newest: AtomicU64,
}

impl SharedClocks {
    const NONE: u64 = u64::MAX;

    fn new(workers: usize) -> SharedClocks {
        SharedClocks {
            active: (0..workers).map(|_| AtomicU64::new(Self::NONE)).collect(),
            newest: AtomicU64::new(0),
        }
    }

    fn publish(&self, worker: usize, local: &Clocks, idle: Duration) {
        if let Some(slot) = self.active.get(worker) {
            slot.store(local.active(idle).unwrap_or(Self::NONE), Ordering::Release);
        }
        if let Some(n) = local.newest() {
            self.newest.fetch_max(n, Ordering::AcqRel);
        }
    }

    fn event_time(&self) -> Option<u64> {
        let least = self
            .active
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .min()
            .unwrap_or(Self::NONE);
        if least != Self::NONE {
            return Some(least);
        }
        let newest = self.newest.load(Ordering::Acquire);
        (newest > 0).then_some(newest)
    }
}

/// Records fed but not yet committed: per partition, (last offset of a poll, newest event
/// time up to it), in offset order.
#[derive(Default)]
struct Uncommitted {
    by_partition: BTreeMap<Partition, VecDeque<(i64, u64)>>,
}

impl Uncommitted {
    fn add(&mut self, p: &Partition, offset: i64, ts: u64) {
        let q = self.by_partition.entry(p.clone()).or_default();
        let newest = q.back().map_or(ts, |(_, t)| (*t).max(ts));
        match q.back_mut() {
            Some(last) if last.0 == offset => last.1 = newest,
            _ => q.push_back((offset, newest)),
        }
    }

    /// Offsets safe to commit: every record up to them is older than `safe_before`.
    fn take_safe(&mut self, safe_before: u64) -> Vec<(Partition, i64)> {
        let mut out = Vec::new();
        for (p, q) in &mut self.by_partition {
            let mut upto = None;
            while let Some(&(offset, newest)) = q.front() {
                if newest >= safe_before {
                    break;
                }
                upto = Some(offset);
                q.pop_front();
            }
            if let Some(o) = upto {
                out.push((p.clone(), o + 1));
            }
        }
        out
    }
}

/// The event-time reach of the incidents delivered so far, which commits must not cut into:
/// from `horizon` before an incident's first signal (what its detectors need to see again to
/// raise that signal) to its resolution.
#[derive(Default)]
struct Spans {
    /// Incident id → (first signal, resolution) in event-time milliseconds.
    by_id: HashMap<String, (u64, Option<u64>)>,
}

impl Spans {
    fn observe(&mut self, insight: &Insight) {
        let opened = insight.opened_at.as_millis();
        let resolved = (insight.status == IncidentStatus::Resolved).then(|| {
            insight
                .resolved_at
                .unwrap_or(insight.updated_at)
                .as_millis()
        });
        let span = self
            .by_id
            .entry(insight.id.clone())
            .or_insert((opened, resolved));
        span.0 = span.0.min(opened);
        span.1 = resolved;
    }

    /// The latest time at most `candidate` before which records may be committed: not inside
    /// any incident's reach, except that of one opened more than `max_hold` before
    /// `candidate`. Forgets the incidents that resolved before it, which no later commit can
    /// cut into.
    fn safe_before(&mut self, candidate: u64, horizon: u64, max_hold: u64) -> u64 {
        let oldest = candidate.saturating_sub(max_hold);
        let mut safe = candidate;
        loop {
            let lower = self
                .by_id
                .values()
                .filter(|(opened, resolved)| {
                    *opened >= oldest
                        && opened.saturating_sub(horizon) < safe
                        && resolved.is_none_or(|r| r > safe)
                })
                .map(|(opened, _)| opened.saturating_sub(horizon))
                .min();
            match lower {
                Some(l) if l < safe => safe = l,
                _ => break,
            }
        }
        self.by_id
            .retain(|_, (_, resolved)| resolved.is_none_or(|r| r > safe));
        safe
    }
}

/// What a worker hands back when it stops, for the last commit once the sinks are flushed.
struct Leftover {
    source: Option<BoxedSource>,
    uncommitted: Uncommitted,
}

/// Runs until `shutdown` is set, then stops intake, delivers what is in flight, commits and
/// returns. `sources[i]` is worker i's source (workers without one only step).
pub fn run_live(
    sources: Vec<Option<BoxedSource>>,
    config: &EngineConfig,
    live: &LiveConfig,
    sink: &mut dyn InsightSink,
    mut hooks: LiveHooks<'_>,
    shutdown: Arc<AtomicBool>,
) -> Result<LiveReport, EngineError> {
    if config.workers == 0 || sources.len() != config.workers {
        return Err(EngineError::Config(
            "one source slot per worker is required".into(),
        ));
    }
    let (tx, rx) = mpsc::channel::<Report>();
    // Records older than this (event time) have their insights delivered and may be committed.
    let commit_before = Arc::new(AtomicU64::new(0));
    let slots: Arc<Vec<Mutex<Option<BoxedSource>>>> =
        Arc::new(sources.into_iter().map(Mutex::new).collect());
    let worker_config = config.clone();
    let live_config = live.clone();
    let worker_commit_before = commit_before.clone();
    let worker_shutdown = shutdown.clone();
    let shared = Arc::new(SharedClocks::new(config.workers));
    let guards = timely::execute(timely::Config::process(config.workers), move |worker| {
        let (output_tx, output_rx) = mpsc::channel::<Output>();
        let handles = dataflow::build(worker, &worker_config, output_tx);
        let source = slots
            .get(worker.index())
            .and_then(|m| m.lock().ok().and_then(|mut s| s.take()));
        drive(
            worker,
            handles,
            source,
            &worker_config,
            &live_config,
            &tx,
            output_rx,
            &worker_commit_before,
            &worker_shutdown,
            &shared,
        )
    })
    .map_err(EngineError::Runtime)?;

    let mut report = LiveReport::default();
    let mut last_flush = Instant::now();
    let mut frontier = 0u64;
    let mut sink_error = None;
    let mut spans = Spans::default();
    let horizon = live.commit_horizon.as_millis() as u64;
    let max_hold = live.max_incident_hold.as_millis() as u64;
    loop {
        // Wake at least every `commit_every`, so an idle stream still gets its sinks flushed
        // and its offsets committed.
        let r = match rx.recv_timeout(live.commit_every) {
            Ok(r) => Some(r),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        match r {
            None => {}
            Some(r) => match r {
                Report::Insight(i) => {
                    report.insights += 1;
                    spans.observe(&i);
                    if sink_error.is_none() {
                        if let Err(e) = sink.emit(&i) {
                            sink_error = Some(e);
                        }
                    }
                }
                Report::History(p) => {
                    if let Some(h) = hooks.on_history.as_mut() {
                        h(&p);
                    }
                }
                Report::Rejected(p, o, raw, reason) => {
                    report.rejected += 1;
                    if let Some(h) = hooks.on_rejected.as_mut() {
                        h(&p, o, &raw, &reason);
                    }
                }
                Report::Late(p, o, e) => {
                    report.late += 1;
                    if let Some(h) = hooks.on_late.as_mut() {
                        h(&p, o, &e);
                    }
                }
                Report::Events(p, n) => {
                    report.events += n;
                    if let Some(h) = hooks.on_events.as_mut() {
                        h(&p, n);
                    }
                }
                Report::Frontier(f) => frontier = frontier.max(f),
                Report::CommitError(e) => {
                    if let Some(h) = hooks.on_commit_error.as_mut() {
                        h(&e);
                    }
                }
                Report::Lag(p, n) => {
                    if let Some(h) = hooks.on_lag.as_mut() {
                        h(&p, n);
                    }
                }
            },
        }
        if last_flush.elapsed() >= live.commit_every && sink_error.is_none() {
            last_flush = Instant::now();
            // Everything before `frontier` has been emitted; once flushed, it is delivered.
            match sink.flush() {
                Ok(()) => {
                    let safe =
                        spans.safe_before(frontier.saturating_sub(horizon), horizon, max_hold);
                    // Lower than before when an incident just learnt of reaches further
                    // back: then nothing more is committed until it allows.
                    commit_before.store(safe, Ordering::Release);
                }
                Err(e) => sink_error = Some(e),
            }
        }
    }
    let mut leftovers = Vec::new();
    for result in guards.join() {
        match result {
            Ok(Ok(leftover)) => leftovers.push(leftover),
            Ok(Err(e)) => return Err(EngineError::Runtime(e)),
            Err(e) => return Err(EngineError::Runtime(e)),
        }
    }
    if let Some(e) = sink_error {
        return Err(e.into());
    }
    sink.flush()?;
    // Everything read is delivered now: the last commit, so that a restart re-reads only the
    // horizon (and the incidents still open), not whatever the last periodic commit left.
    let safe = spans.safe_before(frontier.saturating_sub(horizon), horizon, max_hold);
    for Leftover {
        source,
        mut uncommitted,
    } in leftovers
    {
        let offsets = uncommitted.take_safe(safe);
        if let (Some(mut src), false) = (source, offsets.is_empty()) {
            if let Err(e) = src.commit(&offsets) {
                if let Some(h) = hooks.on_commit_error.as_mut() {
                    h(&e);
                }
            }
        }
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn drive(
    worker: &mut timely::worker::Worker,
    handles: dataflow::Handles,
    mut source: Option<BoxedSource>,
    config: &EngineConfig,
    live: &LiveConfig,
    tx: &mpsc::Sender<Report>,
    outputs: mpsc::Receiver<Output>,
    commit_before: &AtomicU64,
    shutdown: &AtomicBool,
    shared: &SharedClocks,
) -> Result<Leftover, String> {
    let dataflow::Handles {
        mut events,
        topology,
        probe,
    } = handles;
    let forward = |outputs: &mpsc::Receiver<Output>| dataflow::forward(outputs, tx);
    dataflow::load_topology(topology, worker.index(), config);
    let lateness = config.allowed_lateness.as_millis() as u64;
    let tick = (config.tick.as_millis() as u64).max(1);
    let mut clocks = Clocks::default();
    let mut uncommitted = Uncommitted::default();
    let mut polled = Vec::new();
    let mut counter = 0u64;
    let mut watermark = 0u64;
    let mut last_commit = Instant::now();
    let mut last_frontier = 0u64;
    let peers = worker.peers() as u64;
    let index = worker.index() as u64;
    while !shutdown.load(Ordering::Acquire) {
        if let Some(src) = source.as_mut() {
            src.poll(Duration::from_millis(20), &mut polled)?;
        } else {
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut fed: BTreeMap<Partition, u64> = BTreeMap::new();
        for p in polled.drain(..) {
            match p {
                Polled::Event {
                    event,
                    from,
                    offset,
                } => {
                    let ts = event.ts.as_millis();
                    clocks.observe(&from, ts);
                    uncommitted.add(&from, offset, ts);
                    if ts < watermark {
                        let _ = tx.send(Report::Late(from, offset, event));
                        continue;
                    }
                    *fed.entry(from).or_default() += 1;
                    // Unique across workers; live input has no global line order.
                    let seq = counter * peers + index;
                    counter += 1;
                    events.send(Stamped { seq, event });
                }
                Polled::Rejected {
                    raw,
                    reason,
                    from,
                    offset,
                } => {
                    uncommitted.add(&from, offset, 0);
                    let _ = tx.send(Report::Rejected(from, offset, raw, reason));
                }
            }
        }
        for (p, n) in fed {
            let _ = tx.send(Report::Events(p, n));
        }
        shared.publish(worker.index(), &clocks, live.idle_timeout);
        let mut next = shared
            .event_time()
            .map_or(0, |t| t.saturating_sub(lateness));
        if let Some(lag) = live.wall_clock_lag {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let wall = now.saturating_sub(lag.as_millis() as u64);
            next = next.max(wall);
        }
        let next = next / tick * tick;
        if next > watermark {
            watermark = next;
        }
        if watermark > *events.time() {
            events.advance_to(watermark);
        }
        worker.step();
        forward(&outputs);
        if worker.index() == 0 {
            let f = probe.with_frontier(|f| f.first().copied().unwrap_or(u64::MAX));
            if f > last_frontier && f != u64::MAX {
                last_frontier = f;
                let _ = tx.send(Report::Frontier(f));
            }
        }
        if last_commit.elapsed() >= live.commit_every {
            last_commit = Instant::now();
            let offsets = uncommitted.take_safe(commit_before.load(Ordering::Acquire));
            if let (Some(src), false) = (source.as_mut(), offsets.is_empty()) {
                if let Err(e) = src.commit(&offsets) {
                    let _ = tx.send(Report::CommitError(e));
                }
            }
            if let Some(src) = source.as_ref() {
                for (p, n) in src.lag() {
                    let _ = tx.send(Report::Lag(p, n));
                }
            }
        }
    }
    // Stop intake; what was fed is processed and delivered as the input closes.
    drop(events);
    while !probe.done() {
        worker.step();
        forward(&outputs);
    }
    forward(&outputs);
    Ok(Leftover {
        source,
        uncommitted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: i32) -> Partition {
        Partition {
            stream: "t".into(),
            partition: n,
        }
    }

    #[test]
    fn idle_partitions_do_not_hold_the_watermark_back() {
        let mut c = Clocks::default();
        c.observe(&p(0), 1_000);
        c.observe(&p(1), 5_000);
        assert_eq!(c.event_time(Duration::from_secs(60)), Some(1_000));
        // With a zero idle timeout every partition is idle: the newest time counts.
        assert_eq!(c.event_time(Duration::ZERO), Some(5_000));
    }

    fn insight(id: &str, opened_min: u64, resolved_min: Option<u64>) -> Insight {
        let min = |m: u64| kaizen_model::Timestamp::from_millis(m * 60_000);
        let mut i: Insight = serde_json::from_value(serde_json::json!({
            "id": id, "version": 1, "status": "open", "title": "t", "severity": "warning",
            "services": [], "impacted": [], "origin": [], "suspect_changes": [],
            "similar": [], "timeline": [], "opened_at": 0, "updated_at": 0,
            "resolved_at": null
        }))
        .expect("an insight");
        i.opened_at = min(opened_min);
        i.updated_at = min(resolved_min.unwrap_or(opened_min));
        if let Some(r) = resolved_min {
            i.status = IncidentStatus::Resolved;
            i.resolved_at = Some(min(r));
        }
        i
    }

    #[test]
    fn commits_never_cut_into_an_incident() {
        const M: u64 = 60_000;
        let (horizon, hold) = (30 * M, 24 * 60 * M);
        let mut s = Spans::default();
        // Nothing known: the candidate stands.
        assert_eq!(s.safe_before(40 * M, horizon, hold), 40 * M);
        // An incident open since minute 60 holds commits at minute 30…
        s.observe(&insight("b", 60, None));
        assert_eq!(s.safe_before(70 * M, horizon, hold), 30 * M);
        // …and one that resolved at minute 25 after opening at minute 2 does not move that
        // (it lies wholly before minute 30); but a candidate inside its reach goes before it.
        s.observe(&insight("a", 2, Some(25)));
        assert_eq!(s.safe_before(70 * M, horizon, hold), 30 * M);
        let mut early = Spans::default();
        early.observe(&insight("a", 2, Some(25)));
        assert_eq!(early.safe_before(20 * M, horizon, hold), 0);
        // Once "b" resolves, commits move on past it; resolved incidents behind are forgotten.
        s.observe(&insight("b", 60, Some(110)));
        assert_eq!(s.safe_before(140 * M, horizon, hold), 140 * M);
        assert!(s.by_id.is_empty());
        // An incident open longer than the hold stops holding commits back.
        s.observe(&insight("c", 200, None));
        assert_eq!(s.safe_before(300 * M, horizon, 60 * M), 300 * M);
    }

    #[test]
    fn commits_stop_at_the_first_record_that_is_not_safe() {
        let mut u = Uncommitted::default();
        u.add(&p(0), 10, 1_000);
        u.add(&p(0), 11, 3_000);
        u.add(&p(0), 12, 2_000);
        u.add(&p(1), 5, 500);
        // Offset 12's records are newer than 2_500 only through 11's: nothing past 10 is safe.
        assert_eq!(u.take_safe(2_500), vec![(p(0), 11), (p(1), 6)]);
        assert_eq!(u.take_safe(10_000), vec![(p(0), 13)]);
        assert!(u.take_safe(10_000).is_empty());
    }
}
