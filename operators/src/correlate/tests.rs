use super::*;

const T0: u64 = 1_767_600_000_000;

fn sig(service: &str, key: &str, state: SignalState, secs: u64) -> Signal {
    let ts = Timestamp::from_millis(T0 + secs * 1000);
    Signal {
        ts,
        onset: ts,
        service: Symbol::new(service),
        kind: SignalKind::Alert,
        state,
        key: key.to_owned(),
        name: Symbol::new("HighErrorRate"),
        severity: Severity::Critical,
        summary: format!("{service} errors"),
        value: None,
        strength: 0.0,
    }
}

fn graph() -> ServiceGraph {
    let mut g = ServiceGraph::default();
    for (a, b) in [("web", "api"), ("api", "db"), ("batch", "queue")] {
        g.update_edge(&Symbol::new(a), &Symbol::new(b), 1);
    }
    g
}

fn run(signals: &[Signal], end_secs: u64) -> Vec<Incident> {
    let mut c = IncidentCorrelator::new(CorrelatorConfig::default(), graph());
    let mut out = Vec::new();
    for s in signals {
        c.on_signal(s, &mut out);
    }
    c.on_watermark(Timestamp::from_millis(T0 + end_secs * 1000), &mut out);
    out
}

#[test]
fn connected_signals_form_one_incident_with_a_lifecycle() {
    let out = run(
        &[
            sig("db", "a", SignalState::Open, 0),
            sig("api", "b", SignalState::Open, 20),
            sig("web", "c", SignalState::Open, 100),
            sig("db", "a", SignalState::Close, 400),
            sig("api", "b", SignalState::Close, 410),
            sig("web", "c", SignalState::Close, 420),
        ],
        3600,
    );
    assert!(out.iter().all(|i| i.id == out[0].id));
    let statuses: Vec<_> = out.iter().map(|i| (i.version, i.status)).collect();
    assert_eq!(statuses.first(), Some(&(1, IncidentStatus::Open)));
    assert_eq!(statuses.last().map(|s| s.1), Some(IncidentStatus::Resolved));
    // The first version waited for the burst (group_wait) and already has db and api.
    assert_eq!(out[0].services.len(), 2);
    assert_eq!(out[0].updated_at, Timestamp::from_millis(T0 + 30_000));
    let last = out.last().unwrap();
    assert_eq!(last.services.len(), 3);
    assert_eq!(last.origin[0].service.as_str(), "db");
    let quiet = CorrelatorConfig::default().quiet_period;
    assert_eq!(
        last.resolved_at,
        Some(Timestamp::from_millis(T0 + 420_000).plus(quiet))
    );
    // Versions are consecutive.
    for (i, inc) in out.iter().enumerate() {
        assert_eq!(inc.version as usize, i + 1);
    }
}

#[test]
fn a_cascade_across_four_hops_is_one_incident_with_the_deepest_origin() {
    let mut g = ServiceGraph::default();
    for (a, b) in [
        ("edge", "web"),
        ("web", "api"),
        ("api", "svc"),
        ("svc", "db"),
    ] {
        g.update_edge(&Symbol::new(a), &Symbol::new(b), 1);
    }
    let mut c = IncidentCorrelator::new(CorrelatorConfig::default(), g);
    let mut out = Vec::new();
    // The failure climbs from db to edge, one hop every 40 s.
    for (i, svc) in ["db", "svc", "api", "web", "edge"].iter().enumerate() {
        c.on_signal(&sig(svc, svc, SignalState::Open, i as u64 * 40), &mut out);
    }
    c.on_watermark(Timestamp::from_millis(T0 + 600_000), &mut out);
    assert!(out.iter().all(|i| i.id == out[0].id), "one incident");
    let last = out.last().unwrap();
    assert_eq!(last.services.len(), 5);
    assert_eq!(last.origin[0].service.as_str(), "db");
}

#[test]
fn unrelated_simultaneous_problems_stay_separate() {
    let out = run(
        &[
            sig("db", "a", SignalState::Open, 0),
            sig("queue", "b", SignalState::Open, 5),
        ],
        60,
    );
    assert_eq!(out.len(), 2);
    assert_ne!(out[0].id, out[1].id);
}

/// web calls search and cart; both use db.
fn shared_estate() -> ServiceGraph {
    let mut g = ServiceGraph::default();
    for (a, b) in [
        ("web", "search"),
        ("web", "cart"),
        ("search", "db"),
        ("cart", "db"),
    ] {
        g.update_edge(&Symbol::new(a), &Symbol::new(b), 1);
    }
    g
}

