//! A Slack Web API stub for tests: a real HTTP/1.1 server on 127.0.0.1 (ephemeral port).
//!
//! For: exercising the Slack sink against real sockets. It implements `chat.postMessage` and
//! `chat.update` the way Slack does (channel names answered with channel ids, a fresh `ts`
//! per message, `message_not_found` / `thread_not_found` for unknown ts, `invalid_blocks`
//! for a message over Slack's limits, `not_authed` without a bearer token), records every
//! request with its arrival time, and plays scripted failures on demand: `ok:false` errors,
//! 429 with `Retry-After`, 5xx, dropped connections. Not for: anything but tests (one thread
//! per connection, a minimal parser, no chunked bodies).

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A scripted answer for the next call of a method.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Behave normally.
    Ok,
    /// HTTP 200 `{"ok":false,"error":…}`.
    SlackError(&'static str),
    /// HTTP 200 `{"ok":false,"error":"ratelimited"}` with `Retry-After`.
    SlackRateLimited(u64),
    /// HTTP 429 with `Retry-After` seconds.
    TooManyRequests(u64),
    /// This HTTP status with an HTML body.
    Status(u16),
    /// Close the connection without answering.
    Drop,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    /// When it arrived.
    pub at: Instant,
    /// `chat.postMessage`, `chat.update`, …
    pub method: String,
    /// The `Authorization` header.
    pub auth: Option<String>,
    /// The JSON body.
    pub body: Value,
    /// What the stub answered (`ok`, an error code, or an HTTP status).
    pub outcome: String,
}

impl Request {
    /// A top-level post (not a thread reply).
    pub fn is_post(&self) -> bool {
        self.method == "chat.postMessage" && self.body.get("thread_ts").is_none()
    }
    /// A thread reply.
    pub fn is_reply(&self) -> bool {
        self.method == "chat.postMessage" && self.body.get("thread_ts").is_some()
    }
    /// A successful call.
    pub fn ok(&self) -> bool {
        self.outcome == "ok"
    }
}

/// A message as the stub's "Slack" holds it.
#[derive(Clone, Debug, Default)]
pub struct Message {
    /// The latest `text`.
    pub text: String,
    /// The latest `blocks`.
    pub blocks: Value,
    /// How many times it was updated.
    pub updates: u32,
    /// Thread replies, in order.
    pub replies: Vec<String>,
}

#[derive(Default)]
struct State {
    requests: Vec<Request>,
    script: HashMap<String, VecDeque<Reply>>,
    /// (channel id, ts) → message.
    messages: BTreeMap<(String, String), Message>,
    next_ts: u64,
}

/// The running stub; stops when dropped.
pub struct SlackStub {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl SlackStub {
    /// Starts the stub on an ephemeral loopback port.
    pub fn start() -> SlackStub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State {
            next_ts: 100,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || serve(conn, st));
            }
        });
        SlackStub {
            addr,
            state,
            stop,
            accept: Some(accept),
        }
    }

    /// The Web API base URL to configure.
    pub fn base_url(&self) -> String {
        format!("http://{}/api/", self.addr)
    }

    /// Queues answers for the next calls of `method` (then back to normal).
    pub fn script(&self, method: &str, replies: &[Reply]) {
        let mut s = self.state.lock().unwrap();
        s.script
            .entry(method.to_owned())
            .or_default()
            .extend(replies.iter().cloned());
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Every message, by (channel id, ts).
    pub fn messages(&self) -> BTreeMap<(String, String), Message> {
        self.state.lock().unwrap().messages.clone()
    }

    /// Deletes a message, as a person in the channel could.
    pub fn delete(&self, channel: &str, ts: &str) {
        let key = (channel.to_owned(), ts.to_owned());
        self.state.lock().unwrap().messages.remove(&key);
    }
}

impl Drop for SlackStub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// `#incidents` → `CINCIDENTS`: Slack answers posts with the channel id.
fn channel_id(name: &str) -> String {
    match name.strip_prefix('#') {
        Some(n) => format!("C{}", n.to_uppercase().replace('-', "_")),
        None => name.to_owned(),
    }
}

