//! The Kafka source: one consumer per timely worker, all in one group, decoding each message
//! with its topic's codec into a [`KafkaRecord`] that keeps the message's coordinates.
//!
//! For: the live driver. It polls ([`KafkaSource::poll`]), feeds events into the dataflow,
//! tracks per-partition progress, and commits offsets explicitly ([`KafkaSource::commit`],
//! [`KafkaSource::commit_async`]) once what depends on them is delivered. Rebalances are
//! handled by librdkafka inside `poll`; the driver learns of them through
//! [`KafkaSource::take_assignment_changes`] (to drop a revoked partition's watermark and
//! pending offsets, to start tracking a new one, and to know which new ones have nothing to
//! read).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kaizen_model::{Event, Timestamp};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::context::SourceContext;
use super::{client_config, scrub, KafkaError, KafkaSourceConfig};
use crate::codecs::{decode_with, DecodeContext, Format};
use crate::metrics::{Histogram, Registry, DECODE_DURATION};

/// A topic partition. Displays as `topic/partition`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionId {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition number.
    pub partition: i32,
}

impl PartitionId {
    /// `topic/partition`.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        PartitionId {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// A change of the partitions this source owns, in the order they happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssignmentChange {
    /// These partitions are now this source's; reading resumes at their committed offsets.
    Assigned(Vec<PartitionId>),
    /// These partitions are no longer this source's (another member reads them from their
    /// committed offsets): drop their watermarks and pending offsets.
    Revoked(Vec<PartitionId>),
    /// Of the partitions just assigned, these had nothing to read when they were (reading
    /// resumes at their end): they need not hold the watermark until they deliver.
    AtEnd(Vec<PartitionId>),
}

/// One Kafka message, decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct KafkaRecord {
    /// Where it came from.
    pub topic: Arc<str>,
    /// Its partition.
    pub partition: i32,
    /// Its offset; commit [`next_offset`](Self::next_offset) once it is processed.
    pub offset: i64,
    /// The broker timestamp (create or log-append time), when there is one.
    pub timestamp: Option<Timestamp>,
    /// Its events, or why there are none.
    pub payload: RecordPayload,
}

/// What a message turned into.
#[derive(Clone, Debug, PartialEq)]
pub enum RecordPayload {
    /// The decoded events (a message can be a batch; a message without a value has none).
    Events(Vec<Event>),
    /// The codec rejected the message: the original bytes, for the dead-letter topic.
    Undecodable {
        /// The message value, unchanged.
        bytes: Vec<u8>,
        /// The message key, unchanged.
        key: Option<Vec<u8>>,
        /// The codec's reason.
        reason: String,
    },
}

/// A message's coordinates, lent to [`KafkaSource::poll_with`]'s callback.
#[derive(Clone, Copy)]
pub struct RecordMeta<'a> {
    /// Where it came from (the source's shared name: clone it rather than copy the text).
    pub topic: &'a Arc<str>,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    message: &'a BorrowedMessage<'a>,
}

impl RecordMeta<'_> {
    /// The broker timestamp (create or log-append time), when there is one: read on demand,
    /// since it is a call into librdkafka per message that the engine does not need.
    pub fn timestamp(&self) -> Option<Timestamp> {
        broker_time(self.message)
    }
}

impl std::fmt::Debug for RecordMeta<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordMeta")
            .field("topic", self.topic)
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

/// A message as [`KafkaSource::poll_with`] lends it.
#[derive(Debug)]
pub enum Decoded<'a> {
    /// The decoded events (none for a message without a value); take the ones to keep.
    Events(&'a mut Vec<Event>),
    /// The codec rejected the message.
    Undecodable {
        /// The message value, unchanged.
        bytes: &'a [u8],
        /// The message key, unchanged.
        key: Option<&'a [u8]>,
        /// The codec's reason.
        reason: String,
    },
}

impl KafkaRecord {
    /// Its topic partition.
    pub fn partition_id(&self) -> PartitionId {
        PartitionId {
            topic: self.topic.clone(),
            partition: self.partition,
        }
    }

    /// The offset to commit once this record is processed (`offset + 1`).
    pub fn next_offset(&self) -> i64 {
        self.offset + 1
    }

