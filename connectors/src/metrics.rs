//! kaizen's metrics registry, rendered in the OpenMetrics text format by the maintained
//! Prometheus client for Rust (`prometheus-client`).
//!
//! For: counting and timing what kaizen does — events in and out per source and format,
//! decode errors and decode time, late events, consumer lag, insights emitted and how long
//! after their evidence, Slack retries, latency and queue depth, HTTP requests — from many
//! threads at the cost of one atomic add, and rendering it all for `GET /metrics`. Counters,
//! gauges and histograms carry label sets (`kaizen_events_in_total{source="kafka",
//! format="otlp_json"}`); a series is registered once (that takes a lock) and its handle is
//! kept, cloned and bumped freely. Values owned elsewhere (the Slack queue depth, a
//! consumer's lag) can be set from outside or read at scrape time through
//! [`Registry::gauge_fn`]. The well-known families are in [`families`]; the standard
//! `process_*` series come from [`register_process_metrics`].
//!
//! Why a facade over `prometheus-client` rather than its `Registry` directly: kaizen learns
//! its label values at run time (topics, partitions, formats, routes) and registers series
//! lazily from many threads, and a name must never make registration fail or panic —
//! names are sanitised and label values escaped here, where the client would write them
//! as given.
//!
//! Not for: timestamps on samples, exemplars, or pushing to a gateway.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::slack::SlackStatsHandle;

pub mod families;
mod process;
pub use families::*;
pub use process::{register_process_metrics, PROCESS_FAMILIES};

/// The content type of [`Registry::render`]'s output.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A metric family's name, help text and, for a histogram, its bucket bounds. The
/// well-known families are in [`families`]; callers may define their own.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricDef {
    /// Metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`; other characters become `_`). Counters are
    /// named with their `_total` suffix, as their samples are.
    pub name: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// Upper bounds of a histogram's buckets (`+Inf` is implied); empty for other kinds.
    pub buckets: &'static [f64],
}

impl MetricDef {
    /// A counter or gauge family.
    pub const fn new(name: &'static str, help: &'static str) -> Self {
        MetricDef {
            name,
            help,
            buckets: &[],
        }
    }

    /// A histogram family with these bucket upper bounds.
    pub const fn histogram(
        name: &'static str,
        help: &'static str,
        buckets: &'static [f64],
    ) -> Self {
        MetricDef {
            name,
            help,
            buckets,
        }
    }
}

/// Whether a family counts up, goes up and down, or counts observations in buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Monotonic.
    Counter,
    /// Up and down.
    Gauge,
    /// Observations in buckets, with their sum and count.
    Histogram,
}

impl MetricKind {
    fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }

    fn metric_type(self) -> MetricType {
        match self {
            MetricKind::Counter => MetricType::Counter,
            MetricKind::Gauge => MetricType::Gauge,
            MetricKind::Histogram => MetricType::Histogram,
        }
    }
}

/// A monotonic counter; clones share the value.
#[derive(Clone, Debug, Default)]
pub struct Counter(prometheus_client::metrics::counter::Counter<u64>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.inc();
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.inc_by(n);
    }
    /// The value now.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// A value that goes up and down; clones share the value.
#[derive(Clone, Debug, Default)]
pub struct Gauge(prometheus_client::metrics::gauge::Gauge<f64, AtomicU64>);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: f64) {
        self.0.set(v);
    }
    /// Adds `d` (may be negative).
    pub fn add(&self, d: f64) {
        self.0.inc_by(d);
    }
    /// Adds one.
    pub fn inc(&self) {
        self.add(1.0);
    }
    /// Subtracts one.
    pub fn dec(&self) {
        self.add(-1.0);
    }
    /// The value now.
    pub fn get(&self) -> f64 {
        self.0.get()
    }
}

/// Observations counted in buckets; clones share the buckets. Lock-free: one observation is
/// two or three atomic adds, so it may sit on a per-message path.
#[derive(Clone, Debug)]
pub struct Histogram(Arc<HistogramCells>);

#[derive(Debug)]
struct HistogramCells {
    /// Upper bounds, ascending, ending with `f64::MAX` (rendered `+Inf`).
    bounds: Vec<f64>,
    /// Observations per bucket (not cumulative).
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    /// The sum, as `f64` bits.
    sum: AtomicU64,
}

