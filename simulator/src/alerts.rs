//! Alertmanager-style alerts, evaluated by the generator on its own metrics.
//!
//! Prometheus semantics: a rule's condition must hold for its `for` duration before the alert
//! fires; a firing alert is re-sent every minute (same fingerprint) and a single `resolved`
//! notification follows when the condition clears.

use kaizen_model::{Alert, AlertStatus, Attributes, Event, EventBody, Labels, Symbol, Timestamp};

use crate::effects::Effect;
use crate::estate::Estate;

/// Re-send interval of a firing alert.
const REPEAT_MS: u64 = 60_000;

/// Aggregates of one service's instances at one tick.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Observed {
    /// Mean error ratio.
    pub err: f64,
    /// Worst p99 latency.
    pub p99: f64,
    /// Mean CPU utilisation.
    pub cpu: f64,
    /// Worst memory utilisation.
    pub mem: f64,
    /// Worst saturation.
    pub sat: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    HighErrorRate,
    HighLatency,
    HighMemoryUsage,
    HighCpu,
    PoolSaturated,
    CertificateExpiringSoon,
    TlsHandshakeErrors,
    OomKilled,
    PodRestarting,
}

const RULES: [Rule; 9] = [
    Rule::HighErrorRate,
    Rule::HighLatency,
    Rule::HighMemoryUsage,
    Rule::HighCpu,
    Rule::PoolSaturated,
    Rule::CertificateExpiringSoon,
    Rule::TlsHandshakeErrors,
    Rule::OomKilled,
    Rule::PodRestarting,
];

