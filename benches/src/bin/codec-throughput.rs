//! Decoding throughput of the input codecs, in memory (no Kafka, no I/O): OTLP/protobuf log
//! batches as the Collector's Kafka exporter writes them, the same batches as OTLP/JSON, and
//! native JSON lines one per message. Prints one JSON line per format with events/s and MB/s.
//!
//! The OTLP batches are encoded with prost from `kaizen_benches::otlp`'s message types, not
//! with the decoder's own, so the bench also checks that both sides agree on the wire format.
//!
//! `cargo run --release -p kaizen-benches --bin codec-throughput -- --batches 5000`

use std::time::Instant;

use anyhow::{bail, Result};
use clap::Parser;
use kaizen_benches::otlp::{
    AnyValue, ExportLogsServiceRequest, KeyValue, LogRecord, Resource, ResourceLogs, ScopeLogs,
};
use kaizen_connectors::codecs::{decode, Format};
use kaizen_connectors::OtlpSignal;
use prost::Message;
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// OTLP log batches (Kafka messages) to decode.
    #[arg(long, default_value_t = 5_000)]
    batches: usize,
    /// Log records per OTLP batch.
    #[arg(long, default_value_t = 100)]
    records_per_batch: usize,
    /// Native JSON lines (one per message) to decode.
    #[arg(long, default_value_t = 500_000)]
    lines: usize,
    /// Timed passes over the same messages; the fastest is reported.
    #[arg(long, default_value_t = 3)]
    passes: usize,
}

const SERVICES: [&str; 8] = [
    "frontend", "checkout", "payments", "catalog", "cart", "shipping", "users", "search",
];
const T0: u64 = 1_767_600_000_000_000_000;

fn text(s: impl Into<String>) -> Option<AnyValue> {
    Some(AnyValue {
        string_value: Some(s.into()),
        int_value: None,
    })
}

fn kv(key: &str, value: Option<AnyValue>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value,
    }
}

/// One batch: one resource (a pod of one service), `n` records with realistic attributes.
fn otlp_batch(b: usize, n: usize) -> ExportLogsServiceRequest {
    let service = SERVICES[b % SERVICES.len()];
    let records = (0..n)
        .map(|i| {
            let k = (b * n + i) as u64;
            let error = k.is_multiple_of(17);
            LogRecord {
                time_unix_nano: T0 + k * 1_000_000,
                observed_time_unix_nano: T0 + k * 1_000_000 + 250_000,
                severity_number: if error { 17 } else { 9 },
                severity_text: if error { "ERROR" } else { "INFO" }.to_owned(),
                body: text(format!(
                    "{} /api/v1/orders/{} completed status={} duration_ms={}",
                    if error { "POST" } else { "GET" },
                    k % 10_000,
                    if error { 503 } else { 200 },
                    k % 900
                )),
                attributes: vec![
                    kv("http.route", text("/api/v1/orders/{id}")),
                    kv(
                        "http.response.status_code",
                        Some(AnyValue {
                            string_value: None,
                            int_value: Some(if error { 503 } else { 200 }),
                        }),
                    ),
                    kv("thread.name", text(format!("worker-{}", k % 32))),
                    kv("code.function", text("OrderController.handle")),
                ],
                trace_id: (k as u128 * 0x9e37_79b9).to_be_bytes().to_vec(),
                span_id: k.to_be_bytes().to_vec(),
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", text(service)),
                    kv("service.instance.id", text(format!("{service}-{}", b % 4))),
                    kv("k8s.namespace.name", text("shop")),
                    kv("k8s.pod.name", text(format!("{service}-7d9f-{}", b % 4))),
                    kv("host.name", text(format!("node-{}", b % 6))),
                ],
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
            }],
        }],
    }
}

