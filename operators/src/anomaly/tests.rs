//! Behaviour of the scorer, the windows and the detector on synthetic series.

use super::*;
use kaizen_model::Labels;

const T0: u64 = 1_767_600_000_000;
const STEP: u64 = 60_000;

/// Deterministic standard normal draws (xorshift + Box–Muller).
struct Noise(u64);

impl Noise {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn metric(i: u64, value: f64, kind: MetricKind, instance: &str) -> Event {
    Event {
        ts: Timestamp(T0 + i * STEP),
        service: Symbol::new("checkout"),
        body: EventBody::Metric(Metric {
            name: Symbol::new("http_latency_p99_ms"),
            value,
            metric_kind: kind,
            labels: Labels::from_pairs([(Symbol::new("instance"), Symbol::new(instance))]),
        }),
    }
}

fn run(values: &[f64], kind: MetricKind) -> Vec<Signal> {
    let mut d = MetricAnomalyDetector::default();
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        d.on_event(&metric(i as u64, *v, kind, "a"), &mut out);
    }
    out
}

fn noisy(n: usize, level: f64, sd: f64, seed: u64) -> Vec<f64> {
    let mut g = Noise(seed);
    (0..n).map(|_| level + sd * g.normal()).collect()
}

fn opens(signals: &[Signal]) -> Vec<&Signal> {
    signals
        .iter()
        .filter(|s| s.state == SignalState::Open)
        .collect()
}

#[test]
fn level_shift_opens_once_then_becomes_normal() {
    let mut v = noisy(1500, 400.0, 10.0, 1);
    for x in v.iter_mut().skip(1000) {
        *x += 150.0;
    }
    let out = run(&v, MetricKind::Gauge);
    let o = opens(&out);
    assert_eq!(o.len(), 1, "{out:#?}");
    assert!(o[0].key.ends_with("-up"));
    let onset = (o[0].onset.as_millis() - T0) / STEP;
    assert!((1000..1004).contains(&onset), "onset at point {onset}");
    assert!(
        o[0].summary.contains("checkout http_latency_p99_ms"),
        "{}",
        o[0].summary
    );
    assert!(o[0].summary.contains("up since"), "{}", o[0].summary);
    // The new level is accepted: the window closes well before the end.
    let close = out.iter().find(|s| s.state == SignalState::Close);
    assert!(
        close.is_some_and(|c| c.key == o[0].key && c.ts < Timestamp(T0 + 1100 * STEP)),
        "{out:#?}"
    );
}

#[test]
fn a_spike_is_one_window() {
    let mut v = noisy(800, 50.0, 2.0, 2);
    v[600] = 400.0;
    let out = run(&v, MetricKind::Gauge);
    let o = opens(&out);
    assert_eq!(o.len(), 1, "{out:#?}");
    assert_eq!(o[0].onset, Timestamp(T0 + 600 * STEP));
    assert_eq!(o[0].value, Some(400.0));
    assert_eq!(o[0].severity, Severity::Critical);
    assert!(o[0].summary.contains("8.0× its usual"), "{}", o[0].summary);
    assert_eq!(out.len(), 2, "closes after the spike: {out:#?}");
}

#[test]
fn strength_of_a_flat_series_is_measured_against_one_percent_of_its_level() {
    // Memory that never moved reads "thousands of σ" for any step; strength must still say
    // that a 50 % drop (50 floored spreads) is far less than a CPU pegged at 80× its level.
    let mut memory = vec![700e6; 400];
    for x in memory.iter_mut().skip(300) {
        *x = 350e6;
    }
    let mut cpu = noisy(400, 1.25, 0.1, 7);
    for x in cpu.iter_mut().skip(300) {
        *x = 100.0;
    }
    let strength = |values: &[f64]| opens(&run(values, MetricKind::Gauge))[0].strength;
    let (memory, cpu) = (strength(&memory), strength(&cpu));
    assert!((40.0..=60.0).contains(&memory), "memory {memory}");
    assert!(cpu > 5.0 * memory, "cpu {cpu} vs memory {memory}");
}

#[test]
fn onset_is_the_first_material_move_not_a_wobble_before_it() {
    let mut v = vec![700e6; 400];
    // A 0.01 % wobble a few points before a 50 % drop.
    for x in v.iter_mut().skip(295) {
        *x = 699.93e6;
    }
    for x in v.iter_mut().skip(298) {
        *x = 350e6;
    }
    let out = run(&v, MetricKind::Gauge);
    let o = opens(&out);
    assert_eq!(o.len(), 1, "{out:#?}");
    assert_eq!(o[0].onset, Timestamp(T0 + 298 * STEP));
}

