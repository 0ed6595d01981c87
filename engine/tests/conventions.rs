//! Telemetry in the users' dialect opens the right incident: OpenTelemetry gauge names and
//! Prometheus counters with status labels, exported once a minute per service, 30 minutes of
//! normal history, then one outage in a backend that its callers feel too.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use kaizen_connectors::codecs::decode_with;
use kaizen_connectors::{DecodeContext, Format, JsonlSink, JsonlSource};
use kaizen_engine::{replay, EngineConfig, ReplayHooks};
use kaizen_model::{Event, EventBody, Insight, Topology};
use kaizen_operators::{GoldenSignals, LATENCY_P99_MS};

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
    // Stable: an export's lines keep their order.
    lines.sort_by_key(|l| Event::from_json(l).unwrap().ts);
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
        opened <= T0 + (OUTAGE + 3) * 60,
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

/// One OTLP JSON export per service and minute: a cumulative `http.server.request.duration`
/// histogram (seconds) per status code, as the OpenTelemetry SDKs send it.
fn otlp_histogram_exports() -> Vec<String> {
    let bounds = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
    // Cumulative per service and status: count, sum, per-bucket counts.
    let mut totals: Vec<[(u64, f64, [u64; 7]); 2]> = vec![[(0, 0.0, [0; 7]); 2]; SERVICES.len()];
    let mut lines = Vec::new();
    for minute in 0..50 {
        let bad = (OUTAGE..OUTAGE + 20).contains(&minute);
        for (i, (service, outage_ratio)) in SERVICES.iter().enumerate() {
            let requests = 1_000u64;
            let errors = if bad {
                (requests as f64 * outage_ratio) as u64
            } else {
                2
            };
            for (s, n) in [(0, requests - errors), (1, errors)] {
                let t = &mut totals[i][s];
                t.0 += n;
                // Fast before the outage; during it, 5 % of requests take 1–2.5 s.
                let slow = if bad { n / 20 } else { 0 };
                t.2[0] += n - slow;
                t.2[5] += slow;
                t.1 += (n - slow) as f64 * 0.03 + slow as f64 * 1.8;
            }
            let point = |s: usize, code: u16| {
                let t = &totals[i][s];
                let counts: Vec<String> = t.2.iter().map(|c| format!("\"{c}\"")).collect();
                format!(
                    r#"{{"attributes":[{{"key":"http.response.status_code","value":{{"intValue":"{code}"}}}},{{"key":"http.route","value":{{"stringValue":"/api"}}}}],"startTimeUnixNano":"{start}","timeUnixNano":"{now}","count":"{count}","sum":{sum},"bucketCounts":[{counts}],"explicitBounds":{bounds:?}}}"#,
                    start = T0 * 1_000_000_000,
                    now = (T0 + minute * 60 + jitter(service)) * 1_000_000_000,
                    count = t.0,
                    sum = t.1,
                    counts = counts.join(","),
                )
            };
            let export = format!(
                r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}},{{"key":"service.instance.id","value":{{"stringValue":"{service}-1"}}}},{{"key":"service.version","value":{{"stringValue":"{version}"}}}}]}},"scopeMetrics":[{{"metrics":[{{"name":"http.server.request.duration","unit":"s","histogram":{{"aggregationTemporality":2,"dataPoints":[{},{}]}}}}]}}]}}]}}"#,
                point(0, 200),
                point(1, 500),
                // payments ships a release a minute before its outage; nobody sends a deploy event.
                version = if *service == "payments" && minute + 1 >= OUTAGE {
                    "1.5.0"
                } else {
                    "1.4.9"
                },
            );
            let mut events = Vec::new();
            let ctx = DecodeContext {
                topic: None,
                received: None,
            };
            decode_with(Format::OtlpJson, export.as_bytes(), &ctx, &mut events).unwrap();
            lines.extend(events.iter().map(|e| e.to_json()));
        }
    }
    lines
}

