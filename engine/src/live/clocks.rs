//! Event time over live partitions: how far every source partition has read, and which of
//! them may still hold older events.
//!
//! The watermark is the least newest-time over the partitions that are speaking. A partition
//! that has been assigned but has not delivered yet holds the watermark where it is: on a
//! backlog across several topics the consumer reads one topic's partitions before another's,
//! and if the first ran the watermark ahead, the other's older events would all be late. A
//! partition silent for the idle timeout (since its assignment or its last event) stops
//! holding, so an empty or stuck partition never stalls the dataflow; one the source knows
//! had nothing to read when it was assigned does not hold at all.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::Partition;

/// What one worker's partitions say about event time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EventTime {
    /// Every partition is idle (or there are none): no say.
    Idle,
    /// A partition that may hold older events has not delivered yet: hold the watermark.
    Hold,
    /// The least newest-time over the partitions speaking.
    At(u64),
}

#[derive(Clone, Copy, Debug)]
struct Clock {
    /// Newest event time read (`None`: assigned, nothing read yet).
    newest: Option<u64>,
    /// Assignment or last event.
    seen: Instant,
    /// Assigned with nothing to read: no say until it delivers.
    at_end: bool,
}

/// The newest event time read per partition, and when it last spoke.
#[derive(Debug)]
pub(super) struct Clocks {
    partitions: BTreeMap<Partition, Clock>,
    /// Set while the source waits for its first assignment (a consumer joining its group).
    awaiting_since: Option<Instant>,
}

impl Clocks {
    /// No partitions yet; `awaits_assignment` when the source's partitions are assigned to it
    /// (it holds the watermark until the first assignment, or for the idle timeout).
    pub(super) fn new(awaits_assignment: bool, now: Instant) -> Clocks {
        Clocks {
            partitions: BTreeMap::new(),
            awaiting_since: awaits_assignment.then_some(now),
        }
    }

    /// These partitions are now owned: each holds the watermark until it delivers or idles.
    pub(super) fn assign(&mut self, parts: &[Partition], now: Instant) {
        self.awaiting_since = None;
        for p in parts {
            self.partitions.entry(p.clone()).or_insert(Clock {
                newest: None,
                seen: now,
                at_end: false,
            });
        }
    }

    /// These assigned partitions had nothing to read: until they deliver, they do not hold.
    pub(super) fn at_end(&mut self, parts: &[Partition]) {
        for p in parts {
            if let Some(c) = self.partitions.get_mut(p) {
                c.at_end = c.newest.is_none();
            }
        }
    }

    /// These partitions are someone else's now: they no longer have a say.
    pub(super) fn revoke(&mut self, parts: &[Partition]) {
        for p in parts {
            self.partitions.remove(p);
        }
    }

    /// `p` delivered events up to `newest` at `now`.
    pub(super) fn observe(&mut self, p: &Partition, newest: u64, now: Instant) {
        // Looked up before inserting: this runs per partition per poll, and a clone of the
        // name per call is measurable on small polls.
        match self.partitions.get_mut(p) {
            Some(c) => {
                c.newest = Some(c.newest.map_or(newest, |n| n.max(newest)));
                c.seen = now;
            }
            None => {
                self.partitions.insert(
                    p.clone(),
                    Clock {
                        newest: Some(newest),
                        seen: now,
                        at_end: false,
                    },
                );
            }
        }
    }

    /// What these partitions say at `now`, leaving out those silent for `idle`.
    pub(super) fn event_time(&self, idle: Duration, now: Instant) -> EventTime {
        if self
            .awaiting_since
            .is_some_and(|since| now.saturating_duration_since(since) < idle)
        {
            return EventTime::Hold;
        }
        let mut least: Option<u64> = None;
        for c in self.partitions.values() {
            if now.saturating_duration_since(c.seen) >= idle {
                continue;
            }
            let Some(t) = c.newest else {
                if c.at_end {
                    continue;
                }
                return EventTime::Hold;
            };
            least = Some(least.map_or(t, |l| l.min(t)));
        }
        least.map_or(EventTime::Idle, EventTime::At)
    }

    /// The newest time read on any partition.
    pub(super) fn newest(&self) -> Option<u64> {
        self.partitions.values().filter_map(|c| c.newest).max()
    }
}

/// What every worker knows of the others' event time: a worker with no active partition (or
/// none at all) must not hold the shared frontier back, so the watermark is the least time over
/// workers with active partitions, or the newest time anyone saw when all are idle.
pub(super) struct SharedClocks {
    active: Vec<AtomicU64>,
    newest: AtomicU64,
}

impl SharedClocks {
    const IDLE: u64 = u64::MAX;
    /// Below any event time: the least over workers cannot move while one holds.
    const HOLD: u64 = 0;

