//! Golden signals from the telemetry SREs already ship, whatever its vocabulary.
//!
//! Detectors, thresholds, SLO burn and rules speak kaizen's names for the golden signals —
//! [`ERROR_RATIO`], [`REQUEST_RATE`], [`LATENCY_P99_MS`], `cpu_utilization`,
//! `memory_utilization`, [`RESTARTS`]. Services send OpenTelemetry semantic conventions,
//! Prometheus client-library counters and histograms, kube-state-metrics and cAdvisor series,
//! or gauges of their own. [`GoldenSignals`] reads them (see `conventions` for what is
//! recognised, and [`SignalMapping`] for the rest) and derives kaizen's signals per service:
//!
//! * a gauge that already is a golden signal (`http.server.error_ratio`, `*_p99_ms`, a
//!   summary's `quantile="0.99"`, `system.cpu.utilization`) is renamed and scaled, and the
//!   detectors see it instead of the original;
//! * request counters (cumulative or delta, resets handled as Prometheus' `rate` does) with a
//!   status label become the request rate and the server-error ratio of each export;
//! * latency histogram buckets (`*_bucket{le}`) become the p99 of each export's new
//!   observations, interpolated inside the bucket as `histogram_quantile` does.
//!
//! Samples of one service stamped within [`EXPORT_SPREAD_MS`] of each other are one export
//! (an OTLP batch, a Prometheus scrape); an export's derived samples are stamped with the time
//! it is complete ([`EXPORT_SPREAD_MS`] after its first sample) and emitted once the watermark
//! passes that time — so they reach the detectors before the watermark does, and never behind
//! a watermark already passed. Output depends only on the event sequence.
//!
//! Not for: client-side metrics (they describe the callee), per-route signals (the derived
//! signals are per service), or metrics without a recognisable convention and no mapping.

mod conventions;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use kaizen_model::{Event, EventBody, Labels, Metric, MetricKind, Symbol, Timestamp};

use conventions::{role_of, Outcome, Role};

/// Share of requests that failed on the server's side, 0–1.
pub const ERROR_RATIO: &str = "http_error_ratio";
/// Requests served per second.
pub const REQUEST_RATE: &str = "http_requests_per_second";
/// 99th percentile of server latency, in milliseconds.
pub const LATENCY_P99_MS: &str = "http_latency_p99_ms";
/// Container restarts in the last [`RESTART_WINDOW_MS`] (a crash loop restarts every few
/// minutes, at back-off; exports come every 15–60 s).
pub const RESTARTS: &str = "container_restarts";

/// The window [`RESTARTS`] counts over.
pub const RESTART_WINDOW_MS: u64 = 10 * 60_000;

/// Samples of one service this close in event time belong to one export.
pub const EXPORT_SPREAD_MS: u64 = 5_000;

/// A series not seen for this long is forgotten (its next sample starts it over).
const SERIES_IDLE_MS: u64 = 3_600_000;

/// A metric kaizen does not recognise, declared as a golden signal in configuration
/// (`[[golden.mapping]]` in kaizen.toml).
#[derive(Clone, Debug, PartialEq)]
pub struct SignalMapping {
    /// The metric's name as it arrives.
    pub metric: String,
    /// Labels the sample must carry (all of them, exact values).
    pub labels: Vec<(String, String)>,
    /// The golden signal it is (`http_error_ratio`, `http_latency_p99_ms`, …).
    pub signal: String,
    /// Multiplied into the value (0.01 for a percentage, 1000 for seconds → ms).
    pub scale: f64,
}

impl SignalMapping {
    fn matches(&self, m: &Metric) -> bool {
        m.name.as_str() == self.metric
            && self
                .labels
                .iter()
                .all(|(k, v)| m.labels.get(k).is_some_and(|got| got.as_str() == v))
    }
}

/// Derives kaizen's golden signals from other vocabularies (see the module docs).
#[derive(Default)]
pub struct GoldenSignals {
    mappings: Vec<SignalMapping>,
    services: BTreeMap<Symbol, ServiceState>,
}

#[derive(Default)]
struct ServiceState {
    /// Series key → (event time ms, value) of its latest sample.
    last: HashMap<u64, (u64, f64)>,
    /// Exports not yet flushed, by their first sample's time.
    open: BTreeMap<u64, Export>,
    /// The latest flushed export's time.
    previous_export: Option<u64>,
    /// When idle series were last forgotten.
    swept: u64,
    /// Restarts per flushed export within the restart window.
    restarts: std::collections::VecDeque<(u64, f64)>,
}

#[derive(Default)]
struct Export {
    requests: BTreeMap<String, RequestTally>,
    latency: BTreeMap<String, LatencyTally>,
    restarts: Option<f64>,
}

#[derive(Default)]
struct RequestTally {
    /// Requests whose outcome a label told.
    known: f64,
    /// Of those, server errors.
    errors: f64,
    /// Requests counted without an outcome.
    unknown: f64,
    /// Errors counted by an error counter (`*_errors_total`), to pair with `unknown`.
    error_counter: f64,
    /// Requests per second (error counters excluded: their requests are counted elsewhere).
    rate: f64,
}

