//! The listener, its accept thread, a fixed pool of connection workers, and stopping them.
//!
//! For: serving connections with bounded resources — `workers` threads each own one
//! connection at a time, accepted connections wait in a bounded queue (a full queue is
//! answered 503 at once), every request has a deadline, idle keep-alive connections are
//! closed as soon as another connection waits or the server stops. Not for: what routes
//! answer (`routes.rs`) or HTTP parsing (`wire.rs`).

use std::io::{BufRead, BufReader, ErrorKind};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::routes::{route_label, too_large, Router};
use super::wire::{self, BodyKind, Response, WireError};
use crate::metrics::HTTP_REQUESTS;

/// How often the accept thread looks at the stop flag when no connection comes.
const ACCEPT_POLL: Duration = Duration::from_millis(20);
/// How often an idle keep-alive connection looks at the stop flag and the waiting queue.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// How long, and how many bytes, a connection closed after an error is drained.
const LINGER: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 1024 * 1024;
/// Accepted connections that may wait for a worker.
const BACKLOG: usize = 64;

/// What the threads share.
pub(super) struct Shared {
    pub router: Router,
    pub stopping: AtomicBool,
    /// Connections accepted and not yet taken by a worker.
    pub waiting: AtomicUsize,
}

/// The running threads.
pub(super) struct Threads {
    pub accept: Option<JoinHandle<()>>,
    pub workers: Vec<JoinHandle<()>>,
}

/// Starts the accept thread and `workers` connection workers on `listener`.
pub(super) fn spawn(
    listener: TcpListener,
    shared: Arc<Shared>,
    workers: usize,
) -> std::io::Result<Threads> {
    listener.set_nonblocking(true)?;
    let (tx, rx) = mpsc::sync_channel::<TcpStream>(BACKLOG);
    let rx = Arc::new(Mutex::new(rx));
    let mut threads = Threads {
        accept: None,
        workers: Vec::new(),
    };
    for i in 0..workers.max(1) {
        let (worker_shared, rx) = (shared.clone(), rx.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("kaizen-http-{i}"))
            .spawn(move || worker(&worker_shared, &rx));
        match spawned {
            Ok(h) => threads.workers.push(h),
            Err(e) => {
                drop(tx); // lets the started workers see a closed queue
                stop(&shared, threads);
                return Err(e);
            }
        }
    }
    let accept_shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("kaizen-http-accept".into())
        .spawn(move || accept_loop(&listener, &accept_shared, tx));
    match spawned {
        Ok(h) => threads.accept = Some(h),
        Err(e) => {
            stop(&shared, threads);
            return Err(e);
        }
    }
    Ok(threads)
}

/// Stops accepting, lets each worker finish the request it is on, and joins every thread.
pub(super) fn stop(shared: &Shared, mut threads: Threads) {
    shared.stopping.store(true, Ordering::SeqCst);
    // The accept thread ends within ACCEPT_POLL and drops the queue's sender, so idle
    // workers wake up with a disconnected queue once the queued connections are served.
    if let Some(h) = threads.accept.take() {
        if h.join().is_err() {
            tracing::error!("the HTTP accept thread panicked");
        }
    }
    for h in threads.workers.drain(..) {
        if h.join().is_err() {
            tracing::error!("an HTTP worker thread panicked");
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Shared, tx: SyncSender<TcpStream>) {
    while !shared.stopping.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = stream.set_nonblocking(false) {
                    tracing::debug!("dropping a connection: {e}");
                    continue;
                }
                let _ = stream.set_nodelay(true);
                shared.waiting.fetch_add(1, Ordering::SeqCst);
                match tx.try_send(stream) {
                    Ok(()) => {}
                    Err(TrySendError::Full(mut stream)) => {
                        shared.waiting.fetch_sub(1, Ordering::SeqCst);
                        busy(shared, &mut stream);
                    }
                    Err(TrySendError::Disconnected(_)) => {
                        shared.waiting.fetch_sub(1, Ordering::SeqCst);
                        return;
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                // EMFILE and friends: back off rather than spin.
                tracing::warn!("HTTP accept failed: {e}");
                std::thread::sleep(ACCEPT_POLL * 5);
            }
        }
    }
}

/// Answers 503 to a connection no worker can take, without reading its request.
fn busy(shared: &Shared, stream: &mut TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let retry = shared.router.config().retry_after.as_secs().max(1);
    let resp = Response::text(503, "server busy").with_header("Retry-After", retry.to_string());
    let _ = wire::write_response(stream, &resp, false, true);
    count(shared, "other", 503);
}

fn worker(shared: &Shared, rx: &Mutex<Receiver<TcpStream>>) {
    loop {
        let next = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(stream) = next else {
            return; // the accept thread has stopped and the queue is empty
        };
        shared.waiting.fetch_sub(1, Ordering::SeqCst);
        serve_connection(shared, stream);
    }
}

fn count(shared: &Shared, route: &str, status: u16) {
    let code = status.to_string();
    shared
        .router
        .deps()
        .metrics
        .counter(&HTTP_REQUESTS, &[("route", route), ("code", &code)])
        .inc();
}

/// Waits up to `limit` for the first byte of a request; false when the connection should
/// close instead (peer gone, waited too long, server stopping, or — between requests of a
/// kept-alive connection, `yield_to_others` — another connection waiting for a worker).
fn await_request(
    shared: &Shared,
    reader: &mut BufReader<TcpStream>,
    limit: Duration,
    yield_to_others: bool,
) -> bool {
    let since = Instant::now();
    loop {
        if !reader.buffer().is_empty() {
            return true;
        }
        let slice = IDLE_POLL
            .min(limit.saturating_sub(since.elapsed()))
            .max(Duration::from_millis(1));
        if reader.get_ref().set_read_timeout(Some(slice)).is_err() {
            return false;
        }
        match reader.fill_buf() {
            Ok([]) => return false,
            Ok(_) => return true,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => return false,
        }
        if shared.stopping.load(Ordering::SeqCst)
            || (yield_to_others && shared.waiting.load(Ordering::SeqCst) > 0)
            || since.elapsed() >= limit
        {
            return false;
        }
    }
}

fn serve_connection(shared: &Shared, stream: TcpStream) {
    let peer = stream.peer_addr().ok();
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(e) => {
            tracing::debug!("cannot clone a connection: {e}");
            return;
        }
    };
    let _ = writer.set_write_timeout(Some(shared.router.config().request_timeout));
    let mut reader = BufReader::with_capacity(8 * 1024, stream);
    if serve_requests(shared, &mut reader, &mut writer, peer) {
        linger(&writer, &mut reader);
    }
}

