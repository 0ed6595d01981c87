//! Every construct of the rule language, compiled and run against events with expected
//! output (the fixture runner's engine, in memory).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;

mod common;

use common::{ev, rules, T0};
use kaizen_model::{Event, SignalState};
use kaizen_rules::{run, RuleOutput};

fn log(secs: u64, service: &str, level: &str, message: &str) -> Event {
    ev(
        secs,
        &format!(r#""kind":"log","service":"{service}","level":"{level}","message":"{message}""#),
    )
}

fn metric(secs: u64, service: &str, name: &str, value: f64) -> Event {
    ev(
        secs,
        &format!(r#""kind":"metric","service":"{service}","name":"{name}","value":{value}"#),
    )
}

/// `open rule@secs service summary` / `close rule@secs service` lines.
fn transitions(out: &[RuleOutput]) -> Vec<String> {
    out.iter()
        .map(|o| match o {
            RuleOutput::Signal(s, _) => format!(
                "{} {}@{} {} {}",
                if s.state == SignalState::Open {
                    "open"
                } else {
                    "close"
                },
                s.name.as_str(),
                (s.ts.as_millis() - T0) / 1000,
                s.service.as_str(),
                s.summary
            ),
            RuleOutput::Insight(i) => format!(
                "insight v{} @{} {} {}",
                i.version,
                (i.updated_at.as_millis() - T0) / 1000,
                i.services.first().map_or("", |s| s.as_str()),
                i.title
            ),
        })
        .collect()
}

fn fire(text: &str, events: &[Event]) -> Vec<String> {
    transitions(&run(rules(text), events, 3_600_000))
}

#[test]
fn filter_rule_fires_per_key_and_resolves_after_quiet() {
    let out = fire(
        "CREATE RULE oom SUMMARY '{{service}} OOM: {{message}}' AS SELECT service, message FROM logs WHERE message LIKE '%OOMKilled%';",
        &[log(10, "api", "error", "container OOMKilled"), log(20, "db", "info", "all fine"), log(400, "api", "error", "again OOMKilled")],
    );
    // Open at the first hit; the second hit at 400 s is within... no: 400 > 10 + 300, so the
    // first closes at 310 and a new one opens at 400, closing 300 s after it.
    assert_eq!(
        out,
        [
            "open oom@10 api api OOM: container OOMKilled",
            "close oom@310 api api OOM: container OOMKilled",
            "open oom@400 api api OOM: again OOMKilled",
            "close oom@700 api api OOM: again OOMKilled",
        ]
    );
}

#[test]
fn metric_condition_misses_resolve_like_prometheus_with_for_and_keep() {
    let mut events = Vec::new();
    for i in 0..40u64 {
        // Above 0.9 from 60 s to 299 s, then back to normal.
        let v = if (4..20).contains(&i) { 0.95 } else { 0.5 };
        events.push(metric(i * 15, "db", "disk_used_ratio", v));
        events.push(metric(i * 15, "api", "disk_used_ratio", 0.2));
    }
    let out = fire(
        "CREATE RULE disk AS SELECT service, value FROM metrics WHERE name = 'disk_used_ratio' AND value > 0.9 FOR INTERVAL '2' MINUTE KEEP FIRING FOR INTERVAL '1' MINUTE;",
        &events,
    );
    // Pending from 60 s, fires at 180 s (FOR 2 m); the first sample back to normal is at
    // 300 s, so it resolves at 360 s (KEEP FIRING FOR 1 m). One key per series (service +
    // name + labels), as Prometheus alerts are.
    assert_eq!(
        out,
        [
            "open disk@180 db disk service=db series=disk_used_ratio{} value=0.95",
            "close disk@360 db disk service=db series=disk_used_ratio{} value=0.95"
        ]
    );
}

#[test]
fn tumble_window_with_having_and_an_empty_window_resolving_it() {
    let mut events = Vec::new();
    for s in (120..240).step_by(2) {
        events.push(log(s, "orders", "error", "connection pool exhausted"));
    }
    events.push(log(1000, "orders", "info", "unrelated"));
    let out = fire(
        "CREATE RULE pool SUMMARY '{{service}}: {{errors}} in {{window_start}}–{{window_end}}' AS SELECT service, count(*) AS errors FROM logs WHERE level = 'error' GROUP BY service, TUMBLE(ts, INTERVAL '1' MINUTE) HAVING count(*) > 20;",
        &events,
    );
    assert_eq!(
        out,
        [
            "open pool@180 orders orders: 30 in 00:02:00–00:03:00",
            "close pool@300 orders orders: 30 in 00:02:00–00:03:00"
        ]
    );
}

#[test]
fn hop_window_percentile_over_spans() {
    let mut events = Vec::new();
    for s in 0..600u64 {
        let d = if (300..360).contains(&s) {
            2500.0
        } else {
            100.0
        };
        events.push(ev(
            s,
            &format!(
                r#""kind":"span","service":"checkout","operation":"POST /pay","duration_ms":{d}"#
            ),
        ));
    }
    let out = fire(
        "CREATE RULE slow SUMMARY '{{service}} p99 {{p}} ms' AS SELECT service, round(p99(duration_ms)) AS p FROM spans GROUP BY service, HOP(ts, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE) HAVING p99(duration_ms) > 1000;",
        &events,
    );
    // Windows of 5 min every minute: the first to hold 2.5 s spans in its top 1% closes at
    // 360 s; the last containing them closes at 600 s (window 300–600 s … 360 + 240).
    assert_eq!(
        out.first().map(String::as_str),
        Some("open slow@360 checkout checkout p99 2500 ms"),
        "{out:?}"
    );
    assert!(out.iter().any(|l| l.starts_with("close slow@")), "{out:?}");
}

#[test]
fn session_window_counts_a_burst() {
    let mut events = Vec::new();
    for s in [100, 110, 130, 150, 160] {
        events.push(ev(s, r#""kind":"alert","service":"api","name":"HighLatency","status":"firing","severity":"warning""#));
    }
    events.push(ev(2000, r#""kind":"alert","service":"api","name":"HighLatency","status":"firing","severity":"warning""#));
    let out = fire(
        "CREATE RULE flapping SUMMARY '{{name}} fired {{n}} times' AS SELECT name, count(*) AS n FROM alerts GROUP BY name, SESSION(ts, INTERVAL '2' MINUTE) HAVING count(*) >= 5;",
        &events,
    );
    // The burst's session closes 2 min after its last alert (160 + 120 = 280 s); as a
    // point-in-time result it holds for the quiet period (5 min) and resolves at 580 s.
    assert_eq!(
        out,
        [
            "open flapping@280 api HighLatency fired 5 times",
            "close flapping@580 api HighLatency fired 5 times"
        ]
    );
}

#[test]
fn match_recognize_deploy_then_errors_within() {
    let deploy = |s| {
        ev(
            s,
            r#""kind":"change","service":"cart","change_kind":"deploy","version":"v42","description":"deploy v42""#,
        )
    };
    let err = |s| log(s, "cart", "error", "NullPointerException in CartService");
    let mut events = vec![deploy(0)];
    // Errors too late for the first deploy (WITHIN 10 min)…
    events.extend([err(700), err(710), err(720)]);
    // …and in time for the second.
    events.push(deploy(1000));
    events.push(metric(1010, "cart", "cpu", 0.3));
    events.extend([err(1020), err(1030), err(1040)]);
    let out = fire(
        "CREATE RULE deploy_then_errors SUMMARY '{{version}} then {{errors}} errors' AS SELECT * FROM events MATCH_RECOGNIZE (PARTITION BY service ORDER BY ts MEASURES LAST(D.version) AS version, COUNT(E.*) AS errors PATTERN (D E{3,}) WITHIN INTERVAL '10' MINUTE DEFINE D AS D.kind = 'change', E AS E.kind = 'log' AND E.level = 'error');",
        &events,
    );
    assert_eq!(
        out,
        [
            "open deploy_then_errors@1040 cart v42 then 3 errors",
            "close deploy_then_errors@1340 cart v42 then 3 errors"
        ]
    );
}

#[test]
fn labels_case_coalesce_regex_and_count_distinct() {
    let alert = |s: u64, name: &str, team: Option<&str>| {
        let labels = team.map_or(String::new(), |t| format!(r#","labels":{{"team":"{t}"}}"#));
        ev(
            s,
            &format!(
                r#""kind":"alert","service":"api","name":"{name}","status":"firing","severity":"critical"{labels}"#
            ),
        )
    };
    let events = [
        alert(10, "KubePodCrashLooping", Some("core")),
        alert(20, "HighErrorRate", None),
        alert(30, "HighLatency", Some("core")),
        alert(40, "Watchdog", None),
    ];
    let out = fire(
        "CREATE RULE storm SUMMARY '{{team}}: {{alerts}} alerts ({{kinds}})' AS
         SELECT COALESCE(labels['team'], 'unowned') AS team, count(DISTINCT name) AS alerts,
                CASE WHEN count(*) > 2 THEN 'storm' ELSE 'few' END AS kinds
         FROM alerts WHERE name !~ '^Watchdog$' AND regexp_like(name, '^(Kube|High)')
         GROUP BY COALESCE(labels['team'], 'unowned'), TUMBLE(ts, INTERVAL '1' MINUTE)
         HAVING count(DISTINCT name) >= 2;",
        &events,
    );
    // team=core has two distinct alert names; the unowned group has one (Watchdog excluded).
    assert_eq!(out[0], "open storm@60 api core: 2 alerts (few)");
}

#[test]
fn counter_rate_and_arithmetic() {
    let mut events = Vec::new();
    for i in 0..12u64 {
        // 10 requests/s, then 100/s from 60 s on.
        let total = if i < 6 { i * 100 } else { 600 + (i - 6) * 1000 };
        events.push(metric(i * 10, "api", "http_requests_total", total as f64));
    }
    let out = fire(
        "CREATE RULE surge SUMMARY '{{service}} at {{rps}} req/s' AS SELECT service, round(rate(value), 1) AS rps FROM metrics WHERE name = 'http_requests_total' GROUP BY service, TUMBLE(ts, INTERVAL '1' MINUTE) HAVING rate(value) * 60 > 3000;",
        &events,
    );
    assert_eq!(
        out,
        [
            "open surge@120 api api at 100 req/s",
            "close surge@180 api api at 100 req/s"
        ]
    );
}

#[test]
fn emit_insight_goes_to_the_sinks_with_an_explanation() {
    let set = rules("CREATE RULE cert EMIT INSIGHT SEVERITY 'critical' SUMMARY '{{service}} certificate expires in {{days}} days' AS SELECT service, value AS days FROM metrics WHERE name = 'ssl_cert_expiry_days' AND value < 7;");
    let out = run(
        set,
        &[
            metric(10, "edge", "ssl_cert_expiry_days", 30.0),
            metric(20, "edge", "ssl_cert_expiry_days", 5.0),
            metric(30, "edge", "ssl_cert_expiry_days", 90.0),
        ],
        3_600_000,
    );
    let RuleOutput::Insight(open) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(open.title, "edge certificate expires in 5 days");
    assert_eq!(open.version, 1);
    let why = &open.explain[0];
    assert_eq!(why.rule, "cert");
    assert_eq!(why.source, "test.sql:1");
    assert_eq!(
        why.group,
        [
            ("service".to_string(), "edge".to_string()),
            ("series".to_string(), "ssl_cert_expiry_days{}".to_string())
        ]
    );
    assert!(
        why.events[0].contains("ssl_cert_expiry_days = 5"),
        "{:?}",
        why.events
    );
    let RuleOutput::Insight(closed) = &out[1] else {
        panic!("{out:?}")
    };
    assert_eq!((closed.version, closed.id == open.id), (2, true));
    assert!(closed.resolved_at.is_some());
}

#[test]
fn templates_are_mined_for_rules_that_read_them() {
    let mut events = Vec::new();
    for i in 0..30u64 {
        events.push(log(
            i,
            "auth",
            "error",
            &format!("token {i}abc expired for user {i}"),
        ));
    }
    let out = fire(
        "CREATE RULE tpl SUMMARY '{{service}}: {{template}} x{{n}}' AS SELECT service, template, count(*) AS n FROM logs WHERE level = 'error' GROUP BY service, template, TUMBLE(ts, INTERVAL '1' MINUTE) HAVING count(*) >= 20;",
        &events,
    );
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(
        out[0].contains("token <*> expired for user <*> x"),
        "{out:?}"
    );
}

#[test]
fn signals_stream_rules_read_detector_signals() {
    use kaizen_model::{Severity, Signal, SignalKind, Symbol, Timestamp};
    let set = rules("CREATE RULE many EMIT INSIGHT AS SELECT count(DISTINCT service) AS services FROM signals WHERE severity = 'critical' AND state = 'open' GROUP BY TUMBLE(ts, INTERVAL '5' MINUTE) HAVING count(DISTINCT service) >= 3;");
    let mut filter = kaizen_rules::RuleFilter::new(set.clone());
    let mut eval = kaizen_rules::RuleEvaluator::new(set);
    let mut rows = Vec::new();
    let mut out = Vec::new();
    for (i, svc) in ["a", "b", "c"].iter().enumerate() {
        let ts = Timestamp::from_millis(T0 + i as u64 * 1000);
        let s = Signal {
            ts,
            onset: ts,
            service: Symbol::new(svc),
            kind: SignalKind::Alert,
            state: SignalState::Open,
            key: format!("k{i}"),
            name: Symbol::new("X"),
            severity: Severity::Critical,
            summary: "x".into(),
            value: None,
            strength: 0.0,
        };
        filter.on_signal(&s, &mut rows);
        for r in rows.drain(..) {
            eval.on_row(r, &mut out);
        }
    }
    eval.on_watermark(T0 + 301_000, &mut out);
    assert_eq!(transitions(&out), ["insight v1 @300 a many services=3"]);
}

#[test]
fn interval_join_pairs_rows_within_the_time_bound() {
    let alert = |s: u64| {
        ev(
            s,
            r#""kind":"alert","service":"api","name":"HighErrorRate","status":"firing","severity":"critical""#,
        )
    };
    let events = [
        log(100, "api", "error", "upstream connect error"),
        log(150, "db", "error", "unrelated service"),
        alert(200),
        // 500 s before the next alert: outside the 5-minute bound.
        log(500, "api", "warn", "slow"),
        alert(1000),
    ];
    let out = fire(
        "CREATE RULE alert_with_errors SUMMARY '{{alert}} on {{service}} after: {{message}}'
         AS SELECT a.service, a.name AS alert, l.message
         FROM alerts a JOIN logs l ON l.service = a.service AND l.ts BETWEEN a.ts - INTERVAL '5' MINUTE AND a.ts
         WHERE a.status = 'firing' AND l.level IN ('error', 'warn');",
        &events,
    );
    assert_eq!(
        out,
        [
            "open alert_with_errors@200 api HighErrorRate on api after: upstream connect error",
            "close alert_with_errors@500 api HighErrorRate on api after: upstream connect error",
        ]
    );
}

#[test]
fn join_aggregates_by_its_keys_and_uses_the_service_graph() {
    let mut graph = kaizen_rules::Dependencies::default();
    graph.add("frontend", "api");
    graph.add("api", "db");
    let deploy = ev(
        0,
        r#""kind":"change","service":"db","change_kind":"deploy","version":"v9","description":"deploy""#,
    );
    let mut events = vec![deploy];
    for s in [60, 70, 80] {
        events.push(log(s, "frontend", "error", "500 from api"));
    }
    events.push(log(90, "cache", "error", "not downstream of db"));
    let set = rules(
        "CREATE RULE downstream_errors_after_change SUMMARY '{{errors}} errors downstream of {{changed}}'
         AS SELECT last(c.service) AS changed, count(*) AS errors
         FROM changes c JOIN logs l ON l.ts BETWEEN c.ts AND c.ts + INTERVAL '10' MINUTE
         WHERE upstream_of(c.service, l.service) AND l.level = 'error'
         GROUP BY TUMBLE(ts, INTERVAL '5' MINUTE) HAVING count(*) >= 3;",
    );
    let out = transitions(&kaizen_rules::run_with_graph(
        set,
        &events,
        3_600_000,
        Some(Arc::new(graph)),
    ));
    assert_eq!(
        out.first().map(String::as_str),
        Some("open downstream_errors_after_change@300 db 3 errors downstream of db"),
        "{out:?}"
    );
}

/// An incident version as correlation emits it (only the fields rules read).
fn incident(
    secs: u64,
    id: &str,
    status: &str,
    service: &str,
    opened: u64,
) -> kaizen_model::Insight {
    let json = format!(
        r#"{{"id":"{id}","version":1,"status":"{status}","title":"{service} trouble","severity":"critical",
            "services":["{service}"],"impacted":["frontend"],"origin":[{{"service":"{service}","score":1.0,"evidence":[]}}],
            "suspect_changes":[],"similar":[],"timeline":[],"opened_at":{},"updated_at":{},"resolved_at":null}}"#,
        T0 + opened * 1000,
        T0 + secs * 1000
    );
    serde_json::from_str(&json).expect("a valid insight")
}

#[test]
fn incidents_stream_rules_hold_state_until_the_next_version_and_match_sequences() {
    let set = rules(concat!(
        // A state: fires on time (no further version needed), ends when the incident resolves.
        "CREATE RULE long EMIT INSIGHT SUMMARY '{{name}} open {{impacted_count}}' ",
        "AS SELECT id, name, impacted_count FROM incidents WHERE status <> 'resolved' ",
        "FOR INTERVAL '30' MINUTE;\n",
        // A sequence: the same origin opens an incident again soon after one resolved.
        "CREATE RULE reopened EMIT INSIGHT SUMMARY '{{service}} again' AS SELECT * FROM incidents ",
        "MATCH_RECOGNIZE (PARTITION BY service ORDER BY ts MEASURES LAST(O.id) AS id PATTERN (R O) ",
        "WITHIN INTERVAL '1' HOUR DEFINE R AS R.status = 'resolved', O AS O.status = 'open');"
    ));
    let incidents = [
        incident(0, "inc-a", "open", "cart", 0),
        incident(600, "inc-a", "updated", "cart", 0),
        incident(2400, "inc-a", "resolved", "cart", 0),
        incident(3000, "inc-b", "open", "cart", 3000),
        incident(3300, "inc-b", "resolved", "cart", 3000),
    ];
    let out = kaizen_rules::run_inputs(set, &[], &[], &incidents, 3_600_000, None);
    assert_eq!(
        transitions(&out),
        [
            "insight v1 @1800 cart cart trouble open 1",
            "insight v2 @2400 cart cart trouble open 1",
            "insight v1 @3000 cart cart again",
            "insight v2 @3300 cart cart again",
        ]
    );
}

#[test]
fn a_rule_without_a_service_key_is_about_the_services_with_the_most_rows() {
    // One error on api first, then three on db: the burst is about db, not whoever came first.
    let events = [
        log(1, "api", "error", "upstream failed"),
        log(2, "db", "error", "deadlock"),
        log(3, "db", "error", "deadlock"),
        log(4, "db", "error", "deadlock"),
    ];
    let burst = "AS SELECT count(*) AS errors FROM logs WHERE level = 'error' \
                 GROUP BY TUMBLE(ts, INTERVAL '1' MINUTE) HAVING count(*) >= 4;";
    let out = fire(&format!("CREATE RULE burst {burst}"), &events);
    assert_eq!(
        out,
        [
            "open burst@60 db burst errors=4",
            "close burst@120 db burst errors=4"
        ]
    );
    // An insight lists every service of the window's rows.
    let set = rules(&format!("CREATE RULE burst EMIT INSIGHT {burst}"));
    let out = run(set, &events, 3_600_000);
    let services: Vec<Vec<&str>> = out
        .iter()
        .filter_map(|o| match o {
            RuleOutput::Insight(i) => Some(i.services.iter().map(|s| s.as_str()).collect()),
            RuleOutput::Signal(..) => None,
        })
        .collect();
    assert_eq!(services, [["api", "db"], ["api", "db"]]);
}
