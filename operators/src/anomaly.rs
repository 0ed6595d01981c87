//! Metric anomaly windows: learned baselines, anomaly scores, windows with hysteresis.
//!
//! Every metric series (service + name + labels) gets a [`SeriesBaseline`]: a robust level
//! (Huber-clipped EWMA and mean absolute deviation), a daily profile used when it predicts
//! better, a short-term shift statistic that finds level shifts within a few points and accepts
//! a lasting shift as the new normal, learnt tails that turn deviations into p-values that
//! mean the same rarity on every series, and the series' whole range, so a value beyond
//! anything it has shown is news even where spikes have made the tails heavy. An [`AnomalyWindow`] turns point scores into windows
//! with hysteresis, and the [`MetricAnomalyDetector`] turns windows into `MetricAnomaly` signals.
//!
//! # Per-series memory
//!
//! [`SERIES_MAX_BYTES`] bounds one series' state, heap included: 840 bytes with its daily
//! profile (checked at build time to stay within 2 KB). A series gets its profile only after
//! warm-up, so a series seen a couple of times costs the inline state alone: 1M such series
//! measure 412 bytes each including the hash map's slots and slack (`a_million_series_fit`).
//!
//! # Decisions a reader may want to know
//!
//! * Counters are scored on their per-second rate between samples; a decrease is a reset: the
//!   sample only becomes the new reference and is not scored.
//! * NaN and ±∞ are skipped; a negative gauge is a value like any other; a negative counter is
//!   skipped (counters cannot go below zero).
//! * A sample not newer than the series' latest accepted one is dropped (the engine never sends
//!   one; a direct caller might): a baseline never goes back in time.
//! * A series silent for [`MetricAnomalyConfig::idle_reset`] starts over on its next sample, so
//!   idle state can be dropped without changing any output.

mod scorer;
mod seasonal;
mod tail;
mod window;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::time::Duration;

use kaizen_model::{
    Event, EventBody, Metric, MetricKind, PrehashedMap, SeriesKeys, Severity, Signal, SignalKind,
    SignalState, Symbol, Timestamp,
};

use crate::Detector;

pub use scorer::{
    AnomalyScorer, Direction, PointScore, PointStatus, ScorerConfig, SeriesBaseline, SkipReason,
};
pub use window::{AnomalyWindow, WindowConfig, WindowEvent, WindowInfo};

/// Upper bound on one series' detector state, heap included (excluding the map's own slack).
pub const SERIES_MAX_BYTES: usize = std::mem::size_of::<Series>() + SeriesBaseline::MAX_BYTES
    - std::mem::size_of::<SeriesBaseline>()
    + std::mem::size_of::<OpenSignal>()
    + 32;

// The per-series budget is part of the design (1M series in ~1 GB): keep it checked at build time.
const _: () = assert!(SERIES_MAX_BYTES <= 2048);

/// How the metric anomaly detector behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricAnomalyConfig {
    /// How baselines learn and score.
    pub scorer: ScorerConfig,
    /// When windows open and close.
    pub window: WindowConfig,
    /// A window becomes a signal only once one of its points is this rare (p-value): windows
    /// are cheap, pages are not.
    pub signal_p: f64,
    /// Critical instead of Warning when the rarest point is at least this rare (or lies beyond
    /// the series' whole range, [`WindowInfo::beyond_range`]) ...
    pub critical_p: f64,
    /// ... and the peak is at least this far from normal, relative to the normal value
    /// (1.0 = doubled, or dropped to nothing).
    pub critical_change: f64,
    /// An open window closes when its series has not reported for this long (event time).
    pub stale_after: Duration,
    /// A series silent this long forgets its baseline (and its state may be dropped).
    pub idle_reset: Duration,
    /// At most this many series are kept; beyond it the least recently seen eighth is evicted
    /// (counted in [`MetricAnomalyDetector::evictions`]). A memory safety valve: when it
    /// triggers, which series survive depends on which series share this detector instance.
    pub max_series: usize,
}

impl Default for MetricAnomalyConfig {
    fn default() -> Self {
        MetricAnomalyConfig {
            scorer: ScorerConfig::default(),
            window: WindowConfig::default(),
            signal_p: 1e-4,
            critical_p: 1e-6,
            critical_change: 1.0,
            stale_after: Duration::from_secs(10 * 60),
            idle_reset: Duration::from_secs(12 * 3600),
            max_series: 2_000_000,
        }
    }
}

