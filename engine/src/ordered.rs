//! Holding records back until event time is complete.

use std::collections::BTreeMap;

/// Bucket width in event-time milliseconds: one allocation per second of event time rather than
/// per record, and the frontier (which advances in whole ticks) usually falls on a boundary.
const BUCKET_MS: u64 = 1000;

/// Buffers records until the frontier passes their event time, then hands them out in a total
/// order, so that state machines see the same sequence however the input was batched.
pub(crate) struct EventTimeBuffer<T> {
    pending: BTreeMap<u64, Vec<(u64, T)>>,
}

impl<T> Default for EventTimeBuffer<T> {
    fn default() -> Self {
        EventTimeBuffer {
            pending: BTreeMap::new(),
        }
    }
}

impl<T> EventTimeBuffer<T> {
    pub(crate) fn push(&mut self, event_time: u64, item: T) {
        self.pending
            .entry(event_time / BUCKET_MS)
            .or_default()
            .push((event_time, item));
    }

    /// Removes and returns, sorted by `order`, every record whose event time is before
    /// `frontier` (all of them when the frontier is empty, i.e. `None`).
    pub(crate) fn release_before(
        &mut self,
        frontier: Option<u64>,
        mut order: impl FnMut(&T, &T) -> std::cmp::Ordering,
    ) -> Vec<T> {
        let mut ready: Vec<(u64, T)> = Vec::new();
        let whole = match frontier {
            None => std::mem::take(&mut self.pending),
            Some(f) => {
                let later = self.pending.split_off(&(f / BUCKET_MS));
                let whole = std::mem::replace(&mut self.pending, later);
                // The bucket the frontier falls into is released only up to the frontier.
                if let Some(bucket) = self.pending.get_mut(&(f / BUCKET_MS)) {
                    if bucket.iter().any(|(t, _)| *t < f) {
                        let (now, keep) = std::mem::take(bucket)
                            .into_iter()
                            .partition(|(t, _)| *t < f);
                        ready = now;
                        *bucket = keep;
                    }
                }
                whole
            }
        };
        for (_, mut bucket) in whole {
            ready.append(&mut bucket);
        }
        ready.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| order(&a.1, &b.1)));
        ready.into_iter().map(|(_, item)| item).collect()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_only_complete_event_time_in_order() {
        let mut b = EventTimeBuffer::default();
        for x in [(5u64, 'c'), (1, 'b'), (2_500, 'y'), (1_200, 'x'), (1, 'a')] {
            b.push(x.0, x);
        }
        let ready = b.release_before(Some(6), Ord::cmp);
        assert_eq!(ready, [(1, 'a'), (1, 'b'), (5, 'c')]);
        assert_eq!(b.len(), 2);
        assert_eq!(b.release_before(Some(2_000), Ord::cmp), [(1_200, 'x')]);
        assert_eq!(b.release_before(None, Ord::cmp), [(2_500, 'y')]);
    }
}
