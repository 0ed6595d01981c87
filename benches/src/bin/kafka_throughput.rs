//! Kafka → kaizen → Kafka on one machine: pre-produces N generated events to input topics of a
//! Kafka-protocol broker (Nisshi on 127.0.0.1, started like the Kafka tests start it, or
//! `--brokers`), then runs the live driver `kaizen run` uses (one `KafkaSource` per worker in
//! one consumer group → `KafkaLive` → `run_live` → `KafkaInsightSink`) over them, and prints one
//! JSON line per run. Before each kaizen run a plain consumer that only counts the same
//! messages (no decoding, no engine) measures what the broker and librdkafka allow.
//!
//! Formats: `native` is one JSON line per message on one topic; `otlp_proto` is what the
//! Collector's Kafka exporter writes — `ExportLogsServiceRequest`, `ExportMetricsServiceRequest`
//! and `ExportTraceServiceRequest` batches of `--batch` records on `otlp_logs`, `otlp_metrics`
//! and `otlp_spans` — with the few alerts, deploys and feedback events as native lines on a
//! fourth topic. The content is the simulator's (40 services × 4 instances, metrics, logs,
//! spans, alerts, deploys and injected faults), so the engine does real work and opens real
//! incidents. The OTLP messages are encoded with prost from message types declared here, not
//! with the decoder's own.
//!
//! Timing: `seconds` runs from the start of the poll that returned the first record (the
//! source decodes inside its poll) to `run_live` returning once the last record was read
//! (intake stops, everything read is processed, insights are flushed and acknowledged, offsets
//! committed). `intake_seconds` ends when the poll that returned the last record returns,
//! comparable to the consumer-only `seconds`. Insight latency (hdrhistogram) is the wall time
//! from the start of the first poll that returned an event at or after the insight's
//! `updated_at` (event time) to the insight's arrival on the insights topic, seen by a separate
//! consumer: an upper bound on "evidence read → insight on Kafka", since the event that caused
//! a version is read by that poll or a later one. CPU fields come from `/proc` (this process,
//! the Nisshi process it started, and the whole machine, to see other load).
//!
//! `cargo run --release -p kaizen-benches --bin kafka-throughput -- --events 1000000 --format native`

// Test support shared with the Kafka tests: a broker that fails to start ends the bench.
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "../../../connectors/tests/support/nisshi.rs"]
mod nisshi;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use kaizen_benches::otlp::{
    AnyValue, ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest,
    Gauge, KeyValue, LogRecord, Metric, NumberDataPoint, Resource, ResourceLogs, ResourceMetrics,
    ResourceSpans, ScopeLogs, ScopeMetrics, ScopeSpans, Span, Status, Sum,
};
use kaizen_benches::{peak_rss_mib, scenario_for};
use kaizen_connectors::{
    kafka::KafkaSinkConfig, Format, InsightSink, KafkaInsightSink, KafkaSource, KafkaSourceConfig,
    OtlpSignal,
};
use kaizen_engine::{
    run_live, CommitMode, EngineConfig, KafkaLive, LiveConfig, LiveHooks, LiveSource, Partition,
    Polled,
};
use kaizen_model::{Event, EventBody, Insight, Level, MetricKind, SpanStatus, Timestamp};
use kaizen_rules::{LiveRules, RuleSet};
use kaizen_simulator::{generate, topology};
use prost::Message as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

/// The allocator `kaizen` runs with (src/main.rs), so the bench measures what it ships.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum InputFormat {
    /// kaizen's native JSON lines, `--lines-per-message` per message, one topic.
    Native,
    /// OTLP/protobuf batches as the Collector's Kafka exporter writes them.
    #[value(name = "otlp_proto", alias = "otlp-proto")]
    OtlpProto,
}

impl InputFormat {
    fn name(self) -> &'static str {
        match self {
            InputFormat::Native => "native",
            InputFormat::OtlpProto => "otlp_proto",
        }
    }
}

#[derive(Parser)]
struct Args {
    /// Approximate number of events to produce (the scenario is sized to it).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Input format.
    #[arg(long, value_enum, default_value_t = InputFormat::Native)]
    format: InputFormat,
    /// Timely workers (one Kafka consumer each, one group); every topic gets this many
    /// partitions, and the consumer-only peer uses as many consumers.
    #[arg(long, short = 'w', default_value_t = 1)]
    workers: usize,
    /// Bootstrap servers of a running broker (default: start Nisshi on 127.0.0.1).
    #[arg(long)]
    brokers: Option<String>,
    /// librdkafka property for every client (producer, consumers, insight sink), `KEY=VALUE`,
    /// repeatable: TLS or SASL for `--brokers`, or consumer settings such as
    /// `fetch.queue.backoff.ms=10` (as `[kafka.properties]` would pass them).
    #[arg(long = "property", value_parser = key_value)]
    properties: Vec<(String, String)>,
    /// OTLP records (log records, data points, spans) per Kafka message.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Native JSON lines per Kafka message.
    #[arg(long, default_value_t = 1)]
    lines_per_message: usize,
    /// Producer compression of the input topics (`none`, `lz4`, `zstd`, `gzip`, `snappy`).
    #[arg(long, default_value = "none")]
    compression: String,
    /// Rule files or directories to run beside the detectors (as `[engine] rules`).
    #[arg(long)]
    rules: Vec<PathBuf>,
    /// Most Kafka messages one source poll returns (`KafkaSourceConfig::max_batch`; 4096 is
    /// what `kaizen run` uses). With several input topics, small values let one topic's
    /// backlog run the watermark ahead of the others (see `late` in the output).
    #[arg(long, default_value_t = 4096)]
    max_batch: usize,
    /// Runs over the same input (each: consumer-only peer, then kaizen; fresh groups).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Skip the consumer-only peer.
    #[arg(long)]
    no_peer: bool,
    /// Scenario seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            string_value: Some(value.to_owned()),
            int_value: None,
        }),
    }
}

