//! Insights for the Slack tests: an ordinary one per incident and version, and a huge one
//! that breaks every Slack limit unless rendering cuts it down.

#![allow(dead_code)]

use kaizen_model::{
    ChangeRef, IncidentStatus, Insight, OriginCandidate, Severity, SimilarIncident, Symbol,
    TimelineEntry, Timestamp,
};

/// 2026-01-05T09:00:00Z, in milliseconds.
pub const T0: u64 = 1_767_603_600_000;

/// A timeline entry `min` minutes after [`T0`].
pub fn entry(min: u64, text: &str) -> TimelineEntry {
    TimelineEntry {
        ts: Timestamp::from_millis(T0 + min * 60_000),
        text: text.into(),
    }
}

/// Version `version` of incident `id` on `services` (the first is the origin), with
/// `timeline` entries, one a minute from [`T0`].
pub fn insight(id: &str, version: u32, services: &[&str], timeline: usize) -> Insight {
    Insight {
        id: id.into(),
        version,
        status: if version == 1 {
            IncidentStatus::Open
        } else {
            IncidentStatus::Updated
        },
        title: format!("HighErrorRate on {} (v{version})", services[0]),
        severity: Severity::Critical,
        services: services.iter().map(|s| Symbol::new(s)).collect(),
        impacted: vec![Symbol::new("web")],
        impact: vec!["web: 12% of checkouts fail".into()],
        origin: vec![OriginCandidate {
            service: Symbol::new(services[0]),
            score: 0.8,
            evidence: vec!["first to degrade".into()],
            deviation: None,
        }],
        suspect_changes: vec![],
        similar: vec![SimilarIncident {
            id: "inc-past".into(),
            title: "payments errors".into(),
            similarity: 0.9,
            remedy: Some("roll back payments".into()),
            resolved_in_secs: Some(600),
        }],
        novelty: None,
        timeline: (0..timeline as u64)
            .map(|i| entry(i, &format!("{}: signal {i}", services[0])))
            .collect(),
        opened_at: Timestamp::from_millis(T0),
        updated_at: Timestamp::from_millis(T0 + u64::from(version) * 60_000),
        resolved_at: None,
        explain: Vec::new(),
    }
}

/// An insight over every limit: 500 services, 1000-character title, 50 origin candidates
/// with 50 long evidence lines each, hundreds of impact lines, changes and timeline entries.
pub fn huge_insight() -> Insight {
    let long = |n: usize, what: &str| format!("{what} {}", "x".repeat(n));
    let mut i = insight("inc-huge", 1, &["payments"], 0);
    i.title = long(1000, "a very long title <with> & markup");
    i.services = (0..500)
        .map(|n| Symbol::new(&format!("service-{n:03}")))
        .collect();
    i.impacted = i.services.clone();
    i.impact = (0..200)
        .map(|n| long(300, &format!("impact {n}")))
        .collect();
    i.origin = (0..50)
        .map(|n| OriginCandidate {
            service: Symbol::new(&format!("service-{n:03}")),
            score: 0.5,
            evidence: (0..50)
                .map(|e| long(300, &format!("evidence {e}")))
                .collect(),
            deviation: Some(42.0),
        })
        .collect();
    i.suspect_changes = (0..300)
        .map(|n| ChangeRef {
            ts: Timestamp::from_millis(T0),
            service: Symbol::new("payments"),
            change_kind: Symbol::new("deploy"),
            version: Some(long(100, "v")),
            description: long(500, &format!("change {n}")),
        })
        .collect();
    i.similar = (0..40)
        .map(|n| SimilarIncident {
            id: format!("inc-past-{n}"),
            title: long(400, "past"),
            similarity: 0.5,
            remedy: Some(long(3000, &format!("remedy {n}"))),
            resolved_in_secs: Some(60),
        })
        .collect();
    i.timeline = (0..300)
        .map(|n| entry(n, &long(200, &format!("entry {n}"))))
        .collect();
    i
}
