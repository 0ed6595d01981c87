//! kaizen's deterministic scenario generator: a realistic microservice estate, its telemetry
//! (metrics, logs, spans, changes and Alertmanager-style alerts) and injected faults with their
//! ground truth. It is kaizen's demo data, its accuracy benchmark and its load generator.
//!
//! Same seed and same [`ScenarioConfig`] give byte-identical output: the crate uses its own
//! PRNG and platform-independent arithmetic, and generates one metric interval at a time
//! (bounded memory, events in non-decreasing event-time order).
//!
//! Two [`Dialect`]s: kaizen's own (golden-signal gauges, alerts, deploy events,
//! `topology.json`) and the users' (`Dialect::Otel`: OpenTelemetry and Prometheus names,
//! one-minute exports, OTLP batches, skewed clocks, out-of-order delivery, no alerts, deploys
//! seen only as versions, a Backstage catalog), decoded by kaizen's own codecs. Both run the
//! same plan: same seed, same faults.
//!
//! What it is **not**: a detector. The simulator knows the answers (which fault, where, when,
//! what fixes it) and writes them to `ground_truth.json` only so that benchmarks can score the
//! engine afterwards. Nothing in kaizen's engine may read the ground truth or depend on this
//! crate's internals; the engine sees only `events.jsonl` and `topology.json`, like production.
//!
//! ```
//! use kaizen_simulator::{ground_truth, generate, ScenarioConfig};
//! let mut config = ScenarioConfig::default().with_duration(std::time::Duration::from_secs(3600));
//! config.log_rate = 0.1;
//! let truth = ground_truth(&config);
//! assert_eq!(truth.faults.len(), config.faults);
//! let mut count = 0;
//! generate(&config, &mut |_event| count += 1);
//! assert!(count > 10_000);
//! ```

mod alerts;
mod catalog;
mod dialect;
mod effects;
mod estate;
mod faults;
mod frame;
mod generator;
mod logs;
mod metrics;
mod otel;
mod output;
mod plan;
mod rng;
mod templates;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kaizen_model::{Event, Timestamp, Topology};

pub use dialect::Dialect;
pub use faults::{Fault, FaultKind, GroundTruth};

/// The metric names every service reports.
pub const METRIC_NAMES: [&str; 7] = metrics::NAMES;

/// What to simulate.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioConfig {
    /// The seed: same seed and same config, same bytes.
    pub seed: u64,
    /// Event time of the first tick (default 2026-01-05T00:00:00Z).
    pub start: Timestamp,
    /// Length of the scenario (default 2 h).
    pub duration: Duration,
    /// Number of services (default 12; at least 1 is simulated).
    pub services: usize,
    /// Series per service per metric, label `instance` = `<svc>-<i>` (default 1).
    pub instances: usize,
    /// Metric sample interval, also the generation tick (default 10 s; at least 1 s is used).
    pub metric_interval: Duration,
    /// Routine log lines per service per second (default 1.0).
    pub log_rate: f64,
    /// Spans per call edge per second (default 0.2).
    pub span_rate: f64,
    /// Number of faults injected, recurrences included (default: about one per 40 minutes
    /// after a 20-minute warm-up, see [`ScenarioConfig::default_faults`]). If more are asked
    /// for than fit with 15 minutes of calm between them, all durations and gaps shrink.
    pub faults: usize,
    /// How many of the faults repeat an earlier one (same kind, origin and remedy); default
    /// `max(1, faults / 3)` when there are at least 2 faults. Capped at `faults - 1`.
    pub recurrences: usize,
    /// The vocabulary of the telemetry and topology (default [`Dialect::Kaizen`]). The plan,
    /// hence the ground truth's faults, is the same in every dialect.
    pub dialect: Dialect,
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        let duration = Duration::from_secs(2 * 3600);
        let faults = Self::default_faults(duration);
        ScenarioConfig {
            seed: 42,
            start: Timestamp::from_millis(1_767_571_200_000), // 2026-01-05T00:00:00Z
            duration,
            services: 12,
            instances: 1,
            metric_interval: Duration::from_secs(10),
            log_rate: 1.0,
            span_rate: 0.2,
            faults,
            recurrences: Self::default_recurrences(faults),
            dialect: Dialect::Kaizen,
        }
    }
}

