//! Fault kinds, the ground-truth records, and how each fault spreads through the estate.

use serde::{Deserialize, Serialize};

use kaizen_model::{Symbol, Timestamp};

use crate::estate::{Estate, Kind};
use crate::rng::Rng;

/// The kinds of fault the simulator injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A release raises the origin's error ratio sharply.
    BadDeploy,
    /// A database gets slow (long-running query, missing index): latency and pool saturation.
    DatabaseSlowdown,
    /// A dependency is down: ~100 % errors at the origin, 5xx at its callers.
    DependencyOutage,
    /// Memory climbs until the container is OOM-killed, again and again.
    MemoryLeak,
    /// A TLS certificate expires: handshake failures at the origin's callers.
    CertificateExpiry,
    /// Another tenant on the node eats the CPU: throttling and latency.
    NoisyNeighbor,
    /// A slow origin exhausts its callers' pools and timeouts cascade upstream.
    CascadingTimeouts,
}

impl FaultKind {
    /// Every kind, in declaration order.
    pub const ALL: [FaultKind; 7] = [
        FaultKind::BadDeploy,
        FaultKind::DatabaseSlowdown,
        FaultKind::DependencyOutage,
        FaultKind::MemoryLeak,
        FaultKind::CertificateExpiry,
        FaultKind::NoisyNeighbor,
        FaultKind::CascadingTimeouts,
    ];

    /// The snake_case name used in `ground_truth.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::BadDeploy => "bad_deploy",
            FaultKind::DatabaseSlowdown => "database_slowdown",
            FaultKind::DependencyOutage => "dependency_outage",
            FaultKind::MemoryLeak => "memory_leak",
            FaultKind::CertificateExpiry => "certificate_expiry",
            FaultKind::NoisyNeighbor => "noisy_neighbor",
            FaultKind::CascadingTimeouts => "cascading_timeouts",
        }
    }

    /// The metric whose alert threshold the origin crosses first (what a detector should see).
    pub fn primary_metric(self) -> &'static str {
        match self {
            FaultKind::BadDeploy | FaultKind::DependencyOutage | FaultKind::CertificateExpiry => {
                "http_error_ratio"
            }
            FaultKind::DatabaseSlowdown | FaultKind::CascadingTimeouts => "http_latency_p99_ms",
            FaultKind::MemoryLeak => "memory_utilization",
            FaultKind::NoisyNeighbor => "cpu_utilization",
        }
    }

    /// How many hops upstream of the origin the fault can degrade callers.
    fn max_hops(self, rng: &mut Rng) -> u32 {
        match self {
            FaultKind::BadDeploy | FaultKind::CertificateExpiry => 2,
            FaultKind::DatabaseSlowdown | FaultKind::DependencyOutage => 3,
            FaultKind::MemoryLeak | FaultKind::NoisyNeighbor => 1,
            FaultKind::CascadingTimeouts => rng.range(2, 4) as u32,
        }
    }

    /// Per-hop attenuation of the effect on callers.
    pub(crate) fn attenuation(self) -> f64 {
        match self {
            FaultKind::BadDeploy => 0.45,
            FaultKind::DatabaseSlowdown | FaultKind::DependencyOutage => 0.5,
            FaultKind::CertificateExpiry => 0.4,
            FaultKind::MemoryLeak | FaultKind::NoisyNeighbor => 0.5,
            FaultKind::CascadingTimeouts => 0.85,
        }
    }

    /// How long before its start the fault already shows: a certificate warns before it
    /// expires (the `CertificateExpiringSoon` alert).
    pub(crate) fn warning_lead_ms(self) -> u64 {
        match self {
            FaultKind::CertificateExpiry => 5 * 60_000,
            _ => 0,
        }
    }

    /// Seconds for an affected service to reach full effect after its onset.
    pub(crate) fn ramp_ms(self) -> u64 {
        match self {
            FaultKind::BadDeploy | FaultKind::DependencyOutage | FaultKind::CertificateExpiry => {
                20_000
            }
            FaultKind::MemoryLeak => 10_000,
            _ => 40_000,
        }
    }

    /// Whether `kind` could plausibly be the origin of this fault, best fits first.
    pub(crate) fn origin_preference(self, estate: &Estate, i: usize) -> u8 {
        let s = &estate.services[i];
        let has_callers = !s.callers.is_empty();
        let data = s.kind.is_data();
        match self {
            FaultKind::DatabaseSlowdown => match (s.kind, has_callers) {
                (Kind::Sql, true) => 3,
                (Kind::Cache | Kind::Sql, _) => 2,
                (_, true) => 1,
                _ => 0,
            },
            FaultKind::BadDeploy | FaultKind::CertificateExpiry | FaultKind::MemoryLeak => {
                match (data, has_callers) {
                    (false, true) => 3,
                    (false, false) => 2,
                    _ => 0,
                }
            }
            FaultKind::DependencyOutage => match (s.kind, has_callers) {
                (Kind::Payments | Kind::Auth, true) => 3,
                (_, true) if !s.user_facing => 2,
                (_, true) => 1,
                _ => 0,
            },
            FaultKind::NoisyNeighbor => u8::from(has_callers) + 1,
            FaultKind::CascadingTimeouts => {
                if estate.caller_depth(i) >= 2 {
                    3
                } else if has_callers {
                    1
                } else {
                    0
                }
            }
        }
    }
}

