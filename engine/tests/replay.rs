//! The engine end to end on small hand-written inputs: determinism, event time, bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::time::Duration;

use kaizen_connectors::{DecodeFailure, JsonlSink, JsonlSource};
use kaizen_engine::{replay, EngineConfig, EngineError, ReplayHooks, ReplayReport};
use kaizen_model::{IncidentStatus, Insight, Topology};

const T0: u64 = 1_767_600_000; // 2026-01-05T08:00:00Z

fn topology() -> Topology {
    Topology::from_json(
        r#"{"services":[
        {"name":"web","user_facing":true,"depends_on":["api"]},
        {"name":"api","depends_on":["db"]},
        {"name":"db"},
        {"name":"batch","depends_on":["queue"]},
        {"name":"queue"}]}"#,
    )
    .unwrap()
}

fn metric(t: u64, service: &str, name: &str, value: f64) -> String {
    format!(
        r#"{{"ts":{},"kind":"metric","service":"{service}","name":"{name}","value":{value}}}"#,
        T0 + t
    )
}

fn alert(t: u64, service: &str, name: &str, status: &str) -> String {
    format!(
        r#"{{"ts":{},"kind":"alert","service":"{service}","name":"{name}","severity":"critical","status":"{status}"}}"#,
        T0 + t
    )
}

/// Two incidents: a db problem cascading to api and web, and later an unrelated queue problem.
fn scenario() -> Vec<String> {
    let mut lines = vec![format!(
        r#"{{"ts":{},"kind":"change","service":"db","change_kind":"deploy","version":"v2","description":"db v2"}}"#,
        T0 + 50
    )];
    for i in 0..120u64 {
        let t = i * 10;
        let bad_db = (100..400).contains(&t);
        let bad_api = (140..420).contains(&t);
        let bad_web = (170..430).contains(&t);
        let bad_queue = (800..1000).contains(&t);
        lines.push(metric(
            t,
            "db",
            "saturation",
            if bad_db { 0.99 } else { 0.4 },
        ));
        lines.push(metric(
            t + 1,
            "api",
            "http_error_ratio",
            if bad_api { 0.2 } else { 0.01 },
        ));
        lines.push(metric(
            t + 2,
            "web",
            "http_error_ratio",
            if bad_web { 0.1 } else { 0.01 },
        ));
        lines.push(metric(
            t + 3,
            "queue",
            "saturation",
            if bad_queue { 0.99 } else { 0.3 },
        ));
        if bad_web && t % 60 == 0 {
            lines.push(alert(t + 4, "web", "HighErrorRate", "firing"));
        }
        lines.push(format!(
            r#"{{"ts":{},"kind":"span","service":"web","peer":"api","operation":"GET /","duration_ms":12.5}}"#,
            T0 + t + 5
        ));
    }
    lines.push(alert(450, "web", "HighErrorRate", "resolved"));
    lines.sort_by_key(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["ts"].as_u64());
    lines
}

struct Run {
    bytes: Vec<u8>,
    report: ReplayReport,
    rejected: Vec<DecodeFailure>,
    late: Vec<DecodeFailure>,
}

fn run(lines: &[String], workers: usize, lateness: Duration) -> Result<Run, EngineError> {
    let input = lines.join("\n") + "\n";
    let config = EngineConfig {
        workers,
        allowed_lateness: lateness,
        topology: topology(),
        ..EngineConfig::default()
    };
    let mut sink = JsonlSink::new(Vec::new());
    let mut rejected = Vec::new();
    let mut late = Vec::new();
    let mut on_failure = |f: &DecodeFailure| rejected.push(f.clone());
    let mut on_late = |f: &DecodeFailure| late.push(f.clone());
    let report = replay(
        JsonlSource::from_reader("test.jsonl", std::io::Cursor::new(input.into_bytes())),
        &config,
        &mut sink,
        ReplayHooks {
            on_decode_failure: Some(&mut on_failure),
            on_late: Some(&mut on_late),
            on_progress: None,
            on_history: None,
        },
    )?;
    Ok(Run {
        bytes: sink.into_inner(),
        report,
        rejected,
        late,
    })
}

