//! The Kafka source and sinks against a real Kafka-protocol broker (`support/nisshi.rs`:
//! Nisshi on 127.0.0.1, or `KAIZEN_TEST_BROKERS`): decoding with coordinates, committing and
//! resuming in a group, sharing partitions between workers, dead letters, and insights.
//!
//! Each test has its own broker (or unique topics and groups on a shared one). The first
//! group join takes about 3 s on Nisshi, so each test waits up to 30 s for what it expects.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

#[path = "support/nisshi.rs"]
mod nisshi;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kaizen_connectors::codecs::{decode_with, DecodeContext, Format};
use kaizen_connectors::kafka::{
    AssignmentChange, KafkaDeadLetter, KafkaError, KafkaInsightSink, KafkaRecord, KafkaSinkConfig,
    KafkaSource, KafkaSourceConfig, PartitionId, RecordPayload, DEAD_LETTER_HEADERS,
    INSIGHT_VERSION_HEADER,
};
use kaizen_connectors::{InsightSink, OtlpSignal};
use kaizen_model::{
    IncidentStatus, Insight, OriginCandidate, Severity, Symbol, TimelineEntry, Timestamp,
};
use nisshi::{unique, Broker};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const WAIT: Duration = Duration::from_secs(30);

macro_rules! fixture {
    ($path:literal) => {
        include_bytes!(concat!("fixtures/codecs/", $path)).as_slice()
    };
}

fn create_topic(broker: &Broker, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = client(broker).create().expect("admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = pollster::block_on(admin.create_topics([&topic], &options))
        .unwrap_or_else(|e| panic!("create topic {name}: {e}\n{}", broker.log()));
    for result in results {
        if let Err((topic, code)) = result {
            panic!("create topic {topic}: {code}");
        }
    }
}

/// A librdkafka config for `broker` (with its TLS settings, if any).
fn client(broker: &Broker) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &broker.bootstrap);
    for (key, value) in &broker.properties {
        config.set(key, value);
    }
    config
}

fn producer(broker: &Broker) -> BaseProducer {
    client(broker)
        .set("linger.ms", "0")
        .create()
        .expect("producer")
}

fn produce(producer: &BaseProducer, topic: &str, partition: i32, payload: &[u8]) {
    producer
        .send(
            BaseRecord::<[u8], [u8]>::to(topic)
                .partition(partition)
                .payload(payload),
        )
        .map_err(|(e, _)| e)
        .expect("queue a message");
    producer.poll(Duration::ZERO);
}

fn flush(producer: &BaseProducer) {
    producer.flush(Duration::from_secs(15)).expect("flush");
}

fn source(broker: &Broker, group: &str, topics: &[(&str, Format)], worker: usize) -> KafkaSource {
    let mut config = KafkaSourceConfig::new(&broker.bootstrap, group, topics);
    config
        .properties
        .insert("statistics.interval.ms".into(), "200".into());
    config.properties.extend(broker.properties.iter().cloned());
    KafkaSource::new(&config, worker).expect("kafka source")
}

fn sink_config(broker: &Broker, topic: &str) -> KafkaSinkConfig {
    let mut config = KafkaSinkConfig::new(&broker.bootstrap, topic);
    config.properties.extend(broker.properties.iter().cloned());
    config
}

/// Polls until `n` records arrived (fails after [`WAIT`]).
fn poll_until(source: &mut KafkaSource, n: usize, broker: &Broker) -> Vec<KafkaRecord> {
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} records within {WAIT:?}: {out:#?}\n{}",
            out.len(),
            broker.log()
        );
        source
            .poll(Duration::from_millis(200), &mut out)
            .expect("poll");
    }
    out
}

/// Every message of `topic` (all `partitions`), read without a group from the beginning.
fn read_all(broker: &Broker, topic: &str, partitions: i32, n: usize) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = client(broker)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "read {} of {n} from {topic}",
            out.len()
        );
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            out.push(m.detach());
        }
    }
    out
}

fn header(message: &OwnedMessage, key: &str) -> Option<String> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn metric_line(service: &str, value: u32) -> Vec<u8> {
    format!(
        r#"{{"ts":"2026-01-05T10:00:{:02}Z","kind":"metric","service":"{service}","name":"error_ratio","value":{value}}}"#,
        value % 60
    )
    .into_bytes()
}

