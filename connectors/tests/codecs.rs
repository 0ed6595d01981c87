//! Every codec against real payloads (`tests/fixtures/codecs/`, sources in its README): what
//! each sample decodes to, OTLP/protobuf bytes from the official encoder against their JSON
//! twins, `auto` against every sample, and garbage that must be rejected without a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use kaizen_connectors::codecs::{decode, decode_with, detect, CodecError, DecodeContext, Format};
use kaizen_connectors::OtlpSignal;
use kaizen_model::{
    Alert, AlertStatus, Event, EventBody, EventKind, Level, Log, Metric, MetricKind, Span,
    SpanStatus, Timestamp,
};

macro_rules! fixture {
    ($path:literal) => {
        include_bytes!(concat!("fixtures/codecs/", $path)).as_slice()
    };
}

fn all(format: Format, payload: &[u8]) -> Vec<Event> {
    let mut out = Vec::new();
    match decode(format, payload, &mut out) {
        Ok(n) => assert_eq!(n, out.len()),
        Err(e) => panic!("{format}: {e}"),
    }
    out
}

fn at(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn alert(e: &Event) -> &Alert {
    match &e.body {
        EventBody::Alert(a) => a,
        other => panic!("not an alert: {other:?}"),
    }
}

fn log(e: &Event) -> &Log {
    match &e.body {
        EventBody::Log(l) => l,
        other => panic!("not a log: {other:?}"),
    }
}

fn span(e: &Event) -> &Span {
    match &e.body {
        EventBody::Span(s) => s,
        other => panic!("not a span: {other:?}"),
    }
}

fn metric<'a>(events: &'a [Event], name: &str) -> &'a Metric {
    events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::Metric(m) if m.name.as_str() == name => Some(m),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no metric {name}"))
}

#[test]
fn format_names_round_trip() {
    for f in Format::ALL {
        assert_eq!(f.to_string().parse::<Format>(), Ok(f));
    }
    assert_eq!(
        "OTLP-PROTO-SPANS".parse(),
        Ok(Format::OtlpProto(Some(OtlpSignal::Traces)))
    );
    assert_eq!("fluent-bit".parse(), Ok(Format::FluentBit));
    let err = "syslog".parse::<Format>().unwrap_err().to_string();
    assert!(
        err.starts_with("unknown format \"syslog\" (expected one of: native, otlp_json"),
        "{err}"
    );
}

#[test]
fn native_lines() {
    let events = all(Format::Native, fixture!("native/events.jsonl"));
    let kinds: Vec<EventKind> = events.iter().map(Event::kind).collect();
    use EventKind::*;
    assert_eq!(kinds, [Alert, Metric, Log, Span, Change, Feedback]);
}

