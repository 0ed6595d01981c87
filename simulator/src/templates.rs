//! Log templates: routine lines per service kind, and what each fault makes services log.

use kaizen_model::Level;

use crate::estate::Kind;
use crate::faults::FaultKind;
use crate::rng::Rng;

/// `(level, weight, text)`: `{name}` placeholders are filled by [`crate::logs::render`].
pub(crate) type Template = (Level, u32, &'static str);

use Level::{Debug, Error, Fatal, Info, Warn};

const WEB: &[Template] = &[
    (Info, 30, "{path} 200 {ms}ms request_id={rid} user_id={uid}"),
    (
        Info,
        10,
        "rendered {table} in {ms}ms (ssr) request_id={rid}",
    ),
    (Debug, 10, "cache hit for {table} fragment {hex8} ttl=300s"),
    (Info, 8, "session started user_id={uid} ip={ip}"),
    (Debug, 6, "static asset served /assets/app.{hex8}.js 304"),
    (Info, 6, "user_id={uid} added {sku} to cart via {peer}"),
    (Warn, 2, "slow client ip={ip}: response write took {slow}ms"),
    (Warn, 1, "{path} 404 {ms}ms request_id={rid}"),
];
const GATEWAY: &[Template] = &[
    (
        Info,
        30,
        "{path} 200 {ms}ms client_id={client} request_id={rid}",
    ),
    (
        Debug,
        10,
        "jwt validated sub={uid} scope=orders:read exp=3600s",
    ),
    (
        Info,
        8,
        "upstream {peer} responded 200 in {ms}ms request_id={rid}",
    ),
    (Debug, 8, "route matched {route} -> {peer}"),
    (
        Info,
        5,
        "rate limit check client_id={client} remaining={big}",
    ),
    (
        Warn,
        2,
        "rate limit exceeded client_id={client} ip={ip}: 429",
    ),
    (Warn, 1, "{path} 401 invalid api key client_id={client}"),
];
const SERVICE: &[Template] = &[
    (Info, 30, "{path} 200 {ms}ms request_id={rid}"),
    (Debug, 12, "loaded {table} {big} from cache in {ms}ms"),
    (Info, 8, "{table} {hex8} updated by user_id={uid}"),
    (Debug, 8, "calling {peer} {route} request_id={rid}"),
    (Info, 5, "processed batch of {n} {table} records in {ms}ms"),
    (
        Debug,
        4,
        "connection pool stats: active={n} idle={n} max=50",
    ),
    (
        Warn,
        2,
        "retrying {peer} after 429 (attempt 1/3) request_id={rid}",
    ),
    (
        Warn,
        1,
        "request validation failed: missing field 'quantity' request_id={rid}",
    ),
];
const AUTH: &[Template] = &[
    (Info, 30, "token issued sub={uid} client={client} ttl=3600s"),
    (Info, 12, "login succeeded user_id={uid} ip={ip} mfa=totp"),
    (Debug, 12, "session {hex} refreshed for user_id={uid}"),
    (Debug, 6, "jwks cache refreshed ({n} keys)"),
    (Info, 5, "{path} 200 {ms}ms request_id={rid}"),
    (
        Warn,
        3,
        "login failed user_id={uid} ip={ip}: invalid password (attempt {n})",
    ),
    (Warn, 1, "token expired sub={uid}"),
];
const PAYMENTS: &[Template] = &[
    (
        Info,
        30,
        "payment authorized order_id={order} amount={amount} USD provider=stripe in {ms}ms",
    ),
    (
        Info,
        10,
        "payment captured order_id={order} amount={amount} USD",
    ),
    (
        Debug,
        8,
        "idempotency key {hex} stored for order_id={order}",
    ),
    (
        Info,
        5,
        "refund issued order_id={order} amount={amount} USD",
    ),
    (
        Debug,
        6,
        "provider webhook received evt_{hex} type=charge.succeeded",
    ),
    (
        Warn,
        3,
        "card declined order_id={order} reason=insufficient_funds",
    ),
    (Warn, 1, "3-D Secure challenge timed out order_id={order}"),
];
const WORKER: &[Template] = &[
    (
        Info,
        30,
        "processed message orders.created order_id={order} in {ms}ms",
    ),
    (
        Debug,
        10,
        "fetched batch of {n} messages from {peer} (lag {n})",
    ),
    (
        Info,
        8,
        "order_id={order} marked as fulfilled, shipment {hex8}",
    ),
    (Info, 6, "sent confirmation for order_id={order} via {peer}"),
    (Debug, 5, "committed offset {big} partition {n}"),
    (Warn, 2, "message order_id={order} redelivered (attempt 2)"),
];
const SQL: &[Template] = &[
    (
        Info,
        20,
        "LOG:  duration: {ms}.{n} ms  statement: SELECT * FROM {table} WHERE id = ${n}",
    ),
    (
        Info,
        10,
        "LOG:  connection authorized: user=app database=shop application_name={peer}",
    ),
    (
        Debug,
        8,
        "LOG:  checkpoint complete: wrote {big} buffers ({n}.{n}%); 0 WAL file(s) added",
    ),
    (
        Info,
        8,
        "LOG:  automatic vacuum of table \"shop.public.{table}\": index scans: 1",
    ),
    (
        Debug,
        6,
        "LOG:  disconnection: session time: 0:00:{n}.{n} user=app database=shop",
    ),
    (
        Warn,
        2,
        "WARNING:  there is already a transaction in progress",
    ),
];
const CACHE: &[Template] = &[
    (Debug, 30, "Accepted {ip}:{port}"),
    (
        Debug,
        10,
        "Client id={big} addr={ip}:{port} closed connection",
    ),
    (Info, 8, "{big} changes in 60 seconds. Saving..."),
    (Info, 8, "Background saving started by pid {pid}"),
    (Info, 8, "Background saving terminated with success"),
    (Info, 5, "expired {n} keys matching {table}:* in {n}ms"),
    (
        Warn,
        1,
        "Asynchronous AOF fsync is taking too long (disk is busy?)",
    ),
];
const QUEUE: &[Template] = &[
    (
        Info,
        20,
        "published {n} messages to {table} (partition {n})",
    ),
    (Debug, 20, "consumer group lag={n} on {table}"),
    (Info, 8, "segment {big} rolled for {table}"),
    (Debug, 6, "heartbeat from consumer {peer}-{hex8}"),
    (Info, 5, "retention: deleted {n} segments from {table}"),
    (
        Warn,
        1,
        "consumer {peer}-{hex8} session timeout, rebalancing",
    ),
];

/// Routine log lines of a service kind.
pub(crate) fn benign(kind: Kind) -> &'static [Template] {
    match kind {
        Kind::Web => WEB,
        Kind::Gateway => GATEWAY,
        Kind::Service => SERVICE,
        Kind::Auth => AUTH,
        Kind::Payments => PAYMENTS,
        Kind::Worker => WORKER,
        Kind::Sql => SQL,
        Kind::Cache => CACHE,
        Kind::Queue => QUEUE,
    }
}

