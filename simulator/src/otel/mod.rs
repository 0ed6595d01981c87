//! The users' dialect ([`Dialect::Otel`](crate::Dialect::Otel)): the same estate, faults and
//! ground truth as kaizen's own dialect, told the way production telemetry arrives.
//!
//! The generator's native stream (10-second golden-signal gauges, logs, spans, changes) is the
//! *truth* of what happens; this module turns it into what the estate's exporters would send,
//! and decodes every message with kaizen's own codecs (`kaizen_connectors::codecs`) into the
//! native events it writes, so the codec path is part of every run:
//!
//! * **Who speaks what.** About half the services are instrumented with OpenTelemetry SDKs and
//!   export through a Collector; the others are scraped by Prometheus and remote-written
//!   through prometheus-kafka-adapter. The split is fixed per estate ([`speaker`]).
//! * **OpenTelemetry services** send one OTLP/JSON `ExportMetricsServiceRequest` per instance
//!   per minute (the SDK's periodic reader, phased by the process's start): HTTP servers
//!   `http.server.request.duration` (a cumulative histogram in seconds, by
//!   `http.response.status_code`), workers `messaging.process.duration`, databases, caches and
//!   queues what the Collector's postgresql / redis / rabbitmq receivers report
//!   (`postgresql.backends`, `redis.commands.processed`, …); `system.cpu.utilization` and
//!   `system.memory.utilization` (0–1), `k8s.container.restarts`, client pools'
//!   `db.client.connection.count`. The resource carries `service.version`: a deploy is seen only
//!   as a new version from new pods. Logs go as OTLP log batches (5 s), client spans as OTLP
//!   trace batches with `server.address` (a Kubernetes service DNS name).
//! * **Prometheus services** are scraped once a minute (offset per target, stamped by the
//!   Prometheus server's clock): `http_requests_total{code}`,
//!   `http_request_duration_seconds_bucket{le}` (client_golang's default buckets), the client
//!   libraries' `process_*` series, `<app>_build_info{version}`; postgres_exporter,
//!   redis_exporter and RabbitMQ's plugin names for the data tier; kube-state-metrics'
//!   `kube_pod_container_status_restarts_total` under its own `job`, as it arrives. Logs are
//!   Fluent Bit records with the `kubernetes` filter's metadata.
//! * **Clocks and delivery.** Every node's clock is off by a constant ±0–20 s; OpenTelemetry
//!   timestamps and log times carry their node's skew, Prometheus samples the server's. Batches
//!   arrive 0.2–5 s after they are sent, 2 % of them 5–20 s later (a retry): events are out of
//!   order by up to 28 s, within kaizen's default 30 s lateness. (Each node's stream is in
//!   order against its own clock, as a per-partition watermark sees it.)
//! * **No alert fires** and **no deploy event is sent**: the generator's alerts, deploys and
//!   rollbacks are dropped. Config changes, flag flips and responders' feedback stay native.
//! * **Topology**: a Backstage catalog ([`catalog`]) instead of `topology.json`.

mod backstage;
#[cfg(test)]
mod tests;
mod wire;

use std::collections::BTreeMap;

use kaizen_connectors::codecs::{decode_with, DecodeContext, Format};
use kaizen_model::{Event, EventBody, Level, StableHasher, Timestamp};
use serde_json::{json, Value};

use crate::catalog::CORE;
use crate::estate::{Estate, Kind};
use crate::generator::{self, Stats};
use crate::metrics::NAMES;
use crate::plan::{plan, Plan};
use crate::rng::{exp, ln, push_hex, round_to, sin_turns, Rng};
use crate::ScenarioConfig;

use wire::{
    attrs, gauge, gauge_int, histogram, nanos, prom_sample, scope, sum_int, HistogramPoint, V,
};

/// The metric export / scrape interval.
const EXPORT_MS: u64 = 60_000;
/// Log and span batches (the Collector's batch processor, Fluent Bit's flush).
const BATCH_MS: u64 = 5_000;
/// Largest clock skew of a node, either way.
const MAX_SKEW_MS: u64 = 20_000;
/// Kubernetes namespace of the estate.
const NAMESPACE: &str = "shop";
/// CPU cores a process may use (its limit).
const CORES: f64 = 2.0;
/// `max_connections` of a database, and a client pool's size.
const DB_MAX_CONNECTIONS: f64 = 100.0;
const POOL_SIZE: f64 = 20.0;

/// OpenTelemetry's advice for `http.server.request.duration` (seconds).
const OTEL_BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// client_golang's `prometheus.DefBuckets` (seconds).
const PROM_BOUNDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The core services instrumented with OpenTelemetry (the rest of the core is scraped by
/// Prometheus); services beyond the core alternate.
const OTEL_CORE: [&str; 7] = [
    "frontend",
    "catalog",
    "redis",
    "checkout",
    "payments",
    "orders-queue",
    "notification",
];

/// How a service's telemetry leaves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Speaker {
    /// OpenTelemetry SDK (or Collector receiver) → OTLP.
    Otel,
    /// Scraped by Prometheus, remote-written through prometheus-kafka-adapter.
    Prometheus,
}

/// Who speaks what: fixed per estate, independent of the seed.
pub(crate) fn speaker(estate: &Estate, i: usize) -> Speaker {
    let name = estate.services[i].name.as_str();
    let otel = if i < CORE.len() {
        OTEL_CORE.contains(&name)
    } else {
        i.is_multiple_of(2)
    };
    if otel {
        Speaker::Otel
    } else {
        Speaker::Prometheus
    }
}

/// The language a service is written in (its SDK, its Backstage tag).
pub(crate) fn language(estate: &Estate, i: usize) -> &'static str {
    const LANGUAGES: [&str; 4] = ["go", "java", "python", "nodejs"];
    let s = &estate.services[i];
    if s.kind.is_data() {
        return "c";
    }
    LANGUAGES[(StableHasher::hash_str(s.name.as_str()) % LANGUAGES.len() as u64) as usize]
}

/// The Backstage catalog of `config`'s estate.
pub(crate) fn catalog(config: &ScenarioConfig) -> String {
    let estate = Estate::build(config.services);
    backstage::catalog(&estate, &|i| language(&estate, i))
}

/// The instrumentation scope of an OpenTelemetry HTTP server in `language`.
fn http_scope(language: &str) -> (&'static str, &'static str) {
    match language {
        "go" => (
            "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
            "0.60.0",
        ),
        "java" => ("io.opentelemetry.tomcat-10.0", "2.15.0-alpha"),
        "python" => ("opentelemetry.instrumentation.flask", "0.54b0"),
        _ => ("@opentelemetry/instrumentation-http", "0.200.0"),
    }
}

fn sdk_version(language: &str) -> &'static str {
    match language {
        "go" => "1.35.0",
        "java" => "1.49.0",
        "python" => "1.33.0",
        _ => "2.0.0",
    }
}