/// Polls until every owned partition has lag 0 and `p` is at position 2 with `committed` lag.
fn lag_becomes(
    source: &mut KafkaSource,
    records: &mut Vec<KafkaRecord>,
    p: &PartitionId,
    committed: Option<i64>,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        source
            .poll(Duration::from_millis(100), records)
            .expect("poll");
        let parts = source.partitions().expect("partitions");
        let done = parts.iter().all(|s| s.lag == Some(0))
            && parts.iter().any(|s| {
                &s.partition == p && s.position == Some(2) && s.committed_lag == committed
            });
        if done {
            return;
        }
        assert!(Instant::now() < deadline, "lag not as expected: {parts:#?}");
    }
}

#[test]
fn source_decodes_native_alertmanager_and_otlp_with_their_coordinates() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let native = unique("kaizen-native");
    let alerts = unique("kaizen-alerts");
    let otlp_json = unique("kaizen-otlp_logs");
    let otlp_proto = unique("kaizen-otlp_spans");
    create_topic(&broker, &native, 2);
    for topic in [&alerts, &otlp_json, &otlp_proto] {
        create_topic(&broker, topic, 1);
    }
    let sent: Vec<(&str, i32, &[u8])> = vec![
        (&native, 0, fixture!("native/events.jsonl")),
        (&native, 0, b"{\"ts\":\"2026-01-05T10:00:00Z\",\"kind\":\"metric\",\"service\":\"api\",\"name\":\"cpu\",\"value\":0.5}"),
        (&native, 1, fixture!("native/events.jsonl")),
        (&alerts, 0, fixture!("alertmanager/webhook_v4_group.json")),
        (&otlp_json, 0, fixture!("otlp/checkout_logs.json")),
        (&otlp_proto, 0, fixture!("otlp/checkout_spans.pb")),
    ];
    let p = producer(&broker);
    let before = now_ms();
    for (topic, partition, payload) in &sent {
        produce(&p, topic, *partition, payload);
    }
    flush(&p);
    assert_eq!(
        OtlpSignal::from_topic(&otlp_proto),
        Some(OtlpSignal::Traces)
    );

    let formats = [
        (native.as_str(), Format::Native),
        (alerts.as_str(), Format::Alertmanager),
        (otlp_json.as_str(), Format::Auto),
        (otlp_proto.as_str(), Format::OtlpProto(None)),
    ];
    let mut source = source(&broker, &unique("group"), &formats, 0);
    let mut records = poll_until(&mut source, sent.len(), &broker);
    records
        .sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));

    let mut expected: Vec<(&str, i32, i64, &[u8])> = Vec::new();
    let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for (topic, partition, payload) in &sent {
        let offset = next.entry((*topic, *partition)).or_insert(0);
        expected.push((*topic, *partition, *offset, *payload));
        *offset += 1;
    }
    expected.sort();
    assert_eq!(records.len(), expected.len());
    for (record, (topic, partition, offset, payload)) in records.iter().zip(&expected) {
        assert_eq!(
            (&*record.topic, record.partition, record.offset),
            (*topic, *partition, *offset)
        );
        let ts = record.timestamp.expect("broker timestamp").as_millis();
        assert!(
            ts + 60_000 >= before && ts <= now_ms() + 60_000,
            "timestamp {ts}"
        );
        let format = formats
            .iter()
            .find(|(t, _)| t == topic)
            .map(|f| f.1)
            .unwrap();
        let ctx = DecodeContext {
            topic: Some(topic),
            received: record.timestamp,
        };
        let mut want = Vec::new();
        decode_with(format, payload, &ctx, &mut want).expect("fixture decodes");
        assert!(!want.is_empty(), "{topic}");
        assert_eq!(
            record.payload,
            RecordPayload::Events(want),
            "{topic}/{partition}@{offset}"
        );
    }
    let services: BTreeSet<&str> = records
        .iter()
        .flat_map(|r| r.events())
        .map(|e| e.service.as_str())
        .collect();
    assert!(services.contains("api"), "{services:?}");

    let owned = source.assignment().expect("assignment");
    assert_eq!(owned.len(), 5, "{owned:?}");
    assert!(owned.contains(&PartitionId::new(native.as_str(), 1)));
    let stats = source.stats();
    assert_eq!((stats.messages, stats.undecodable), (6, 0));
    assert_eq!(
        stats.events as usize,
        records.iter().map(|r| r.events().len()).sum::<usize>()
    );

    // Lag from librdkafka's statistics: everything read, then partly committed.
    let native0 = PartitionId::new(native.as_str(), 0);
    lag_becomes(&mut source, &mut records, &native0, None);
    assert_eq!(
        source.commit(&[(native.as_str(), 0, 1)]).expect("commit"),
        1
    );
    lag_becomes(&mut source, &mut records, &native0, Some(1));
    assert_eq!(records.len(), sent.len(), "nothing read twice");
}