#[test]
fn otlp_json_official_logs_and_events() {
    let events = all(Format::OtlpJson, fixture!("otlp/logs.json"));
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e.service.as_str(), e.ts),
        ("my.service", at("2018-12-13T14:51:00.300Z"))
    );
    let l = log(e);
    assert_eq!(
        (l.level, l.message.as_str()),
        (Level::Info, "Example log record")
    );
    let a = &l.attributes;
    assert_eq!(a.get("string.attribute"), Some("some string"));
    assert_eq!(a.get("boolean.attribute"), Some("true"));
    assert_eq!(a.get("int.attribute"), Some("10"));
    assert_eq!(a.get("double.attribute"), Some("637.704"));
    assert_eq!(a.get("array.attribute"), Some(r#"["many","values"]"#));
    assert_eq!(
        a.get("map.attribute"),
        Some(r#"{"some.map.key":"some value"}"#)
    );
    assert_eq!(a.get("trace_id"), Some("5b8efff798038103d269b633813fc60c"));
    assert_eq!(a.get("span_id"), Some("eee19b7ec3c1b174"));

    let events = all(Format::OtlpJson, fixture!("otlp/events.json"));
    let l = log(&events[0]);
    assert!(
        l.message
            .starts_with(r#"{"type":0,"url":"https://www.guidgenerator.com"#),
        "{}",
        l.message
    );
    assert_eq!(
        l.attributes.get("event.attribute"),
        Some("some event attribute")
    );
}

#[test]
fn otlp_json_official_metrics() {
    let events = all(Format::OtlpJson, fixture!("otlp/metrics.json"));
    let names: Vec<&str> = events
        .iter()
        .map(|e| match &e.body {
            EventBody::Metric(m) => m.name.as_str(),
            _ => "?",
        })
        .collect();
    assert_eq!(
        names,
        [
            "my.counter",
            "my.gauge",
            "my.histogram_count",
            "my.histogram_sum",
            "my.histogram_bucket",
            "my.histogram_bucket",
            "my.histogram_p99",
            "my.exponential.histogram_count",
            "my.exponential.histogram_sum",
            "my.exponential.histogram_p99",
        ]
    );
    // a delta sum is a per-interval amount: a gauge
    let counter = metric(&events, "my.counter");
    assert_eq!(
        (counter.value, counter.metric_kind),
        (5.0, MetricKind::Gauge)
    );
    assert_eq!(
        counter.labels.get("my.counter.attr").map(|v| v.as_str()),
        Some("some value")
    );
    assert_eq!(metric(&events, "my.gauge").value, 10.0);
    assert_eq!(metric(&events, "my.histogram_count").value, 2.0);
    // buckets [1, 1] over bound 1: the 99th percentile is in the overflow bucket, up to max = 2
    assert_eq!(metric(&events, "my.histogram_p99").value, 2.0);
    // buckets as Prometheus counts them: at most 1, and all
    let buckets: Vec<(Option<&str>, f64)> = events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Metric(m) if m.name.as_str() == "my.histogram_bucket" => {
                Some((m.labels.get("le").map(|v| v.as_str()), m.value))
            }
            _ => None,
        })
        .collect();
    assert_eq!(buckets, [(Some("1"), 1.0), (Some("+Inf"), 2.0)]);
    let p99 = metric(&events, "my.exponential.histogram_p99").value;
    assert!((7.8..=8.0).contains(&p99), "{p99}");
    assert!(events.iter().all(|e| e.service.as_str() == "my.service"));
}

#[test]
fn otlp_json_official_trace() {
    let events = all(Format::OtlpJson, fixture!("otlp/trace.json"));
    let s = span(&events[0]);
    assert_eq!(s.peer, None, "server spans have no callee");
    assert_eq!(
        (s.operation.as_str(), s.duration_ms),
        ("I'm a server span", 1000.0)
    );
    assert_eq!(
        s.trace_id.as_deref(),
        Some("5b8efff798038103d269b633813fc60c")
    );
    assert_eq!(events[0].ts, at("2018-12-13T14:51:00Z"));
}

#[test]
fn otlp_checkout_spans_logs_and_metrics() {
    let spans = all(Format::OtlpJson, fixture!("otlp/checkout_spans.json"));
    let client = span(&spans[0]);
    assert_eq!(client.peer.as_ref().map(|p| p.as_str()), Some("payments"));
    assert_eq!(client.status, SpanStatus::Error);
    assert!(
        (client.duration_ms - 3021.4).abs() < 1e-6,
        "{}",
        client.duration_ms
    );
    let server = span(&spans[1]);
    assert_eq!(
        (server.peer.as_ref(), server.status),
        (None, SpanStatus::Ok)
    );
    assert_eq!(spans[0].service.as_str(), "checkout");

    let logs = all(Format::OtlpJson, fixture!("otlp/checkout_logs.json"));
    let first = log(&logs[0]);
    assert_eq!(first.level, Level::Error);
    assert_eq!(
        first.attributes.get("k8s.pod.name"),
        Some("payments-7d9f-x2")
    );
    assert_eq!(
        first.attributes.get("process.pid"),
        None,
        "only where-it-ran resource attributes"
    );
    assert_eq!(first.attributes.get("order_id"), Some("88213"));
    // no timeUnixNano: the observed time; no severity number: the text
    assert_eq!(
        (logs[1].ts, log(&logs[1]).level),
        (at("2026-01-05T10:02:15Z"), Level::Warn)
    );

    let metrics = all(Format::OtlpJson, fixture!("otlp/checkout_metrics.json"));
    let p99 = metric(&metrics, "http.server.request.duration_p99");
    // buckets 10, 60, 25, 4, 1: the 99th of 100 samples is the last one in (0.5, 1]
    assert_eq!(p99.value, 1.0);
    assert_eq!(
        p99.labels.get("instance").map(|v| v.as_str()),
        Some("checkout-7d9f-x2")
    );
    assert_eq!(
        p99.labels.get("http.route").map(|v| v.as_str()),
        Some("/checkout")
    );
    assert_eq!(
        metric(&metrics, "http.server.request.duration_count").metric_kind,
        MetricKind::Gauge
    );
    assert_eq!(
        metric(&metrics, "jvm.thread.count").metric_kind,
        MetricKind::Gauge
    );
    let requests = metric(&metrics, "http.server.requests");
    assert_eq!(
        (requests.value, requests.metric_kind),
        (1234.0, MetricKind::Counter)
    );
    assert_eq!(metric(&metrics, "rpc.latency_sum").value, 5.0);
    let quantiles: Vec<(String, f64)> = metrics
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Metric(m) if m.name.as_str() == "rpc.latency" => {
                Some((m.labels.get("quantile")?.to_string(), m.value))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        quantiles,
        [("0.5".to_string(), 0.4), ("0.99".to_string(), 1.2)]
    );
    assert!(metrics
        .iter()
        .all(|e| !matches!(&e.body, EventBody::Metric(m) if m.name.as_str() == "queue.depth")));
}

#[test]
fn otlp_proto_bytes_from_the_official_encoder_decode_like_their_json() {
    let pairs: [(&[u8], &[u8], OtlpSignal, &str); 7] = [
        (
            fixture!("otlp/logs.pb"),
            fixture!("otlp/logs.json"),
            OtlpSignal::Logs,
            "otlp_logs",
        ),
        (
            fixture!("otlp/events.pb"),
            fixture!("otlp/events.json"),
            OtlpSignal::Logs,
            "otlp_logs",
        ),
        (
            fixture!("otlp/checkout_logs.pb"),
            fixture!("otlp/checkout_logs.json"),
            OtlpSignal::Logs,
            "logs",
        ),
        (
            fixture!("otlp/metrics.pb"),
            fixture!("otlp/metrics.json"),
            OtlpSignal::Metrics,
            "otlp_metrics",
        ),
        (
            fixture!("otlp/checkout_metrics.pb"),
            fixture!("otlp/checkout_metrics.json"),
            OtlpSignal::Metrics,
            "prod.metrics",
        ),
        (
            fixture!("otlp/trace.pb"),
            fixture!("otlp/trace.json"),
            OtlpSignal::Traces,
            "otlp_spans",
        ),
        (
            fixture!("otlp/checkout_spans.pb"),
            fixture!("otlp/checkout_spans.json"),
            OtlpSignal::Traces,
            "traces",
        ),
    ];
    for (pb, json, signal, topic) in pairs {
        let expected = all(Format::OtlpJson, json);
        assert!(!expected.is_empty());
        assert_eq!(
            all(Format::OtlpProto(Some(signal)), pb),
            expected,
            "{signal:?} configured"
        );
        let ctx = DecodeContext {
            topic: Some(topic),
            ..Default::default()
        };
        let mut by_topic = Vec::new();
        decode_with(Format::OtlpProto(None), pb, &ctx, &mut by_topic).unwrap();
        assert_eq!(by_topic, expected, "{signal:?} from topic {topic}");
        assert_eq!(
            all(Format::OtlpProto(None), pb),
            expected,
            "{signal:?} sniffed"
        );
        assert_eq!(all(Format::Auto, pb), expected, "{signal:?} auto");
    }
}

#[test]
fn alertmanager_webhooks() {
    let events = all(
        Format::Alertmanager,
        fixture!("alertmanager/webhook_v4.json"),
    );
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e.service.as_str(), e.ts),
        ("http_checks", at("2023-02-06T13:08:45.828Z"))
    );
    let a = alert(e);
    assert_eq!(
        (a.name.as_str(), a.status, a.severity.as_str()),
        ("ProbeFailure", AlertStatus::Firing, "critical")
    );
    assert_eq!(a.fingerprint, "1a30ba71cca2921f");
    assert_eq!(
        a.annotations.get("summary"),
        Some("BlackBox Probe Failure: https://server.example.org")
    );
    assert!(a
        .annotations
        .get("generator_url")
        .is_some_and(|u| u.contains("probe_success")));
    assert_eq!(
        a.labels.get("instance").map(|v| v.as_str()),
        Some("https://server.example.org")
    );

    let sent = at("2026-01-05T09:10:00Z");
    let ctx = DecodeContext {
        received: Some(sent),
        ..Default::default()
    };
    let mut group = Vec::new();
    decode_with(
        Format::Alertmanager,
        fixture!("alertmanager/webhook_v4_group.json"),
        &ctx,
        &mut group,
    )
    .unwrap();
    assert_eq!(group.len(), 2);
    assert_eq!((group[0].service.as_str(), group[0].ts), ("payments", sent));
    assert_eq!(
        alert(&group[0]).annotations.get("runbook_url"),
        Some("https://runbooks.example/payments-errors")
    );
    assert_eq!(
        (group[1].service.as_str(), group[1].ts),
        ("checkout", at("2026-01-05T09:01:30Z"))
    );
    assert_eq!(
        (alert(&group[1]).status, alert(&group[1]).severity.as_str()),
        (AlertStatus::Resolved, "warning")
    );
}