impl Histogram {
    /// A histogram with these bucket upper bounds (sorted; NaN dropped), not yet in any
    /// registry (see [`Registry::attach_histogram`]).
    pub fn new(buckets: &[f64]) -> Self {
        let mut bounds: Vec<f64> = buckets.iter().copied().filter(|b| !b.is_nan()).collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        if bounds.last() != Some(&f64::MAX) {
            bounds.push(f64::MAX);
        }
        let counts = bounds.iter().map(|_| AtomicU64::new(0)).collect();
        Histogram(Arc::new(HistogramCells {
            bounds,
            counts,
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0f64.to_bits()),
        }))
    }
    /// Records one observation (NaN is ignored).
    pub fn observe(&self, v: f64) {
        if v.is_nan() {
            return;
        }
        let cells = &*self.0;
        let i = cells.bounds.partition_point(|b| *b < v);
        if let Some(c) = cells.counts.get(i.min(cells.counts.len() - 1)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        cells.count.fetch_add(1, Ordering::Relaxed);
        let mut cur = cells.sum.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(cur) + v).to_bits();
            match cells
                .sum
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(seen) => cur = seen,
            }
        }
    }
    /// Records a duration in seconds.
    pub fn observe_duration(&self, d: std::time::Duration) {
        self.observe(d.as_secs_f64());
    }
    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }
    /// Their sum.
    pub fn sum(&self) -> f64 {
        f64::from_bits(self.0.sum.load(Ordering::Relaxed))
    }
    fn buckets(&self) -> Vec<(f64, u64)> {
        let cells = &*self.0;
        let counts = cells.counts.iter().map(|c| c.load(Ordering::Relaxed));
        cells.bounds.iter().copied().zip(counts).collect()
    }
}

type ValueFn = Arc<dyn Fn() -> f64 + Send + Sync>;

#[derive(Clone)]
enum Series {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
    Func(ValueFn),
}

/// Label pairs sorted by name, names sanitised and values escaped: the identity of a series
/// in its family, ready to write.
type LabelKey = Vec<(String, String)>;

struct Family {
    help: String,
    kind: MetricKind,
    series: BTreeMap<LabelKey, Series>,
}

type Families = Arc<RwLock<BTreeMap<String, Family>>>;

/// The registry: families by name, each with its series by label set. Share it as
/// `Arc<Registry>`; registration takes a write lock, rendering a read lock, and bumping a
/// handle no lock at all.
#[derive(Default)]
pub struct Registry {
    families: Families,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.families.read().map(|m| m.len()).unwrap_or(0);
        write!(f, "Registry({n} families)")
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// The counter of `def` with `labels`, created at zero on first use. Asking again with
    /// the same labels (in any order) returns the same counter. If `def.name` is already
    /// another kind, a counter that is never rendered is returned and a warning logged.
    pub fn counter(&self, def: &MetricDef, labels: &[(&str, &str)]) -> Counter {
        match self.series(def, MetricKind::Counter, labels, || {
            Series::Counter(Counter::default())
        }) {
            Some(Series::Counter(c)) => c,
            _ => Counter::default(),
        }
    }

    /// The gauge of `def` with `labels`, created at zero on first use (see [`Self::counter`]).
    pub fn gauge(&self, def: &MetricDef, labels: &[(&str, &str)]) -> Gauge {
        match self.series(def, MetricKind::Gauge, labels, || {
            Series::Gauge(Gauge::default())
        }) {
            Some(Series::Gauge(g)) => g,
            _ => Gauge::default(),
        }
    }

    /// The histogram of `def` with `labels`, created empty with `def.buckets` on first use
    /// (see [`Self::counter`]).
    pub fn histogram(&self, def: &MetricDef, labels: &[(&str, &str)]) -> Histogram {
        match self.series(def, MetricKind::Histogram, labels, || {
            Series::Histogram(Histogram::new(def.buckets))
        }) {
            Some(Series::Histogram(h)) => h,
            _ => Histogram::new(def.buckets),
        }
    }

    /// Exports a histogram kept elsewhere (a client timing its own requests) as the series
    /// of `def` with `labels`, replacing any series with these labels.
    pub fn attach_histogram(&self, def: &MetricDef, labels: &[(&str, &str)], h: Histogram) {
        self.insert(def, MetricKind::Histogram, labels, Series::Histogram(h));
    }

    /// A gauge whose value `f` computes at each scrape (replacing any series with these
    /// labels). `f` runs under the registry's read lock: keep it quick, and do not register
    /// from inside it.
    pub fn gauge_fn<F>(&self, def: &MetricDef, labels: &[(&str, &str)], f: F)
    where
        F: Fn() -> f64 + Send + Sync + 'static,
    {
        self.insert(def, MetricKind::Gauge, labels, Series::Func(Arc::new(f)));
    }

