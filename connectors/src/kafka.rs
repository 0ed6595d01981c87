//! Kafka in and out: a consumer-group source that decodes every message with its topic's codec,
//! and producers for insights and for messages that could not be decoded.
//!
//! For: the live driver (`kaizen run`). One [`KafkaSource`] per timely worker, all in one
//! consumer group, so each worker owns a share of the partitions and Kafka moves them between
//! workers (and kaizen processes) on rebalance. Offsets are **never** committed by librdkafka on
//! its own (`enable.auto.commit=false`, `enable.auto.offset.store=false`): the driver commits
//! with [`KafkaSource::commit`] once the insights (and dead letters) that depend on a message are
//! delivered ([`KafkaInsightSink`] and [`KafkaDeadLetter`] `flush` wait for the broker's acks).
//! That is at-least-once end to end; insights are idempotent by `(id, version)`. The
//! bookkeeping for it — which offsets may be committed, event time per partition — is the
//! engine's (`kaizen_engine`'s live driver), over the records and [`AssignmentChange`]s a
//! source hands it.
//!
//! Not for: decoding (that is [`crate::codecs`]), nor reading the TOML file and `KAIZEN_…`
//! overrides (the CLI does that).
//!
//! librdkafka is built from source with TLS (OpenSSL), SASL PLAIN, SCRAM and OAUTHBEARER, and
//! zstd; GSSAPI (Kerberos) needs Cyrus libsasl2 and is the `gssapi` feature. Every `properties`
//! entry of a config goes to librdkafka as is. Values of keys that look secret (`sasl.password`, `ssl.key.password`, …)
//! are never printed: not by `Debug`, not in errors.

use std::collections::BTreeMap;

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::ClientConfig;

mod config;
mod context;
mod dead_letter;
mod sink;
mod source;

pub use config::{KafkaSinkConfig, KafkaSourceConfig, KafkaTopicConfig};
pub use dead_letter::{KafkaDeadLetter, DEAD_LETTER_HEADERS};
pub use sink::{KafkaInsightSink, INSIGHT_STATUS_HEADER, INSIGHT_VERSION_HEADER};
pub use source::{
    AssignmentChange, Decoded, KafkaRecord, KafkaSource, PartitionId, PartitionState, RecordMeta,
    RecordPayload, SourceStats,
};

/// What went wrong talking to Kafka. Messages never contain secret property values.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// The config is incomplete or contradicts what the connector needs.
    #[error("kafka config: {0}")]
    Config(String),
    /// librdkafka refused the config or could not create the client.
    #[error("kafka client: {0}")]
    Client(String),
    /// Subscribing to the topics failed.
    #[error("kafka subscribe: {0}")]
    Subscribe(String),
    /// The consumer hit an error it cannot recover from (librdkafka's fatal errors).
    #[error("kafka consumer: fatal: {0}")]
    Fatal(String),
    /// Committing offsets failed (for example during a rebalance); nothing is lost: the
    /// messages are delivered again from the last committed offset.
    #[error("kafka commit: {0}")]
    Commit(String),
    /// A message could not be queued for sending.
    #[error("kafka produce to {topic}: {reason}")]
    Produce {
        /// The destination topic.
        topic: String,
        /// librdkafka's reason.
        reason: String,
    },
    /// Messages were not acknowledged by the broker.
    #[error("kafka delivery to {topic}: {failed} message(s) failed; first: {first}")]
    Delivery {
        /// The destination topic.
        topic: String,
        /// How many failed since the last flush.
        failed: u64,
        /// The first failure's reason.
        first: String,
    },
    /// `flush` ran out of time with messages still in flight.
    #[error("kafka flush of {topic}: {in_flight} message(s) still in flight after {secs:.1}s")]
    FlushTimeout {
        /// The destination topic.
        topic: String,
        /// Messages not yet acknowledged.
        in_flight: i32,
        /// The time waited.
        secs: f64,
    },
    /// An insight could not be serialised.
    #[error("kafka: cannot serialise insight: {0}")]
    Serialise(String),
}

impl From<KafkaError> for std::io::Error {
    fn from(e: KafkaError) -> Self {
        std::io::Error::other(e)
    }
}

