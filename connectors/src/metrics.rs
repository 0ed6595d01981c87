//! A small metrics registry rendered in the Prometheus text exposition format (version 0.0.4).
//!
//! For: counting what kaizen does — events in and out per source and format, decode errors,
//! late events, consumer lag, insights emitted, Slack retries and queue depth, HTTP requests —
//! from many threads at the cost of one atomic add, and rendering it all for `GET /metrics`.
//! Counters and gauges carry label sets (`kaizen_events_in_total{source="kafka",
//! format="otlp_json"}`); a series is registered once (that takes a lock) and its handle is
//! kept, cloned and bumped freely. Values owned elsewhere (the Slack queue depth, a consumer's
//! lag) can be set from outside or read at scrape time through [`Registry::gauge_fn`].
//!
//! The standard `process_*` series come from [`register_process_metrics`].
//!
//! Not for: histograms or summaries, timestamps on samples, pushing to a gateway, or the
//! OpenMetrics format. No dependency: names are sanitised rather than rejected, so no input
//! (a topic name used as a label value, say) can make registration fail or panic.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::slack::SlackStatsHandle;

mod process;
pub use process::register_process_metrics;

/// A metric family's name and help text. The well-known families are the constants below;
/// callers may define their own with [`MetricDef::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricDef {
    /// Metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`; other characters become `_`).
    pub name: &'static str,
    /// One line of help.
    pub help: &'static str,
}

impl MetricDef {
    /// A family definition.
    pub const fn new(name: &'static str, help: &'static str) -> Self {
        MetricDef { name, help }
    }
}

/// Counter `{source, format}`: events decoded from a source (source: `kafka`, `http`, `slack`).
pub const EVENTS_IN: MetricDef = MetricDef::new(
    "kaizen_events_in_total",
    "Events decoded from a source, by source and format.",
);
/// Counter `{sink, format}`: records written by a sink (insights topic, dead-letter topic, …).
pub const EVENTS_OUT: MetricDef = MetricDef::new(
    "kaizen_events_out_total",
    "Records written by a sink, by sink and format.",
);
/// Counter `{source, format}`: messages that could not be decoded.
pub const DECODE_ERRORS: MetricDef = MetricDef::new(
    "kaizen_decode_errors_total",
    "Messages that could not be decoded, by source and format.",
);
/// Counter `{source}`: undecodable messages handed to the dead-letter destination.
pub const DEAD_LETTERS: MetricDef = MetricDef::new(
    "kaizen_dead_letters_total",
    "Messages handed to the dead-letter destination, by source.",
);
/// Counter `{source}`: events later than the allowed lateness.
pub const LATE_EVENTS: MetricDef = MetricDef::new(
    "kaizen_late_events_total",
    "Events later than the allowed lateness, by source.",
);
/// Gauge `{topic, partition}`: messages between the consumer's position and the high watermark.
pub const CONSUMER_LAG: MetricDef = MetricDef::new(
    "kaizen_consumer_lag",
    "Messages between the consumer position and the partition high watermark.",
);
/// Counter `{sink}`: insight versions emitted.
pub const INSIGHTS_EMITTED: MetricDef = MetricDef::new(
    "kaizen_insights_emitted_total",
    "Insight versions emitted, by sink.",
);
/// Counter: Slack requests retried (429, 5xx, network errors, transient `ok:false`).
pub const SLACK_RETRIES: MetricDef = MetricDef::new(
    "kaizen_slack_retries_total",
    "Slack Web API requests retried.",
);
/// Counter: Slack requests that failed for good.
pub const SLACK_FAILURES: MetricDef = MetricDef::new(
    "kaizen_slack_failures_total",
    "Slack Web API requests that failed for good.",
);
/// Counter `{kind}`: Slack messages delivered (`post`, `update`, `reply`).
pub const SLACK_DELIVERED: MetricDef = MetricDef::new(
    "kaizen_slack_messages_total",
    "Slack messages delivered, by kind (post, update, reply).",
);
/// Gauge: incidents waiting to be delivered to Slack.
pub const SLACK_QUEUE_DEPTH: MetricDef = MetricDef::new(
    "kaizen_slack_queue_depth",
    "Incidents waiting to be delivered to Slack.",
);
/// Counter `{route, code}`: HTTP requests answered.
pub const HTTP_REQUESTS: MetricDef = MetricDef::new(
    "kaizen_http_requests_total",
    "HTTP requests answered, by route and status code.",
);

/// Whether a family counts up or goes up and down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Monotonic.
    Counter,
    /// Up and down.
    Gauge,
}

impl MetricKind {
    fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        }
    }
}

/// A monotonic counter; clones share the value.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The value now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (an `f64` stored as bits); clones share the value.
#[derive(Clone, Debug, Default)]
pub struct Gauge(Arc<AtomicU64>);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    /// Adds `d` (may be negative).
    pub fn add(&self, d: f64) {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(cur) + d).to_bits();
            match self
                .0
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(seen) => cur = seen,
            }
        }
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
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

type ValueFn = Arc<dyn Fn() -> f64 + Send + Sync>;

#[derive(Clone)]
enum Series {
    Counter(Counter),
    Gauge(Gauge),
    Func(ValueFn),
}

impl Series {
    fn value(&self) -> f64 {
        match self {
            Series::Counter(c) => c.get() as f64,
            Series::Gauge(g) => g.get(),
            Series::Func(f) => f(),
        }
    }
}

