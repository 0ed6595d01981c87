//! `kaizen replay FORMAT:PATH …`: recorded topics and webhook captures in their own formats,
//! merged by event time, give the same bytes on any number of workers.
//!
//! A generated scenario is split by kind and re-encoded the way its producers would ship it:
//! alerts as Alertmanager webhook notifications, logs as OTLP/JSON requests and as base64
//! OTLP/protobuf requests (several records per message), metrics as native JSONL, spans and
//! changes as native JSONL under a plain path with a `:` in its name.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kaizen_model::Timestamp;
use serde_json::{json, Value};

fn kaizen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kaizen"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the kaizen binary runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kaizen-formats-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ts_millis(event: &Value) -> u64 {
    Timestamp::parse(event["ts"].as_str().unwrap())
        .unwrap()
        .as_millis()
}

/// One native alert as an Alertmanager v4 notification of one alert (a firing alert carries
/// its time as `startsAt`, a resolved one as `endsAt`).
fn alertmanager(alert: &Value) -> String {
    let ts = alert["ts"].as_str().unwrap();
    let firing = alert["status"] == "firing";
    json!({
        "version": "4",
        "status": alert["status"],
        "receiver": "kaizen",
        "alerts": [{
            "status": alert["status"],
            "labels": alert["labels"],
            "annotations": alert["annotations"],
            "startsAt": if firing { ts } else { "2026-01-04T23:00:00Z" },
            "endsAt": if firing { "0001-01-01T00:00:00Z" } else { ts },
            "fingerprint": alert["fingerprint"],
        }],
        "commonLabels": {"service": alert["service"]},
    })
    .to_string()
}

/// Native logs as one OTLP/JSON `ExportLogsServiceRequest`, a resource per record.
fn otlp_json(logs: &[Value]) -> String {
    let resource_logs: Vec<Value> = logs
        .iter()
        .map(|l| {
            let attributes: Vec<Value> = l["attributes"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| json!({"key": k, "value": {"stringValue": v.as_str().unwrap()}}))
                .collect();
            json!({
                "resource": {"attributes": [
                    {"key": "service.name", "value": {"stringValue": l["service"]}}
                ]},
                "scopeLogs": [{"logRecords": [{
                    "timeUnixNano": (ts_millis(l) * 1_000_000).to_string(),
                    "severityText": l["level"],
                    "body": {"stringValue": l["message"]},
                    "attributes": attributes,
                }]}],
            })
        })
        .collect();
    json!({ "resourceLogs": resource_logs }).to_string()
}