#[test]
fn committed_offsets_are_where_the_group_resumes() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let topic = unique("kaizen-resume");
    let group = unique("group");
    create_topic(&broker, &topic, 2);
    let p = producer(&broker);
    for i in 0..4 {
        produce(&p, &topic, 0, &metric_line("api", i));
    }
    for i in 0..3 {
        produce(&p, &topic, 1, &metric_line("db", i));
    }
    flush(&p);

    let formats = [(topic.as_str(), Format::Native)];
    let mut first = source(&broker, &group, &formats, 0);
    let records = poll_until(&mut first, 7, &broker);
    assert!(records.iter().all(|r| r.events().len() == 1));
    let committed = first
        .commit(&[
            (topic.as_str(), 0, 2),
            (topic.as_str(), 1, 3),
            (topic.as_str(), 9, 1),
        ])
        .expect("commit");
    assert_eq!(committed, 2, "the partition it does not own is skipped");
    let mut offsets = first.committed(Duration::from_secs(10)).expect("committed");
    offsets.sort();
    assert_eq!(
        offsets,
        vec![
            (PartitionId::new(topic.as_str(), 0), Some(2)),
            (PartitionId::new(topic.as_str(), 1), Some(3)),
        ]
    );
    // Without waiting: the commit lands while the consumer keeps polling.
    assert_eq!(
        first
            .commit_async(&[(topic.as_str(), 0, 3)])
            .expect("async commit"),
        1
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        first
            .poll(Duration::from_millis(50), &mut Vec::new())
            .expect("poll");
        let offsets = first.committed(Duration::from_secs(10)).expect("committed");
        if offsets.contains(&(PartitionId::new(topic.as_str(), 0), Some(3))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "async commit never landed: {offsets:?}"
        );
    }
    first
        .commit(&[(topic.as_str(), 0, 2)])
        .expect("commit back");
    drop(first);

    produce(&p, &topic, 0, &metric_line("api", 4));
    flush(&p);
    let mut second = source(&broker, &group, &formats, 1);
    let mut resumed = poll_until(&mut second, 3, &broker);
    // Nothing else comes: partition 1 was committed to its end.
    second
        .poll(Duration::from_millis(500), &mut resumed)
        .expect("poll");
    let coordinates: Vec<(i32, i64)> = resumed.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(coordinates, vec![(0, 2), (0, 3), (0, 4)]);
    let changes = second.take_assignment_changes();
    assert!(
        matches!(changes.first(), Some(AssignmentChange::Assigned(parts)) if parts.len() == 2),
        "{changes:?}"
    );
    // Partition 1 resumes at its end: nothing to read, so it need not hold the watermark.
    assert_eq!(
        changes.get(1),
        Some(&AssignmentChange::AtEnd(vec![PartitionId::new(
            topic.as_str(),
            1
        )])),
        "{changes:?}"
    );
}