#[test]
fn daily_pattern_is_learnt_not_flagged() {
    // 10 days of a 5-minute series with a strong daily curve and noise.
    let mut d = MetricAnomalyDetector::default();
    let mut g = Noise(3);
    let mut out = Vec::new();
    let per_day = 288u64;
    for i in 0..(10 * per_day) {
        let phase = (i % per_day) as f64 / per_day as f64 * std::f64::consts::TAU;
        let v = 200.0 + 150.0 * phase.sin() + 5.0 * g.normal();
        let mut e = metric(0, v, MetricKind::Gauge, "a");
        e.ts = Timestamp(T0 + i * 300_000);
        d.on_event(&e, &mut out);
    }
    let late: Vec<_> = out
        .iter()
        .filter(|s| s.state == SignalState::Open && s.ts > Timestamp(T0 + 3 * 86_400_000))
        .collect();
    assert!(late.is_empty(), "{late:#?}");
}

#[test]
fn noisy_flat_series_rarely_alarms() {
    let n = 50_000;
    let out = run(&noisy(n, 1000.0, 50.0, 4), MetricKind::Gauge);
    // Gaussian noise: a signal needs a 1-in-1000 point inside a 3-of-5 run of 1-in-100s.
    assert!(
        opens(&out).len() <= 2,
        "{} false windows in {n} points",
        opens(&out).len()
    );
}

#[test]
fn counter_resets_are_not_anomalies() {
    let mut g = Noise(5);
    let mut total = 0.0;
    let mut values = Vec::new();
    for i in 0..2000 {
        if i % 500 == 499 {
            total = 0.0; // restart
        }
        total += 60.0 * (100.0 + 5.0 * g.normal());
        values.push(total);
    }
    let out = run(&values, MetricKind::Counter);
    assert!(out.is_empty(), "{out:#?}");
    // The rate, not the raw count, is what is scored: a tripled rate is an anomaly.
    let mut more = values.clone();
    let last = *more.last().unwrap_or(&0.0);
    more.extend((1..20).map(|k| last + k as f64 * 60.0 * 300.0));
    let out = run(&more, MetricKind::Counter);
    assert_eq!(opens(&out).len(), 1, "{out:#?}");
}

#[test]
fn nan_inf_and_negatives_do_not_corrupt_state() {
    let clean = noisy(900, -40.0, 3.0, 6);
    let mut dirty = Vec::new();
    for (i, v) in clean.iter().enumerate() {
        dirty.push(*v);
        if i % 50 == 7 {
            dirty.push(if i % 100 == 7 {
                f64::NAN
            } else {
                f64::INFINITY
            });
        }
    }
    let mut a = MetricAnomalyDetector::default();
    let mut b = MetricAnomalyDetector::default();
    let (mut oa, mut ob) = (Vec::new(), Vec::new());
    for (i, v) in clean.iter().enumerate() {
        a.on_event(&metric(2 * i as u64, *v, MetricKind::Gauge, "a"), &mut oa);
    }
    let mut j = 0u64;
    for v in &dirty {
        if v.is_finite() {
            b.on_event(&metric(j, *v, MetricKind::Gauge, "a"), &mut ob);
            j += 2;
        } else {
            b.on_event(
                &metric(j.saturating_sub(1), *v, MetricKind::Gauge, "a"),
                &mut ob,
            );
        }
    }
    assert!(oa.is_empty(), "a negative gauge is just a value: {oa:#?}");
    assert_eq!(oa, ob);
    assert_eq!(b.dropped(), 18);
    // A negative counter is impossible: dropped, not scored.
    let mut c = MetricAnomalyDetector::default();
    c.on_event(&metric(0, -5.0, MetricKind::Counter, "a"), &mut Vec::new());
    assert_eq!(c.dropped(), 1);
}