    /// Its events (none when undecodable).
    pub fn events(&self) -> &[Event] {
        match &self.payload {
            RecordPayload::Events(events) => events,
            RecordPayload::Undecodable { .. } => &[],
        }
    }

    /// The latest event time among its events.
    pub fn max_event_time(&self) -> Option<Timestamp> {
        self.events().iter().map(|e| e.ts).max()
    }
}

/// A partition this source owns, with its progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionState {
    /// The partition.
    pub partition: PartitionId,
    /// The next offset this source will return (after the last one it returned), if it
    /// returned any since it was assigned.
    pub position: Option<i64>,
    /// Messages left to read: the partition's end (high watermark, or last stable offset
    /// under `read_committed`) minus the position, from librdkafka's statistics
    /// (`statistics.interval.ms`, 5 s by default here); `None` until a report has it.
    pub lag: Option<i64>,
    /// Messages after the committed offset (what a restart would read again), from the same
    /// statistics.
    pub committed_lag: Option<i64>,
}

/// Counters since the source started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Messages returned.
    pub messages: u64,
    /// Events decoded.
    pub events: u64,
    /// Messages the codec rejected.
    pub undecodable: u64,
    /// Consumer errors librdkafka reported and retried (broker down, authentication, …).
    pub errors: u64,
}

/// A consumer-group member reading the configured topics. See the module docs.
pub struct KafkaSource {
    consumer: BaseConsumer<SourceContext>,
    topics: HashMap<String, (Arc<str>, Format)>,
    max_batch: usize,
    positions: HashMap<PartitionId, i64>,
    properties: BTreeMap<String, String>,
    stats: SourceStats,
    /// One message's events while the poll's callback looks at them.
    scratch: Vec<Event>,
    /// Per topic, where decode times go (see [`KafkaSource::time_decodes_into`]).
    decode_time: HashMap<String, Histogram>,
}