/// `(ts, skew)` → the skewed clock's reading.
fn stamp(ms: u64, skew: i64) -> u64 {
    (ms as i64).saturating_add(skew).max(0) as u64
}

/// What a run of the dialect produced.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Run {
    pub stats: Stats,
    /// Messages a codec rejected (a bug in this module if ever non-zero).
    pub rejected: u64,
    /// The most an event's time lagged the newest event time before it, ms.
    pub max_disorder_ms: u64,
}

/// Runs the scenario in the users' dialect, calling `emit` for each decoded event in arrival
/// order until it returns false.
pub(crate) fn run(config: &ScenarioConfig, emit: &mut dyn FnMut(&Event) -> bool) -> Run {
    let plan = plan(config);
    let mut t = Translator::new(config, &plan);
    let mut out = Out {
        emit,
        run: Run::default(),
        newest: None,
        go_on: true,
    };
    generator::run(config, &mut |e| {
        t.on_native(e);
        t.deliver(false, &mut out);
        out.go_on
    });
    if out.go_on {
        t.finish();
        t.deliver(true, &mut out);
    }
    out.run
}

/// Where decoded events go.
struct Out<'a> {
    emit: &'a mut dyn FnMut(&Event) -> bool,
    run: Run,
    newest: Option<u64>,
    go_on: bool,
}

impl Out<'_> {
    fn event(&mut self, e: &Event) {
        if !self.go_on {
            return;
        }
        let ts = e.ts.as_millis();
        if let Some(n) = self.newest {
            self.run.max_disorder_ms = self.run.max_disorder_ms.max(n.saturating_sub(ts));
        }
        self.newest = Some(self.newest.map_or(ts, |n| n.max(ts)));
        let s = &mut self.run.stats;
        s.events += 1;
        s.first = Some(s.first.map_or(e.ts, |f| f.min(e.ts)));
        s.last = Some(s.last.map_or(e.ts, |l| l.max(e.ts)));
        if !(self.emit)(e) {
            self.go_on = false;
        }
    }
}

/// A message on its way to kaizen.
enum Payload {
    /// Bytes in a format kaizen decodes.
    Codec(Format, Vec<u8>),
    /// A native event (changes and feedback, which come from kaizen's own integrations).
    Native(Event),
}

/// Cumulative counters of one process since it started.
#[derive(Clone, Debug, Default)]
struct Acc {
    /// Requests (operations) by outcome: 0 succeeded, 1 failed.
    req: [f64; 2],
    /// Per outcome, observations at most each bound.
    le: [Vec<f64>; 2],
    /// Per outcome, seconds of latency observed.
    sum: [f64; 2],
    /// CPU seconds used.
    cpu: f64,
}

/// What one tick adds to a process's counters.
struct Flow {
    req: [f64; 2],
    /// Per outcome, requests in each bucket (the last is the overflow bucket); empty for the
    /// data tier, which reports no histogram.
    buckets: [Vec<f64>; 2],
    /// Mean latency, seconds.
    mean_s: f64,
    cpu: f64,
}

impl Acc {
    fn fresh(bounds: usize) -> Acc {
        Acc {
            le: [vec![0.0; bounds], vec![0.0; bounds]],
            ..Acc::default()
        }
    }

    fn add(&mut self, f: &Flow, share: f64) {
        for k in 0..2 {
            let n = f.req[k] * share;
            self.req[k] += n;
            self.sum[k] += n * f.mean_s;
            let mut at_most = 0.0;
            for (le, c) in self.le[k].iter_mut().zip(&f.buckets[k]) {
                at_most += c;
                *le += at_most * share;
            }
        }
        self.cpu += f.cpu * share;
    }

    /// Per-bucket counts (the last is the overflow bucket) of outcome `k`.
    fn buckets(&self, k: usize) -> Vec<u64> {
        let total = self.req[k].round().max(0.0) as u64;
        let mut out = Vec::with_capacity(self.le[k].len() + 1);
        let mut below = 0u64;
        for le in &self.le[k] {
            let at_most = (le.round().max(0.0) as u64).clamp(below, total);
            out.push(at_most - below);
            below = at_most;
        }
        out.push(total - below);
        out
    }
}

/// A latency distribution: log-logistic with median `p50` and 99th percentile `p99` (ms), a
/// smooth left tail and a power-law right one, as request latencies have. Its CDF is
/// `1 / (1 + (x / p50)^-shape)`, with `shape = ln 99 / ln(p99 / p50)`.
#[derive(Clone, Copy, Debug)]
struct Latency {
    ln_median: f64,
    shape: f64,
    median: f64,
}

impl Latency {
    fn new(p50: f64, p99: f64) -> Latency {
        let median = p50.max(0.01);
        let ratio = (p99 / median).max(1.05);
        // At least 1.5, so that the mean is finite (and not absurd).
        let shape = (ln(99.0) / ln(ratio)).max(1.5);
        Latency {
            ln_median: ln(median),
            shape,
            median,
        }
    }

    /// The share of requests at most `x_ms`.
    fn cdf(&self, x_ms: f64) -> f64 {
        if x_ms <= 0.0 {
            return 0.0;
        }
        1.0 / (1.0 + exp(-self.shape * (ln(x_ms) - self.ln_median)))
    }

    /// The mean, ms: `median · b / sin b` with `b = π / shape`.
    fn mean_ms(&self) -> f64 {
        let b = std::f64::consts::PI / self.shape;
        self.median * b / sin_turns(b / std::f64::consts::TAU).max(1e-9)
    }
}

/// One pod (process) of a service.
struct Host {
    svc: usize,
    slot: usize,
    speaker: Speaker,
    pod: String,
    node: usize,
    ip: String,
    version: String,
    /// When the current process started (true time, ms).
    started: u64,
    /// Next metric export (OpenTelemetry) or scrape (Prometheus), true time.
    next_export: u64,
    /// Restarts of the current pod's container.
    restarts: u32,
    acc: Acc,
    /// The latest tick's values, in [`NAMES`] order.
    values: [f64; 7],
}

struct LogRecord {
    ts: u64,
    level: Level,
    message: String,
    trace: Option<String>,
    pod: String,
}

struct SpanRecord {
    ts: u64,
    peer: usize,
    operation: String,
    duration_ms: f64,
    error: bool,
    trace: Option<String>,
}

/// Turns the native stream into wire messages and decodes them in arrival order.
struct Translator<'p> {
    plan: &'p Plan,
    instances: usize,
    interval: u64,
    hosts: Vec<Host>,
    /// The native series' `instance` label → host.
    host_of: BTreeMap<String, usize>,
    /// Clock skew per node, ms.
    skews: Vec<i64>,
    nodes: Vec<String>,
    /// The Prometheus server's clock skew.
    prom_skew: i64,
    /// kube-state-metrics' next scrape.
    ksm_next: u64,
    /// The current native tick.
    tick: Option<u64>,
    /// Deploys and rollbacks of the current tick: (ts, service, version).
    releases: Vec<(u64, usize, String)>,
    /// OOM restarts: (ts, service), sorted.
    restarts: Vec<(u64, usize)>,
    restart_i: usize,
    logs: BTreeMap<(u64, usize), Vec<LogRecord>>,
    spans: BTreeMap<(u64, usize), Vec<SpanRecord>>,
    queue: BTreeMap<(u64, u64), Payload>,
    seq: u64,
    /// The newest native event time.
    now: u64,
    /// How far behind `now` a message may still be queued (see [`Translator::deliver`]).
    margin: u64,
    flow_rng: Rng,
    delay_rng: Rng,
    id_rng: Rng,
    decoded: Vec<Event>,
}

