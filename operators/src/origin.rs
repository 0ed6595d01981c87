//! Which service most probably started an incident.

use std::collections::BTreeMap;
use std::time::Duration;

use kaizen_model::{ChangeRef, OriginCandidate, SignalRef, Symbol, Timestamp};

use crate::ServiceGraph;

/// Ranks an incident's services as probable origins, online, from four kinds of evidence:
///
/// * **onset order** — the origin usually degrades first; callers follow as timeouts and errors
///   propagate upstream;
/// * **graph position** — the origin is what the other affected services depend on, and its own
///   dependencies are healthy;
/// * **recent change** — a deploy or config change on a service shortly before onset;
/// * **magnitude** — how far its metrics moved from their learned normal (BARO's insight: the
///   origin's own resource or latency moves most, its neighbours move less).
///
/// Scores are normalised to sum to 1, so they read as relative confidence.
#[derive(Clone, Debug)]
pub struct OriginRanker {
    /// How far before the first onset a change still counts as a suspect.
    pub change_lookback: Duration,
    /// Onset lateness at which the onset evidence halves.
    pub onset_half_life: Duration,
}

impl Default for OriginRanker {
    fn default() -> Self {
        OriginRanker {
            change_lookback: Duration::from_secs(30 * 60),
            onset_half_life: Duration::from_secs(120),
        }
    }
}

struct Evidence<'a> {
    onset: Timestamp,
    first_signal: &'a SignalRef,
    strongest: &'a SignalRef,
}

/// A dependency that moved less than this fraction of what a service moved does not explain
/// the service's trouble.
const EXPLAINING_FRACTION: f64 = 0.2;

/// Whether a dependency that moved `dependency` could explain a service that moved `service`
/// (strengths; 0 = no measure, which cannot rule anything out).
fn comparable(dependency: f64, service: f64) -> bool {
    dependency <= 0.0 || service <= 0.0 || dependency >= EXPLAINING_FRACTION * service
}

impl OriginRanker {
    /// Ranked candidates (highest score first, ties by name), each with its evidence.
    pub fn rank(
        &self,
        signals: &[SignalRef],
        changes: &[ChangeRef],
        graph: &ServiceGraph,
    ) -> Vec<OriginCandidate> {
        let mut per_service: BTreeMap<&Symbol, Evidence<'_>> = BTreeMap::new();
        for s in signals {
            let e = per_service.entry(&s.service).or_insert(Evidence {
                onset: s.onset,
                first_signal: s,
                strongest: s,
            });
            if s.onset < e.onset {
                e.onset = s.onset;
                e.first_signal = s;
            }
            if s.strength > e.strongest.strength {
                e.strongest = s;
            }
        }
        let Some(first) = per_service.values().map(|e| e.onset).min() else {
            return Vec::new();
        };
        let others = per_service.len().saturating_sub(1).max(1) as f64;
        let half_life = self.onset_half_life.as_secs_f64().max(1.0);
        // Deviations span orders of magnitude (a pegged CPU can be thousands of σ): compare
        // them on a log scale, relative to the strongest in the incident.
        let strongest = per_service
            .values()
            .map(|e| e.strongest.strength)
            .fold(0.0f64, f64::max);

        let mut ranked: Vec<OriginCandidate> = per_service
            .iter()
            .map(|(&service, e)| {
                let mut evidence = Vec::new();
                let late = e.onset.since(first).as_secs_f64();
                let onset_score = 0.5f64.powf(late / half_life);
                if late == 0.0 {
                    evidence.push(format!(
                        "first to degrade, at {}: {}",
                        e.onset.clock(),
                        e.first_signal.summary
                    ));
                } else {
                    evidence.push(format!(
                        "degraded at {}, {}s after the first signal",
                        e.onset.clock(),
                        late as u64
                    ));
                }

                // The affected services that depend on it and whose trouble it could explain:
                // one that moved far more than it did is not explained by it (the same rule
                // as for sick dependencies below, seen from the other side).
                let dependents: Vec<&str> = per_service
                    .iter()
                    .filter(|&(&o, d)| {
                        o != service
                            && comparable(e.strongest.strength, d.strongest.strength)
                            && graph.depends_on(o, service)
                    })
                    .map(|(o, _)| o.as_str())
                    .collect();
                // A sick dependency explains this service's trouble when it degraded no later
                // and moved comparably: one that barely wobbled while this one is pegged
                // explains nothing.
                let sick_dependencies: Vec<&str> = per_service
                    .iter()
                    .filter(|&(&o, d)| {
                        o != service
                            && d.onset <= e.onset
                            && comparable(d.strongest.strength, e.strongest.strength)
                            && graph.depends_on(service, o)
                    })
                    .map(|(o, _)| o.as_str())
                    .collect();
                let graph_score = if per_service.len() == 1 {
                    1.0
                } else {
                    dependents.len() as f64 / others
                };
                if !dependents.is_empty() {
                    evidence.push(format!(
                        "{} affected service{} depend{} on it: {}",
                        dependents.len(),
                        if dependents.len() == 1 { "" } else { "s" },
                        if dependents.len() == 1 { "s" } else { "" },
                        dependents.join(", ")
                    ));
                }
                if !sick_dependencies.is_empty() {
                    evidence.push(format!(
                        "its own dependencies are affected too: {}",
                        sick_dependencies.join(", ")
                    ));
                }

                let recent_change = changes
                    .iter()
                    .filter(|c| &c.service == service)
                    .filter(|c| c.ts <= e.onset && e.onset.since(c.ts) <= self.change_lookback)
                    .max_by_key(|c| c.ts);
                let change_score = match recent_change {
                    Some(c) => {
                        evidence.push(format!(
                            "{} at {} ({} min before it degraded): {}",
                            c.change_kind,
                            c.ts.clock(),
                            e.onset.since(c.ts).as_secs() / 60,
                            c.description
                        ));
                        1.0
                    }
                    None => 0.0,
                };

                let strength = e.strongest.strength;
                let magnitude_score = if strongest > 0.0 {
                    strength.ln_1p() / strongest.ln_1p()
                } else {
                    0.0
                };
                if strength > 0.0 && strength >= strongest {
                    evidence.push(format!(
                        "the largest deviation from normal in the incident ({strength:.0}σ): {}",
                        e.strongest.summary
                    ));
                }

                let mut score = 0.3 * onset_score
                    + 0.3 * graph_score
                    + 0.15 * change_score
                    + 0.25 * magnitude_score;
                if !sick_dependencies.is_empty() {
                    score *= 0.5;
                }
                OriginCandidate {
                    service: service.clone(),
                    score,
                    evidence,
                    deviation: (strength > 0.0).then_some(strength),
                }
            })
            .collect();

        let total: f64 = ranked.iter().map(|c| c.score).sum();
        if total > 0.0 {
            for c in &mut ranked {
                c.score = (c.score / total * 1000.0).round() / 1000.0;
            }
        }
        ranked.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.service.cmp(&b.service))
        });
        ranked
    }
}

