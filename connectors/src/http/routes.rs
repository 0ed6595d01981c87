//! What each route answers: metrics, liveness, readiness, webhook ingest and Slack clicks.
//!
//! For: deciding from a request head alone whether to read the body at all (unknown route,
//! wrong method, missing token, declared size over the limit: answered before a byte of body
//! is read), then turning the body into events for the engine's channel and an answer. Not
//! for: sockets or HTTP framing (`wire.rs`, `server.rs`).

use std::net::SocketAddr;
use std::sync::mpsc::TrySendError;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use sha2::{Digest, Sha256};

use kaizen_model::{Event, Timestamp};

use super::wire::{Head, Response};
use super::{HttpConfig, HttpDeps, RejectedPayload};
use crate::codecs::{self, DecodeContext, Format};
use crate::metrics::{DEAD_LETTERS, DECODE_ERRORS, EVENTS_IN};
use crate::slack::interactions::handle_interaction;

/// The path prefix of webhook ingest.
const INGEST_PREFIX: &str = "/ingest/";
/// The Slack interactivity endpoint.
const SLACK_PATH: &str = "/slack/interactions";
/// The format label of Slack clicks in the metrics.
const SLACK_FORMAT: &str = "slack_interactions";

/// A request the router accepted from its head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Route {
    Metrics,
    Livez,
    Readyz,
    Ingest(Format),
    Slack,
}

/// The `route` label of a path in `kaizen_http_requests_total`: a fixed set, so no request
/// can grow the number of series.
pub(super) fn route_label(path: &str) -> &'static str {
    match path {
        "/metrics" => "/metrics",
        "/livez" => "/livez",
        "/readyz" => "/readyz",
        SLACK_PATH => SLACK_PATH,
        p if p.starts_with(INGEST_PREFIX) => "/ingest",
        _ => "other",
    }
}

/// The routes, with everything they need.
pub(super) struct Router {
    config: HttpConfig,
    deps: HttpDeps,
}

impl Router {
    pub fn new(config: HttpConfig, deps: HttpDeps) -> Self {
        Router { config, deps }
    }

    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    pub fn deps(&self) -> &HttpDeps {
        &self.deps
    }