impl<'p> Translator<'p> {
    fn new(config: &ScenarioConfig, plan: &'p Plan) -> Translator<'p> {
        let estate = &plan.estate;
        let instances = config.instances.max(1);
        let interval = (config.metric_interval.as_millis() as u64).max(1000);
        let n_nodes = (estate.services.len() / 2).max(3);
        let mut skew_rng = Rng::stream(config.seed, "otel-skew", 0);
        let skews: Vec<i64> = (0..n_nodes)
            .map(|_| skew_rng.range(0, 2 * MAX_SKEW_MS) as i64 - MAX_SKEW_MS as i64)
            .collect();
        let nodes = (0..n_nodes)
            .map(|i| {
                let mut h = StableHasher::new();
                h.write_u64(i as u64);
                let v = h.finish();
                format!(
                    "ip-10-0-{}-{}.eu-west-1.compute.internal",
                    v % 16,
                    (v >> 8) % 250 + 2
                )
            })
            .collect();
        let prom_skew = skew_rng.range(0, 4000) as i64 - 2000;
        let mut uptime_rng = Rng::stream(config.seed, "otel-uptime", 0);
        let mut hosts = Vec::new();
        let mut host_of = BTreeMap::new();
        for (si, s) in estate.services.iter().enumerate() {
            let version = plan.initial_versions[si].clone();
            let pods = s.pods(&version, instances);
            for (slot, pod) in pods.into_iter().enumerate() {
                host_of.insert(format!("{}-{slot}", s.name), hosts.len());
                // Up for 2 hours to 6 days: its counters have counted since.
                let uptime = uptime_rng.range(2 * 3_600_000, 6 * 86_400_000);
                let started = plan.start.saturating_sub(uptime);
                let speaker = speaker(estate, si);
                let mut host = Host {
                    svc: si,
                    slot,
                    speaker,
                    node: node_of(&pod, n_nodes),
                    ip: ip_of(&pod),
                    pod,
                    version: version.clone(),
                    started,
                    next_export: 0,
                    restarts: 0,
                    acc: Acc::fresh(bounds(speaker, s.kind).len()),
                    values: [0.0; 7],
                };
                host.next_export = first_export(&host, plan.start);
                let base = &s.base;
                let v = [
                    base.rps / instances as f64,
                    base.err,
                    base.p50,
                    base.p99,
                    base.cpu,
                    base.mem,
                    base.sat,
                ];
                let history = flow(&host, s.kind, &v, uptime as f64 / 1000.0, None);
                host.acc.add(&history, 1.0);
                host.values = v;
                hosts.push(host);
            }
        }
        let mut restarts: Vec<(u64, usize)> = plan
            .faults
            .iter()
            .flat_map(|f| f.restarts.iter().map(move |&r| (r, f.origin)))
            .collect();
        restarts.sort_unstable();
        Translator {
            plan,
            instances,
            interval,
            hosts,
            host_of,
            skews,
            nodes,
            prom_skew,
            ksm_next: plan.start + StableHasher::hash_str("kube-state-metrics") % EXPORT_MS,
            tick: None,
            releases: Vec::new(),
            restarts,
            restart_i: 0,
            logs: BTreeMap::new(),
            spans: BTreeMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
            now: plan.start,
            margin: interval + 2 * MAX_SKEW_MS + 2 * BATCH_MS,
            flow_rng: Rng::stream(config.seed, "otel-flow", 0),
            delay_rng: Rng::stream(config.seed, "otel-delay", 0),
            id_rng: Rng::stream(config.seed, "otel-ids", 0),
            decoded: Vec::new(),
        }
    }

    fn estate(&self) -> &'p Estate {
        &self.plan.estate
    }

    fn push(&mut self, arrival: u64, payload: Payload) {
        self.queue.insert((arrival, self.seq), payload);
        self.seq += 1;
    }

    /// Delivery delay of a batch: 0.2–3 s, and 2 % of the time a retry 5–20 s later.
    fn delay(&mut self, max_ms: u64) -> u64 {
        let mut d = self.delay_rng.range(200, max_ms);
        if self.delay_rng.chance(0.02) {
            d += self.delay_rng.range(5_000, 20_000);
        }
        d
    }

    fn on_native(&mut self, e: &Event) {
        let ts = e.ts.as_millis();
        match &e.body {
            EventBody::Metric(m) => {
                if self.tick.is_some_and(|t| ts > t) {
                    self.close_tick();
                }
                if self.tick.is_none() {
                    self.tick = Some(ts);
                }
                let instance = m.labels.get("instance").map(|s| s.as_str()).unwrap_or("");
                if let (Some(&h), Some(k)) = (
                    self.host_of.get(instance),
                    NAMES.iter().position(|n| *n == m.name.as_str()),
                ) {
                    self.hosts[h].values[k] = m.value;
                }
            }
            // No alert fires in this estate.
            EventBody::Alert(_) => {}
            EventBody::Change(c) => {
                let release = matches!(c.change_kind.as_str(), "deploy" | "rollback");
                match (&c.version, release) {
                    // Seen only as the version new pods report.
                    (Some(v), true) => {
                        if let Some(si) = self.service_index(e.service.as_str()) {
                            self.releases.push((ts, si, v.clone()));
                        }
                    }
                    (None, true) => {}
                    _ => self.push(ts, Payload::Native(e.clone())),
                }
            }
            EventBody::Feedback(_) => self.push(ts, Payload::Native(e.clone())),
            EventBody::Log(l) => {
                let Some(si) = self.service_index(e.service.as_str()) else {
                    return;
                };
                let pod = l.attributes.get("pod").unwrap_or("").to_owned();
                let h = self.host_for(si, &pod);
                let end = self.batch_end(ts);
                self.logs.entry((end, h)).or_default().push(LogRecord {
                    ts,
                    level: l.level,
                    message: l.message.clone(),
                    trace: l.attributes.get("trace_id").map(str::to_owned),
                    pod,
                });
            }
            EventBody::Span(s) => {
                let (Some(si), Some(peer)) = (
                    self.service_index(e.service.as_str()),
                    s.peer.as_ref().and_then(|p| self.service_index(p.as_str())),
                ) else {
                    return;
                };
                let h = self.host_for(si, "");
                // Services scraped by Prometheus are not traced.
                if self.hosts[h].speaker != Speaker::Otel {
                    return;
                }
                let end = self.batch_end(ts);
                self.spans.entry((end, h)).or_default().push(SpanRecord {
                    ts,
                    peer,
                    operation: s.operation.to_string(),
                    duration_ms: s.duration_ms,
                    error: s.status == kaizen_model::SpanStatus::Error,
                    trace: s.trace_id.clone(),
                });
            }
        }
        self.now = self.now.max(ts);
        self.flush_batches(false);
    }