/// Protobuf wire encoding, as much of it as a logs request needs.
fn field(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    varint(out, u64::from(number << 3 | 2));
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn string_value(s: &str) -> Vec<u8> {
    let mut any = Vec::new();
    field(&mut any, 1, s.as_bytes());
    any
}

fn key_value(key: &str, value: &str) -> Vec<u8> {
    let mut kv = Vec::new();
    field(&mut kv, 1, key.as_bytes());
    field(&mut kv, 2, &string_value(value));
    kv
}

/// Native logs as one OTLP/protobuf `ExportLogsServiceRequest`, a resource per record.
fn otlp_proto(logs: &[Value]) -> Vec<u8> {
    let mut request = Vec::new();
    for l in logs {
        let mut record = Vec::new();
        varint(&mut record, 1 << 3 | 1); // time_unix_nano, fixed64
        record.extend_from_slice(&(ts_millis(l) * 1_000_000).to_le_bytes());
        field(&mut record, 3, l["level"].as_str().unwrap().as_bytes());
        field(
            &mut record,
            5,
            &string_value(l["message"].as_str().unwrap()),
        );
        for (k, v) in l["attributes"].as_object().into_iter().flatten() {
            field(&mut record, 6, &key_value(k, v.as_str().unwrap()));
        }
        let mut scope = Vec::new();
        field(&mut scope, 2, &record);
        let mut resource = Vec::new();
        field(
            &mut resource,
            1,
            &key_value("service.name", l["service"].as_str().unwrap()),
        );
        let mut resource_logs = Vec::new();
        field(&mut resource_logs, 1, &resource);
        field(&mut resource_logs, 2, &scope);
        field(&mut request, 1, &resource_logs);
    }
    request
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(A[((n >> (18 - 6 * i)) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

/// The replay's input arguments and how many events they hold.
struct Inputs {
    args: Vec<String>,
    events: usize,
}

/// The scenario's events re-encoded per kind, plus a bad line in `alerts.jsonl` (line 2) and
/// one in `logs.b64` (line 3).
fn split_scenario(dir: &Path) -> Inputs {
    let text = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (mut alerts, mut metrics, mut rest) = (Vec::new(), Vec::new(), Vec::new());
    let (mut json_lines, mut proto_lines) = (Vec::new(), Vec::new());
    let mut batch: Vec<Value> = Vec::new();
    let mut batches = 0usize;
    let mut flush = |batch: &mut Vec<Value>| {
        if batch.is_empty() {
            return;
        }
        if batches.is_multiple_of(2) {
            json_lines.push(otlp_json(batch));
        } else {
            proto_lines.push(base64(&otlp_proto(batch)));
        }
        batches += 1;
        batch.clear();
    };
    for (e, line) in events.iter().zip(text.lines()) {
        match e["kind"].as_str().unwrap() {
            "alert" => alerts.push(alertmanager(e)),
            "metric" => metrics.push(line.to_owned()),
            "log" => {
                batch.push(e.clone());
                if batch.len() == 3 {
                    flush(&mut batch);
                }
            }
            _ => rest.push(line.to_owned()),
        }
    }
    flush(&mut batch);
    assert!(alerts.len() > 3 && json_lines.len() > 3 && proto_lines.len() > 3);
    // One bad line in a text format and one in a binary one.
    alerts.insert(1, r#"{"alerts":[{"labels":{}}]}"#.to_owned());
    proto_lines.insert(2, "%%% not base64".to_owned());
    let write = |name: &str, lines: &[String]| {
        let path = dir.join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path.to_str().unwrap().to_owned()
    };
    let args = vec![
        format!("alertmanager:{}", write("alerts.jsonl", &alerts)),
        format!("otlp_json:{}", write("logs.jsonl", &json_lines)),
        format!("otlp_proto_logs:{}", write("logs.b64", &proto_lines)),
        format!("native:{}", write("metrics.jsonl", &metrics)),
        // A plain path with a `:` whose prefix is no format: native, as written.
        write("rest:2026.jsonl", &rest),
    ];
    Inputs {
        args,
        events: events.len(),
    }
}

fn replay(dir: &Path, inputs: &Inputs, workers: &str) -> (Vec<u8>, String) {
    let dead = dir.join(format!("dead-{workers}.jsonl"));
    let mut args: Vec<&str> = vec!["replay"];
    args.extend(inputs.args.iter().map(String::as_str));
    let topology = dir.join("topology.json");
    args.extend([
        "--topology",
        topology.to_str().unwrap(),
        "--workers",
        workers,
        "--summary-json",
        "--dead-letter",
        dead.to_str().unwrap(),
    ]);
    let out = kaizen(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (out.stdout, stderr)
}

#[test]
fn mixed_formats_merge_by_event_time_and_give_the_same_bytes_on_one_and_four_workers() {
    let dir = scratch("mixed");
    let out = kaizen(&[
        "simulate",
        "--seed",
        "11",
        "--duration",
        "2h",
        "--log-rate",
        "0.1",
        "--span-rate",
        "0.05",
        "--faults",
        "2",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inputs = split_scenario(&dir);

    let (one, stderr) = replay(&dir, &inputs, "1");
    let (four, _) = replay(&dir, &inputs, "4");
    assert!(!one.is_empty(), "no insights: {stderr}");
    assert!(one == four, "insights differ between -w 1 and -w 4");

    // Merged, not concatenated: nothing is late, every event is read, the two bad lines are
    // reported with file and line and reason, counted and kept.
    let summary: Value = stderr
        .lines()
        .rfind(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_else(|| panic!("no summary in {stderr}"));
    assert_eq!(summary["late_events"], 0, "{summary}");
    assert_eq!(summary["decode_failures"], 2, "{summary}");
    assert_eq!(summary["events"], inputs.events, "{summary}");
    let alerts = dir.join("alerts.jsonl");
    assert!(
        stderr.contains(&format!(
            "{}:2: alertmanager: missing alerts[0].labels.alertname",
            alerts.display()
        )),
        "{stderr}"
    );
    let b64 = dir.join("logs.b64");
    assert!(
        stderr.contains(&format!("{}:3: otlp_proto_logs: not base64", b64.display())),
        "{stderr}"
    );
    for workers in ["1", "4"] {
        let dead = std::fs::read_to_string(dir.join(format!("dead-{workers}.jsonl"))).unwrap();
        let mut dead: Vec<Value> = dead
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        dead.sort_by_key(|d| d["source"].as_str().unwrap().to_owned());
        assert_eq!(dead.len(), 2, "{dead:?}");
        assert_eq!(dead[0]["source"], alerts.to_str().unwrap());
        assert_eq!(dead[0]["line"], 2);
        assert_eq!(dead[1]["source"], b64.to_str().unwrap());
        assert_eq!(dead[1]["raw"], "%%% not base64");
    }

    // The re-encoded telemetry still tells the story: every fault's origin is in an incident.
    let insights: Vec<Value> = String::from_utf8(one)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let truth: Value =
        serde_json::from_slice(&std::fs::read(dir.join("ground_truth.json")).unwrap()).unwrap();
    for fault in truth["faults"].as_array().unwrap() {
        assert!(
            insights
                .iter()
                .any(|i| i["services"].as_array().unwrap().contains(&fault["origin"])),
            "no incident involves the origin of {fault}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_firing_webhook_alert_takes_its_starts_at_and_a_misspelt_format_is_named() {
    let dir = scratch("alert");
    let path = dir.join("capture.jsonl");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("connectors/tests/fixtures/codecs/alertmanager/webhook_v4.json");
    let notification: Value = serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap();
    std::fs::write(&path, format!("{notification}\n")).unwrap();
    let out = kaizen(&[
        "replay",
        &format!("alertmanager:{}", path.display()),
        "--summary-json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(summary["events"], 1, "{summary}");
    assert_eq!(
        summary["first_event"], "2023-02-06T13:08:45.828Z",
        "{summary}"
    );

    let out = kaizen(&["replay", &format!("alertmanagr:{}", path.display())]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"alertmanagr\" is not a format: expected one of native, otlp_json"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