fn resource(pairs: &[(&str, &str)]) -> Option<Resource> {
    Some(Resource {
        attributes: pairs.iter().map(|(k, v)| kv(k, v)).collect(),
    })
}

fn nanos(ts: Timestamp) -> u64 {
    ts.as_millis().saturating_mul(1_000_000)
}

fn unhex(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return Vec::new();
    }
    let digit = |c: u8| (c as char).to_digit(16);
    b.chunks(2)
        .map(|p| Some((digit(p[0])? * 16 + digit(p[1])?) as u8))
        .collect::<Option<Vec<u8>>>()
        .unwrap_or_default()
}

fn severity(level: Level) -> (i32, &'static str) {
    match level {
        Level::Trace => (1, "TRACE"),
        Level::Debug => (5, "DEBUG"),
        Level::Info => (9, "INFO"),
        Level::Warn => (13, "WARN"),
        Level::Error => (17, "ERROR"),
        Level::Fatal => (21, "FATAL"),
    }
}

/// One partition's OTLP batches being filled, per signal: records grouped by resource, the way
/// the Collector's batch processor hands them to the exporter.
#[derive(Default)]
struct OtlpBatches {
    logs: Vec<ResourceLogs>,
    logs_index: HashMap<(String, String), usize>,
    log_records: usize,
    metrics: Vec<ResourceMetrics>,
    metrics_index: HashMap<(String, String), usize>,
    points: usize,
    spans: Vec<ResourceSpans>,
    spans_index: HashMap<String, usize>,
    span_count: usize,
}

impl OtlpBatches {
    fn add_log(&mut self, e: &Event, log: &kaizen_model::Log) {
        let service = e.service.as_str();
        let pod = log.attributes.get("pod").unwrap_or("");
        let key = (service.to_owned(), pod.to_owned());
        let i = *self.logs_index.entry(key).or_insert_with(|| {
            self.logs.push(ResourceLogs {
                resource: resource(&[("service.name", service), ("k8s.pod.name", pod)]),
                scope_logs: vec![ScopeLogs::default()],
            });
            self.logs.len() - 1
        });
        let (number, text) = severity(log.level);
        let record = LogRecord {
            time_unix_nano: nanos(e.ts),
            observed_time_unix_nano: nanos(e.ts) + 250_000,
            severity_number: number,
            severity_text: text.to_owned(),
            body: Some(AnyValue {
                string_value: Some(log.message.clone()),
                int_value: None,
            }),
            attributes: log
                .attributes
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "pod" | "trace_id"))
                .map(|(k, v)| kv(k.as_str(), v))
                .collect(),
            trace_id: log
                .attributes
                .get("trace_id")
                .map(unhex)
                .unwrap_or_default(),
            span_id: Vec::new(),
        };
        if let Some(scope) = self.logs[i].scope_logs.first_mut() {
            scope.log_records.push(record);
        }
        self.log_records += 1;
    }

    fn add_metric(&mut self, e: &Event, m: &kaizen_model::Metric) {
        let service = e.service.as_str();
        let instance = m.labels.get("instance").map_or("", |s| s.as_str());
        let key = (service.to_owned(), instance.to_owned());
        let i = *self.metrics_index.entry(key).or_insert_with(|| {
            self.metrics.push(ResourceMetrics {
                resource: resource(&[("service.name", service), ("service.instance.id", instance)]),
                scope_metrics: vec![ScopeMetrics::default()],
            });
            self.metrics.len() - 1
        });
        let point = NumberDataPoint {
            attributes: m
                .labels
                .iter()
                .filter(|(k, _)| k.as_str() != "instance")
                .map(|(k, v)| kv(k.as_str(), v.as_str()))
                .collect(),
            time_unix_nano: nanos(e.ts),
            as_double: Some(m.value),
        };
        let (gauge, sum) = match m.metric_kind {
            MetricKind::Gauge => (
                Some(Gauge {
                    data_points: vec![point],
                }),
                None,
            ),
            MetricKind::Counter => (
                None,
                Some(Sum {
                    data_points: vec![point],
                    aggregation_temporality: 2,
                    is_monotonic: true,
                }),
            ),
        };
        if let Some(scope) = self.metrics[i].scope_metrics.first_mut() {
            scope.metrics.push(Metric {
                name: m.name.as_str().to_owned(),
                gauge,
                sum,
            });
        }
        self.points += 1;
    }

    fn add_span(&mut self, e: &Event, s: &kaizen_model::Span, n: u64) {
        let service = e.service.as_str();
        let i = *self
            .spans_index
            .entry(service.to_owned())
            .or_insert_with(|| {
                self.spans.push(ResourceSpans {
                    resource: resource(&[("service.name", service)]),
                    scope_spans: vec![ScopeSpans::default()],
                });
                self.spans.len() - 1
            });
        let start = nanos(e.ts);
        let span = Span {
            trace_id: s.trace_id.as_deref().map(unhex).unwrap_or_default(),
            span_id: n.to_be_bytes().to_vec(),
            name: s.operation.as_str().to_owned(),
            kind: if s.peer.is_some() { 3 } else { 2 },
            start_time_unix_nano: start,
            end_time_unix_nano: start + (s.duration_ms * 1e6) as u64,
            attributes: s
                .peer
                .iter()
                .map(|p| kv("peer.service", p.as_str()))
                .collect(),
            status: (s.status == SpanStatus::Error).then_some(Status { code: 2 }),
        };
        if let Some(scope) = self.spans[i].scope_spans.first_mut() {
            scope.spans.push(span);
        }
        self.span_count += 1;
    }

    fn take_logs(&mut self) -> Option<Vec<u8>> {
        if self.log_records == 0 {
            return None;
        }
        self.log_records = 0;
        self.logs_index.clear();
        let req = ExportLogsServiceRequest {
            resource_logs: std::mem::take(&mut self.logs),
        };
        Some(req.encode_to_vec())
    }

    fn take_metrics(&mut self) -> Option<Vec<u8>> {
        if self.points == 0 {
            return None;
        }
        self.points = 0;
        self.metrics_index.clear();
        let req = ExportMetricsServiceRequest {
            resource_metrics: std::mem::take(&mut self.metrics),
        };
        Some(req.encode_to_vec())
    }

    fn take_spans(&mut self) -> Option<Vec<u8>> {
        if self.span_count == 0 {
            return None;
        }
        self.span_count = 0;
        self.spans_index.clear();
        let req = ExportTraceServiceRequest {
            resource_spans: std::mem::take(&mut self.spans),
        };
        Some(req.encode_to_vec())
    }
}

