//! A blocking client for the three Slack Web API calls kaizen makes.
//!
//! For: `chat.postMessage` (a new incident, or a thread reply) and `chat.update` (a new
//! version), with bot-token auth, and sorting every outcome into what the delivery queue must
//! do with it: done, wait and retry (429, 5xx, network, transient `ok:false`), or give up
//! (other `ok:false`, other 4xx). Not for: pacing, retrying or ordering (`queue.rs`).
//!
//! Blocking on purpose: one worker thread sends everything, one request at a time, which is
//! all a 1 msg/s/channel budget needs, and ureq compiles in seconds where an async stack
//! would take minutes on a 2-core machine. TLS is the system OpenSSL (native-tls), which
//! rdkafka links anyway, and trusts the system's CA store (corporate proxies included).

use std::time::Duration;

use serde_json::{json, Value};

use super::blocks::SlackMessage;
use super::config::Secret;
use super::SlackError;
use crate::metrics::{Histogram, SLACK_REQUEST_DURATION};

/// Largest response body read: Slack's answers to these calls are a few kilobytes.
const MAX_RESPONSE: u64 = 1 << 20;

/// `ok:false` errors that say "try again later" rather than "this request is wrong".
const TRANSIENT_ERRORS: &[&str] = &[
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "team_added_to_org",
];

/// Where a posted or updated message is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posted {
    /// Channel id.
    pub channel: String,
    /// Message ts.
    pub ts: String,
}

/// Why a call did not succeed, sorted by what to do about it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CallError {
    /// HTTP 429 or `ok:false, error:ratelimited`: wait `retry_after` (when Slack said) and
    /// try again.
    #[error("rate limited (Retry-After {retry_after:?})")]
    RateLimited {
        /// From the `Retry-After` header.
        retry_after: Option<Duration>,
    },
    /// 5xx, a network error, an unreadable answer or a transient Slack error: back off and
    /// try again.
    #[error("transient: {0}")]
    Transient(String),
    /// Slack answered `ok:false` with this error (`channel_not_found`, `invalid_auth`,
    /// `msg_too_long`, …): retrying the same request cannot help.
    #[error("Slack error `{0}`")]
    Slack(String),
    /// Any other HTTP failure (4xx other than 429, 408).
    #[error("{0}")]
    Permanent(String),
}

impl CallError {
    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CallError::RateLimited { .. } | CallError::Transient(_)
        )
    }

    /// The Slack error code, for `ok:false` answers.
    pub fn slack_error(&self) -> Option<&str> {
        match self {
            CallError::Slack(e) => Some(e),
            _ => None,
        }
    }
}

/// The Web API client. Cheap to share by reference; holds a connection pool.
pub struct SlackClient {
    agent: ureq::Agent,
    base: String,
    auth: String,
    latency: RequestLatency,
}

/// Request latency per Web API method, whatever the answer; clones share the histograms,
/// which the metrics registry exports (see [`crate::metrics::register_slack_stats`]).
#[derive(Clone, Debug)]
pub struct RequestLatency {
    /// `chat.postMessage` (new messages and thread replies).
    pub post_message: Histogram,
    /// `chat.update`.
    pub update: Histogram,
}

impl Default for RequestLatency {
    fn default() -> Self {
        let buckets = SLACK_REQUEST_DURATION.buckets;
        RequestLatency {
            post_message: Histogram::new(buckets),
            update: Histogram::new(buckets),
        }
    }
}

impl std::fmt::Debug for SlackClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackClient")
            .field("base", &self.base)
            .field("auth", &"Bearer [redacted]")
            .finish()
    }
}

