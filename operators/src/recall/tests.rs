use kaizen_model::{OriginCandidate, Severity, SignalRef};

use super::*;

fn incident(
    id: &str,
    origin: &str,
    signals: &[(&str, &str)],
    opened: u64,
    resolved: bool,
) -> Incident {
    let signals: Vec<SignalRef> = signals
        .iter()
        .map(|(svc, name)| SignalRef {
            kind: SignalKind::Alert,
            key: format!("{svc}/{name}"),
            service: Symbol::new(svc),
            name: Symbol::new(name),
            severity: Severity::Critical,
            summary: String::new(),
            onset: Timestamp::from_millis(opened),
            ended: None,
            value: None,
            strength: 0.0,
        })
        .collect();
    let mut services: Vec<Symbol> = signals.iter().map(|s| s.service.clone()).collect();
    services.sort();
    services.dedup();
    Incident {
        id: id.into(),
        version: 1,
        status: if resolved {
            IncidentStatus::Resolved
        } else {
            IncidentStatus::Open
        },
        severity: Severity::Critical,
        opened_at: Timestamp::from_millis(opened),
        updated_at: Timestamp::from_millis(opened + 600_000),
        resolved_at: resolved.then(|| Timestamp::from_millis(opened + 600_000)),
        services,
        impacted: vec![],
        origin: vec![OriginCandidate {
            service: Symbol::new(origin),
            score: 1.0,
            evidence: vec![],
            deviation: None,
        }],
        signals,
        changes: vec![],
    }
}

fn insight_for(i: &Incident) -> Insight {
    crate::InsightBuilder::default().build(i)
}

fn feedback(remedy: &str) -> Feedback {
    Feedback {
        incident: String::new(),
        action: FeedbackAction::RemedyWorked,
        remedy: Some(remedy.into()),
        user: None,
    }
}

#[test]
fn a_recurrence_recalls_the_earlier_incident_and_its_remedy() {
    let mut recall = IncidentRecall::default();
    let mut updates = Vec::new();
    let first = incident(
        "a",
        "db",
        &[("db", "DbSlow"), ("api", "HighErrorRate")],
        1_000,
        false,
    );
    let mut i1 = insight_for(&first);
    recall.on_incident(&first, &mut i1, &mut updates);
    assert_eq!(i1.novelty, Some(Novelty::New));
    // The responder says what worked while it is still open.
    recall.on_feedback(
        Timestamp::from_millis(2_000),
        &Symbol::new("db"),
        &feedback("add the index"),
        &mut updates,
    );
    let resolved = incident(
        "a",
        "db",
        &[("db", "DbSlow"), ("api", "HighErrorRate")],
        1_000,
        true,
    );
    recall.on_incident(&resolved, &mut insight_for(&resolved), &mut updates);
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].best_remedy(), Some("add the index"));

    let unrelated = incident("b", "queue", &[("queue", "Backlog")], 5_000_000, false);
    let mut i2 = insight_for(&unrelated);
    recall.on_incident(&unrelated, &mut i2, &mut updates);
    assert!(i2.similar.is_empty());

    let again = incident(
        "c",
        "db",
        &[
            ("db", "DbSlow"),
            ("api", "HighErrorRate"),
            ("web", "HighErrorRate"),
        ],
        9_000_000,
        false,
    );
    let mut i3 = insight_for(&again);
    recall.on_incident(&again, &mut i3, &mut updates);
    assert_eq!(i3.similar.len(), 1);
    assert_eq!(i3.similar[0].id, "a");
    assert_eq!(i3.similar[0].remedy.as_deref(), Some("add the index"));
    assert_eq!(i3.similar[0].resolved_in_secs, Some(600));
    assert_eq!(i3.novelty, Some(Novelty::Rare));
}

#[test]
fn history_survives_a_restart_through_its_records() {
    let mut updates = Vec::new();
    let mut recall = IncidentRecall::default();
    let past = incident("a", "db", &[("db", "DbSlow")], 1_000, true);
    recall.on_incident(&past, &mut insight_for(&past), &mut updates);
    let text: Vec<String> = updates
        .iter()
        .map(|u| serde_json::to_string(u).unwrap())
        .collect();
    let reloaded: Vec<PastIncident> = text
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect();
    let mut restarted = IncidentRecall::new(RecallConfig::default(), reloaded);
    assert_eq!(restarted.history_len(), 1);
    let again = incident("z", "db", &[("db", "DbSlow")], 9_000_000, false);
    let mut insight = insight_for(&again);
    restarted.on_incident(&again, &mut insight, &mut updates);
    assert_eq!(insight.similar.first().map(|s| s.id.as_str()), Some("a"));
    // Feedback after the fact updates the stored record.
    let before = updates.len();
    restarted.on_feedback(
        Timestamp::from_millis(9_500_000),
        &Symbol::new("db"),
        &feedback("restart"),
        &mut updates,
    );
    assert_eq!(
        updates.len(),
        before,
        "an open incident takes the vote, not history"
    );
}

#[test]
fn similarity_is_symmetric_and_bounded() {
    let a = fingerprint(&incident("a", "db", &[("db", "X"), ("api", "Y")], 0, true));
    let b = fingerprint(&incident("b", "db", &[("db", "X")], 0, true));
    let s = a.similarity(&b);
    assert!((s - b.similarity(&a)).abs() < 1e-12);
    assert!(s > 0.0 && s < 1.0);
    assert!((a.similarity(&a) - 1.0).abs() < 1e-12);
    assert_eq!(
        Fingerprint::default().similarity(&Fingerprint::default()),
        0.0
    );
}

#[test]
fn a_generalised_template_keeps_its_shape() {
    assert_eq!(
        template_shape("upstream catalog returned <*> for GET /categories request_id=<*>"),
        "upstream catalog returned for GET"
    );
    assert_eq!(
        template_shape("upstream catalog returned <*> for GET <*> request_id=<*>"),
        "upstream catalog returned for GET"
    );
    assert_eq!(
        template_shape("serving certificate CN=<*> has expired after 90 days (notAfter…"),
        "serving certificate has expired after days"
    );
}

#[test]
fn the_origin_side_weighs_more_than_how_far_it_spread() {
    // The same database fault, once felt by one caller and once by four: still close.
    let small = fingerprint(&incident(
        "a",
        "db",
        &[("db", "Slow"), ("db", "PoolSaturated"), ("api", "Errors")],
        0,
        true,
    ));
    let spread = [("db", "Slow"), ("db", "PoolSaturated"), ("api", "Errors")]
        .into_iter()
        .chain(["web", "search", "cart", "auth"].map(|s| (s, "Errors")))
        .collect::<Vec<_>>();
    let large = fingerprint(&incident("b", "db", &spread, 0, true));
    // Another origin with the same callers' symptoms: far.
    let other = fingerprint(&incident(
        "c",
        "cache",
        &[("cache", "HighCpu"), ("api", "Errors"), ("web", "Errors")],
        0,
        true,
    ));
    let config = RecallConfig::default();
    assert!(small.similarity(&large) >= config.threshold);
    assert!(small.similarity(&other) < config.threshold);
}
