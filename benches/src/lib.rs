//! kaizen's benchmark harnesses: throughput, latency and memory of the engine on generated
//! load and on Kafka (`replay-throughput`, `kafka-throughput`, `rules-throughput`,
//! `codec-throughput`), and accuracy on the shared labelled data sets and generated faults
//! (`eval-templates`, `eval-nab`, `eval-rca`, `eval-scenarios`).
//!
//! Every binary prints machine-readable JSON lines so that `BENCHMARKS.md` can quote numbers
//! anyone can reproduce; the eval binaries also draw a progress bar ([`progress`]) on stderr
//! when it is a terminal, never on stdout. This crate is not a test suite: tests assert
//! behaviour, benches measure.

pub mod otlp;
pub mod progress;

use std::path::{Path, PathBuf};
use std::time::Duration;

use kaizen_simulator::{write_events, ScenarioConfig};

/// Peak resident set size of this process in MiB (Linux `VmHWM`), if known.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// A scenario sized to produce about `events` events: the estate grows with the load so the
/// event mix (metrics, logs, spans, alerts, changes) stays realistic.
pub fn scenario_for(events: u64, seed: u64) -> ScenarioConfig {
    let probe = ScenarioConfig {
        seed,
        services: 40,
        instances: 4,
        ..ScenarioConfig::default().with_duration(Duration::from_secs(20 * 60))
    };
    let per_probe = count_events(&probe).max(1);
    let scale = events as f64 / per_probe as f64;
    let duration = Duration::from_secs_f64((probe.duration.as_secs_f64() * scale).max(60.0));
    ScenarioConfig {
        seed,
        services: 40,
        instances: 4,
        ..ScenarioConfig::default().with_duration(duration)
    }
}

fn count_events(config: &ScenarioConfig) -> u64 {
    write_events(config, std::io::sink()).unwrap_or(0)
}

/// Writes the scenario's events to a file under `dir` (reused if it already exists) and returns
/// its path and event count.
pub fn events_file(config: &ScenarioConfig, dir: &Path) -> std::io::Result<(PathBuf, u64)> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!(
        "events-s{}-n{}-i{}-d{}.jsonl",
        config.seed,
        config.services,
        config.instances,
        config.duration.as_secs()
    ));
    let file = std::fs::File::create(&path)?;
    let n = write_events(config, std::io::BufWriter::with_capacity(1 << 20, file))
        .map_err(std::io::Error::other)?;
    Ok((path, n))
}
