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

mod arrivals;
mod by_partition;
mod clocks;
mod commits;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kaizen_connectors::InsightSink;
use kaizen_model::{Event, Insight, PastIncident, Symbol};

use self::arrivals::Arrivals;
use self::by_partition::ByPartition;
use self::clocks::{Clocks, SharedClocks};
use self::commits::{Spans, Uncommitted};
use crate::dataflow::{self, Output, Stamped};
use crate::replay::EngineError;
use crate::EngineConfig;

/// A source partition: a Kafka topic-partition, or an ingest endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    /// Topic or endpoint name (interned: every event carries its partition; a copy of the
    /// name per event was a tenth of the Kafka path's time, and a shared reference count two
    /// atomic operations per event).
    pub stream: Symbol,
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
    /// The partitions the source owns changed (after the records polled before it). Told in
    /// line with the records, so a wrapper that passes records on passes this on too: an
    /// assigned partition holds the watermark until it delivers or goes idle.
    Assignment(Assignment),
}

/// An unbounded source owned by one worker.
pub trait LiveSource: Send {
    /// Appends what arrived within `timeout` (possibly nothing).
    fn poll(&mut self, timeout: Duration, out: &mut Vec<Polled>) -> Result<(), String>;
    /// Commits: for each partition, the next offset to read after a restart.
    fn commit(&mut self, offsets: &[(Partition, i64)], mode: CommitMode) -> Result<(), String>;
    /// Messages left to read per owned partition, where the source knows (for metrics).
    fn lag(&self) -> Vec<(Partition, i64)> {
        Vec::new()
    }
    /// Whether this source's partitions are assigned to it (a consumer group member) and no
    /// assignment has arrived yet: until one does, the source may hold events older than
    /// anything read so far, so it holds the watermark (for at most the idle timeout).
    fn awaits_assignment(&self) -> bool {
        false
    }
}

/// How much a commit waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitMode {
    /// While running, every `commit_every`: the source may return before the broker has
    /// acknowledged (a worker stalled on a round trip stalls the dataflow); a lost commit is
    /// covered by the next one, and a failure shows on a later call.
    Periodic,
    /// At shutdown: returns once the broker has acknowledged or refused.
    Final,
}

/// A change of the partitions a source owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assignment {
    /// Now this source's.
    Assigned(Vec<Partition>),
    /// No longer this source's.
    Revoked(Vec<Partition>),
    /// Of the partitions just assigned, these have nothing to read yet: they do not hold the
    /// watermark until they deliver (as if idle).
    AtEnd(Vec<Partition>),
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
/// The newest event time (ms) read from a partition.
pub type OnSourceTime<'a> = &'a mut dyn FnMut(&Partition, u64);
/// An insight version emitted, with the time since its newest evidence was read.
pub type OnEmitted<'a> = &'a mut dyn FnMut(&Insight, Option<Duration>);

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
    /// The newest event time (ms) read from a partition, after each poll that read any.
    pub on_source_time: Option<OnSourceTime<'a>>,
    /// The event time (ms) before which every insight has been emitted.
    pub on_frontier: Option<&'a mut dyn FnMut(u64)>,
    /// An insight version handed to the sinks, with the wall-clock time since its newest
    /// evidence was read (when still known).
    pub on_emitted: Option<OnEmitted<'a>>,
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
    /// Events fed, the newest event time read, and when.
    Events(Partition, u64, Option<u64>, Instant),
    Frontier(u64),
    CommitError(String),
    Lag(Partition, i64),
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
    let mut arrivals = Arrivals::default();
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
                    if let Some(h) = hooks.on_emitted.as_mut() {
                        let since = arrivals.reached(i.updated_at.as_millis());
                        h(&i, since.map(|at| at.elapsed()));
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
                Report::Events(p, n, newest, at) => {
                    report.events += n;
                    if let Some(ts) = newest {
                        arrivals.read(ts, at);
                        if let Some(h) = hooks.on_source_time.as_mut() {
                            h(&p, ts);
                        }
                    }
                    if n > 0 {
                        if let Some(h) = hooks.on_events.as_mut() {
                            h(&p, n);
                        }
                    }
                }
                Report::Frontier(f) => {
                    frontier = frontier.max(f);
                    // An insight names evidence at most the window and the lateness older
                    // than the frontier; an hour covers both with room.
                    arrivals.forget_before(frontier.saturating_sub(3_600_000));
                    if let Some(h) = hooks.on_frontier.as_mut() {
                        h(frontier);
                    }
                }
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
    // The workers' consumers commit at once: each waits for a round trip to the broker.
    let safe = spans.safe_before(frontier.saturating_sub(horizon), horizon, max_hold);
    let errors: Vec<String> = std::thread::scope(|scope| {
        let commits: Vec<_> = leftovers
            .into_iter()
            .filter_map(|mut leftover| {
                let offsets = leftover.uncommitted.take_safe(safe);
                let mut src = leftover.source.filter(|_| !offsets.is_empty())?;
                Some(scope.spawn(move || src.commit(&offsets, CommitMode::Final)))
            })
            .collect();
        commits
            .into_iter()
            .filter_map(|c| match c.join() {
                Ok(result) => result.err(),
                Err(_) => Some("the final commit panicked".to_owned()),
            })
            .collect()
    });
    if let Some(h) = hooks.on_commit_error.as_mut() {
        for e in &errors {
            h(e);
        }
    }
    Ok(report)
}