/// One injected fault: what, where, when, who suffers, and what fixes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// `F1`, `F2`, … in start order.
    pub id: String,
    /// What went wrong.
    pub kind: FaultKind,
    /// The service where it started.
    pub origin: Symbol,
    /// The origin plus every transitive caller that degrades, sorted.
    pub affected: Vec<Symbol>,
    /// When the origin starts degrading.
    pub start: Timestamp,
    /// When the first symptom can be seen: `start`, or earlier for a fault that warns before
    /// it strikes (a certificate about to expire). An incident opened on that warning is this
    /// fault's incident.
    pub observable_from: Timestamp,
    /// When the remedy is applied (effects die away within about a minute).
    pub end: Timestamp,
    /// What fixes it.
    pub remedy: String,
    /// The earlier fault this one repeats (same kind, origin and remedy).
    pub recurrence_of: Option<String>,
    /// A human account of what happened.
    pub description: String,
}

/// The answers: every fault of a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// The scenario's seed.
    pub seed: u64,
    /// Scenario start (first event time at or after this).
    pub start: Timestamp,
    /// Scenario end (every event is before this).
    pub end: Timestamp,
    /// The faults, in start order.
    pub faults: Vec<Fault>,
}

/// How one fault reaches one service.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Impact {
    /// The affected service.
    pub svc: usize,
    /// Hops from the origin (0 = the origin).
    pub hop: u32,
    /// The callee through which it is affected (None for the origin).
    pub via: Option<usize>,
    /// When this service starts degrading (ms since the epoch).
    pub onset: u64,
    /// Strength relative to the origin (1 at the origin).
    pub weight: f64,
}

/// Everything the generator needs to play a fault back (the public [`Fault`] plus its knobs).
#[derive(Clone, Debug)]
pub(crate) struct FaultSpec {
    pub kind: FaultKind,
    pub origin: usize,
    pub start: u64,
    pub end: u64,
    /// Kind-specific strength: error ratio added, latency multiple, CPU target…
    pub magnitude: f64,
    pub max_hops: u32,
    /// Origin then callers by hop.
    pub impacts: Vec<Impact>,
    /// OOM restarts (memory leaks), ms since the epoch.
    pub restarts: Vec<u64>,
    /// The memory-leak period (ms between restarts).
    pub leak_period: u64,
    /// Database table / domain noun the fault is about.
    pub table: &'static str,
    /// Index of the fault it repeats.
    pub recurrence_of: Option<usize>,
    /// The faulty version (bad deploys and leaks).
    pub bad_version: Option<String>,
    /// The version to roll back to.
    pub good_version: Option<String>,
    /// Filled in by the planner.
    pub remedy: String,
}