/// What the detector tells about an open window (boxed: only series with an open signal pay).
#[derive(Clone, Debug)]
struct OpenSignal {
    service: Symbol,
    name: Symbol,
    key: String,
    severity: Severity,
    /// When the stale timer fires.
    due: Timestamp,
}

/// One series' state.
#[derive(Clone, Debug, Default)]
struct Series {
    baseline: SeriesBaseline,
    window: AnomalyWindow,
    /// Counters: the previous raw sample (NaN when none).
    counter_value: f64,
    counter_ms: u64,
    last_ms: u64,
    open: Option<Box<OpenSignal>>,
}

/// Learns every metric series' normal behaviour and signals when one leaves it (see the
/// module docs). Implements [`Detector`]: output depends only on the event sequence.
pub struct MetricAnomalyDetector {
    config: MetricAnomalyConfig,
    series: PrehashedMap<Series>,
    keys: SeriesKeys,
    /// Stale timers of open signals, in firing order.
    timers: BTreeSet<(Timestamp, u64)>,
    last_sweep: Timestamp,
    evictions: u64,
    dropped: u64,
}

impl MetricAnomalyDetector {
    /// A detector with this configuration.
    pub fn new(config: MetricAnomalyConfig) -> Self {
        MetricAnomalyDetector {
            config,
            series: PrehashedMap::default(),
            keys: SeriesKeys::default(),
            timers: BTreeSet::new(),
            last_sweep: Timestamp::MIN,
            evictions: 0,
            dropped: 0,
        }
    }

    /// Number of series with state.
    pub fn series(&self) -> usize {
        self.series.len()
    }