/// What one poll read from one partition.
#[derive(Default)]
struct PollTally {
    /// Events fed to the dataflow (not late).
    fed: u64,
    /// Newest event time read, late events included.
    newest: Option<u64>,
    /// Whether anything was read (undecodable records included).
    read: bool,
}

impl PollTally {
    fn read(&mut self, ts: Option<u64>) {
        self.read = true;
        if let Some(ts) = ts {
            self.newest = Some(self.newest.map_or(ts, |n| n.max(ts)));
        }
    }
}

/// One tally per partition read in a poll, kept across polls so that the bookkeeping costs a
/// lookup per record rather than a name per record.
#[derive(Default)]
struct PollTallies {
    by_partition: ByPartition<PollTally>,
}

impl PollTallies {
    fn of(&mut self, p: &Partition) -> &mut PollTally {
        self.by_partition.of(p)
    }

    /// Hands each partition read since the last call to `f` and resets it.
    fn settle(&mut self, mut f: impl FnMut(&Partition, &PollTally)) {
        for (p, tally) in self.by_partition.iter_mut() {
            if tally.read {
                f(p, tally);
                *tally = PollTally::default();
            }
        }
    }
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
    let mut clocks = Clocks::new(
        source.as_ref().is_some_and(|s| s.awaits_assignment()),
        Instant::now(),
    );
    let mut uncommitted = Uncommitted::default();
    let mut polled = Vec::new();
    let mut tallies = PollTallies::default();
    let mut assignments = Vec::new();
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
        let now = Instant::now();
        for p in polled.drain(..) {
            match p {
                Polled::Event {
                    event,
                    from,
                    offset,
                } => {
                    let ts = event.ts.as_millis();
                    uncommitted.add(&from, offset, ts);
                    let tally = tallies.of(&from);
                    tally.read(Some(ts));
                    if ts < watermark {
                        let _ = tx.send(Report::Late(from, offset, event));
                        continue;
                    }
                    tally.fed += 1;
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
                    tallies.of(&from).read(None);
                    let _ = tx.send(Report::Rejected(from, offset, raw, reason));
                }
                Polled::Assignment(change) => assignments.push(change),
            }
        }
        tallies.settle(|p, tally| {
            if let Some(newest) = tally.newest {
                clocks.observe(p, newest, now);
            }
            if tally.fed > 0 || tally.newest.is_some() {
                let _ = tx.send(Report::Events(p.clone(), tally.fed, tally.newest, now));
            }
        });
        // After the poll's records: a partition revoked in this poll stays revoked.
        for change in assignments.drain(..) {
            match change {
                Assignment::Assigned(parts) => clocks.assign(&parts, now),
                Assignment::Revoked(parts) => clocks.revoke(&parts),
                Assignment::AtEnd(parts) => clocks.at_end(&parts),
            }
        }
        shared.publish(worker.index(), &clocks, live.idle_timeout, now);
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
                if let Err(e) = src.commit(&offsets, CommitMode::Periodic) {
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
