//! Per-partition progress for the live driver: event-time watermarks where idle partitions do
//! not hold the frontier back, and which offsets may be committed once insights are delivered.
//!
//! For: at-least-once from Kafka to the sinks. Neither type talks to Kafka; the driver feeds
//! them every [`KafkaRecord`] and every [`AssignmentChange`] of its [`KafkaSource`]
//! (`super::KafkaSource`), one pair per worker.
//!
//! The commit rule: a record is done when every event it carries is older than the event time
//! the sinks have been flushed through (the frontier had passed it, so whatever insight it
//! could change has been emitted, and the flush made that durable). Records are committed in
//! offset order per partition, so one slow record holds back the commits behind it, never the
//! other way round. Undecodable and empty records count as done as soon as everything before
//! them is: flush the dead-letter topic before committing too.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kaizen_model::Timestamp;

use super::source::{AssignmentChange, PartitionId};
use super::KafkaRecord;

/// Which offsets may be committed. See the module docs.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    pending: HashMap<PartitionId, VecDeque<(i64, Option<Timestamp>)>>,
}

impl OffsetTracker {
    /// Nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes a record handed to the dataflow.
    pub fn observe(&mut self, record: &KafkaRecord) {
        self.pending
            .entry(record.partition_id())
            .or_default()
            .push_back((record.next_offset(), record.max_event_time()));
    }

    /// Applies a rebalance: a revoked partition's pending offsets are dropped (its next owner
    /// re-reads them from the last commit).
    pub fn apply(&mut self, change: &AssignmentChange) {
        if let AssignmentChange::Revoked(parts) = change {
            for p in parts {
                self.pending.remove(p);
            }
        }
    }

    /// After the sinks (and the dead-letter topic) are flushed with everything the dataflow
    /// produced for event times before `delivered`: the `(topic, partition, next_offset)` to
    /// commit, for partitions that advanced. Pass the result to `KafkaSource::commit`.
    pub fn committable(&mut self, delivered: Timestamp) -> Vec<(Arc<str>, i32, i64)> {
        let mut out = Vec::new();
        for (p, queue) in &mut self.pending {
            let mut next = None;
            while let Some(&(offset, max_ts)) = queue.front() {
                if max_ts.is_some_and(|ts| ts >= delivered) {
                    break;
                }
                next = Some(offset);
                queue.pop_front();
            }
            if let Some(offset) = next {
                out.push((p.topic.clone(), p.partition, offset));
            }
        }
        self.pending.retain(|_, q| !q.is_empty());
        out.sort();
        out
    }

    /// Records observed and not yet committable.
    pub fn pending(&self) -> usize {
        self.pending.values().map(VecDeque::len).sum()
    }
}

#[derive(Clone, Copy, Debug)]
struct Mark {
    max_ts: Option<Timestamp>,
    last_seen: Instant,
}

/// Event-time progress per owned partition: the watermark is the smallest of the partitions'
/// newest event times, leaving out partitions idle for longer than `idle_after` (and once
/// every partition is idle, the newest of them all, so timers still fire on a quiet stream).
/// A partition assigned but not yet read holds the watermark until it delivers or goes idle.
#[derive(Debug)]
pub struct PartitionWatermarks {
    parts: BTreeMap<PartitionId, Mark>,
    idle_after: Duration,
}

impl PartitionWatermarks {
    /// No partitions; a partition silent for `idle_after` stops holding the watermark.
    pub fn new(idle_after: Duration) -> Self {
        PartitionWatermarks {
            parts: BTreeMap::new(),
            idle_after,
        }
    }

    /// Applies a rebalance: assigned partitions start holding the watermark, revoked ones stop.
    pub fn apply(&mut self, change: &AssignmentChange, now: Instant) {
        match change {
            AssignmentChange::Assigned(parts) => {
                for p in parts {
                    self.parts.entry(p.clone()).or_insert(Mark {
                        max_ts: None,
                        last_seen: now,
                    });
                }
            }
            AssignmentChange::Revoked(parts) => {
                for p in parts {
                    self.parts.remove(p);
                }
            }
        }
    }