    /// Decides from the head alone. `Err` is the answer, given without reading the body.
    pub fn check(&self, head: &Head) -> Result<Route, Response> {
        let path = head.path();
        let (route, allowed) = match path {
            "/metrics" => (Some(Route::Metrics), "GET, HEAD"),
            "/livez" => (Some(Route::Livez), "GET, HEAD"),
            "/readyz" => (Some(Route::Readyz), "GET, HEAD"),
            SLACK_PATH => (Some(Route::Slack), "POST"),
            p if p.starts_with(INGEST_PREFIX) => (None, "POST"),
            _ => return Err(Response::text(404, "not found")),
        };
        let method_ok = match allowed {
            "POST" => head.method == "POST",
            _ => head.method == "GET" || head.method == "HEAD",
        };
        if !method_ok {
            return Err(Response::text(405, "method not allowed").with_header("Allow", allowed));
        }
        if let Some(route) = route {
            if route == Route::Slack && self.config.slack_signing_secret.is_none() {
                return Err(Response::text(404, "Slack interactivity is not configured"));
            }
            if route == Route::Slack {
                self.check_body_framing(head)?;
            }
            return Ok(route);
        }
        // Ingest: the token first, so that nothing else is told to an unauthenticated caller.
        if let Some(token) = &self.config.ingest_token {
            let given = head
                .header("authorization")
                .and_then(|v| {
                    let (scheme, rest) = v.trim().split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
                })
                .unwrap_or("");
            if !constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
                return Err(Response::json(
                    401,
                    &json!({"error": "a valid bearer token is required"}),
                )
                .with_header("WWW-Authenticate", "Bearer realm=\"kaizen\""));
            }
        }
        let name = &path[INGEST_PREFIX.len()..];
        let format: Format = name.parse().map_err(|_| {
            Response::json(
                404,
                &json!({"error": format!("unknown format {name:?}"), "formats": format_names()}),
            )
        })?;
        self.check_body_framing(head)?;
        Ok(Route::Ingest(format))
    }

    /// Refuses compressed bodies (415) and declared sizes over the limit (413).
    fn check_body_framing(&self, head: &Head) -> Result<(), Response> {
        if let Some(enc) = head.header("content-encoding") {
            if !enc.trim().eq_ignore_ascii_case("identity") {
                return Err(Response::json(
                    415,
                    &json!({"error": "compressed request bodies are not supported"}),
                ));
            }
        }
        let declared = head
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if declared > self.config.max_body_bytes as u64 {
            return Err(too_large(self.config.max_body_bytes));
        }
        Ok(())
    }

    /// Answers an accepted request.
    pub fn handle(
        &self,
        route: Route,
        head: &Head,
        body: &[u8],
        peer: Option<SocketAddr>,
    ) -> Response {
        match route {
            Route::Metrics => Response {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                headers: Vec::new(),
                body: self.deps.metrics.render().into_bytes(),
            },
            Route::Livez => Response::text(200, "ok"),
            Route::Readyz if self.deps.readiness.is_ready() => Response::text(200, "ready"),
            Route::Readyz => Response::text(503, "not ready"),
            Route::Ingest(format) => self.ingest(format, body, peer),
            Route::Slack => self.slack(head, body, peer),
        }
    }

    fn ingest(&self, format: Format, body: &[u8], peer: Option<SocketAddr>) -> Response {
        let labels = [("source", "http"), ("format", format.name())];
        let ctx = DecodeContext {
            topic: None,
            received: Some(now_timestamp()),
        };
        let mut events = Vec::new();
        if let Err(e) = codecs::decode_with(format, body, &ctx, &mut events) {
            let reason = e.to_string();
            self.deps.metrics.counter(&DECODE_ERRORS, &labels).inc();
            self.dead_letter(format.name(), &reason, body, peer);
            tracing::debug!(format = %format, peer = ?peer, "rejected webhook: {reason}");
            return Response::json(400, &json!({"error": reason}));
        }
        let n = events.len();
        match self.enqueue(events) {
            Ok(()) => {
                self.deps.metrics.counter(&EVENTS_IN, &labels).add(n as u64);
                Response::json(202, &json!({"accepted": n}))
            }
            Err(refused) => self.refused(refused, n, &labels),
        }
    }

    fn slack(&self, head: &Head, body: &[u8], peer: Option<SocketAddr>) -> Response {
        let Some(secret) = &self.config.slack_signing_secret else {
            return Response::text(404, "Slack interactivity is not configured");
        };
        let labels = [("source", "slack"), ("format", SLACK_FORMAT)];
        let headers = head.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        match handle_interaction(secret, headers, body, SystemTime::now()) {
            Ok(events) => {
                let n = events.len();
                match self.enqueue(events) {
                    Ok(()) => {
                        self.deps.metrics.counter(&EVENTS_IN, &labels).add(n as u64);
                        Response {
                            status: 200,
                            content_type: "text/plain; charset=utf-8",
                            headers: Vec::new(),
                            body: Vec::new(),
                        }
                    }
                    Err(refused) => self.refused(refused, n, &labels),
                }
            }
            Err(rejection) => {
                let status = rejection.status();
                let reason = rejection.to_string();
                tracing::debug!(peer = ?peer, "refused Slack interaction: {reason}");
                if status == 400 {
                    // Authentic but unreadable: keep it. Unauthenticated bytes are not kept.
                    self.deps.metrics.counter(&DECODE_ERRORS, &labels).inc();
                    self.dead_letter(SLACK_FORMAT, &reason, body, peer);
                }
                Response::text(status, &reason)
            }
        }
    }

    fn refused(&self, refused: Refused, n: usize, labels: &[(&str, &str); 2]) -> Response {
        self.deps
            .metrics
            .counter(&EVENTS_IN, labels)
            .add(refused.accepted as u64);
        let error = if refused.closed {
            "the engine is not taking events"
        } else {
            "the engine's queue is full; retry later"
        };
        tracing::warn!(
            "{}/{}: {error} ({} of {n} event(s) accepted)",
            labels[0].1,
            labels[1].1,
            refused.accepted
        );
        let retry = self.config.retry_after.as_secs().max(1);
        Response::json(
            503,
            &json!({"error": error, "accepted": refused.accepted, "refused": n - refused.accepted}),
        )
        .with_header("Retry-After", retry.to_string())
    }

    /// Hands events to the engine, waiting at most `enqueue_timeout` for room in all.
    fn enqueue(&self, events: Vec<Event>) -> Result<(), Refused> {
        let deadline = Instant::now() + self.config.enqueue_timeout;
        for (i, event) in events.into_iter().enumerate() {
            let mut event = event;
            let mut pause = Duration::from_millis(1);
            loop {
                match self.deps.events.try_send(event) {
                    Ok(()) => break,
                    Err(TrySendError::Full(back)) => {
                        if Instant::now() >= deadline {
                            return Err(Refused {
                                accepted: i,
                                closed: false,
                            });
                        }
                        event = back;
                        std::thread::sleep(
                            pause.min(deadline.saturating_duration_since(Instant::now())),
                        );
                        pause = (pause * 2).min(Duration::from_millis(20));
                    }
                    Err(TrySendError::Disconnected(_)) => {
                        return Err(Refused {
                            accepted: i,
                            closed: true,
                        })
                    }
                }
            }
        }
        Ok(())
    }

    fn dead_letter(&self, format: &str, reason: &str, payload: &[u8], peer: Option<SocketAddr>) {
        let source = if format == SLACK_FORMAT {
            "slack"
        } else {
            "http"
        };
        self.deps
            .metrics
            .counter(&DEAD_LETTERS, &[("source", source)])
            .inc();
        if let Some(f) = &self.deps.dead_letter {
            f(&RejectedPayload {
                source,
                format,
                reason,
                payload,
                peer,
            });
        }
    }
}

/// How far [`Router::enqueue`] got before the channel refused.
struct Refused {
    accepted: usize,
    closed: bool,
}

pub(super) fn too_large(limit: usize) -> Response {
    Response::json(
        413,
        &json!({"error": format!("request body larger than {limit} bytes")}),
    )
}

fn format_names() -> Vec<&'static str> {
    Format::ALL.iter().map(|f| f.name()).collect()
}

fn now_timestamp() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Timestamp::from_millis(ms)
}

/// Compares secrets without a timing side channel on their content: both sides are hashed
/// to 32 bytes, which are compared with no early exit.
fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let a = Sha256::digest(given);
    let b = Sha256::digest(expected);
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"", b"secret"));
    }

    #[test]
    fn route_labels_are_a_fixed_set() {
        assert_eq!(route_label("/ingest/grafana"), "/ingest");
        assert_eq!(route_label("/ingest/whatever-you-like"), "/ingest");
        assert_eq!(route_label("/wp-admin"), "other");
        assert_eq!(route_label("/metrics"), "/metrics");
    }
}
