//! The listener, its connections and their limits, and stopping them gracefully.
//!
//! For: accepting connections on a tokio listener and serving each with hyper (HTTP/1.1 with
//! keep-alive and pipelining, or HTTP/2, told apart by the preface) in a task of its own, so
//! a slow or silent client costs a few kilobytes, not a thread. Limits: at most
//! `max_connections` open at once (past it, new ones wait in the kernel's backlog), a head
//! must be complete within `idle_timeout` (which also closes idle kept-alive connections),
//! heads are at most [`MAX_HEAD_BYTES`]. Not for: what routes answer (`routes.rs`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};
use tower::ServiceExt;

/// The largest request head (request line and header fields) read; larger ones get 431.
pub(super) const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long accepting pauses after a failed accept (EMFILE and friends), rather than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What the accept loop needs besides the listener.
pub(super) struct Limits {
    pub max_connections: usize,
    pub head_timeout: Duration,
    /// How long stopping waits for the requests in progress.
    pub drain: Duration,
}

/// Accepts and serves connections until `stop` fires (or its sender is dropped), then stops
/// accepting, asks every connection to finish (idle ones close at once, requests in
/// progress get `limits.drain`) and returns.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut stop: oneshot::Receiver<()>,
) {
    let graceful = GracefulShutdown::new();
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.head_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        .max_concurrent_streams(64);
    loop {
        let permit = tokio::select! {
            _ = &mut stop => break,
            permit = open.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("HTTP accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        // The routes see the peer's address as axum's `ConnectInfo`.
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(req)
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(peer = %peer, "HTTP connection ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "HTTP stopped with requests still in progress after {:?}",
            limits.drain
        );
    }
}
