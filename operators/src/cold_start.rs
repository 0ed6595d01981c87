//! Cold start: a young series' jump far beyond everything it has shown.
//!
//! Learned baselines score a series only once it is warm ([`ScorerConfig::warmup_points`]:
//! an hour at one-minute resolution); a new install has less. For the golden latency signals
//! kaizen knows what bad looks like without history: a p99 several times anything the series
//! has reported is bad whatever a baseline would say. [`ColdStartDetector`] speaks for such a
//! series until it is warm, and its summary says the baseline is young. (An error ratio needs
//! no such help: the default threshold, a sustained 5 %, is its prior.)
//!
//! [`ScorerConfig::warmup_points`]: crate::ScorerConfig::warmup_points

use kaizen_model::{
    Event, EventBody, PrehashedMap, SeriesKeys, Severity, Signal, SignalKind, SignalState,
    Timestamp,
};

use crate::golden::LATENCY_P99_MS;
use crate::Detector;

/// When a young series' value is a jump.
#[derive(Clone, Debug, PartialEq)]
pub struct ColdStartConfig {
    /// The metric names watched.
    pub names: Vec<String>,
    /// Samples needed before anything is judged (fewer say nothing about "usual").
    pub min_points: u32,
    /// From this many samples on the learned baseline speaks and this detector retires
    /// (the anomaly scorer's warm-up).
    pub warm_points: u32,
    /// A jump is at least this many times the series' median so far, and above its maximum.
    pub factor: f64,
    /// Consecutive jumps before a signal opens ...
    pub open_after: u32,
    /// ... and ordinary samples before it closes.
    pub close_after: u32,
}

impl Default for ColdStartConfig {
    fn default() -> Self {
        ColdStartConfig {
            names: vec![LATENCY_P99_MS.to_owned(), "http_latency_p50_ms".to_owned()],
            min_points: 10,
            warm_points: 60,
            factor: 5.0,
            open_after: 2,
            close_after: 3,
        }
    }
}

#[derive(Default)]
struct Young {
    /// Ordinary samples seen (jumps are not history).
    history: Vec<f64>,
    points: u32,
    jumps: u32,
    ordinary: u32,
    open_since: Option<Timestamp>,
    first_jump: Timestamp,
    peak: f64,
    first_ts: Timestamp,
    /// Warm and not open: nothing more to do for this series.
    retired: bool,
}

/// Signals a young golden-latency series' jump far beyond its history (see the module docs).
pub struct ColdStartDetector {
    config: ColdStartConfig,
    series: PrehashedMap<Young>,
    keys: SeriesKeys,
}

impl ColdStartDetector {
    /// A detector with this configuration.
    pub fn new(config: ColdStartConfig) -> Self {
        ColdStartDetector {
            config,
            series: PrehashedMap::default(),
            keys: SeriesKeys::default(),
        }
    }
}

