//! Where templates live: a slab of slots indexed by id, by token count and by flexibility,
//! with least-recently-seen eviction.

use super::*;

impl TemplateMiner {
    /// Adds a template, evicting the least recently seen one first when at the cap.
    pub(super) fn insert(
        &mut self,
        texts: Vec<Box<str>>,
        flexible: bool,
    ) -> (u32, Option<TemplateId>) {
        let evicted = if self.by_id.len() >= self.config.max_templates.max(1) {
            self.evict_lru()
        } else {
            None
        };
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let t = Template::new(id, texts, flexible, self.seq);
        let len = t.tokens.len() as u32;
        let slot = match self.free.pop() {
            Some(slot) => {
                if let Some(place) = self.slots.get_mut(slot as usize) {
                    *place = Some(t);
                }
                slot
            }
            None => {
                self.slots.push(Some(t));
                (self.slots.len() - 1) as u32
            }
        };
        if flexible {
            self.flex.push(slot);
        } else {
            self.buckets.entry(len).or_default().push(slot);
        }
        self.by_id.insert(id, slot);
        (slot, evicted)
    }

    /// Takes a template out of every index; its slot becomes free.
    pub(super) fn remove(&mut self, slot: u32) -> Option<Template> {
        let t = self.slots.get_mut(slot as usize)?.take()?;
        if t.flexible {
            self.flex.retain(|&s| s != slot);
        } else {
            let len = t.tokens.len() as u32;
            if let Some(bucket) = self.buckets.get_mut(&len) {
                bucket.retain(|&s| s != slot);
                if bucket.is_empty() {
                    self.buckets.remove(&len);
                }
            }
        }
        self.by_id.remove(&t.id);
        self.free.push(slot);
        self.cache.clear();
        Some(t)
    }

    pub(super) fn evict_lru(&mut self) -> Option<TemplateId> {
        let (_, _, slot) = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(s, t)| t.as_ref().map(|t| (t.last_seen, t.id, s as u32)))
            .min()?;
        self.remove(slot).map(|t| TemplateId(t.id))
    }

    pub(super) fn remember(&mut self, shape: u64, slot: u32) {
        if self.cache.len() >= self.config.cache_capacity {
            self.cache.clear();
        }
        if let Some(id) = self.slot(slot).map(|t| t.id) {
            self.cache.insert(shape, (id, slot));
        }
    }

    pub(super) fn trim_aliases(&mut self) {
        let cap = 4 * self.config.max_templates.max(1);
        while self.aliases.len() > cap {
            self.aliases.pop_first();
        }
    }
}
