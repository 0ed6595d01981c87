//! The simplest metric detector: a static threshold with hysteresis, per series.

use kaizen_model::{
    Event, EventBody, PrehashedMap, SeriesKeys, Severity, Signal, SignalKind, SignalState,
    Timestamp,
};

use crate::Detector;

/// A static threshold on one metric name: open after `open_after` consecutive breaching samples,
/// close after `close_after` consecutive normal ones.
#[derive(Clone, Debug)]
pub struct ThresholdRule {
    /// The metric name it applies to (every series of that name).
    pub metric: String,
    /// Breach when the value is above this.
    pub above: f64,
    /// Consecutive breaching samples before the signal opens.
    pub open_after: u32,
    /// Consecutive normal samples before it closes.
    pub close_after: u32,
    /// Severity of the signal.
    pub severity: Severity,
}

impl ThresholdRule {
    /// A rule with the default hysteresis (open after 2 breaching samples, close after 3 normal).
    pub fn above(metric: &str, above: f64, severity: Severity) -> Self {
        ThresholdRule {
            metric: metric.to_owned(),
            above,
            open_after: 2,
            close_after: 3,
            severity,
        }
    }

    /// The rules kaizen runs when none are configured: the golden signals every service exports
    /// under these names in the native format.
    pub fn defaults() -> Vec<ThresholdRule> {
        vec![
            ThresholdRule::above("http_error_ratio", 0.05, Severity::Critical),
            ThresholdRule::above("cpu_utilization", 0.92, Severity::Warning),
            ThresholdRule::above("memory_utilization", 0.92, Severity::Warning),
            ThresholdRule::above("saturation", 0.95, Severity::Warning),
            // Two restarts within ten minutes: a crash loop.
            ThresholdRule {
                open_after: 1,
                ..ThresholdRule::above(crate::RESTARTS, 1.5, Severity::Critical)
            },
        ]
    }
}

#[derive(Default)]
struct SeriesState {
    breaching: u32,
    normal: u32,
    open_since: Option<Timestamp>,
    first_breach: Timestamp,
    peak: f64,
}

/// Applies [`ThresholdRule`]s to every metric series (service + name + labels).
pub struct ThresholdDetector {
    rules: Vec<ThresholdRule>,
    series: PrehashedMap<SeriesState>,
    keys: SeriesKeys,
}

impl ThresholdDetector {
    /// A detector for these rules.
    pub fn new(rules: Vec<ThresholdRule>) -> Self {
        ThresholdDetector {
            rules,
            series: PrehashedMap::default(),
            keys: SeriesKeys::default(),
        }
    }

    /// Number of series with state.
    pub fn series(&self) -> usize {
        self.series.len()
    }
}

impl Detector for ThresholdDetector {
    fn name(&self) -> &'static str {
        "threshold"
    }

    fn on_event(&mut self, event: &Event, out: &mut Vec<Signal>) {
        let EventBody::Metric(m) = &event.body else {
            return;
        };
        let Some(rule) = self.rules.iter().find(|r| r.metric == m.name.as_str()) else {
            return;
        };
        // NaN and infinities carry no level information: skip rather than flip state.
        if !m.value.is_finite() {
            return;
        }
        let key = self.keys.key(m, &event.service);
        let s = self.series.entry(key).or_default();
        let breach = m.value > rule.above;
        let signal = |state, ts, onset, value: f64, summary: String| Signal {
            ts,
            onset,
            service: event.service.clone(),
            kind: SignalKind::MetricAnomaly,
            state,
            key: format!("{key:016x}"),
            name: m.name.clone(),
            severity: rule.severity,
            summary,
            value: Some(value),
            strength: 0.0,
        };
        if breach {
            if s.breaching == 0 && s.open_since.is_none() {
                s.first_breach = event.ts;
                s.peak = m.value;
            }
            s.breaching += 1;
            s.normal = 0;
            s.peak = s.peak.max(m.value);
            if s.open_since.is_none() && s.breaching >= rule.open_after {
                s.open_since = Some(s.first_breach);
                out.push(signal(
                    SignalState::Open,
                    event.ts,
                    s.first_breach,
                    m.value,
                    format!(
                        "{} {} = {} (threshold {})",
                        event.service,
                        m.name,
                        fmt_value(m.value),
                        fmt_value(rule.above)
                    ),
                ));
            }
        } else {
            s.normal += 1;
            s.breaching = 0;
            if let Some(onset) = s.open_since {
                if s.normal >= rule.close_after {
                    s.open_since = None;
                    out.push(signal(
                        SignalState::Close,
                        event.ts,
                        onset,
                        s.peak,
                        format!(
                            "{} {} back to {} (peak {})",
                            event.service,
                            m.name,
                            fmt_value(m.value),
                            fmt_value(s.peak)
                        ),
                    ));
                }
            }
        }
    }

    fn on_watermark(&mut self, _watermark: Timestamp, _out: &mut Vec<Signal>) {}
}

/// Ratios as percentages, everything else with at most three significant decimals.
fn fmt_value(v: f64) -> String {
    if (0.0..=1.0).contains(&v) && v != 0.0 && v != 1.0 {
        format!("{:.1}%", v * 100.0)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(i: u64, value: f64, instance: &str) -> Event {
        Event::from_json(&format!(
            r#"{{"ts":{},"kind":"metric","service":"api","name":"http_error_ratio","value":{value},"labels":{{"instance":"{instance}"}}}}"#,
            1_767_600_000 + i * 10
        ))
        .unwrap()
    }

    #[test]
    fn opens_after_consecutive_breaches_and_closes_with_hysteresis() {
        let mut d = ThresholdDetector::new(ThresholdRule::defaults());
        let mut out = Vec::new();
        let values = [0.01, 0.2, 0.01, 0.2, 0.3, 0.01, 0.2, 0.01, 0.01, 0.01];
        for (i, v) in values.iter().enumerate() {
            d.on_event(&sample(i as u64, *v, "a"), &mut out);
        }
        assert_eq!(out.len(), 2, "{out:#?}");
        assert_eq!(out[0].state, SignalState::Open);
        assert_eq!(out[0].onset, sample(3, 0.0, "a").ts);
        assert_eq!(out[1].state, SignalState::Close);
        assert_eq!(out[1].value, Some(0.3));
    }

    #[test]
    fn series_are_independent_and_nan_is_ignored() {
        let mut d = ThresholdDetector::new(ThresholdRule::defaults());
        let mut out = Vec::new();
        d.on_event(&sample(0, 0.5, "a"), &mut out);
        d.on_event(&sample(0, 0.5, "b"), &mut out);
        let nan = Event::from_json(
            r#"{"ts":1767600005,"kind":"metric","service":"api","name":"http_error_ratio","value":0.5,"labels":{"instance":"a"}}"#,
        )
        .unwrap();
        let mut nan = nan;
        if let EventBody::Metric(m) = &mut nan.body {
            m.value = f64::NAN;
        }
        d.on_event(&nan, &mut out);
        assert!(out.is_empty());
        d.on_event(&sample(1, 0.5, "a"), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(d.series(), 2);
    }
}
