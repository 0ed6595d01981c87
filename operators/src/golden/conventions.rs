//! What a metric sample is, read from the naming conventions of the ecosystem: OpenTelemetry
//! semantic conventions (dotted names, `http.response.status_code`, `rpc.grpc.status_code`,
//! histograms decoded into `<name>_count` and `<name>_bucket`), Prometheus and its client
//! libraries (`http_requests_total{code}`, `*_seconds_bucket{le}`, Micrometer's
//! `http_server_requests_seconds_count{status, outcome}`, `grpc_server_handled_total{grpc_code}`,
//! summaries with `quantile`), kube-state-metrics and cAdvisor restart counters, and gauges that
//! already carry a golden signal under another name (`http.server.error_ratio`, `*_p99_ms`).
//!
//! Only server-side request metrics count towards a service's own RED signals: a client
//! metric (`http.client.*`) describes the callee, and counting it as the caller's errors
//! would point the origin at the wrong service.

use kaizen_model::{Labels, Metric, MetricKind};

use super::{ERROR_RATIO, LATENCY_P99_MS, REQUEST_RATE};

/// What one sample means for its service's golden signals.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Role {
    /// A golden signal under another name: the same value, renamed and scaled.
    Rename { to: &'static str, scale: f64 },
    /// A count of requests served (cumulative or per interval), in request `family`.
    Requests {
        family: String,
        outcome: Outcome,
        cumulative: bool,
        /// A counter of errors only (`*_errors_total`): pairs with the family's requests.
        error_counter: bool,
    },
    /// One bucket of a server latency histogram: observations at most `le` (in the metric's
    /// unit; `to_ms` converts it), cumulative over buckets as Prometheus and OTLP count them.
    LatencyBucket {
        family: String,
        le: f64,
        to_ms: f64,
        cumulative: bool,
    },
    /// Container restarts (a counter).
    Restarts,
    /// Not a golden signal (or already under kaizen's own name).
    Other,
}

/// Whether a counted request failed on the server's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// 5xx, a gRPC server-side code, Micrometer's `SERVER_ERROR`, or a counter of errors.
    Error,
    /// Anything else that says how the request ended (2xx, 3xx, 4xx, gRPC `OK`, …).
    Ok,
    /// Nothing says: counts towards the rate, not the error ratio.
    Unknown,
}

/// Labels that carry a request's HTTP status, an RPC status or an outcome, in the order they
/// are looked for.
const STATUS_LABELS: &[&str] = &[
    "http.response.status_code",
    "http.status_code",
    "http_response_status_code",
    "http_status_code",
    "status_code",
    "code",
    "status",
    "response_code",
    "rpc.grpc.status_code",
    "grpc_code",
    "grpc_status",
    "outcome",
];

/// Classifies one sample.
pub(crate) fn role_of(m: &Metric) -> Role {
    let name = m.name.as_str();
    if name.contains("client") {
        return Role::Other;
    }
    let cumulative = cumulative(name, m.metric_kind);
    if let Some(to) = renamed_gauge(name, &m.labels) {
        return to;
    }
    if let Some(base) = name.strip_suffix("_bucket") {
        if let (true, Some(le)) = (latency_name(base), m.labels.get("le")) {
            let le = match le.as_str() {
                "+Inf" | "Inf" | "inf" => f64::INFINITY,
                text => match text.parse::<f64>() {
                    Ok(v) => v,
                    Err(_) => return Role::Other,
                },
            };
            return Role::LatencyBucket {
                family: base.to_owned(),
                le,
                to_ms: to_ms(base),
                cumulative,
            };
        }
        return Role::Other;
    }
    if restarts_name(name) {
        return Role::Restarts;
    }
    if let Some(family) = request_family(name) {
        let error_counter = error_counter_name(name);
        let outcome = if error_counter {
            Outcome::Error
        } else {
            outcome_of(&m.labels)
        };
        return Role::Requests {
            family,
            outcome,
            cumulative,
            error_counter,
        };
    }
    Role::Other
}

