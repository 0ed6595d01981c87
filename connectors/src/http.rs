//! kaizen's HTTP endpoint: metrics, health, webhook ingest and Slack button clicks.
//!
//! For: one small blocking HTTP/1.1 server ([`HttpServer::start`]) with these routes:
//!
//! | route | answer |
//! |---|---|
//! | `GET /metrics` | the [`Registry`] in Prometheus text format 0.0.4 |
//! | `GET /livez` | 200 while the process runs |
//! | `GET /readyz` | 200 while the shared [`Readiness`] flag is set, 503 otherwise |
//! | `POST /ingest/{format}` | the body decoded by the codec named `format` (`alertmanager`, `grafana`, `pagerduty`, `native`, … see [`Format`]); 202 `{"accepted":n}` |
//! | `POST /slack/interactions` | Slack's signed button clicks, as feedback events; 200 |
//!
//! Ingest takes an optional bearer token (compared in constant time). A payload the codec
//! refuses is answered 400 with the codec's reason and handed, raw, to the dead-letter
//! callback. Bodies over `max_body_bytes` are refused with 413 (before reading them when the
//! size is declared). Accepted events go to the engine through the bounded channel the
//! caller gives; when it stays full for `enqueue_timeout` the answer is 503 with
//! `Retry-After` (webhook senders retry), never an unbounded wait. Requests, events, decode
//! errors and dead letters are counted in the registry.
//!
//! Not for: TLS (put a proxy in front), HTTP/2, compressed bodies (415), or running the
//! engine. The server is written on `std::net` rather than a crate so that every limit —
//! threads, queued connections, head and body size, time per request — is enforced by code
//! in this module: a client can make it allocate no more than the limits and hold no more
//! than a worker for `request_timeout`.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use kaizen_model::Event;

use crate::codecs::Format;
use crate::metrics::Registry;
use crate::slack::Secret;

mod routes;
mod server;
mod wire;

/// Where the server listens, its limits and its secrets (already loaded).
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Address to bind, `host:port` (port 0 picks a free one; see [`HttpServer::local_addr`]).
    pub listen: String,
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Connection worker threads: requests served at once.
    pub workers: usize,
    /// When set, `POST /ingest/*` requires `Authorization: Bearer <token>`.
    pub ingest_token: Option<Secret>,
    /// When set, `POST /slack/interactions` is served and verified with it; otherwise 404.
    pub slack_signing_secret: Option<Secret>,
    /// How long a request may wait for room in the engine's channel before 503.
    pub enqueue_timeout: Duration,
    /// The `Retry-After` of a 503 (whole seconds, at least 1).
    pub retry_after: Duration,
    /// Time allowed to read one request (head and body) and to write its answer.
    pub request_timeout: Duration,
    /// How long an idle keep-alive connection is kept.
    pub idle_timeout: Duration,
}

/// The default listen address: loopback only; containers set `0.0.0.0:8080`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: DEFAULT_LISTEN.into(),
            max_body_bytes: 4 * 1024 * 1024,
            workers: 4,
            ingest_token: None,
            slack_signing_secret: None,
            enqueue_timeout: Duration::from_secs(1),
            retry_after: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
        }
    }
}

/// A readiness flag shared between whoever knows (the engine driver, once its sources are
/// assigned and its sinks are up) and `GET /readyz`. Clones share the flag; it starts unset.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// A flag, not ready.
    pub fn new() -> Self {
        Readiness::default()
    }
    /// Sets or clears readiness.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }
    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A payload that could not be decoded, as handed to the dead-letter callback.
#[derive(Clone, Copy, Debug)]
pub struct RejectedPayload<'a> {
    /// `http` (ingest) or `slack` (interactions).
    pub source: &'a str,
    /// The format it was decoded as (`alertmanager`, …, `slack_interactions`).
    pub format: &'a str,
    /// Why it was refused (the codec's message).
    pub reason: &'a str,
    /// The raw body, as received.
    pub payload: &'a [u8],
    /// The client's address.
    pub peer: Option<SocketAddr>,
}

/// Called with every refused payload, from the server's worker threads; it should not block
/// for long (queue the bytes for a dead-letter writer).
pub type DeadLetterFn = Arc<dyn Fn(&RejectedPayload<'_>) + Send + Sync>;

/// What the server hands accepted events and results to.
#[derive(Clone)]
pub struct HttpDeps {
    /// The engine's input: accepted events, in the order of each request's payload.
    pub events: SyncSender<Event>,
    /// Where requests and events are counted; served on `/metrics`.
    pub metrics: Arc<Registry>,
    /// Served on `/readyz`.
    pub readiness: Readiness,
    /// Where undecodable payloads go; `None` keeps only the count and the 400.
    pub dead_letter: Option<DeadLetterFn>,
}

impl std::fmt::Debug for HttpDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpDeps")
            .field("readiness", &self.readiness)
            .field("dead_letter", &self.dead_letter.is_some())
            .finish_non_exhaustive()
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start the HTTP server threads: {0}")]
    Spawn(std::io::Error),
}

/// The running server. [`HttpServer::shutdown`] (or dropping it) stops accepting, finishes
/// the requests in progress and joins every thread.
pub struct HttpServer {
    addr: SocketAddr,
    shared: Arc<server::Shared>,
    threads: Option<server::Threads>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HttpServer({})", self.addr)
    }
}

impl HttpServer {
    /// Binds `config.listen` and starts serving.
    pub fn start(config: HttpConfig, deps: HttpDeps) -> Result<HttpServer, HttpError> {
        let listener = TcpListener::bind(&config.listen).map_err(|source| HttpError::Bind {
            addr: config.listen.clone(),
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| HttpError::Bind {
            addr: config.listen.clone(),
            source,
        })?;
        let workers = config.workers;
        let shared = Arc::new(server::Shared {
            router: routes::Router::new(config, deps),
            stopping: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
        });
        let threads = server::spawn(listener, shared.clone(), workers).map_err(HttpError::Spawn)?;
        tracing::info!(
            "HTTP on {addr}: /metrics /livez /readyz /ingest/{{format}}{}",
            if shared.router.config().slack_signing_secret.is_some() {
                " /slack/interactions"
            } else {
                ""
            }
        );
        Ok(HttpServer {
            addr,
            shared,
            threads: Some(threads),
        })
    }

    /// The address bound (the real port when the config said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, lets the requests in progress finish (each within
    /// `request_timeout` plus `enqueue_timeout`), closes idle connections and joins the
    /// threads. New connections are refused from the moment this is called.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(threads) = self.threads.take() {
            server::stop(&self.shared, threads);
            tracing::info!("HTTP on {} stopped", self.addr);
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The format names `POST /ingest/{format}` accepts.
pub fn ingest_formats() -> impl Iterator<Item = &'static str> {
    Format::ALL.into_iter().map(Format::name)
}