fn incident_ids(graph: ServiceGraph, signals: &[Signal]) -> Vec<(String, String)> {
    let mut c = IncidentCorrelator::new(CorrelatorConfig::default(), graph);
    let mut out = Vec::new();
    for s in signals {
        c.on_signal(s, &mut out);
    }
    c.on_watermark(Timestamp::from_millis(T0 + 3_600_000), &mut out);
    let mut pairs: Vec<(String, String)> = out
        .iter()
        .flat_map(|i| i.services.iter().map(|s| (s.to_string(), i.id.clone())))
        .collect();
    pairs.sort();
    pairs.dedup();
    pairs
}

#[test]
fn siblings_failing_together_are_two_incidents_unless_their_shared_dependency_is_sick() {
    // search and cart fail a few seconds apart; their caller web feels both. Their shared
    // database is healthy: two problems, and web's pain joins the first.
    let pairs = incident_ids(
        shared_estate(),
        &[
            sig("search", "a", SignalState::Open, 0),
            sig("cart", "b", SignalState::Open, 5),
            sig("web", "c", SignalState::Open, 30),
        ],
    );
    let id = |svc: &str| pairs.iter().find(|(s, _)| s == svc).map(|(_, i)| i.clone());
    assert_ne!(id("search"), id("cart"), "{pairs:?}");
    assert_eq!(id("web"), id("search"), "{pairs:?}");
    // The database shows symptoms first: one incident, a common cause.
    let pairs = incident_ids(
        shared_estate(),
        &[
            sig("db", "d", SignalState::Open, 0),
            sig("search", "a", SignalState::Open, 5),
            sig("cart", "b", SignalState::Open, 10),
        ],
    );
    let ids: std::collections::BTreeSet<&String> = pairs.iter().map(|(_, i)| i).collect();
    assert_eq!(ids.len(), 1, "{pairs:?}");
}

#[test]
fn a_caller_hurt_by_two_faults_does_not_bridge_them() {
    // cart fails and web follows; then search fails on its own. search is one hop from web,
    // but neither depends on the other's cause: a second incident.
    let pairs = incident_ids(
        shared_estate(),
        &[
            sig("cart", "a", SignalState::Open, 0),
            sig("web", "b", SignalState::Open, 20),
            sig("search", "c", SignalState::Open, 120),
        ],
    );
    let id = |svc: &str| pairs.iter().find(|(s, _)| s == svc).map(|(_, i)| i.clone());
    assert_eq!(id("web"), id("cart"), "{pairs:?}");
    assert_ne!(id("search"), id("cart"), "{pairs:?}");
    // Their shared database failing next is a cause of both: it joins the incident.
    let pairs = incident_ids(
        shared_estate(),
        &[
            sig("cart", "a", SignalState::Open, 0),
            sig("web", "b", SignalState::Open, 20),
            sig("db", "d", SignalState::Open, 120),
        ],
    );
    let ids: std::collections::BTreeSet<&String> = pairs.iter().map(|(_, i)| i).collect();
    assert_eq!(ids.len(), 1, "{pairs:?}");
}

#[test]
fn a_flap_inside_the_quiet_period_keeps_the_incident_open() {
    let out = run(
        &[
            sig("db", "a", SignalState::Open, 0),
            sig("db", "a", SignalState::Close, 100),
            sig("db", "a", SignalState::Open, 200),
            sig("db", "a", SignalState::Close, 300),
        ],
        3600,
    );
    assert!(out.iter().all(|i| i.id == out[0].id));
    assert_eq!(
        out.iter()
            .filter(|i| i.status == IncidentStatus::Resolved)
            .count(),
        1
    );
    let quiet = CorrelatorConfig::default().quiet_period;
    assert_eq!(
        out.last().and_then(|i| i.resolved_at),
        Some(Timestamp::from_millis(T0 + 300_000).plus(quiet))
    );
}

#[test]
fn output_does_not_depend_on_watermark_batching() {
    let signals = [
        sig("db", "a", SignalState::Open, 0),
        sig("api", "b", SignalState::Open, 90),
        sig("db", "a", SignalState::Close, 200),
        sig("api", "b", SignalState::Close, 260),
    ];
    let mut c = IncidentCorrelator::new(CorrelatorConfig::default(), graph());
    let mut stepped = Vec::new();
    for s in &signals {
        c.on_watermark(s.ts, &mut stepped);
        c.on_signal(s, &mut stepped);
    }
    c.on_watermark(Timestamp::from_millis(T0 + 3_600_000), &mut stepped);
    assert_eq!(stepped, run(&signals, 3600));
}

#[test]
fn a_lone_statistical_warning_joins_but_does_not_open() {
    let mut anomaly = sig("db", "a", SignalState::Open, 0);
    anomaly.kind = SignalKind::MetricAnomaly;
    anomaly.severity = Severity::Warning;
    assert!(run(std::slice::from_ref(&anomaly), 600).is_empty());
    let mut later = anomaly.clone();
    later.ts = Timestamp::from_millis(T0 + 20_000);
    later.onset = later.ts;
    let out = run(&[sig("api", "b", SignalState::Open, 10), later], 600);
    assert_eq!(out.last().map(|i| i.services.len()), Some(2));
    // A waiting warning is adopted, with its onset, when an incident opens near it.
    let out = run(
        &[anomaly.clone(), sig("api", "b", SignalState::Open, 60)],
        600,
    );
    let first = &out[0];
    assert_eq!(first.services.len(), 2);
    assert_eq!(first.opened_at, anomaly.onset);
    assert_eq!(first.origin[0].service.as_str(), "db");
}