/// The same batch as OTLP/JSON, the way the Collector's `otlp_json` encoding writes it.
fn otlp_json(req: &ExportLogsServiceRequest) -> Vec<u8> {
    let kvs = |attrs: &[KeyValue]| -> Vec<serde_json::Value> {
        attrs
            .iter()
            .map(|a| {
                let v = a.value.as_ref();
                let value = match (
                    v.and_then(|v| v.string_value.as_ref()),
                    v.and_then(|v| v.int_value),
                ) {
                    (Some(s), _) => json!({ "stringValue": s }),
                    (None, Some(i)) => json!({ "intValue": i.to_string() }),
                    _ => json!({}),
                };
                json!({ "key": a.key, "value": value })
            })
            .collect()
    };
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let rl = &req.resource_logs[0];
    let records: Vec<serde_json::Value> = rl.scope_logs[0]
        .log_records
        .iter()
        .map(|r| {
            json!({
                "timeUnixNano": r.time_unix_nano.to_string(),
                "observedTimeUnixNano": r.observed_time_unix_nano.to_string(),
                "severityNumber": r.severity_number,
                "severityText": r.severity_text,
                "body": { "stringValue": r.body.as_ref().and_then(|b| b.string_value.clone()) },
                "attributes": kvs(&r.attributes),
                "traceId": hex(&r.trace_id),
                "spanId": hex(&r.span_id),
            })
        })
        .collect();
    let resource = rl
        .resource
        .as_ref()
        .map(|r| kvs(&r.attributes))
        .unwrap_or_default();
    json!({"resourceLogs": [{"resource": {"attributes": resource}, "scopeLogs": [{"scope": {}, "logRecords": records}]}]})
        .to_string()
        .into_bytes()
}

/// Native JSON lines: metrics and logs in the proportions the simulator emits.
fn native_line(k: usize) -> Vec<u8> {
    let service = SERVICES[k % SERVICES.len()];
    let ts = 1_767_600_000.0 + k as f64 * 0.001;
    let line = if k.is_multiple_of(3) {
        format!(
            r#"{{"ts":{ts:.3},"kind":"log","service":"{service}","level":"info","message":"GET /api/v1/orders/{} completed status=200 duration_ms={}","attributes":{{"pod":"{service}-7d9f-{}","trace_id":"{:016x}"}}}}"#,
            k % 10_000,
            k % 900,
            k % 4,
            k * 2_654_435_761
        )
    } else {
        format!(
            r#"{{"ts":{ts:.3},"kind":"metric","service":"{service}","name":"http_latency_p99_ms","value":{},"labels":{{"instance":"{service}-{}"}}}}"#,
            (k % 900) as f64 + 0.5,
            k % 4
        )
    };
    line.into_bytes()
}

/// CPU time of this thread so far (Linux `/proc/thread-self/schedstat`, nanoseconds): on a
/// machine shared with other work, events per CPU second is the number that does not depend on
/// the load.
fn thread_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

/// Decodes every message `passes` times; reports the fastest pass.
fn measure(name: &str, format: Format, messages: &[Vec<u8>], passes: usize) -> Result<()> {
    let bytes: usize = messages.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(1024);
    let (mut best, mut best_cpu) = (f64::INFINITY, f64::INFINITY);
    let mut events = 0usize;
    for _ in 0..passes.max(1) {
        events = 0;
        let cpu = thread_cpu_secs();
        let started = Instant::now();
        for m in messages {
            out.clear();
            events += decode(format, m, &mut out)?;
        }
        best = best.min(started.elapsed().as_secs_f64());
        if let (Some(before), Some(after)) = (cpu, thread_cpu_secs()) {
            best_cpu = best_cpu.min(after - before);
        }
    }
    if events == 0 {
        bail!("{name}: nothing decoded");
    }
    println!(
        "{}",
        json!({"format": name, "messages": messages.len(), "events": events, "bytes": bytes,
               "secs": best, "events_per_sec": events as f64 / best,
               "mb_per_sec": bytes as f64 / 1e6 / best,
               "cpu_secs": best_cpu.is_finite().then_some(best_cpu),
               "events_per_cpu_sec": best_cpu.is_finite().then(|| events as f64 / best_cpu)})
    );
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let batches: Vec<ExportLogsServiceRequest> = (0..args.batches)
        .map(|b| otlp_batch(b, args.records_per_batch))
        .collect();
    let proto: Vec<Vec<u8>> = batches.iter().map(Message::encode_to_vec).collect();
    let otlp_json: Vec<Vec<u8>> = batches.iter().map(otlp_json).collect();
    drop(batches);
    let native: Vec<Vec<u8>> = (0..args.lines).map(native_line).collect();

    let logs = Format::OtlpProto(Some(OtlpSignal::Logs));
    measure("otlp_proto_logs", logs, &proto, args.passes)?;
    measure("otlp_json_logs", Format::OtlpJson, &otlp_json, args.passes)?;
    measure("native", Format::Native, &native, args.passes)?;
    measure("auto(otlp_proto_logs)", Format::Auto, &proto, args.passes)?;
    measure("auto(native)", Format::Auto, &native, args.passes)?;
    Ok(())
}
