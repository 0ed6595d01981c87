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
//! The server is hyper (HTTP/1.1 and HTTP/2) under an axum router, on a tokio runtime of its
//! own (two threads, plus one blocking thread per ingest worker), so the engine's threads
//! stay as they are and health answers while ingest is saturated or clients are slow.
//!
//! Not for: TLS (put a proxy in front), compressed bodies (415), or running the engine.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use kaizen_model::Event;

use crate::codecs::Format;
use crate::metrics::Registry;
use crate::slack::Secret;

mod routes;
mod server;

/// Where the server listens, its limits and its secrets (already loaded).
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Address to bind, `host:port` (port 0 picks a free one; see [`HttpServer::local_addr`]).
    pub listen: String,
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Ingest requests decoded and enqueued at once, each on a thread of its own; more wait
    /// up to `enqueue_timeout`, then get 503. Health and metrics never wait for them.
    pub workers: usize,
    /// Connections open at once; past it, new ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// When set, `POST /ingest/*` requires `Authorization: Bearer <token>`.
    pub ingest_token: Option<Secret>,
    /// When set, `POST /slack/interactions` is served and verified with it; otherwise 404.
    pub slack_signing_secret: Option<Secret>,
    /// How long a request may wait for room in the engine's channel before 503.
    pub enqueue_timeout: Duration,
    /// The `Retry-After` of a 503 (whole seconds, at least 1).
    pub retry_after: Duration,
    /// Time allowed for one request, from its head to its answer (408 past it).
    pub request_timeout: Duration,
    /// Time allowed to send a complete request head, on a new connection and between the
    /// requests of a kept-alive one: a slow or silent client is closed after it.
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
            max_connections: 1024,
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
    /// The runtime's threads could not be started.
    #[error("cannot start the HTTP server threads: {0}")]
    Spawn(std::io::Error),
}

/// The running server. [`HttpServer::shutdown`] (or dropping it) stops accepting, finishes
/// the requests in progress and stops the runtime's threads.
pub struct HttpServer {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HttpServer({})", self.addr)
    }
}

/// Threads of the runtime that run connections (not the ingest workers, which block).
const RUNTIME_THREADS: usize = 2;

impl HttpServer {
    /// Binds `config.listen` and starts serving. Call it from outside any tokio runtime: the
    /// server runs on its own.
    pub fn start(config: HttpConfig, deps: HttpDeps) -> Result<HttpServer, HttpError> {
        let bind_error = |source| HttpError::Bind {
            addr: config.listen.clone(),
            source,
        };
        let listener = std::net::TcpListener::bind(&config.listen).map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_THREADS)
            .max_blocking_threads(config.workers.max(1))
            .thread_name("kaizen-http")
            .enable_io()
            .enable_time()
            .build()
            .map_err(HttpError::Spawn)?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(bind_error)?
        };
        let limits = server::Limits {
            max_connections: config.max_connections,
            head_timeout: config.idle_timeout.min(config.request_timeout),
            drain: config.request_timeout + config.enqueue_timeout,
        };
        let slack = config.slack_signing_secret.is_some();
        let router = routes::router(config, deps);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let serving = runtime.spawn(server::serve(listener, router, limits, stopped));
        tracing::info!(
            "HTTP on {addr}: /metrics /livez /readyz /ingest/{{format}}{}",
            if slack { " /slack/interactions" } else { "" }
        );
        Ok(HttpServer {
            addr,
            runtime: Some(runtime),
            stop: Some(stop),
            serving: Some(serving),
        })
    }

    /// The address bound (the real port when the config said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, closes idle ones, lets the requests in progress finish
    /// (within `request_timeout` plus `enqueue_timeout`) and stops the threads. New
    /// connections are refused once this returns.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(serving) = self.serving.take() {
            if runtime.block_on(serving).is_err() {
                tracing::error!("the HTTP accept loop panicked");
            }
        }
        // An ingest worker still blocked on a full engine channel gets up to its
        // `enqueue_timeout` of that second.
        runtime.shutdown_timeout(Duration::from_secs(1));
        tracing::info!("HTTP on {} stopped", self.addr);
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