// ---------------------------------------------------------------------------------------------
// Broker side: clients, topics, producing.

fn client(brokers: &str, properties: &[(String, String)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    for (k, v) in properties {
        c.set(k, v);
    }
    c
}

fn create_topics(config: &ClientConfig, names: &[(&str, i32)]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = config.create()?;
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|(n, p)| NewTopic::new(n, *p, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in pollster::block_on(admin.create_topics(&topics, &options))? {
        if let Err((topic, code)) = result {
            bail!("create topic {topic}: {code}");
        }
    }
    Ok(())
}

/// One input topic: its name, the format kaizen reads it with, and what was produced to it.
struct Topic {
    name: String,
    format: Format,
    messages: u64,
    events: u64,
    bytes: u64,
}

struct Input {
    producer: BaseProducer,
    topics: Vec<Topic>,
    partitions: i32,
    error: Option<anyhow::Error>,
}

impl Input {
    fn send(&mut self, topic: usize, partition: i32, payload: &[u8], events: u64) {
        if self.error.is_some() {
            return;
        }
        let Some(t) = self.topics.get_mut(topic) else {
            return;
        };
        let mut record = BaseRecord::<[u8], [u8]>::to(&t.name)
            .partition(partition)
            .payload(payload);
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    back,
                )) => {
                    self.producer.poll(Duration::from_millis(10));
                    record = back;
                }
                Err((e, _)) => {
                    self.error = Some(anyhow!("produce to {}: {e}", t.name));
                    return;
                }
            }
        }
        self.producer.poll(Duration::ZERO);
        t.messages += 1;
        t.events += events;
        t.bytes += payload.len() as u64;
    }
}

fn partition_of(service: &str, partitions: i32) -> i32 {
    // FNV-1a: a service's events stay in one partition, in order.
    let h = service.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (h % partitions.max(1) as u64) as i32
}