fn insights(bytes: &[u8]) -> Vec<Insight> {
    std::str::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn cascade_and_unrelated_fault_become_two_incidents_with_the_right_origins() {
    let out = run(&scenario(), 1, Duration::from_secs(30)).unwrap();
    let all = insights(&out.bytes);
    let mut ids: Vec<&str> = all.iter().map(|i| i.id.as_str()).collect();
    ids.dedup();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2, "{all:#?}");
    let first = all
        .iter()
        .rev()
        .find(|i| i.services.iter().any(|s| s.as_str() == "web"))
        .unwrap();
    assert_eq!(first.status, IncidentStatus::Resolved);
    assert_eq!(first.origin[0].service.as_str(), "db", "{first:#?}");
    assert_eq!(first.impacted.len(), 1);
    assert!(
        !first.suspect_changes.is_empty(),
        "the db deploy is a suspect"
    );
    let second = all
        .iter()
        .rev()
        .find(|i| i.services.iter().any(|s| s.as_str() == "queue"))
        .unwrap();
    assert_eq!(second.services.len(), 1);
    assert_eq!(out.report.events as usize, scenario().len());
    assert_eq!(out.report.late_events, 0);
}

#[test]
fn output_is_identical_for_one_and_four_workers_and_across_runs() {
    let lines = scenario();
    let one = run(&lines, 1, Duration::from_secs(30)).unwrap().bytes;
    let four = run(&lines, 4, Duration::from_secs(30)).unwrap().bytes;
    let again = run(&lines, 4, Duration::from_secs(30)).unwrap().bytes;
    assert!(!one.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&one),
        String::from_utf8_lossy(&four)
    );
    assert_eq!(four, again);
}

#[test]
fn out_of_order_input_within_the_lateness_gives_the_same_insights() {
    let ordered = scenario();
    // Swap neighbours in blocks: every event stays within 20 s of its place.
    let mut shuffled = ordered.clone();
    for chunk in shuffled.chunks_mut(6) {
        chunk.reverse();
    }
    assert_ne!(shuffled, ordered);
    let a = run(&ordered, 2, Duration::from_secs(60)).unwrap();
    let b = run(&shuffled, 2, Duration::from_secs(60)).unwrap();
    assert_eq!(b.report.late_events, 0);
    assert_eq!(a.bytes, b.bytes);
}

#[test]
fn events_later_than_the_lateness_are_counted_and_reported() {
    let mut lines = scenario();
    let late_line = metric(5, "db", "saturation", 0.99);
    let at = lines.len() / 2;
    lines.insert(at, late_line.clone());
    let out = run(&lines, 1, Duration::from_secs(30)).unwrap();
    assert_eq!(out.report.late_events, 1);
    assert_eq!(out.late.len(), 1);
    assert_eq!(out.late[0].source, "test.jsonl");
    assert_eq!(out.late[0].line as usize, at + 1);
    assert_eq!(
        out.late[0].raw,
        serde_json::from_str::<kaizen_model::Event>(&late_line)
            .unwrap()
            .to_json()
    );
    assert!(
        out.late[0].reason.starts_with("late:"),
        "{}",
        out.late[0].reason
    );
}

#[test]
fn malformed_lines_are_reported_with_their_line_and_skipped() {
    let mut lines = scenario();
    lines.insert(3, "{not json".to_owned());
    lines.insert(
        10,
        r#"{"ts":"yesterday","kind":"metric","service":"db","name":"x","value":1}"#.to_owned(),
    );
    lines.insert(
        20,
        r#"{"ts":1767600000,"kind":"weather","service":"db"}"#.to_owned(),
    );
    let out = run(&lines, 2, Duration::from_secs(30)).unwrap();
    assert_eq!(out.report.decode_failures, 3);
    let at: Vec<u64> = out.rejected.iter().map(|f| f.line).collect();
    assert_eq!(at, [4, 11, 21]);
    assert!(
        out.rejected[1].reason.contains("RFC 3339"),
        "{}",
        out.rejected[1].reason
    );
    assert!(
        out.rejected[2].reason.contains("unknown kind"),
        "{}",
        out.rejected[2].reason
    );
    // The good lines still produce the same insights.
    assert_eq!(
        out.bytes,
        run(&scenario(), 1, Duration::from_secs(30)).unwrap().bytes
    );
}

#[test]
fn empty_input_is_an_error() {
    match run(&[], 1, Duration::from_secs(30)) {
        Err(EngineError::EmptyInput) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("an empty input must be an error"),
    }
}

