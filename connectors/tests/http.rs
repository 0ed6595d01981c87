//! The HTTP endpoint over real sockets: the server on 127.0.0.1:0, a plain `TcpStream`
//! client writing HTTP/1.1 by hand, the engine's channel read by the test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

#[path = "support/slack_fixtures.rs"]
mod slack_fixtures;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kaizen_connectors::http::{DeadLetterFn, RejectedPayload};
use kaizen_connectors::slack::interactions::sign;
use kaizen_connectors::slack::{render_insight, Secret};
use kaizen_connectors::{HttpConfig, HttpDeps, HttpServer, Readiness, Registry};
use kaizen_model::{Event, EventBody, FeedbackAction};
use serde_json::{json, Value};

const ALERTMANAGER: &str = include_str!("fixtures/codecs/alertmanager/webhook_v4_group.json");
const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// What the dead-letter callback saw: format, reason, raw body.
type DeadLetters = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

/// One server with everything a test looks at.
struct Harness {
    server: HttpServer,
    rx: Receiver<Event>,
    metrics: Arc<Registry>,
    readiness: Readiness,
    dead: DeadLetters,
}

fn start(config: HttpConfig, capacity: usize) -> Harness {
    let (tx, rx) = sync_channel(capacity);
    let metrics = Arc::new(Registry::new());
    let readiness = Readiness::new();
    let dead: DeadLetters = Arc::new(Mutex::new(Vec::new()));
    let sink = dead.clone();
    let dead_letter: DeadLetterFn = Arc::new(move |r: &RejectedPayload<'_>| {
        sink.lock()
            .unwrap()
            .push((r.format.to_owned(), r.reason.to_owned(), r.payload.to_vec()));
    });
    let deps = HttpDeps {
        events: tx,
        metrics: metrics.clone(),
        readiness: readiness.clone(),
        dead_letter: Some(dead_letter),
    };
    let config = HttpConfig {
        listen: "127.0.0.1:0".into(),
        ..config
    };
    let server = HttpServer::start(config, deps).expect("server starts");
    Harness {
        server,
        rx,
        metrics,
        readiness,
        dead,
    }
}

/// An answer as read off the socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Reads one response from `stream` (Content-Length framed, as the server always answers).
fn read_answer(stream: &mut TcpStream) -> Answer {
    try_read_answer(stream).expect("connection closed before a full answer")
}

/// Reads one response, or `None` when the server closes (or resets) the connection first.
fn try_read_answer(stream: &mut TcpStream) -> Option<Answer> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8(buf).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.to_owned(), v.trim().to_owned())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0; len];
    stream.read_exact(&mut body).ok()?;
    Some(Answer {
        status,
        headers,
        body,
    })
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Sends one request on a fresh connection and reads the answer.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut s = connect(addr);
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    if method == "HEAD" {
        let mut head = String::new();
        s.read_to_string(&mut head).unwrap();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        assert!(
            head.ends_with("\r\n\r\n"),
            "a HEAD answer has no body: {head:?}"
        );
        return Answer {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        };
    }
    read_answer(&mut s)
}

fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, &[], b"")
}

fn post(addr: SocketAddr, path: &str, body: &[u8]) -> Answer {
    request(addr, "POST", path, &[], body)
}

fn drain(rx: &Receiver<Event>) -> Vec<Event> {
    rx.try_iter().collect()
}

