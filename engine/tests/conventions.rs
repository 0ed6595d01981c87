//! Telemetry in the users' dialect opens the right incident: OpenTelemetry gauge names and
//! Prometheus counters with status labels, exported once a minute per service, 30 minutes of
//! normal history, then one outage in a backend that its callers feel too.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use kaizen_connectors::{JsonlSink, JsonlSource};
use kaizen_engine::{replay, EngineConfig, ReplayHooks};
use kaizen_model::{Insight, Topology};

const T0: u64 = 1_767_600_000; // 2026-01-05T08:00:00Z
const OUTAGE: u64 = 30; // minutes of normal history before it
const SERVICES: [(&str, f64); 3] = [("frontend", 0.15), ("checkout", 0.15), ("payments", 0.30)];

fn topology() -> Topology {
    Topology::from_json(
        r#"{"services":[{"name":"frontend","user_facing":true}],
            "edges":[{"from":"frontend","to":"checkout"},{"from":"checkout","to":"payments"}]}"#,
    )
    .unwrap()
}

fn gauge(minute: u64, service: &str, name: &str, value: f64) -> String {
    format!(
        r#"{{"ts":{},"kind":"metric","service":"{service}","name":"{name}","value":{value}}}"#,
        T0 + minute * 60 + jitter(service)
    )
}

/// Services export at their own second of the minute.
fn jitter(service: &str) -> u64 {
    service.bytes().map(u64::from).sum::<u64>() % 50
}

fn counter(minute: u64, service: &str, code: &str, value: f64) -> String {
    format!(
        r#"{{"ts":{},"kind":"metric","service":"{service}","name":"http_requests_total","value":{value},"metric_kind":"counter","labels":{{"code":"{code}","instance":"{service}-0"}}}}"#,
        T0 + minute * 60 + jitter(service)
    )
}

fn hikari_errors(minute: u64) -> Vec<String> {
    (0..70)
        .map(|i| {
            format!(
                r#"{{"ts":{},"kind":"log","service":"payments","level":"error","message":"HikariPool-1 - Connection is not available, request timed out after 30000ms (total=10, active=10, idle=0, waiting={})"}}"#,
                T0 + minute * 60 + i * 60 / 70,
                i % 7
            )
        })
        .collect()
}

/// 50 minutes: normal for `OUTAGE` minutes, then 20 minutes of outage.
fn otel_gauges() -> Vec<String> {
    let mut lines = Vec::new();
    for minute in 0..50 {
        let bad = (OUTAGE..OUTAGE + 20).contains(&minute);
        for (service, outage_ratio) in SERVICES {
            let wiggle = (minute % 5) as f64 * 0.0002;
            let ratio = if bad { outage_ratio } else { 0.002 + wiggle };
            lines.push(gauge(minute, service, "http.server.error_ratio", ratio));
            let p99 = if bad {
                900.0
            } else {
                120.0 + (minute % 3) as f64 * 5.0
            };
            lines.push(gauge(
                minute,
                service,
                "http.server.request.duration.p99_ms",
                p99,
            ));
            let rps = 40.0 + (minute % 4) as f64;
            lines.push(gauge(
                minute,
                service,
                "http.server.requests_per_second",
                rps,
            ));
        }
        if bad {
            lines.extend(hikari_errors(minute));
        }
    }
    lines
}

fn prometheus_counters() -> Vec<String> {
    let mut lines = Vec::new();
    let mut ok = [5_000.0; 3];
    let mut err = [3.0; 3];
    for minute in 0..50 {
        let bad = (OUTAGE..OUTAGE + 20).contains(&minute);
        for (i, (service, outage_ratio)) in SERVICES.iter().enumerate() {
            let requests = 2_400.0;
            let ratio = if bad { *outage_ratio } else { 0.002 };
            err[i] += (requests * ratio).round();
            ok[i] += requests - (requests * ratio).round();
            // checkout restarts at minute 20: its counters start over.
            if *service == "checkout" && minute == 20 {
                ok[i] = 100.0;
                err[i] = 0.0;
            }
            lines.push(counter(minute, service, "200", ok[i]));
            lines.push(counter(minute, service, "500", err[i]));
        }
    }
    lines
}

fn run(mut lines: Vec<String>, workers: usize) -> (Vec<Insight>, Vec<u8>) {
    lines.sort_by_key(|l| {
        let ts: &str = l
            .split("\"ts\":")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap();
        ts.parse::<u64>().unwrap()
    });
    let input = lines.join("\n") + "\n";
    let config = EngineConfig {
        workers,
        topology: topology(),
        ..EngineConfig::default()
    };
    let mut sink = JsonlSink::new(Vec::new());
    replay(
        JsonlSource::from_reader("test.jsonl", std::io::Cursor::new(input.into_bytes())),
        &config,
        &mut sink,
        ReplayHooks::default(),
    )
    .unwrap();
    let bytes = sink.into_inner();
    let insights = std::str::from_utf8(&bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (insights, bytes)
}

/// The incidents (by id) and, for each, its first version.
fn incidents(insights: &[Insight]) -> Vec<&Insight> {
    let mut firsts: Vec<&Insight> = Vec::new();
    for i in insights {
        if !firsts.iter().any(|f| f.id == i.id) {
            firsts.push(i);
        }
    }
    firsts
}

fn assert_one_incident_from_payments(insights: &[Insight], what: &str) {
    let firsts = incidents(insights);
    assert_eq!(firsts.len(), 1, "{what}: {firsts:#?}");
    let first = firsts[0];
    let opened = first.opened_at.as_millis() / 1000;
    assert!(
        opened <= T0 + (OUTAGE + 3) * 60 + 60,
        "{what}: opened {} s after the outage began",
        opened as i64 - (T0 + OUTAGE * 60) as i64
    );
    let last = insights.iter().rev().find(|i| i.id == first.id).unwrap();
    assert_eq!(
        last.origin[0].service.as_str(),
        "payments",
        "{what}: {last:#?}"
    );
    assert!(
        last.services.iter().any(|s| s.as_str() == "frontend"),
        "{what}: {:?}",
        last.services
    );
}

#[test]
fn otel_gauge_names_with_short_history_open_one_incident_at_the_backend() {
    let (insights, one) = run(otel_gauges(), 1);
    assert_one_incident_from_payments(&insights, "OTel gauges");
    let (_, four) = run(otel_gauges(), 4);
    assert_eq!(one, four, "1 and 4 workers differ");
}

#[test]
fn prometheus_counters_with_a_reset_open_one_incident_at_the_backend() {
    let (insights, one) = run(prometheus_counters(), 1);
    assert_one_incident_from_payments(&insights, "Prometheus counters");
    let (_, two) = run(prometheus_counters(), 2);
    assert_eq!(one, two, "1 and 2 workers differ");
}
