//! The Slack sink against a real HTTP server on 127.0.0.1 (`support/slack_stub.rs`), and the
//! interactivity endpoint's signature checks and click parsing.
//!
//! Delivery is configured ~50× faster than production (20 ms per channel instead of 1 s) so
//! the suite runs in seconds; the two `Retry-After` waits are real seconds, because honouring
//! them is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

#[path = "support/slack_fixtures.rs"]
mod slack_fixtures;
#[path = "support/slack_stub.rs"]
mod slack_stub;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kaizen_connectors::slack::interactions::sign;
use kaizen_connectors::slack::{
    check_message_limits, handle_interaction, render_insight, verify_signature, Rejection, Secret,
    SignatureError, SlackConfig,
};
use kaizen_connectors::{InsightSink, SlackSink};
use kaizen_model::{EventBody, FeedbackAction, Insight, Severity, Timestamp};
use serde_json::{json, Value};
use slack_fixtures::{huge_insight, insight};
use slack_stub::{Reply, SlackStub};

fn config(stub: &SlackStub) -> SlackConfig {
    let mut c = SlackConfig::new("#incidents");
    c.api_base = stub.base_url();
    c.delivery.per_channel_interval = Duration::from_millis(20);
    c.delivery.backoff_initial = Duration::from_millis(20);
    c.delivery.backoff_max = Duration::from_millis(100);
    c.delivery.max_attempts = 4;
    c.delivery.request_timeout = Duration::from_secs(3);
    c
}

fn sink(config: SlackConfig) -> SlackSink {
    SlackSink::with_token(config, Secret::new("xoxb-test-token")).unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kaizen-slack-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn first_version_posts_later_versions_update_in_place_and_timeline_goes_to_the_thread() {
    let stub = SlackStub::start();
    let mut s = sink(config(&stub));
    s.emit(&insight("inc-a", 1, &["payments"], 2)).unwrap();
    s.flush().unwrap();
    s.emit(&insight("inc-a", 2, &["payments"], 3)).unwrap();
    s.flush().unwrap();

    let reqs = stub.requests();
    let kinds: Vec<&str> = reqs
        .iter()
        .map(|r| match (r.method.as_str(), r.is_reply()) {
            (_, true) => "reply",
            ("chat.update", _) => "update",
            _ => "post",
        })
        .collect();
    assert_eq!(kinds, ["post", "reply", "update", "reply"]);
    assert!(reqs.iter().all(|r| r.ok()), "{reqs:?}");
    assert!(reqs
        .iter()
        .all(|r| r.auth.as_deref() == Some("Bearer xoxb-test-token")));
    assert_eq!(reqs[0].body["channel"], "#incidents");
    // Updates and replies address the message by the channel id Slack answered and its ts.
    let messages = stub.messages();
    assert_eq!(messages.len(), 1);
    let ((channel, ts), message) = messages.iter().next().unwrap();
    assert_eq!(channel, "CINCIDENTS");
    assert_eq!(reqs[2].body["channel"], "CINCIDENTS");
    assert_eq!(reqs[2].body["ts"], ts.as_str());
    assert_eq!(reqs[3].body["thread_ts"], ts.as_str());
    assert_eq!(message.updates, 1);
    assert!(message.text.contains("(v2)"), "{}", message.text);
    // Only entries new in v2 are replied the second time.
    assert_eq!(message.replies.len(), 2);
    assert_eq!(message.replies[0].lines().count(), 2);
    assert_eq!(message.replies[1], "`09:02:00` payments: signal 2");
    let stats = s.stats();
    assert_eq!(
        (stats.posted, stats.updated, stats.replies, stats.failures),
        (1, 1, 2, 0)
    );
    assert_eq!(stats.queue_depth, 0);
    // Re-emitting a delivered version sends nothing.
    s.emit(&insight("inc-a", 2, &["payments"], 3)).unwrap();
    s.flush().unwrap();
    assert_eq!(stub.requests().len(), 4);
}

#[test]
fn versions_coalesce_order_holds_per_incident_and_channels_are_paced() {
    let stub = SlackStub::start();
    let mut c = config(&stub);
    c.delivery.per_channel_interval = Duration::from_millis(100);
    c.delivery.thread_replies = false;
    let mut s = sink(c);
    for v in 1..=6 {
        for id in ["inc-a", "inc-b", "inc-c"] {
            s.emit(&insight(id, v, &["payments"], 0)).unwrap();
        }
    }
    s.flush().unwrap();
    // Queued under the channel's name (`#incidents`) and, once Slack has answered its id,
    // under the id: both queues share the channel's pace.
    s.emit(&insight("inc-x", 1, &["payments"], 0)).unwrap();
    s.emit(&insight("inc-y", 1, &["payments"], 0)).unwrap();
    std::thread::sleep(Duration::from_millis(40));
    s.emit(&insight("inc-z", 1, &["payments"], 0)).unwrap();
    s.flush().unwrap();
    let reqs = stub.requests();
    assert!(reqs.iter().all(|r| r.ok()), "{reqs:?}");
    // 18 versions emitted; far fewer requests, since queued versions coalesce.
    assert!(reqs.len() < 18 + 3, "{} requests", reqs.len());
    assert!(s.stats().coalesced > 0);
    for pair in reqs.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= Duration::from_millis(90), "paced: {gap:?}");
    }
    let messages = stub.messages();
    assert_eq!(messages.len(), 6, "one message per incident");
    for id in ["inc-a", "inc-b", "inc-c"] {
        let mine: Vec<_> = reqs
            .iter()
            .filter(|r| r.body.to_string().contains(&format!("{id} v")))
            .collect();
        assert!(mine[0].is_post(), "{id} starts with a post");
        let versions: Vec<u32> = mine
            .iter()
            .map(|r| {
                let text = r.body["text"].as_str().unwrap();
                text.rsplit(" v").next().unwrap().parse().unwrap()
            })
            .collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
        assert_eq!(
            *versions.last().unwrap(),
            6,
            "nothing lost: {id} ends at v6"
        );
    }
}