    /// A counter whose value `f` reads at each scrape from a cumulative count kept elsewhere
    /// (such as [`crate::SlackStats::retries`]); as [`Self::gauge_fn`].
    pub fn counter_fn<F>(&self, def: &MetricDef, labels: &[(&str, &str)], f: F)
    where
        F: Fn() -> u64 + Send + Sync + 'static,
    {
        let f: ValueFn = Arc::new(move || f() as f64);
        self.insert(def, MetricKind::Counter, labels, Series::Func(f));
    }

    fn write_families(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Family>> {
        match self.families.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn insert(&self, def: &MetricDef, kind: MetricKind, labels: &[(&str, &str)], series: Series) {
        let key = label_key(labels);
        let mut families = self.write_families();
        let family = families
            .entry(sanitize_name(def.name, true))
            .or_insert_with(|| Family::new(def, kind));
        if family.kind != kind {
            warn_kind(def, family.kind, kind);
            return;
        }
        family.series.insert(key, series);
    }

    /// Finds or creates the series (`None` on a kind conflict).
    fn series(
        &self,
        def: &MetricDef,
        kind: MetricKind,
        labels: &[(&str, &str)],
        make: impl FnOnce() -> Series,
    ) -> Option<Series> {
        let key = label_key(labels);
        let name = sanitize_name(def.name, true);
        if let Ok(families) = self.families.read() {
            let found = families.get(&name).and_then(|f| f.series.get(&key));
            if let Some(series) = found {
                return Some(series.clone());
            }
        }
        let mut families = self.write_families();
        let family = families
            .entry(name)
            .or_insert_with(|| Family::new(def, kind));
        if family.kind != kind {
            warn_kind(def, family.kind, kind);
            return None;
        }
        Some(family.series.entry(key).or_insert_with(make).clone())
    }

    /// Every family in the OpenMetrics text format, families sorted by name and series by
    /// labels, ending with `# EOF`; serve it as [`OPENMETRICS_CONTENT_TYPE`].
    pub fn render(&self) -> String {
        let mut client = prometheus_client::registry::Registry::default();
        client.register_collector(Box::new(Snapshot(self.families.clone())));
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail; an encoder error would be a bug, and a partial
        // page is still more use to an operator than none.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &client) {
            tracing::error!("cannot render the metrics: {e}");
        }
        out
    }
}

impl Family {
    fn new(def: &MetricDef, kind: MetricKind) -> Family {
        Family {
            help: escape_help(def.help),
            kind,
            series: BTreeMap::new(),
        }
    }
}

fn warn_kind(def: &MetricDef, is: MetricKind, asked: MetricKind) {
    tracing::warn!(
        "metric {} is a {}, not a {}; this handle is not exported",
        def.name,
        is.as_str(),
        asked.as_str()
    );
}

/// The registry's families as `prometheus-client` sees them at a scrape.
struct Snapshot(Families);

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("kaizen metrics")
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let families = match self.0.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (name, family) in families.iter() {
            // OpenMetrics names a counter family without `_total`; the client adds it back
            // to every sample.
            let family_name = match family.kind {
                MetricKind::Counter => name.strip_suffix("_total").unwrap_or(name),
                _ => name.as_str(),
            };
            let mut metric = encoder.encode_descriptor(
                family_name,
                &family.help,
                None,
                family.kind.metric_type(),
            )?;
            for (labels, series) in &family.series {
                if labels.is_empty() {
                    encode_series(series, family, &mut metric)?;
                } else {
                    let mut labelled = metric.encode_family(labels)?;
                    encode_series(series, family, &mut labelled)?;
                }
            }
        }
        Ok(())
    }
}

