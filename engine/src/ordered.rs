//! Holding records back until event time is complete.

/// Buffers records until the frontier passes their event time, then hands them out in a total
/// order, so that state machines see the same sequence however the input was batched.
pub(crate) struct EventTimeBuffer<T> {
    pending: Vec<T>,
}

impl<T> Default for EventTimeBuffer<T> {
    fn default() -> Self {
        EventTimeBuffer {
            pending: Vec::new(),
        }
    }
}

impl<T> EventTimeBuffer<T> {
    pub(crate) fn extend(&mut self, items: impl IntoIterator<Item = T>) {
        self.pending.extend(items);
    }

    /// Removes and returns, sorted by `order`, every record whose event time is before
    /// `frontier` (all of them when the frontier is empty, i.e. `None`).
    pub(crate) fn release_before(
        &mut self,
        frontier: Option<u64>,
        event_time: impl Fn(&T) -> u64,
        order: impl FnMut(&T, &T) -> std::cmp::Ordering,
    ) -> Vec<T> {
        let mut ready = Vec::new();
        match frontier {
            None => ready = std::mem::take(&mut self.pending),
            Some(f) => {
                if self.pending.iter().any(|x| event_time(x) < f) {
                    let (now, later): (Vec<T>, Vec<T>) = std::mem::take(&mut self.pending)
                        .into_iter()
                        .partition(|x| event_time(x) < f);
                    ready = now;
                    self.pending = later;
                }
            }
        }
        ready.sort_by(order);
        ready
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_only_complete_event_time_in_order() {
        let mut b = EventTimeBuffer::default();
        b.extend([(5u64, 'c'), (1, 'b'), (9, 'x'), (1, 'a')]);
        let ready = b.release_before(Some(6), |x| x.0, Ord::cmp);
        assert_eq!(ready, [(1, 'a'), (1, 'b'), (5, 'c')]);
        assert_eq!(b.len(), 1);
        assert_eq!(b.release_before(None, |x| x.0, Ord::cmp), [(9, 'x')]);
    }
}
