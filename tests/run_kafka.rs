//! `kaizen run` end to end against a real Kafka-protocol broker (Nisshi on 127.0.0.1, or
//! `KAIZEN_TEST_BROKERS`): native events, Alertmanager webhooks and garbage produced to topics →
//! kaizen → insights in a file and on the insights topic, garbage on the dead-letter topic with
//! its reason; SIGTERM stops it cleanly.

#[path = "../connectors/tests/support/nisshi.rs"]
mod nisshi;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nisshi::{unique, Broker};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const T0: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z, in seconds

fn client(broker: &Broker) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &broker.bootstrap);
    for (k, v) in &broker.properties {
        c.set(k, v);
    }
    c
}

/// Runs a future to completion on this thread (the admin client's futures need no runtime).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => std::thread::park_timeout(Duration::from_millis(50)),
        }
    }
}

fn create_topics(broker: &Broker, names: &[&str]) {
    let admin: AdminClient<DefaultClientContext> = client(broker).create().expect("admin client");
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|n| NewTopic::new(n, 1, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in block_on(admin.create_topics(&topics, &options)).expect("create topics") {
        if let Err((topic, code)) = result {
            panic!("create topic {topic}: {code}");
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

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

fn produce(p: &BaseProducer, topic: &str, partition: i32, payload: &[u8]) {
    p.send(
        BaseRecord::<[u8], [u8]>::to(topic)
            .partition(partition)
            .payload(payload),
    )
    .map_err(|(e, _)| e)
    .expect("queue a message");
    p.poll(Duration::ZERO);
}

/// Every message of `topic` (one partition) within `wait`, once at least `n` arrived.
fn read(
    broker: &Broker,
    topic: &str,
    n: usize,
    wait: Duration,
) -> Vec<rdkafka::message::OwnedMessage> {
    let consumer: BaseConsumer = client(broker)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            out.push(m.detach());
        }
    }
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
        "CREATE RULE crashes EMIT INSIGHT SUMMARY '{{service}} crashed' AS SELECT service FROM logs WHERE message LIKE '%crash%';\n",
    )
    .expect("rule");
    let (events, alerts, insights, dlq) = (
        unique("events"),
        unique("alerts"),
        unique("insights"),
        unique("dlq"),
    );
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
topics = [{{ name = "{events}", format = "native" }}, {{ name = "{alerts}", format = "alertmanager" }}]
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

    create_topics(&broker, &[&events, &alerts, &insights, &dlq]);
    let producer: BaseProducer = client(&broker)
        .set("linger.ms", "0")
        .create()
        .expect("producer");
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
    producer.flush(Duration::from_secs(15)).expect("flush");

    let mut child = Command::new(env!("CARGO_BIN_EXE_kaizen"))
        .args(["run", "--config"])
        .arg(dir.join("kaizen.toml"))
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kaizen starts");
    let out = dir.join("out.jsonl");
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut seen = String::new();
    while Instant::now() < deadline {
        seen = std::fs::read_to_string(&out).unwrap_or_default();
        if seen.contains("api crashed") {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
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
    let ready = http(
        port,
        "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");

    // The file sink is flushed every few seconds: wait for the insight, then stop.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let stopped = Instant::now();
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break Some(s);
        }
        if stopped.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
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