impl KafkaSource {
    /// Joins `config.group_id` and subscribes to the topics. `worker` names this member
    /// (`client.id` becomes `kaizen-w{worker}` unless set). The group join itself happens
    /// during the first polls.
    pub fn new(config: &KafkaSourceConfig, worker: usize) -> Result<KafkaSource, KafkaError> {
        config.validate()?;
        let client_id = format!("kaizen-w{worker}");
        let defaults = [
            ("client.id", client_id.as_str()),
            ("auto.offset.reset", "earliest"),
            ("statistics.interval.ms", "5000"),
            // librdkafka pauses fetching for a second once its queue is full (the 1000 ms
            // default); kaizen drains a full queue in less, then sat idle for the rest
            // (kafka-throughput: +15–23 % events/s at 10 ms).
            ("fetch.queue.backoff.ms", "10"),
        ];
        let forced = [
            ("group.id", config.group_id.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
        ];
        let mut rd = client_config(&config.brokers, &config.properties, &defaults, &forced)?;
        rd.set("group.id", config.group_id.trim());
        let consumer: BaseConsumer<SourceContext> = rd
            .create_with_context(SourceContext::default())
            .map_err(|e| KafkaError::Client(scrub(e, &config.properties)))?;
        let names: Vec<&str> = config.topics.iter().map(|t| t.name.as_str()).collect();
        consumer
            .subscribe(&names)
            .map_err(|e| KafkaError::Subscribe(scrub(e, &config.properties)))?;
        tracing::info!(
            brokers = %config.brokers,
            group = %config.group_id,
            topics = %names.join(","),
            worker,
            "kafka source subscribed"
        );
        let topics = config
            .topics
            .iter()
            .map(|t| (t.name.clone(), (Arc::from(t.name.as_str()), t.format)))
            .collect();
        Ok(KafkaSource {
            consumer,
            topics,
            max_batch: config.max_batch,
            positions: HashMap::new(),
            properties: config.properties.clone(),
            stats: SourceStats::default(),
            scratch: Vec::new(),
            decode_time: HashMap::new(),
        })
    }

    /// Records the time to decode each message in `registry`'s
    /// `kaizen_decode_duration_seconds{source="kafka", topic, format}` (shared by every worker
    /// reading the topic).
    pub fn time_decodes_into(&mut self, registry: &Registry) {
        for (name, (_, format)) in &self.topics {
            let labels = [
                ("source", "kafka"),
                ("topic", name.as_str()),
                ("format", format.name()),
            ];
            self.decode_time
                .insert(name.clone(), registry.histogram(&DECODE_DURATION, &labels));
        }
    }

    /// Waits up to `timeout` for a message, then takes whatever else is already fetched (until
    /// the records hold `max_batch` events), appending the records to `out`; returns how many
    /// records it added.
    /// Rebalances, statistics and retried errors are served here too, so call it regularly
    /// even when idle. Only librdkafka's fatal errors are returned.
    pub fn poll(
        &mut self,
        timeout: Duration,
        out: &mut Vec<KafkaRecord>,
    ) -> Result<usize, KafkaError> {
        self.poll_with(timeout, |meta, decoded| {
            let payload = match decoded {
                Decoded::Events(events) => RecordPayload::Events(std::mem::take(events)),
                Decoded::Undecodable { bytes, key, reason } => RecordPayload::Undecodable {
                    bytes: bytes.to_vec(),
                    key: key.map(<[u8]>::to_vec),
                    reason,
                },
            };
            out.push(KafkaRecord {
                topic: meta.topic.clone(),
                partition: meta.partition,
                offset: meta.offset,
                timestamp: meta.timestamp(),
                payload,
            });
        })
    }

    /// [`poll`](Self::poll) without a [`KafkaRecord`] per message: each message is decoded into
    /// a buffer this source reuses and handed to `f` with its coordinates, while librdkafka
    /// still holds its bytes. `f` takes the events it keeps out of the buffer (what it leaves
    /// is dropped). Returns how many messages it handed over.
    pub fn poll_with(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(&RecordMeta<'_>, Decoded<'_>),
    ) -> Result<usize, KafkaError> {
        let mut wait = timeout;
        let mut added = 0;
        let mut events = 0;
        // Consecutive messages mostly come from one partition: its position is stored when the
        // partition changes, not hashed per message.
        let mut last: Option<(Arc<str>, i32, i64)> = None;
        // The topic of the message before, with its format: looked up when the topic changes,
        // and its shared name lent rather than cloned per message (a reference count is two
        // atomic operations).
        let mut current: Option<(Arc<str>, Format, Option<Histogram>)> = None;
        while events < self.max_batch {
            let Some(result) = self.consumer.poll(wait) else {
                break;
            };
            wait = Duration::ZERO;
            match result {
                Ok(message) => {
                    let name = message.topic();
                    let (topic, format, timer) = match &mut current {
                        Some((t, f, h)) if **t == *name => (&*t, *f, h.as_ref()),
                        slot => {
                            let timer = self.decode_time.get(name).cloned();
                            let (t, f, h) = slot.insert(match self.topics.get(name) {
                                Some((topic, format)) => (topic.clone(), *format, timer),
                                None => (Arc::from(name), Format::Auto, timer),
                            });
                            (&*t, *f, h.as_ref())
                        }
                    };
                    let meta = RecordMeta {
                        topic,
                        partition: message.partition(),
                        offset: message.offset(),
                        message: &message,
                    };
                    self.scratch.clear();
                    let started = timer.map(|_| Instant::now());
                    let decoded =
                        decode(format, name, &mut self.stats, &message, &mut self.scratch);
                    if let (Some(h), Some(t)) = (timer, started) {
                        h.observe_duration(t.elapsed());
                    }
                    events += match &decoded {
                        Decoded::Events(e) => e.len().max(1),
                        Decoded::Undecodable { .. } => 1,
                    };
                    f(&meta, decoded);
                    added += 1;
                    match &mut last {
                        Some((t, p, o)) if Arc::ptr_eq(t, topic) && *p == meta.partition => {
                            *o = meta.offset + 1;
                        }
                        _ => {
                            let next = (topic.clone(), meta.partition, meta.offset + 1);
                            self.store_position(last.replace(next));
                        }
                    }
                }
                Err(RdKafkaError::PartitionEOF(_)) => {}
                Err(e @ RdKafkaError::MessageConsumptionFatal(_)) => {
                    self.store_position(last.take());
                    return Err(KafkaError::Fatal(scrub(e, &self.properties)));
                }
                Err(e) => {
                    self.stats.errors += 1;
                    tracing::warn!(error = %scrub(e, &self.properties), "kafka consumer error");
                }
            }
        }
        self.store_position(last);
        Ok(added)
    }

    /// Records where a run of messages from one partition ended (its next offset).
    fn store_position(&mut self, run: Option<(Arc<str>, i32, i64)>) {
        if let Some((topic, partition, next)) = run {
            self.positions
                .insert(PartitionId::new(topic, partition), next);
        }
    }

    /// Commits `(topic, partition, next_offset)` synchronously (the next offset to read, i.e.
    /// the last processed offset + 1; the highest wins when a partition appears twice).
    /// Partitions this source no longer owns are skipped: their new owner re-reads from the
    /// last commit, which is at-least-once. Returns how many partitions were committed.
    pub fn commit<T: AsRef<str>>(
        &mut self,
        offsets: &[(T, i32, i64)],
    ) -> Result<usize, KafkaError> {
        let count = self.commit_with(offsets, CommitMode::Sync)?;
        // Its outcome is known: an earlier asynchronous failure is covered by it.
        self.consumer.context().take_commit_failure();
        Ok(count)
    }

    /// [`commit`](Self::commit) without waiting for the broker: the outcome arrives during a
    /// later poll. Fails with the last asynchronous commit failure seen since the previous
    /// call (this commit is still sent).
    pub fn commit_async<T: AsRef<str>>(
        &mut self,
        offsets: &[(T, i32, i64)],
    ) -> Result<usize, KafkaError> {
        let count = self.commit_with(offsets, CommitMode::Async)?;
        match self.consumer.context().take_commit_failure() {
            Some(e) => Err(KafkaError::Commit(e)),
            None => Ok(count),
        }
    }

    fn commit_with<T: AsRef<str>>(
        &mut self,
        offsets: &[(T, i32, i64)],
        mode: CommitMode,
    ) -> Result<usize, KafkaError> {
        let owned: HashSet<(String, i32)> = self
            .consumer
            .assignment()
            .map_err(|e| KafkaError::Commit(scrub(e, &self.properties)))?
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        let mut wanted: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for (topic, partition, offset) in offsets {
            let key = (topic.as_ref(), *partition);
            let slot = wanted.entry(key).or_insert(*offset);
            *slot = (*slot).max(*offset);
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in wanted {
            if owned.contains(&(topic.to_owned(), partition)) {
                tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
                    .map_err(|e| KafkaError::Commit(e.to_string()))?;
            } else {
                tracing::debug!(
                    topic,
                    partition,
                    offset,
                    "skipping commit of a partition not owned"
                );
            }
        }
        let count = tpl.count();
        if count == 0 {
            return Ok(0);
        }
        self.consumer
            .commit(&tpl, mode)
            .map_err(|e| KafkaError::Commit(scrub(e, &self.properties)))?;
        tracing::debug!(partitions = count, "kafka offsets committed");
        Ok(count)
    }

    /// The partitions this source owns now, sorted.
    pub fn assignment(&self) -> Result<Vec<PartitionId>, KafkaError> {
        let tpl = self
            .consumer
            .assignment()
            .map_err(|e| KafkaError::Client(scrub(e, &self.properties)))?;
        let mut out: Vec<PartitionId> = tpl
            .elements()
            .iter()
            .map(|e| PartitionId::new(e.topic(), e.partition()))
            .collect();
        out.sort();
        Ok(out)
    }

    /// The owned partitions with their position and lag (for metrics).
    pub fn partitions(&self) -> Result<Vec<PartitionState>, KafkaError> {
        let ctx = self.consumer.context();
        Ok(self
            .assignment()?
            .into_iter()
            .map(|p| {
                let lag = ctx.lag(&p);
                PartitionState {
                    position: self.positions.get(&p).copied(),
                    lag: lag.position,
                    committed_lag: lag.committed,
                    partition: p,
                }
            })
            .collect())
    }

    /// Assignment changes since the last call, oldest first. Positions of revoked
    /// partitions are forgotten here. An assignment is followed by [`AssignmentChange::AtEnd`]
    /// for its partitions with nothing to read, found by asking the broker (on this thread:
    /// one round trip, then one per partition, at most two seconds in all).
    pub fn take_assignment_changes(&mut self) -> Vec<AssignmentChange> {
        let mut changes = Vec::new();
        for change in self.consumer.context().take_changes() {
            let at_end = match &change {
                AssignmentChange::Revoked(parts) => {
                    for p in parts {
                        self.positions.remove(p);
                    }
                    Vec::new()
                }
                AssignmentChange::Assigned(parts) => self.at_end(parts),
                AssignmentChange::AtEnd(_) => Vec::new(),
            };
            changes.push(change);
            if !at_end.is_empty() {
                changes.push(AssignmentChange::AtEnd(at_end));
            }
        }
        changes
    }

    /// Of `parts`, those with nothing to read from where the group resumes them: the
    /// committed offset (or, without one, where `auto.offset.reset` starts) at or past the end.
    /// Any doubt — an error, a timeout, a reset policy other than earliest or latest — counts
    /// as something to read, which only means the partition holds the watermark until it
    /// delivers or idles, as before. The questions share one deadline: a slow or absent broker
    /// must not stall the worker for a timeout per partition.
    fn at_end(&self, parts: &[PartitionId]) -> Vec<PartitionId> {
        let deadline = Instant::now() + Duration::from_secs(2);
        let left = || deadline.saturating_duration_since(Instant::now());
        let mut tpl = TopicPartitionList::new();
        for p in parts {
            tpl.add_partition(&p.topic, p.partition);
        }
        let Ok(committed) = self.consumer.committed_offsets(tpl, left()) else {
            return Vec::new();
        };
        let reset = self
            .properties
            .get("auto.offset.reset")
            .map_or("earliest", |r| r.trim());
        parts
            .iter()
            .filter(|p| {
                let left = left();
                if left.is_zero() {
                    return false;
                }
                let Ok((low, high)) = self.consumer.fetch_watermarks(&p.topic, p.partition, left)
                else {
                    return false;
                };
                let resumes = committed
                    .find_partition(&p.topic, p.partition)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(o) if (low..=high).contains(&o) => Some(o),
                        _ => None,
                    });
                let start = match (resumes, reset) {
                    (Some(o), _) => o,
                    (None, "earliest" | "smallest" | "beginning") => low,
                    (None, "latest" | "largest" | "end") => high,
                    (None, _) => return false,
                };
                start >= high
            })
            .cloned()
            .collect()
    }