impl SlackClient {
    /// A client for `api_base` (e.g. `https://slack.com/api/`) with the bot token.
    pub fn new(api_base: &str, token: &Secret, timeout: Duration) -> Result<Self, SlackError> {
        let mut base = api_base.trim().to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(SlackError::Config(format!(
                "api_base {base:?} must start with https:// or http://"
            )));
        }
        if !base.ends_with('/') {
            base.push('/');
        }
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::NativeTls)
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .build();
        let mut config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .user_agent(concat!("kaizen/", env!("CARGO_PKG_VERSION")));
        if is_loopback(&base) {
            // A test stub or a local relay: an HTTP(S)_PROXY from the environment must not
            // capture it.
            config = config.proxy(None);
        }
        Ok(SlackClient {
            agent: config.build().new_agent(),
            base,
            auth: format!("Bearer {}", token.expose()),
            latency: RequestLatency::default(),
        })
    }

    /// `chat.postMessage`: a new message, or a reply in the thread of `thread_ts`.
    pub fn post_message(
        &self,
        channel: &str,
        message: &SlackMessage,
        thread_ts: Option<&str>,
    ) -> Result<Posted, CallError> {
        let mut body = json!({
            "channel": channel,
            "text": message.text,
            "unfurl_links": false,
            "unfurl_media": false,
        });
        if !message.blocks.is_empty() {
            body["blocks"] = Value::Array(message.blocks.clone());
        }
        if let Some(ts) = thread_ts {
            body["thread_ts"] = json!(ts);
        }
        let answer = self.call("chat.postMessage", &body)?;
        posted(&answer, channel)
    }

    /// `chat.update`: replaces the message `ts` in `channel` (a channel id).
    pub fn update_message(
        &self,
        channel: &str,
        ts: &str,
        message: &SlackMessage,
    ) -> Result<Posted, CallError> {
        let body = json!({
            "channel": channel,
            "ts": ts,
            "text": message.text,
            "blocks": message.blocks,
        });
        let answer = self.call("chat.update", &body)?;
        posted(&answer, channel)
    }

    fn call(&self, method: &str, body: &Value) -> Result<Value, CallError> {
        let url = format!("{}{method}", self.base);
        let payload = serde_json::to_vec(body).map_err(|e| CallError::Permanent(e.to_string()))?;
        let started = std::time::Instant::now();
        let answer = self.send(method, &url, &payload);
        let timer = match method {
            "chat.postMessage" => Some(&self.latency.post_message),
            "chat.update" => Some(&self.latency.update),
            _ => None,
        };
        if let Some(h) = timer {
            h.observe_duration(started.elapsed());
        }
        answer
    }

    /// The latency histograms this client records into.
    pub fn latency(&self) -> RequestLatency {
        self.latency.clone()
    }

    fn send(&self, method: &str, url: &str, payload: &[u8]) -> Result<Value, CallError> {
        let mut response = self
            .agent
            .post(url)
            .header("Authorization", &self.auth)
            .header("Content-Type", "application/json; charset=utf-8")
            .send(payload)
            .map_err(|e| CallError::Transient(format!("{method}: {e}")))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_string();
        if status == 429 {
            return Err(CallError::RateLimited { retry_after });
        }
        if status >= 500 || status == 408 {
            return Err(CallError::Transient(format!("{method}: HTTP {status}")));
        }
        if !(200..300).contains(&status) {
            let snippet: String = text.unwrap_or_default().chars().take(200).collect();
            return Err(CallError::Permanent(format!(
                "{method}: HTTP {status}: {snippet}"
            )));
        }
        let text = text.map_err(|e| CallError::Transient(format!("{method}: {e}")))?;
        let answer: Value = serde_json::from_str(&text)
            .map_err(|e| CallError::Transient(format!("{method}: answer is not JSON ({e})")))?;
        if answer.get("ok").and_then(Value::as_bool) == Some(true) {
            if let Some(w) = answer.get("warning") {
                tracing::debug!("Slack {method} warning: {w}");
            }
            return Ok(answer);
        }
        let error = answer
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown_error")
            .to_owned();
        if error == "ratelimited" {
            Err(CallError::RateLimited { retry_after })
        } else if TRANSIENT_ERRORS.contains(&error.as_str()) {
            Err(CallError::Transient(format!("{method}: {error}")))
        } else {
            Err(CallError::Slack(error))
        }
    }
}

fn posted(answer: &Value, channel: &str) -> Result<Posted, CallError> {
    let ts = answer
        .get("ts")
        .and_then(Value::as_str)
        .ok_or_else(|| CallError::Transient("answer has no ts".into()))?;
    let channel = answer
        .get("channel")
        .and_then(Value::as_str)
        .unwrap_or(channel);
    Ok(Posted {
        channel: channel.to_owned(),
        ts: ts.to_owned(),
    })
}

fn is_loopback(base: &str) -> bool {
    let rest = base
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    rest.starts_with("127.") || rest.starts_with("localhost") || rest.starts_with("[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let c = SlackClient::new(
            "https://slack.example/api",
            &Secret::new("xoxb-secret"),
            Duration::from_secs(1),
        )
        .unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("xoxb"), "{d}");
        assert!(d.contains("https://slack.example/api/"), "{d}");
    }

    #[test]
    fn base_urls_must_be_http() {
        let err = SlackClient::new("slack.com/api", &Secret::new("x"), Duration::from_secs(1));
        assert!(err.is_err());
        assert!(is_loopback("http://127.0.0.1:4000/api/"));
        assert!(!is_loopback("https://slack.com/api/"));
    }

    #[test]
    fn only_rate_limits_and_transient_errors_retry() {
        assert!(CallError::RateLimited { retry_after: None }.is_retryable());
        assert!(CallError::Transient("x".into()).is_retryable());
        assert!(!CallError::Slack("channel_not_found".into()).is_retryable());
        assert!(!CallError::Permanent("HTTP 404".into()).is_retryable());
    }
}