impl FaultSpec {
    /// Draws the kind-specific knobs.
    pub(crate) fn new(kind: FaultKind, origin: usize, estate: &Estate, rng: &mut Rng) -> FaultSpec {
        let magnitude = match kind {
            FaultKind::BadDeploy => rng.uniform(0.15, 0.40),
            FaultKind::DatabaseSlowdown => rng.uniform(10.0, 30.0),
            FaultKind::DependencyOutage => rng.uniform(0.96, 0.995),
            FaultKind::MemoryLeak => rng.uniform(0.985, 0.995),
            FaultKind::CertificateExpiry => rng.uniform(0.5, 0.8),
            FaultKind::NoisyNeighbor => rng.uniform(3.0, 5.0),
            FaultKind::CascadingTimeouts => rng.uniform(8.0, 15.0),
        };
        let tables = estate.services[origin].tables;
        let table = tables
            .get(rng.index(tables.len()))
            .copied()
            .unwrap_or("orders");
        FaultSpec {
            kind,
            origin,
            start: 0,
            end: 0,
            magnitude,
            max_hops: kind.max_hops(rng),
            impacts: Vec::new(),
            restarts: Vec::new(),
            leak_period: 0,
            table,
            recurrence_of: None,
            bad_version: None,
            good_version: None,
            remedy: String::new(),
        }
    }

    /// The services this fault reaches (origin first, then callers by hop, each with the
    /// callee it is reached through), without timing.
    pub(crate) fn reach(&self, estate: &Estate) -> Vec<(usize, u32, Option<usize>)> {
        let mut out = vec![(self.origin, 0, None)];
        let mut frontier = vec![self.origin];
        for hop in 1..=self.max_hops {
            let mut next = Vec::new();
            for &callee in &frontier {
                for &caller in &estate.services[callee].callers {
                    if out.iter().all(|&(s, _, _)| s != caller) {
                        out.push((caller, hop, Some(callee)));
                        next.push(caller);
                    }
                }
            }
            frontier = next;
        }
        out
    }

    /// Fixes the timing (start/end) and derives impacts and restarts.
    pub(crate) fn place(&mut self, estate: &Estate, start: u64, end: u64, rng: &mut Rng) {
        self.start = start;
        self.end = end;
        let reach = self.reach(estate);
        let mut impacts: Vec<Impact> = Vec::with_capacity(reach.len());
        for (svc, hop, via) in reach {
            let onset = match via.and_then(|v| impacts.iter().find(|i| i.svc == v)) {
                // 30–90 s per hop so the origin always degrades first.
                Some(parent) => parent.onset + rng.range(30_000, 90_000),
                None => start,
            };
            let weight = (0..hop).fold(1.0, |w, _| w * self.kind.attenuation());
            impacts.push(Impact {
                svc,
                hop,
                via,
                onset,
                weight,
            });
        }
        self.impacts = impacts;
        self.restarts.clear();
        if self.kind == FaultKind::MemoryLeak {
            let span = end.saturating_sub(start);
            self.leak_period = ((span as f64 * rng.uniform(0.36, 0.55)) as u64).max(60_000);
            let mut t = start + self.leak_period;
            while t < end {
                self.restarts.push(t);
                t += self.leak_period;
            }
        }
    }

    /// The affected services' names, sorted.
    pub(crate) fn affected(&self, estate: &Estate) -> Vec<Symbol> {
        let mut v: Vec<Symbol> = self
            .impacts
            .iter()
            .map(|i| estate.services[i.svc].name.clone())
            .collect();
        v.sort();
        v
    }