    fn service_index(&self, name: &str) -> Option<usize> {
        self.estate()
            .services
            .iter()
            .position(|s| s.name.as_str() == name)
    }

    /// The host of service `si` running `pod` (its first instance when unknown).
    fn host_for(&self, si: usize, pod: &str) -> usize {
        let first = si * self.instances;
        (first..first + self.instances)
            .find(|&h| self.hosts[h].pod == pod)
            .unwrap_or(first)
    }

    fn batch_end(&self, ts: u64) -> u64 {
        let start = self.plan.start;
        start + ((ts.saturating_sub(start)) / BATCH_MS + 1) * BATCH_MS
    }

    /// The tick's values are complete: play the tick on every host, with the releases,
    /// restarts and exports that fall in it.
    fn close_tick(&mut self) {
        let Some(t) = self.tick.take() else {
            return;
        };
        let end = (t + self.interval).min(self.plan.end);
        let releases = std::mem::take(&mut self.releases);
        let mut restarts = Vec::new();
        while let Some(&(r, svc)) = self.restarts.get(self.restart_i).filter(|r| r.0 < end) {
            restarts.push((r.max(t), svc));
            self.restart_i += 1;
        }
        for h in 0..self.hosts.len() {
            self.play(h, t, end, &releases, &restarts);
        }
        while self.ksm_next < end {
            let at = self.ksm_next;
            self.ksm_scrape(at);
            self.ksm_next += EXPORT_MS;
        }
    }

    fn play(
        &mut self,
        h: usize,
        t: u64,
        end: u64,
        releases: &[(u64, usize, String)],
        restarts: &[(u64, usize)],
    ) {
        let svc = self.hosts[h].svc;
        let kind = self.estate().services[svc].kind;
        let values = self.hosts[h].values;
        let secs = (end - t) as f64 / 1000.0;
        let f = flow(
            &self.hosts[h],
            kind,
            &values,
            secs,
            Some(&mut self.flow_rng),
        );
        let span = (end - t).max(1) as f64;
        // Things that happen to this host in the tick, in time order (a release or restart
        // before an export at the same instant).
        let mut happenings: Vec<(u64, u8, Option<&str>)> = releases
            .iter()
            .filter(|r| r.1 == svc)
            .map(|r| (r.0, 0, Some(r.2.as_str())))
            .chain(
                restarts
                    .iter()
                    .filter(|r| r.1 == svc)
                    .map(|r| (r.0, 1, None)),
            )
            .collect();
        happenings.sort_by_key(|x| (x.0, x.1));
        let mut cursor = t;
        let mut next = happenings.into_iter().peekable();
        loop {
            let export = Some(self.hosts[h].next_export).filter(|x| *x < end);
            let (at, happening) = match (next.peek().map(|x| x.0), export) {
                (Some(e), Some(x)) if e <= x => (e, true),
                (_, Some(x)) => (x, false),
                (Some(e), None) => (e, true),
                (None, None) => break,
            };
            let at = at.clamp(cursor, end);
            self.hosts[h].acc.add(&f, (at - cursor) as f64 / span);
            cursor = at;
            if !happening {
                self.export(h, at);
                self.hosts[h].next_export = at + EXPORT_MS;
                continue;
            }
            match next.next() {
                Some((ts, 0, Some(v))) => self.release(h, ts, v),
                Some((ts, _, _)) => self.restart(h, ts),
                None => break,
            }
        }
        self.hosts[h].acc.add(&f, (end - cursor) as f64 / span);
    }

    /// A new version rolls out: the pod is replaced (an OpenTelemetry SDK flushes its last
    /// export on shutdown), counters start over, the new process reports the new version.
    fn release(&mut self, h: usize, ts: u64, version: &str) {
        if self.hosts[h].version == version {
            return;
        }
        if self.hosts[h].speaker == Speaker::Otel {
            self.export(h, ts);
        }
        let svc = self.hosts[h].svc;
        let s = &self.plan.estate.services[svc];
        let pod = s
            .pods(version, self.instances)
            .get(self.hosts[h].slot)
            .cloned()
            .unwrap_or_default();
        let n_nodes = self.nodes.len();
        let bounds = bounds(self.hosts[h].speaker, s.kind).len();
        let host = &mut self.hosts[h];
        host.node = node_of(&pod, n_nodes);
        host.ip = ip_of(&pod);
        host.pod = pod;
        host.version = version.to_owned();
        host.started = ts;
        host.restarts = 0;
        host.acc = Acc::fresh(bounds);
        host.next_export = first_export(host, ts + 5_000);
    }

    /// The container is OOM-killed and restarts: counters start over (the pod stays).
    fn restart(&mut self, h: usize, ts: u64) {
        let bounds = self.hosts[h].acc.le[0].len();
        let host = &mut self.hosts[h];
        host.restarts += 1;
        host.started = ts;
        host.acc = Acc::fresh(bounds);
        if host.speaker == Speaker::Otel {
            host.next_export = ts + EXPORT_MS;
        }
    }

    fn skew_of(&self, h: usize) -> i64 {
        self.skews[self.hosts[h].node]
    }

    fn export(&mut self, h: usize, at: u64) {
        match self.hosts[h].speaker {
            Speaker::Otel => {
                let body = self.otlp_metrics(h, at);
                let arrival = stamp(at, self.skew_of(h)) + self.delay(3_000);
                self.push(arrival, Payload::Codec(Format::OtlpJson, body));
            }
            Speaker::Prometheus => {
                let ts = stamp(at, self.prom_skew);
                let arrival = ts + self.delay(5_000);
                for sample in self.prom_samples(h, ts) {
                    self.push(
                        arrival,
                        Payload::Codec(Format::PrometheusKafkaAdapter, sample),
                    );
                }
            }
        }
    }

    /// kube-state-metrics, scraped as its own target: restarts of the Prometheus services'
    /// containers, under `job="kube-state-metrics"` as the scrape labels them.
    fn ksm_scrape(&mut self, at: u64) {
        let ts = stamp(at, self.prom_skew);
        let arrival = ts + self.delay(5_000);
        let mut samples = Vec::new();
        for host in self
            .hosts
            .iter()
            .filter(|h| h.speaker == Speaker::Prometheus)
        {
            let container = self.plan.estate.services[host.svc].name.as_str();
            samples.push(prom_sample(
                "kube_pod_container_status_restarts_total",
                ts,
                f64::from(host.restarts),
                &[
                    ("job", "kube-state-metrics"),
                    ("instance", "10.0.3.17:8080"),
                    ("namespace", NAMESPACE),
                    ("pod", &host.pod),
                    ("container", container),
                ],
            ));
        }
        for s in samples {
            self.push(arrival, Payload::Codec(Format::PrometheusKafkaAdapter, s));
        }
    }