/// Checks every line of an OpenMetrics text exposition and returns its samples
/// (`name{labels}` → value).
fn parse_exposition(text: &str) -> Vec<(String, f64)> {
    let mut samples = Vec::new();
    let mut typed = std::collections::BTreeMap::new();
    assert!(text.ends_with("# EOF\n"), "no EOF marker: {text}");
    for line in text.lines() {
        if line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                typed.insert(name.to_owned(), kind.to_owned()).is_none(),
                "TYPE twice: {line}"
            );
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample: series value");
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        let family = typed.iter().find(|(family, kind)| {
            let suffixes: &[&str] = match kind.as_str() {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            suffixes
                .iter()
                .any(|s| name.strip_suffix(s) == Some(family.as_str()))
        });
        assert!(family.is_some(), "sample before its TYPE: {line}");
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            for pair in labels[1..labels.len() - 1].split("\",") {
                let (k, v) = pair.split_once("=\"").expect("label=\"value\"");
                assert!(
                    k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{line}"
                );
                assert!(!v.trim_end_matches('"').contains('\n'), "{line}");
            }
        }
        samples.push((
            series.to_owned(),
            value.parse::<f64>().expect("numeric value"),
        ));
    }
    samples
}

fn sample(samples: &[(String, f64)], series: &str) -> Option<f64> {
    samples.iter().find(|(s, _)| s == series).map(|(_, v)| *v)
}