impl ScenarioConfig {
    /// The preset for `kaizen demo`: 3 hours, 12 services, 3 faults of which exactly one is a
    /// recurrence of an earlier one.
    pub fn demo() -> Self {
        ScenarioConfig {
            seed: 7,
            faults: 3,
            recurrences: 1,
            ..ScenarioConfig::default().with_duration(Duration::from_secs(3 * 3600))
        }
    }

    /// Sets the duration and re-derives the default fault and recurrence counts for it.
    pub fn with_duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self.faults = Self::default_faults(duration);
        self.recurrences = Self::default_recurrences(self.faults);
        self
    }

    /// The default fault count for a scenario of `duration`.
    pub fn default_faults(duration: Duration) -> usize {
        plan::default_faults(duration.as_millis().min(u128::from(u64::MAX / 4)) as u64)
    }

    /// The default recurrence count for `faults` faults.
    pub fn default_recurrences(faults: usize) -> usize {
        if faults >= 2 {
            (faults / 3).max(1)
        } else {
            0
        }
    }

    /// End of the scenario (exclusive).
    pub fn end(&self) -> Timestamp {
        self.start.plus(self.duration)
    }

    /// Rejects configurations that cannot be simulated as asked.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |why: String| Err(SimError::Config(why));
        if self.services == 0 {
            return bad("services must be at least 1".into());
        }
        if self.instances == 0 {
            return bad("instances must be at least 1".into());
        }
        if self.duration.is_zero() {
            return bad("duration must be positive".into());
        }
        if self.metric_interval < Duration::from_secs(1) {
            return bad(format!(
                "metric_interval must be at least 1s (got {:?})",
                self.metric_interval
            ));
        }
        for (name, rate) in [("log_rate", self.log_rate), ("span_rate", self.span_rate)] {
            if !rate.is_finite() || rate < 0.0 {
                return bad(format!(
                    "{name} must be a finite, non-negative number (got {rate})"
                ));
            }
        }
        Ok(())
    }
}

/// What [`write_scenario`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScenarioSummary {
    /// Events written to `events.jsonl`.
    pub events: u64,
    /// Faults in `ground_truth.json`.
    pub faults: usize,
    /// Time of the first event (the scenario start if there were none).
    pub first: Timestamp,
    /// Time of the last event (the scenario start if there were none).
    pub last: Timestamp,
}

/// Why a scenario could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Writing failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Writing a particular file failed.
    #[error("could not write {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// JSON encoding failed.
    #[error("JSON encoding failed: {0}")]
    Json(#[from] serde_json::Error),
    /// The topology document does not parse (a bug if it ever happens).
    #[error("topology: {0}")]
    Topology(#[from] kaizen_model::TopologyError),
    /// The configuration cannot be simulated.
    #[error("invalid scenario config: {0}")]
    Config(String),
}

/// The estate's topology (`topology.json`): the architecture in kaizen's own terms, whatever
/// the dialect (callers, owners, SLOs).
pub fn topology(config: &ScenarioConfig) -> Topology {
    estate::Estate::build(config.services).topology()
}

/// The estate as a Backstage software catalog (`catalog-info.yaml`): a System, a Group per
/// team, a Component per service and a Resource per database, cache and queue, with
/// `spec.dependsOn`, owner and lifecycle. What [`Dialect::Otel`] gives kaizen instead of
/// `topology.json`.
pub fn catalog_info(config: &ScenarioConfig) -> String {
    otel::catalog(config)
}

/// The topology kaizen is given in `config`'s dialect: [`topology`] for [`Dialect::Kaizen`],
/// the [`catalog_info`] as kaizen reads it for [`Dialect::Otel`] (no SLOs, Backstage's tiers).
pub fn engine_topology(config: &ScenarioConfig) -> Result<Topology, SimError> {
    match config.dialect {
        Dialect::Kaizen => Ok(topology(config)),
        Dialect::Otel => Ok(Topology::from_backstage_yaml(&catalog_info(config))?),
    }
}

/// The name of the topology file [`write_scenario`] writes for `dialect`.
pub fn topology_file(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Kaizen => "topology.json",
        Dialect::Otel => "catalog-info.yaml",
    }
}

