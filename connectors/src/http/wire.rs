//! HTTP/1.1 on the wire: reading one request head and body from a socket, writing a response.
//!
//! For: the server's connection loop, with every limit enforced while reading (head size,
//! header count, body size, a deadline per request), `Content-Length` and `chunked` bodies,
//! `Expect: 100-continue`, keep-alive and HTTP/1.0. Nothing here allocates more than the
//! configured limits, whatever a client sends. Not for: routing, TLS, HTTP/2, pipelining
//! beyond what a sequential read gives for free, or being a general-purpose HTTP library.

use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::net::TcpStream;
use std::time::Instant;

/// Largest request head (request line and headers) accepted.
pub(super) const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header fields accepted.
const MAX_HEADERS: usize = 100;
/// Longest chunk-size line of a chunked body.
const MAX_CHUNK_LINE: usize = 1024;

/// A request line and its headers.
#[derive(Debug)]
pub(super) struct Head {
    /// `GET`, `POST`, … (case-sensitive, as HTTP says).
    pub method: String,
    /// The request target as sent (`/ingest/grafana?x=1`).
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The target without its query string.
    pub fn path(&self) -> &str {
        self.target.split(['?', '#']).next().unwrap_or("")
    }

    /// Whether the client wants the connection closed after this request.
    pub fn wants_close(&self) -> bool {
        let conn = self.header("connection").map(|v| v.to_ascii_lowercase());
        match conn.as_deref() {
            Some(v) if v.contains("close") => true,
            Some(v) if v.contains("keep-alive") => false,
            _ => self.minor == 0,
        }
    }

    /// Whether the client waits for `100 Continue` before sending the body.
    pub fn expects_continue(&self) -> bool {
        self.header("expect")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
    }
}

/// How the body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BodyKind {
    /// No body.
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Why a request could not be read. Every variant ends the connection.
#[derive(Debug)]
pub(super) enum WireError {
    /// The socket failed or the peer went away: nothing to answer.
    Io(io::Error),
    /// The request took longer than its deadline: 408.
    Timeout,
    /// Not HTTP/1.x as we read it: 400 with this reason.
    Bad(&'static str),
    /// The head is over [`MAX_HEAD_BYTES`] or has too many fields: 431.
    HeadTooLarge,
    /// The body is over the limit: 413.
    BodyTooLarge,
    /// A transfer coding other than `chunked`: 501.
    UnsupportedEncoding,
    /// An `Expect` other than `100-continue`: 417.
    Expectation,
}

impl WireError {
    /// The status to answer with, if any.
    pub fn status(&self) -> Option<(u16, &'static str)> {
        match self {
            WireError::Io(_) => None,
            WireError::Timeout => Some((408, "request timed out")),
            WireError::Bad(why) => Some((400, why)),
            WireError::HeadTooLarge => Some((431, "request head too large")),
            WireError::BodyTooLarge => Some((413, "request body too large")),
            WireError::UnsupportedEncoding => {
                Some((501, "only chunked transfer coding is supported"))
            }
            WireError::Expectation => Some((417, "only Expect: 100-continue is supported")),
        }
    }
}

fn io_err(e: io::Error) -> WireError {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => WireError::Timeout,
        _ => WireError::Io(e),
    }
}

/// `fill_buf` with the socket's read timeout set to what is left until `deadline`.
fn fill(r: &mut BufReader<TcpStream>, deadline: Instant) -> Result<&[u8], WireError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(WireError::Timeout);
    }
    r.get_ref()
        .set_read_timeout(Some(left))
        .map_err(WireError::Io)?;
    loop {
        match r.fill_buf() {
            Ok(_) => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        }
    }
    Ok(r.buffer())
}

/// Reads one line (without its CR LF) of at most `max` bytes; `None` at end of stream before
/// any byte.
fn read_line(
    r: &mut BufReader<TcpStream>,
    max: usize,
    deadline: Instant,
    too_long: fn() -> WireError,
) -> Result<Option<Vec<u8>>, WireError> {
    let mut line = Vec::new();
    loop {
        let buf = fill(r, deadline)?;
        if buf.is_empty() {
            return if line.is_empty() {
                Ok(None)
            } else {
                Err(WireError::Bad("connection closed mid-line"))
            };
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len() + take > max {
            return Err(too_long());
        }
        line.extend_from_slice(&buf[..take]);
        r.consume(take);
        if done {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(line));
        }
    }
}

