use super::*;

const T0: u64 = 1_767_600_000;

fn log(secs: u64, service: &str, level: &str, message: &str) -> Event {
    let line = serde_json_line(secs, service, level, message);
    Event::from_json(&line).unwrap()
}

fn serde_json_line(secs: u64, service: &str, level: &str, message: &str) -> String {
    let message = message.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        r#"{{"ts":{},"kind":"log","service":"{service}","level":"{level}","message":"{message}"}}"#,
        T0 + secs
    )
}

fn at(secs: u64) -> Timestamp {
    Timestamp::from_millis((T0 + secs) * 1000)
}

/// Small warm-up so tests stay short: 20 lines and 2 minutes.
fn config() -> LogTemplateConfig {
    LogTemplateConfig {
        warmup_lines: 20,
        warmup: Duration::from_secs(120),
        ..LogTemplateConfig::default()
    }
}

fn run(d: &mut LogTemplateDetector, events: &[Event]) -> Vec<Signal> {
    let mut out = Vec::new();
    for e in events {
        d.on_event(e, &mut out);
    }
    out
}

/// A steady background: one `request <n> served in <n> ms` line every 10 s.
fn background(from: u64, to: u64) -> Vec<Event> {
    (from..to)
        .step_by(10)
        .map(|s| {
            log(
                s,
                "api",
                "info",
                &format!("request {s} served in {} ms", s % 97),
            )
        })
        .collect()
}

#[test]
fn new_templates_are_reported_only_after_warm_up_and_close_when_quiet() {
    let mut d = LogTemplateDetector::new(config());
    let mut events = background(0, 600);
    // During warm-up (t=30 s): not reported.
    events.push(log(30, "api", "info", "cache warmed with 120 entries"));
    // After warm-up (t=400 s: 40 lines, 6 minutes in): reported.
    events.push(log(
        400,
        "api",
        "warn",
        "payment authorization failed: upstream 10.0.0.9 after 800ms",
    ));
    events.sort_by_key(|e| e.ts);
    let out = run(&mut d, &events);
    let new: Vec<&Signal> = out.iter().filter(|s| s.key.ends_with("/new")).collect();
    assert_eq!(new.len(), 1, "{out:#?}");
    let s = new[0];
    assert_eq!(
        (s.state, s.ts, s.severity),
        (SignalState::Open, at(400), Severity::Warning)
    );
    assert_eq!(s.kind, SignalKind::LogTemplate);
    assert_eq!(
        s.name.as_str(),
        "payment authorization failed: upstream <*> after <*>"
    );
    assert_eq!(
        s.summary,
        "api: new log template \"payment authorization failed: upstream <*> after <*>\""
    );
    // Quiet for 10 minutes after its only line: closes at 400 s + 10 min, not before.
    let mut out = Vec::new();
    d.on_watermark(at(400 + 600), &mut out);
    assert!(out.iter().all(|s| !s.key.ends_with("/new")));
    d.on_watermark(at(400 + 601), &mut out);
    let closed: Vec<&Signal> = out.iter().filter(|s| s.key.ends_with("/new")).collect();
    assert_eq!(closed.len(), 1);
    assert_eq!(
        (closed[0].state, closed[0].ts, closed[0].onset),
        (SignalState::Close, at(1000), at(400))
    );
    assert_eq!(closed[0].key, s.key);
}

#[test]
fn spikes_open_over_the_baseline_and_close_when_the_rate_falls_back() {
    let mut d = LogTemplateDetector::new(config());
    let mut events = background(0, 1200);
    // A burst of 60 lines in one minute (baseline: 6 per minute).
    for i in 0..60 {
        events.push(log(
            900 + i,
            "api",
            "info",
            &format!("request {i} served in 3 ms"),
        ));
    }
    events.sort_by_key(|e| e.ts);
    let out = run(&mut d, &events);
    let spikes: Vec<&Signal> = out.iter().filter(|s| s.key.ends_with("/spike")).collect();
    assert_eq!(spikes.len(), 2, "{out:#?}");
    assert_eq!(spikes[0].state, SignalState::Open);
    assert_eq!(spikes[0].severity, Severity::Warning);
    assert!(spikes[0].ts > at(900) && spikes[0].ts < at(960));
    assert!(
        spikes[0].summary.contains("spiking ×"),
        "{}",
        spikes[0].summary
    );
    assert_eq!(spikes[1].state, SignalState::Close);
    // The burst window is [900, 960); the next window [960, 1020) is back to normal.
    assert_eq!(spikes[1].ts, at(1020));
    assert_eq!(spikes[1].onset, spikes[0].ts);
    assert_eq!(spikes[0].key, spikes[1].key);
}