/// The fault plan: a pure function of the config (seed, start, duration, services, faults,
/// recurrences), available without generating any telemetry. In [`Dialect::Otel`] no alert
/// warns before a fault, so every fault is observable from its start.
pub fn ground_truth(config: &ScenarioConfig) -> GroundTruth {
    let plan = plan::plan(config);
    GroundTruth {
        seed: config.seed,
        start: config.start,
        end: config.end(),
        faults: plan
            .faults
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut fault = f.to_fault(&plan.estate, i);
                if config.dialect == Dialect::Otel {
                    fault.observable_from = fault.start;
                }
                fault
            })
            .collect(),
    }
}

/// Generates every event of the scenario: in [`Dialect::Kaizen`] in non-decreasing event-time
/// order (ties in a fixed order); in [`Dialect::Otel`] in arrival order, each event at most
/// 30 s older than the newest before it (skewed clocks, batches, retries), some stamped a
/// little before the start or after the end. Out-of-range settings are clamped rather than
/// rejected: at least one service and instance, a metric interval of at least 1 s, non-finite
/// or negative rates as 0.
pub fn generate(config: &ScenarioConfig, emit: &mut dyn FnMut(&Event)) {
    let mut each = |e: &Event| {
        emit(e);
        true
    };
    match config.dialect {
        Dialect::Kaizen => {
            generator::run(config, &mut each);
        }
        Dialect::Otel => {
            otel::run(config, &mut each);
        }
    }
}

/// Writes the scenario's events as native JSON Lines (`Event::write_json`, one per line) to
/// `out` (a file, a pipe, a socket…). Returns the number of events written.
///
/// With more than one core, JSON encoding runs on worker threads while the calling thread
/// generates and writes; the bytes are identical to a single-threaded run. Buffering is done
/// here, so `out` need not be buffered. Rejects invalid configurations (see
/// [`ScenarioConfig::validate`]).
pub fn write_events<W: Write>(config: &ScenarioConfig, out: W) -> Result<u64, SimError> {
    config.validate()?;
    Ok(write_jsonl(config, out)?.events)
}

fn write_jsonl<W: Write>(config: &ScenarioConfig, out: W) -> Result<generator::Stats, SimError> {
    match config.dialect {
        Dialect::Kaizen => output::write_jsonl(config, out),
        Dialect::Otel => output::write_otel_jsonl(config, out),
    }
}

/// Writes `dir/events.jsonl`, the topology ([`topology_file`]: `dir/topology.json`, or
/// `dir/catalog-info.yaml` in [`Dialect::Otel`]) and `dir/ground_truth.json` (creating `dir`).
pub fn write_scenario(config: &ScenarioConfig, dir: &Path) -> Result<ScenarioSummary, SimError> {
    config.validate()?;
    std::fs::create_dir_all(dir).map_err(|source| SimError::File {
        path: dir.to_path_buf(),
        source,
    })?;
    let truth = ground_truth(config);
    match config.dialect {
        Dialect::Kaizen => write_pretty(&dir.join("topology.json"), &topology(config))?,
        Dialect::Otel => {
            let path = dir.join("catalog-info.yaml");
            std::fs::write(&path, catalog_info(config))
                .map_err(|source| SimError::File { path, source })?;
        }
    }
    write_pretty(&dir.join("ground_truth.json"), &truth)?;
    let path = dir.join("events.jsonl");
    let file = File::create(&path).map_err(|source| SimError::File {
        path: path.clone(),
        source,
    })?;
    let stats = write_jsonl(config, file).map_err(|e| match e {
        SimError::Io(source) => SimError::File { path, source },
        other => other,
    })?;
    Ok(ScenarioSummary {
        events: stats.events,
        faults: truth.faults.len(),
        first: stats.first.unwrap_or(config.start),
        last: stats.last.unwrap_or(config.start),
    })
}

fn write_pretty<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), SimError> {
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    std::fs::write(path, text).map_err(|source| SimError::File {
        path: path.to_path_buf(),
        source,
    })
}