/// Reads a request head. `Ok(None)`: the peer closed the connection cleanly before sending
/// anything (the normal end of a keep-alive connection).
pub(super) fn read_head(
    r: &mut BufReader<TcpStream>,
    deadline: Instant,
) -> Result<Option<Head>, WireError> {
    let mut budget = MAX_HEAD_BYTES;
    // RFC 9112 §2.2: ignore at least one empty line before the request line.
    let mut line = None;
    for _ in 0..2 {
        match read_line(r, budget, deadline, || WireError::HeadTooLarge)? {
            None => return Ok(None),
            Some(l) if l.is_empty() => budget = budget.saturating_sub(2),
            Some(l) => {
                line = Some(l);
                break;
            }
        }
    }
    let line = line.ok_or(WireError::Bad("empty request line"))?;
    budget = budget.saturating_sub(line.len() + 2);
    let line =
        std::str::from_utf8(&line).map_err(|_| WireError::Bad("request line is not UTF-8"))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(WireError::Bad("malformed request line"));
    };
    let minor = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        _ => return Err(WireError::Bad("unsupported HTTP version")),
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(WireError::Bad("malformed method"));
    }
    if !target.starts_with('/') {
        return Err(WireError::Bad("request target must be a path"));
    }
    let mut headers = Vec::new();
    loop {
        let line = read_line(r, budget.max(1), deadline, || WireError::HeadTooLarge)?
            .ok_or(WireError::Bad("connection closed in the headers"))?;
        budget = budget.saturating_sub(line.len() + 2);
        if line.is_empty() {
            break;
        }
        if headers.len() >= MAX_HEADERS || budget == 0 {
            return Err(WireError::HeadTooLarge);
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(WireError::Bad("obsolete header line folding"));
        }
        let line = String::from_utf8_lossy(&line);
        let (name, value) = line
            .split_once(':')
            .ok_or(WireError::Bad("header line without a colon"))?;
        if name.is_empty()
            || name
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(WireError::Bad("malformed header name"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let head = Head {
        method: method.to_owned(),
        target: target.to_owned(),
        minor,
        headers,
    };
    if head.header("expect").is_some() && !head.expects_continue() {
        return Err(WireError::Expectation);
    }
    Ok(Some(head))
}

/// How the body of `head` is delimited; conflicting or unknown framing is an error (a
/// request-smuggling vector otherwise).
pub(super) fn body_kind(head: &Head) -> Result<BodyKind, WireError> {
    let te: Vec<&str> = head
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"))
        .map(|(_, v)| v.as_str())
        .collect();
    let cl: Vec<&str> = head
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.as_str())
        .collect();
    if !te.is_empty() {
        if !cl.is_empty() {
            return Err(WireError::Bad("both Transfer-Encoding and Content-Length"));
        }
        let codings: Vec<String> = te
            .iter()
            .flat_map(|v| v.split(','))
            .map(|c| c.trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty())
            .collect();
        return if codings == ["chunked"] {
            Ok(BodyKind::Chunked)
        } else {
            Err(WireError::UnsupportedEncoding)
        };
    }
    let Some(first) = cl.first() else {
        return Ok(BodyKind::None);
    };
    if cl.iter().any(|v| v != first) {
        return Err(WireError::Bad("conflicting Content-Length values"));
    }
    if first.is_empty() || first.len() > 19 || !first.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WireError::Bad("invalid Content-Length"));
    }
    match first.parse::<u64>() {
        Ok(0) => Ok(BodyKind::None),
        Ok(n) => Ok(BodyKind::Length(n)),
        Err(_) => Err(WireError::Bad("invalid Content-Length")),
    }
}

