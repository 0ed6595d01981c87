//! When the evidence arrived: the wall-clock instant at which the input first reached each
//! event time, so that an insight version's latency from ingest can be told without carrying
//! an arrival time on every event.
//!
//! An insight version's newest evidence has event time `T`; the input first reached `T` at
//! the instant of the first mark at or after `T`. An event that arrives out of order (later
//! than newer ones, within the allowed lateness) is credited with the earlier instant, so
//! the latency read here can only be shorter than the truth by that disorder.

use std::collections::VecDeque;
use std::time::Instant;

/// Marks kept at most; one per poll that moved the newest event time.
const MAX_MARKS: usize = 8192;

#[derive(Debug, Default)]
pub(super) struct Arrivals {
    /// (newest event time so far in ms, when it was read), both ascending.
    marks: VecDeque<(u64, Instant)>,
    /// Event times before this are no longer remembered.
    forgotten_before: u64,
}

impl Arrivals {
    /// Event time `ts` was read at `at`.
    pub(super) fn read(&mut self, ts: u64, at: Instant) {
        if self.marks.back().is_some_and(|(newest, _)| ts <= *newest) {
            return;
        }
        self.marks.push_back((ts, at));
        if self.marks.len() > MAX_MARKS {
            if let Some((t, _)) = self.marks.pop_front() {
                self.forgotten_before = t + 1;
            }
        }
    }

    /// When the input first reached event time `ts`, if that is still remembered.
    pub(super) fn reached(&self, ts: u64) -> Option<Instant> {
        if ts < self.forgotten_before {
            return None;
        }
        let i = self.marks.partition_point(|(t, _)| *t < ts);
        self.marks.get(i).map(|(_, at)| *at)
    }

    /// Forgets event times before `ts` (no insight will name them as its newest evidence).
    pub(super) fn forget_before(&mut self, ts: u64) {
        while self.marks.len() > 1 && self.marks.get(1).is_some_and(|(t, _)| *t <= ts) {
            if let Some((t, _)) = self.marks.pop_front() {
                self.forgotten_before = t + 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_event_time_is_credited_to_the_first_read_that_reached_it() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut a = Arrivals::default();
        a.read(1_000, at(0));
        a.read(900, at(5)); // older than the newest: no mark
        a.read(2_000, at(10));
        a.read(3_000, at(20));
        assert_eq!(a.reached(1_000), Some(at(0)));
        assert_eq!(a.reached(1_500), Some(at(10)));
        assert_eq!(a.reached(3_000), Some(at(20)));
        assert_eq!(a.reached(3_001), None, "not read yet");
        a.forget_before(2_500);
        assert_eq!(a.reached(1_000), None, "forgotten");
        assert_eq!(
            a.reached(1_500),
            Some(at(10)),
            "the mark at 2 000 still tells"
        );
        assert_eq!(a.reached(2_500), Some(at(20)));
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = Instant::now();
        let mut a = Arrivals::default();
        for ts in 0..(MAX_MARKS as u64 * 2) {
            a.read(ts, t0);
        }
        assert_eq!(a.marks.len(), MAX_MARKS);
        assert_eq!(a.reached(0), None);
    }
}