    /// Series evicted by the `max_series` cap so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Samples dropped so far (non-finite, negative counters, out of order).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Bytes of series state now: per-series state and heap, plus the map's slots and the
    /// cache of series keys.
    pub fn state_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(u64, Series)>() + 1;
        let heap: usize = self
            .series
            .values()
            .map(|s| {
                s.baseline.bytes() - std::mem::size_of::<SeriesBaseline>()
                    + s.open
                        .as_ref()
                        .map_or(0, |o| std::mem::size_of::<OpenSignal>() + o.key.capacity())
            })
            .sum();
        self.series.capacity() * slot + heap + self.keys.bytes()
    }

    /// Fires stale timers due strictly before `t`, in (due, key) order.
    fn fire_timers(&mut self, t: Timestamp, out: &mut Vec<Signal>) {
        while let Some(&(due, key)) = self.timers.first() {
            if due >= t {
                break;
            }
            self.timers.pop_first();
            if let Some(s) = self.series.get_mut(&key) {
                if let (Some(open), Some(info)) = (s.open.take(), s.window.close(due)) {
                    out.push(close_signal(&open, &info, None));
                }
            }
        }
    }

    /// Drops series that would be reset on their next sample anyway (no output changes).
    fn sweep(&mut self, now: Timestamp) {
        let idle = self.config.idle_reset;
        if now.since(self.last_sweep) < idle / 4 {
            return;
        }
        self.last_sweep = now;
        self.series
            .retain(|_, s| s.open.is_some() || now.since(Timestamp(s.last_ms)) <= idle);
    }

    /// Makes room for a new series when at the cap: evicts the least recently seen eighth.
    fn evict(&mut self, out: &mut Vec<Signal>) {
        let mut by_age: Vec<(u64, u64)> =
            self.series.iter().map(|(k, s)| (s.last_ms, *k)).collect();
        by_age.sort_unstable();
        let n = (self.series.len() / 8).max(1);
        for &(_, key) in by_age.iter().take(n) {
            if let Some(mut s) = self.series.remove(&key) {
                if let Some(open) = s.open.take() {
                    self.timers.remove(&(open.due, key));
                    if let Some(info) = s.window.close(Timestamp(s.last_ms)) {
                        out.push(close_signal(&open, &info, Some("evicted")));
                    }
                }
                self.evictions += 1;
            }
        }
    }

    /// Feeds one metric sample of series `key`.
    fn observe(
        &mut self,
        service: &Symbol,
        m: &Metric,
        key: u64,
        ts: Timestamp,
        out: &mut Vec<Signal>,
    ) {
        if !self.series.contains_key(&key) && self.series.len() >= self.config.max_series {
            self.evict(out);
        }
        let cfg = &self.config;
        let s = self.series.entry(key).or_insert_with(|| Series {
            counter_value: f64::NAN,
            ..Series::default()
        });
        let t = ts.as_millis();
        if s.last_ms > 0 && ts.since(Timestamp(s.last_ms)) > cfg.idle_reset && s.open.is_none() {
            *s = Series {
                counter_value: f64::NAN,
                ..Series::default()
            };
        }
        let value = match m.metric_kind {
            MetricKind::Gauge => m.value,
            MetricKind::Counter => {
                if !m.value.is_finite()
                    || m.value < 0.0
                    || (!s.counter_value.is_nan() && t <= s.counter_ms)
                {
                    self.dropped += 1;
                    return;
                }
                let previous = (s.counter_value, s.counter_ms);
                s.counter_value = m.value;
                s.counter_ms = t;
                // The first sample and a reset (a decrease) only set the reference.
                if previous.0.is_nan() || m.value < previous.0 {
                    s.last_ms = t;
                    return;
                }
                (m.value - previous.0) / ((t - previous.1) as f64 / 1000.0)
            }
        };
        let point = s.baseline.observe(&cfg.scorer, ts, value);
        if let PointStatus::Skipped(_) = point.status {
            self.dropped += 1;
            return;
        }
        s.last_ms = t;
        let event = s.window.update(&cfg.window, ts, value, &point);
        match event {
            Some(WindowEvent::Closed(info)) => {
                if let Some(open) = s.open.take() {
                    self.timers.remove(&(open.due, key));
                    out.push(close_signal(&open, &info, None));
                }
                return;
            }
            Some(WindowEvent::Opened(_)) | None => {}
        }
        let due = ts.plus(cfg.stale_after);
        if let Some(open) = s.open.as_mut() {
            self.timers.remove(&(open.due, key));
            open.due = due;
            self.timers.insert((due, key));
            return;
        }
        let Some(info) = s.window.info().copied().filter(|_| s.window.is_open()) else {
            return;
        };
        if info.min_p > cfg.signal_p {
            return;
        }
        let change = relative_change(&info);
        // A value beyond anything the series ever showed is as strong as a p-value gets: with
        // a short history the tails cannot make p small enough (CPU pegged at 84× its usual
        // after five minutes of 1 s samples scored p = 1e-5, a lone warning, never paged).
        let rare = info.min_p <= cfg.critical_p || info.beyond_range;
        let severity = if rare && change >= cfg.critical_change {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let open = OpenSignal {
            service: service.clone(),
            name: m.name.clone(),
            key: format!("{key:016x}-{}", info.direction.as_str()),
            severity,
            due,
        };
        out.push(open_signal(&open, &info, ts));
        self.timers.insert((due, key));
        s.open = Some(Box::new(open));
    }
}

impl Default for MetricAnomalyDetector {
    fn default() -> Self {
        Self::new(MetricAnomalyConfig::default())
    }
}

impl Detector for MetricAnomalyDetector {
    fn name(&self) -> &'static str {
        "metric_anomaly"
    }

    fn on_event(&mut self, event: &Event, out: &mut Vec<Signal>) {
        self.fire_timers(event.ts, out);
        let EventBody::Metric(m) = &event.body else {
            return;
        };
        let key = self.keys.key(m, &event.service);
        self.observe(&event.service, m, key, event.ts, out);
    }

    fn on_watermark(&mut self, watermark: Timestamp, out: &mut Vec<Signal>) {
        self.fire_timers(watermark, out);
        self.sweep(watermark);
    }
}

/// How far the peak is from normal, relative to the normal value's magnitude.
fn relative_change(info: &WindowInfo) -> f64 {
    let base = info.expected_at_peak.abs();
    if base > 0.0 {
        (info.peak - info.expected_at_peak).abs() / base
    } else {
        f64::INFINITY
    }
}