/// Prometheus' own suffixes name cumulative series; dotted (OTel) names follow the
/// temporality the codec read (`Counter` is cumulative, a delta point is a gauge).
fn cumulative(name: &str, kind: MetricKind) -> bool {
    if kind == MetricKind::Counter {
        return true;
    }
    !name.contains('.')
        && ["_total", "_count", "_bucket"]
            .iter()
            .any(|s| name.ends_with(s))
}

/// Words that make a histogram or a quantile a latency.
fn latency_name(name: &str) -> bool {
    let server = !name.contains("client");
    let latency = ["duration", "latency", "response_time", "request_time"]
        .iter()
        .any(|w| name.contains(w))
        // Micrometer's timers: `http_server_requests_seconds{quantile}`, `…_seconds_bucket`.
        || (name.contains("request") && name.ends_with("_seconds"));
    server && latency && !name.contains("db.") && !name.starts_with("db_")
}

/// Milliseconds per unit of a latency metric: seconds unless the name says milliseconds
/// (OTel's `http.server.request.duration` is in seconds; the older `http.server.duration`
/// was in milliseconds).
fn to_ms(name: &str) -> f64 {
    let ms = name.ends_with("_ms")
        || name.ends_with(".ms")
        || name.contains("milliseconds")
        || name.contains("_ms_")
        // The older semantic conventions' `http.{server,client}.duration` were milliseconds.
        || name.starts_with("http.server.duration")
        || name.starts_with("http.client.duration");
    if ms {
        1.0
    } else {
        1000.0
    }
}

fn restarts_name(name: &str) -> bool {
    matches!(
        name,
        "k8s.container.restarts"
            | "k8s.container.restart_count"
            | "kube_pod_container_status_restarts_total"
            | "container_restarts_total"
    )
}

/// The request family of a server request counter (`http_requests_total` → `http_requests`),
/// or `None`. Error counters pair with the request counter of the same prefix.
fn request_family(name: &str) -> Option<String> {
    let n = name;
    for suffix in [
        "_duration_count",
        ".duration_count",
        "_seconds_count",
        "_milliseconds_count",
    ] {
        if let Some(base) = n.strip_suffix(suffix) {
            if server_request_base(base) {
                return Some(base.to_owned());
            }
        }
    }
    if n == "grpc_server_handled_total" {
        return Some("grpc_server".to_owned());
    }
    for suffix in [
        "_requests_total",
        "_requests",
        "_errors_total",
        "_failures_total",
    ] {
        if let Some(base) = n.strip_suffix(suffix) {
            if !base.is_empty() {
                return Some(base.to_owned());
            }
        }
    }
    None
}

/// `http.server.request`, `http.server`, `rpc.server`, `http_server_requests`,
/// `http_request` (prometheus client's default `http_request_duration_seconds`), …
fn server_request_base(base: &str) -> bool {
    let words = ["http", "rpc", "grpc", "request"];
    words.iter().any(|w| base.contains(w)) && !base.contains("db")
}

fn error_counter_name(name: &str) -> bool {
    name.ends_with("_errors_total") || name.ends_with("_failures_total")
}

/// How a request ended, from the first status label present.
fn outcome_of(labels: &Labels) -> Outcome {
    for key in STATUS_LABELS {
        let Some(value) = labels.get(key) else {
            continue;
        };
        let v = value.as_str();
        // `code` holds an HTTP status (`503`, `5xx`) or a gRPC code name (`Unavailable`).
        let grpc = key.contains("grpc")
            || (key == &"code"
                && v.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                && !v.eq_ignore_ascii_case("error"));
        if key == &"outcome" {
            return match v {
                "SERVER_ERROR" => Outcome::Error,
                "" => Outcome::Unknown,
                _ => Outcome::Ok,
            };
        }
        if grpc || key.starts_with("rpc") {
            return if grpc_server_error(v) {
                Outcome::Error
            } else {
                Outcome::Ok
            };
        }
        return match v.as_bytes().first() {
            Some(b'5') => Outcome::Error,
            Some(b'1'..=b'4') => Outcome::Ok,
            // `5xx` spelled as a class, or text like `error`.
            _ if v.eq_ignore_ascii_case("error") => Outcome::Error,
            _ => Outcome::Unknown,
        };
    }
    Outcome::Unknown
}