#[test]
fn out_of_order_samples_are_dropped_without_effect() {
    let cfg = ScorerConfig::default();
    let values = noisy(300, 10.0, 1.0, 7);
    let mut a = SeriesBaseline::new();
    let mut b = SeriesBaseline::new();
    for (i, v) in values.iter().enumerate() {
        let ts = Timestamp(T0 + i as u64 * STEP);
        let pa = a.observe(&cfg, ts, *v);
        if i == 150 {
            let stale = b.observe(&cfg, Timestamp(T0), 1e9);
            assert_eq!(stale.status, PointStatus::Skipped(SkipReason::OutOfOrder));
            let dup = b.observe(&cfg, Timestamp(T0 + 149 * STEP), 1e9);
            assert_eq!(dup.status, PointStatus::Skipped(SkipReason::OutOfOrder));
        }
        let pb = b.observe(&cfg, ts, *v);
        assert_eq!(pa, pb);
    }
}

#[test]
fn a_million_series_fit() {
    const { assert!(SERIES_MAX_BYTES <= 2048) };
    const { assert!(SeriesBaseline::MAX_BYTES <= 1024) };
    let mut d = MetricAnomalyDetector::default();
    let service = Symbol::new("svc");
    let m = Metric {
        name: Symbol::new("m"),
        value: 1.0,
        metric_kind: MetricKind::Gauge,
        labels: Labels::default(),
    };
    let mut out = Vec::new();
    let n = 1_000_000u64;
    for round in 0..2u64 {
        for key in 0..n {
            d.observe(
                &service,
                &m,
                key.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                Timestamp(T0 + round * STEP),
                &mut out,
            );
        }
    }
    assert_eq!(d.series(), n as usize);
    assert!(out.is_empty());
    let per_series = d.state_bytes() / n as usize;
    eprintln!(
        "1M series: {} MB of state, {per_series} B/series; bound with daily profile {SERIES_MAX_BYTES} B",
        d.state_bytes() >> 20
    );
    assert!(per_series <= 1024, "{per_series} bytes per series");
}

#[test]
fn hysteresis_opens_after_k_of_n_and_closes_after_m_normal() {
    let cfg = WindowConfig {
        open_p: 1e-3,
        open_k: 3,
        open_n: 5,
        instant_p: 1e-12,
        close_p: 1e-2,
        close_after: 3,
        ..WindowConfig::default()
    };
    let point = |p: f64| PointScore {
        score: 0.0,
        p_value: p,
        z: if p < 1e-3 { 8.0 } else { 0.5 },
        shift_z: 0.0,
        expected: 10.0,
        scale: 1.0,
        direction: Direction::Up,
        beyond_range: false,
        status: PointStatus::Scored,
    };
    let mut w = AnomalyWindow::new();
    // anomalous, normal, anomalous, normal, normal, normal, normal: 2 of 5 at most — no window.
    let mut events = Vec::new();
    let seq = [
        1e-4, 0.5, 1e-4, 0.5, 0.5, 0.5, 0.5, 1e-4, 0.5, 1e-4, 1e-5, 0.5, 5e-3, 0.5, 0.5, 0.5,
    ];
    for (i, p) in seq.iter().enumerate() {
        if let Some(e) = w.update(&cfg, Timestamp(i as u64), 20.0 + i as f64, &point(*p)) {
            events.push((i, e));
        }
    }
    assert_eq!(events.len(), 2, "{events:#?}");
    let (i, WindowEvent::Opened(info)) = events[0] else {
        panic!("{events:#?}");
    };
    assert_eq!(i, 10, "opens at the third anomalous point of five");
    assert_eq!(
        info.onset,
        Timestamp(7),
        "onset is the first anomalous point"
    );
    assert_eq!(info.anomalous_points, 3);
    let (j, WindowEvent::Closed(_)) = events[1] else {
        panic!("{events:#?}");
    };
    assert_eq!(
        j, 15,
        "point 12 (p between the two thresholds) restarts the normal run"
    );
    assert!(!w.is_open());
}

/// Events of several series, one of which goes quiet while anomalous (a stale timer fires).
fn scenario() -> Vec<Event> {
    let mut events = Vec::new();
    let series = [("a", 1u64), ("b", 2), ("c", 3)];
    let mut gens: Vec<Noise> = series.iter().map(|(_, s)| Noise(*s + 10)).collect();
    for i in 0..700u64 {
        for (k, (inst, _)) in series.iter().enumerate() {
            let mut v = 100.0 + 4.0 * gens[k].normal();
            if *inst == "a" && (400..420).contains(&i) {
                v += 60.0;
            }
            if *inst == "b" && i >= 500 {
                if i > 505 {
                    continue; // goes quiet while anomalous
                }
                v += 80.0;
            }
            if *inst == "c" && i == 600 {
                v = -300.0;
            }
            events.push(metric(i, v, MetricKind::Gauge, inst));
        }
    }
    events
}