/// The window is open.
fn open_signal(open: &OpenSignal, info: &WindowInfo, ts: Timestamp) -> Signal {
    Signal {
        ts,
        onset: info.onset,
        service: open.service.clone(),
        kind: SignalKind::MetricAnomaly,
        state: SignalState::Open,
        key: open.key.clone(),
        name: open.name.clone(),
        severity: open.severity,
        summary: open_summary(&open.service, &open.name, info),
        value: Some(info.peak),
        strength: info.magnitude,
    }
}

fn close_signal(open: &OpenSignal, info: &WindowInfo, why: Option<&str>) -> Signal {
    let service = &open.service;
    let name = &open.name;
    let peak = fmt_value(name.as_str(), info.peak);
    let usual = fmt_value(name.as_str(), info.expected_at_peak);
    let span = format!("{}–{}", info.onset.clock(), info.ts.clock());
    let summary = match why {
        None => format!("{service} {name} back to normal (peak {peak} vs usual {usual}, {span})"),
        Some(why) => {
            format!("{service} {name} anomaly closed: {why} (peak {peak} vs usual {usual}, {span})")
        }
    };
    Signal {
        ts: info.ts,
        onset: info.onset,
        service: service.clone(),
        kind: SignalKind::MetricAnomaly,
        state: SignalState::Close,
        key: open.key.clone(),
        name: name.clone(),
        severity: open.severity,
        summary,
        value: Some(info.peak),
        strength: info.magnitude,
    }
}

/// e.g. `checkout http_latency_p99_ms 3.2 s, 8.1× its usual 390 ms (up since 10:02:13,
/// confidence 99.9%)`.
fn open_summary(service: &Symbol, name: &Symbol, info: &WindowInfo) -> String {
    let n = name.as_str();
    let peak = fmt_value(n, info.peak);
    let usual = fmt_value(n, info.expected_at_peak);
    let (p, e) = (info.peak, info.expected_at_peak);
    let how = if p > 0.0 && e > 0.0 && p / e >= 1.5 {
        format!("{:.1}× its usual {usual}", p / e)
    } else if p >= 0.0 && e > 0.0 && p / e <= 0.67 {
        format!("{:.0}% below its usual {usual}", (1.0 - p / e) * 100.0)
    } else {
        format!("usually {usual}")
    };
    format!(
        "{service} {name} {peak}, {how} ({} since {}, confidence {})",
        info.direction.as_str(),
        info.onset.clock(),
        fmt_confidence(info.min_p)
    )
}

/// `99.9%`, `99.99%`, … with as many nines as the p-value earns (capped at six).
fn fmt_confidence(p: f64) -> String {
    let p = p.clamp(0.0, 1.0);
    let digits = if p <= 0.0 {
        4
    } else {
        ((-p.log10()).floor() as i64 - 2).clamp(0, 4) as usize
    };
    let scale = 10f64.powi(digits as i32);
    // Truncate: 99.99996% is not "100%".
    format!(
        "{:.*}%",
        digits,
        ((1.0 - p) * 100.0 * scale).floor() / scale
    )
}

/// Values in the units their name suggests: `_ms`, `_seconds`, `_bytes`, ratios as percentages.
fn fmt_value(name: &str, v: f64) -> String {
    let num = |v: f64| {
        let a = v.abs();
        if a >= 100.0 {
            format!("{v:.0}")
        } else if a >= 10.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.3}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_owned()
        }
    };
    if name.ends_with("_ms") {
        if v.abs() >= 1000.0 {
            format!("{} s", num(v / 1000.0))
        } else {
            format!("{} ms", num(v))
        }
    } else if name.ends_with("_seconds") {
        if v.abs() < 1.0 {
            format!("{} ms", num(v * 1000.0))
        } else {
            format!("{} s", num(v))
        }
    } else if name.ends_with("_bytes") {
        let units = ["B", "KB", "MB", "GB", "TB"];
        let mut x = v;
        let mut i = 0;
        while x.abs() >= 1024.0 && i + 1 < units.len() {
            x /= 1024.0;
            i += 1;
        }
        format!("{} {}", num(x), units[i])
    } else if name.ends_with("_ratio") || name.ends_with("utilization") {
        format!("{}%", num(v * 100.0))
    } else {
        num(v)
    }
}
