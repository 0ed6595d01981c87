//! Call edges learned from spans, which age out when the calls stop.

use std::collections::{BTreeSet, HashMap};

use kaizen_model::Symbol;

/// A call edge, caller → callee.
pub type CallEdge = (Symbol, Symbol);

/// The call edges seen in spans, each alive until `ttl` of event time passes without a span
/// on it: a service that stopped calling another (a migration, a removed feature) must stop
/// joining their incidents.
///
/// An edge expires at exactly `last seen + ttl`, a time the data alone decides, so the graph at
/// any event time is the same however the spans were batched or spread over workers (each
/// worker keeps its own instance; the union of their edges is the graph).
///
/// ```
/// use std::time::Duration;
/// use kaizen_model::Symbol;
/// use kaizen_operators::LearnedEdges;
///
/// let mut edges = LearnedEdges::new(Duration::from_secs(60));
/// let call = (Symbol::new("web"), Symbol::new("api"));
/// assert!(edges.observe(&call, 1_000));      // new: add it
/// assert!(!edges.observe(&call, 30_000));    // refreshed: expires at 90 s now
/// assert_eq!(edges.next_expiry(), Some(90_000));
/// assert!(edges.expire_before(90_000).is_empty());
/// assert_eq!(edges.expire_before(90_001), vec![(call, 90_000)]);
/// ```
#[derive(Debug)]
pub struct LearnedEdges {
    ttl_ms: u64,
    last_seen: HashMap<CallEdge, u64>,
    /// (expiry, edge) for every live edge; stale entries (refreshed edges) are skipped.
    expiries: BTreeSet<(u64, CallEdge)>,
}

impl LearnedEdges {
    /// Edges live `ttl` of event time after their last span.
    pub fn new(ttl: std::time::Duration) -> Self {
        LearnedEdges {
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1),
            last_seen: HashMap::new(),
            expiries: BTreeSet::new(),
        }
    }

    /// A span on `edge` at `ts_ms`; true when the edge is new (or had expired).
    pub fn observe(&mut self, edge: &CallEdge, ts_ms: u64) -> bool {
        let expiry = ts_ms.saturating_add(self.ttl_ms);
        match self.last_seen.get_mut(edge) {
            Some(seen) if *seen >= ts_ms => false,
            Some(seen) => {
                self.expiries
                    .remove(&(seen.saturating_add(self.ttl_ms), edge.clone()));
                *seen = ts_ms;
                self.expiries.insert((expiry, edge.clone()));
                false
            }
            None => {
                self.last_seen.insert(edge.clone(), ts_ms);
                self.expiries.insert((expiry, edge.clone()));
                true
            }
        }
    }

    /// The earliest time an edge will expire, if any is alive.
    pub fn next_expiry(&self) -> Option<u64> {
        self.expiries.first().map(|(t, _)| *t)
    }

    /// Removes and returns every edge expiring before `frontier` (no span before it can still
    /// arrive), each with its expiry time.
    pub fn expire_before(&mut self, frontier: u64) -> Vec<(CallEdge, u64)> {
        let mut gone = Vec::new();
        while let Some((t, _)) = self.expiries.first() {
            if *t >= frontier {
                break;
            }
            let Some((t, edge)) = self.expiries.pop_first() else {
                break;
            };
            self.last_seen.remove(&edge);
            gone.push((edge, t));
        }
        gone
    }

    /// Edges alive now.
    pub fn len(&self) -> usize {
        self.last_seen.len()
    }

    /// No edge is alive.
    pub fn is_empty(&self) -> bool {
        self.last_seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn edge(a: &str, b: &str) -> CallEdge {
        (Symbol::new(a), Symbol::new(b))
    }

    #[test]
    fn an_edge_lives_ttl_after_its_last_span_and_can_come_back() {
        let mut edges = LearnedEdges::new(Duration::from_secs(3600));
        let e = edge("checkout", "payments");
        assert!(edges.observe(&e, 0));
        assert!(!edges.observe(&e, 600_000));
        assert!(!edges.observe(&e, 300_000), "an older span changes nothing");
        assert!(edges.expire_before(4_200_000).is_empty());
        assert_eq!(edges.expire_before(4_200_001), vec![(e.clone(), 4_200_000)]);
        assert!(edges.is_empty());
        assert!(edges.observe(&e, 5_000_000), "it comes back as new");
    }

    #[test]
    fn expiry_does_not_depend_on_how_spans_were_batched() {
        let spans = [
            (edge("a", "b"), 10),
            (edge("a", "c"), 20),
            (edge("a", "b"), 50),
        ];
        let run = |frontiers: &[u64]| {
            let mut edges = LearnedEdges::new(Duration::from_millis(100));
            let mut out = Vec::new();
            let mut next = 0;
            for &f in frontiers {
                while next < spans.len() && spans[next].1 < f {
                    edges.observe(&spans[next].0, spans[next].1);
                    next += 1;
                }
                out.extend(edges.expire_before(f));
            }
            out
        };
        let expected = vec![(edge("a", "c"), 120), (edge("a", "b"), 150)];
        assert_eq!(run(&[1000]), expected);
        assert_eq!(run(&[15, 30, 60, 121, 151, 1000]), expected);
    }
}
