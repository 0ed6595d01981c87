//! Holding records back until event time is complete.

use std::collections::BTreeMap;

/// Buffers records until the frontier passes their event time, then hands them out in a total
/// order, so that state machines see the same sequence however the input was batched.
pub(crate) struct EventTimeBuffer<T> {
    /// Records bucketed by event time, so releasing costs only what is released.
    pending: BTreeMap<u64, Vec<T>>,
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
        self.pending.entry(event_time).or_default().push(item);
    }

    /// Removes and returns, sorted by `order`, every record whose event time is before
    /// `frontier` (all of them when the frontier is empty, i.e. `None`).
    pub(crate) fn release_before(
        &mut self,
        frontier: Option<u64>,
        order: impl FnMut(&T, &T) -> std::cmp::Ordering,
    ) -> Vec<T> {
        let ready = match frontier {
            None => std::mem::take(&mut self.pending),
            Some(f) => {
                let later = self.pending.split_off(&f);
                std::mem::replace(&mut self.pending, later)
            }
        };
        let mut out: Vec<T> = Vec::with_capacity(ready.values().map(Vec::len).sum());
        for (_, mut bucket) in ready {
            out.append(&mut bucket);
        }
        out.sort_by(order);
        out
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
        for x in [(5u64, 'c'), (1, 'b'), (9, 'x'), (1, 'a')] {
            b.push(x.0, x);
        }
        let ready = b.release_before(Some(6), Ord::cmp);
        assert_eq!(ready, [(1, 'a'), (1, 'b'), (5, 'c')]);
        assert_eq!(b.len(), 1);
        assert_eq!(b.release_before(None, Ord::cmp), [(9, 'x')]);
    }
}
