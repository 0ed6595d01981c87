//! What may be committed: the records fed but not yet committed, and the event-time reach of
//! the incidents delivered so far, which commits must not cut into.

use std::collections::{HashMap, VecDeque};

use kaizen_model::{IncidentStatus, Insight};

use super::by_partition::ByPartition;
use super::Partition;

/// Records fed but not yet committed: per partition, (last offset of a poll, newest event
/// time up to it), in offset order.
#[derive(Default)]
pub(super) struct Uncommitted {
    by_partition: ByPartition<VecDeque<(i64, u64)>>,
}

impl Uncommitted {
    pub(super) fn add(&mut self, p: &Partition, offset: i64, ts: u64) {
        let q = self.by_partition.of(p);
        let newest = q.back().map_or(ts, |(_, t)| (*t).max(ts));
        match q.back_mut() {
            Some(last) if last.0 == offset => last.1 = newest,
            _ => q.push_back((offset, newest)),
        }
    }

    /// Offsets safe to commit, by partition: every record up to them is older than
    /// `safe_before`.
    pub(super) fn take_safe(&mut self, safe_before: u64) -> Vec<(Partition, i64)> {
        let mut out = Vec::new();
        for (p, q) in self.by_partition.iter_mut() {
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
        out.sort();
        out
    }
}

/// The event-time reach of the incidents delivered so far, which commits must not cut into:
/// from `horizon` before an incident's first signal (what its detectors need to see again to
/// raise that signal) to its resolution.
#[derive(Default)]
pub(super) struct Spans {
    /// Incident id → (first signal, resolution) in event-time milliseconds.
    by_id: HashMap<String, (u64, Option<u64>)>,
}

impl Spans {
    pub(super) fn observe(&mut self, insight: &Insight) {
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
    pub(super) fn safe_before(&mut self, candidate: u64, horizon: u64, max_hold: u64) -> u64 {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: i32) -> Partition {
        Partition {
            stream: "t".into(),
            partition: n,
        }
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