#[test]
fn grafana_webhook() {
    let events = all(Format::Grafana, fixture!("grafana/webhook.json"));
    assert_eq!(events.len(), 2);
    let a = alert(&events[0]);
    assert_eq!(
        (a.name.as_str(), a.fingerprint.as_str()),
        ("High memory usage", "c6eadffa33fcdf37")
    );
    assert_eq!(events[0].ts, at("2021-10-12T07:51:03.157Z"));
    assert_eq!(
        events[0].service.as_str(),
        "unknown",
        "no service label: kept, not rejected"
    );
    assert_eq!(
        a.annotations.get("values"),
        Some("B=44.23943737541908, C=1")
    );
    assert_eq!(
        a.annotations.get("dashboard_url"),
        None,
        "empty links are left out"
    );
    assert_eq!(a.severity.as_str(), "warning");
    assert_eq!(
        alert(&events[1]).labels.get("zone").map(|v| v.as_str()),
        Some("eu-1")
    );
}

/// Every JSON fixture with the format it must be detected as.
fn json_fixtures() -> Vec<(&'static str, &'static [u8], Format)> {
    vec![
        ("native", fixture!("native/events.jsonl"), Format::Native),
        ("otlp logs", fixture!("otlp/logs.json"), Format::OtlpJson),
        (
            "otlp metrics",
            fixture!("otlp/metrics.json"),
            Format::OtlpJson,
        ),
        (
            "otlp spans",
            fixture!("otlp/checkout_spans.json"),
            Format::OtlpJson,
        ),
        (
            "alertmanager",
            fixture!("alertmanager/webhook_v4.json"),
            Format::Alertmanager,
        ),
        ("grafana", fixture!("grafana/webhook.json"), Format::Grafana),
        (
            "pagerduty",
            fixture!("pagerduty/trigger.json"),
            Format::PagerDuty,
        ),
        (
            "pagerduty ack",
            fixture!("pagerduty/acknowledge.json"),
            Format::PagerDuty,
        ),
        (
            "cloudwatch",
            fixture!("cloudwatch/single_metric_alarm.json"),
            Format::CloudWatch,
        ),
        (
            "vector",
            fixture!("vector/kubernetes_logs.json"),
            Format::Vector,
        ),
        (
            "fluentbit",
            fixture!("fluentbit/kubernetes.json"),
            Format::FluentBit,
        ),
        (
            "prometheus",
            fixture!("prometheus_kafka_adapter/sample.json"),
            Format::PrometheusKafkaAdapter,
        ),
        (
            "prometheus lines",
            fixture!("prometheus_kafka_adapter/samples.jsonl"),
            Format::PrometheusKafkaAdapter,
        ),
    ]
}

