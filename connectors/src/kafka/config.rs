//! Typed configuration of the Kafka source and sinks, deserialisable with serde.
//!
//! For: what an operator writes in `kaizen.toml` (`[kafka]`, `[[kafka.topics]]`, the insight
//! and dead-letter sinks). Formats are codec names (`alertmanager`, `otlp_proto_logs`, …,
//! `auto`); durations are humantime strings (`"30s"`) or integer milliseconds; `properties`
//! go to librdkafka unchanged. `Debug` hides the values of secret-looking properties.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{redacted, KafkaError};
use crate::codecs::Format;

/// The Kafka source: which brokers, which consumer group, which topics in which format.
///
/// ```
/// use kaizen_connectors::kafka::KafkaSourceConfig;
/// let config: KafkaSourceConfig = serde_json::from_str(r#"{
///     "brokers": "kafka-1:9092,kafka-2:9092",
///     "group_id": "kaizen",
///     "topics": [{"name": "alerts", "format": "alertmanager"}, {"name": "otlp_logs"}],
///     "properties": {"security.protocol": "SASL_SSL", "sasl.password": "hunter2"}
/// }"#).unwrap();
/// assert_eq!(config.topics[1].format.name(), "auto");
/// assert!(!format!("{config:?}").contains("hunter2"));
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// Bootstrap servers, `host:port` separated by commas.
    pub brokers: String,
    /// The consumer group all workers (and all kaizen processes) join.
    pub group_id: String,
    /// Topics to read, each with its format.
    pub topics: Vec<KafkaTopicConfig>,
    /// librdkafka consumer properties (`security.protocol`, `sasl.*`, `ssl.*`, …), passed as
    /// is. kaizen's defaults (`auto.offset.reset=earliest`, `statistics.interval.ms=5000` for
    /// the lag metric, `client.id=kaizen`) apply unless set here; `enable.auto.commit` and
    /// `enable.auto.offset.store` must stay `false`.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Most events one [`poll`](super::KafkaSource::poll) returns (a batch message, such as
    /// an OTLP export request, counts for its records; one message always fits). Counting
    /// messages let a backlog of OTLP batches arrive as 400k events per poll: seconds of
    /// latency and a large resident set before the dataflow could step.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
}

fn default_max_batch() -> usize {
    4096
}

impl KafkaSourceConfig {
    /// A config reading `topics` (name, format) with default properties.
    pub fn new(brokers: &str, group_id: &str, topics: &[(&str, Format)]) -> Self {
        KafkaSourceConfig {
            brokers: brokers.into(),
            group_id: group_id.into(),
            topics: topics
                .iter()
                .map(|(name, format)| KafkaTopicConfig {
                    name: (*name).into(),
                    format: *format,
                })
                .collect(),
            properties: BTreeMap::new(),
            max_batch: default_max_batch(),
        }
    }

    /// Checks what librdkafka would not: a group, at least one topic, no topic twice.
    pub fn validate(&self) -> Result<(), KafkaError> {
        if self.group_id.trim().is_empty() {
            return Err(KafkaError::Config("`group_id` is empty".into()));
        }
        if self.topics.is_empty() {
            return Err(KafkaError::Config("no `topics` to read".into()));
        }
        let mut seen = HashSet::new();
        for t in &self.topics {
            if t.name.trim().is_empty() {
                return Err(KafkaError::Config("a topic has an empty name".into()));
            }
            if !seen.insert(t.name.as_str()) {
                return Err(KafkaError::Config(format!(
                    "topic {:?} listed twice",
                    t.name
                )));
            }
        }
        if self.max_batch == 0 {
            return Err(KafkaError::Config("`max_batch` must be at least 1".into()));
        }
        Ok(())
    }
}

impl fmt::Debug for KafkaSourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSourceConfig")
            .field("brokers", &self.brokers)
            .field("group_id", &self.group_id)
            .field("topics", &self.topics)
            .field("properties", &redacted(&self.properties))
            .field("max_batch", &self.max_batch)
            .finish()
    }
}

