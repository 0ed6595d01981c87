//! The simulated estate: services, their kinds and baselines, and who calls whom.
//!
//! The estate depends only on the number of services (not on the seed), so every seed of a
//! given size runs on the same architecture.

use kaizen_model::{ServiceInfo, Slo, StableHasher, Symbol, Topology};

use crate::catalog::{CORE, EXTRA_DATA, EXTRA_NAMES, EXTRA_TABLES, EXTRA_TEAMS};
use crate::rng::{push_pod_suffix, Rng};

/// What a service is, which decides its baselines, log templates and span operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Server-rendered web frontend.
    Web,
    /// Public API gateway.
    Gateway,
    /// An ordinary HTTP/gRPC service.
    Service,
    /// Identity and sessions.
    Auth,
    /// Payment processing (talks to an external provider).
    Payments,
    /// Asynchronous consumer.
    Worker,
    /// Relational database.
    Sql,
    /// In-memory cache.
    Cache,
    /// Message queue.
    Queue,
}

impl Kind {
    /// Databases, caches and queues.
    pub(crate) fn is_data(self) -> bool {
        matches!(self, Kind::Sql | Kind::Cache | Kind::Queue)
    }

    fn tier(self) -> &'static str {
        match self {
            Kind::Web | Kind::Gateway => "edge",
            Kind::Worker => "async",
            Kind::Sql | Kind::Cache | Kind::Queue => "data",
            Kind::Service | Kind::Auth | Kind::Payments => "core",
        }
    }

    /// Nominal (mean, at the daily midpoint) telemetry levels.
    fn baseline(self) -> Baseline {
        let b = |rps, err, p50, p99, cpu, mem, sat| Baseline {
            rps,
            err,
            p50,
            p99,
            cpu,
            mem,
            sat,
        };
        match self {
            Kind::Web => b(120.0, 0.003, 110.0, 420.0, 0.38, 0.58, 0.30),
            Kind::Gateway => b(80.0, 0.002, 40.0, 170.0, 0.32, 0.47, 0.26),
            Kind::Service => b(60.0, 0.002, 22.0, 95.0, 0.30, 0.52, 0.25),
            Kind::Auth => b(150.0, 0.0015, 7.0, 35.0, 0.28, 0.45, 0.22),
            Kind::Payments => b(15.0, 0.004, 170.0, 620.0, 0.25, 0.50, 0.28),
            Kind::Worker => b(10.0, 0.002, 60.0, 280.0, 0.34, 0.55, 0.30),
            Kind::Sql => b(900.0, 0.001, 2.5, 18.0, 0.33, 0.64, 0.34),
            Kind::Cache => b(2500.0, 0.001, 0.4, 2.5, 0.20, 0.46, 0.15),
            Kind::Queue => b(40.0, 0.001, 3.0, 15.0, 0.18, 0.42, 0.20),
        }
    }
}

/// Nominal telemetry levels of a service.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Baseline {
    /// Requests per second for the whole service.
    pub rps: f64,
    /// Error ratio.
    pub err: f64,
    /// Median latency, ms.
    pub p50: f64,
    /// 99th percentile latency, ms: the `HighLatency` alert compares against 2.5× this.
    pub p99: f64,
    /// CPU utilisation.
    pub cpu: f64,
    /// Memory utilisation.
    pub mem: f64,
    /// Pool / queue saturation.
    pub sat: f64,
}

/// One service of the estate.
#[derive(Clone, Debug)]
pub(crate) struct Service {
    pub name: Symbol,
    pub kind: Kind,
    pub user_facing: bool,
    pub team: &'static str,
    /// Services this one calls (indices), in index order.
    pub callees: Vec<usize>,
    /// Services calling this one (indices), in index order.
    pub callers: Vec<usize>,
    pub base: Baseline,
    /// Operations other services invoke on it (span operation names).
    pub ops: Vec<Symbol>,
    /// Tables (databases) or domain nouns (services) its log lines mention.
    pub tables: &'static [&'static str],
}

impl Service {
    /// Pod names of its instances for a deployed `version` (they change on every rollout).
    pub(crate) fn pods(&self, version: &str, instances: usize) -> Vec<String> {
        (0..instances)
            .map(|i| {
                let mut pod = String::with_capacity(self.name.as_str().len() + 16);
                pod.push_str(self.name.as_str());
                if self.kind.is_data() {
                    pod.push('-');
                    pod.push_str(&i.to_string());
                    return pod;
                }
                let mut h = StableHasher::new();
                h.write_str(self.name.as_str());
                h.write_str(version);
                let rs = h.finish();
                h.write_u64(i as u64);
                pod.push('-');
                push_pod_suffix(&mut pod, rs, 9);
                pod.push('-');
                push_pod_suffix(&mut pod, h.finish(), 5);
                pod
            })
            .collect()
    }
}