#[test]
fn auto_detects_every_sample() {
    for (name, payload, format) in json_fixtures() {
        assert_eq!(
            detect(payload, &DecodeContext::default()),
            Ok(format),
            "{name}"
        );
        assert_eq!(all(Format::Auto, payload), all(format, payload), "{name}");
    }
    assert_eq!(
        detect(fixture!("otlp/trace.pb"), &DecodeContext::default()),
        Ok(Format::OtlpProto(None))
    );
}

#[test]
fn errors_leave_the_output_untouched() {
    let mut out = all(Format::Native, fixture!("native/events.jsonl"));
    let before = out.clone();
    // the second alert lacks its name: the first, already decoded, must not stay behind
    let bad = br#"{"alerts":[{"labels":{"alertname":"A"},"startsAt":"2026-01-05T10:00:00Z"},{"labels":{}}]}"#;
    let err = decode(Format::Alertmanager, bad, &mut out).unwrap_err();
    assert_eq!(
        err.to_string(),
        "alertmanager: missing alerts[1].labels.alertname"
    );
    assert_eq!(out, before);
    assert!(matches!(
        decode(Format::Auto, b"\x00\x01", &mut out),
        Err(CodecError::Unrecognised(_))
    ));
    assert_eq!(out, before);
}

/// Truncations, bit flips and random bytes through every codec: errors are fine, panics are not.
#[test]
fn garbage_never_panics() {
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    let mut seeds: Vec<&[u8]> = json_fixtures().into_iter().map(|f| f.1).collect();
    seeds.extend([
        fixture!("otlp/metrics.pb"),
        fixture!("otlp/checkout_spans.pb"),
        fixture!("otlp/logs.pb"),
    ]);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for seed in &seeds {
        for cut in (0..seed.len()).step_by(seed.len() / 24 + 1) {
            inputs.push(seed[..cut].to_vec());
        }
        for _ in 0..24 {
            let mut flipped = seed.to_vec();
            let i = next() as usize % flipped.len();
            flipped[i] ^= 1 << (next() % 8);
            inputs.push(flipped);
        }
    }
    for len in [1usize, 2, 7, 64, 512] {
        inputs.push((0..len).map(|_| next() as u8).collect());
    }
    let ctx = DecodeContext {
        topic: Some("otlp_metrics"),
        received: Some(at("2026-01-05T10:00:00Z")),
    };
    for input in &inputs {
        for format in Format::ALL {
            let mut out = Vec::new();
            if decode_with(format, input, &ctx, &mut out).is_err() {
                assert!(out.is_empty(), "{format} left events behind on error");
            }
        }
    }
}
