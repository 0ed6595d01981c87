//! `kaizen run` end to end against a real Kafka-protocol broker (Nisshi on 127.0.0.1, or
//! `KAIZEN_TEST_BROKERS`): native events, Alertmanager webhooks and garbage produced to topics →
//! kaizen → insights in a file and on the insights topic, garbage on the dead-letter topic with
//! its reason; SIGTERM stops it cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod support;

use std::io::Read;
use std::time::Duration;

use rdkafka::message::{Headers, Message};
use rdkafka::producer::Producer;
use support::{create_topics, free_port, produce, read, unique, Broker, Kaizen, T0};

/// One HTTP/1.1 request over a plain socket; the whole response as text.
fn http(port: u16, request: &str) -> String {
    use std::io::Write;
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(request.as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn kafka_in_insights_out_dead_letters_kept_and_sigterm_stops_cleanly() {
    let Some(broker) = Broker::start() else {
        eprintln!("skipped: KAIZEN_SKIP_KAFKA_TESTS is set");
        return;
    };
    let dir = std::env::temp_dir().join(unique("kaizen-run"));
    std::fs::create_dir_all(dir.join("rules")).expect("dir");
    std::fs::write(
        dir.join("rules/crashes.sql"),
        "CREATE RULE crashes EMIT INSIGHT SUMMARY '{{service}} crashed' AS SELECT service FROM logs WHERE message LIKE '%crash%';\n\
         CREATE RULE declines EMIT INSIGHT SUMMARY '{{service}} declines payments' AS SELECT service FROM logs WHERE message LIKE '%authorization failed%';\n",
    )
    .expect("rule");
    let (events, alerts, insights, dlq) = (
        unique("events"),
        unique("alerts"),
        unique("insights"),
        unique("dlq"),
    );
    let (otlp_json, otlp_proto) = (unique("otlp-json"), unique("otlp-proto"));
    let props: String = broker
        .properties
        .iter()
        .map(|(k, v)| format!("\"{k}\" = \"{v}\"\n"))
        .collect();
    let port = free_port();
    let config = format!(
        r#"[engine]
workers = 2
lateness = "0s"
rules = ["rules"]

[kafka]
brokers = "{}"
group_id = "{}"
topics = [
  {{ name = "{events}", format = "native" }},
  {{ name = "{alerts}", format = "alertmanager" }},
  {{ name = "{otlp_json}", format = "otlp_json" }},
  {{ name = "{otlp_proto}", format = "otlp_proto_logs" }},
]
insights_topic = "{insights}"
dead_letter_topic = "{dlq}"

[kafka.properties]
{props}
[http]
enabled = true
listen = "127.0.0.1:{port}"

[sinks]
stdout = "off"
file = "out.jsonl"
"#,
        broker.bootstrap,
        unique("kaizen"),
        port = port,
    );
    std::fs::write(dir.join("kaizen.toml"), config).expect("config");

    create_topics(
        &broker,
        &[&events, &alerts, &otlp_json, &otlp_proto, &insights, &dlq],
    );
    let producer = support::producer(&broker);
    let log = |secs: u64, message: &str| {
        format!(
            r#"{{"ts":{},"kind":"log","service":"api","level":"error","message":"{message}"}}"#,
            T0 + secs
        )
    };
    produce(
        &producer,
        &events,
        0,
        log(10, "crash in handler").as_bytes(),
    );
    produce(&producer, &events, 0, b"{not json at all");
    produce(
        &producer,
        &events,
        0,
        log(1200, "all good again").as_bytes(),
    );
    let webhook = r#"{"version":"4","groupKey":"g","status":"firing","receiver":"kaizen","groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am","alerts":[{"status":"firing","labels":{"alertname":"HighErrorRate","service":"api","severity":"critical"},"annotations":{"summary":"api errors"},"startsAt":"2026-01-01T00:01:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"abc"}]}"#;
    produce(&producer, &alerts, 0, webhook.as_bytes());
    // The OpenTelemetry Collector's Kafka exporter: one batch of payments logs per message,
    // as JSON on one topic and as protobuf on the other.
    let fixture = |name: &str| {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("connectors/tests/fixtures/codecs/otlp")
                .join(name),
        )
        .expect("otlp fixture")
    };
    produce(&producer, &otlp_json, 0, &fixture("checkout_logs.json"));
    produce(&producer, &otlp_proto, 0, &fixture("checkout_logs.pb"));
    producer.flush(Duration::from_secs(15)).expect("flush");

    let mut kaizen = Kaizen::start(&dir, &dir.join("kaizen.toml"), &[], "kaizen.stderr");
    let out = dir.join("out.jsonl");
    let mut seen = String::new();
    support::wait_for(Duration::from_secs(90), || {
        seen = std::fs::read_to_string(&out).unwrap_or_default();
        seen.contains("api crashed")
    });
    // HTTP ingest goes the same way, and /metrics counts it all.
    let body = log(1300, "crash via http");
    let accepted = http(
        port,
        &format!("POST /ingest/native HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()),
    );
    assert!(accepted.starts_with("HTTP/1.1 202"), "{accepted}");
    let metrics = http(
        port,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(metrics.contains("kaizen_events_in_total"), "{metrics}");
    assert!(
        metrics.contains("kaizen_decode_errors_total 1"),
        "{metrics}"
    );
    for (topic, format) in [(&otlp_json, "otlp_json"), (&otlp_proto, "otlp_proto_logs")] {
        let label = format!("topic=\"{topic}\"");
        let format = format!("format=\"{format}\"");
        let decoded = metrics
            .lines()
            .find(|l| {
                l.starts_with("kaizen_events_in_total{")
                    && l.contains(&label)
                    && l.contains(&format)
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.trim().parse::<u64>().ok());
        assert!(
            decoded.is_some_and(|n| n > 0),
            "{label} {format}: {decoded:?} in\n{metrics}"
        );
    }
    let ready = http(
        port,
        "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");

    // The file sink is flushed every few seconds: wait for the insight, then stop.
    let status = kaizen.stop("TERM", Duration::from_secs(60));
    let stderr = kaizen.stderr();
    assert!(
        seen.contains("api crashed"),
        "no insight in {}:\n{seen}\nstderr:\n{stderr}\nbroker:\n{}",
        out.display(),
        broker.log()
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "kaizen did not stop cleanly on SIGTERM:\n{stderr}"
    );
    assert!(stderr.contains("kaizen: stopped:"), "{stderr}");
    assert!(seen.contains("\"rule\":\"crashes\""), "{seen}");
    // The OTLP batches were decoded and ran through the rules (released at shutdown: their
    // event time is days ahead of the native topic's).
    let all = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(all.contains("payments declines payments"), "{all}");

    // The insight also went to the insights topic, keyed by its id.
    let produced = read(&broker, &insights, 1, Duration::from_secs(20));
    assert!(!produced.is_empty(), "nothing on the insights topic");
    let first = &produced[0];
    let body = String::from_utf8_lossy(first.payload().unwrap_or_default()).into_owned();
    let id = first
        .key()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .unwrap_or_default();
    assert!(
        body.contains(&format!("\"id\":\"{id}\"")),
        "key {id} vs {body}"
    );

    // The garbage is on the dead-letter topic, as it was, with the reason.
    let dead = read(&broker, &dlq, 1, Duration::from_secs(20));
    assert_eq!(dead.len(), 1, "dead letters: {}", dead.len());
    assert_eq!(dead[0].payload(), Some(&b"{not json at all"[..]));
    let reason = dead[0]
        .headers()
        .and_then(|h| {
            h.iter()
                .find(|x| x.key == "kaizen.reason")
                .and_then(|x| x.value)
        })
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    assert!(!reason.is_empty(), "no reason header");
    let _ = std::fs::remove_dir_all(&dir);
}