    /// A human account of the fault.
    pub(crate) fn describe(&self, estate: &Estate) -> String {
        let name = estate.services[self.origin].name.as_str();
        let callers: Vec<&str> = self
            .impacts
            .iter()
            .skip(1)
            .map(|i| estate.services[i.svc].name.as_str())
            .collect();
        let spread = if callers.is_empty() {
            String::from("No caller is affected.")
        } else {
            format!("Degradation spreads upstream to {}.", callers.join(", "))
        };
        let what = match self.kind {
            FaultKind::BadDeploy => format!(
                "Deploy of {name} {} introduced a regression: about {:.0}% of its requests fail with 500s.",
                self.bad_version.as_deref().unwrap_or("a new version"),
                self.magnitude * 100.0
            ),
            FaultKind::DatabaseSlowdown => format!(
                "A long-running query on table `{}` (missing index) slows {name} about {:.0}x and saturates its connection pool; callers time out.",
                self.table, self.magnitude
            ),
            FaultKind::DependencyOutage => format!(
                "{name} is down in its primary region: nearly every request fails with 503s; callers return 5xx."
            ),
            FaultKind::MemoryLeak => format!(
                "Release {} of {name} leaks memory: heap climbs to the limit, the container is OOM-killed and restarts {} time(s), each time with an error burst.",
                self.bad_version.as_deref().unwrap_or("(new)"),
                self.restarts.len()
            ),
            FaultKind::CertificateExpiry => format!(
                "The TLS certificate of {name} expired: TLS handshakes with it fail and about {:.0}% of its requests error.",
                self.magnitude * 100.0
            ),
            FaultKind::NoisyNeighbor => format!(
                "A noisy neighbour on {name}'s node eats the CPU: it is throttled above 95% CPU and its latency rises about {:.1}x.",
                self.magnitude
            ),
            FaultKind::CascadingTimeouts => format!(
                "{name} slows down about {:.0}x; callers exhaust their connection pools and timeouts cascade up to {} hop(s) upstream.",
                self.magnitude,
                self.impacts.iter().map(|i| i.hop).max().unwrap_or(0)
            ),
        };
        format!("{what} {spread}")
    }

    /// The public record.
    pub(crate) fn to_fault(&self, estate: &Estate, index: usize) -> Fault {
        Fault {
            id: fault_id(index),
            kind: self.kind,
            origin: estate.services[self.origin].name.clone(),
            affected: self.affected(estate),
            start: Timestamp::from_millis(self.start),
            observable_from: Timestamp::from_millis(
                self.start.saturating_sub(self.kind.warning_lead_ms()),
            ),
            end: Timestamp::from_millis(self.end),
            remedy: self.remedy.clone(),
            recurrence_of: self.recurrence_of.map(fault_id),
            description: self.describe(estate),
        }
    }
}

/// `F1`, `F2`, … for index 0, 1, …
pub(crate) fn fault_id(index: usize) -> String {
    format!("F{}", index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reach_follows_callers_and_onsets_grow_per_hop() {
        let estate = Estate::build(12);
        let mut rng = Rng::new(1);
        let pg = estate.index("postgres").unwrap_or(0);
        let mut f = FaultSpec::new(FaultKind::DatabaseSlowdown, pg, &estate, &mut rng);
        f.place(&estate, 1_000_000, 2_000_000, &mut rng);
        assert_eq!(f.impacts[0].svc, pg);
        for imp in &f.impacts[1..] {
            let via = imp.via.unwrap_or(usize::MAX);
            assert!(estate.services[imp.svc].callees.contains(&via));
            let parent = f.impacts.iter().find(|p| p.svc == via).map(|p| p.onset);
            assert!(parent.is_some_and(|p| imp.onset >= p + 30_000));
            assert!(imp.weight < 1.0 && imp.hop <= f.max_hops);
        }
        let affected = f.affected(&estate);
        assert!(affected.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            serde_json::to_string(&FaultKind::CascadingTimeouts).unwrap_or_default(),
            "\"cascading_timeouts\""
        );
    }
}