#[test]
fn error_templates_open_at_once_and_close_after_a_quiet_period() {
    let mut d = LogTemplateDetector::new(config());
    let events = vec![
        log(0, "db", "error", "query 17 failed: deadlock detected"),
        log(10, "db", "error", "query 99 failed: deadlock detected"),
        log(20, "db", "info", "thread 3 panicked at src/main.rs:10"),
        log(30, "db", "fatal", "out of disk on /var/lib/db"),
        log(40, "db", "info", "checkpoint 4 done"),
    ];
    let mut out = run(&mut d, &events);
    let errors: Vec<&Signal> = out.iter().filter(|s| s.key.ends_with("/error")).collect();
    assert_eq!(errors.len(), 3, "{out:#?}");
    assert_eq!(
        (errors[0].severity, errors[0].ts),
        (Severity::Warning, at(0))
    );
    assert!(errors[0]
        .summary
        .starts_with("db: error log \"query <*> failed: deadlock detected\""));
    assert_eq!(
        errors[1].severity,
        Severity::Critical,
        "panic without a level"
    );
    assert_eq!(errors[2].severity, Severity::Critical, "fatal level");
    out.clear();
    d.on_watermark(at(10 + 300), &mut out);
    assert!(out.is_empty(), "{out:#?}");
    d.on_watermark(at(40 + 300), &mut out);
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|s| s.state == SignalState::Close));
    assert_eq!(out[0].ts, at(310));
    assert_eq!(out[0].value, Some(2.0));
    assert_eq!(
        out[0].summary,
        "db: error log \"query <*> failed: deadlock detected\" quiet for 5m (2 lines in 5m10s)"
    );
}

#[test]
fn frequent_errors_escalate_to_critical() {
    let mut d = LogTemplateDetector::new(LogTemplateConfig {
        error_critical_count: 5,
        ..config()
    });
    let events: Vec<Event> = (0..6)
        .map(|i| log(i, "db", "error", &format!("lock wait timeout on row {i}")))
        .collect();
    let out = run(&mut d, &events);
    let sev: Vec<(SignalState, Severity)> = out.iter().map(|s| (s.state, s.severity)).collect();
    assert_eq!(
        sev,
        [
            (SignalState::Open, Severity::Warning),
            (SignalState::Open, Severity::Critical)
        ]
    );
    assert_eq!(out[0].key, out[1].key);
    assert_eq!(out[1].onset, out[0].onset);
}

#[test]
fn signals_do_not_depend_on_watermarks() {
    let mut events = background(0, 2400);
    for i in 0..80 {
        events.push(log(
            1500 + i / 2,
            "api",
            "info",
            &format!("request {i} served in 3 ms"),
        ));
    }
    for (i, s) in [700u64, 705, 1300, 2000].iter().enumerate() {
        events.push(log(
            *s,
            "api",
            "error",
            &format!("upstream {i} refused connection"),
        ));
        events.push(log(
            *s,
            "web",
            "info",
            &format!("render {i} of page /x/{i} done"),
        ));
    }
    events.push(log(800, "api", "info", "feature flag checkout_v2 enabled"));
    events.sort_by_key(|e| e.ts);
    let end = at(10_000);
    let mut plain = LogTemplateDetector::new(config());
    let mut a = run(&mut plain, &events);
    plain.on_watermark(end, &mut a);
    let mut eager = LogTemplateDetector::new(config());
    let mut b = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if i % 3 == 0 {
            eager.on_watermark(e.ts, &mut b);
        }
        eager.on_event(e, &mut b);
        eager.on_watermark(e.ts, &mut b);
    }
    eager.on_watermark(end, &mut b);
    assert!(a.len() >= 6, "{a:#?}");
    assert_eq!(a, b);
    // Every key names its service, template and signal type, and pairs Open with Close.
    for s in &a {
        let parts: Vec<&str> = s.key.split('/').collect();
        assert_eq!(parts.len(), 3, "{}", s.key);
        assert_eq!(parts[0], s.service.as_str());
    }
    let opens = a
        .iter()
        .filter(|s| s.state == SignalState::Open)
        .map(|s| &s.key)
        .collect::<BTreeSet<_>>();
    let closes = a
        .iter()
        .filter(|s| s.state == SignalState::Close)
        .map(|s| &s.key)
        .collect::<BTreeSet<_>>();
    assert_eq!(opens, closes);
}

#[test]
fn state_stays_bounded() {
    let mut d = LogTemplateDetector::new(LogTemplateConfig {
        max_services: 3,
        miner: TemplateConfig {
            max_templates: 10,
            ..TemplateConfig::default()
        },
        ..config()
    });
    let mut out = Vec::new();
    for i in 0..2000u64 {
        let service = format!("svc{}", i % 7);
        let word: String = (0..4)
            .map(|j| (b'a' + ((i * 31 + j * 7) % 26) as u8) as char)
            .collect();
        d.on_event(
            &log(i, &service, "error", &format!("{word} failed")),
            &mut out,
        );
    }
    assert!(d.services() <= 3);
    assert!(d.templates("svc6") <= 10);
    assert!(d.timers.len() <= 3 * 10 * 3);
}