#[test]
fn http_429_waits_at_least_retry_after_and_other_channels_go_on() {
    let stub = SlackStub::start();
    let mut c = config(&stub);
    c.routing
        .by_service
        .insert("search".into(), "#search".into());
    let mut s = sink(c);
    stub.script(
        "chat.postMessage",
        &[Reply::TooManyRequests(1), Reply::SlackRateLimited(1)],
    );
    s.emit(&insight("inc-a", 1, &["payments"], 0)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.emit(&insight("inc-b", 1, &["search"], 0)).unwrap();
    s.flush().unwrap();
    let reqs = stub.requests();
    let a: Vec<_> = reqs
        .iter()
        .filter(|r| r.body["channel"] == "#incidents")
        .collect();
    assert_eq!(a.len(), 2, "{reqs:?}");
    assert_eq!(a[0].outcome, "HTTP 429");
    assert!(a[1].ok());
    assert!(
        a[1].at.duration_since(a[0].at) >= Duration::from_secs(1),
        "waited {:?}",
        a[1].at.duration_since(a[0].at)
    );
    // `ratelimited` inside an HTTP 200 is honoured too: #search's first answer, 1 s.
    let b: Vec<_> = reqs
        .iter()
        .filter(|r| r.body["channel"] == "#search")
        .collect();
    assert_eq!(b[0].outcome, "ratelimited");
    assert!(b[1].at.duration_since(b[0].at) >= Duration::from_secs(1));
    // #search was served while #incidents waited.
    assert!(b[0].at < a[1].at);
    let stats = s.stats();
    assert_eq!((stats.posted, stats.rate_limited, stats.retries), (2, 2, 2));
    assert_eq!(stats.failures, 0);
}

#[test]
fn server_errors_and_dropped_connections_are_retried_and_nothing_is_lost() {
    let stub = SlackStub::start();
    let mut s = sink(config(&stub));
    stub.script(
        "chat.postMessage",
        &[Reply::Status(500), Reply::Status(503), Reply::Drop],
    );
    stub.script("chat.update", &[Reply::Status(502)]);
    s.emit(&insight("inc-a", 1, &["payments"], 1)).unwrap();
    s.flush().unwrap();
    s.emit(&insight("inc-a", 2, &["payments"], 1)).unwrap();
    s.flush().unwrap();
    let stats = s.stats();
    assert_eq!(stats.retries, 4);
    assert_eq!((stats.posted, stats.updated, stats.replies), (1, 1, 1));
    assert_eq!(stats.failures, 0);
    let messages = stub.messages();
    assert_eq!(messages.len(), 1, "retries did not post twice");
    let m = messages.values().next().unwrap();
    assert!(m.text.contains("(v2)"));
    assert_eq!(m.replies.len(), 1);
}

#[test]
fn slack_errors_are_counted_logged_and_reported_by_flush_never_dropped_silently() {
    let stub = SlackStub::start();
    let mut s = sink(config(&stub));
    stub.script(
        "chat.postMessage",
        &[Reply::SlackError("channel_not_found")],
    );
    s.emit(&insight("inc-a", 1, &["payments"], 0)).unwrap();
    let err = s.flush().unwrap_err().to_string();
    assert!(err.contains("channel_not_found"), "{err}");
    assert!(err.contains("inc-a"), "{err}");
    assert_eq!(s.stats().failures, 1);
    // The failure is reported once; the next version is delivered.
    s.emit(&insight("inc-a", 2, &["payments"], 0)).unwrap();
    s.flush().unwrap();
    assert_eq!(s.stats().posted, 1);
    // Transient errors that never stop use up the attempts, then count as a failure.
    stub.script(
        "chat.update",
        &[
            Reply::Status(500),
            Reply::Status(500),
            Reply::SlackError("internal_error"),
            Reply::Status(500),
        ],
    );
    s.emit(&insight("inc-a", 3, &["payments"], 0)).unwrap();
    let err = s.flush().unwrap_err().to_string();
    assert!(err.contains("after 4 attempts"), "{err}");
    assert_eq!(s.stats().failures, 2);
    assert_eq!(s.stats().retries, 3);
    // And a bad token is a failure, not a retry loop.
    let mut bad = SlackSink::with_token(config(&stub), Secret::new("not-a-bot-token")).unwrap();
    bad.emit(&insight("inc-z", 1, &["payments"], 0)).unwrap();
    let err = bad.flush().unwrap_err().to_string();
    assert!(
        err.contains("not_authed") && err.contains("check the bot token"),
        "{err}"
    );
}

#[test]
fn a_restart_with_the_state_file_updates_the_message_instead_of_reposting() {
    let stub = SlackStub::start();
    let dir = temp_dir("restart");
    let mut c = config(&stub);
    c.state_file = Some(dir.join("slack-state.jsonl"));
    let mut first = sink(c.clone());
    first.emit(&insight("inc-a", 1, &["payments"], 2)).unwrap();
    first.emit(&insight("inc-b", 1, &["search"], 0)).unwrap();
    first.close().unwrap();

    let mut second = sink(c);
    // A replayed version already delivered sends nothing; a new one updates in place.
    second.emit(&insight("inc-a", 1, &["payments"], 2)).unwrap();
    second.flush().unwrap();
    assert_eq!(stub.requests().len(), 3, "post a, reply a, post b");
    second.emit(&insight("inc-a", 2, &["payments"], 3)).unwrap();
    second.flush().unwrap();
    let reqs = stub.requests();
    assert_eq!(reqs.iter().filter(|r| r.is_post()).count(), 2);
    assert_eq!(reqs[3].method, "chat.update");
    let messages = stub.messages();
    let ((_, ts), a) = messages
        .iter()
        .find(|(_, m)| m.text.contains("inc-a"))
        .unwrap();
    assert_eq!(reqs[3].body["ts"], ts.as_str());
    assert_eq!(a.updates, 1);
    assert_eq!(
        a.replies.len(),
        2,
        "only the new timeline entry is replied again"
    );
    assert_eq!(a.replies[1], "`09:02:00` payments: signal 2");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_deleted_message_is_posted_again_on_the_next_version() {
    let stub = SlackStub::start();
    let mut s = sink(config(&stub));
    s.emit(&insight("inc-a", 1, &["payments"], 0)).unwrap();
    s.flush().unwrap();
    let (channel, ts) = stub.messages().keys().next().cloned().unwrap();
    stub.delete(&channel, &ts);
    s.emit(&insight("inc-a", 2, &["payments"], 0)).unwrap();
    s.flush().unwrap();
    let outcomes: Vec<String> = stub.requests().iter().map(|r| r.outcome.clone()).collect();
    assert_eq!(outcomes, ["ok", "message_not_found", "ok"]);
    assert_eq!(s.stats().posted, 2);
    assert_eq!(s.stats().failures, 0);
}

#[test]
fn routing_picks_service_then_team_then_severity_then_default() {
    let stub = SlackStub::start();
    let mut c = config(&stub);
    c.routing
        .by_service
        .insert("payments".into(), "#payments".into());
    c.routing
        .service_teams
        .insert("search".into(), "discovery".into());
    c.routing
        .by_team
        .insert("discovery".into(), "#discovery".into());
    c.routing
        .by_severity
        .insert(Severity::Warning, "#warnings".into());
    let mut s = sink(c);
    let mut warning = insight("inc-w", 1, &["cart"], 0);
    warning.severity = Severity::Warning;
    s.emit(&insight("inc-p", 1, &["payments"], 0)).unwrap();
    s.emit(&insight("inc-s", 1, &["search"], 0)).unwrap();
    s.emit(&warning).unwrap();
    s.emit(&insight("inc-d", 1, &["cart"], 0)).unwrap();
    s.flush().unwrap();
    let channel_of = |id: &str| {
        stub.requests()
            .into_iter()
            .find(|r| r.body["text"].as_str().unwrap().contains(id))
            .map(|r| r.body["channel"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(channel_of("inc-p"), "#payments");
    assert_eq!(channel_of("inc-s"), "#discovery");
    assert_eq!(channel_of("inc-w"), "#warnings");
    assert_eq!(channel_of("inc-d"), "#incidents");
}

#[test]
fn a_huge_insight_stays_within_slack_limits() {
    let message = render_insight(&huge_insight());
    let payload = json!({"text": message.text, "blocks": message.blocks});
    check_message_limits(&payload).unwrap();
    let all = payload.to_string();
    assert!(all.contains("+485 more"), "services are cut with a count");
    let origin = message.blocks.iter().find(|b| {
        b["text"]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("*Probable origin*"))
    });
    let origin = origin.unwrap()["text"]["text"].as_str().unwrap();
    assert!(
        origin.ends_with(" more_"),
        "evidence is cut with a count: {origin}"
    );
    assert!(all.contains("more similar incidents"));
    assert!(message.blocks[0]["text"]["text"]
        .as_str()
        .unwrap()
        .ends_with('…'));

    // And Slack (the stub checks the same limits) accepts the post and every reply.
    let stub = SlackStub::start();
    let mut s = sink(config(&stub));
    s.emit(&huge_insight()).unwrap();
    s.flush().unwrap();
    let reqs = stub.requests();
    assert!(
        reqs.iter().all(|r| r.ok()),
        "{:?}",
        reqs.iter().map(|r| &r.outcome).collect::<Vec<_>>()
    );
    let replies: Vec<&str> = reqs
        .iter()
        .filter(|r| r.is_reply())
        .map(|r| r.body["text"].as_str().unwrap())
        .collect();
    assert!(replies.len() > 1);
    assert!(replies.iter().all(|t| t.encode_utf16().count() <= 3000));
    assert_eq!(
        replies.iter().map(|t| t.lines().count()).sum::<usize>(),
        300
    );
}

// ---- interactivity ----------------------------------------------------------------------

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// A `block_actions` body as Slack sends it for a click on `button` of a rendered message.
fn click_body(button: &Value) -> Vec<u8> {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": "U123", "username": "alice", "name": "alice", "team_id": "T1"},
        "api_app_id": "A1",
        "container": {"type": "message", "message_ts": "1767603600.000101", "channel_id": "C1"},
        "channel": {"id": "C1", "name": "incidents"},
        "response_url": "https://hooks.slack.com/actions/T1/1/x",
        "actions": [{
            "type": "button",
            "action_id": button["action_id"],
            "block_id": "kaizen_incident",
            "text": button["text"],
            "value": button["value"],
            "action_ts": "1767603700.123456",
        }],
    });
    form_urlencode_payload(&payload.to_string())
}

fn form_urlencode_payload(json: &str) -> Vec<u8> {
    let mut out = String::from("payload=");
    for b in json.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out.into_bytes()
}

fn buttons(insight: &Insight) -> Vec<Value> {
    render_insight(insight)
        .blocks
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[test]
fn signed_clicks_become_feedback_events() {
    let secret = Secret::new(SECRET);
    let i = insight("inc-a", 1, &["payments"], 0);
    let now = 1_767_603_700;
    let mut seen = Vec::new();
    for b in buttons(&i) {
        let body = click_body(&b);
        let ts = now.to_string();
        let sig = sign(&secret, &ts, &body);
        let headers = [
            ("X-Slack-Request-Timestamp", ts.as_str()),
            ("X-Slack-Signature", sig.as_str()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ];
        let events = handle_interaction(&secret, headers, &body, at(now + 3)).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].ts, Timestamp::from_millis(1_767_603_700_123));
        let EventBody::Feedback(f) = &events[0].body else {
            panic!("not feedback: {:?}", events[0]);
        };
        assert_eq!(f.incident, "inc-a");
        assert_eq!(f.user.as_deref(), Some("alice"));
        seen.push((f.action, f.remedy.clone()));
    }
    let remedy = Some("roll back payments".to_owned());
    assert_eq!(
        seen,
        [
            (FeedbackAction::RemedyWorked, remedy.clone()),
            (FeedbackAction::NotHelpful, remedy),
            (FeedbackAction::Acknowledge, None),
            (FeedbackAction::Resolve, None),
        ]
    );
}

#[test]
fn signatures_with_the_wrong_secret_an_old_timestamp_or_a_tampered_body_are_rejected() {
    let secret = Secret::new(SECRET);
    let body = click_body(&buttons(&insight("inc-a", 1, &["payments"], 0))[2]);
    let now = 1_767_603_700u64;
    let ts = now.to_string();
    let sig = sign(&secret, &ts, &body);
    assert_eq!(verify_signature(&secret, &ts, &body, &sig, at(now)), Ok(()));

    let wrong = Secret::new("another-secret");
    assert_eq!(
        verify_signature(&wrong, &ts, &body, &sig, at(now)),
        Err(SignatureError::Mismatch)
    );

    // Older than 5 minutes (a replay), and as far in the future.
    let old = (now - 301).to_string();
    let old_sig = sign(&secret, &old, &body);
    assert_eq!(
        verify_signature(&secret, &old, &body, &old_sig, at(now)),
        Err(SignatureError::Stale(301))
    );
    assert_eq!(
        verify_signature(&secret, &old, &body, &old_sig, at(now - 301 - 302)),
        Err(SignatureError::Stale(302))
    );
    assert_eq!(
        verify_signature(&secret, &old, &body, &old_sig, at(now - 2)),
        Ok(()),
        "within the window"
    );

    let mut tampered = body.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_eq!(
        verify_signature(&secret, &ts, &tampered, &sig, at(now)),
        Err(SignatureError::Mismatch)
    );

    assert_eq!(
        verify_signature(&secret, &ts, &body, "v1=abcd", at(now)),
        Err(SignatureError::Malformed)
    );
    let no_headers: [(&str, &str); 0] = [];
    let rejection = handle_interaction(&secret, no_headers, &body, at(now)).unwrap_err();
    assert_eq!(
        rejection,
        Rejection::Unauthorized(SignatureError::MissingTimestamp)
    );
    assert_eq!(rejection.status(), 401);

    // Authentic but unreadable: 400, not 401.
    let junk = b"payload=%7Bnot-json";
    let junk_sig = sign(&secret, &ts, junk);
    let headers = [
        ("x-slack-request-timestamp", ts.as_str()),
        ("x-slack-signature", junk_sig.as_str()),
    ];
    let rejection = handle_interaction(&secret, headers, junk, at(now)).unwrap_err();
    assert_eq!(rejection.status(), 400);
}