/// Serves requests until the connection should close; true when it closes after an error
/// with input possibly left unread (see [`linger`]).
fn serve_requests(
    shared: &Shared,
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    peer: Option<SocketAddr>,
) -> bool {
    let config = shared.router.config();
    let mut first = true;
    loop {
        let (limit, yield_to_others) = if first {
            (config.request_timeout, false)
        } else {
            (config.idle_timeout, true)
        };
        if !await_request(shared, reader, limit, yield_to_others) {
            return false;
        }
        first = false;
        let deadline = Instant::now() + config.request_timeout;
        let head = match wire::read_head(reader, deadline) {
            Ok(Some(head)) => head,
            Ok(None) => return false,
            Err(e) => return answer_wire_error(shared, writer, "other", &e),
        };
        let label = route_label(head.path());
        let head_only = head.method == "HEAD";
        let kind = match wire::body_kind(&head) {
            Ok(kind) => kind,
            Err(e) => return answer_wire_error(shared, writer, label, &e),
        };
        let close = head.wants_close() || shared.stopping.load(Ordering::SeqCst);
        let route = match shared.router.check(&head) {
            Ok(route) => route,
            Err(resp) => {
                // The body was not read: unless there is none, the connection cannot go on.
                let close = close || kind != BodyKind::None;
                let sent = wire::write_response(writer, &resp, head_only, close);
                count(shared, label, resp.status);
                if close || sent.is_err() {
                    return kind != BodyKind::None;
                }
                continue;
            }
        };
        if head.expects_continue()
            && kind != BodyKind::None
            && wire::write_continue(writer).is_err()
        {
            return false;
        }
        let body = match wire::read_body(reader, kind, config.max_body_bytes, deadline) {
            Ok(body) => body,
            Err(WireError::BodyTooLarge) => {
                let resp = too_large(config.max_body_bytes);
                let _ = wire::write_response(writer, &resp, head_only, true);
                count(shared, label, 413);
                return true;
            }
            Err(e) => return answer_wire_error(shared, writer, label, &e),
        };
        let resp = shared.router.handle(route, &head, &body, peer);
        let sent = wire::write_response(writer, &resp, head_only, close);
        count(shared, label, resp.status);
        if close || sent.is_err() {
            return false;
        }
    }
}

/// After an error answer, the client may still be sending what we did not read; closing
/// with unread input makes the kernel reset the connection, which can destroy the answer
/// before the client reads it. So: stop writing, then read and discard for a short while.
fn linger(writer: &TcpStream, reader: &mut BufReader<TcpStream>) {
    let _ = writer.shutdown(Shutdown::Write);
    let deadline = Instant::now() + LINGER;
    let mut budget = LINGER_BYTES;
    while budget > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || reader.get_ref().set_read_timeout(Some(left)).is_err() {
            return;
        }
        match reader.fill_buf() {
            Ok([]) | Err(_) => return,
            Ok(buf) => {
                let n = buf.len();
                reader.consume(n);
                budget = budget.saturating_sub(n);
            }
        }
    }
}

/// Answers a request that could not be read; true when an answer was sent (then linger).
fn answer_wire_error(shared: &Shared, writer: &mut TcpStream, label: &str, e: &WireError) -> bool {
    match e.status() {
        Some((status, why)) => {
            tracing::debug!("HTTP request refused ({status}): {why}");
            let _ = wire::write_response(writer, &Response::text(status, why), false, true);
            count(shared, label, status);
            true
        }
        None => {
            if let WireError::Io(err) = e {
                tracing::debug!("HTTP connection ended: {err}");
            }
            false
        }
    }
}
