//! librdkafka callbacks: logs into `tracing`, consumer lag from librdkafka's statistics,
//! rebalance notifications for the driver, and delivery reports for the producers.
//!
//! For: the Kafka source and sinks only. Every callback runs inside `poll`/`flush` on the
//! calling thread (or librdkafka's), so state is behind a `Mutex` and callbacks stay short.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::ProducerContext;
use rdkafka::{ClientContext, TopicPartitionList};
use serde::Deserialize;

use super::source::{AssignmentChange, PartitionId};

/// Locks, ignoring poisoning: the data (counters, lists) stays meaningful after a panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn log_to_tracing(client: &str, level: RDKafkaLogLevel, fac: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", client, fac, "{message}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", client, fac, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", client, fac, "{message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", client, fac, "{message}"),
    }
}

/// The consumer's context: rebalances and lag, as the source reads them after each poll.
#[derive(Default)]
pub(crate) struct SourceContext {
    changes: Mutex<Vec<AssignmentChange>>,
    lag: Mutex<HashMap<PartitionId, Lag>>,
    errors: AtomicU64,
    commit_failure: Mutex<Option<String>>,
}

impl SourceContext {
    /// Assignment changes since the last call, oldest first.
    pub(crate) fn take_changes(&self) -> Vec<AssignmentChange> {
        std::mem::take(&mut *lock(&self.changes))
    }

    /// The last lag librdkafka's statistics gave for `p`.
    pub(crate) fn lag(&self, p: &PartitionId) -> Lag {
        lock(&self.lag).get(p).copied().unwrap_or_default()
    }

    /// The last commit failure librdkafka reported since the previous call.
    pub(crate) fn take_commit_failure(&self) -> Option<String> {
        lock(&self.commit_failure).take()
    }

    /// Client-level errors seen (broker down, authentication, …); librdkafka retries them.
    pub(crate) fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

impl ClientContext for SourceContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_to_tracing("consumer", level, fac, log_message);
    }

    fn error(&self, error: RdKafkaError, reason: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(target: "librdkafka", client = "consumer", %error, "{reason}");
    }

    fn stats_raw(&self, statistics: &[u8]) {
        let stats: Stats = match serde_json::from_slice(statistics) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "unreadable librdkafka statistics");
                return;
            }
        };
        let mut lag = lock(&self.lag);
        lag.clear();
        for (topic, t) in stats.topics {
            let topic: Arc<str> = Arc::from(topic);
            for (partition, p) in t.partitions {
                let Ok(partition) = partition.parse::<i32>() else {
                    continue;
                };
                if partition >= 0 {
                    lag.insert(PartitionId::new(topic.clone(), partition), p.lag());
                }
            }
        }
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let parts = partitions(tpl);
                tracing::info!(partitions = %list(&parts), "kafka partitions revoked");
                lock(&self.changes).push(AssignmentChange::Revoked(parts));
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "kafka rebalance error");
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let parts = partitions(tpl);
            tracing::info!(partitions = %list(&parts), "kafka partitions assigned");
            lock(&self.changes).push(AssignmentChange::Assigned(parts));
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        _offsets: &TopicPartitionList,
    ) {
        if let Err(e) = result {
            tracing::debug!(error = %e, "kafka commit callback reported an error");
            *lock(&self.commit_failure) = Some(e.to_string());
        }
    }
}

fn partitions(tpl: &TopicPartitionList) -> Vec<PartitionId> {
    let mut out: Vec<PartitionId> = tpl
        .elements()
        .iter()
        .map(|e| PartitionId::new(Arc::from(e.topic()), e.partition()))
        .collect();
    out.sort();
    out
}

fn list(parts: &[PartitionId]) -> String {
    parts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The few fields of librdkafka's statistics JSON the source uses.
#[derive(Deserialize)]
struct Stats {
    #[serde(default)]
    topics: HashMap<String, TopicStats>,
}

#[derive(Deserialize)]
struct TopicStats {
    #[serde(default)]
    partitions: HashMap<String, PartitionStats>,
}

#[derive(Deserialize)]
struct PartitionStats {
    #[serde(default = "unknown")]
    hi_offset: i64,
    #[serde(default = "unknown")]
    ls_offset: i64,
    #[serde(default = "unknown")]
    app_offset: i64,
    #[serde(default = "unknown")]
    committed_offset: i64,
}

impl PartitionStats {
    /// End (last stable offset under `read_committed`, librdkafka's default; else the high
    /// watermark) minus the position (after the last message returned), and minus the
    /// committed offset. Offsets are -1 (or another negative sentinel) when unknown.
    fn lag(&self) -> Lag {
        let end = if self.ls_offset >= 0 {
            self.ls_offset
        } else {
            self.hi_offset
        };
        let behind = |from: i64| (end >= 0 && from >= 0).then(|| (end - from).max(0));
        let position = if self.app_offset >= 0 {
            self.app_offset
        } else {
            self.committed_offset
        };
        Lag {
            position: behind(position),
            committed: behind(self.committed_offset),
        }
    }
}

/// A partition's lag, in messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lag {
    /// End − position: what is left to read.
    pub(crate) position: Option<i64>,
    /// End − committed offset: what a restart would read (again).
    pub(crate) committed: Option<i64>,
}

fn unknown() -> i64 {
    -1
}

/// The producers' context: counts acknowledged and failed deliveries.
#[derive(Default)]
pub(crate) struct DeliveryContext {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_failure: Mutex<Option<String>>,
}

impl DeliveryContext {
    /// Messages the broker acknowledged so far.
    pub(crate) fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Failures since the last call, with the first failure's reason; resets both.
    pub(crate) fn take_failures(&self) -> (u64, Option<String>) {
        let failed = self.failed.swap(0, Ordering::AcqRel);
        let first = lock(&self.first_failure).take();
        (failed, first)
    }
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_to_tracing("producer", level, fac, log_message);
    }

    fn error(&self, error: RdKafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", client = "producer", %error, "{reason}");
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, _message)) => {
                self.failed.fetch_add(1, Ordering::AcqRel);
                let mut first = lock(&self.first_failure);
                if first.is_none() {
                    *first = Some(error.to_string());
                }
                tracing::warn!(%error, "kafka delivery failed");
            }
        }
    }
}
