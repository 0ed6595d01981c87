use super::*;

const T0: u64 = 1_767_600_000_000;
const MINUTE: u64 = 60_000;

fn metric(minute: u64, service: &str, name: &str, value: f64, kind: &str, labels: &str) -> Event {
    let line = format!(
        r#"{{"ts":{},"kind":"metric","service":"{service}","name":"{name}","value":{value},"metric_kind":"{kind}","labels":{{{labels}}}}}"#,
        (T0 + minute * MINUTE) as f64 / 1000.0
    );
    Event::from_json(&line).unwrap()
}

/// Feeds `events`, then a watermark past all of them; the derived samples as
/// (minute, service, name, value).
fn derive(g: &mut GoldenSignals, events: &[Event]) -> Vec<(u64, String, String, f64)> {
    let mut out = Vec::new();
    let mut renamed = Vec::new();
    for e in events {
        if let Some(r) = g.on_event(e) {
            renamed.push(r);
        }
        g.on_watermark(e.ts, &mut out);
    }
    let last = events.iter().map(|e| e.ts.as_millis()).max().unwrap_or(0);
    g.on_watermark(Timestamp::from_millis(last + MINUTE), &mut out);
    out.extend(renamed);
    out.iter()
        .map(|e| {
            let EventBody::Metric(m) = &e.body else {
                panic!("not a metric")
            };
            (
                (e.ts.as_millis() - T0) / MINUTE,
                e.service.to_string(),
                m.name.to_string(),
                m.value,
            )
        })
        .collect()
}

fn values(out: &[(u64, String, String, f64)], name: &str) -> Vec<(u64, f64)> {
    out.iter()
        .filter(|(_, _, n, _)| n == name)
        .map(|(m, _, _, v)| (*m, (v * 1e6).round() / 1e6))
        .collect()
}

#[test]
fn otel_ratio_rate_and_p99_gauges_are_renamed_and_scaled() {
    let mut g = GoldenSignals::default();
    let events = [
        metric(0, "api", "http.server.error_ratio", 0.3, "gauge", ""),
        metric(
            0,
            "api",
            "http.server.requests_per_second",
            12.0,
            "gauge",
            "",
        ),
        metric(
            0,
            "api",
            "http.server.request.duration.p99_ms",
            250.0,
            "gauge",
            "",
        ),
        metric(0, "api", "api_latency_p99_seconds", 0.25, "gauge", ""),
        metric(0, "api", "checkout_error_percent", 7.0, "gauge", ""),
        metric(
            0,
            "api",
            "http_server_requests_seconds",
            0.4,
            "gauge",
            r#""quantile":"0.99""#,
        ),
        metric(0, "api", "system.cpu.utilization", 0.97, "gauge", ""),
        // Parts of a whole and client views are not the service's golden signals.
        metric(
            0,
            "api",
            "system.cpu.utilization",
            0.9,
            "gauge",
            r#""state":"idle""#,
        ),
        metric(0, "api", "http.client.error_ratio", 0.5, "gauge", ""),
        // Already kaizen's own name: nothing to do.
        metric(0, "api", "http_error_ratio", 0.01, "gauge", ""),
    ];
    let out = derive(&mut g, &events);
    assert_eq!(values(&out, ERROR_RATIO), [(0, 0.3), (0, 0.07)]);
    assert_eq!(values(&out, REQUEST_RATE), [(0, 12.0)]);
    assert_eq!(
        values(&out, LATENCY_P99_MS),
        [(0, 250.0), (0, 250.0), (0, 400.0)]
    );
    assert_eq!(values(&out, "cpu_utilization"), [(0, 0.97)]);
    assert_eq!(out.len(), 7, "{out:?}");
}

