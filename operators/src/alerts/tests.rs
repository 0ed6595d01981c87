use super::*;

const T0: u64 = 1_767_600_000;

fn alert(secs: u64, service: &str, name: &str, status: &str, extra: &str) -> Event {
    Event::from_json(&format!(
        r#"{{"ts":{},"kind":"alert","service":"{service}","name":"{name}","severity":"critical","status":"{status}","labels":{{{extra}}}}}"#,
        T0 + secs
    ))
    .unwrap()
}

fn at(secs: u64) -> Timestamp {
    Timestamp::from_millis((T0 + secs) * 1000)
}

fn run(p: &mut AlertPipeline, events: &[Event], end: u64) -> Vec<Signal> {
    let mut out = Vec::new();
    for e in events {
        p.on_event(e, &mut out);
    }
    p.on_watermark(at(end), &mut out);
    out
}

#[test]
fn repeats_are_deduplicated_into_one_group_signal() {
    let mut p = AlertPipeline::default();
    let events: Vec<Event> = (0..5)
        .map(|i| alert(i * 60, "api", "HighErrorRate", "firing", ""))
        .collect();
    let out = run(&mut p, &events, 290);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].state, SignalState::Open);
    assert_eq!(out[0].ts, at(30), "the first signal waits for group_wait");
    assert_eq!(out[0].onset, at(0));
    assert_eq!(p.stats().deduplicated, 4);
}

#[test]
fn resolve_closes_after_the_flap_window_and_silence_times_out() {
    let mut p = AlertPipeline::default();
    let out = run(
        &mut p,
        &[
            alert(0, "api", "A", "firing", ""),
            alert(100, "api", "A", "resolved", ""),
            alert(100, "db", "B", "firing", ""),
        ],
        2000,
    );
    let states: Vec<_> = out
        .iter()
        .map(|s| (s.service.as_str(), s.state, s.ts))
        .collect();
    assert_eq!(
        states,
        [
            ("api", SignalState::Open, at(30)),
            ("db", SignalState::Open, at(130)),
            ("api", SignalState::Close, at(220)),
            // B is never re-sent: resolve_timeout (300 s) after its last notification.
            ("db", SignalState::Close, at(400)),
        ]
    );
    assert_eq!(p.tracked(), 0);
}

#[test]
fn a_flap_is_one_alert_with_a_flap_count() {
    let mut p = AlertPipeline::default();
    let out = run(
        &mut p,
        &[
            alert(0, "api", "A", "firing", ""),
            alert(60, "api", "A", "resolved", ""),
            alert(90, "api", "A", "firing", ""),
            alert(120, "api", "A", "resolved", ""),
        ],
        1000,
    );
    let states: Vec<_> = out.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [SignalState::Open, SignalState::Open, SignalState::Close]
    );
    assert!(out[1].summary.contains("flapped 1×"), "{}", out[1].summary);
    assert_eq!(p.stats().flaps, 1);
}

#[test]
fn alerts_group_by_name_per_service() {
    let mut p = AlertPipeline::default();
    let out = run(
        &mut p,
        &[
            alert(0, "api", "A", "firing", r#""instance":"a1""#),
            alert(5, "api", "A", "firing", r#""instance":"a2""#),
            alert(5, "api", "B", "firing", ""),
            alert(6, "web", "A", "firing", ""),
        ],
        60,
    );
    assert_eq!(out.len(), 3, "{out:#?}");
    let a = out
        .iter()
        .find(|s| s.service.as_str() == "api" && s.name.as_str() == "A")
        .unwrap();
    assert_eq!(a.value, Some(2.0));
    assert!(
        a.summary.starts_with("2 alerts firing on api"),
        "{}",
        a.summary
    );
}

#[test]
fn a_firing_source_inhibits_matching_targets_but_never_itself() {
    let config = AlertConfig {
        inhibit_rules: vec![InhibitRule {
            source: vec!["alertname=NodeDown".parse().unwrap()],
            target: vec!["severity=critical".parse().unwrap()],
            equal: vec!["node".into()],
        }],
        ..AlertConfig::default()
    };
    let mut p = AlertPipeline::new(config);
    let out = run(
        &mut p,
        &[
            alert(0, "infra", "NodeDown", "firing", r#""node":"n1""#),
            alert(1, "api", "HighErrorRate", "firing", r#""node":"n1""#),
            alert(2, "db", "HighErrorRate", "firing", r#""node":"n2""#),
        ],
        60,
    );
    let services: Vec<&str> = out.iter().map(|s| s.service.as_str()).collect();
    // NodeDown (critical, matches the target) is not inhibited by itself; api is muted.
    assert_eq!(services, ["infra", "db"]);
    assert!(p.stats().inhibited >= 1);
}

#[test]
fn silences_mute_within_their_time_range() {
    let config = AlertConfig {
        silences: vec![Silence {
            matchers: vec!["service=api".parse().unwrap()],
            starts_at: at(0),
            ends_at: at(100),
            comment: "maintenance".into(),
        }],
        ..AlertConfig::default()
    };
    let mut p = AlertPipeline::new(config);
    let out = run(
        &mut p,
        &[
            alert(10, "api", "A", "firing", ""),
            alert(200, "api", "A", "firing", ""),
        ],
        300,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].onset, at(200));
    assert_eq!(p.stats().silenced, 1);
}

#[test]
fn output_does_not_depend_on_watermark_batching() {
    let events = [
        alert(0, "api", "A", "firing", ""),
        alert(50, "api", "A", "resolved", ""),
        alert(55, "db", "B", "firing", ""),
        alert(400, "web", "C", "firing", ""),
    ];
    let mut stepped = AlertPipeline::default();
    let mut a = Vec::new();
    for e in &events {
        stepped.on_watermark(e.ts, &mut a);
        stepped.on_event(e, &mut a);
    }
    stepped.on_watermark(at(5000), &mut a);
    let b = run(&mut AlertPipeline::default(), &events, 5000);
    assert_eq!(a, b);
}