fn encode_series(
    series: &Series,
    family: &Family,
    encoder: &mut MetricEncoder,
) -> Result<(), std::fmt::Error> {
    let no_exemplar = None::<&prometheus_client::metrics::exemplar::Exemplar<NoLabelSet, u64>>;
    match series {
        Series::Counter(c) => encoder.encode_counter(&c.get(), no_exemplar),
        Series::Gauge(g) => encoder.encode_gauge(&g.get()),
        Series::Histogram(h) => {
            // The count is the buckets' total, so that `+Inf` equals `_count` even while
            // observations land during the scrape.
            let buckets = h.buckets();
            let count = buckets.iter().map(|(_, n)| n).sum();
            let no_exemplars = None::<
                &std::collections::HashMap<
                    usize,
                    prometheus_client::metrics::exemplar::Exemplar<NoLabelSet, f64>,
                >,
            >;
            encoder.encode_histogram(h.sum(), count, &buckets, no_exemplars)
        }
        Series::Func(f) => {
            let v = f();
            match family.kind {
                MetricKind::Counter if v >= 0.0 && v.fract() == 0.0 && v < 9.0e15 => {
                    encoder.encode_counter(&(v as u64), no_exemplar)
                }
                MetricKind::Counter => {
                    let no_exemplar =
                        None::<&prometheus_client::metrics::exemplar::Exemplar<NoLabelSet, f64>>;
                    encoder.encode_counter(&v, no_exemplar)
                }
                _ => encoder.encode_gauge(&v),
            }
        }
    }
}

/// Exports a Slack sink's counters, read at each scrape: messages delivered by kind,
/// retries, failures, the queue depth, and request latency by method.
pub fn register_slack_stats(registry: &Registry, stats: SlackStatsHandle) {
    let latency = stats.latency();
    for (method, h) in [
        ("chat.postMessage", &latency.post_message),
        ("chat.update", &latency.update),
    ] {
        registry.attach_histogram(&SLACK_REQUEST_DURATION, &[("method", method)], h.clone());
    }
    let s = stats.clone();
    registry.counter_fn(&SLACK_DELIVERED, &[("kind", "post")], move || {
        s.snapshot().posted
    });
    let s = stats.clone();
    registry.counter_fn(&SLACK_DELIVERED, &[("kind", "update")], move || {
        s.snapshot().updated
    });
    let s = stats.clone();
    registry.counter_fn(&SLACK_DELIVERED, &[("kind", "reply")], move || {
        s.snapshot().replies
    });
    let s = stats.clone();
    registry.counter_fn(&SLACK_RETRIES, &[], move || s.snapshot().retries);
    let s = stats.clone();
    registry.counter_fn(&SLACK_FAILURES, &[], move || s.snapshot().failures);
    registry.gauge_fn(&SLACK_QUEUE_DEPTH, &[], move || {
        stats.snapshot().queue_depth as f64
    });
}

fn label_key(labels: &[(&str, &str)]) -> LabelKey {
    let mut key: LabelKey = Vec::with_capacity(labels.len());
    for (k, v) in labels {
        let k = sanitize_name(k, false);
        match key.iter_mut().find(|(name, _)| *name == k) {
            Some(slot) => slot.1 = escape_label_value(v),
            None => key.push((k, escape_label_value(v))),
        }
    }
    key.sort();
    key
}