#[cfg(test)]
mod tests {
    use kaizen_model::{Severity, SignalKind};

    use super::*;

    fn signal(service: &str, onset_s: u64) -> SignalRef {
        SignalRef {
            kind: SignalKind::Alert,
            key: service.to_owned(),
            service: Symbol::new(service),
            name: Symbol::new("HighErrorRate"),
            severity: Severity::Critical,
            summary: format!("{service} errors"),
            onset: Timestamp::from_millis(onset_s * 1000),
            ended: None,
            value: None,
            strength: 0.0,
        }
    }

    fn chain() -> ServiceGraph {
        let mut g = ServiceGraph::default();
        for (a, b) in [
            ("web", "checkout"),
            ("checkout", "payments"),
            ("payments", "db"),
        ] {
            g.update_edge(&Symbol::new(a), &Symbol::new(b), 1);
        }
        g
    }

    #[test]
    fn the_deepest_earliest_service_wins() {
        let signals = [
            signal("web", 200),
            signal("checkout", 130),
            signal("db", 60),
        ];
        let ranked = OriginRanker::default().rank(&signals, &[], &chain());
        assert_eq!(ranked[0].service.as_str(), "db");
        assert!(ranked[0].score > ranked[1].score);
        assert_eq!(ranked.last().map(|c| c.service.as_str()), Some("web"));
        let total: f64 = ranked.iter().map(|c| c.score).sum();
        assert!((total - 1.0).abs() < 0.01);
    }

    #[test]
    fn a_recent_deploy_is_evidence() {
        let signals = [signal("checkout", 100), signal("payments", 100)];
        let changes = [ChangeRef {
            ts: Timestamp::from_millis(40_000),
            service: Symbol::new("checkout"),
            change_kind: Symbol::new("deploy"),
            version: Some("v2".into()),
            description: "deploy checkout v2".into(),
        }];
        let g = ServiceGraph::default();
        let ranked = OriginRanker::default().rank(&signals, &changes, &g);
        assert_eq!(ranked[0].service.as_str(), "checkout");
        assert!(ranked[0].evidence.iter().any(|e| e.contains("deploy")));
    }

    fn moved(service: &str, onset_s: u64, strength: f64) -> SignalRef {
        SignalRef {
            strength,
            ..signal(service, onset_s)
        }
    }

    #[test]
    fn a_sick_dependency_explains_a_service_only_if_it_moved_comparably() {
        // payments is pegged (400 spreads). A database that wobbled (20) at the same moment, as
        // everything did, does not explain it; one that moved 200 does.
        let explained = |db: f64| {
            let signals = [moved("payments", 100, 400.0), moved("db", 100, db)];
            let ranked = OriginRanker::default().rank(&signals, &[], &chain());
            let payments = ranked.iter().find(|c| c.service.as_str() == "payments");
            payments.is_some_and(|c| c.evidence.iter().any(|e| e.contains("dependencies")))
        };
        assert!(!explained(20.0));
        assert!(explained(200.0));
    }

    #[test]
    fn a_dependency_without_a_measure_still_explains_its_callers() {
        // db only raised an alert (no magnitude): the caller's large latency deviation must not
        // outrank the earlier, deeper failure.
        let signals = [moved("payments", 130, 300.0), signal("db", 100)];
        let ranked = OriginRanker::default().rank(&signals, &[], &chain());
        assert_eq!(ranked[0].service.as_str(), "db");
    }
}
