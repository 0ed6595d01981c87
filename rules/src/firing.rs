//! The alert lifecycle every rule shares, as Prometheus defines it: a condition that starts
//! holding is *pending*; after holding for `FOR` it *fires*; when it stops holding it keeps
//! firing for `KEEP FIRING FOR`, then resolves.

/// A change the lifecycle reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Started firing at `at`; the condition began at `onset`.
    Open {
        /// When the condition began holding.
        onset: u64,
        /// When it fired.
        at: u64,
    },
    /// Resolved at `at`.
    Close {
        /// When.
        at: u64,
    },
}

/// One key's lifecycle.
#[derive(Clone, Debug, Default)]
pub struct Lifecycle {
    pending_since: Option<u64>,
    firing: bool,
    clearing_since: Option<u64>,
    last_hit: Option<u64>,
}

impl Lifecycle {
    /// Is it pending or firing (so absence of data matters)?
    pub fn is_active(&self) -> bool {
        self.pending_since.is_some() || self.firing
    }

    /// Is it firing?
    pub fn is_firing(&self) -> bool {
        self.firing
    }

    /// Since when the condition has held without firing yet.
    pub fn pending_since(&self) -> Option<u64> {
        self.pending_since.filter(|_| !self.firing)
    }

    /// The latest hit.
    pub fn last_hit(&self) -> Option<u64> {
        self.last_hit
    }

    /// Is keep-firing counting down (the condition stopped holding)?
    pub fn is_clearing(&self) -> bool {
        self.clearing_since.is_some()
    }

    /// When keep-firing ends, if it is counting down.
    pub fn clears_at(&self, keep_ms: u64) -> Option<u64> {
        self.clearing_since.map(|c| c + keep_ms)
    }

    /// The condition holds at `t`.
    pub fn hit(&mut self, t: u64, for_ms: u64) -> Option<Transition> {
        self.last_hit = Some(t);
        self.clearing_since = None;
        if self.firing {
            return None;
        }
        let since = *self.pending_since.get_or_insert(t);
        if t.saturating_sub(since) >= for_ms {
            self.firing = true;
            return Some(Transition::Open {
                onset: since,
                at: t,
            });
        }
        None
    }

    /// The condition does not hold at `t`.
    pub fn miss(&mut self, t: u64, keep_ms: u64) -> Option<Transition> {
        self.pending_since = None;
        if !self.firing {
            return None;
        }
        if keep_ms == 0 {
            return self.close(t);
        }
        self.clearing_since.get_or_insert(t);
        self.tick(t, keep_ms)
    }

    /// Time passes: resolves once keep-firing has run out.
    pub fn tick(&mut self, now: u64, keep_ms: u64) -> Option<Transition> {
        match self.clears_at(keep_ms) {
            Some(at) if at <= now && self.firing => self.close(at),
            _ => None,
        }
    }

    fn close(&mut self, at: u64) -> Option<Transition> {
        self.firing = false;
        self.pending_since = None;
        self.clearing_since = None;
        Some(Transition::Close { at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_after_for_and_resolves_after_keep() {
        let mut l = Lifecycle::default();
        assert_eq!(l.hit(0, 120), None);
        assert_eq!(l.hit(60, 120), None);
        assert_eq!(
            l.hit(120, 120),
            Some(Transition::Open { onset: 0, at: 120 })
        );
        assert_eq!(l.hit(180, 120), None);
        assert_eq!(l.miss(240, 300), None);
        // A hit during keep-firing cancels the countdown.
        assert_eq!(l.hit(300, 120), None);
        assert_eq!(l.miss(360, 300), None);
        assert_eq!(l.tick(600, 300), None);
        assert_eq!(l.tick(660, 300), Some(Transition::Close { at: 660 }));
        assert!(!l.is_active());
    }

    #[test]
    fn a_miss_while_pending_starts_over() {
        let mut l = Lifecycle::default();
        l.hit(0, 120);
        l.miss(60, 0);
        assert_eq!(l.hit(100, 120), None);
        assert_eq!(
            l.hit(220, 120),
            Some(Transition::Open {
                onset: 100,
                at: 220
            })
        );
        assert_eq!(l.miss(230, 0), Some(Transition::Close { at: 230 }));
    }
}
