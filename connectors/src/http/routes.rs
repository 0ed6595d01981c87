//! What each route answers: metrics, liveness, readiness, webhook ingest and Slack clicks.
//!
//! For: the axum [`Router`] of kaizen's endpoint. Health and metrics answer on the runtime's
//! threads at once. Ingest and Slack clicks decode and enqueue on blocking threads, at most
//! `workers` requests at a time, so a flood of ingest (or an engine that is slow to take
//! events) never delays `/livez`. What can be refused from the head — token, format, declared
//! size, compression — is refused before a byte of body is read. Not for: sockets, connection
//! limits, head deadlines or shutdown (`server.rs`).

use std::net::SocketAddr;
use std::sync::mpsc::TrySendError;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use kaizen_model::{Event, Timestamp};

use super::{HttpConfig, HttpDeps, RejectedPayload};
use crate::codecs::{self, DecodeContext, Format};
use crate::metrics::{DEAD_LETTERS, DECODE_DURATION, DECODE_ERRORS, EVENTS_IN, HTTP_REQUESTS};
use crate::slack::interactions::handle_interaction;

/// The Slack interactivity endpoint.
const SLACK_PATH: &str = "/slack/interactions";
/// The format label of Slack clicks in the metrics.
const SLACK_FORMAT: &str = "slack_interactions";
/// The content type of the text exposition format 0.0.4.
const EXPOSITION: &str = crate::metrics::OPENMETRICS_CONTENT_TYPE;

/// The `route` label of a path in `kaizen_http_requests_total`: a fixed set, so no request
/// can grow the number of series.
pub(super) fn route_label(path: &str) -> &'static str {
    match path {
        "/metrics" => "/metrics",
        "/livez" => "/livez",
        "/readyz" => "/readyz",
        SLACK_PATH => SLACK_PATH,
        p if p.starts_with("/ingest/") => "/ingest",
        _ => "other",
    }
}

/// What the handlers share.
struct App {
    config: HttpConfig,
    deps: HttpDeps,
    /// One permit per request decoding or enqueueing now (each on a blocking thread).
    decoders: Semaphore,
}

/// The routes, their request deadline, request counting and request logs.
pub(super) fn router(config: HttpConfig, deps: HttpDeps) -> Router {
    let deadline = config.request_timeout;
    let app = Arc::new(App {
        decoders: Semaphore::new(config.workers.max(1)),
        config,
        deps,
    });
    Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(|| async { text(StatusCode::OK, "ok") }))
        .route("/readyz", get(readyz))
        .route("/ingest/{format}", post(ingest))
        .route(SLACK_PATH, post(slack))
        .fallback(|| async { text(StatusCode::NOT_FOUND, "not found") })
        // A request (head, body, decoding, waiting for the engine) has `request_timeout`.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            deadline,
        ))
        .layer(middleware::from_fn_with_state(app.clone(), count))
        .layer(TraceLayer::new_for_http())
        .with_state(app)
}