/// Generates the scenario and produces it; returns the topics with their counts.
fn produce(
    args: &Args,
    config: &ClientConfig,
    scenario: &kaizen_simulator::ScenarioConfig,
    suffix: &str,
) -> Result<Vec<Topic>> {
    let partitions = args.workers.max(1) as i32;
    let topic = |name: &str, format: Format| Topic {
        name: format!("{name}-{suffix}"),
        format,
        messages: 0,
        events: 0,
        bytes: 0,
    };
    let topics = match args.format {
        InputFormat::Native => vec![topic("native", Format::Native)],
        InputFormat::OtlpProto => vec![
            topic("otlp_logs", Format::OtlpProto(Some(OtlpSignal::Logs))),
            topic("otlp_metrics", Format::OtlpProto(Some(OtlpSignal::Metrics))),
            topic("otlp_spans", Format::OtlpProto(Some(OtlpSignal::Traces))),
            topic("events", Format::Native),
        ],
    };
    let names: Vec<(&str, i32)> = topics
        .iter()
        .map(|t| (t.name.as_str(), partitions))
        .collect();
    create_topics(config, &names)?;
    let producer: BaseProducer = config
        .clone()
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "500000")
        .set("compression.type", &args.compression)
        .create()?;
    let mut input = Input {
        producer,
        topics,
        partitions,
        error: None,
    };
    let batch = args.batch.max(1);
    let lines = args.lines_per_message.max(1);
    let mut native: Vec<(Vec<u8>, u64)> = vec![(Vec::new(), 0); partitions as usize];
    let mut otlp: Vec<OtlpBatches> = (0..partitions).map(|_| OtlpBatches::default()).collect();
    let mut n = 0u64;
    let format = args.format;
    generate(scenario, &mut |e: &Event| {
        n += 1;
        let p = partition_of(e.service.as_str(), input.partitions);
        let pi = p as usize;
        match (format, &e.body) {
            (InputFormat::OtlpProto, EventBody::Log(log)) => {
                otlp[pi].add_log(e, log);
                if otlp[pi].log_records >= batch {
                    if let Some(m) = otlp[pi].take_logs() {
                        input.send(0, p, &m, batch as u64);
                    }
                }
            }
            (InputFormat::OtlpProto, EventBody::Metric(m)) => {
                otlp[pi].add_metric(e, m);
                if otlp[pi].points >= batch {
                    if let Some(m) = otlp[pi].take_metrics() {
                        input.send(1, p, &m, batch as u64);
                    }
                }
            }
            (InputFormat::OtlpProto, EventBody::Span(s)) => {
                otlp[pi].add_span(e, s, n);
                if otlp[pi].span_count >= batch {
                    if let Some(m) = otlp[pi].take_spans() {
                        input.send(2, p, &m, batch as u64);
                    }
                }
            }
            (InputFormat::OtlpProto, _) => {
                let mut line = Vec::with_capacity(256);
                e.write_json(&mut line);
                input.send(3, p, &line, 1);
            }
            (InputFormat::Native, _) => {
                let (buf, count) = &mut native[pi];
                if !buf.is_empty() {
                    buf.push(b'\n');
                }
                e.write_json(buf);
                *count += 1;
                if *count >= lines as u64 {
                    let (m, c) = std::mem::take(&mut native[pi]);
                    input.send(0, p, &m, c);
                }
            }
        }
    });
    for (p, b) in otlp.iter_mut().enumerate() {
        let (logs, points, spans) = (b.log_records, b.points, b.span_count);
        if let Some(m) = b.take_logs() {
            input.send(0, p as i32, &m, logs as u64);
        }
        if let Some(m) = b.take_metrics() {
            input.send(1, p as i32, &m, points as u64);
        }
        if let Some(m) = b.take_spans() {
            input.send(2, p as i32, &m, spans as u64);
        }
    }
    for (p, (m, c)) in native.into_iter().enumerate() {
        if c > 0 {
            input.send(0, p as i32, &m, c);
        }
    }
    if let Some(e) = input.error.take() {
        return Err(e);
    }
    input
        .producer
        .flush(Duration::from_secs(120))
        .context("flush the input")?;
    Ok(input.topics)
}

// ---------------------------------------------------------------------------------------------
// Measuring.

/// Which offset is the last of each input partition, when the first and the last of them
/// were read, and the resources used in between.
struct Completion {
    last: Vec<(String, i32, i64)>,
    seen: Vec<AtomicBool>,
    done: AtomicBool,
    broker_pid: Option<String>,
    first: Mutex<Option<(Instant, Usage)>>,
    /// Taken before each poll until one returns a record, so that the first poll's own work
    /// (librdkafka, decoding) counts.
    armed: Mutex<Option<(Instant, Usage, Vec<ThreadCpu>)>>,
    finished: Mutex<Option<Instant>>,
    /// CPU seconds per thread of this process when the first and the last record were read.
    threads: Mutex<(Vec<ThreadCpu>, Vec<ThreadCpu>)>,
}

impl Completion {
    fn new(last: &[(String, i32, i64)], broker_pid: Option<String>) -> Completion {
        Completion {
            seen: last.iter().map(|_| AtomicBool::new(false)).collect(),
            last: last.to_vec(),
            done: AtomicBool::new(false),
            broker_pid,
            first: Mutex::new(None),
            armed: Mutex::new(None),
            finished: Mutex::new(None),
            threads: Mutex::new((Vec::new(), Vec::new())),
        }
    }

    /// Call before a poll while no record has been read: the clock and CPU counters the
    /// measurement starts from if this poll returns the first record.
    fn arm(&self) {
        if self.first.lock().is_ok_and(|f| f.is_none()) {
            let snapshot = (
                Instant::now(),
                Usage::start(self.broker_pid.as_deref()),
                thread_cpu(),
            );
            if let Ok(mut a) = self.armed.lock() {
                *a = Some(snapshot);
            }
        }
    }

    /// A poll returned the first record: the measurement starts where it was armed.
    fn started(&self) {
        let Ok(mut f) = self.first.lock() else {
            return;
        };
        if f.is_some() {
            return;
        }
        let armed = self.armed.lock().ok().and_then(|mut a| a.take());
        let (at, usage, threads) = armed.unwrap_or_else(|| {
            let usage = Usage::start(self.broker_pid.as_deref());
            (Instant::now(), usage, thread_cpu())
        });
        *f = Some((at, usage));
        if let Ok(mut t) = self.threads.lock() {
            t.0 = threads;
        }
    }