/// One topic and the format its messages are in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaTopicConfig {
    /// The topic name (exact; no patterns).
    pub name: String,
    /// A codec name ([`Format::ALL`]); default `auto` (detected per message).
    #[serde(default = "auto", with = "format_name")]
    pub format: Format,
}

fn auto() -> Format {
    Format::Auto
}

/// A Kafka sink: where insights or dead letters go.
///
/// ```
/// use kaizen_connectors::kafka::KafkaSinkConfig;
/// let c: KafkaSinkConfig =
///     serde_json::from_str(r#"{"brokers":"k:9092","topic":"kaizen.insights","flush_timeout":"10s"}"#)
///         .unwrap();
/// assert_eq!(c.flush_timeout.as_secs(), 10);
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// Bootstrap servers, `host:port` separated by commas.
    pub brokers: String,
    /// The destination topic.
    pub topic: String,
    /// librdkafka producer properties, passed as is. kaizen's defaults: `client.id=kaizen`,
    /// `linger.ms=5`, `compression.type=lz4`; `enable.idempotence` must stay `true`.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// How long `flush` waits for the broker's acknowledgements before it fails.
    #[serde(default = "default_flush_timeout", with = "crate::duration_serde")]
    pub flush_timeout: Duration,
}

fn default_flush_timeout() -> Duration {
    Duration::from_secs(30)
}

impl KafkaSinkConfig {
    /// A sink config with default properties.
    pub fn new(brokers: &str, topic: &str) -> Self {
        KafkaSinkConfig {
            brokers: brokers.into(),
            topic: topic.into(),
            properties: BTreeMap::new(),
            flush_timeout: default_flush_timeout(),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), KafkaError> {
        if self.topic.trim().is_empty() {
            return Err(KafkaError::Config("sink `topic` is empty".into()));
        }
        Ok(())
    }
}

impl fmt::Debug for KafkaSinkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSinkConfig")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("properties", &redacted(&self.properties))
            .field("flush_timeout", &self.flush_timeout)
            .finish()
    }
}

/// [`Format`] as its config name.
mod format_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::codecs::Format;

    pub fn serialize<S: Serializer>(f: &Format, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(f.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Format, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_read_by_name_and_unknown_ones_are_refused() {
        let t: KafkaTopicConfig =
            serde_json::from_str(r#"{"name":"x","format":"otlp-proto-logs"}"#).unwrap();
        assert_eq!(t.format.name(), "otlp_proto_logs");
        let err = serde_json::from_str::<KafkaTopicConfig>(r#"{"name":"x","format":"nope"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown format"), "{err}");
        let back = serde_json::to_string(&t).unwrap();
        assert_eq!(back, r#"{"name":"x","format":"otlp_proto_logs"}"#);
    }

    #[test]
    fn validation_catches_empty_and_duplicate_topics() {
        let mut c = KafkaSourceConfig::new("k:9092", "g", &[("a", Format::Native)]);
        assert!(c.validate().is_ok());
        c.topics.push(c.topics[0].clone());
        assert!(c.validate().unwrap_err().to_string().contains("twice"));
        c.topics.clear();
        assert!(c.validate().is_err());
        let c = KafkaSourceConfig::new("k:9092", " ", &[("a", Format::Native)]);
        assert!(c.validate().is_err());
    }

    #[test]
    fn sink_debug_hides_secrets() {
        let mut c = KafkaSinkConfig::new("k:9092", "t");
        c.properties
            .insert("ssl.key.password".into(), "s3cret".into());
        assert!(!format!("{c:?}").contains("s3cret"));
        let c: KafkaSinkConfig =
            serde_json::from_str(r#"{"brokers":"k","topic":"t","flush_timeout":1500}"#).unwrap();
        assert_eq!(c.flush_timeout, Duration::from_millis(1500));
    }
}
