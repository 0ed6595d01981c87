//! Per-partition state looked up once per record.

use super::Partition;

/// One `T` per partition, in a list rather than a map: a worker owns a few partitions, and
/// a poll delivers runs of records from one partition, so the lookup per record is usually
/// of the partition before (`last`) and costs no hashing of its name.
pub(super) struct ByPartition<T> {
    entries: Vec<(Partition, T)>,
    last: usize,
}

impl<T> Default for ByPartition<T> {
    fn default() -> Self {
        ByPartition {
            entries: Vec::new(),
            last: 0,
        }
    }
}

impl<T: Default> ByPartition<T> {
    /// The state of `p`, created empty on first sight.
    pub(super) fn of(&mut self, p: &Partition) -> &mut T {
        if self.entries.get(self.last).is_none_or(|(q, _)| q != p) {
            self.last = match self.entries.iter().position(|(q, _)| q == p) {
                Some(i) => i,
                None => {
                    self.entries.push((p.clone(), T::default()));
                    self.entries.len() - 1
                }
            };
        }
        &mut self.entries[self.last].1
    }
}

impl<T> ByPartition<T> {
    /// Every partition seen, with its state.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&Partition, &mut T)> {
        self.entries.iter_mut().map(|(p, t)| (&*p, t))
    }
}
