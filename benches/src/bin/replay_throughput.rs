//! Replays N generated events through the engine with every detector on and prints JSON:
//! events/s, ingest → output latency percentiles (hdrhistogram), peak RSS, and the cost of
//! each stage measured alone (generate, decode).
//!
//! `cargo run --release -p kaizen-benches --bin replay-throughput -- --events 2000000 --workers 1`

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use kaizen_benches::{events_file, peak_rss_mib, scenario_for};
use kaizen_connectors::{expand_inputs, JsonlSink, JsonlSource};
use kaizen_engine::{replay, EngineConfig, ReplayHooks};
use kaizen_simulator::topology;
use serde_json::json;

/// The allocator `kaizen` runs with (src/main.rs), so the bench measures what it ships.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// Approximate number of events to replay.
    #[arg(long, default_value_t = 2_000_000)]
    events: u64,
    /// Worker threads.
    #[arg(long, short = 'w', default_value_t = 1)]
    workers: usize,
    /// Scenario seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where the generated input is written.
    #[arg(long, default_value = "target/bench-data")]
    data_dir: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let scenario = scenario_for(args.events, args.seed);

    let started = Instant::now();
    let (path, events) = events_file(&scenario, &args.data_dir)?;
    let generate_secs = started.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&path)?.len();
    println!(
        "{}",
        json!({"stage":"generate","events":events,"bytes":bytes,"secs":generate_secs,
               "events_per_sec":events as f64 / generate_secs})
    );

    let started = Instant::now();
    let mut source = JsonlSource::new(expand_inputs(std::slice::from_ref(&path))?);
    let mut decoded = 0u64;
    while let Some(record) = source.next_record()? {
        decoded += u64::from(record.is_ok());
    }
    let decode_secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"stage":"decode","events":decoded,"secs":decode_secs,
               "events_per_sec":decoded as f64 / decode_secs,
               "mb_per_sec": bytes as f64 / 1e6 / decode_secs})
    );

    let config = EngineConfig {
        workers: args.workers,
        topology: topology(&scenario),
        ..EngineConfig::default()
    };
    let mut sink = JsonlSink::new(std::io::sink());
    let report = replay(
        JsonlSource::new(expand_inputs(std::slice::from_ref(&path))?),
        &config,
        &mut sink,
        ReplayHooks::default(),
    )?;
    println!(
        "{}",
        json!({
            "stage": "replay",
            "workers": args.workers,
            "events": report.events,
            "secs": report.elapsed_secs,
            "events_per_sec": report.events as f64 / report.elapsed_secs,
            "events_per_sec_per_worker": report.events as f64 / report.elapsed_secs / args.workers as f64,
            "latency_p50_us": report.latency.p50_us,
            "latency_p99_us": report.latency.p99_us,
            "latency_max_us": report.latency.max_us,
            "insights": report.insights,
            "decode_failures": report.decode_failures,
            "late_events": report.late_events,
            "peak_rss_mib": peak_rss_mib(),
        })
    );
    Ok(())
}