    fn resource(&self, h: usize) -> Vec<(&'static str, String)> {
        let host = &self.hosts[h];
        let s = &self.plan.estate.services[host.svc];
        let lang = language(self.estate(), host.svc);
        let mut r = vec![
            ("service.name", s.name.to_string()),
            ("service.namespace", NAMESPACE.to_owned()),
            ("service.instance.id", host.pod.clone()),
        ];
        if !s.kind.is_data() {
            r.push(("service.version", host.version.clone()));
            r.push(("telemetry.sdk.name", "opentelemetry".to_owned()));
            r.push(("telemetry.sdk.language", lang.to_owned()));
            r.push(("telemetry.sdk.version", sdk_version(lang).to_owned()));
        }
        r.extend([
            ("deployment.environment.name", "production".to_owned()),
            ("k8s.namespace.name", NAMESPACE.to_owned()),
            ("k8s.pod.name", host.pod.clone()),
            ("k8s.node.name", self.nodes[host.node].clone()),
            ("host.name", self.nodes[host.node].clone()),
        ]);
        r
    }

    fn otlp_metrics(&self, h: usize, at: u64) -> Vec<u8> {
        let skew = self.skew_of(h);
        let ts = stamp(at, skew);
        let host = &self.hosts[h];
        let start = stamp(host.started, skew);
        let s = &self.plan.estate.services[host.svc];
        let lang = language(self.estate(), host.svc);
        let v = &host.values;
        let acc = &host.acc;
        let count = |k: usize| acc.req[k].round().max(0.0) as i64;
        let none = || Value::Array(Vec::new());
        let mut scopes = Vec::new();
        match s.kind {
            Kind::Sql => scopes.push(scope(
                "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/postgresqlreceiver",
                "0.124.0",
                "metrics",
                vec![
                    sum_int(
                        "postgresql.backends",
                        "1",
                        false,
                        start,
                        ts,
                        vec![(none(), (v[6] * DB_MAX_CONNECTIONS).round() as i64)],
                    ),
                    gauge_int(
                        "postgresql.connection.max",
                        "{connections}",
                        ts,
                        DB_MAX_CONNECTIONS as i64,
                        none(),
                    ),
                    sum_int("postgresql.commits", "1", true, start, ts, vec![(none(), count(0))]),
                    sum_int("postgresql.rollbacks", "1", true, start, ts, vec![(none(), count(1))]),
                ],
            )),
            Kind::Cache => scopes.push(scope(
                "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/redisreceiver",
                "0.124.0",
                "metrics",
                vec![
                    sum_int(
                        "redis.clients.connected",
                        "{client}",
                        false,
                        start,
                        ts,
                        vec![(none(), (v[6] * 400.0).round() as i64)],
                    ),
                    sum_int(
                        "redis.commands.processed",
                        "{command}",
                        true,
                        start,
                        ts,
                        vec![(none(), count(0) + count(1))],
                    ),
                    sum_int(
                        "redis.memory.used",
                        "By",
                        false,
                        start,
                        ts,
                        vec![(none(), (v[5] * 2.0 * GIB).round() as i64)],
                    ),
                ],
            )),
            Kind::Queue => {
                let queue = s.tables.first().copied().unwrap_or("events");
                let q = || attrs([("rabbitmq.queue.name", V::Str(queue))]);
                scopes.push(scope(
                    "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/rabbitmqreceiver",
                    "0.124.0",
                    "metrics",
                    vec![
                        sum_int(
                            "rabbitmq.message.current",
                            "{messages}",
                            false,
                            start,
                            ts,
                            vec![(
                                attrs([
                                    ("rabbitmq.queue.name", V::Str(queue)),
                                    ("state", V::Str("ready")),
                                ]),
                                (v[6] * 2000.0).round() as i64,
                            )],
                        ),
                        sum_int(
                            "rabbitmq.message.published",
                            "{messages}",
                            true,
                            start,
                            ts,
                            vec![(q(), count(0) + count(1))],
                        ),
                        sum_int(
                            "rabbitmq.message.delivered",
                            "{messages}",
                            true,
                            start,
                            ts,
                            vec![(q(), count(0))],
                        ),
                        sum_int(
                            "rabbitmq.message.dropped",
                            "{messages}",
                            true,
                            start,
                            ts,
                            vec![(q(), count(1))],
                        ),
                    ],
                ));
            }
            Kind::Worker => {
                let destination = s
                    .ops
                    .first()
                    .and_then(|o| o.as_str().split_once(' ').map(|(_, d)| d.to_owned()))
                    .unwrap_or_else(|| "events".to_owned());
                let points = (0..2)
                    .filter(|&k| k == 0 || count(1) >= 1)
                    .map(|k| {
                        let mut a = vec![
                            ("messaging.system", V::Str("rabbitmq")),
                            ("messaging.destination.name", V::Str(&destination)),
                            ("messaging.operation.name", V::Str("process")),
                        ];
                        if k == 1 {
                            a.push(("error.type", V::Str("TimeoutException")));
                        }
                        HistogramPoint {
                            attributes: attrs(a),
                            bucket_counts: acc.buckets(k),
                            sum: round_to(acc.sum[k], 1000.0),
                        }
                    })
                    .collect();
                scopes.push(scope(
                    "io.opentelemetry.rabbitmq-2.7",
                    "2.15.0-alpha",
                    "metrics",
                    vec![histogram(
                        "messaging.process.duration",
                        "s",
                        &OTEL_BOUNDS,
                        start,
                        ts,
                        points,
                    )],
                ));
            }
            _ => {
                let op = s.ops.first().map(|o| o.as_str()).unwrap_or("GET /");
                let (method, route) = op.split_once(' ').unwrap_or(("GET", op));
                let points = (0..2)
                    .filter(|&k| k == 0 || count(1) >= 1)
                    .map(|k| {
                        let code = if k == 0 { 200 } else { 500 };
                        let mut a = vec![
                            ("http.request.method", V::Str(method)),
                            ("http.route", V::Str(route)),
                            ("http.response.status_code", V::Int(code)),
                            ("url.scheme", V::Str("http")),
                            ("network.protocol.version", V::Str("1.1")),
                        ];
                        if k == 1 {
                            a.push(("error.type", V::Str("500")));
                        }
                        HistogramPoint {
                            attributes: attrs(a),
                            bucket_counts: acc.buckets(k),
                            sum: round_to(acc.sum[k], 1000.0),
                        }
                    })
                    .collect();
                let mut metrics = vec![histogram(
                    "http.server.request.duration",
                    "s",
                    &OTEL_BOUNDS,
                    start,
                    ts,
                    points,
                )];
                let db = s
                    .callees
                    .iter()
                    .find(|&&c| self.plan.estate.services[c].kind == Kind::Sql);
                if let Some(&db) = db {
                    let pool = format!("{}-{}", s.name, self.plan.estate.services[db].name);
                    let used = (v[6] * POOL_SIZE).round().min(POOL_SIZE) as i64;
                    let state = |st: &'static str| {
                        attrs([
                            ("db.client.connection.pool.name", V::Str(&pool)),
                            ("db.client.connection.state", V::Str(st)),
                        ])
                    };
                    metrics.push(sum_int(
                        "db.client.connection.count",
                        "{connection}",
                        false,
                        start,
                        ts,
                        vec![
                            (state("used"), used),
                            (state("idle"), POOL_SIZE as i64 - used),
                        ],
                    ));
                    metrics.push(sum_int(
                        "db.client.connection.max",
                        "{connection}",
                        false,
                        start,
                        ts,
                        vec![(
                            attrs([("db.client.connection.pool.name", V::Str(&pool))]),
                            POOL_SIZE as i64,
                        )],
                    ));
                }
                let (name, version) = http_scope(lang);
                scopes.push(scope(name, version, "metrics", metrics));
            }
        }
        scopes.push(scope(
            "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/hostmetricsreceiver",
            "0.124.0",
            "metrics",
            vec![
                gauge("system.cpu.utilization", "1", ts, round_to(v[4], 10_000.0), none()),
                gauge("system.memory.utilization", "1", ts, round_to(v[5], 10_000.0), none()),
            ],
        ));
        let container = s.name.to_string();
        scopes.push(scope(
            "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/k8sclusterreceiver",
            "0.124.0",
            "metrics",
            vec![gauge_int(
                "k8s.container.restarts",
                "{restart}",
                ts,
                i64::from(host.restarts),
                attrs([("k8s.container.name", V::Str(&container))]),
            )],
        ));
        let resource = self.resource(h);
        let body = json!({ "resourceMetrics": [ {
            "resource": { "attributes": attrs(resource.iter().map(|(k, v)| (*k, V::Str(v)))) },
            "scopeMetrics": scopes,
        } ] });
        serde_json::to_vec(&body).unwrap_or_default()
    }

    fn prom_samples(&self, h: usize, ts: u64) -> Vec<Vec<u8>> {
        let host = &self.hosts[h];
        let s = &self.plan.estate.services[host.svc];
        let name = s.name.as_str();
        let v = &host.values;
        let acc = &host.acc;
        let count = |k: usize| acc.req[k].round().max(0.0);
        let port = match s.kind {
            Kind::Sql => "9187",
            Kind::Cache => "9121",
            Kind::Queue => "15692",
            _ => "8080",
        };
        let instance = format!("{}:{port}", host.ip);
        let mut p = Samples {
            ts,
            base: vec![
                ("job", "kubernetes-pods"),
                ("instance", &instance),
                ("namespace", NAMESPACE),
                ("pod", &host.pod),
                ("app_kubernetes_io_name", name),
            ],
            out: Vec::new(),
        };
        match s.kind {
            Kind::Sql => {
                let db = [("datname", "shop")];
                let active = (v[6] * DB_MAX_CONNECTIONS).round();
                p.add("pg_up", 1.0, &[]);
                p.add(
                    "pg_stat_activity_count",
                    active,
                    &[("datname", "shop"), ("state", "active")],
                );
                p.add(
                    "pg_stat_activity_count",
                    (DB_MAX_CONNECTIONS * 0.6 - active).max(0.0),
                    &[("datname", "shop"), ("state", "idle")],
                );
                p.add(
                    "pg_stat_activity_max_tx_duration",
                    round_to(v[3] * 3.0 / 1000.0, 1000.0),
                    &[("datname", "shop"), ("state", "active")],
                );
                p.add("pg_stat_database_xact_commit", count(0), &db);
                p.add("pg_stat_database_xact_rollback", count(1), &db);
            }
            Kind::Cache => {
                p.add("redis_up", 1.0, &[]);
                p.add("redis_connected_clients", (v[6] * 400.0).round(), &[]);
                p.add("redis_commands_processed_total", count(0) + count(1), &[]);
                p.add("redis_memory_used_bytes", (v[5] * 2.0 * GIB).round(), &[]);
                p.add(
                    "redis_commands_duration_seconds_total",
                    round_to(acc.sum[0] + acc.sum[1], 1000.0),
                    &[("cmd", "get")],
                );
                p.add(
                    "redis_commands_total",
                    count(0) + count(1),
                    &[("cmd", "get")],
                );
            }
            Kind::Queue => {
                let queue = s.tables.first().copied().unwrap_or("events");
                let amqp = [("protocol", "amqp091")];
                p.add(
                    "rabbitmq_queue_messages_ready",
                    (v[6] * 2000.0).round(),
                    &[("queue", queue), ("vhost", "/")],
                );
                p.add(
                    "rabbitmq_global_messages_received_total",
                    count(0) + count(1),
                    &amqp,
                );
                p.add("rabbitmq_global_messages_delivered_total", count(0), &amqp);
                p.add(
                    "rabbitmq_global_messages_unroutable_dropped_total",
                    count(1),
                    &amqp,
                );
            }
            kind => {
                if kind == Kind::Worker {
                    let queue = s
                        .ops
                        .first()
                        .and_then(|o| o.as_str().split_once(' ').map(|(_, d)| d))
                        .unwrap_or("events");
                    p.add(
                        "jobs_processed_total",
                        count(0),
                        &[("queue", queue), ("result", "success")],
                    );
                    if count(1) >= 1.0 {
                        p.add(
                            "jobs_processed_total",
                            count(1),
                            &[("queue", queue), ("result", "failure")],
                        );
                    }
                    p.histogram("job_duration_seconds", acc, &[0, 1], &[("queue", queue)]);
                } else {
                    let op = s.ops.first().map(|o| o.as_str()).unwrap_or("GET /");
                    let (method, handler) = op.split_once(' ').unwrap_or(("GET", op));
                    for (k, code) in [(0, "200"), (1, "500")] {
                        if k == 1 && count(1) < 1.0 {
                            continue;
                        }
                        let extra = [("code", code), ("handler", handler), ("method", method)];
                        p.add("http_requests_total", count(k), &extra);
                        p.histogram("http_request_duration_seconds", acc, &[k], &extra);
                    }
                }
                p.add("process_cpu_seconds_total", round_to(acc.cpu, 100.0), &[]);
                p.add("process_resident_memory_bytes", (v[5] * GIB).round(), &[]);
                p.add(
                    "process_start_time_seconds",
                    round_to(host.started as f64 / 1000.0, 100.0),
                    &[],
                );
                let build = format!("{}_build_info", name.replace('-', "_"));
                let revision = format!("{:07x}", StableHasher::hash_str(&host.version) >> 36);
                p.add(
                    &build,
                    1.0,
                    &[
                        ("version", &host.version),
                        ("revision", &revision),
                        ("goversion", "go1.24.4"),
                    ],
                );
            }
        }
        p.out
    }

    /// Log and span batches whose window has ended (all of them with `all`).
    fn flush_batches(&mut self, all: bool) {
        while let Some(entry) = self.logs.first_entry() {
            if !all && entry.key().0 > self.now {
                break;
            }
            let ((end, h), records) = entry.remove_entry();
            self.log_batch(end, h, records);
        }
        while let Some(entry) = self.spans.first_entry() {
            if !all && entry.key().0 > self.now {
                break;
            }
            let ((end, h), records) = entry.remove_entry();
            self.span_batch(end, h, records);
        }
    }

    fn log_batch(&mut self, end: u64, h: usize, records: Vec<LogRecord>) {
        let skew = self.skew_of(h);
        let host = &self.hosts[h];
        let s = &self.plan.estate.services[host.svc];
        match host.speaker {
            Speaker::Otel => {
                let mut items = Vec::with_capacity(records.len());
                for r in &records {
                    let (number, text) = severity(r.level);
                    let ts = stamp(r.ts, skew);
                    let mut rec = json!({
                        "timeUnixNano": nanos(ts),
                        "observedTimeUnixNano": nanos(ts + 3),
                        "severityNumber": number,
                        "severityText": text,
                        "body": { "stringValue": r.message },
                    });
                    if let (Some(trace), Some(m)) = (&r.trace, rec.as_object_mut()) {
                        let mut span = String::with_capacity(16);
                        push_hex(&mut span, self.id_rng.next_u64(), 16);
                        m.insert("traceId".into(), Value::String(trace.clone()));
                        m.insert("spanId".into(), Value::String(span));
                    }
                    items.push(rec);
                }
                let mut resource = self.resource(h);
                if let Some(pod) = records
                    .first()
                    .map(|r| r.pod.clone())
                    .filter(|p| !p.is_empty())
                {
                    for (k, v) in &mut resource {
                        if *k == "service.instance.id" || *k == "k8s.pod.name" {
                            v.clone_from(&pod);
                        }
                    }
                }
                let logger = format!("{}.server", s.name.as_str().replace('-', "_"));
                let body = json!({ "resourceLogs": [ {
                    "resource": { "attributes": attrs(resource.iter().map(|(k, v)| (*k, V::Str(v)))) },
                    "scopeLogs": [ scope(&logger, "", "logRecords", items) ],
                } ] });
                let arrival = stamp(end, skew) + self.delay(3_000);
                let bytes = serde_json::to_vec(&body).unwrap_or_default();
                self.push(arrival, Payload::Codec(Format::OtlpJson, bytes));
            }
            Speaker::Prometheus => {
                let node = self.nodes[host.node].clone();
                let name = s.name.to_string();
                let mut items = Vec::with_capacity(records.len());
                for r in &records {
                    let ts = stamp(r.ts, skew);
                    let pod = if r.pod.is_empty() { &host.pod } else { &r.pod };
                    let mut rec = json!({
                        "@timestamp": ts as f64 / 1000.0,
                        "log": r.message,
                        "level": r.level.as_str(),
                        "stream": if r.level >= Level::Warn { "stderr" } else { "stdout" },
                        "kubernetes": {
                            "pod_name": pod,
                            "namespace_name": NAMESPACE,
                            "container_name": name,
                            "host": node,
                            "labels": { "app.kubernetes.io/name": name },
                        },
                    });
                    if let (Some(trace), Some(m)) = (&r.trace, rec.as_object_mut()) {
                        m.insert("trace_id".into(), Value::String(trace.clone()));
                    }
                    items.push(rec);
                }
                let arrival = stamp(end, skew) + self.delay(3_000);
                let bytes = serde_json::to_vec(&Value::Array(items)).unwrap_or_default();
                self.push(arrival, Payload::Codec(Format::FluentBit, bytes));
            }
        }
    }

    fn span_batch(&mut self, end: u64, h: usize, records: Vec<SpanRecord>) {
        let skew = self.skew_of(h);
        let lang = language(self.estate(), self.hosts[h].svc);
        let mut spans = Vec::with_capacity(records.len());
        for r in &records {
            let callee = &self.plan.estate.services[r.peer];
            let start = stamp(r.ts, skew);
            let nanos_start = u128::from(start) * 1_000_000;
            let nanos_end = nanos_start + (r.duration_ms.max(0.0) * 1e6) as u128;
            let address = format!("{}.{NAMESPACE}.svc.cluster.local", callee.name);
            let consume = r.operation.starts_with("consume ");
            let kind = match callee.kind {
                Kind::Queue if consume => wire::SPAN_KIND_CONSUMER,
                Kind::Queue => wire::SPAN_KIND_PRODUCER,
                _ => wire::SPAN_KIND_CLIENT,
            };
            let mut a = vec![("server.address", V::Str(&address))];
            match callee.kind {
                Kind::Sql => a.push(("db.system.name", V::Str("postgresql"))),
                Kind::Cache => a.push(("db.system.name", V::Str("redis"))),
                Kind::Queue => a.push(("messaging.system", V::Str("rabbitmq"))),
                _ => {
                    a.push(("server.port", V::Int(8080)));
                    if let Some((method, _)) = r.operation.split_once(' ') {
                        a.push(("http.request.method", V::Str(method)));
                    }
                }
            }
            let mut span_id = String::with_capacity(16);
            push_hex(&mut span_id, self.id_rng.next_u64(), 16);
            let trace = r.trace.clone().unwrap_or_else(|| {
                let mut t = String::with_capacity(32);
                push_hex(&mut t, self.id_rng.next_u64(), 16);
                push_hex(&mut t, self.id_rng.next_u64(), 16);
                t
            });
            spans.push(json!({
                "traceId": trace,
                "spanId": span_id,
                "name": r.operation,
                "kind": kind,
                "startTimeUnixNano": nanos_start.to_string(),
                "endTimeUnixNano": nanos_end.to_string(),
                "attributes": attrs(a),
                "status": { "code": if r.error { 2 } else { 0 } },
            }));
        }
        let resource = self.resource(h);
        let (name, version) = http_scope(lang);
        let body = json!({ "resourceSpans": [ {
            "resource": { "attributes": attrs(resource.iter().map(|(k, v)| (*k, V::Str(v)))) },
            "scopeSpans": [ scope(name, version, "spans", spans) ],
        } ] });
        let arrival = stamp(end, skew) + self.delay(3_000);
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        self.push(arrival, Payload::Codec(Format::OtlpJson, bytes));
    }

    /// The end of the input: the last tick, every batch.
    fn finish(&mut self) {
        self.close_tick();
        self.flush_batches(true);
    }

    /// Decodes and emits the queued messages no later message can arrive before (all of them
    /// with `all`). A message is queued at most `margin` behind the newest native event: an
    /// export is made when its tick closes (a tick behind), a batch when its window ends, and a
    /// node's clock is at most [`MAX_SKEW_MS`] behind.
    fn deliver(&mut self, all: bool, out: &mut Out<'_>) {
        while let Some(entry) = self.queue.first_entry() {
            if !all && entry.key().0.saturating_add(self.margin) >= self.now {
                break;
            }
            let ((arrival, _), payload) = entry.remove_entry();
            match payload {
                Payload::Native(e) => out.event(&e),
                Payload::Codec(format, bytes) => {
                    self.decoded.clear();
                    let ctx = DecodeContext {
                        topic: None,
                        received: Some(Timestamp::from_millis(arrival)),
                    };
                    match decode_with(format, &bytes, &ctx, &mut self.decoded) {
                        Ok(_) => {
                            for e in &self.decoded {
                                out.event(e);
                            }
                        }
                        Err(_) => out.run.rejected += 1,
                    }
                }
            }
            if !out.go_on {
                return;
            }
        }
    }
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// One Prometheus scrape's samples, each a prometheus-kafka-adapter message.
struct Samples<'a> {
    ts: u64,
    /// The target's labels.
    base: Vec<(&'a str, &'a str)>,
    out: Vec<Vec<u8>>,
}