#[test]
fn an_otel_cumulative_histogram_gives_error_ratio_and_p99_per_export() {
    let lines = otlp_histogram_exports();
    assert!(lines
        .iter()
        .any(|l| l.contains("http.server.request.duration_bucket")));
    let (insights, one) = run(lines.clone(), 1);
    assert_one_incident_from_payments(&insights, "OTLP histograms");
    // The release read from `service.version` is the incident's suspect change.
    let last = insights.last().unwrap();
    let suspects: Vec<(&str, &str, &str)> = last
        .suspect_changes
        .iter()
        .map(|c| {
            (
                c.service.as_str(),
                c.change_kind.as_str(),
                c.description.as_str(),
            )
        })
        .collect();
    assert_eq!(
        suspects,
        [(
            "payments",
            "deploy",
            "payments reports version 1.5.0 (was 1.4.9)"
        )],
        "{last:#?}"
    );
    // The p99 the detectors see is each export's own (1–2.5 s during the outage), not the
    // p99 since the process started, which stays under 50 ms for ten minutes of outage.
    let mut golden = GoldenSignals::default();
    let mut derived = Vec::new();
    for l in &lines {
        let e = Event::from_json(l).unwrap();
        golden.on_event(&e);
        golden.on_watermark(e.ts, &mut derived);
    }
    let p99: Vec<(u64, f64)> = derived
        .iter()
        .filter(|e| e.service.as_str() == "payments")
        .filter_map(|e| match &e.body {
            EventBody::Metric(m) if m.name.as_str() == LATENCY_P99_MS => {
                Some(((e.ts.as_millis() / 1000 - T0) / 60, m.value))
            }
            _ => None,
        })
        .collect();
    assert!(p99.len() >= 45, "{p99:?}");
    for (minute, ms) in &p99 {
        let bad = (OUTAGE..OUTAGE + 20).contains(minute);
        assert!(
            if bad {
                (1000.0..=2500.0).contains(ms)
            } else {
                *ms <= 50.0
            },
            "minute {minute}: p99 {ms} ms"
        );
    }
    let (_, four) = run(lines, 4);
    assert_eq!(one, four, "1 and 4 workers differ");
}

/// Only one signal goes wrong after 30 minutes of one-minute history, as on a new install.
fn cold_start(bad: impl Fn(u64, &str) -> Vec<String>) -> Vec<Insight> {
    let mut lines = Vec::new();
    for minute in 0..45 {
        for (service, _) in SERVICES {
            lines.push(gauge(minute, service, "http.server.error_ratio", 0.002));
            lines.extend(bad(minute, service));
        }
    }
    run(lines, 1).0
}

fn opened_within_three_minutes(insights: &[Insight], service: &str, what: &str) {
    let firsts = incidents(insights);
    assert_eq!(firsts.len(), 1, "{what}: {firsts:#?}");
    let opened = firsts[0].opened_at.as_millis() / 1000;
    assert!(
        opened <= T0 + (OUTAGE + 3) * 60,
        "{what}: opened at {opened}"
    );
    assert!(
        firsts[0].services.iter().any(|s| s.as_str() == service),
        "{what}: {firsts:#?}"
    );
}

#[test]
fn cold_start_a_p99_five_times_anything_seen_opens_an_incident_within_three_minutes() {
    let insights = cold_start(|minute, service| {
        let slow = service == "payments" && minute >= OUTAGE;
        let p99 = if slow {
            700.0
        } else {
            110.0 + (minute % 4) as f64 * 6.0
        };
        vec![gauge(
            minute,
            service,
            "http.server.request.duration.p99_ms",
            p99,
        )]
    });
    opened_within_three_minutes(&insights, "payments", "p99 × 6");
    let text = serde_json::to_string(&insights).unwrap();
    assert!(text.contains("young baseline"), "{text}");
}

#[test]
fn cold_start_a_restart_loop_opens_an_incident_within_three_minutes() {
    let insights = cold_start(|minute, service| {
        // payments' pod restarts every minute from the outage on (CrashLoopBackOff).
        let restarts = if service == "payments" {
            minute.saturating_sub(OUTAGE - 1)
        } else {
            0
        };
        vec![format!(
            r#"{{"ts":{},"kind":"metric","service":"{service}","name":"kube_pod_container_status_restarts_total","value":{restarts},"metric_kind":"counter","labels":{{"container":"app","pod":"{service}-0"}}}}"#,
            T0 + minute * 60 + jitter(service)
        )]
    });
    opened_within_three_minutes(&insights, "payments", "restart loop");
}