/// Label pairs sorted by name, names sanitised: the identity of a series in its family.
type LabelKey = Vec<(String, String)>;

struct Family {
    help: String,
    kind: MetricKind,
    series: BTreeMap<LabelKey, Series>,
}

/// The registry: families by name, each with its series by label set. Share it as
/// `Arc<Registry>`; registration takes a write lock, rendering a read lock, and bumping a
/// handle no lock at all.
#[derive(Default)]
pub struct Registry {
    families: RwLock<BTreeMap<String, Family>>,
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
    /// the same labels (in any order) returns the same counter. If `def.name` is already a
    /// gauge, a counter that is never rendered is returned and a warning logged.
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

    /// A gauge whose value `f` computes at each scrape (replacing any series with these
    /// labels). `f` runs under the registry's read lock: keep it quick, and do not register
    /// from inside it.
    pub fn gauge_fn<F>(&self, def: &MetricDef, labels: &[(&str, &str)], f: F)
    where
        F: Fn() -> f64 + Send + Sync + 'static,
    {
        self.insert_fn(def, MetricKind::Gauge, labels, Arc::new(f));
    }

    /// A counter whose value `f` reads at each scrape from a cumulative count kept elsewhere
    /// (such as [`crate::SlackStats::retries`]); as [`Self::gauge_fn`].
    pub fn counter_fn<F>(&self, def: &MetricDef, labels: &[(&str, &str)], f: F)
    where
        F: Fn() -> u64 + Send + Sync + 'static,
    {
        self.insert_fn(
            def,
            MetricKind::Counter,
            labels,
            Arc::new(move || f() as f64),
        );
    }

    fn insert_fn(&self, def: &MetricDef, kind: MetricKind, labels: &[(&str, &str)], f: ValueFn) {
        let key = label_key(labels);
        let mut families = match self.families.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let family = families
            .entry(sanitize_name(def.name, true))
            .or_insert_with(|| Family {
                help: def.help.to_owned(),
                kind,
                series: BTreeMap::new(),
            });
        if family.kind != kind {
            tracing::warn!(
                "metric {} is a {}, not a {}",
                def.name,
                family.kind.as_str(),
                kind.as_str()
            );
            return;
        }
        family.series.insert(key, Series::Func(f));
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
        let mut families = match self.families.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let family = families.entry(name).or_insert_with(|| Family {
            help: def.help.to_owned(),
            kind,
            series: BTreeMap::new(),
        });
        if family.kind != kind {
            tracing::warn!(
                "metric {} is a {}, not a {}; this handle is not exported",
                def.name,
                family.kind.as_str(),
                kind.as_str()
            );
            return None;
        }
        Some(family.series.entry(key).or_insert_with(make).clone())
    }

    /// Every family in the text exposition format 0.0.4, families sorted by name and series
    /// by labels; serve it as `text/plain; version=0.0.4; charset=utf-8`.
    pub fn render(&self) -> String {
        let families = match self.families.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut out = String::with_capacity(4096);
        for (name, family) in families.iter() {
            let _ = writeln!(out, "# HELP {name} {}", escape_help(&family.help));
            let _ = writeln!(out, "# TYPE {name} {}", family.kind.as_str());
            for (labels, series) in &family.series {
                out.push_str(name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"{}\"", escape_label_value(v));
                    }
                    out.push('}');
                }
                out.push(' ');
                out.push_str(&format_value(series.value()));
                out.push('\n');
            }
        }
        out
    }
}

/// Exports a Slack sink's counters, read at each scrape: messages delivered by kind,
/// retries, failures and the queue depth.
pub fn register_slack_stats(registry: &Registry, stats: SlackStatsHandle) {
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
            Some(slot) => slot.1 = (*v).to_owned(),
            None => key.push((k, (*v).to_owned())),
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

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_with_labels_render_with_help_and_type() {
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
            "# HELP kaizen_events_in_total Events decoded from a source, by source and format.\n\
             # TYPE kaizen_events_in_total counter\n\
             kaizen_events_in_total{format=\"alertmanager\",source=\"http\"} 0\n\
             kaizen_events_in_total{format=\"otlp_json\",source=\"kafka\"} 4\n"
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
            text.contains("# TYPE kaizen_slack_queue_depth gauge\nkaizen_slack_queue_depth 7\n")
        );
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
            text.contains("# HELP bad_name_total line one\\nback\\\\slash\n"),
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
        assert!(text.contains("kaizen_slack_queue_depth 0\n"), "{text}");
        assert!(text.contains("kaizen_slack_retries_total 0\n"), "{text}");
        assert!(
            text.contains("kaizen_slack_messages_total{kind=\"post\"} 0\n"),
            "{text}"
        );
    }

    #[test]
    fn special_values_render_as_prometheus_spells_them() {
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(0.25), "0.25");
    }

    #[test]
    fn counters_are_shared_across_threads() {
        let r = Arc::new(Registry::new());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let r = r.clone();
                std::thread::spawn(move || {
                    let c = r.counter(&LATE_EVENTS, &[("source", "kafka")]);
                    for _ in 0..1000 {
                        c.inc();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(r.counter(&LATE_EVENTS, &[("source", "kafka")]).get(), 4000);
    }
}