/// The whole estate.
#[derive(Clone, Debug)]
pub(crate) struct Estate {
    pub services: Vec<Service>,
}

fn jitter(name: &str, salt: &str) -> f64 {
    let mut h = StableHasher::new();
    h.write_str(name);
    h.write_str(salt);
    // In [0.85, 1.15).
    0.85 + 0.3 * ((h.finish() >> 11) as f64 / (1u64 << 53) as f64)
}

fn baseline_for(name: &str, kind: Kind) -> Baseline {
    let b = kind.baseline();
    Baseline {
        rps: b.rps * jitter(name, "rps"),
        err: b.err * jitter(name, "err"),
        p50: b.p50 * jitter(name, "lat"),
        p99: b.p99 * jitter(name, "lat"),
        cpu: b.cpu * jitter(name, "cpu"),
        mem: b.mem * (0.95 + 0.1 * (jitter(name, "mem") - 0.85) / 0.3),
        sat: b.sat * jitter(name, "sat"),
    }
}

fn symbols(items: &[&str]) -> Vec<Symbol> {
    items.iter().map(|s| Symbol::new(s)).collect()
}

impl Estate {
    /// The estate of `n` services (at least 1): a prefix of the core estate, or the core estate
    /// plus deterministic extra services attached as callees of existing ones.
    pub(crate) fn build(n: usize) -> Estate {
        let n = n.max(1);
        let mut services: Vec<Service> = CORE
            .iter()
            .take(n)
            .map(|c| Service {
                name: Symbol::new(c.name),
                kind: c.kind,
                user_facing: c.user_facing,
                team: c.team,
                callees: Vec::new(),
                callers: Vec::new(),
                base: baseline_for(c.name, c.kind),
                ops: symbols(c.ops),
                tables: c.tables,
            })
            .collect();
        let mut edges = Vec::new();
        for (i, c) in CORE.iter().take(n).enumerate() {
            for dep in c.deps {
                if let Some(j) = services.iter().position(|s| s.name.as_str() == *dep) {
                    edges.push((i, j));
                }
            }
        }
        // Extras: the estate's own fixed stream, so the architecture does not depend on the seed.
        let mut rng = Rng::stream(0x6b61_697a_656e, "estate", n as u64);
        let (mut core_i, mut data_i) = (0usize, 0usize);
        while services.len() < n {
            let idx = services.len();
            let data = (idx - CORE.len()) % 5 == 4;
            let (name, kind) = if data {
                let (base, kind) = EXTRA_DATA[data_i % EXTRA_DATA.len()];
                let round = data_i / EXTRA_DATA.len();
                data_i += 1;
                (suffixed(base, round), kind)
            } else {
                let base = EXTRA_NAMES[core_i % EXTRA_NAMES.len()];
                let round = core_i / EXTRA_NAMES.len();
                core_i += 1;
                (suffixed(base, round), Kind::Service)
            };
            let ops = match kind {
                Kind::Sql => vec![
                    Symbol::new("SELECT record"),
                    Symbol::new("INSERT record"),
                    Symbol::new("UPDATE record"),
                ],
                Kind::Cache => symbols(&["GET", "SET", "DEL"]),
                Kind::Queue => vec![
                    Symbol::new(&format!("publish {name}.events")),
                    Symbol::new(&format!("consume {name}.events")),
                ],
                _ => vec![
                    Symbol::new(&format!("GET /{name}")),
                    Symbol::new(&format!("POST /{name}")),
                ],
            };
            // Callers: 1–2 existing non-data services (never a new cycle: the new service only
            // gains edges to earlier data services, which call nothing).
            let callers_pool: Vec<usize> =
                (0..idx).filter(|&i| !services[i].kind.is_data()).collect();
            let want = 1 + rng.index(2);
            let mut callers = Vec::new();
            for _ in 0..want {
                if let Some(&c) = callers_pool.get(rng.index(callers_pool.len())) {
                    if !callers.contains(&c) {
                        callers.push(c);
                    }
                }
            }
            for c in callers {
                edges.push((c, idx));
            }
            if !data {
                let data_pool: Vec<usize> =
                    (0..idx).filter(|&i| services[i].kind.is_data()).collect();
                if !data_pool.is_empty() && rng.chance(0.6) {
                    edges.push((idx, data_pool[rng.index(data_pool.len())]));
                }
            }
            services.push(Service {
                base: baseline_for(&name, kind),
                name: Symbol::new(&name),
                kind,
                user_facing: false,
                team: EXTRA_TEAMS[idx % EXTRA_TEAMS.len()],
                callees: Vec::new(),
                callers: Vec::new(),
                ops,
                tables: if kind == Kind::Sql {
                    EXTRA_TABLES
                } else {
                    &["record"]
                },
            });
        }
        edges.sort_unstable();
        edges.dedup();
        for &(a, b) in &edges {
            services[a].callees.push(b);
            services[b].callers.push(a);
        }
        for s in &mut services {
            s.callers.sort_unstable();
        }
        Estate { services }
    }