#[test]
fn output_does_not_depend_on_watermark_batching() {
    let events = scenario();
    let mut sparse = MetricAnomalyDetector::default();
    let mut dense = MetricAnomalyDetector::default();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for (i, e) in events.iter().enumerate() {
        sparse.on_event(e, &mut a);
        if i % 7 == 0 {
            dense.on_watermark(e.ts, &mut b);
        }
        dense.on_event(e, &mut b);
        if i % 3 == 0 {
            dense.on_watermark(e.ts, &mut b);
        }
    }
    let end = Timestamp::MAX;
    sparse.on_watermark(end, &mut a);
    dense.on_watermark(end, &mut b);
    assert_eq!(a, b);
    let keys: Vec<_> = a.iter().map(|s| (s.state, s.key.clone())).collect();
    assert_eq!(opens(&a).len(), 3, "{keys:#?}");
    assert_eq!(
        a.iter().filter(|s| s.state == SignalState::Close).count(),
        3,
        "{keys:#?}"
    );
    let stale = a.iter().find(|s| {
        s.state == SignalState::Close
            && s.key.ends_with("-up")
            && s.ts == Timestamp(T0 + 505 * STEP).plus(Duration::from_secs(600))
    });
    assert!(stale.is_some(), "{a:#?}");
}

#[test]
fn formats_values_for_people() {
    assert_eq!(fmt_value("http_latency_p99_ms", 3200.0), "3.2 s");
    assert_eq!(fmt_value("http_latency_p99_ms", 390.0), "390 ms");
    assert_eq!(fmt_value("disk_write_bytes", 3.0 * 1024.0 * 1024.0), "3 MB");
    assert_eq!(fmt_value("http_error_ratio", 0.125), "12.5%");
    assert_eq!(fmt_confidence(1e-3), "99.9%");
    assert_eq!(fmt_confidence(1e-9), "99.9999%");
}

#[test]
fn a_value_beyond_the_whole_range_is_flagged_even_on_heavy_tails() {
    let cfg = ScorerConfig::default();
    let mut b = SeriesBaseline::new();
    let mut g = Noise(7);
    let mut beyond = Vec::new();
    // Noise around 100 with a spike of +40 every 50 points: the tails learn that spikes happen.
    for i in 0..2000u64 {
        let spike = if i % 50 == 25 { 40.0 } else { 0.0 };
        let p = b.observe(&cfg, Timestamp(T0 + i * STEP), 100.0 + g.normal() + spike);
        if p.beyond_range {
            beyond.push(i);
        }
        assert!(
            !(p.beyond_range && p.status != PointStatus::Scored),
            "flagged while warming up at {i}"
        );
    }
    // The first spike after warm-up breaks the range; later spikes of the same size do not.
    assert!(beyond.iter().all(|&i| i < 100), "{beyond:?}");
    // A spike three times any before it is news, below the range as well as above it.
    let up = b.observe(&cfg, Timestamp(T0 + 2000 * STEP), 220.0);
    assert!(up.beyond_range && up.direction == Direction::Up, "{up:?}");
    let down = b.observe(&cfg, Timestamp(T0 + 2001 * STEP), -50.0);
    assert!(
        down.beyond_range && down.direction == Direction::Down,
        "{down:?}"
    );
    // Inside the range (by less than the tolerance) is not.
    let inside = b.observe(&cfg, Timestamp(T0 + 2002 * STEP), 221.0);
    assert!(!inside.beyond_range, "{inside:?}");
}

#[test]
fn range_rule_is_silent_on_flat_series_and_can_be_turned_off() {
    let mut flat = SeriesBaseline::new();
    let cfg = ScorerConfig::default();
    for i in 0..200u64 {
        let p = flat.observe(&cfg, Timestamp(T0 + i * STEP), 5.0);
        assert!(!p.beyond_range, "a flat series has no range to leave ({i})");
    }
    let off = ScorerConfig {
        range_tolerance: f64::INFINITY,
        ..ScorerConfig::default()
    };
    let mut b = SeriesBaseline::new();
    let mut g = Noise(3);
    for i in 0..200u64 {
        b.observe(&off, Timestamp(T0 + i * STEP), 10.0 + g.normal());
    }
    let p = b.observe(&off, Timestamp(T0 + 200 * STEP), 1e6);
    assert!(!p.beyond_range && p.p_value < 1e-4, "{p:?}");
}

