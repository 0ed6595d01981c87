//! `kaizen simulate`.

use std::io::{self, BufWriter};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use kaizen_simulator::{topology_file, write_events, write_scenario, Dialect, ScenarioConfig};

#[derive(Args)]
pub struct SimulateArgs {
    /// Seed: the same seed and flags always give the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Event-time span of the scenario, e.g. `2h`, `90m`, `1d`.
    #[arg(long, default_value = "2h", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Number of services in the estate.
    #[arg(long, default_value_t = 12)]
    services: usize,
    /// Instances per service: each metric has this many series.
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// Metric scrape interval, e.g. `10s`.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    metric_interval: Duration,
    /// Benign log lines per service per second.
    #[arg(long, default_value_t = 1.0)]
    log_rate: f64,
    /// Spans per call edge per second.
    #[arg(long, default_value_t = 0.2)]
    span_rate: f64,
    /// Faults to inject (default: about one per 40 minutes after a 20-minute warm-up).
    #[arg(long)]
    faults: Option<usize>,
    /// Vocabulary: `kaizen` (its own names, alerts, deploy events, topology.json) or `otel`
    /// (the users' dialect: OpenTelemetry and Prometheus names, one-minute exports, OTLP
    /// batches decoded by kaizen's codecs, skewed clocks, out-of-order delivery within 30 s,
    /// no alerts, deploys seen only as versions, a Backstage catalog-info.yaml).
    #[arg(long, default_value = "kaizen", value_parser = parse_dialect)]
    dialect: Dialect,
    /// Write DIR/events.jsonl, DIR/ground_truth.json and the topology: DIR/topology.json, or
    /// DIR/catalog-info.yaml with `--dialect otel`.
    #[arg(long, required_unless_present = "stdout")]
    out: Option<PathBuf>,
    /// Write only the events, as JSONL, to stdout (load generation through a pipe).
    #[arg(long, conflicts_with = "out")]
    stdout: bool,
}

pub fn run(args: SimulateArgs) -> Result<()> {
    if args.services < 2 {
        bail!("--services must be at least 2");
    }
    let mut config = ScenarioConfig {
        seed: args.seed,
        services: args.services,
        instances: args.instances.max(1),
        metric_interval: args.metric_interval,
        log_rate: args.log_rate,
        span_rate: args.span_rate,
        dialect: args.dialect,
        // The fault plan scales with the duration.
        ..ScenarioConfig::default().with_duration(args.duration)
    };
    if let Some(f) = args.faults {
        config.faults = f;
        config.recurrences = ScenarioConfig::default_recurrences(f);
    }
    let started = std::time::Instant::now();
    let events = if args.stdout {
        write_events(
            &config,
            BufWriter::with_capacity(1 << 20, io::stdout().lock()),
        )?
    } else if let Some(dir) = &args.out {
        let summary = write_scenario(&config, dir)?;
        eprintln!(
            "kaizen: wrote {} events, {} faults to {} ({} → {}; topology {})",
            summary.events,
            summary.faults,
            dir.display(),
            summary.first,
            summary.last,
            topology_file(args.dialect)
        );
        summary.events
    } else {
        0
    };
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "kaizen: {events} events in {secs:.2}s ({:.0} events/s)",
        events as f64 / secs.max(1e-9)
    );
    Ok(())
}

fn parse_dialect(s: &str) -> Result<Dialect, String> {
    s.parse()
}
