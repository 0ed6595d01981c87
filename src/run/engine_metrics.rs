//! The engine's own series on `/metrics`: how far behind real time each source and the
//! insights are, and how long after their evidence insights go out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kaizen_connectors::metrics::{
    Histogram, INGEST_TO_INSIGHT, INSIGHT_EVENT_DELAY, SOURCE_DELAY, WATERMARK_DELAY,
};
use kaizen_connectors::Registry;
use kaizen_engine::Partition;
use kaizen_model::Insight;

/// Event times seen, turned into delays against the wall clock at each scrape (a delay
/// set when an event arrives would stand still while a source is silent).
pub(super) struct EngineMetrics {
    registry: Arc<Registry>,
    frontier: Arc<AtomicU64>,
    newest: Mutex<HashMap<Partition, Arc<AtomicU64>>>,
    event_delay: Histogram,
    ingest_delay: Histogram,
}

impl EngineMetrics {
    pub(super) fn new(registry: Arc<Registry>) -> Self {
        let frontier = Arc::new(AtomicU64::new(0));
        let f = frontier.clone();
        registry.gauge_fn(&WATERMARK_DELAY, &[], move || delay_seconds(&f));
        EngineMetrics {
            event_delay: registry.histogram(&INSIGHT_EVENT_DELAY, &[]),
            ingest_delay: registry.histogram(&INGEST_TO_INSIGHT, &[]),
            frontier,
            newest: Mutex::new(HashMap::new()),
            registry,
        }
    }

    /// The newest event time (ms) read from `p`.
    pub(super) fn source_time(&self, p: &Partition, ts: u64) {
        let Ok(mut newest) = self.newest.lock() else {
            return;
        };
        let cell = newest.entry(p.clone()).or_insert_with(|| {
            let cell = Arc::new(AtomicU64::new(0));
            let c = cell.clone();
            let partition = p.partition.to_string();
            self.registry.gauge_fn(
                &SOURCE_DELAY,
                &[("source", p.stream.as_str()), ("partition", &partition)],
                move || delay_seconds(&c),
            );
            cell
        });
        cell.fetch_max(ts, Ordering::Relaxed);
    }

    /// Every insight before event time `ts` (ms) has been emitted.
    pub(super) fn frontier(&self, ts: u64) {
        self.frontier.fetch_max(ts, Ordering::Relaxed);
    }

    /// `insight` went to the sinks, `since_read` after its newest evidence was read.
    pub(super) fn emitted(&self, insight: &Insight, since_read: Option<Duration>) {
        let evidence = insight.updated_at.as_millis();
        self.event_delay
            .observe(now_millis().saturating_sub(evidence) as f64 / 1000.0);
        if let Some(d) = since_read {
            self.ingest_delay.observe_duration(d);
        }
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Seconds from event time `cell` (ms) to now; NaN before the first event.
fn delay_seconds(cell: &AtomicU64) -> f64 {
    match cell.load(Ordering::Relaxed) {
        0 => f64::NAN,
        ts => (now_millis() as f64 - ts as f64) / 1000.0,
    }
}