/// The gRPC codes OpenTelemetry counts as server errors: UNKNOWN, DEADLINE_EXCEEDED,
/// UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS (as numbers or names).
fn grpc_server_error(code: &str) -> bool {
    matches!(
        code,
        "2" | "4"
            | "12"
            | "13"
            | "14"
            | "15"
            | "UNKNOWN"
            | "DEADLINE_EXCEEDED"
            | "UNIMPLEMENTED"
            | "INTERNAL"
            | "UNAVAILABLE"
            | "DATA_LOSS"
            | "Unknown"
            | "DeadlineExceeded"
            | "Unimplemented"
            | "Internal"
            | "Unavailable"
            | "DataLoss"
    )
}

/// Gauges that already are a golden signal: error ratios and percentages, request rates,
/// p99 latencies (named, or a summary's `quantile="0.99"`), CPU utilisation.
fn renamed_gauge(name: &str, labels: &Labels) -> Option<Role> {
    let lower = name.to_ascii_lowercase();
    let n = lower.as_str();
    if n == ERROR_RATIO || n == REQUEST_RATE || n == LATENCY_P99_MS {
        return None;
    }
    let rename = |to, scale| Some(Role::Rename { to, scale });
    let server = !n.contains("client") && !n.starts_with("db");
    if server && (n.ends_with("error_ratio") || n.ends_with("errors_ratio")) {
        return rename(ERROR_RATIO, 1.0);
    }
    if server
        && [
            "error_percent",
            "error_pct",
            "errors_percent",
            "error_percentage",
        ]
        .iter()
        .any(|s| n.ends_with(s))
    {
        return rename(ERROR_RATIO, 0.01);
    }
    if server
        && [
            "requests_per_second",
            "request_rate",
            "requests_rate",
            "_rps",
            ".rps",
        ]
        .iter()
        .any(|s| n.ends_with(s))
    {
        return rename(REQUEST_RATE, 1.0);
    }
    // The OTLP codec's `<histogram>_p99` (a delta point's own): the same histogram's
    // buckets give the golden p99, once.
    let codec_p99 = n.contains('.')
        && n.rsplit('.')
            .next()
            .is_some_and(|last| last.ends_with("_p99"));
    if server && latency_name(n) && !codec_p99 {
        let p99 = n.contains("p99") || n.contains("99th") || n.contains("percentile_99");
        let quantile = labels.get("quantile").map(|q| q.as_str());
        if p99 && quantile.is_none() {
            return rename(LATENCY_P99_MS, to_ms(n));
        }
        if quantile.is_some_and(|q| q == "0.99") && !n.ends_with("_count") && !n.ends_with("_sum") {
            return rename(LATENCY_P99_MS, to_ms(n));
        }
    }
    let cpu = [
        "system.cpu.utilization",
        "process.cpu.utilization",
        "container.cpu.utilization",
        "k8s.pod.cpu.utilization",
        "k8s.container.cpu.utilization",
    ];
    // Per-state series (`user`, `idle`, …) are parts of a whole, not a utilisation.
    let per_state = labels
        .iter()
        .any(|(k, _)| k.as_str().ends_with("state") || k.as_str().ends_with("mode"));
    if cpu.contains(&n) && !per_state {
        return rename("cpu_utilization", 1.0);
    }
    let memory = [
        "system.memory.utilization",
        "process.memory.utilization",
        "container.memory.utilization",
        "k8s.pod.memory.utilization",
    ];
    if memory.contains(&n) && !per_state {
        return rename("memory_utilization", 1.0);
    }
    None
}