/// Reads a body of at most `limit` bytes.
pub(super) fn read_body(
    r: &mut BufReader<TcpStream>,
    kind: BodyKind,
    limit: usize,
    deadline: Instant,
) -> Result<Vec<u8>, WireError> {
    match kind {
        BodyKind::None => Ok(Vec::new()),
        BodyKind::Length(n) => {
            let n = usize::try_from(n).map_err(|_| WireError::BodyTooLarge)?;
            if n > limit {
                return Err(WireError::BodyTooLarge);
            }
            let mut body = Vec::with_capacity(n);
            read_exact(r, &mut body, n, deadline)?;
            Ok(body)
        }
        BodyKind::Chunked => read_chunked(r, limit, deadline),
    }
}

/// Appends exactly `n` bytes to `out`.
fn read_exact(
    r: &mut BufReader<TcpStream>,
    out: &mut Vec<u8>,
    n: usize,
    deadline: Instant,
) -> Result<(), WireError> {
    let mut left = n;
    while left > 0 {
        let buf = fill(r, deadline)?;
        if buf.is_empty() {
            return Err(WireError::Io(io::Error::new(
                ErrorKind::UnexpectedEof,
                "connection closed mid-body",
            )));
        }
        let take = buf.len().min(left);
        out.extend_from_slice(&buf[..take]);
        r.consume(take);
        left -= take;
    }
    Ok(())
}

fn read_chunked(
    r: &mut BufReader<TcpStream>,
    limit: usize,
    deadline: Instant,
) -> Result<Vec<u8>, WireError> {
    let bad_line = || WireError::Bad("chunk line too long");
    let mut body = Vec::new();
    loop {
        let line = read_line(r, MAX_CHUNK_LINE, deadline, bad_line)?
            .ok_or(WireError::Bad("connection closed in a chunked body"))?;
        let line = String::from_utf8_lossy(&line);
        let size_text = line.split(';').next().unwrap_or("").trim();
        if size_text.is_empty() || size_text.len() > 15 {
            return Err(WireError::Bad("invalid chunk size"));
        }
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| WireError::Bad("invalid chunk size"))?;
        if size == 0 {
            // Trailer fields, ignored, up to the empty line.
            let mut budget = MAX_HEAD_BYTES;
            loop {
                let t = read_line(r, budget.max(1), deadline, || WireError::HeadTooLarge)?
                    .ok_or(WireError::Bad("connection closed in the trailer"))?;
                if t.is_empty() {
                    return Ok(body);
                }
                budget = budget.saturating_sub(t.len() + 2);
                if budget == 0 {
                    return Err(WireError::HeadTooLarge);
                }
            }
        }
        if body.len().saturating_add(size) > limit {
            return Err(WireError::BodyTooLarge);
        }
        read_exact(r, &mut body, size, deadline)?;
        let end = read_line(r, 2, deadline, bad_line)?;
        if end.as_deref() != Some(&[][..]) {
            return Err(WireError::Bad("chunk not followed by CRLF"));
        }
    }
}

/// A response to write.
#[derive(Debug)]
pub(super) struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type` of the body.
    pub content_type: &'static str,
    /// More header fields.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A `text/plain` response; a newline is added.
    pub fn text(status: u16, text: &str) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body: format!("{text}\n").into_bytes(),
        }
    }

    /// An `application/json` response.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        let mut body = value.to_string().into_bytes();
        body.push(b'\n');
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body,
        }
    }

    /// Adds a header field.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// The reason phrase of a status.
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Writes `resp`; without its body for `HEAD`; with `Connection: close` when `close`.
pub(super) fn write_response(
    w: &mut TcpStream,
    resp: &Response,
    head_only: bool,
    close: bool,
) -> io::Result<()> {
    let mut out = Vec::with_capacity(256 + resp.body.len());
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len()
    );
    for (k, v) in &resp.headers {
        let _ = write!(out, "{k}: {v}\r\n");
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&resp.body);
    }
    w.write_all(&out)?;
    w.flush()
}

/// Tells a client waiting on `Expect: 100-continue` to send the body.
pub(super) fn write_continue(w: &mut TcpStream) -> io::Result<()> {
    w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    w.flush()
}