/// Serves HTTP/1.1 keep-alive requests on one connection until it closes or idles out.
fn serve(conn: TcpStream, state: Arc<Mutex<State>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut writer = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let at = Instant::now();
        let method = path.rsplit('/').next().unwrap_or("").to_owned();
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let auth = headers.get("authorization").cloned();
        let (status, extra, answer) = answer(&state, &method, &auth, &body);
        state.lock().unwrap().requests.push(Request {
            at,
            method,
            auth,
            body,
            outcome: match (&answer, status) {
                (None, _) => "dropped".into(),
                (Some(_), 200) => answer
                    .as_ref()
                    .and_then(|a| a.get("error"))
                    .and_then(Value::as_str)
                    .unwrap_or("ok")
                    .to_owned(),
                (Some(_), s) => format!("HTTP {s}"),
            },
        });
        let Some(answer) = answer else { return };
        let payload = answer.to_string();
        let reason = match status {
            200 => "OK",
            429 => "Too Many Requests",
            _ => "Error",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n{extra}\r\n",
            payload.len()
        );
        if writer.write_all(head.as_bytes()).is_err()
            || writer.write_all(payload.as_bytes()).is_err()
        {
            return;
        }
        let _ = writer.flush();
    }
}

/// Status, extra header lines, and the JSON answer (None: drop the connection).
fn answer(
    state: &Mutex<State>,
    method: &str,
    auth: &Option<String>,
    body: &Value,
) -> (u16, String, Option<Value>) {
    let mut s = state.lock().unwrap();
    let scripted = s.script.get_mut(method).and_then(VecDeque::pop_front);
    match scripted.unwrap_or(Reply::Ok) {
        Reply::Ok => {}
        Reply::SlackError(e) => {
            return (200, String::new(), Some(json!({"ok": false, "error": e})))
        }
        Reply::SlackRateLimited(secs) => {
            return (
                200,
                format!("Retry-After: {secs}\r\n"),
                Some(json!({"ok": false, "error": "ratelimited"})),
            )
        }
        Reply::TooManyRequests(secs) => {
            return (
                429,
                format!("Retry-After: {secs}\r\n"),
                Some(json!({"ok": false, "error": "ratelimited"})),
            )
        }
        Reply::Status(code) => return (code, String::new(), Some(json!("<html>oops</html>"))),
        Reply::Drop => return (0, String::new(), None),
    }
    let fail = |e: &str| (200, String::new(), Some(json!({"ok": false, "error": e})));
    if !auth
        .as_deref()
        .is_some_and(|a| a.starts_with("Bearer xoxb-"))
    {
        return fail("not_authed");
    }
    if let Err(errors) = kaizen_connectors::slack::check_message_limits(body) {
        eprintln!("stub: invalid message: {errors:?}");
        return fail("invalid_blocks");
    }
    let channel = channel_id(body["channel"].as_str().unwrap_or(""));
    let text = body["text"].as_str().unwrap_or("").to_owned();
    match method {
        "chat.postMessage" => {
            if channel.is_empty() || channel == "CNOWHERE" {
                return fail("channel_not_found");
            }
            if let Some(thread) = body["thread_ts"].as_str() {
                let key = (channel.clone(), thread.to_owned());
                let Some(m) = s.messages.get_mut(&key) else {
                    return fail("thread_not_found");
                };
                m.replies.push(text);
            } else {
                s.next_ts += 1;
                let ts = format!("1767603600.{:06}", s.next_ts);
                let m = Message {
                    text,
                    blocks: body["blocks"].clone(),
                    ..Message::default()
                };
                s.messages.insert((channel.clone(), ts.clone()), m);
                return (
                    200,
                    String::new(),
                    Some(json!({"ok": true, "channel": channel, "ts": ts})),
                );
            }
            s.next_ts += 1;
            let ts = format!("1767603600.{:06}", s.next_ts);
            (
                200,
                String::new(),
                Some(json!({"ok": true, "channel": channel, "ts": ts})),
            )
        }
        "chat.update" => {
            let ts = body["ts"].as_str().unwrap_or("").to_owned();
            let Some(m) = s.messages.get_mut(&(channel.clone(), ts.clone())) else {
                return fail("message_not_found");
            };
            m.text = text;
            m.blocks = body["blocks"].clone();
            m.updates += 1;
            (
                200,
                String::new(),
                Some(json!({"ok": true, "channel": channel, "ts": ts})),
            )
        }
        _ => fail("unknown_method"),
    }
}