impl Rule {
    fn name(self) -> &'static str {
        match self {
            Rule::HighErrorRate => "HighErrorRate",
            Rule::HighLatency => "HighLatency",
            Rule::HighMemoryUsage => "HighMemoryUsage",
            Rule::HighCpu => "HighCPU",
            Rule::PoolSaturated => "PoolSaturated",
            Rule::CertificateExpiringSoon => "CertificateExpiringSoon",
            Rule::TlsHandshakeErrors => "TLSHandshakeErrors",
            Rule::OomKilled => "OOMKilled",
            Rule::PodRestarting => "PodRestarting",
        }
    }
    fn for_ms(self) -> u64 {
        match self {
            Rule::HighErrorRate => 60_000,
            Rule::HighLatency | Rule::PoolSaturated => 120_000,
            Rule::HighCpu => 180_000,
            _ => 0,
        }
    }
    fn severity(self, data_tier: bool) -> &'static str {
        match self {
            Rule::HighErrorRate | Rule::TlsHandshakeErrors | Rule::OomKilled => "critical",
            Rule::PoolSaturated if data_tier => "critical",
            _ => "warning",
        }
    }
    fn holds(self, o: &Observed, e: &Effect, base_p99: f64) -> bool {
        match self {
            Rule::HighErrorRate => o.err > 0.05,
            Rule::HighLatency => o.p99 > 2.5 * base_p99,
            Rule::HighMemoryUsage => o.mem > 0.9,
            Rule::HighCpu => o.cpu > 0.9,
            Rule::PoolSaturated => o.sat > 0.95,
            Rule::CertificateExpiringSoon => e.cert_expires_in_s.is_some(),
            Rule::TlsHandshakeErrors => e.tls > 0.3,
            Rule::OomKilled => e.restarts_2m > 0,
            Rule::PodRestarting => e.restarts_10m >= 2,
        }
    }
    fn summary(self, svc: &str, o: &Observed, e: &Effect, base_p99: f64) -> String {
        match self {
            Rule::HighErrorRate => format!(
                "{svc}: {:.1}% of requests are failing (threshold 5%)",
                o.err * 100.0
            ),
            Rule::HighLatency => format!(
                "{svc}: p99 latency is {:.0} ms, {:.1}x its baseline of {:.0} ms",
                o.p99,
                o.p99 / base_p99.max(1e-9),
                base_p99
            ),
            Rule::HighMemoryUsage => {
                format!(
                    "{svc}: memory utilization is {:.1}% (threshold 90%)",
                    o.mem * 100.0
                )
            }
            Rule::HighCpu => format!(
                "{svc}: CPU utilization is {:.1}% (threshold 90%)",
                o.cpu * 100.0
            ),
            Rule::PoolSaturated => format!(
                "{svc}: connection/worker pool is {:.1}% saturated (threshold 95%)",
                o.sat * 100.0
            ),
            Rule::CertificateExpiringSoon => match e.cert_expires_in_s {
                Some(s) if s > 0 => format!(
                    "TLS certificate for {svc}.internal expires in {}m{}s",
                    s / 60,
                    s % 60
                ),
                Some(s) => format!(
                    "TLS certificate for {svc}.internal expired {}m{}s ago",
                    -s / 60,
                    -s % 60
                ),
                None => format!("TLS certificate for {svc}.internal is valid"),
            },
            Rule::TlsHandshakeErrors => format!(
                "{svc}: TLS handshakes with an upstream are failing ({:.0}% of new connections)",
                e.tls * 100.0
            ),
            Rule::OomKilled => format!(
                "{svc}: container was OOMKilled (restart count {})",
                e.restarts_total
            ),
            Rule::PodRestarting => format!(
                "{svc}: pods restarted {} times in the last 10 minutes",
                e.restarts_10m
            ),
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct State {
    pending_since: Option<u64>,
    firing: bool,
    last_sent: u64,
}

#[derive(Clone, Debug)]
struct Meta {
    name: Symbol,
    severity: Symbol,
    fingerprint: String,
    labels: Labels,
    runbook: String,
}

/// Alert rule state for every service.
pub(crate) struct AlertBook {
    states: Vec<[State; 9]>,
    meta: Vec<Vec<Meta>>,
    summary_key: Symbol,
    runbook_key: Symbol,
}

impl AlertBook {
    pub(crate) fn new(estate: &Estate) -> AlertBook {
        let key = |k: &str| Symbol::new(k);
        let meta = estate
            .services
            .iter()
            .map(|s| {
                RULES
                    .iter()
                    .map(|r| {
                        let severity = Symbol::new(r.severity(s.kind.is_data()));
                        let labels = Labels::from_pairs([
                            (key("alertname"), Symbol::new(r.name())),
                            (key("severity"), severity.clone()),
                            (key("service"), s.name.clone()),
                            (key("team"), Symbol::new(s.team)),
                        ]);
                        Meta {
                            name: Symbol::new(r.name()),
                            fingerprint: Alert::derive_fingerprint(
                                r.name(),
                                s.name.as_str(),
                                &labels,
                            ),
                            severity,
                            labels,
                            runbook: format!("https://runbooks.example.com/alerts/{}", r.name()),
                        }
                    })
                    .collect()
            })
            .collect();
        AlertBook {
            states: vec![[State::default(); 9]; estate.services.len()],
            meta,
            summary_key: key("summary"),
            runbook_key: key("runbook_url"),
        }
    }

    /// Evaluates every rule for service `svc` at `t`, emitting notifications through `out`.
    pub(crate) fn evaluate(
        &mut self,
        estate: &Estate,
        svc: usize,
        t: u64,
        o: &Observed,
        e: &Effect,
        out: &mut dyn FnMut(Event),
    ) {
        let s = &estate.services[svc];
        for (r, rule) in RULES.iter().enumerate() {
            let state = &mut self.states[svc][r];
            let holds = rule.holds(o, e, s.base.p99);
            let status = if holds {
                let since = *state.pending_since.get_or_insert(t);
                if state.firing {
                    if t < state.last_sent + REPEAT_MS {
                        continue;
                    }
                } else if t - since < rule.for_ms() {
                    continue;
                }
                state.firing = true;
                state.last_sent = t;
                AlertStatus::Firing
            } else {
                state.pending_since = None;
                if !state.firing {
                    continue;
                }
                state.firing = false;
                AlertStatus::Resolved
            };
            let m = &self.meta[svc][r];
            out(Event {
                ts: Timestamp::from_millis(t),
                service: s.name.clone(),
                body: EventBody::Alert(Alert {
                    name: m.name.clone(),
                    status,
                    severity: m.severity.clone(),
                    fingerprint: m.fingerprint.clone(),
                    labels: m.labels.clone(),
                    annotations: Attributes::from_pairs([
                        (
                            self.summary_key.clone(),
                            rule.summary(s.name.as_str(), o, e, s.base.p99),
                        ),
                        (self.runbook_key.clone(), m.runbook.clone()),
                    ]),
                }),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_after_for_repeats_every_minute_and_resolves_once() {
        let estate = Estate::build(3);
        let mut book = AlertBook::new(&estate);
        let mut events = Vec::new();
        let bad = Observed {
            err: 0.2,
            p99: 1.0,
            cpu: 0.3,
            mem: 0.5,
            sat: 0.2,
        };
        let good = Observed { err: 0.001, ..bad };
        let calm = Effect::default();
        for step in 0..30u64 {
            let o = if (5..20).contains(&step) { &bad } else { &good };
            book.evaluate(&estate, 1, step * 10_000, o, &calm, &mut |e| events.push(e));
        }
        let got: Vec<(u64, AlertStatus)> = events
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::Alert(a) if a.name.as_str() == "HighErrorRate" => {
                    Some((e.ts.as_millis(), a.status))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (110_000, AlertStatus::Firing),
                (170_000, AlertStatus::Firing),
                (200_000, AlertStatus::Resolved)
            ]
        );
        assert_eq!(events.len(), 3);
        if let EventBody::Alert(a) = &events[0].body {
            assert_eq!(a.labels.get("team").map(Symbol::as_str), Some("discovery"));
            assert!(a
                .annotations
                .get("summary")
                .is_some_and(|s| s.contains("20.0%")));
            assert_eq!(
                a.fingerprint,
                Alert::derive_fingerprint("HighErrorRate", "catalog", &a.labels)
            );
        }
    }
}