    /// Notes a record read at `now` (any record, even an undecodable one, shows activity).
    pub fn observe(&mut self, record: &KafkaRecord, now: Instant) {
        let mark = self.parts.entry(record.partition_id()).or_insert(Mark {
            max_ts: None,
            last_seen: now,
        });
        mark.last_seen = now;
        if let Some(ts) = record.max_event_time() {
            mark.max_ts = Some(mark.max_ts.map_or(ts, |m| m.max(ts)));
        }
    }

    /// The event time all active partitions have reached, or `None` while an active
    /// partition has not delivered any event yet (or nothing was ever seen).
    pub fn watermark(&self, now: Instant) -> Option<Timestamp> {
        let mut low: Option<Timestamp> = None;
        let mut any_active = false;
        for mark in self.parts.values() {
            if now.saturating_duration_since(mark.last_seen) >= self.idle_after {
                continue;
            }
            any_active = true;
            let ts = mark.max_ts?;
            low = Some(low.map_or(ts, |l| l.min(ts)));
        }
        if any_active {
            low
        } else {
            self.parts.values().filter_map(|m| m.max_ts).max()
        }
    }

    /// Partitions currently holding the watermark (not idle).
    pub fn active(&self, now: Instant) -> usize {
        self.parts
            .values()
            .filter(|m| now.saturating_duration_since(m.last_seen) < self.idle_after)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::RecordPayload;
    use kaizen_model::Event;

    fn record(partition: i32, offset: i64, ts: Option<u64>) -> KafkaRecord {
        let payload = match ts {
            Some(ms) => {
                let line = r#"{"ts":1,"kind":"metric","service":"api","name":"cpu","value":0.5}"#;
                let mut event = Event::from_json(line).unwrap();
                event.ts = Timestamp::from_millis(ms);
                RecordPayload::Events(vec![event])
            }
            None => RecordPayload::Undecodable {
                bytes: b"?".to_vec(),
                key: None,
                reason: "bad".into(),
            },
        };
        KafkaRecord {
            topic: Arc::from("t"),
            partition,
            offset,
            timestamp: None,
            payload,
        }
    }

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn commits_advance_in_offset_order_up_to_the_delivered_time() {
        let mut tracker = OffsetTracker::new();
        for (offset, ts) in [(0, Some(100)), (1, None), (2, Some(300)), (3, Some(150))] {
            tracker.observe(&record(0, offset, ts));
        }
        tracker.observe(&record(1, 7, Some(50)));
        assert_eq!(tracker.committable(t(100)), vec![(Arc::from("t"), 1, 8)]);
        // Offset 0 (ts 100) and the undecodable offset 1 are done; offset 2 (ts 300) holds 3.
        assert_eq!(tracker.committable(t(200)), vec![(Arc::from("t"), 0, 2)]);
        assert_eq!(tracker.pending(), 2);
        assert_eq!(tracker.committable(t(301)), vec![(Arc::from("t"), 0, 4)]);
        assert!(tracker.committable(t(1000)).is_empty());
        tracker.observe(&record(2, 0, Some(10)));
        tracker.apply(&AssignmentChange::Revoked(vec![PartitionId::new("t", 2)]));
        assert_eq!(tracker.pending(), 0);
    }

    #[test]
    fn idle_partitions_do_not_hold_the_watermark() {
        let start = Instant::now();
        let later = start + Duration::from_secs(10);
        let mut w = PartitionWatermarks::new(Duration::from_secs(5));
        w.apply(
            &AssignmentChange::Assigned(vec![PartitionId::new("t", 0), PartitionId::new("t", 1)]),
            start,
        );
        assert_eq!(
            w.watermark(start),
            None,
            "an unread partition holds the watermark"
        );
        w.observe(&record(0, 0, Some(500)), start);
        assert_eq!(w.watermark(start), None);
        w.observe(&record(1, 0, Some(200)), start);
        assert_eq!(w.watermark(start), Some(t(200)));
        // Partition 1 goes quiet; partition 0 keeps going.
        w.observe(&record(0, 1, Some(900)), later);
        assert_eq!(w.active(later), 1);
        assert_eq!(w.watermark(later), Some(t(900)));
        // Everything quiet: the newest event time seen.
        assert_eq!(w.watermark(later + Duration::from_secs(60)), Some(t(900)));
        w.apply(
            &AssignmentChange::Revoked(vec![PartitionId::new("t", 0)]),
            later,
        );
        assert_eq!(w.watermark(later + Duration::from_secs(60)), Some(t(200)));
    }
}