#[test]
fn workers_in_one_group_share_the_partitions() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let topic = unique("kaizen-shared");
    let group = unique("group");
    create_topic(&broker, &topic, 4);
    let p = producer(&broker);
    for partition in 0..4 {
        produce(&p, &topic, partition, &metric_line("api", partition as u32));
    }
    flush(&p);

    let formats = [(topic.as_str(), Format::Native)];
    let mut workers = [
        source(&broker, &group, &formats, 0),
        source(&broker, &group, &formats, 1),
    ];
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let mut owned = Vec::new();
        for w in &mut workers {
            let mut records = Vec::new();
            w.poll(Duration::from_millis(100), &mut records)
                .expect("poll");
            seen.extend(records.iter().map(|r| r.partition));
            owned.push(w.assignment().expect("assignment"));
        }
        let union: BTreeSet<&PartitionId> = owned.iter().flatten().collect();
        let shared = owned.iter().all(|o| !o.is_empty())
            && union.len() == 4
            && owned.iter().map(Vec::len).sum::<usize>() == 4;
        if shared && seen.len() == 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "partitions not shared: {owned:?}, read from {seen:?}\n{}",
            broker.log()
        );
    }
    for w in &mut workers {
        let changes = w.take_assignment_changes();
        assert!(
            changes
                .iter()
                .any(|c| matches!(c, AssignmentChange::Assigned(_))),
            "{changes:?}"
        );
        // Every partition has a message to read.
        assert!(
            !changes
                .iter()
                .any(|c| matches!(c, AssignmentChange::AtEnd(_))),
            "{changes:?}"
        );
    }
}

#[test]
fn garbage_goes_to_the_dead_letter_topic_and_the_stream_continues() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let topic = unique("kaizen-native");
    let dead = unique("kaizen-dead-letter");
    create_topic(&broker, &topic, 1);
    create_topic(&broker, &dead, 1);
    let garbage: &[u8] = b"\x00\xffthis is not an event";
    let p = producer(&broker);
    produce(&p, &topic, 0, &metric_line("api", 1));
    produce(&p, &topic, 0, garbage);
    produce(&p, &topic, 0, &metric_line("api", 2));
    flush(&p);

    let mut source = source(
        &broker,
        &unique("group"),
        &[(topic.as_str(), Format::Native)],
        0,
    );
    let records = poll_until(&mut source, 3, &broker);
    let mut dlq = KafkaDeadLetter::new(&sink_config(&broker, &dead)).expect("dead-letter sink");
    let sent: Vec<bool> = records
        .iter()
        .map(|r| dlq.send_record(r).expect("dead letter"))
        .collect();
    assert_eq!(sent, vec![false, true, false]);
    assert_eq!(
        records[2].events().len(),
        1,
        "the stream continues after garbage"
    );
    let RecordPayload::Undecodable { bytes, reason, .. } = &records[1].payload else {
        panic!("garbage decoded: {:?}", records[1]);
    };
    assert_eq!(bytes.as_slice(), garbage);
    dlq.flush().expect("flush");
    assert_eq!((dlq.count(), dlq.delivered()), (1, 1));
    assert_eq!(source.stats().undecodable, 1);

    let letters = read_all(&broker, &dead, 1, 1);
    let letter = &letters[0];
    assert_eq!(letter.payload(), Some(garbage));
    let headers: Vec<Option<String>> = DEAD_LETTER_HEADERS
        .iter()
        .map(|k| header(letter, k))
        .collect();
    assert_eq!(
        headers,
        vec![
            Some(reason.clone()),
            Some(topic.clone()),
            Some("0".into()),
            Some("1".into())
        ]
    );
    assert!(reason.starts_with("native"), "{reason}");
}

fn insight(id: &str, version: u32) -> Insight {
    let t0 = 1_767_603_600_000;
    Insight {
        id: id.into(),
        version,
        status: if version == 1 {
            IncidentStatus::Open
        } else {
            IncidentStatus::Updated
        },
        title: format!("HighErrorRate on payments (v{version})"),
        severity: Severity::Critical,
        services: vec![Symbol::new("payments"), Symbol::new("web")],
        impacted: vec![Symbol::new("web")],
        impact: vec!["web: 12% of checkouts fail".into()],
        origin: vec![OriginCandidate {
            service: Symbol::new("payments"),
            score: 0.8,
            evidence: vec!["first to degrade".into()],
            deviation: None,
        }],
        suspect_changes: vec![],
        similar: vec![],
        novelty: None,
        timeline: vec![TimelineEntry {
            ts: Timestamp::from_millis(t0),
            text: "payments: error ratio 12%".into(),
        }],
        opened_at: Timestamp::from_millis(t0),
        updated_at: Timestamp::from_millis(t0 + u64::from(version) * 60_000),
        resolved_at: None,
        explain: Vec::new(),
    }
}