const HTTP_5XX_CALLER: &[Template] = &[
    (
        Error,
        30,
        "upstream {peer} returned 500 for {route} request_id={rid}",
    ),
    (
        Warn,
        10,
        "retrying {peer} after 500 (attempt 2/3) request_id={rid}",
    ),
    (Error, 10, "{path} 502 {ms}ms request_id={rid}"),
];
const BAD_DEPLOY: &[Template] = &[
    (Error, 30, "{path} 500 {ms}ms request_id={rid} version={version}"),
    (Error, 15, "unhandled exception in {route}: NullPointerException at com.shop.{pkg}.Handler.handle(Handler.java:{n}) request_id={rid}"),
    (Error, 10, "panic recovered: runtime error: invalid memory address or nil pointer dereference in {route}"),
    (Warn, 8, "request failed validation after schema change: unknown field 'currency_code' request_id={rid}"),
];
const DB_SLOW: &[Template] = &[
    (Warn, 30, "LOG:  duration: {slow}.{n} ms  statement: SELECT o.* FROM {table} o WHERE o.customer_id = $1 ORDER BY o.created_at DESC"),
    (Error, 10, "ERROR:  canceling statement due to statement timeout"),
    (Warn, 10, "LOG:  process {pid} still waiting for ShareLock on transaction {big} after 1000.123 ms"),
    (Fatal, 5, "FATAL:  remaining connection slots are reserved for non-replication superuser connections"),
];
const DB_SLOW_CALLER: &[Template] = &[
    (
        Error,
        30,
        "could not obtain connection from pool within 5000ms (pool size 20, active 20)",
    ),
    (Error, 15, "timeout calling {peer} after 5000ms"),
    (
        Warn,
        15,
        "slow query on {peer}: {slow}ms for SELECT on {table} request_id={rid}",
    ),
];
const OUTAGE: &[Template] = &[
    (
        Error,
        30,
        "upstream connection refused: dial tcp {ip}:443: connect: connection refused",
    ),
    (
        Error,
        15,
        "health check failed: dependency unavailable in region us-east-1",
    ),
    (Error, 10, "{path} 503 {ms}ms request_id={rid}"),
    (
        Fatal,
        3,
        "readiness probe failed: HTTP probe failed with statuscode: 503",
    ),
];
const OUTAGE_PAYMENTS: &[Template] = &[
    (Error, 30, "payment provider unreachable: POST https://api.stripe.com/v1/payment_intents: 503 Service Unavailable"),
    (Error, 15, "health check failed: dependency unavailable in region us-east-1"),
    (Error, 10, "{path} 503 {ms}ms request_id={rid}"),
];
const OUTAGE_CALLER: &[Template] = &[
    (
        Error,
        30,
        "{peer} returned 503 Service Unavailable request_id={rid}",
    ),
    (
        Error,
        15,
        "call to {peer} failed: upstream 503 after {slow}ms request_id={rid}",
    ),
    (
        Warn,
        10,
        "circuit breaker for {peer} is OPEN (failure rate {pct}%)",
    ),
];
const OUTAGE_PAYMENTS_CALLER: &[Template] = &[
    (
        Error,
        30,
        "payment authorization failed: upstream 503 after {slow}ms order_id={order}",
    ),
    (
        Error,
        15,
        "{peer} returned 503 Service Unavailable request_id={rid}",
    ),
    (
        Warn,
        10,
        "circuit breaker for {peer} is OPEN (failure rate {pct}%)",
    ),
];
const LEAK_MILD: &[Template] = &[
    (
        Warn,
        30,
        "GC overhead high: {pct}% of time in GC over the last 60s (heap {heap}MB/2048MB)",
    ),
    (
        Warn,
        10,
        "allocation failure: pause young (G1 Evacuation Pause) {slow}ms",
    ),
];
const LEAK_SEVERE: &[Template] = &[
    (Error, 20, "java.lang.OutOfMemoryError: Java heap space"),
    (
        Warn,
        20,
        "GC overhead high: {pct}% of time in GC over the last 60s (heap {heap}MB/2048MB)",
    ),
    (
        Error,
        5,
        "java.lang.OutOfMemoryError: GC overhead limit exceeded",
    ),
];
const LEAK_CALLER: &[Template] = &[
    (
        Error,
        20,
        "connection reset by peer calling {peer} request_id={rid}",
    ),
    (Error, 10, "{peer} returned 503: no healthy upstream"),
    (Warn, 10, "timeout calling {peer} after 5000ms"),
];
const CERT: &[Template] = &[
    (
        Error,
        30,
        "http: TLS handshake error from {ip}:{port}: remote error: tls: bad certificate",
    ),
    (
        Warn,
        10,
        "serving certificate CN={svc}.internal has expired (notAfter reached)",
    ),
    (Error, 10, "{path} 503 {ms}ms: no healthy TLS listeners"),
];
const CERT_CALLER: &[Template] = &[
    (Error, 30, "Get \"https://{peer}.internal/\": x509: certificate has expired or is not yet valid"),
    (Error, 15, "x509: certificate has expired or is not yet valid: current time is after notAfter for {peer}.internal"),
    (Warn, 10, "retrying TLS handshake with {peer} (attempt 2/3)"),
];
const NOISY: &[Template] = &[
    (
        Warn,
        30,
        "request took {slow}ms (cpu throttled in {pct}% of CFS periods) request_id={rid}",
    ),
    (Warn, 15, "event loop lag {slow}ms exceeds 200ms"),
    (Warn, 10, "worker pool queue depth {big} exceeds 100"),
    (Info, 5, "health check slow: {slow}ms"),
];
const NOISY_CALLER: &[Template] = &[
    (
        Warn,
        30,
        "slow response from {peer}: {slow}ms for {route} request_id={rid}",
    ),
    (Warn, 5, "deadline nearly exceeded calling {peer}"),
];
const CASCADE: &[Template] = &[
    (
        Warn,
        30,
        "request queue backing up: {big} pending, p99 {slow}ms",
    ),
    (
        Error,
        15,
        "deadline exceeded after 5000ms {route} request_id={rid}",
    ),
    (
        Warn,
        10,
        "thread pool exhausted (200/200 busy), rejecting requests",
    ),
];
const CASCADE_CALLER: &[Template] = &[
    (
        Error,
        30,
        "timeout calling {peer} after 5000ms request_id={rid}",
    ),
    (
        Error,
        20,
        "could not obtain connection from pool within 5000ms (pool size 20, active 20)",
    ),
    (
        Error,
        10,
        "circuit breaker OPEN for {peer} (failure rate {pct}%)",
    ),
    (
        Warn,
        10,
        "request to {peer} exceeded budget: {slow}ms of 3000ms",
    ),
];