/// Whether a librdkafka property holds (or points at) a secret, so its value must never be
/// printed: passwords, secrets, tokens, private keys, keystores, SASL/OIDC/JAAS configs.
pub fn is_secret_property(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "credential",
        "ssl.key",
        "keystore",
        "sasl.oauthbearer.config",
        "jaas",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// Properties as `key=value` pairs with secret values replaced by `***`, for `Debug` and logs.
pub(crate) fn redacted(properties: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    properties
        .iter()
        .map(|(k, v)| {
            let shown = if is_secret_property(k) { "***" } else { v };
            (k.as_str(), shown)
        })
        .collect()
}

/// Removes every secret property value from `text` (librdkafka's config errors quote values).
pub(crate) fn scrub(text: impl ToString, properties: &BTreeMap<String, String>) -> String {
    let mut text = text.to_string();
    for (k, v) in properties {
        if is_secret_property(k) && !v.is_empty() {
            text = text.replace(v.as_str(), "***");
        }
    }
    text
}

/// A librdkafka config: `bootstrap.servers`, kaizen's `defaults` unless the user set them, the
/// user's `properties`, then the `forced` settings the connector's guarantees rely on (a user
/// value that contradicts one is an error, not silently overridden).
pub(crate) fn client_config(
    brokers: &str,
    properties: &BTreeMap<String, String>,
    defaults: &[(&str, &str)],
    forced: &[(&str, &str)],
) -> Result<ClientConfig, KafkaError> {
    if brokers.trim().is_empty() {
        return Err(KafkaError::Config("`brokers` is empty".into()));
    }
    for (key, want) in forced {
        if let Some(have) = properties.get(*key) {
            if !have.trim().eq_ignore_ascii_case(want) {
                return Err(KafkaError::Config(format!(
                    "property {key}={have} is not supported: kaizen needs {key}={want}"
                )));
            }
        }
    }
    if !cfg!(feature = "gssapi") {
        if let Some(mechanism) = properties
            .get("sasl.mechanisms")
            .or_else(|| properties.get("sasl.mechanism"))
            .filter(|m| m.trim().eq_ignore_ascii_case("GSSAPI"))
        {
            return Err(KafkaError::Config(format!(
                "sasl.mechanisms={mechanism} (Kerberos) needs kaizen built with `--features gssapi` \
                 (links Cyrus libsasl2: Debian's libsasl2-dev); PLAIN, SCRAM-SHA-256/512 and \
                 OAUTHBEARER work in every build"
            )));
        }
    }
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers.trim());
    for (key, value) in defaults {
        if !properties.contains_key(*key) {
            config.set(*key, *value);
        }
    }
    for (key, value) in properties {
        config.set(key, value);
    }
    for (key, value) in forced {
        config.set(*key, *value);
    }
    config.set_log_level(RDKafkaLogLevel::Info);
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn secret_keys_are_recognised() {
        for k in [
            "sasl.password",
            "ssl.key.password",
            "ssl.key.pem",
            "ssl.keystore.password",
            "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.config",
        ] {
            assert!(is_secret_property(k), "{k}");
        }
        for k in [
            "sasl.username",
            "security.protocol",
            "sasl.mechanism",
            "client.id",
        ] {
            assert!(!is_secret_property(k), "{k}");
        }
    }

    #[test]
    fn redaction_and_scrubbing_hide_values() {
        let p = props(&[("sasl.password", "hunter2"), ("sasl.username", "kaizen")]);
        let shown = format!("{:?}", redacted(&p));
        assert!(
            !shown.contains("hunter2") && shown.contains("kaizen"),
            "{shown}"
        );
        assert_eq!(scrub("bad value hunter2 for x", &p), "bad value *** for x");
    }

    /// librdkafka refuses to create a client whose config needs a feature it was built
    /// without, so this proves the build has TLS, SASL (SCRAM; GSSAPI with the `gssapi`
    /// feature, a clear refusal naming the feature without it) and zstd.
    #[test]
    fn librdkafka_is_built_with_tls_sasl_and_zstd() {
        let mut config = KafkaSinkConfig::new("127.0.0.1:1", "t");
        for (k, v) in [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "GSSAPI"),
            ("sasl.kerberos.min.time.before.relogin", "0"),
        ] {
            config.properties.insert(k.into(), v.into());
        }
        #[cfg(feature = "gssapi")]
        if let Err(e) = KafkaInsightSink::new(&config) {
            panic!("GSSAPI over TLS: {e}");
        }
        #[cfg(not(feature = "gssapi"))]
        match KafkaInsightSink::new(&config) {
            Ok(_) => panic!("GSSAPI accepted without the feature"),
            Err(e) => assert!(e.to_string().contains("--features gssapi"), "{e}"),
        }
        config.properties.clear();
        for (k, v) in [
            ("security.protocol", "SASL_SSL"),
            ("compression.type", "zstd"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.username", "kaizen"),
            ("sasl.password", "hunter2"),
        ] {
            config.properties.insert(k.into(), v.into());
        }
        if let Err(e) = KafkaInsightSink::new(&config) {
            panic!("SCRAM over TLS: {e}");
        }
        config.properties.clear();
        config
            .properties
            .insert("compression.type".into(), "no-such-codec".into());
        assert!(
            KafkaInsightSink::new(&config).is_err(),
            "bad values are refused"
        );
    }

    #[test]
    fn forced_settings_win_and_contradictions_are_errors() {
        let forced = [("enable.auto.commit", "false")];
        let ok = client_config("b:9092", &props(&[]), &[], &forced).unwrap();
        assert_eq!(ok.get("enable.auto.commit"), Some("false"));
        let bad = props(&[("enable.auto.commit", "true")]);
        let err = client_config("b:9092", &bad, &[], &forced).unwrap_err();
        assert!(err.to_string().contains("enable.auto.commit"), "{err}");
        assert!(client_config(" ", &props(&[]), &[], &forced).is_err());
        let defaults = [("auto.offset.reset", "earliest")];
        let user = props(&[("auto.offset.reset", "latest")]);
        let c = client_config("b:9092", &user, &defaults, &[]).unwrap();
        assert_eq!(c.get("auto.offset.reset"), Some("latest"));
    }
}