    /// Notes that `offset` of `topic`/`partition` was read; true once every partition's last
    /// offset has been.
    fn saw(&self, topic: &str, partition: i32, offset: i64) -> bool {
        for (i, (t, p, last)) in self.last.iter().enumerate() {
            if *p == partition && offset >= *last && t == topic {
                self.seen[i].store(true, Ordering::Release);
                if self.seen.iter().all(|s| s.load(Ordering::Acquire))
                    && !self.done.swap(true, Ordering::AcqRel)
                {
                    if let Ok(mut f) = self.finished.lock() {
                        *f = Some(Instant::now());
                    }
                    if let Ok(mut t) = self.threads.lock() {
                        t.1 = thread_cpu();
                    }
                }
            }
        }
        self.done.load(Ordering::Acquire)
    }

    /// First record read, last record read, and the resource use since the first one until
    /// now (normalised by `until - first`, or by `first → last` when `until` is `None`).
    fn result(&self, until: Option<Instant>) -> Option<(Instant, Instant, serde_json::Value)> {
        let first = self.first.lock().ok()?;
        let (at, usage) = first.as_ref()?;
        let finished = (*self.finished.lock().ok()?)?;
        let end = until.unwrap_or(finished);
        let mut usage = usage.stop(
            self.broker_pid.as_deref(),
            end.duration_since(*at).as_secs_f64(),
        );
        // Cores per thread name (summed over threads of one name) while reading the input.
        let intake = finished.duration_since(*at).as_secs_f64().max(1e-9);
        let mut by_name: BTreeMap<String, f64> = BTreeMap::new();
        if let Ok(t) = self.threads.lock() {
            for (tid, name, secs) in &t.1 {
                let before = t.0.iter().find(|b| b.0 == *tid).map_or(0.0, |b| b.2);
                *by_name.entry(name.clone()).or_default() += (secs - before) / intake;
            }
        }
        by_name.retain(|_, cores| *cores >= 0.005);
        if let Some(u) = usage.as_object_mut() {
            u.insert("intake_thread_cores".into(), json!(by_name));
        }
        Some((*at, finished, usage))
    }
}

/// Last offset of every input partition, asked of the broker.
fn last_offsets(
    config: &ClientConfig,
    topics: &[Topic],
    partitions: i32,
) -> Result<Vec<(String, i32, i64)>> {
    let consumer: BaseConsumer = config.create()?;
    let mut out = Vec::new();
    for t in topics {
        for p in 0..partitions {
            let (_, high) = consumer.fetch_watermarks(&t.name, p, Duration::from_secs(10))?;
            if high > 0 {
                out.push((t.name.clone(), p, high - 1));
            }
        }
    }
    Ok(out)
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, utime field 14, stime field 15 (1-based).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// A thread of this process: id, name, CPU seconds so far.
type ThreadCpu = (String, String, f64);

/// Every thread of this process with its CPU seconds, from `/proc/self/task`.
fn thread_cpu() -> Vec<ThreadCpu> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|t| {
            let tid = t.file_name().to_string_lossy().into_owned();
            let name = std::fs::read_to_string(t.path().join("comm")).ok()?;
            let secs = cpu_secs(&format!("self/task/{tid}"))?;
            Some((tid, name.trim().to_owned(), secs))
        })
        .collect()
}

/// Busy and total jiffies of the whole machine, from `/proc/stat`.
fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// The pid of the Nisshi process listening on `bootstrap` (to account for its CPU).
fn broker_pid(bootstrap: &str) -> Option<String> {
    let url = format!("tcp://{bootstrap}");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_nisshi = args.first().is_some_and(|a| a.ends_with(b"nisshi"));
        if is_nisshi && args.contains(&url.as_bytes()) {
            return Some(name);
        }
    }
    None
}

/// Resource use over one run: this process, the broker, the machine.
struct Usage {
    own: Option<f64>,
    broker: Option<f64>,
    machine: Option<(u64, u64)>,
}

impl Usage {
    fn start(broker: Option<&str>) -> Usage {
        Usage {
            own: cpu_secs("self"),
            broker: broker.and_then(cpu_secs),
            machine: machine_jiffies(),
        }
    }

    /// CPU of this process and of the broker, and how busy the machine was, since the start
    /// (cores: divided by `wall` seconds).
    fn stop(&self, broker: Option<&str>, wall: f64) -> serde_json::Value {
        let own = cpu_secs("self").zip(self.own).map(|(b, a)| b - a);
        let brk = broker
            .and_then(cpu_secs)
            .zip(self.broker)
            .map(|(b, a)| b - a);
        let machine = machine_jiffies()
            .zip(self.machine)
            .map(|((b1, t1), (b0, t0))| {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
                (b1 - b0) as f64 / (t1 - t0).max(1) as f64 * cores
            });
        json!({
            "cpu_secs": own,
            "cpu_cores": own.map(|c| c / wall),
            "broker_cpu_secs": brk,
            "broker_cpu_cores": brk.map(|c| c / wall),
            "machine_busy_cores": machine,
        })
    }
}

/// What one consumer-only run measured.
struct PeerRun {
    seconds: f64,
    messages: u64,
    bytes: u64,
    usage: serde_json::Value,
}