/// Fault log lines for a service playing a role in a fault: the origin (`peer` is None) or a
/// caller reached through `peer`, at hop distance `hop`.
pub(crate) fn fault(
    kind: FaultKind,
    svc: Kind,
    peer: Option<Kind>,
    hop: u32,
    strength: f64,
) -> &'static [Template] {
    let Some(peer) = peer else {
        return match kind {
            FaultKind::BadDeploy => BAD_DEPLOY,
            FaultKind::DatabaseSlowdown => DB_SLOW,
            FaultKind::DependencyOutage if svc == Kind::Payments => OUTAGE_PAYMENTS,
            FaultKind::DependencyOutage => OUTAGE,
            FaultKind::MemoryLeak if strength > 0.85 => LEAK_SEVERE,
            FaultKind::MemoryLeak => LEAK_MILD,
            FaultKind::CertificateExpiry => CERT,
            FaultKind::NoisyNeighbor => NOISY,
            FaultKind::CascadingTimeouts => CASCADE,
        };
    };
    match kind {
        FaultKind::BadDeploy => HTTP_5XX_CALLER,
        FaultKind::DatabaseSlowdown if hop == 1 => DB_SLOW_CALLER,
        FaultKind::DatabaseSlowdown => CASCADE_CALLER,
        FaultKind::DependencyOutage if peer == Kind::Payments => OUTAGE_PAYMENTS_CALLER,
        FaultKind::DependencyOutage => OUTAGE_CALLER,
        FaultKind::MemoryLeak => LEAK_CALLER,
        FaultKind::CertificateExpiry if hop == 1 => CERT_CALLER,
        FaultKind::CertificateExpiry => HTTP_5XX_CALLER,
        FaultKind::NoisyNeighbor => NOISY_CALLER,
        FaultKind::CascadingTimeouts => CASCADE_CALLER,
    }
}

/// Picks one template by weight.
pub(crate) fn pick(templates: &'static [Template], rng: &mut Rng) -> Template {
    let i = rng.weighted(templates.iter().map(|t| t.1));
    templates.get(i).copied().unwrap_or((Info, 1, "ok"))
}