#[test]
fn a_prometheus_counter_with_a_status_label_gives_rate_and_error_ratio_across_a_reset() {
    let mut g = GoldenSignals::default();
    let mut events = Vec::new();
    // 600 requests a minute; errors start at minute 3; the pod restarts at minute 5.
    let mut ok = 1000.0;
    let mut err = 0.0;
    for minute in 0..8 {
        if minute == 5 {
            ok = 0.0;
            err = 0.0;
        }
        ok += if minute >= 3 { 420.0 } else { 600.0 };
        if minute >= 3 {
            err += 180.0;
        }
        let total = "counter";
        events.push(metric(
            minute,
            "api",
            "http_requests_total",
            ok,
            total,
            r#""code":"200""#,
        ));
        if minute >= 3 {
            events.push(metric(
                minute,
                "api",
                "http_requests_total",
                err,
                total,
                r#""code":"503""#,
            ));
        }
    }
    let out = derive(&mut g, &events);
    // Minute 0 is the reference; the 5xx series appears at minute 3 and counts from zero.
    assert_eq!(
        values(&out, ERROR_RATIO),
        [
            (1, 0.0),
            (2, 0.0),
            (3, 0.3),
            (4, 0.3),
            (5, 0.3),
            (6, 0.3),
            (7, 0.3)
        ]
    );
    assert_eq!(values(&out, REQUEST_RATE)[0], (1, 10.0));
    assert_eq!(values(&out, REQUEST_RATE)[3], (4, 10.0));
    // Across the reset, the counters' new values are what they counted.
    assert_eq!(values(&out, REQUEST_RATE)[4], (5, 10.0));
}

#[test]
fn otel_histogram_counts_delta_or_cumulative_give_the_error_ratio() {
    for (kind, cumulative) in [("counter", true), ("gauge", false)] {
        let mut g = GoldenSignals::default();
        let mut events = Vec::new();
        let (mut ok, mut bad) = (0.0, 0.0);
        for minute in 0..5 {
            let (new_ok, new_bad) = if minute >= 2 {
                (80.0, 20.0)
            } else {
                (100.0, 0.0)
            };
            ok = if cumulative { ok + new_ok } else { new_ok };
            bad = if cumulative { bad + new_bad } else { new_bad };
            let name = "http.server.request.duration_count";
            let ok_labels = r#""http.response.status_code":"200","http.route":"/pay""#;
            let bad_labels = r#""http.response.status_code":"500","http.route":"/pay""#;
            events.push(metric(minute, "pay", name, ok, kind, ok_labels));
            events.push(metric(minute, "pay", name, bad, kind, bad_labels));
        }
        let out = derive(&mut g, &events);
        let ratios = values(&out, ERROR_RATIO);
        let tail: Vec<f64> = ratios.iter().rev().take(3).map(|(_, v)| *v).collect();
        assert_eq!(tail, [0.2, 0.2, 0.2], "{kind}: {ratios:?}");
        assert!(ratios.iter().any(|(_, v)| *v == 0.0), "{kind}: {ratios:?}");
    }
}

#[test]
fn grpc_and_micrometer_outcomes_and_error_counters() {
    let mut g = GoldenSignals::default();
    let mut events = Vec::new();
    for minute in 0..3 {
        let n = minute as f64;
        events.push(metric(
            minute,
            "rpc",
            "grpc_server_handled_total",
            100.0 * n,
            "counter",
            r#""grpc_code":"OK""#,
        ));
        events.push(metric(
            minute,
            "rpc",
            "grpc_server_handled_total",
            25.0 * n,
            "counter",
            r#""grpc_code":"Unavailable""#,
        ));
        events.push(metric(
            minute,
            "rpc",
            "grpc_server_handled_total",
            25.0 * n,
            "counter",
            r#""grpc_code":"NotFound""#,
        ));
        events.push(metric(
            minute,
            "jvm",
            "http_server_requests_seconds_count",
            90.0 * n,
            "counter",
            r#""status":"200","outcome":"SUCCESS""#,
        ));
        events.push(metric(
            minute,
            "jvm",
            "http_server_requests_seconds_count",
            10.0 * n,
            "counter",
            r#""status":"500","outcome":"SERVER_ERROR""#,
        ));
        events.push(metric(
            minute,
            "legacy",
            "app_requests_total",
            200.0 * n,
            "counter",
            "",
        ));
        events.push(metric(
            minute,
            "legacy",
            "app_errors_total",
            50.0 * n,
            "counter",
            "",
        ));
    }
    let out = derive(&mut g, &events);
    let ratio = |svc: &str| -> Vec<f64> {
        out.iter()
            .filter(|(_, s, n, _)| s == svc && n == ERROR_RATIO)
            .map(|(_, _, _, v)| *v)
            .collect()
    };
    assert_eq!(ratio("rpc"), [1.0 / 6.0; 2]);
    assert_eq!(ratio("jvm"), [0.1; 2]);
    assert_eq!(ratio("legacy"), [0.25; 2]);
}