impl Samples<'_> {
    fn add(&mut self, metric: &str, value: f64, extra: &[(&str, &str)]) {
        let mut labels: Vec<(&str, &str)> = Vec::with_capacity(self.base.len() + extra.len());
        labels.extend(self.base.iter().copied());
        labels.extend_from_slice(extra);
        self.out.push(prom_sample(metric, self.ts, value, &labels));
    }

    /// A histogram of outcomes `ks` as Prometheus exposes it: `_bucket{le}` (observations at
    /// most `le`, `+Inf` for all), `_sum`, `_count`.
    fn histogram(&mut self, metric: &str, acc: &Acc, ks: &[usize], extra: &[(&str, &str)]) {
        let mut at_most = vec![0u64; PROM_BOUNDS.len() + 1];
        let mut sum = 0.0;
        for &k in ks {
            let mut run = 0;
            for (i, c) in acc.buckets(k).iter().enumerate() {
                run += c;
                if let Some(slot) = at_most.get_mut(i) {
                    *slot += run;
                }
            }
            sum += acc.sum[k];
        }
        let bucket = format!("{metric}_bucket");
        for (i, c) in at_most.iter().enumerate() {
            let le = PROM_BOUNDS
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let mut labels = extra.to_vec();
            labels.push(("le", &le));
            self.add(&bucket, *c as f64, &labels);
        }
        self.add(&format!("{metric}_sum"), round_to(sum, 1000.0), extra);
        let n = at_most.last().copied().unwrap_or(0);
        self.add(&format!("{metric}_count"), n as f64, extra);
    }
}