/// The consumer-only peer: reads every input message (no decoding) with `workers` consumers
/// in one fresh group and counts them.
fn peer(
    config: &ClientConfig,
    topics: &[Topic],
    last: &[(String, i32, i64)],
    workers: usize,
    broker_pid: Option<String>,
) -> Result<PeerRun> {
    let completion = Arc::new(Completion::new(last, broker_pid));
    let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
    let group = nisshi::unique("peer");
    let mut threads = Vec::new();
    for w in 0..workers.max(1) {
        let consumer: BaseConsumer = config
            .clone()
            .set("group.id", &group)
            .set("client.id", format!("peer-w{w}"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .create()?;
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        consumer.subscribe(&refs)?;
        let completion = completion.clone();
        threads.push(std::thread::spawn(move || -> Result<(u64, u64)> {
            let (mut messages, mut bytes) = (0u64, 0u64);
            let mut quiet_since = Instant::now();
            while !completion.done.load(Ordering::Acquire) {
                if messages == 0 {
                    completion.arm();
                }
                match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) => {
                        if messages == 0 {
                            completion.started();
                        }
                        messages += 1;
                        bytes += m.payload_len() as u64;
                        completion.saw(m.topic(), m.partition(), m.offset());
                        quiet_since = Instant::now();
                    }
                    Some(Err(e)) => eprintln!("peer consumer: {e}"),
                    None => {
                        if quiet_since.elapsed() > Duration::from_secs(60) {
                            bail!("peer: nothing to read for 60 s before the end");
                        }
                    }
                }
            }
            Ok((messages, bytes))
        }));
    }
    let (mut messages, mut bytes) = (0, 0);
    for t in threads {
        let (m, b) = t.join().map_err(|_| anyhow!("peer thread panicked"))??;
        messages += m;
        bytes += b;
    }
    let (first, finished, usage) = completion
        .result(None)
        .ok_or_else(|| anyhow!("peer: no timing"))?;
    Ok(PeerRun {
        seconds: finished.duration_since(first).as_secs_f64(),
        messages,
        bytes,
        usage,
    })
}

/// kaizen's Kafka source with the bench's bookkeeping around it: when the poll that returned
/// the first record began, the newest event time read so far at each poll (for insight
/// latency), and shutdown once every partition's last offset has been read.
struct Timed {
    inner: KafkaLive,
    completion: Arc<Completion>,
    shutdown: Arc<AtomicBool>,
    newest: u64,
    reads: Arc<Mutex<Vec<(u64, Instant)>>>,
    polls: Arc<PollStats>,
    /// Whether the measurement has started (this worker's view).
    started: bool,
}

/// From the first record on: time the workers spent inside the source's poll (waiting for
/// librdkafka and decoding), polls, and how many came back with nothing (a starved worker).
#[derive(Default)]
struct PollStats {
    nanos: AtomicU64,
    polls: AtomicU64,
    empty: AtomicU64,
}

impl LiveSource for Timed {
    fn poll(&mut self, timeout: Duration, out: &mut Vec<Polled>) -> Result<(), String> {
        // Stamped before the poll: decoding happens inside it, and is kaizen's work.
        if !self.started {
            self.completion.arm();
        }
        let now = Instant::now();
        let start = out.len();
        self.inner.poll(timeout, out)?;
        let spent = now.elapsed().as_nanos() as u64;
        let got = out[start..]
            .iter()
            .any(|p| !matches!(p, Polled::Assignment(_)));
        if got && !self.started {
            self.started = true;
            self.completion.started();
        }
        if self.started {
            self.polls.nanos.fetch_add(spent, Ordering::Relaxed);
            self.polls.polls.fetch_add(1, Ordering::Relaxed);
            if !got {
                self.polls.empty.fetch_add(1, Ordering::Relaxed);
            }
        }
        if !got {
            return Ok(());
        }
        let mut newest = self.newest;
        let mut done = false;
        let mut last: Option<(&Partition, i64)> = None;
        for p in &out[start..] {
            let (from, offset) = match p {
                Polled::Event {
                    event,
                    from,
                    offset,
                } => {
                    newest = newest.max(event.ts.as_millis());
                    (from, *offset)
                }
                Polled::Rejected { from, offset, .. } => (from, *offset),
                Polled::Assignment(_) => continue,
            };
            if last != Some((from, offset)) {
                last = Some((from, offset));
                done |= self
                    .completion
                    .saw(from.stream.as_str(), from.partition, offset);
            }
        }
        if newest > self.newest {
            self.newest = newest;
            if let Ok(mut r) = self.reads.lock() {
                r.push((newest, now));
            }
        }
        if done {
            self.shutdown.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn commit(&mut self, offsets: &[(Partition, i64)], mode: CommitMode) -> Result<(), String> {
        self.inner.commit(offsets, mode)
    }

    fn lag(&self) -> Vec<(Partition, i64)> {
        self.inner.lag()
    }

    fn awaits_assignment(&self) -> bool {
        self.inner.awaits_assignment()
    }
}

/// The Kafka insight sink, counting what it is handed.
struct Counted {
    inner: KafkaInsightSink,
    emitted: u64,
}

impl InsightSink for Counted {
    fn emit(&mut self, insight: &Insight) -> std::io::Result<()> {
        self.emitted += 1;
        self.inner.emit(insight)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Insights seen on the insights topic: (arrival, `updated_at` in ms).
type Seen = Arc<Mutex<Vec<(Instant, u64)>>>;

/// Reads the insights topic as insights arrive, until `stop`.
fn observe_insights(
    config: &ClientConfig,
    topic: &str,
    stop: Arc<AtomicBool>,
    seen: Seen,
) -> Result<std::thread::JoinHandle<()>> {
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", nisshi::unique("insight-observer"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    Ok(std::thread::spawn(move || {
        while !stop.load(Ordering::Acquire) {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(20)) {
                let at = Instant::now();
                let updated = m
                    .payload()
                    .and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
                    .and_then(|v| {
                        serde_json::from_value::<Timestamp>(v["updated_at"].clone()).ok()
                    });
                if let (Some(ts), Ok(mut seen)) = (updated, seen.lock()) {
                    seen.push((at, ts.as_millis()));
                }
            }
        }
    }))
}

