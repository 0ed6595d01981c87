//! The service dependency graph as rules see it: `depends_on`, `upstream_of`,
//! `downstream_of` and `hops` in expressions.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use kaizen_model::Topology;

/// Who calls whom (from the topology's depends-on edges).
#[derive(Clone, Debug, Default)]
pub struct Dependencies {
    /// Caller → callees.
    calls: BTreeMap<String, BTreeSet<String>>,
    /// Callee → callers.
    called_by: BTreeMap<String, BTreeSet<String>>,
}

impl Dependencies {
    /// The graph of a topology.
    pub fn from_topology(topology: &Topology) -> Dependencies {
        let mut d = Dependencies::default();
        for (from, to) in topology.edges() {
            d.add(from.as_str(), to.as_str());
        }
        d
    }

    /// Adds `caller → callee`.
    pub fn add(&mut self, caller: &str, callee: &str) {
        self.calls
            .entry(caller.to_string())
            .or_default()
            .insert(callee.to_string());
        self.called_by
            .entry(callee.to_string())
            .or_default()
            .insert(caller.to_string());
    }

    /// `a` calls `b` directly.
    pub fn depends_on(&self, a: &str, b: &str) -> bool {
        self.calls.get(a).is_some_and(|c| c.contains(b))
    }

    /// `a` is something `b` depends on, directly or not (a fault in `a` can reach `b`).
    pub fn upstream_of(&self, a: &str, b: &str) -> bool {
        a != b && reachable(&self.calls, b, a).is_some()
    }

    /// Hops between `a` and `b` ignoring direction, if connected.
    pub fn hops(&self, a: &str, b: &str) -> Option<usize> {
        let mut both = self.calls.clone();
        for (callee, callers) in &self.called_by {
            both.entry(callee.clone())
                .or_default()
                .extend(callers.iter().cloned());
        }
        reachable(&both, a, b)
    }
}

/// Breadth-first distance from `from` to `to` along `edges`.
fn reachable(edges: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> Option<usize> {
    if from == to {
        return Some(0);
    }
    let mut seen = BTreeSet::from([from.to_string()]);
    let mut queue = VecDeque::from([(from.to_string(), 0usize)]);
    while let Some((node, d)) = queue.pop_front() {
        for next in edges.get(&node).into_iter().flatten() {
            if next == to {
                return Some(d + 1);
            }
            if seen.insert(next.clone()) {
                queue.push_back((next.clone(), d + 1));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions() {
        let mut d = Dependencies::default();
        d.add("frontend", "api");
        d.add("api", "db");
        assert!(d.depends_on("api", "db"));
        assert!(!d.depends_on("db", "api"));
        assert!(d.upstream_of("db", "frontend"));
        assert!(!d.upstream_of("frontend", "db"));
        assert_eq!(d.hops("db", "frontend"), Some(2));
        assert_eq!(d.hops("db", "cache"), None);
    }
}
