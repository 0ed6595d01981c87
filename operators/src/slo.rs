//! Error-budget burn rates, alerted the way the Google SRE workbook recommends: several
//! (long, short) window pairs, each with its burn-rate threshold, both windows above it.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use kaizen_model::{
    Event, EventBody, Severity, Signal, SignalKind, SignalState, Symbol, Timestamp, Topology,
};

use crate::Detector;

/// One alerting condition: the budget burns at least `burn_rate`× over both windows.
#[derive(Clone, Debug)]
pub struct BurnWindow {
    /// The long window (how much budget is at stake).
    pub long: Duration,
    /// The short window (so the alert stops soon after the burn stops).
    pub short: Duration,
    /// Burn-rate threshold: 1 spends exactly the budget over the SLO period.
    pub burn_rate: f64,
    /// Page (critical) or ticket (warning).
    pub severity: Severity,
}

impl BurnWindow {
    /// The workbook's recommendation for a 30-day SLO: 2 % of the budget in 1 h or 5 % in 6 h
    /// pages; 10 % in 3 days opens a ticket.
    pub fn workbook() -> Vec<BurnWindow> {
        let h = |n: u64| Duration::from_secs(n * 3600);
        let m = |n: u64| Duration::from_secs(n * 60);
        vec![
            BurnWindow {
                long: h(1),
                short: m(5),
                burn_rate: 14.4,
                severity: Severity::Critical,
            },
            BurnWindow {
                long: h(6),
                short: m(30),
                burn_rate: 6.0,
                severity: Severity::Critical,
            },
            BurnWindow {
                long: h(72),
                short: h(6),
                burn_rate: 1.0,
                severity: Severity::Warning,
            },
        ]
    }
}

/// Per-minute error-ratio sums with running totals, so any window's mean is two lookups.
#[derive(Default)]
struct Budget {
    availability: f64,
    /// (minute, cumulative sum of error ratios, cumulative sample count) up to that minute.
    minutes: VecDeque<(u64, f64, u64)>,
    firing: Option<(Timestamp, Severity)>,
}

impl Budget {
    fn add(&mut self, minute: u64, error_ratio: f64, keep: u64) {
        let (sum, count) = self.minutes.back().map_or((0.0, 0), |b| (b.1, b.2));
        match self.minutes.back_mut() {
            Some(b) if b.0 == minute => {
                b.1 += error_ratio;
                b.2 += 1;
            }
            // Samples older than the newest minute are folded into it: the budget is a
            // rolling average, and event time within a series only moves forward here.
            Some(b) if b.0 > minute => {
                b.1 += error_ratio;
                b.2 += 1;
            }
            _ => self
                .minutes
                .push_back((minute, sum + error_ratio, count + 1)),
        }
        while self.minutes.front().is_some_and(|b| b.0 + keep < minute) {
            self.minutes.pop_front();
        }
    }

    /// Mean error ratio over the last `minutes` minutes ending at `now` (inclusive).
    fn mean(&self, now: u64, minutes: u64) -> Option<f64> {
        let last = self.minutes.back()?;
        let start = now.saturating_sub(minutes.saturating_sub(1));
        let i = self.minutes.partition_point(|b| b.0 < start);
        let (sum0, count0) = match i.checked_sub(1) {
            Some(j) => (self.minutes[j].1, self.minutes[j].2),
            None if self.minutes.front().is_some_and(|f| f.0 > start) && i == 0 => {
                // The window reaches back before the data: not enough history to judge.
                return None;
            }
            None => (0.0, 0),
        };
        let n = last.2 - count0;
        (n > 0).then(|| (last.1 - sum0) / n as f64)
    }
}

/// Watches `http_error_ratio` of every service with an availability SLO in the topology and
/// signals when its error budget burns too fast (see [`BurnWindow::workbook`]).
pub struct SloBurnDetector {
    windows: Vec<BurnWindow>,
    budgets: BTreeMap<Symbol, Budget>,
    keep_minutes: u64,
}

impl SloBurnDetector {
    /// A detector for the services of `topology` that declare an availability SLO.
    pub fn new(topology: &Topology, windows: Vec<BurnWindow>) -> Self {
        let budgets = topology
            .services
            .iter()
            .filter_map(|s| {
                let a = s.slo.as_ref()?.availability?;
                (a > 0.0 && a < 1.0).then(|| {
                    (
                        s.name.clone(),
                        Budget {
                            availability: a,
                            ..Budget::default()
                        },
                    )
                })
            })
            .collect();
        let keep_minutes = windows
            .iter()
            .map(|w| w.long.as_secs() / 60)
            .max()
            .unwrap_or(60);
        SloBurnDetector {
            windows,
            budgets,
            keep_minutes,
        }
    }
}