    /// The index of the service called `name`.
    #[cfg(test)]
    pub(crate) fn index(&self, name: &str) -> Option<usize> {
        self.services.iter().position(|s| s.name.as_str() == name)
    }

    /// How many hops of distinct callers lie upstream of `i` (breadth-first levels).
    pub(crate) fn caller_depth(&self, i: usize) -> usize {
        let mut seen = vec![false; self.services.len()];
        seen[i] = true;
        let mut frontier = vec![i];
        let mut depth = 0;
        loop {
            let mut next = Vec::new();
            for &s in &frontier {
                for &c in &self.services[s].callers {
                    if !std::mem::replace(&mut seen[c], true) {
                        next.push(c);
                    }
                }
            }
            if next.is_empty() {
                return depth;
            }
            depth += 1;
            frontier = next;
        }
    }

    /// The topology document (`topology.json`).
    pub(crate) fn topology(&self) -> Topology {
        Topology {
            services: self
                .services
                .iter()
                .map(|s| ServiceInfo {
                    name: s.name.clone(),
                    tier: Some(s.kind.tier().to_owned()),
                    user_facing: s.user_facing,
                    owner: Some(s.team.to_owned()),
                    slack_channel: Some(format!("#{}-oncall", s.team)),
                    depends_on: s
                        .callees
                        .iter()
                        .map(|&c| self.services[c].name.clone())
                        .collect(),
                    // User-facing services promise their users something: an availability
                    // whose error budget is at least 3× the normal error ratio (so a healthy day
                    // burns well under 1×), and a p99 at the level HighLatency pages on.
                    slo: s.user_facing.then(|| Slo {
                        availability: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05]
                            .into_iter()
                            .find(|budget| *budget >= 3.0 * s.base.err)
                            .map(|budget| 1.0 - budget),
                        latency_p99_ms: Some((s.base.p99 * 2.5 / 50.0).round() * 50.0),
                    }),
                    lifecycle: None,
                    system: None,
                })
                .collect(),
        }
    }
}

fn suffixed(base: &str, round: usize) -> String {
    if round == 0 {
        base.to_owned()
    } else {
        format!("{base}-{}", round + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_dag(e: &Estate) -> bool {
        // Kahn's algorithm.
        let n = e.services.len();
        let mut indeg: Vec<usize> = e.services.iter().map(|s| s.callers.len()).collect();
        let mut stack: Vec<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
        let mut seen = 0;
        while let Some(i) = stack.pop() {
            seen += 1;
            for &c in &e.services[i].callees {
                indeg[c] -= 1;
                if indeg[c] == 0 {
                    stack.push(c);
                }
            }
        }
        seen == n
    }

    fn connected(e: &Estate) -> bool {
        let n = e.services.len();
        let mut seen = vec![false; n];
        let mut stack = vec![0];
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            stack.extend(e.services[i].callees.iter().chain(&e.services[i].callers));
        }
        seen.iter().all(|&s| s)
    }

    #[test]
    fn every_size_is_a_connected_dag_with_unique_names() {
        for n in [1, 2, 3, 5, 8, 11, 12, 13, 14, 40, 200] {
            let e = Estate::build(n);
            assert_eq!(e.services.len(), n);
            assert!(is_dag(&e), "n={n} has a cycle");
            assert!(connected(&e), "n={n} is disconnected");
            let mut names: Vec<&str> = e.services.iter().map(|s| s.name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), n, "duplicate names at n={n}");
        }
    }

    #[test]
    fn default_estate_has_two_user_facing_services_and_data_tier() {
        let e = Estate::build(12);
        let t = e.topology();
        let facing: Vec<&str> = t
            .services
            .iter()
            .filter(|s| s.user_facing)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(facing, ["frontend", "api"]);
        assert_eq!(
            t.service("postgres").and_then(|s| s.tier.as_deref()),
            Some("data")
        );
        assert!(t
            .service("checkout")
            .is_some_and(|s| s.depends_on.iter().any(|d| d.as_str() == "payments")));
        let pods = e.services[7].pods("v1.2.3", 2);
        assert!(pods[0].starts_with("payments-") && pods[0] != pods[1]);
    }
}