async fn count(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let route = route_label(req.uri().path());
    let resp = next.run(req).await;
    app.deps
        .metrics
        .counter(
            &HTTP_REQUESTS,
            &[("route", route), ("code", resp.status().as_str())],
        )
        .inc();
    resp
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let body = app.deps.metrics.render();
    ([(header::CONTENT_TYPE, EXPOSITION)], body).into_response()
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.deps.readiness.is_ready() {
        text(StatusCode::OK, "ready")
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn ingest(State(app): State<Arc<App>>, Path(name): Path<String>, req: Request) -> Response {
    // The token first, so that nothing else is told to an unauthenticated caller.
    if let Some(refused) = app.refuse_unauthorized(req.headers()) {
        return refused;
    }
    let Ok(format) = name.parse::<Format>() else {
        let formats: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        let error = json!({"error": format!("unknown format {name:?}"), "formats": formats});
        return json_response(StatusCode::NOT_FOUND, &error);
    };
    let peer = peer(&req);
    let body = match app.read_body(req).await {
        Ok(body) => body,
        Err(refused) => return refused.into_response(),
    };
    app.clone()
        .off_thread(move |app| app.decode_and_enqueue(format, &body, peer))
        .await
}

async fn slack(State(app): State<Arc<App>>, req: Request) -> Response {
    if app.config.slack_signing_secret.is_none() {
        return text(
            StatusCode::NOT_FOUND,
            "Slack interactivity is not configured",
        );
    }
    let peer = peer(&req);
    let headers = req.headers().clone();
    let body = match app.read_body(req).await {
        Ok(body) => body,
        Err(refused) => return refused.into_response(),
    };
    app.clone()
        .off_thread(move |app| app.click(&headers, &body, peer))
        .await
}

fn peer(req: &Request) -> Option<SocketAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

impl App {
    /// 401 unless the configured token (if any) is given.
    fn refuse_unauthorized(&self, headers: &HeaderMap) -> Option<Response> {
        let token = self.config.ingest_token.as_ref()?;
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .unwrap_or("");
        if constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
            return None;
        }
        let mut resp = json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "a valid bearer token is required"}),
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"kaizen\""),
        );
        Some(resp)
    }

    /// The whole body, within `max_body_bytes`. Compressed bodies (415), transfer codings
    /// other than chunked (501) and declared sizes over the limit (413) are refused from the
    /// head; hyper sends `100 Continue` only once the body is read, so a client that asked
    /// for it sends nothing it is refused for.
    async fn read_body(&self, req: Request) -> Result<Bytes, BodyRefused> {
        let limit = self.config.max_body_bytes;
        let headers = req.headers();
        if let Some(enc) = headers.get(header::CONTENT_ENCODING) {
            if !enc
                .as_bytes()
                .trim_ascii()
                .eq_ignore_ascii_case(b"identity")
            {
                return Err(BodyRefused::Compressed);
            }
        }
        for te in headers.get_all(header::TRANSFER_ENCODING) {
            if !te.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(BodyRefused::Coding);
            }
        }
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if declared > limit as u64 {
            return Err(BodyRefused::TooLarge(limit));
        }
        match Limited::new(req.into_body(), limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.is::<LengthLimitError>() => Err(BodyRefused::TooLarge(limit)),
            Err(e) => {
                tracing::debug!("unreadable request body: {e}");
                Err(BodyRefused::Malformed)
            }
        }
    }

    /// Runs `work` on a blocking thread once one of the `workers` permits is free, waiting
    /// at most `enqueue_timeout` for it (then 503: webhook senders retry).
    async fn off_thread<F>(self: Arc<Self>, work: F) -> Response
    where
        F: FnOnce(&App) -> Response + Send + 'static,
    {
        let wait = self.config.enqueue_timeout;
        let permit = match tokio::time::timeout(wait, self.decoders.acquire()).await {
            Ok(Ok(permit)) => permit,
            _ => return self.busy("every ingest worker is busy; retry later", 0, 0),
        };
        let app = self.clone();
        let done = tokio::task::spawn_blocking(move || work(&app)).await;
        drop(permit);
        done.unwrap_or_else(|e| {
            tracing::error!("an ingest worker failed: {e}");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        })
    }

    fn decode_and_enqueue(
        &self,
        format: Format,
        body: &[u8],
        peer: Option<SocketAddr>,
    ) -> Response {
        let labels = [("source", "http"), ("format", format.name())];
        let ctx = DecodeContext {
            topic: None,
            received: Some(now_timestamp()),
        };
        let mut events = Vec::new();
        let started = std::time::Instant::now();
        let decoded = codecs::decode_with(format, body, &ctx, &mut events);
        self.deps
            .metrics
            .histogram(&DECODE_DURATION, &labels)
            .observe_duration(started.elapsed());
        if let Err(e) = decoded {
            let reason = e.to_string();
            self.deps.metrics.counter(&DECODE_ERRORS, &labels).inc();
            self.dead_letter(format.name(), &reason, body, peer);
            tracing::debug!(format = %format, peer = ?peer, "rejected webhook: {reason}");
            return json_response(StatusCode::BAD_REQUEST, &json!({"error": reason}));
        }
        let n = events.len();
        match self.enqueue(events) {
            Ok(()) => {
                self.deps.metrics.counter(&EVENTS_IN, &labels).add(n as u64);
                json_response(StatusCode::ACCEPTED, &json!({"accepted": n}))
            }
            Err(refused) => self.refused(refused, n, &labels),
        }
    }

    fn click(&self, headers: &HeaderMap, body: &[u8], peer: Option<SocketAddr>) -> Response {
        let Some(secret) = &self.config.slack_signing_secret else {
            return text(
                StatusCode::NOT_FOUND,
                "Slack interactivity is not configured",
            );
        };
        let labels = [("source", "slack"), ("format", SLACK_FORMAT)];
        let pairs = headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
        match handle_interaction(secret, pairs, body, SystemTime::now()) {
            Ok(events) => {
                let n = events.len();
                match self.enqueue(events) {
                    Ok(()) => {
                        self.deps.metrics.counter(&EVENTS_IN, &labels).add(n as u64);
                        StatusCode::OK.into_response()
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
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                text(status, &reason)
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
        self.busy(error, refused.accepted, n - refused.accepted)
    }

    /// 503 with `Retry-After`.
    fn busy(&self, error: &str, accepted: usize, refused: usize) -> Response {
        let retry = self.config.retry_after.as_secs().max(1);
        let mut resp = json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": error, "accepted": accepted, "refused": refused}),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry));
        resp
    }

    /// Hands events to the engine, waiting at most `enqueue_timeout` for room in all. This
    /// runs on a blocking thread: the engine's channel is a std one.
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

/// Why a body was not read (or not to its end).
enum BodyRefused {
    Compressed,
    Coding,
    TooLarge(usize),
    Malformed,
}

impl IntoResponse for BodyRefused {
    fn into_response(self) -> Response {
        let (status, error) = match self {
            BodyRefused::Compressed => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "compressed request bodies are not supported".to_owned(),
            ),
            BodyRefused::Coding => (
                StatusCode::NOT_IMPLEMENTED,
                "only the chunked transfer coding is supported".to_owned(),
            ),
            BodyRefused::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {limit} bytes"),
            ),
            BodyRefused::Malformed => (StatusCode::BAD_REQUEST, "malformed request body".into()),
        };
        let mut resp = json_response(status, &json!({ "error": error }));
        // The rest of the body is not read: the connection cannot carry another request.
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        resp
    }
}

/// How far [`App::enqueue`] got before the channel refused.
struct Refused {
    accepted: usize,
    closed: bool,
}

/// A `text/plain` answer; a newline is added.
fn text(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{msg}\n"),
    )
        .into_response()
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut body = value.to_string();
    body.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body),
    )
        .into_response()
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
