//! Which vocabulary the simulated estate speaks.

use std::fmt;
use std::str::FromStr;

/// The vocabulary of a scenario's telemetry and topology.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// kaizen's own names: golden-signal gauges every 10 s (`http_error_ratio`, …),
    /// Alertmanager-style alerts, deploy events, `topology.json`. The default; its bytes never
    /// change for a given seed and config.
    #[default]
    Kaizen,
    /// The users' dialect: half the services speak OpenTelemetry (OTLP/JSON metric exports
    /// once a minute with semantic-convention names, OTLP log and trace batches), the other
    /// half Prometheus (scraped once a minute, remote-written through prometheus-kafka-adapter,
    /// logs through Fluent Bit); hosts' clocks are skewed, batches arrive out of order within
    /// 30 s, no alert fires, deploys show only as a new `service.version` or `*_build_info`,
    /// and the topology is a Backstage `catalog-info.yaml`. Every message is decoded by
    /// kaizen's own codecs into the native events written.
    Otel,
}

impl Dialect {
    /// Every dialect.
    pub const ALL: [Dialect; 2] = [Dialect::Kaizen, Dialect::Otel];

    /// The name used on the command line (`kaizen`, `otel`).
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Kaizen => "kaizen",
            Dialect::Otel => "otel",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Dialect {
    type Err = String;
    fn from_str(s: &str) -> Result<Dialect, String> {
        let norm = s.trim().to_ascii_lowercase();
        Dialect::ALL
            .into_iter()
            .find(|d| d.as_str() == norm || (norm == "opentelemetry" && *d == Dialect::Otel))
            .ok_or_else(|| format!("unknown dialect {s:?} (expected kaizen or otel)"))
    }
}