#[test]
fn workers_sharing_a_file_agree_on_late_events_and_output() {
    let mut lines = scenario();
    let at = lines.len() / 2;
    lines.insert(at, metric(5, "db", "saturation", 0.99));
    lines.insert(at + 7, "{broken".to_owned());
    let dir = std::env::temp_dir().join(format!("kaizen-share-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("in.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let run_files = |workers: usize| {
        let config = EngineConfig {
            workers,
            topology: topology(),
            ..EngineConfig::default()
        };
        let mut sink = JsonlSink::new(Vec::new());
        let report = replay(
            JsonlSource::new(
                kaizen_connectors::expand_inputs(std::slice::from_ref(&path)).unwrap(),
            ),
            &config,
            &mut sink,
            ReplayHooks::default(),
        )
        .unwrap();
        (
            sink.into_inner(),
            report.events,
            report.late_events,
            report.decode_failures,
        )
    };
    let one = run_files(1);
    let three = run_files(3);
    assert_eq!((one.1, one.2, one.3), (lines.len() as u64 - 2, 1, 1));
    assert_eq!((three.1, three.2, three.3), (one.1, one.2, one.3));
    assert!(one.0 == three.0, "insights differ between 1 and 3 workers");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two services whose only link is calls seen in spans, both alerting at once `gap` after the
/// last span: one incident while the learned edge lives, two once it has aged out.
fn incidents_after_calls_stop(gap: u64, ttl: Duration) -> usize {
    let mut lines: Vec<String> = (0..10u64)
        .map(|i| {
            format!(
                r#"{{"ts":{},"kind":"span","service":"mobile","peer":"ledger","operation":"POST /pay","duration_ms":30}}"#,
                T0 + i * 10
            )
        })
        .collect();
    for (t, status) in [(gap, "firing"), (gap + 600, "resolved")] {
        lines.push(alert(90 + t, "mobile", "HighErrorRate", status));
        lines.push(alert(90 + t, "ledger", "HighLatency", status));
    }
    let config = EngineConfig {
        span_edge_ttl: ttl,
        ..EngineConfig::default()
    };
    let mut sink = kaizen_connectors::LatestInsights::default();
    replay(
        JsonlSource::from_reader(
            "t",
            std::io::Cursor::new((lines.join("\n") + "\n").into_bytes()),
        ),
        &config,
        &mut sink,
        ReplayHooks::default(),
    )
    .unwrap();
    sink.by_id().len()
}

#[test]
fn edges_learned_from_spans_age_out_when_the_calls_stop() {
    let hour = Duration::from_secs(3600);
    assert_eq!(incidents_after_calls_stop(1800, hour), 1, "edge alive");
    assert_eq!(incidents_after_calls_stop(7200, hour), 2, "edge aged out");
    assert_eq!(incidents_after_calls_stop(7200, 3 * hour), 1, "longer ttl");
}

/// `frontend` and `checkout` alerting together, under `topology`: how many incidents.
fn incidents_under(topology: Topology) -> usize {
    let lines: Vec<String> = [(0, "firing"), (600, "resolved")]
        .into_iter()
        .flat_map(|(t, status)| {
            [
                alert(t, "checkout", "HighErrorRate", status),
                alert(t + 40, "frontend", "HighErrorRate", status),
            ]
        })
        .collect();
    let config = EngineConfig {
        topology,
        ..EngineConfig::default()
    };
    let mut sink = kaizen_connectors::LatestInsights::default();
    replay(
        JsonlSource::from_reader(
            "t",
            std::io::Cursor::new((lines.join("\n") + "\n").into_bytes()),
        ),
        &config,
        &mut sink,
        ReplayHooks::default(),
    )
    .unwrap();
    sink.by_id().len()
}

/// The measured bug: a topology's top-level `edges` list was ignored, so every service became
/// its own incident. Edges, `depends_on` and a Backstage catalog now give the same graph.
#[test]
fn every_topology_shape_links_the_services() {
    let services = r#"{"name":"frontend","user_facing":true},{"name":"checkout"}"#;
    let unlinked = Topology::from_json(&format!(r#"{{"services":[{services}]}}"#)).unwrap();
    assert_eq!(incidents_under(unlinked), 2);
    let edges = Topology::from_json(&format!(
        r#"{{"services":[{services}],"edges":[{{"from":"frontend","to":"checkout"}}]}}"#
    ))
    .unwrap();
    assert_eq!(incidents_under(edges), 1);
    let depends_on = Topology::from_json(
        r#"{"services":[{"name":"frontend","user_facing":true,"depends_on":["checkout"]}]}"#,
    )
    .unwrap();
    assert_eq!(incidents_under(depends_on), 1);
    let backstage = Topology::from_backstage_yaml(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: frontend}\n\
         spec: {type: website, dependsOn: [component:default/checkout]}\n",
    )
    .unwrap();
    assert_eq!(incidents_under(backstage), 1);
}