#[test]
fn changes_on_incident_services_are_suspects() {
    let mut change = sig("db", "deploy", SignalState::Instant, 0);
    change.kind = SignalKind::Change;
    change.name = Symbol::new("deploy");
    change.severity = Severity::Info;
    let out = run(&[change, sig("db", "a", SignalState::Open, 120)], 600);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].changes.len(), 1);
    assert!(out[0].origin[0]
        .evidence
        .iter()
        .any(|e| e.contains("deploy")));
}

#[test]
fn a_late_signal_joins_and_is_ranked_by_when_it_began() {
    // db's detector confirmed its anomaly only at 160 s, but it began at 40 s: before api's.
    let mut db = sig("db", "d", SignalState::Open, 160);
    db.onset = Timestamp::from_millis(T0 + 40_000);
    let out = run(&[sig("api", "a", SignalState::Open, 100), db], 600);
    assert!(out.iter().all(|i| i.id == out[0].id), "one incident");
    let last = out.last().unwrap();
    assert_eq!(last.services.len(), 2);
    assert_eq!(last.origin[0].service.as_str(), "db");
}

#[test]
fn a_signal_after_the_incident_resolved_opens_a_new_one() {
    let quiet = CorrelatorConfig::default().quiet_period.as_secs();
    let out = run(
        &[
            sig("db", "a", SignalState::Open, 0),
            sig("db", "a", SignalState::Close, 60),
            sig("api", "b", SignalState::Open, 60 + quiet + 30),
        ],
        3 * quiet,
    );
    let ids: std::collections::BTreeSet<&str> = out.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{out:#?}");
    let first = out.iter().find(|i| i.status == IncidentStatus::Resolved);
    assert!(first.is_some_and(|i| i.services.len() == 1));
}

#[test]
fn a_signal_back_after_the_flap_window_is_a_new_occurrence() {
    let flap = CorrelatorConfig::default().flap_window.as_secs();
    // db's signal clears at 100 s; api's keeps the incident open (then quiet) well past the
    // flap window.
    let signals = |back: u64| {
        vec![
            sig("db", "a", SignalState::Open, 0),
            sig("api", "b", SignalState::Open, 10),
            sig("db", "a", SignalState::Close, 100),
            sig("api", "b", SignalState::Close, 100 + flap),
            sig("db", "a", SignalState::Open, back),
            sig("db", "a", SignalState::Close, back + 60),
        ]
    };
    let ids = |out: &[Incident]| {
        out.iter()
            .map(|i| i.id.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    assert_eq!(ids(&run(&signals(100 + flap - 30), 3 * 3600)), 1);
    assert_eq!(ids(&run(&signals(100 + flap + 60), 3 * 3600)), 2);
}

#[test]
fn a_lagging_burn_neither_holds_an_incident_nor_draws_in_the_next_fault() {
    let quiet = CorrelatorConfig::default().quiet_period.as_secs();
    let mut burn = sig("web", "burn", SignalState::Open, 60);
    burn.kind = SignalKind::SloBurn;
    let mut burn_end = burn.clone();
    burn_end.state = SignalState::Close;
    burn_end.ts = Timestamp::from_millis(T0 + 1_800_000);
    let out = run(
        &[
            sig("db", "a", SignalState::Open, 0),
            burn,
            sig("db", "a", SignalState::Close, 300),
            // Another fault below web while its burn is still up.
            sig("api", "b", SignalState::Open, 300 + quiet + 60),
            burn_end,
        ],
        3 * 3600,
    );
    let first = out.iter().find(|i| i.status == IncidentStatus::Resolved);
    assert_eq!(
        first.and_then(|i| i.resolved_at),
        Some(Timestamp::from_millis(T0 + (300 + quiet) * 1000)),
        "{out:#?}"
    );
    let ids: std::collections::BTreeSet<&str> = out.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{out:#?}");
    // A burn alone is an incident of its own, resolved when it clears.
    let mut lone = sig("web", "burn", SignalState::Open, 0);
    lone.kind = SignalKind::SloBurn;
    let mut lone_end = lone.clone();
    lone_end.state = SignalState::Close;
    lone_end.ts = Timestamp::from_millis(T0 + 600_000);
    let out = run(&[lone, lone_end], 3600);
    assert_eq!(
        out.last().and_then(|i| i.resolved_at),
        Some(Timestamp::from_millis(T0 + (600 + quiet) * 1000))
    );
}