    pub(super) fn new(workers: usize) -> SharedClocks {
        SharedClocks {
            active: (0..workers).map(|_| AtomicU64::new(Self::IDLE)).collect(),
            newest: AtomicU64::new(0),
        }
    }

    pub(super) fn publish(&self, worker: usize, local: &Clocks, idle: Duration, now: Instant) {
        if let Some(slot) = self.active.get(worker) {
            let t = match local.event_time(idle, now) {
                EventTime::Idle => Self::IDLE,
                EventTime::Hold => Self::HOLD,
                EventTime::At(t) => t,
            };
            slot.store(t, Ordering::Release);
        }
        if let Some(n) = local.newest() {
            self.newest.fetch_max(n, Ordering::AcqRel);
        }
    }

    /// The event time all workers have reached (`None`: nothing read yet, or held).
    pub(super) fn event_time(&self) -> Option<u64> {
        let least = self
            .active
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .min()
            .unwrap_or(Self::IDLE);
        if least != Self::IDLE {
            return (least != Self::HOLD).then_some(least);
        }
        let newest = self.newest.load(Ordering::Acquire);
        (newest > 0).then_some(newest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(topic: &str, n: i32) -> Partition {
        Partition {
            stream: topic.into(),
            partition: n,
        }
    }

    const IDLE: Duration = Duration::from_secs(10);

    #[test]
    fn idle_partitions_do_not_hold_the_watermark_back() {
        let t0 = Instant::now();
        let mut c = Clocks::new(false, t0);
        c.observe(&p("t", 0), 1_000, t0);
        c.observe(&p("t", 1), 5_000, t0 + Duration::from_secs(8));
        assert_eq!(c.event_time(IDLE, t0), EventTime::At(1_000));
        // Partition 0 has been silent for 10 s: partition 1 alone has a say.
        assert_eq!(
            c.event_time(IDLE, t0 + Duration::from_secs(10)),
            EventTime::At(5_000)
        );
        assert_eq!(
            c.event_time(IDLE, t0 + Duration::from_secs(60)),
            EventTime::Idle
        );
        assert_eq!(c.newest(), Some(5_000));
    }

    #[test]
    fn an_assigned_partition_holds_the_watermark_until_it_delivers_or_idles() {
        let t0 = Instant::now();
        let mut c = Clocks::new(false, t0);
        c.assign(&[p("logs", 0), p("metrics", 0)], t0);
        let soon = t0 + Duration::from_secs(1);
        // The logs backlog arrives first; metrics has not spoken: hold.
        c.observe(&p("logs", 0), 90_000, soon);
        assert_eq!(c.event_time(IDLE, soon), EventTime::Hold);
        // Its first poll brings events far older than the logs read so far.
        c.observe(&p("metrics", 0), 1_000, soon);
        assert_eq!(c.event_time(IDLE, soon), EventTime::At(1_000));
        // A partition assigned but empty stops holding once idle.
        c.assign(&[p("spans", 0)], soon);
        assert_eq!(c.event_time(IDLE, soon), EventTime::Hold);
        c.observe(&p("logs", 0), 95_000, soon + IDLE);
        c.observe(&p("metrics", 0), 2_000, soon + IDLE);
        assert_eq!(c.event_time(IDLE, soon + IDLE), EventTime::At(2_000));
        // A revoked partition has no say.
        c.revoke(&[p("metrics", 0)]);
        assert_eq!(c.event_time(IDLE, soon + IDLE), EventTime::At(95_000));
    }

    #[test]
    fn a_source_awaiting_its_assignment_holds_for_the_idle_timeout() {
        let t0 = Instant::now();
        let c = Clocks::new(true, t0);
        assert_eq!(c.event_time(IDLE, t0), EventTime::Hold);
        assert_eq!(c.event_time(IDLE, t0 + IDLE), EventTime::Idle);
        // An empty assignment ends the wait.
        let mut c = Clocks::new(true, t0);
        c.assign(&[], t0);
        assert_eq!(c.event_time(IDLE, t0), EventTime::Idle);
    }

    #[test]
    fn one_holding_worker_holds_them_all() {
        let t0 = Instant::now();
        let shared = SharedClocks::new(3);
        let mut reading = Clocks::new(false, t0);
        reading.observe(&p("a", 0), 50_000, t0);
        let joining = Clocks::new(true, t0);
        let without = Clocks::new(false, t0);
        shared.publish(0, &reading, IDLE, t0);
        shared.publish(2, &without, IDLE, t0);
        assert_eq!(shared.event_time(), Some(50_000));
        shared.publish(1, &joining, IDLE, t0);
        assert_eq!(shared.event_time(), None);
        shared.publish(1, &joining, IDLE, t0 + IDLE);
        assert_eq!(shared.event_time(), Some(50_000));
    }
}