#[test]
fn health_readiness_and_metrics() {
    let h = start(HttpConfig::default(), 16);
    let addr = h.server.local_addr();
    assert_eq!(get(addr, "/livez").status, 200);
    let not_ready = get(addr, "/readyz");
    assert_eq!(
        (not_ready.status, not_ready.text().trim()),
        (503, "not ready")
    );
    h.readiness.set(true);
    assert_eq!(get(addr, "/readyz").status, 200);
    h.readiness.set(false);
    assert_eq!(get(addr, "/readyz").status, 503);

    assert_eq!(get(addr, "/nothing-here").status, 404);
    let allow = |a: &Answer| a.header("allow").map(|v| v.replace(' ', ""));
    let wrong = post(addr, "/livez", b"");
    assert_eq!(
        (wrong.status, allow(&wrong).as_deref()),
        (405, Some("GET,HEAD"))
    );
    let wrong = get(addr, "/ingest/alertmanager");
    assert_eq!(
        (wrong.status, allow(&wrong).as_deref()),
        (405, Some("POST"))
    );
    let head = request(addr, "HEAD", "/livez", &[], b"");
    assert_eq!(head.status, 200);

    let m = get(addr, "/metrics");
    assert_eq!(m.status, 200);
    assert_eq!(
        m.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = m.text();
    assert!(text.contains("# HELP kaizen_http_requests "), "{text}");
    assert!(
        text.contains("# TYPE kaizen_http_requests counter\n"),
        "{text}"
    );
    let samples = parse_exposition(&text);
    let s = |series: &str| sample(&samples, series);
    assert_eq!(
        s(r#"kaizen_http_requests_total{code="200",route="/livez"}"#),
        Some(2.0)
    );
    assert_eq!(
        s(r#"kaizen_http_requests_total{code="503",route="/readyz"}"#),
        Some(2.0)
    );
    assert_eq!(
        s(r#"kaizen_http_requests_total{code="404",route="other"}"#),
        Some(1.0)
    );
    assert_eq!(
        s(r#"kaizen_http_requests_total{code="405",route="/ingest"}"#),
        Some(1.0)
    );
    // A registry shared with the rest of kaizen shows up on the same page.
    h.metrics
        .gauge(
            &kaizen_connectors::metrics::CONSUMER_LAG,
            &[("topic", "a\"b"), ("partition", "0")],
        )
        .set(42.0);
    let samples = parse_exposition(&get(addr, "/metrics").text());
    assert_eq!(
        sample(
            &samples,
            r#"kaizen_consumer_lag{partition="0",topic="a\"b"}"#
        ),
        Some(42.0)
    );
    h.server.shutdown();
}

#[test]
fn alertmanager_webhooks_become_events_on_the_channel() {
    let h = start(HttpConfig::default(), 64);
    let addr = h.server.local_addr();
    let a = post(addr, "/ingest/alertmanager", ALERTMANAGER.as_bytes());
    assert_eq!(a.status, 202, "{}", a.text());
    let events = drain(&h.rx);
    assert!(events.len() >= 2, "{events:?}");
    assert_eq!(a.json(), json!({"accepted": events.len()}));
    assert!(events.iter().all(|e| matches!(e.body, EventBody::Alert(_))));

    // Native JSON Lines, chunked, on a kept-alive connection, twice.
    let line = r#"{"ts":"2026-01-05T10:00:00Z","service":"api","kind":"log","level":"error","message":"boom"}"#;
    let mut s = connect(addr);
    for _ in 0..2 {
        let mut req = String::from(
            "POST /ingest/native HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        let (a, b) = line.split_at(10);
        for part in [a, b] {
            req.push_str(&format!("{:x}\r\n{part}\r\n", part.len()));
        }
        req.push_str("0\r\n\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let answer = read_answer(&mut s);
        assert_eq!(
            (answer.status, answer.json()),
            (202, json!({"accepted": 1}))
        );
    }
    assert_eq!(drain(&h.rx).len(), 2);

    let unknown = post(addr, "/ingest/carrier-pigeon", b"{}");
    assert_eq!(unknown.status, 404);
    assert!(unknown.json()["formats"]
        .as_array()
        .is_some_and(|f| f.contains(&json!("grafana"))));

    let samples = parse_exposition(&get(addr, "/metrics").text());
    let n = sample(
        &samples,
        r#"kaizen_events_in_total{format="alertmanager",source="http"}"#,
    );
    assert_eq!(n, Some(events.len() as f64));
    assert_eq!(
        sample(
            &samples,
            r#"kaizen_events_in_total{format="native",source="http"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &samples,
            r#"kaizen_http_requests_total{code="202",route="/ingest"}"#
        ),
        Some(3.0)
    );
}

#[test]
fn bad_payloads_get_400_with_the_reason_and_reach_the_dead_letter_callback() {
    let h = start(HttpConfig::default(), 16);
    let addr = h.server.local_addr();
    let body = br#"{"receiver":"x","status":"firing","alerts":[{"labels":{}}]"#;
    let a = post(addr, "/ingest/alertmanager", body);
    assert_eq!(a.status, 400);
    let reason = a.json()["error"].as_str().unwrap_or_default().to_owned();
    assert!(reason.starts_with("alertmanager: "), "{reason}");
    assert!(drain(&h.rx).is_empty());
    let dead = h.dead.lock().unwrap().clone();
    assert_eq!(
        dead,
        vec![("alertmanager".to_owned(), reason, body.to_vec())]
    );
    let samples = parse_exposition(&get(addr, "/metrics").text());
    let errors = r#"kaizen_decode_errors_total{format="alertmanager",source="http"}"#;
    assert_eq!(sample(&samples, errors), Some(1.0));
    assert_eq!(
        sample(&samples, r#"kaizen_dead_letters_total{source="http"}"#),
        Some(1.0)
    );
}

#[test]
fn the_bearer_token_is_required_when_configured() {
    let config = HttpConfig {
        ingest_token: Some(Secret::new("t0ken")),
        ..HttpConfig::default()
    };
    let h = start(config, 16);
    let addr = h.server.local_addr();
    let body = ALERTMANAGER.as_bytes();
    let none = post(addr, "/ingest/alertmanager", body);
    assert_eq!(none.status, 401);
    assert_eq!(
        none.header("www-authenticate"),
        Some("Bearer realm=\"kaizen\"")
    );
    // Unknown formats are not told apart before authentication.
    assert_eq!(post(addr, "/ingest/nope", body).status, 401);
    for wrong in ["Bearer t0ke", "Bearer t0ken2", "Basic t0ken", "t0ken"] {
        let a = request(
            addr,
            "POST",
            "/ingest/alertmanager",
            &[("Authorization", wrong)],
            body,
        );
        assert_eq!(a.status, 401, "{wrong}");
    }
    assert!(drain(&h.rx).is_empty());
    let ok = request(
        addr,
        "POST",
        "/ingest/alertmanager",
        &[("Authorization", "Bearer t0ken")],
        body,
    );
    assert_eq!(ok.status, 202);
    assert!(!drain(&h.rx).is_empty());
    // Health and metrics stay open.
    assert_eq!(get(addr, "/livez").status, 200);
}

#[test]
fn bodies_over_the_limit_get_413() {
    let config = HttpConfig {
        max_body_bytes: 1024,
        ..HttpConfig::default()
    };
    let h = start(config, 16);
    let addr = h.server.local_addr();
    let big = vec![b' '; 2000];
    let a = post(addr, "/ingest/native", &big);
    assert_eq!(a.status, 413);
    assert_eq!(a.header("connection"), Some("close"));

    // Declared size over the limit with Expect: 100-continue: refused before the body is sent.
    let mut s = connect(addr);
    s.write_all(b"POST /ingest/native HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    assert_eq!(read_answer(&mut s).status, 413);

    // Chunked, with no size declared: cut off once it passes the limit.
    let mut s = connect(addr);
    s.write_all(b"POST /ingest/native HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    for _ in 0..3 {
        s.write_all(format!("200\r\n{}\r\n", " ".repeat(512)).as_bytes())
            .unwrap();
    }
    assert_eq!(read_answer(&mut s).status, 413);

    // Within the limit with 100-continue: the server asks for the body, then answers.
    let line = br#"{"ts":"2026-01-05T10:00:00Z","service":"api","kind":"log","level":"info","message":"ok"}"#;
    let mut s = connect(addr);
    let head = format!(
        "POST /ingest/native HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        line.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    assert_eq!(read_answer(&mut s).status, 100);
    s.write_all(line).unwrap();
    assert_eq!(read_answer(&mut s).status, 202);
    assert_eq!(drain(&h.rx).len(), 1);
}

#[test]
fn a_full_channel_gets_503_with_retry_after_not_a_hang() {
    let config = HttpConfig {
        enqueue_timeout: Duration::from_millis(100),
        retry_after: Duration::from_secs(7),
        ..HttpConfig::default()
    };
    let h = start(config, 1);
    let addr = h.server.local_addr();
    let line = br#"{"ts":"2026-01-05T10:00:00Z","service":"api","kind":"log","level":"info","message":"x"}"#;
    assert_eq!(post(addr, "/ingest/native", line).status, 202); // fills the channel
    let started = Instant::now();
    let full = post(addr, "/ingest/native", line);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(full.status, 503);
    assert_eq!(full.header("retry-after"), Some("7"));
    assert_eq!(full.json()["accepted"], json!(0));
    assert_eq!(drain(&h.rx).len(), 1);
    assert_eq!(post(addr, "/ingest/native", line).status, 202);
    // The engine gone: 503 as well, at once.
    let Harness { server, rx, .. } = h;
    drop(rx);
    assert_eq!(
        post(server.local_addr(), "/ingest/native", line).status,
        503
    );
    server.shutdown();
}

fn slack_click(secret: &Secret, ts: &str) -> (Vec<u8>, String) {
    let insight = slack_fixtures::insight("inc-7", 1, &["payments"], 0);
    let button = render_insight(&insight)
        .blocks
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .find(|b| b["action_id"] == "kaizen_acknowledge")
        .expect("an Acknowledge button");
    let payload = json!({
        "type": "block_actions",
        "user": {"id": "U1", "username": "ana"},
        "actions": [{"action_id": button["action_id"], "value": button["value"], "action_ts": "1767603700.1"}],
    });
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    let sig = sign(secret, ts, body.as_bytes());
    (body.into_bytes(), sig)
}

#[test]
fn slack_clicks_with_a_valid_signature_become_feedback_events() {
    let secret = Secret::new(SIGNING_SECRET);
    let config = HttpConfig {
        slack_signing_secret: Some(secret.clone()),
        ..HttpConfig::default()
    };
    let h = start(config, 16);
    let addr = h.server.local_addr();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let (body, sig) = slack_click(&secret, &now);
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("X-Slack-Request-Timestamp", now.as_str()),
        ("X-Slack-Signature", sig.as_str()),
    ];
    let a = request(addr, "POST", "/slack/interactions", &headers, &body);
    assert_eq!(a.status, 200, "{}", a.text());
    let events = drain(&h.rx);
    assert_eq!(events.len(), 1);
    let EventBody::Feedback(f) = &events[0].body else {
        panic!("not feedback: {:?}", events[0]);
    };
    assert_eq!(
        (f.incident.as_str(), f.action),
        ("inc-7", FeedbackAction::Acknowledge)
    );
    assert_eq!(f.user.as_deref(), Some("ana"));

    // Signed with another secret, or tampered with: 401, nothing reaches the engine.
    let (_, wrong) = slack_click(&Secret::new("another-secret"), &now);
    let bad = [
        headers[0],
        headers[1],
        ("X-Slack-Signature", wrong.as_str()),
    ];
    assert_eq!(
        request(addr, "POST", "/slack/interactions", &bad, &body).status,
        401
    );
    let mut tampered = body.clone();
    tampered.push(b'x');
    assert_eq!(
        request(addr, "POST", "/slack/interactions", &headers, &tampered).status,
        401
    );
    assert!(drain(&h.rx).is_empty());
    assert!(h.dead.lock().unwrap().is_empty());
    let samples = parse_exposition(&get(addr, "/metrics").text());
    let clicks = r#"kaizen_events_in_total{format="slack_interactions",source="slack"}"#;
    assert_eq!(sample(&samples, clicks), Some(1.0));

    // Without a signing secret the route is not mounted.
    let other = start(HttpConfig::default(), 4);
    let a = request(
        other.server.local_addr(),
        "POST",
        "/slack/interactions",
        &headers,
        &body,
    );
    assert_eq!(a.status, 404);
}

/// Sends `raw` on a fresh connection: the answer's status, or `None` when the server closed
/// the connection without one.
fn answer_to(addr: SocketAddr, raw: &[u8]) -> Option<u16> {
    let mut s = connect(addr);
    s.write_all(raw).unwrap();
    try_read_answer(&mut s).map(|a| a.status)
}

#[test]
fn malformed_and_ambiguous_requests_get_4xx_or_a_close_and_the_server_lives() {
    let config = HttpConfig {
        request_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_millis(500),
        ..HttpConfig::default()
    };
    let h = start(config, 16);
    let addr = h.server.local_addr();
    let line = r#"{"ts":"2026-01-05T10:00:00Z","service":"api","kind":"log","level":"info","message":"x"}"#;
    let lying = format!("POST /ingest/native HTTP/1.1\r\nContent-Length: 500\r\n\r\n{line}");
    let huge_header = format!(
        "GET /livez HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1024 * 1024)
    );
    let cases: Vec<(&str, &[u8])> = vec![
        ("bad request line", b"GARBAGE\r\n\r\n"),
        ("no version", b"GET /livez\r\n\r\n"),
        ("not HTTP at all", b"\x16\x03\x01 not http\r\n\r\n"),
        ("HTTP/2.0 in an HTTP/1 request line", b"GET /livez HTTP/2.0\r\n\r\n"),
        // Both framings at once: a request-smuggling shape.
        (
            "Content-Length with Transfer-Encoding",
            b"POST /ingest/native HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
        ),
        (
            "a coding other than chunked",
            b"POST /ingest/native HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "two Content-Lengths",
            b"POST /ingest/native HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ),
        (
            "a Content-Length that is not a number",
            b"POST /ingest/native HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
        ),
        ("a lying Content-Length", lying.as_bytes()),
        (
            "chunk size +2",
            b"POST /ingest/native HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n+2\r\n{}\r\n0\r\n\r\n",
        ),
        (
            "chunk size ' 2 '",
            b"POST /ingest/native HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n 2 \r\n{}\r\n0\r\n\r\n",
        ),
        (
            "chunked on HTTP/1.0",
            b"POST /ingest/native HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        ),
        ("a 1 MB header", huge_header.as_bytes()),
        // A head that never ends: closed once the head's time is up.
        ("an unfinished head", b"GET /livez HTTP/1.1\r\nHost: t\r\n"),
    ];
    for (what, raw) in cases {
        let answer = answer_to(addr, raw);
        assert!(
            answer.is_none_or(|status| (400..500).contains(&status) || status == 501),
            "{what}: {answer:?}"
        );
        assert_eq!(get(addr, "/livez").status, 200, "alive after {what}");
    }
    assert_eq!(
        answer_to(
            addr,
            b"POST /ingest/native HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
        ),
        Some(501)
    );
    assert_eq!(answer_to(addr, huge_header.as_bytes()), Some(431));
    assert!(
        drain(&h.rx).is_empty(),
        "nothing malformed reached the engine"
    );
}

#[test]
fn livez_answers_while_200_slow_clients_hold_connections() {
    let h = start(HttpConfig::default(), 16);
    let addr = h.server.local_addr();
    // Each sends a byte at a time and never finishes its head or its body.
    let mut slow: Vec<TcpStream> = (0..200)
        .map(|i| {
            let mut s = connect(addr);
            let start: &[u8] = if i % 2 == 0 {
                b"GET /livez HTTP/1.1\r\nHost"
            } else {
                b"POST /ingest/native HTTP/1.1\r\nContent-Length: 100000\r\n\r\n{"
            };
            s.write_all(start).unwrap();
            s
        })
        .collect();
    for round in 0..3 {
        for s in &mut slow {
            let _ = s.write_all(b"x");
        }
        let started = Instant::now();
        let a = get(addr, "/livez");
        assert_eq!(a.status, 200, "round {round}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "round {round}: {:?}",
            started.elapsed()
        );
    }
    drop(slow);
}

#[test]
fn slow_clients_are_closed_after_the_head_deadline() {
    let config = HttpConfig {
        idle_timeout: Duration::from_millis(300),
        ..HttpConfig::default()
    };
    let h = start(config, 16);
    let addr = h.server.local_addr();
    let mut s = connect(addr);
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(b"GET /livez HTTP/1.1\r\nHo").unwrap();
    let started = Instant::now();
    // A byte every 50 ms: never idle, never done.
    let mut trickle = s.try_clone().unwrap();
    std::thread::spawn(move || {
        while trickle.write_all(b"o").is_ok() {
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        Ok(n) => panic!("an answer to an unfinished head: {:?}", &buf[..n]),
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn keep_alive_pipelining_and_http2() {
    let h = start(HttpConfig::default(), 16);
    let addr = h.server.local_addr();
    // Three requests in one write: three answers, in order.
    let mut s = connect(addr);
    s.write_all(b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\nGET /readyz HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let statuses: Vec<u16> = (0..3).map(|_| read_answer(&mut s).status).collect();
    assert_eq!(statuses, [200, 503, 404]);
    // HTTP/2 with prior knowledge: the server answers the connection preface with SETTINGS.
    let mut s = connect(addr);
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let mut frame = [0u8; 9];
    s.read_exact(&mut frame).unwrap();
    assert_eq!(frame[3], 0x4, "a SETTINGS frame: {frame:?}");
}

#[test]
fn shutdown_closes_idle_connections_and_stops_listening() {
    let h = start(HttpConfig::default(), 4);
    let addr = h.server.local_addr();
    let mut idle = connect(addr);
    idle.write_all(b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_answer(&mut idle).status, 200);
    // Garbage is answered 400 and does not take the server down.
    let mut junk = connect(addr);
    junk.write_all(b"\x16\x03\x01 not http\r\n\r\n").unwrap();
    assert_eq!(read_answer(&mut junk).status, 400);
    let started = Instant::now();
    h.server.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let mut rest = Vec::new();
    assert_eq!(
        idle.read_to_end(&mut rest).map(|_| rest.len()).unwrap_or(0),
        0
    );
    assert!(TcpStream::connect(addr).is_err());
}
