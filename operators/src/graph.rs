//! The service dependency graph, as the correlator sees it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use kaizen_model::{ServiceInfo, Symbol, Topology};

/// Who calls whom (edges point caller → callee) plus what the topology says about each service.
///
/// Edges arrive as weighted updates (`+1` seen, `-1` aged out) so the engine can feed it from a
/// differential collection; an edge exists while its weight is positive.
///
/// ```
/// use kaizen_model::Symbol;
/// use kaizen_operators::ServiceGraph;
/// let mut g = ServiceGraph::default();
/// g.update_edge(&Symbol::new("web"), &Symbol::new("api"), 1);
/// g.update_edge(&Symbol::new("api"), &Symbol::new("db"), 1);
/// assert_eq!(g.distance(&Symbol::new("web"), &Symbol::new("db"), 3), Some(2));
/// assert!(g.depends_on(&Symbol::new("web"), &Symbol::new("db")));
/// assert!(!g.depends_on(&Symbol::new("db"), &Symbol::new("web")));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ServiceGraph {
    weights: BTreeMap<(Symbol, Symbol), i64>,
    callees: BTreeMap<Symbol, BTreeSet<Symbol>>,
    callers: BTreeMap<Symbol, BTreeSet<Symbol>>,
    info: BTreeMap<Symbol, ServiceInfo>,
}

impl ServiceGraph {
    /// A graph with the topology's service descriptions and edges.
    pub fn from_topology(topology: &Topology) -> Self {
        let mut g = ServiceGraph::default();
        g.set_services(topology);
        for (a, b) in topology.edges() {
            g.update_edge(&a, &b, 1);
        }
        g
    }

    /// Records what the topology says about each service (tier, user-facing, owner) without
    /// touching edges.
    pub fn set_services(&mut self, topology: &Topology) {
        for s in &topology.services {
            self.info.insert(s.name.clone(), s.clone());
        }
    }

    /// Adds `diff` to the weight of `caller → callee`.
    pub fn update_edge(&mut self, caller: &Symbol, callee: &Symbol, diff: i64) {
        if caller == callee {
            return;
        }
        let w = self
            .weights
            .entry((caller.clone(), callee.clone()))
            .or_insert(0);
        let was = *w > 0;
        *w += diff;
        let is = *w > 0;
        if *w == 0 {
            self.weights.remove(&(caller.clone(), callee.clone()));
        }
        match (was, is) {
            (false, true) => {
                self.callees
                    .entry(caller.clone())
                    .or_default()
                    .insert(callee.clone());
                self.callers
                    .entry(callee.clone())
                    .or_default()
                    .insert(caller.clone());
            }
            (true, false) => {
                if let Some(s) = self.callees.get_mut(caller) {
                    s.remove(callee);
                }
                if let Some(s) = self.callers.get_mut(callee) {
                    s.remove(caller);
                }
            }
            _ => {}
        }
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.weights.len()
    }

    /// Services `s` calls.
    pub fn callees(&self, s: &Symbol) -> impl Iterator<Item = &Symbol> {
        self.callees.get(s).into_iter().flatten()
    }

    /// Services that call `s`.
    pub fn callers(&self, s: &Symbol) -> impl Iterator<Item = &Symbol> {
        self.callers.get(s).into_iter().flatten()
    }

    /// What the topology says about `s`.
    pub fn info(&self, s: &Symbol) -> Option<&ServiceInfo> {
        self.info.get(s)
    }

    /// True when the topology marks `s` as serving end users.
    pub fn is_user_facing(&self, s: &Symbol) -> bool {
        self.info.get(s).is_some_and(|i| i.user_facing)
    }

    /// Hops between `a` and `b` ignoring direction, if within `max_hops`.
    pub fn distance(&self, a: &Symbol, b: &Symbol, max_hops: usize) -> Option<usize> {
        self.bfs(a, max_hops, true, |s| s == b)
    }

    /// True when `a` calls `b`, directly or transitively.
    pub fn depends_on(&self, a: &Symbol, b: &Symbol) -> bool {
        self.bfs(a, usize::MAX, false, |s| s == b)
            .is_some_and(|d| d > 0)
    }

    /// Hops along dependencies from `a` to `b` or from `b` to `a`, if within `max_hops`: how
    /// far a failure could have travelled between them. Services that only share a caller, or
    /// a dependency, are not linked by this — a caller's pain does not flow down into its other
    /// dependencies, and a shared database links two services only once it shows symptoms
    /// itself.
    ///
    /// ```
    /// use kaizen_model::Symbol;
    /// use kaizen_operators::ServiceGraph;
    /// let mut g = ServiceGraph::default();
    /// for (a, b) in [("web", "search"), ("web", "cart"), ("search", "db"), ("cart", "db")] {
    ///     g.update_edge(&Symbol::new(a), &Symbol::new(b), 1);
    /// }
    /// let s = |n: &str| Symbol::new(n);
    /// assert_eq!(g.causal_distance(&s("web"), &s("db"), 3), Some(2));
    /// assert_eq!(g.causal_distance(&s("db"), &s("web"), 3), Some(2));
    /// assert_eq!(g.causal_distance(&s("search"), &s("cart"), 3), None);
    /// ```
    pub fn causal_distance(&self, a: &Symbol, b: &Symbol, max_hops: usize) -> Option<usize> {
        let down = self.bfs(a, max_hops, false, |s| s == b);
        let up = self.bfs(b, max_hops, false, |s| s == a);
        match (down, up) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        }
    }

    fn bfs(
        &self,
        from: &Symbol,
        max_hops: usize,
        undirected: bool,
        mut goal: impl FnMut(&Symbol) -> bool,
    ) -> Option<usize> {
        if goal(from) {
            return Some(0);
        }
        let mut seen = BTreeSet::from([from]);
        let mut queue = VecDeque::from([(from, 0usize)]);
        while let Some((s, d)) = queue.pop_front() {
            if d >= max_hops {
                continue;
            }
            let next = self
                .callees(s)
                .chain(undirected.then(|| self.callers(s)).into_iter().flatten());
            for n in next {
                if seen.insert(n) {
                    if goal(n) {
                        return Some(d + 1);
                    }
                    queue.push_back((n, d + 1));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_exist_while_weight_is_positive() {
        let (a, b) = (Symbol::new("a"), Symbol::new("b"));
        let mut g = ServiceGraph::default();
        g.update_edge(&a, &b, 1);
        g.update_edge(&a, &b, 1);
        g.update_edge(&a, &b, -1);
        assert_eq!(g.distance(&a, &b, 1), Some(1));
        g.update_edge(&a, &b, -1);
        assert_eq!(g.distance(&a, &b, 5), None);
        assert_eq!(g.edge_count(), 0);
    }

    #[test]
    fn distance_respects_the_hop_limit_and_cycles_terminate() {
        let names: Vec<Symbol> = ["a", "b", "c", "d"]
            .iter()
            .map(|s| Symbol::new(s))
            .collect();
        let mut g = ServiceGraph::default();
        for w in names.windows(2) {
            g.update_edge(&w[0], &w[1], 1);
        }
        g.update_edge(&names[3], &names[0], 1);
        assert_eq!(g.distance(&names[0], &names[3], 1), Some(1));
        assert_eq!(g.distance(&names[0], &names[2], 1), None);
        assert!(g.depends_on(&names[0], &names[3]));
        assert!(!g.depends_on(&names[0], &Symbol::new("zzz")));
    }
}