/// Histogram bounds a host's request metric uses (none for the data tier's receivers).
fn bounds(speaker: Speaker, kind: Kind) -> &'static [f64] {
    match (speaker, kind.is_data()) {
        (_, true) => &[],
        (Speaker::Otel, false) => &OTEL_BOUNDS,
        (Speaker::Prometheus, false) => &PROM_BOUNDS,
    }
}

/// What `secs` seconds at tick values `v` add to a host's counters: with `rng`, each bucket's
/// count (each failure count, for the data tier) is drawn as a Poisson count, as requests
/// arrive; without, the expected counts.
fn flow(host: &Host, kind: Kind, v: &[f64; 7], secs: f64, rng: Option<&mut Rng>) -> Flow {
    let n = (v[0] * secs).max(0.0);
    let failed = n * v[1].clamp(0.0, 1.0);
    let latency = Latency::new(v[2], v[3]);
    let bounds = bounds(host.speaker, kind);
    let mut flow = Flow {
        req: [n - failed, failed],
        buckets: [Vec::new(), Vec::new()],
        mean_s: latency.mean_ms() / 1000.0,
        cpu: v[4].clamp(0.0, 1.0) * CORES * secs,
    };
    let mut rng = rng;
    if bounds.is_empty() {
        if let Some(rng) = rng {
            let failed = poisson(rng, failed).min(n);
            flow.req = [n - failed, failed];
        }
        return flow;
    }
    for outcome in 0..2 {
        let mean = flow.req[outcome];
        let mut below = 0.0;
        let mut counts: Vec<f64> = bounds
            .iter()
            .map(|b| {
                let c = latency.cdf(b * 1000.0);
                let share = (c - below).max(0.0);
                below = c;
                share * mean
            })
            .collect();
        counts.push((1.0 - below).max(0.0) * mean);
        if let Some(rng) = rng.as_deref_mut() {
            for c in &mut counts {
                *c = poisson(rng, *c);
            }
        }
        flow.req[outcome] = counts.iter().sum();
        flow.buckets[outcome] = counts;
    }
    flow
}