#[test]
fn a_point_beyond_the_range_opens_a_window_at_once() {
    let point = |p: f64, beyond_range: bool| PointScore {
        score: 0.0,
        p_value: p,
        z: 3.0,
        shift_z: 0.0,
        expected: 10.0,
        scale: 1.0,
        direction: Direction::Up,
        beyond_range,
        status: PointStatus::Scored,
    };
    let cfg = WindowConfig::default();
    let mut w = AnomalyWindow::new();
    assert_eq!(w.update(&cfg, Timestamp(1), 10.0, &point(0.5, false)), None);
    // p = 0.02 is not even anomalous by p-value; beyond the range it opens the window.
    let Some(WindowEvent::Opened(info)) = w.update(&cfg, Timestamp(2), 30.0, &point(0.02, true))
    else {
        panic!("did not open");
    };
    assert!(info.beyond_range && info.onset == Timestamp(2) && info.peak == 30.0);
    // The window stays open while the series is beyond its range, then closes as usual.
    assert_eq!(w.update(&cfg, Timestamp(3), 31.0, &point(0.5, true)), None);
    let closes = (4..4 + u64::from(cfg.close_after))
        .filter_map(|t| w.update(&cfg, Timestamp(t), 10.0, &point(0.5, false)))
        .collect::<Vec<_>>();
    assert!(
        matches!(closes.as_slice(), [WindowEvent::Closed(_)]),
        "{closes:?}"
    );
    // Turned off, the same point is judged by its p-value alone.
    let off = WindowConfig {
        open_beyond_range: false,
        ..WindowConfig::default()
    };
    let mut w = AnomalyWindow::new();
    assert_eq!(w.update(&off, Timestamp(2), 30.0, &point(0.02, true)), None);
    assert!(!w.is_open());
}

#[test]
fn a_window_a_day_after_the_last_in_the_same_direction_is_a_daily_repeat() {
    let point = |p: f64, direction: Direction| PointScore {
        score: 0.0,
        p_value: p,
        z: 8.0,
        shift_z: 0.0,
        expected: 10.0,
        scale: 1.0,
        direction,
        beyond_range: false,
        status: PointStatus::Scored,
    };
    let cfg = WindowConfig::default();
    let mut w = AnomalyWindow::new();
    let min = 60_000u64;
    let mut opened = Vec::new();
    // Spikes at 03:15 on day 0, 03:20 on day 1, 03:20 on day 2 going down, 09:00 on day 3.
    let spikes = [
        (3 * 60 + 15, Direction::Up),
        (1440 + 3 * 60 + 20, Direction::Up),
        (2 * 1440 + 3 * 60 + 20, Direction::Down),
        (3 * 1440 + 9 * 60, Direction::Up),
    ];
    for (at, dir) in spikes {
        let t = T0 + at * min;
        if let Some(WindowEvent::Opened(info)) =
            w.update(&cfg, Timestamp(t), 30.0, &point(1e-6, dir))
        {
            opened.push(info.daily_repeat);
        }
        for i in 1..=u64::from(cfg.close_after) {
            w.update(
                &cfg,
                Timestamp(t + i * min),
                10.0,
                &point(0.5, Direction::Up),
            );
        }
    }
    assert_eq!(opened, [false, true, false, false]);
}

#[test]
fn a_jump_far_beyond_anything_seen_pages_whatever_its_p_value() {
    // With a short or heavy-tailed history the tails cannot make a point rare enough (CPU
    // pegged at 84x its usual after five minutes of 1 s samples scored p = 1e-5). Here no
    // p-value is ever rare enough to page: only the range can make it critical.
    let mut d = MetricAnomalyDetector::new(MetricAnomalyConfig {
        critical_p: f64::MIN_POSITIVE,
        ..MetricAnomalyConfig::default()
    });
    let mut severities = |history: &[f64], level: f64| {
        let mut out = Vec::new();
        for (i, v) in history.iter().chain(&[level; 30]).enumerate() {
            d.on_event(
                &metric(i as u64, *v, MetricKind::Gauge, &format!("{level}")),
                &mut out,
            );
        }
        opens(&out).iter().map(|s| s.severity).collect::<Vec<_>>()
    };
    let history = noisy(265, 1.3, 0.15, 7);
    assert_eq!(severities(&history, 100.0), [Severity::Critical]);
    // Beyond the range but not twice the usual value: no page on range alone.
    assert_eq!(severities(&history, 2.4), [Severity::Warning]);
}
