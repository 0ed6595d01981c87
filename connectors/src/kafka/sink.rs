//! Kafka sinks: insights as JSON keyed by incident id, over an idempotent producer whose
//! `flush` waits for the broker's acknowledgements and fails if any delivery failed.
//!
//! For: the insights topic ([`KafkaInsightSink`]) and, through the shared [`Producer`], the
//! dead-letter topic. A flushed insight is durable on the broker, so the driver may commit the
//! offsets it depends on; a failed flush means "do not commit" (the messages are read again
//! after a restart, and re-sent insights are idempotent by `(id, version)`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kaizen_model::Insight;
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;

use super::context::DeliveryContext;
use super::{client_config, scrub, KafkaError, KafkaSinkConfig};
use crate::InsightSink;

/// Header carrying the insight's version (decimal).
pub const INSIGHT_VERSION_HEADER: &str = "kaizen.insight.version";
/// Header carrying the insight's status (`open`, `updated`, `resolved`).
pub const INSIGHT_STATUS_HEADER: &str = "kaizen.insight.status";

/// An idempotent producer to one topic that counts deliveries.
pub(crate) struct Producer {
    producer: BaseProducer<DeliveryContext>,
    topic: String,
    flush_timeout: Duration,
    properties: BTreeMap<String, String>,
}

impl Producer {
    pub(crate) fn new(config: &KafkaSinkConfig, role: &str) -> Result<Producer, KafkaError> {
        config.validate()?;
        let client_id = format!("kaizen-{role}");
        let defaults = [("client.id", client_id.as_str()), ("linger.ms", "5")];
        let forced = [("enable.idempotence", "true")];
        let rd = client_config(&config.brokers, &config.properties, &defaults, &forced)?;
        let producer: BaseProducer<DeliveryContext> = rd
            .create_with_context(DeliveryContext::default())
            .map_err(|e| KafkaError::Client(scrub(e, &config.properties)))?;
        tracing::info!(brokers = %config.brokers, topic = %config.topic, role, "kafka sink ready");
        Ok(Producer {
            producer,
            topic: config.topic.clone(),
            flush_timeout: config.flush_timeout,
            properties: config.properties.clone(),
        })
    }

    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    /// Queues one message; when librdkafka's queue is full, serves deliveries until there is
    /// room (at most the flush timeout).
    pub(crate) fn send(
        &self,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: OwnedHeaders,
    ) -> Result<(), KafkaError> {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic)
            .payload(payload)
            .headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        let deadline = Instant::now() + self.flush_timeout;
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    self.producer.poll(Duration::ZERO);
                    return Ok(());
                }
                Err((RdKafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if Instant::now() < deadline =>
                {
                    record = back;
                    self.producer.poll(Duration::from_millis(50));
                }
                Err((e, _)) => {
                    return Err(KafkaError::Produce {
                        topic: self.topic.clone(),
                        reason: scrub(e, &self.properties),
                    })
                }
            }
        }
    }

    /// Waits until everything queued is acknowledged (or the flush timeout passes), then fails
    /// if any delivery since the last flush failed.
    pub(crate) fn flush(&self) -> Result<(), KafkaError> {
        let started = Instant::now();
        // Not `BaseProducer::flush(timeout)`: it polls in 100 ms slices, and a poll runs out
        // its whole slice however early the acknowledgements arrive, so every flush took at
        // least 100 ms — a tenth of a second on each shutdown, and insights held back that
        // long every time the driver flushes. Here each check costs a millisecond at most.
        let flushed = loop {
            match self.producer.flush(Duration::ZERO) {
                Err(RdKafkaError::Flush(RDKafkaErrorCode::OperationTimedOut))
                    if started.elapsed() < self.flush_timeout =>
                {
                    self.producer.poll(Duration::from_millis(1));
                }
                done => break done,
            }
        };
        let (failed, first) = self.producer.context().take_failures();
        if failed > 0 {
            return Err(KafkaError::Delivery {
                topic: self.topic.clone(),
                failed,
                first: scrub(first.unwrap_or_default(), &self.properties),
            });
        }
        match flushed {
            Ok(()) => Ok(()),
            Err(RdKafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)) => {
                Err(KafkaError::FlushTimeout {
                    topic: self.topic.clone(),
                    in_flight: self.producer.in_flight_count(),
                    secs: started.elapsed().as_secs_f64(),
                })
            }
            Err(e) => Err(KafkaError::Delivery {
                topic: self.topic.clone(),
                failed: 0,
                first: scrub(e, &self.properties),
            }),
        }
    }

    /// Messages the broker acknowledged so far.
    pub(crate) fn delivered(&self) -> u64 {
        self.producer.context().delivered()
    }
}

impl Drop for Producer {
    /// librdkafka purges what is still queued when a producer is destroyed: give it one
    /// flush first. What still fails was never acknowledged, so its source offsets were not
    /// committed and it is produced again after the restart.
    fn drop(&mut self) {
        if self.producer.in_flight_count() > 0 {
            if let Err(e) = self.flush() {
                tracing::warn!(error = %e, "kafka producer closed with undelivered messages");
            }
        }
    }
}

/// Insights as JSON to a Kafka topic: key = incident id, value = the insight as
/// `kaizen replay` prints it, headers [`INSIGHT_VERSION_HEADER`] and [`INSIGHT_STATUS_HEADER`].
/// Keyed by id, all versions of an incident land in one partition, in order; readers keep the
/// highest version per id (a re-sent version is identical).
pub struct KafkaInsightSink {
    producer: Producer,
    buf: Vec<u8>,
    emitted: u64,
}

impl KafkaInsightSink {
    /// A sink to `config.topic` (idempotent producer; nothing is sent before the first emit).
    pub fn new(config: &KafkaSinkConfig) -> Result<KafkaInsightSink, KafkaError> {
        Ok(KafkaInsightSink {
            producer: Producer::new(config, "insights")?,
            buf: Vec::with_capacity(4096),
            emitted: 0,
        })
    }

    /// Sends one insight version (queued; [`flush`](InsightSink::flush) waits for it).
    pub fn send(&mut self, insight: &Insight) -> Result<(), KafkaError> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, insight)
            .map_err(|e| KafkaError::Serialise(e.to_string()))?;
        let version = insight.version.to_string();
        let headers = OwnedHeaders::new_with_capacity(2)
            .insert(Header {
                key: INSIGHT_VERSION_HEADER,
                value: Some(version.as_str()),
            })
            .insert(Header {
                key: INSIGHT_STATUS_HEADER,
                value: Some(insight.status.as_str()),
            });
        self.producer
            .send(Some(insight.id.as_bytes()), &self.buf, headers)?;
        self.emitted += 1;
        Ok(())
    }

    /// Waits for every sent insight to be acknowledged; fails if any was not.
    pub fn flush_acked(&mut self) -> Result<(), KafkaError> {
        self.producer.flush()
    }

    /// Insight versions sent so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// Insight versions the broker acknowledged so far.
    pub fn delivered(&self) -> u64 {
        self.producer.delivered()
    }

    /// The destination topic.
    pub fn topic(&self) -> &str {
        self.producer.topic()
    }
}

impl InsightSink for KafkaInsightSink {
    fn emit(&mut self, insight: &Insight) -> std::io::Result<()> {
        self.send(insight).map_err(Into::into)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.flush_acked().map_err(Into::into)
    }
}
