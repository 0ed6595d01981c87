//! The Kafka dead-letter topic: messages no codec could decode, kept byte for byte with why.
//!
//! For: never losing input silently. Each undecodable message goes to the dead-letter topic
//! with its original key and value and the headers in [`DEAD_LETTER_HEADERS`]; they are
//! counted. Flush before committing the source offsets they came from (at-least-once: a
//! message may reach the dead-letter topic twice, never zero times).

use rdkafka::message::{Header, OwnedHeaders};

use super::sink::Producer;
use super::{KafkaError, KafkaRecord, KafkaSinkConfig, RecordPayload};

/// Headers of a dead letter, in order: the codec's reason, and the topic, partition and offset
/// the message was read from (decimal text).
pub const DEAD_LETTER_HEADERS: [&str; 4] = [
    "kaizen.reason",
    "kaizen.source.topic",
    "kaizen.source.partition",
    "kaizen.source.offset",
];

/// Sends undecodable messages to a dead-letter topic. See the module docs.
pub struct KafkaDeadLetter {
    producer: Producer,
    count: u64,
}

impl KafkaDeadLetter {
    /// A dead-letter sink to `config.topic` (idempotent producer).
    pub fn new(config: &KafkaSinkConfig) -> Result<KafkaDeadLetter, KafkaError> {
        Ok(KafkaDeadLetter {
            producer: Producer::new(config, "dead-letter")?,
            count: 0,
        })
    }

    /// Sends `record` if it is [`RecordPayload::Undecodable`]; returns whether it did.
    pub fn send_record(&mut self, record: &KafkaRecord) -> Result<bool, KafkaError> {
        match &record.payload {
            RecordPayload::Events(_) => Ok(false),
            RecordPayload::Undecodable { bytes, key, reason } => {
                self.send(
                    &record.topic,
                    record.partition,
                    record.offset,
                    key.as_deref(),
                    bytes,
                    reason,
                )?;
                Ok(true)
            }
        }
    }

    /// Sends one message read from `topic`/`partition` at `offset` with its original `key`
    /// and `value`, and `reason`.
    pub fn send(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        value: &[u8],
        reason: &str,
    ) -> Result<(), KafkaError> {
        let partition = partition.to_string();
        let offset = offset.to_string();
        let values = [reason, topic, partition.as_str(), offset.as_str()];
        let headers = DEAD_LETTER_HEADERS.iter().zip(values).fold(
            OwnedHeaders::new_with_capacity(DEAD_LETTER_HEADERS.len()),
            |headers, (key, value)| {
                headers.insert(Header {
                    key,
                    value: Some(value),
                })
            },
        );
        self.producer.send(key, value, headers)?;
        self.count += 1;
        tracing::debug!(
            topic,
            partition,
            offset,
            reason,
            "sent to dead-letter topic"
        );
        Ok(())
    }

    /// Waits until every dead letter sent is acknowledged; fails if any was not.
    pub fn flush(&mut self) -> Result<(), KafkaError> {
        self.producer.flush()
    }

    /// Dead letters sent so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Dead letters the broker acknowledged so far.
    pub fn delivered(&self) -> u64 {
        self.producer.delivered()
    }

    /// The dead-letter topic.
    pub fn topic(&self) -> &str {
        self.producer.topic()
    }
}