/// A Poisson count of mean `mean` from `+ - * /` only (as the rest of the generator, so the
/// bytes never depend on a platform's `libm`): a binomial of many trials below 30, the normal
/// approximation above.
fn poisson(rng: &mut Rng, mean: f64) -> f64 {
    if mean.is_nan() || mean <= 0.0 {
        return 0.0;
    }
    if mean >= 30.0 {
        return (mean + mean.sqrt() * rng.normal()).round().max(0.0);
    }
    let trials = (4.0 * mean).ceil() as u32 + 16;
    let p = mean / f64::from(trials);
    (0..trials).filter(|_| rng.chance(p)).count() as f64
}

/// A host's first export or scrape at or after `from`: an OpenTelemetry SDK exports one
/// interval after its process started, Prometheus scrapes a target at an offset fixed by a hash
/// of its labels.
fn first_export(host: &Host, from: u64) -> u64 {
    let phase = match host.speaker {
        Speaker::Otel => host.started % EXPORT_MS,
        Speaker::Prometheus => StableHasher::hash_str(&host.pod) % EXPORT_MS,
    };
    let base = from - from % EXPORT_MS + phase;
    let first = if base < from { base + EXPORT_MS } else { base };
    match host.speaker {
        Speaker::Otel => first.max(host.started + EXPORT_MS),
        Speaker::Prometheus => first,
    }
}

fn node_of(pod: &str, nodes: usize) -> usize {
    (StableHasher::hash_str(pod) % nodes.max(1) as u64) as usize
}

fn ip_of(pod: &str) -> String {
    let h = StableHasher::hash_str(pod);
    format!("10.1.{}.{}", (h >> 8) % 64, h % 250 + 2)
}

/// OTLP's severity number and text.
fn severity(level: Level) -> (u8, &'static str) {
    match level {
        Level::Trace => (1, "TRACE"),
        Level::Debug => (5, "DEBUG"),
        Level::Info => (9, "INFO"),
        Level::Warn => (13, "WARN"),
        Level::Error => (17, "ERROR"),
        Level::Fatal => (21, "FATAL"),
    }
}