/// What one kaizen run measured.
struct KaizenRun {
    seconds: f64,
    intake_seconds: f64,
    report: kaizen_engine::LiveReport,
    emitted: u64,
    latency: Histogram<u64>,
    unmatched: u64,
    observed: usize,
    usage: serde_json::Value,
    polls: Arc<PollStats>,
}

/// Where kaizen reads and writes.
struct Wiring<'a> {
    config: &'a ClientConfig,
    brokers: &'a str,
    properties: &'a [(String, String)],
    topics: &'a [Topic],
    last: &'a [(String, i32, i64)],
    insights_topic: &'a str,
    broker_pid: Option<String>,
    max_batch: usize,
}

/// One run of the live driver over the input, as `kaizen run` wires it: a `KafkaSource` per
/// worker in a fresh group, `run_live`, a `KafkaInsightSink`.
fn kaizen(w: &Wiring<'_>, engine: &EngineConfig) -> Result<KaizenRun> {
    let completion = Arc::new(Completion::new(w.last, w.broker_pid.clone()));
    let shutdown = Arc::new(AtomicBool::new(false));
    let specs: Vec<(&str, Format)> = w
        .topics
        .iter()
        .map(|t| (t.name.as_str(), t.format))
        .collect();
    let group = nisshi::unique("kaizen");
    let mut source_config = KafkaSourceConfig::new(w.brokers, &group, &specs);
    source_config.properties = w.properties.iter().cloned().collect::<BTreeMap<_, _>>();
    source_config.max_batch = w.max_batch.max(1);
    let mut reads = Vec::new();
    let polls = Arc::new(PollStats::default());
    let mut slots: Vec<Option<Box<dyn LiveSource>>> = Vec::new();
    for worker in 0..engine.workers {
        let log = Arc::new(Mutex::new(Vec::new()));
        reads.push(log.clone());
        slots.push(Some(Box::new(Timed {
            inner: KafkaLive::new(KafkaSource::new(&source_config, worker)?),
            completion: completion.clone(),
            shutdown: shutdown.clone(),
            newest: 0,
            reads: log,
            polls: polls.clone(),
            started: false,
        })));
    }
    let mut sink_config = KafkaSinkConfig::new(w.brokers, w.insights_topic);
    sink_config.properties = source_config.properties.clone();
    let mut sink = Counted {
        inner: KafkaInsightSink::new(&sink_config)?,
        emitted: 0,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Seen = Arc::default();
    let observer = observe_insights(w.config, w.insights_topic, stop.clone(), seen.clone())?;

    let report = run_live(
        slots,
        engine,
        &LiveConfig::default(),
        &mut sink,
        LiveHooks::default(),
        shutdown,
    )?;
    let end = Instant::now();
    let (first, finished, usage) = completion
        .result(Some(end))
        .ok_or_else(|| anyhow!("kaizen: no timing"))?;

    // Every insight is acknowledged by now; give the observer time to read them all.
    let deadline = Instant::now() + Duration::from_secs(15);
    let count = || seen.lock().map_or(0, |s| s.len());
    while count() < sink.emitted as usize && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Release);
    observer
        .join()
        .map_err(|_| anyhow!("insight observer panicked"))?;
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();

    let reads: Vec<Vec<(u64, Instant)>> = reads
        .iter()
        .map(|r| r.lock().map(|v| v.clone()).unwrap_or_default())
        .collect();
    let mut latency = Histogram::<u64>::new(3)?;
    let mut unmatched = 0;
    for (arrived, updated) in &seen {
        let read_at = reads
            .iter()
            .filter_map(|log| {
                let i = log.partition_point(|(ts, _)| *ts < *updated);
                log.get(i).map(|(_, at)| *at)
            })
            .min();
        match read_at {
            Some(at) => {
                latency.record(arrived.saturating_duration_since(at).as_micros() as u64)?;
            }
            None => unmatched += 1,
        }
    }
    Ok(KaizenRun {
        seconds: end.duration_since(first).as_secs_f64(),
        intake_seconds: finished.duration_since(first).as_secs_f64(),
        report,
        emitted: sink.emitted,
        latency,
        unmatched,
        observed: seen.len(),
        usage,
        polls,
    })
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.workers == 0 {
        bail!("--workers must be at least 1");
    }
    let broker = match &args.brokers {
        Some(_) => None,
        None => Some(
            nisshi::Broker::start()
                .ok_or_else(|| anyhow!("KAIZEN_SKIP_KAFKA_TESTS=1 and no --brokers"))?,
        ),
    };
    let brokers = match (&args.brokers, &broker) {
        (Some(b), _) => b.clone(),
        (None, Some(b)) => b.bootstrap.clone(),
        (None, None) => bail!("no broker"),
    };
    let broker_pid = broker.as_ref().and_then(|b| broker_pid(&b.bootstrap));
    let config = client(&brokers, &args.properties);
    let suffix = nisshi::unique("kt");

    let scenario = scenario_for(args.events, args.seed);
    let started = Instant::now();
    let topics = produce(&args, &config, &scenario, &suffix)?;
    let produce_secs = started.elapsed().as_secs_f64();
    let events: u64 = topics.iter().map(|t| t.events).sum();
    let messages: u64 = topics.iter().map(|t| t.messages).sum();
    let bytes: u64 = topics.iter().map(|t| t.bytes).sum();
    let partitions = args.workers as i32;
    let last = last_offsets(&config, &topics, partitions)?;
    println!(
        "{}",
        json!({
            "bench": "kafka-throughput", "run": "produce", "format": args.format.name(),
            "events": events, "messages": messages, "bytes": bytes,
            "topics": topics.iter().map(|t| json!({"topic": t.name, "format": t.format.name(),
                "messages": t.messages, "events": t.events, "bytes": t.bytes})).collect::<Vec<_>>(),
            "partitions_per_topic": partitions,
            "seconds": produce_secs, "events_per_sec": events as f64 / produce_secs,
            "brokers": brokers,
            "broker": if broker.is_some() { "nisshi 127.0.0.1 (memory)" } else { "external" },
            "load_average": std::fs::read_to_string("/proc/loadavg").ok()
                .and_then(|l| l.split_whitespace().next().map(str::to_owned)),
        })
    );

    let mut engine = EngineConfig {
        workers: args.workers,
        topology: topology(&scenario),
        ..EngineConfig::default()
    };
    if !args.rules.is_empty() {
        let (set, errors) = RuleSet::load(&args.rules);
        if let Some(e) = errors.first() {
            bail!("rules: {e}");
        }
        engine.rules = Some(LiveRules::new(set));
    }
    for run in 0..args.repeat.max(1) {
        if !args.no_peer {
            let p = peer(&config, &topics, &last, args.workers, broker_pid.clone())?;
            let mut line = json!({
                "bench": "kafka-throughput", "run": "consumer-only", "repeat": run,
                "format": args.format.name(), "workers": args.workers,
                "events": events, "messages": p.messages, "bytes": p.bytes,
                "seconds": p.seconds, "events_per_sec": events as f64 / p.seconds,
                "messages_per_sec": p.messages as f64 / p.seconds,
                "mb_per_sec": p.bytes as f64 / 1e6 / p.seconds,
            });
            merge(&mut line, p.usage);
            println!("{line}");
        }

        // A fresh insights topic per run, so the observer sees only this run's insights.
        let insights_topic = format!("insights-{suffix}-{run}");
        create_topics(&config, &[(insights_topic.as_str(), 1)])?;
        let wiring = Wiring {
            config: &config,
            brokers: &brokers,
            properties: &args.properties,
            topics: &topics,
            last: &last,
            insights_topic: &insights_topic,
            broker_pid: broker_pid.clone(),
            max_batch: args.max_batch,
        };
        // Peak RSS of the kaizen run only (Linux: writing 5 resets VmHWM).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let r = kaizen(&wiring, &engine)?;
        let consumed = r.report.events + r.report.late;
        let ms = |q: f64| r.latency.value_at_quantile(q) as f64 / 1000.0;
        let mut line = json!({
            "bench": "kafka-throughput", "run": "kaizen", "repeat": run,
            "format": args.format.name(), "workers": args.workers,
            "events": consumed, "events_produced": events,
            "seconds": r.seconds, "events_per_sec": consumed as f64 / r.seconds,
            "intake_seconds": r.intake_seconds,
            "intake_events_per_sec": consumed as f64 / r.intake_seconds,
            "insights": r.report.insights, "insights_emitted": r.emitted,
            "insights_observed": r.observed,
            "late": r.report.late, "rejected": r.report.rejected,
            "latency_samples": r.latency.len(), "latency_unmatched": r.unmatched,
            "latency_p50_ms": ms(0.5), "latency_p99_ms": ms(0.99),
            "latency_max_ms": r.latency.max() as f64 / 1000.0,
            "rules": engine.rules.as_ref().map(|_| args.rules.len()),
            "max_batch": args.max_batch,
            "properties": args.properties.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "poll_seconds": r.polls.nanos.load(Ordering::Relaxed) as f64 / 1e9,
            "polls": r.polls.polls.load(Ordering::Relaxed),
            "empty_polls": r.polls.empty.load(Ordering::Relaxed),
            "peak_rss_mib": peak_rss_mib(),
        });
        merge(&mut line, r.usage);
        println!("{line}");
    }
    drop(broker);
    Ok(())
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    if let (Some(a), serde_json::Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}