#[derive(Default)]
struct LatencyTally {
    to_ms: f64,
    /// Upper bound (as ordered bits) → new observations at most that bound.
    by_le: BTreeMap<OrderedBound, f64>,
}

/// An `f64` bucket bound usable as a map key (bounds are never NaN).
#[derive(Clone, Copy, Debug)]
struct OrderedBound(f64);
impl PartialEq for OrderedBound {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for OrderedBound {}
impl PartialOrd for OrderedBound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrderedBound {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl GoldenSignals {
    /// Derivation by convention, plus these mappings (checked first).
    pub fn new(mappings: Vec<SignalMapping>) -> Self {
        GoldenSignals {
            mappings,
            services: BTreeMap::new(),
        }
    }

    /// Reads one event (in event-time order per service). A golden signal under another
    /// name comes back renamed: the detectors should see that instead of `event`.
    pub fn on_event(&mut self, event: &Event) -> Option<Event> {
        let EventBody::Metric(m) = &event.body else {
            return None;
        };
        if !m.value.is_finite() {
            return None;
        }
        if let Some(mapping) = self.mappings.iter().find(|map| map.matches(m)) {
            let name = Symbol::new(&mapping.signal);
            return Some(renamed(event, m, name, mapping.scale));
        }
        let role = role_of(m);
        if let Role::Rename { to, scale } = role {
            return Some(renamed(event, m, Symbol::new(to), scale));
        }
        if role == Role::Other {
            return None;
        }
        let ts = event.ts.as_millis();
        let state = self.services.entry(event.service.clone()).or_default();
        let key = m.series_key(&event.service);
        let (delta, seconds) = state.increase(key, ts, m.value, &role)?;
        let export = state.export_at(ts);
        match role {
            Role::Requests {
                family,
                outcome,
                error_counter,
                ..
            } => {
                let t = export.requests.entry(family).or_default();
                match (outcome, error_counter) {
                    (Outcome::Error, true) => t.error_counter += delta,
                    (Outcome::Error, false) => {
                        t.errors += delta;
                        t.known += delta;
                    }
                    (Outcome::Ok, _) => t.known += delta,
                    (Outcome::Unknown, _) => t.unknown += delta,
                }
                if let (false, Some(s)) = (error_counter, seconds) {
                    t.rate += delta / s;
                }
            }
            Role::LatencyBucket {
                family, le, to_ms, ..
            } => {
                let t = export.latency.entry(family).or_default();
                t.to_ms = to_ms;
                *t.by_le.entry(OrderedBound(le)).or_default() += delta;
            }
            Role::Restarts => *export.restarts.get_or_insert(0.0) += delta,
            Role::Rename { .. } | Role::Other => {}
        }
        None
    }

    /// Derived samples of every export before `watermark`, in event-time order.
    pub fn on_watermark(&mut self, watermark: Timestamp, out: &mut Vec<Event>) {
        let w = watermark.as_millis();
        let start = out.len();
        for (service, state) in &mut self.services {
            while let Some(entry) = state.open.first_entry() {
                if entry.key().saturating_add(EXPORT_SPREAD_MS) >= w {
                    break;
                }
                let (ts, export) = entry.remove_entry();
                let restarts = export.restarts.map(|n| {
                    state.restarts.push_back((ts, n));
                    let since = ts.saturating_sub(RESTART_WINDOW_MS);
                    while state.restarts.front().is_some_and(|(t, _)| *t <= since) {
                        state.restarts.pop_front();
                    }
                    state.restarts.iter().map(|(_, n)| n).sum::<f64>()
                });
                // Stamped when the export is complete: never before a watermark already
                // passed (it was open then), whatever the batching.
                let complete = Timestamp::from_millis(ts + EXPORT_SPREAD_MS);
                export.derive(service, complete, restarts, out);
                state.previous_export = Some(ts);
            }
            if w.saturating_sub(state.swept) >= SERIES_IDLE_MS / 6 {
                let horizon = w.saturating_sub(SERIES_IDLE_MS);
                state.last.retain(|_, (t, _)| *t >= horizon);
                state.swept = w;
            }
        }
        out[start..].sort_by(|a, b| (a.ts, &a.service).cmp(&(b.ts, &b.service)));
    }
}

impl ServiceState {
    /// The count added since the series' previous sample, and over how many seconds. `None`
    /// for a series' first sample when nothing tells what it started from.
    fn increase(
        &mut self,
        key: u64,
        ts: u64,
        value: f64,
        role: &Role,
    ) -> Option<(f64, Option<f64>)> {
        let cumulative = match role {
            Role::Requests { cumulative, .. } | Role::LatencyBucket { cumulative, .. } => {
                *cumulative
            }
            Role::Restarts => true,
            Role::Rename { .. } | Role::Other => return None,
        };
        if value < 0.0 {
            return None;
        }
        let previous = self.last.get(&key).copied();
        if previous.is_some_and(|(t, _)| ts <= t) {
            return None;
        }
        self.last.insert(key, (ts, value));
        let since = previous
            .map(|(t, _)| t)
            .or(self.previous_export)
            .filter(|t| *t < ts)
            .map(|t| (ts - t) as f64 / 1000.0);
        let delta = match (cumulative, previous) {
            (false, _) => value,
            // A drop is a restart of the counter: it counted `value` since.
            (true, Some((_, before))) => {
                if value >= before {
                    value - before
                } else {
                    value
                }
            }
            // A series born after the service's first export: client libraries create a
            // labelled series at its first increment, so it counted `value` since then (the
            // first 5xx of an outage must not be lost). At the service's start, unknown.
            (true, None) if self.previous_export.is_some() => value,
            (true, None) => return None,
        };
        Some((delta, since))
    }