impl Detector for ColdStartDetector {
    fn name(&self) -> &'static str {
        "cold_start"
    }

    fn on_event(&mut self, event: &Event, out: &mut Vec<Signal>) {
        let EventBody::Metric(m) = &event.body else {
            return;
        };
        if !m.value.is_finite() || !self.config.names.iter().any(|n| n == m.name.as_str()) {
            return;
        }
        let cfg = &self.config;
        let key = self.keys.key(m, &event.service);
        let s = self.series.entry(key).or_default();
        if s.retired {
            return;
        }
        if s.points == 0 {
            s.first_ts = event.ts;
        }
        s.points = s.points.saturating_add(1);
        let (median, max) = median_and_max(&s.history);
        let judged = s.history.len() as u32 >= cfg.min_points && median > 0.0;
        let jump = judged && m.value >= cfg.factor * median && m.value > max;
        let signal = |state, ts, onset, value: f64, summary: String| Signal {
            ts,
            onset,
            service: event.service.clone(),
            kind: SignalKind::MetricAnomaly,
            state,
            key: format!("cold:{key:016x}"),
            name: m.name.clone(),
            severity: Severity::Critical,
            summary,
            value: Some(value),
            strength: 0.0,
        };
        if jump {
            if s.jumps == 0 && s.open_since.is_none() {
                s.first_jump = event.ts;
                s.peak = m.value;
            }
            s.jumps += 1;
            s.ordinary = 0;
            s.peak = s.peak.max(m.value);
            if s.open_since.is_none() && s.jumps >= cfg.open_after {
                s.open_since = Some(s.first_jump);
                let minutes = event.ts.as_millis().saturating_sub(s.first_ts.as_millis()) / 60_000;
                out.push(signal(
                    SignalState::Open,
                    event.ts,
                    s.first_jump,
                    m.value,
                    format!(
                        "{} {} {}, {:.1}× its median {} and above anything seen (young baseline: {} samples over {minutes} min)",
                        event.service,
                        m.name,
                        fmt_ms(m.value),
                        m.value / median,
                        fmt_ms(median),
                        s.history.len(),
                    ),
                ));
            }
        } else {
            s.jumps = 0;
            s.ordinary += 1;
            s.history.push(m.value);
            if let Some(onset) = s.open_since {
                if s.ordinary >= cfg.close_after {
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
                            fmt_ms(m.value),
                            fmt_ms(s.peak)
                        ),
                    ));
                }
            }
        }
        if s.points >= cfg.warm_points && s.open_since.is_none() {
            *s = Young {
                retired: true,
                ..Young::default()
            };
        }
    }

    fn on_watermark(&mut self, _watermark: Timestamp, _out: &mut Vec<Signal>) {}
}

fn median_and_max(history: &[f64]) -> (f64, f64) {
    if history.is_empty() {
        return (0.0, 0.0);
    }
    let mut sorted = history.to_vec();
    sorted.sort_by(f64::total_cmp);
    let max = sorted.last().copied().unwrap_or(0.0);
    (sorted[sorted.len() / 2], max)
}

fn fmt_ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.1} s", v / 1000.0)
    } else {
        format!("{v:.0} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p99(minute: u64, value: f64) -> Event {
        let line = format!(
            r#"{{"ts":{},"kind":"metric","service":"api","name":"http_latency_p99_ms","value":{value}}}"#,
            1_767_600_000 + minute * 60
        );
        Event::from_json(&line).unwrap()
    }

    fn run(values: &[f64]) -> Vec<(u64, SignalState, String)> {
        let mut d = ColdStartDetector::new(ColdStartConfig::default());
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            d.on_event(&p99(i as u64, *v), &mut out);
        }
        out.iter()
            .map(|s| {
                (
                    (s.ts.as_millis() / 1000 - 1_767_600_000) / 60,
                    s.state,
                    s.summary.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn five_times_anything_seen_in_thirty_minutes_opens_within_two_samples_and_closes() {
        let mut values: Vec<f64> = (0..30).map(|i| 120.0 + (i % 3) as f64 * 5.0).collect();
        values.extend([900.0, 950.0, 900.0, 130.0, 125.0, 120.0]);
        let out = run(&values);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!((out[0].0, out[0].1), (31, SignalState::Open));
        assert!(
            out[0].2.contains("young baseline: 30 samples"),
            "{}",
            out[0].2
        );
        assert_eq!((out[1].0, out[1].1), (35, SignalState::Close));
    }

    #[test]
    fn ordinary_noise_a_single_spike_and_warm_series_say_nothing() {
        // Noisy but within 5× of the median.
        let noisy: Vec<f64> = (0..40).map(|i| 100.0 + (i % 7) as f64 * 60.0).collect();
        assert!(run(&noisy).is_empty());
        // One spike is not a jump that stays.
        let mut spike: Vec<f64> = vec![100.0; 20];
        spike.extend([2000.0, 100.0, 100.0]);
        assert!(run(&spike).is_empty());
        // Too young to judge.
        assert!(run(&[100.0, 100.0, 5000.0, 5000.0]).is_empty());
        // Warm: the learned baseline's business.
        let mut warm: Vec<f64> = vec![100.0; 60];
        warm.extend([5000.0, 5000.0, 5000.0]);
        assert!(run(&warm).is_empty());
    }
}