#[test]
fn insight_sink_writes_keyed_json_that_reads_back() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let topic = unique("kaizen-insights");
    create_topic(&broker, &topic, 3);
    let sent = [
        insight("inc-a", 1),
        insight("inc-b", 1),
        insight("inc-a", 2),
    ];
    let mut sink = KafkaInsightSink::new(&sink_config(&broker, &topic)).expect("insight sink");
    for i in &sent {
        sink.emit(i).expect("emit");
    }
    InsightSink::flush(&mut sink).expect("flush");
    assert_eq!((sink.emitted(), sink.delivered()), (3, 3));

    let mut read = read_all(&broker, &topic, 3, 3);
    read.sort_by_key(|m| (m.partition(), m.offset()));
    let mut by_id: BTreeMap<String, Vec<(i32, i64, Insight)>> = BTreeMap::new();
    for m in &read {
        let key = String::from_utf8(m.key().expect("key").to_vec()).expect("utf-8 key");
        let value: Insight = serde_json::from_slice(m.payload().expect("value")).expect("JSON");
        assert_eq!(value.id, key);
        assert_eq!(
            header(m, INSIGHT_VERSION_HEADER),
            Some(value.version.to_string())
        );
        by_id
            .entry(key)
            .or_default()
            .push((m.partition(), m.offset(), value));
    }
    let a = &by_id["inc-a"];
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].0, a[1].0, "one incident, one partition");
    assert_eq!((&a[0].2, &a[1].2), (&sent[0], &sent[2]), "in version order");
    assert_eq!(by_id["inc-b"][0].2, sent[1]);
}

#[test]
fn a_flush_without_acknowledgements_fails_after_its_timeout_naming_what_is_in_flight() {
    // Nothing listens on port 1: the insight can only wait in librdkafka's queue.
    let mut config = KafkaSinkConfig::new("127.0.0.1:1", "kaizen-insights");
    config.flush_timeout = Duration::from_millis(300);
    let mut sink = KafkaInsightSink::new(&config).expect("insight sink");
    sink.emit(&insight("inc-a", 1)).expect("emit queues");
    let started = Instant::now();
    let err = sink.flush_acked().expect_err("nothing was acknowledged");
    assert!(
        matches!(err, KafkaError::FlushTimeout { in_flight: 1, .. }),
        "{err}"
    );
    assert!(
        started.elapsed() >= config.flush_timeout,
        "it waited the timeout out"
    );
    assert_eq!(sink.delivered(), 0);
}

#[test]
fn tls_carries_the_source_and_the_sinks() {
    let Some(broker) = Broker::start_tls() else {
        return;
    };
    let input = unique("kaizen-native");
    let output = unique("kaizen-insights");
    create_topic(&broker, &input, 1);
    create_topic(&broker, &output, 1);
    let p = producer(&broker);
    produce(&p, &input, 0, &metric_line("api", 7));
    flush(&p);
    let formats = [(input.as_str(), Format::Native)];
    let mut source = source(&broker, &unique("group"), &formats, 0);
    let records = poll_until(&mut source, 1, &broker);
    assert_eq!(records[0].events()[0].service.as_str(), "api");
    let mut sink = KafkaInsightSink::new(&sink_config(&broker, &output)).expect("insight sink");
    sink.emit(&insight("inc-tls", 1)).expect("emit");
    InsightSink::flush(&mut sink).expect("flush over TLS");
    let read = read_all(&broker, &output, 1, 1);
    assert_eq!(read[0].key(), Some(b"inc-tls".as_slice()));
}

#[test]
fn sources_and_sinks_can_move_to_worker_threads() {
    fn send<T: Send>() {}
    send::<KafkaSource>();
    send::<KafkaInsightSink>();
    send::<KafkaDeadLetter>();
    send::<KafkaRecord>();
}