    fn export_at(&mut self, ts: u64) -> &mut Export {
        let near = self
            .open
            .range(ts.saturating_sub(EXPORT_SPREAD_MS)..=ts.saturating_add(EXPORT_SPREAD_MS))
            .next()
            .map(|(t, _)| *t);
        self.open.entry(near.unwrap_or(ts)).or_default()
    }
}

impl Export {
    /// `restarts`: in the restart window, this export's included.
    fn derive(self, service: &Symbol, ts: Timestamp, restarts: Option<f64>, out: &mut Vec<Event>) {
        let mut push = |name: &str, value: f64| {
            if value.is_finite() {
                out.push(derived(service, ts, name, value));
            }
        };
        // The family that counted the most requests speaks (several families often count the
        // same requests: a counter and a histogram's `_count`).
        let busiest = self.requests.iter().max_by(|a, b| {
            let n = |t: &RequestTally| t.known + t.unknown;
            n(a.1).total_cmp(&n(b.1)).then_with(|| b.0.cmp(a.0))
        });
        if let Some((_, t)) = busiest {
            if t.rate > 0.0 || t.known + t.unknown > 0.0 {
                push(REQUEST_RATE, t.rate);
            }
            if t.known >= 1.0 {
                push(ERROR_RATIO, t.errors / t.known);
            } else if t.unknown >= 1.0 && t.error_counter > 0.0 {
                push(ERROR_RATIO, (t.error_counter / t.unknown).min(1.0));
            } else if t.unknown >= 1.0 && self.requests.values().any(|o| o.error_counter > 0.0) {
                let errors: f64 = self.requests.values().map(|o| o.error_counter).sum();
                push(ERROR_RATIO, (errors / t.unknown).min(1.0));
            }
        }
        let busiest = self.latency.iter().max_by(|a, b| {
            let n = |t: &LatencyTally| t.by_le.values().copied().fold(0.0, f64::max);
            n(a.1).total_cmp(&n(b.1)).then_with(|| b.0.cmp(a.0))
        });
        if let Some((_, t)) = busiest {
            if let Some(p99) = bucket_quantile(&t.by_le, 0.99) {
                push(LATENCY_P99_MS, p99 * t.to_ms);
            }
        }
        if let Some(n) = restarts {
            push(RESTARTS, n);
        }
    }
}

/// The `q` quantile of cumulative buckets (`le` → count at most `le`), interpolated linearly
/// inside the bucket that holds it; the first bucket starts at 0, and a quantile in the
/// `+Inf` bucket is the highest finite bound (Prometheus' `histogram_quantile`). `None`
/// without observations.
fn bucket_quantile(by_le: &BTreeMap<OrderedBound, f64>, q: f64) -> Option<f64> {
    // Aggregated deltas may dip by rounding or a reset in one series: keep them monotone.
    let mut running = 0.0f64;
    let buckets: Vec<(f64, f64)> = by_le
        .iter()
        .map(|(le, c)| {
            running = running.max(*c);
            (le.0, running)
        })
        .collect();
    let total = buckets.last()?.1;
    if total < 1.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(le, count) in &buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower.0);
            }
            if count <= lower.1 {
                return Some(le);
            }
            return Some(lower.0 + (le - lower.0) * (rank - lower.1) / (count - lower.1));
        }
        lower = (le, count);
    }
    Some(lower.0)
}

fn renamed(event: &Event, m: &Metric, name: Symbol, scale: f64) -> Event {
    let labels = Labels::from_pairs(
        m.labels
            .iter()
            .filter(|(k, _)| k.as_str() != "quantile")
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    Event {
        ts: event.ts,
        service: event.service.clone(),
        body: EventBody::Metric(Metric {
            name,
            value: m.value * scale,
            metric_kind: MetricKind::Gauge,
            labels,
        }),
    }
}

fn derived(service: &Symbol, ts: Timestamp, name: &str, value: f64) -> Event {
    Event {
        ts,
        service: service.clone(),
        body: EventBody::Metric(Metric {
            name: Symbol::new(name),
            value,
            metric_kind: MetricKind::Gauge,
            labels: Labels::default(),
        }),
    }
}