#[test]
fn latency_buckets_give_the_p99_of_each_exports_new_observations() {
    let mut g = GoldenSignals::default();
    let mut events = Vec::new();
    let bounds = ["0.05", "0.1", "0.25", "0.5", "1.0", "+Inf"];
    let mut cumulative = [0.0; 6];
    for minute in 0..4 {
        // 100 requests a minute: fast (≤ 50 ms) until minute 2, then 5 % take 0.5–1 s.
        let slow = if minute >= 2 { 5.0 } else { 0.0 };
        let per_bucket = [
            100.0 - slow,
            100.0 - slow,
            100.0 - slow,
            100.0 - slow,
            100.0,
            100.0,
        ];
        for (i, le) in bounds.iter().enumerate() {
            cumulative[i] += per_bucket[i];
            let labels = format!(r#""le":"{le}","method":"GET""#);
            events.push(metric(
                minute,
                "web",
                "http_request_duration_seconds_bucket",
                cumulative[i],
                "counter",
                &labels,
            ));
        }
    }
    let out = derive(&mut g, &events);
    let p99 = values(&out, LATENCY_P99_MS);
    assert_eq!(p99.len(), 3, "{p99:?}");
    // Fast minutes: p99 inside the first bucket, 0–50 ms.
    assert!(p99[0].1 > 0.0 && p99[0].1 <= 50.0, "{p99:?}");
    // Slow minutes: rank 99 of 100 falls in the 0.5–1 s bucket: 500 + 500 × 4/5 = 900 ms.
    assert_eq!(p99[1], (2, 900.0));
    assert_eq!(p99[2], (3, 900.0));
}

#[test]
fn one_export_spread_over_a_few_seconds_is_one_sample_and_services_stay_apart() {
    let mut g = GoldenSignals::default();
    let at = |minute: u64, secs: u64, service: &str, code: &str, v: f64| {
        let line = format!(
            r#"{{"ts":{},"kind":"metric","service":"{service}","name":"http_requests_total","value":{v},"metric_kind":"counter","labels":{{"code":"{code}"}}}}"#,
            (T0 + minute * MINUTE + secs * 1000) as f64 / 1000.0
        );
        Event::from_json(&line).unwrap()
    };
    let events = [
        at(0, 0, "a", "200", 100.0),
        at(0, 3, "a", "500", 0.0),
        at(0, 1, "b", "200", 10.0),
        at(1, 0, "a", "200", 190.0),
        at(1, 2, "b", "200", 20.0),
        at(1, 4, "a", "500", 10.0),
    ];
    let mut sorted = events.to_vec();
    sorted.sort_by_key(|e| e.ts);
    let out = derive(&mut g, &sorted);
    let a: Vec<_> = out
        .iter()
        .filter(|(_, s, n, _)| s == "a" && n == ERROR_RATIO)
        .map(|(_, _, _, v)| *v)
        .collect();
    assert_eq!(a, [0.1]);
    let b: Vec<_> = out
        .iter()
        .filter(|(_, s, n, _)| s == "b" && n == ERROR_RATIO)
        .map(|(m, _, _, v)| (*m, *v))
        .collect();
    assert_eq!(b, [(1, 0.0)]);
}

#[test]
fn restarts_and_configured_mappings() {
    let mut g = GoldenSignals::new(vec![SignalMapping {
        metric: "shop_checkout_failures_pct".into(),
        labels: vec![("env".into(), "prod".into())],
        signal: ERROR_RATIO.into(),
        scale: 0.01,
    }]);
    let events = [
        metric(
            0,
            "shop",
            "kube_pod_container_status_restarts_total",
            2.0,
            "counter",
            "",
        ),
        metric(
            1,
            "shop",
            "kube_pod_container_status_restarts_total",
            5.0,
            "counter",
            "",
        ),
        metric(
            1,
            "shop",
            "shop_checkout_failures_pct",
            12.0,
            "gauge",
            r#""env":"prod""#,
        ),
        metric(
            1,
            "shop",
            "shop_checkout_failures_pct",
            99.0,
            "gauge",
            r#""env":"test""#,
        ),
        metric(
            5,
            "shop",
            "kube_pod_container_status_restarts_total",
            6.0,
            "counter",
            "",
        ),
        metric(
            12,
            "shop",
            "kube_pod_container_status_restarts_total",
            6.0,
            "counter",
            "",
        ),
    ];
    let out = derive(&mut g, &events);
    // Restarts in the last ten minutes, at each export.
    assert_eq!(values(&out, RESTARTS), [(1, 3.0), (5, 4.0), (12, 1.0)]);
    assert_eq!(values(&out, ERROR_RATIO), [(1, 0.12)]);
}

#[test]
fn derived_output_depends_only_on_the_events() {
    let events: Vec<Event> = (0..30)
        .flat_map(|m| {
            [
                metric(
                    m,
                    "x",
                    "http_requests_total",
                    100.0 * m as f64,
                    "counter",
                    r#""code":"200""#,
                ),
                metric(
                    m,
                    "x",
                    "http_requests_total",
                    3.0 * m as f64,
                    "counter",
                    r#""code":"500""#,
                ),
            ]
        })
        .collect();
    let once = derive(&mut GoldenSignals::default(), &events);
    // Watermarks batched differently: one at the end only.
    let mut g = GoldenSignals::default();
    let mut out = Vec::new();
    for e in &events {
        g.on_event(e);
    }
    g.on_watermark(Timestamp::from_millis(T0 + 31 * MINUTE), &mut out);
    assert_eq!(
        values(&once, ERROR_RATIO).len(),
        out.iter()
            .filter(|e| matches!(&e.body, EventBody::Metric(m) if m.name.as_str() == ERROR_RATIO))
            .count()
    );
}

#[test]
fn edge_cases_of_the_conventions() {
    let mut g = GoldenSignals::default();
    let events = [
        // A status class under `code` is HTTP, not a gRPC code name.
        metric(
            0,
            "a",
            "http_requests_total",
            10.0,
            "counter",
            r#""code":"2xx""#,
        ),
        metric(
            0,
            "a",
            "http_requests_total",
            0.0,
            "counter",
            r#""code":"5xx""#,
        ),
        metric(
            1,
            "a",
            "http_requests_total",
            19.0,
            "counter",
            r#""code":"2xx""#,
        ),
        metric(
            1,
            "a",
            "http_requests_total",
            1.0,
            "counter",
            r#""code":"5xx""#,
        ),
        // Per-mode CPU series are parts of a whole.
        metric(
            0,
            "a",
            "system.cpu.utilization",
            0.9,
            "gauge",
            r#""cpu.mode":"idle""#,
        ),
        // The codec's own p99 of a delta histogram: the buckets speak instead.
        metric(0, "a", "http.server.request.duration_p99", 0.2, "gauge", ""),
        // The older convention's histogram is in milliseconds.
        metric(
            0,
            "b",
            "http.server.duration_bucket",
            0.0,
            "counter",
            r#""le":"100""#,
        ),
        metric(
            0,
            "b",
            "http.server.duration_bucket",
            0.0,
            "counter",
            r#""le":"+Inf""#,
        ),
        metric(
            1,
            "b",
            "http.server.duration_bucket",
            100.0,
            "counter",
            r#""le":"100""#,
        ),
        metric(
            1,
            "b",
            "http.server.duration_bucket",
            100.0,
            "counter",
            r#""le":"+Inf""#,
        ),
    ];
    let out = derive(&mut g, &events);
    let a: Vec<_> = out
        .iter()
        .filter(|(_, s, n, _)| s == "a" && n == ERROR_RATIO)
        .map(|(m, _, _, v)| (*m, *v))
        .collect();
    assert_eq!(a, [(1, 0.1)]);
    assert!(values(&out, "cpu_utilization").is_empty(), "{out:?}");
    let p99 = values(&out, LATENCY_P99_MS);
    assert_eq!(p99, [(1, 99.0)], "{out:?}");
}