    /// The group's committed offsets for the owned partitions (`None`: nothing committed),
    /// asked of the broker.
    pub fn committed(
        &self,
        timeout: Duration,
    ) -> Result<Vec<(PartitionId, Option<i64>)>, KafkaError> {
        let tpl = self
            .consumer
            .committed(timeout)
            .map_err(|e| KafkaError::Client(scrub(e, &self.properties)))?;
        Ok(tpl
            .elements()
            .iter()
            .map(|e| {
                let offset = match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                };
                (PartitionId::new(e.topic(), e.partition()), offset)
            })
            .collect())
    }

    /// Counters since the source started.
    pub fn stats(&self) -> SourceStats {
        SourceStats {
            errors: self.stats.errors + self.consumer.context().errors(),
            ..self.stats
        }
    }
}

/// The broker timestamp (create or log-append time), when there is one.
fn broker_time(message: &BorrowedMessage<'_>) -> Option<Timestamp> {
    message
        .timestamp()
        .to_millis()
        .and_then(|ms| u64::try_from(ms).ok())
        .filter(|&ms| ms > 0)
        .map(Timestamp::from_millis)
}

/// Decodes one message with its topic's format (unknown topics: `auto`) into `scratch`.
fn decode<'a>(
    format: Format,
    topic: &str,
    stats: &mut SourceStats,
    message: &'a BorrowedMessage<'_>,
    scratch: &'a mut Vec<Event>,
) -> Decoded<'a> {
    stats.messages += 1;
    let Some(bytes) = message.payload() else {
        return Decoded::Events(scratch);
    };
    let ctx = DecodeContext {
        topic: Some(topic),
        received: broker_time(message),
    };
    match decode_with(format, bytes, &ctx, scratch) {
        Ok(n) => {
            stats.events += n as u64;
            Decoded::Events(scratch)
        }
        Err(e) => {
            stats.undecodable += 1;
            tracing::debug!(
                topic,
                partition = message.partition(),
                offset = message.offset(),
                error = %e,
                "undecodable kafka message"
            );
            Decoded::Undecodable {
                bytes,
                key: message.key(),
                reason: e.to_string(),
            }
        }
    }
}