/// Metric names: `[a-zA-Z_:][a-zA-Z0-9_:]*`; label names: the same without `:`. Anything
/// else becomes `_` (an empty name becomes `_`).
fn sanitize_name(name: &str, colon_ok: bool) -> String {
    let mut out = String::with_capacity(name.len().max(1));
    for (i, c) in name.chars().enumerate() {
        let ok = c.is_ascii_alphabetic()
            || c == '_'
            || (colon_ok && c == ':')
            || (i > 0 && c.is_ascii_digit());
        out.push(if ok { c } else { '_' });
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_with_labels_render_as_openmetrics() {
        let r = Registry::new();
        let c = r.counter(&EVENTS_IN, &[("source", "kafka"), ("format", "otlp_json")]);
        c.add(3);
        // Same labels in another order: the same series.
        r.counter(&EVENTS_IN, &[("format", "otlp_json"), ("source", "kafka")])
            .inc();
        r.counter(
            &EVENTS_IN,
            &[("source", "http"), ("format", "alertmanager")],
        );
        let text = r.render();
        assert_eq!(
            text,
            "# HELP kaizen_events_in Events decoded from a source, by source and format.\n\
             # TYPE kaizen_events_in counter\n\
             kaizen_events_in_total{format=\"alertmanager\",source=\"http\"} 0\n\
             kaizen_events_in_total{format=\"otlp_json\",source=\"kafka\"} 4\n\
             # EOF\n"
        );
    }

    #[test]
    fn gauges_set_add_and_compute_at_scrape() {
        let r = Registry::new();
        let g = r.gauge(&CONSUMER_LAG, &[("topic", "otlp_logs"), ("partition", "0")]);
        g.set(10.0);
        g.add(-2.5);
        g.inc();
        assert_eq!(g.get(), 8.5);
        r.gauge_fn(&SLACK_QUEUE_DEPTH, &[], || 7.0);
        let text = r.render();
        assert!(text.contains("kaizen_consumer_lag{partition=\"0\",topic=\"otlp_logs\"} 8.5\n"));
        assert!(
            text.contains("# TYPE kaizen_slack_queue_depth gauge\nkaizen_slack_queue_depth 7.0\n"),
            "{text}"
        );
    }

    #[test]
    fn histograms_render_cumulative_buckets_sum_and_count() {
        let r = Registry::new();
        let def = MetricDef::histogram("kaizen_test_seconds", "Test.", &[0.1, 1.0]);
        let h = r.histogram(&def, &[("format", "otlp_json")]);
        for v in [0.05, 0.1, 0.5, 3.0, f64::NAN] {
            h.observe(v);
        }
        assert_eq!((h.count(), h.sum()), (4, 3.65));
        let text = r.render();
        assert!(
            text.contains("# TYPE kaizen_test_seconds histogram\n"),
            "{text}"
        );
        for line in [
            "kaizen_test_seconds_sum{format=\"otlp_json\"} 3.65\n",
            "kaizen_test_seconds_count{format=\"otlp_json\"} 4\n",
            "kaizen_test_seconds_bucket{le=\"0.1\",format=\"otlp_json\"} 2\n",
            "kaizen_test_seconds_bucket{le=\"1.0\",format=\"otlp_json\"} 3\n",
            "kaizen_test_seconds_bucket{le=\"+Inf\",format=\"otlp_json\"} 4\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        // A histogram timed elsewhere, attached under a label set.
        let own = Histogram::new(&[1.0]);
        own.observe_duration(std::time::Duration::from_millis(1500));
        r.attach_histogram(&def, &[("format", "native")], own.clone());
        own.observe(0.5);
        assert!(r
            .render()
            .contains("kaizen_test_seconds_count{format=\"native\"} 2\n"));
    }

    #[test]
    fn label_values_and_help_are_escaped_and_names_sanitised() {
        let r = Registry::new();
        r.counter(
            &MetricDef::new("bad-name.total", "line one\nback\\slash"),
            &[("to pic", "a\"b\\c\nd")],
        )
        .inc();
        let text = r.render();
        assert!(
            text.contains("# HELP bad_name line one\\nback\\\\slash\n"),
            "{text}"
        );
        assert!(
            text.contains("bad_name_total{to_pic=\"a\\\"b\\\\c\\nd\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn kind_conflicts_give_detached_handles() {
        let r = Registry::new();
        r.counter(&EVENTS_IN, &[]).add(2);
        let g = r.gauge(&EVENTS_IN, &[]);
        g.set(99.0);
        r.histogram(&EVENTS_IN, &[]).observe(99.0);
        let text = r.render();
        assert!(text.contains("kaizen_events_in_total 2\n"));
        assert!(!text.contains("99"));
    }

    #[test]
    fn slack_stats_are_read_at_scrape() {
        let config = crate::slack::SlackConfig::new("#incidents");
        let token = crate::slack::Secret::new("xoxb-test");
        let sink = crate::slack::SlackSink::with_token(config, token).unwrap();
        let r = Registry::new();
        register_slack_stats(&r, sink.stats_handle());
        let text = r.render();
        assert!(text.contains("kaizen_slack_queue_depth 0.0\n"), "{text}");
        assert!(text.contains("kaizen_slack_retries_total 0\n"), "{text}");
        assert!(
            text.contains("kaizen_slack_messages_total{kind=\"post\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "kaizen_slack_request_duration_seconds_count{method=\"chat.postMessage\"} 0\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn counters_are_shared_across_threads() {
        let r = Arc::new(Registry::new());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let r = r.clone();
                std::thread::spawn(move || {
                    let c = r.counter(&LATE_EVENTS, &[("source", "kafka")]);
                    let h = r.histogram(&DECODE_DURATION, &[("format", "native")]);
                    for _ in 0..1000 {
                        c.inc();
                        h.observe(0.001);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(r.counter(&LATE_EVENTS, &[("source", "kafka")]).get(), 4000);
        let h = r.histogram(&DECODE_DURATION, &[("format", "native")]);
        assert_eq!(h.count(), 4000);
        assert!((h.sum() - 4.0).abs() < 1e-9);
    }
}