impl Detector for SloBurnDetector {
    fn name(&self) -> &'static str {
        "slo_burn"
    }

    fn on_event(&mut self, event: &Event, out: &mut Vec<Signal>) {
        let EventBody::Metric(m) = &event.body else {
            return;
        };
        if m.name.as_str() != "http_error_ratio" || !m.value.is_finite() {
            return;
        }
        let Some(budget) = self.budgets.get_mut(&event.service) else {
            return;
        };
        let minute = event.ts.as_millis() / 60_000;
        budget.add(minute, m.value.clamp(0.0, 1.0), self.keep_minutes);
        let allowed = 1.0 - budget.availability;
        let burning = self.windows.iter().find_map(|w| {
            let long = budget.mean(minute, w.long.as_secs() / 60)? / allowed;
            let short = budget.mean(minute, (w.short.as_secs() / 60).max(1))? / allowed;
            (long >= w.burn_rate && short >= w.burn_rate).then_some((w, long, short))
        });
        let key = format!("slo/{}", event.service);
        match (burning, budget.firing) {
            (Some((w, long, short)), None) => {
                budget.firing = Some((event.ts, w.severity));
                out.push(Signal {
                    ts: event.ts,
                    onset: event.ts,
                    service: event.service.clone(),
                    kind: SignalKind::SloBurn,
                    state: SignalState::Open,
                    key,
                    name: Symbol::new("error budget burn"),
                    severity: w.severity,
                    summary: format!(
                        "{}: error budget burning {long:.1}× over {} and {short:.1}× over {} (SLO {}% availability)",
                        event.service,
                        humanize(w.long),
                        humanize(w.short),
                        budget.availability * 100.0
                    ),
                    value: Some(long),
                    strength: 0.0,
                });
            }
            (None, Some((onset, severity))) => {
                budget.firing = None;
                out.push(Signal {
                    ts: event.ts,
                    onset,
                    service: event.service.clone(),
                    kind: SignalKind::SloBurn,
                    state: SignalState::Close,
                    key,
                    name: Symbol::new("error budget burn"),
                    severity,
                    summary: format!(
                        "{}: error budget burn back under every threshold",
                        event.service
                    ),
                    value: None,
                    strength: 0.0,
                });
            }
            _ => {}
        }
    }

    fn on_watermark(&mut self, _watermark: Timestamp, _out: &mut Vec<Signal>) {}
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else {
        format!("{}m", s / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        Topology::from_json(
            r#"{"services":[{"name":"web","user_facing":true,"slo":{"availability":0.999}},{"name":"db"}]}"#,
        )
        .unwrap()
    }

    fn sample(minute: u64, service: &str, value: f64) -> Event {
        Event::from_json(&format!(
            r#"{{"ts":{},"kind":"metric","service":"{service}","name":"http_error_ratio","value":{value}}}"#,
            1_767_600_000 + minute * 60
        ))
        .unwrap()
    }

    #[test]
    fn a_fast_burn_pages_and_stops_soon_after() {
        let mut d = SloBurnDetector::new(&topology(), BurnWindow::workbook());
        let mut out = Vec::new();
        // Two healthy hours, then 5 % errors (50× the 0.1 % budget) for 20 minutes.
        for m in 0..120 {
            d.on_event(&sample(m, "web", 0.0005), &mut out);
        }
        assert!(out.is_empty());
        for m in 120..140 {
            d.on_event(&sample(m, "web", 0.05), &mut out);
        }
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].state, SignalState::Open);
        assert_eq!(out[0].severity, Severity::Critical);
        assert!(out[0].summary.contains("over 1h"), "{}", out[0].summary);
        // Recovery: the 5-minute window drops under the threshold within minutes.
        for m in 140..150 {
            d.on_event(&sample(m, "web", 0.0), &mut out);
        }
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].state, SignalState::Close);
        assert!(out[1].ts < sample(147, "web", 0.0).ts);
    }

    #[test]
    fn services_without_an_slo_and_short_history_are_ignored() {
        let mut d = SloBurnDetector::new(&topology(), BurnWindow::workbook());
        let mut out = Vec::new();
        for m in 0..200 {
            d.on_event(&sample(m, "db", 0.5), &mut out);
        }
        // Not enough history for the 1 h window yet: no verdict.
        for m in 0..30 {
            d.on_event(&sample(m, "web", 0.5), &mut out);
        }
        assert!(out.is_empty());
    }
}
