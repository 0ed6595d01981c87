//! The cost of user rules: replays the same generated events on one worker without rules and
//! with a pack of 50 (the shipped pack plus generated rules of every shape: filters with
//! FOR, TUMBLE and HOP aggregates, label grouping, LIKE over logs, span percentiles,
//! MATCH_RECOGNIZE), and prints one JSON line per run and the ratio.
//!
//! `cargo run --release -p kaizen-benches --bin rules-throughput -- --events 2000000`

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Parser;
use kaizen_benches::{events_file, peak_rss_mib, scenario_for};
use kaizen_connectors::{expand_inputs, JsonlSink, JsonlSource};
use kaizen_engine::{replay, EngineConfig, ReplayHooks, ReplayReport};
use kaizen_rules::{LiveRules, RuleSet};
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
    /// Rules in the pack.
    #[arg(long, default_value_t = 50)]
    rules: usize,
    /// Scenario seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Runs of each configuration (interleaved; the best of each is compared).
    #[arg(long, default_value_t = 2)]
    repeat: usize,
    /// Where the generated input and rules are written.
    #[arg(long, default_value = "target/bench-data")]
    data_dir: PathBuf,
    /// Run only one configuration (`with_rules` or `without_rules`), e.g. under a profiler.
    #[arg(long)]
    only: Option<String>,
}

const METRICS: [(&str, f64); 6] = [
    ("http_error_ratio", 0.05),
    ("cpu_utilization", 0.9),
    ("memory_utilization", 0.92),
    ("saturation", 0.85),
    ("http_latency_p99_ms", 2000.0),
    ("http_requests_per_second", 5000.0),
];

const WORDS: [&str; 5] = ["timeout", "refused", "OutOfMemory", "deadlock", "exhausted"];

/// The i-th generated rule: shapes in turn, names and thresholds varied.
fn generated(i: usize) -> String {
    let (metric, t) = METRICS[i % METRICS.len()];
    let word = WORDS[i % WORDS.len()];
    let body = match i % 7 {
        0 => format!("SELECT service, value FROM metrics WHERE name = '{metric}' AND value > {t} FOR INTERVAL '1' MINUTE"),
        1 => format!("SELECT service, avg(value) AS v FROM metrics WHERE name = '{metric}' GROUP BY service, TUMBLE(ts, INTERVAL '1' MINUTE) HAVING avg(value) > {t}"),
        2 => format!("SELECT service, labels['instance'] AS instance, max(value) AS v FROM metrics WHERE name = '{metric}' GROUP BY service, labels['instance'], HOP(ts, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE) HAVING max(value) > {t}"),
        3 => format!("SELECT service, count(*) AS n FROM logs WHERE level IN ('error', 'fatal') AND message LIKE '%{word}%' GROUP BY service, TUMBLE(ts, INTERVAL '1' MINUTE) HAVING count(*) > 5"),
        4 => format!("SELECT service, peer, p95(duration_ms) AS p FROM spans GROUP BY service, peer, HOP(ts, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE) HAVING p95(duration_ms) > {}", 500 + 100 * i),
        5 => "SELECT * FROM events MATCH_RECOGNIZE (PARTITION BY service ORDER BY ts MEASURES COUNT(E.*) AS errors PATTERN (D E{5,}) WITHIN INTERVAL '15' MINUTE DEFINE D AS D.kind = 'change', E AS E.kind = 'log' AND E.level = 'error')".to_string(),
        _ => format!("SELECT service, count(*) AS n, stddev(value) AS sd FROM metrics WHERE name = '{metric}' AND labels['instance'] IS NOT NULL GROUP BY service, SESSION(ts, INTERVAL '2' MINUTE) HAVING count(*) > 1000000"),
    };
    format!("CREATE RULE generated_{i} SEVERITY 'warning' AS {body};\n")
}

fn write_pack(dir: &Path, n: usize) -> Result<RuleSet> {
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../queries/default");
    let (base, errors) = RuleSet::load(std::slice::from_ref(&shipped));
    if !errors.is_empty() {
        bail!("the shipped pack has errors: {}", errors[0]);
    }
    let extra = n.saturating_sub(base.len());
    std::fs::create_dir_all(dir)?;
    let text: String = (0..extra).map(generated).collect();
    std::fs::write(dir.join("generated.sql"), text)?;
    let (set, errors) = RuleSet::load(&[shipped, dir.join("generated.sql")]);
    if let Some(e) = errors.first() {
        bail!("generated rule: {e}");
    }
    Ok(set)
}

fn run(path: &Path, config: &EngineConfig) -> Result<ReplayReport> {
    let mut sink = JsonlSink::new(std::io::sink());
    Ok(replay(
        JsonlSource::new(expand_inputs(&[path.to_path_buf()])?),
        config,
        &mut sink,
        ReplayHooks::default(),
    )?)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let scenario = scenario_for(args.events, args.seed);
    let (path, _) = events_file(&scenario, &args.data_dir)?;
    let pack = write_pack(&args.data_dir.join("rules-pack"), args.rules)?;
    let rules = pack.len();
    let base = EngineConfig {
        workers: 1,
        topology: topology(&scenario),
        ..EngineConfig::default()
    };
    let with_rules = EngineConfig {
        rules: Some(LiveRules::new(pack)),
        ..base.clone()
    };
    let mut best = [0f64; 2];
    for _ in 0..args.repeat.max(1) {
        for (i, (label, config)) in [("without_rules", &base), ("with_rules", &with_rules)]
            .into_iter()
            .enumerate()
        {
            if args.only.as_deref().is_some_and(|o| o != label) {
                continue;
            }
            let r = run(&path, config)?;
            let rate = r.events as f64 / r.elapsed_secs;
            best[i] = best[i].max(rate);
            println!(
                "{}",
                json!({"run": label, "rules": if i == 0 { 0 } else { rules }, "events": r.events,
                       "secs": r.elapsed_secs, "events_per_sec": rate, "insights": r.insights,
                       "latency_p99_us": r.latency.p99_us, "peak_rss_mib": peak_rss_mib()})
            );
        }
    }
    println!(
        "{}",
        json!({"summary": "rules", "rules": rules, "best_events_per_sec_without": best[0],
               "best_events_per_sec_with": best[1], "kept_fraction": best[1] / best[0].max(1e-9)})
    );
    Ok(())
}
