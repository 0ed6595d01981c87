//! Prints the fault plan (ground truth) of a scenario without generating telemetry:
//! `cargo run --release -p kaizen-simulator --example plan -- [SEED] [HOURS|demo] [SERVICES]`.

use std::time::Duration;

use kaizen_simulator::{ground_truth, ScenarioConfig};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut config = match args.get(1).map(String::as_str) {
        Some("demo") | None => ScenarioConfig::demo(),
        Some(h) => ScenarioConfig::default().with_duration(Duration::from_secs_f64(
            h.parse::<f64>().unwrap_or(2.0) * 3600.0,
        )),
    };
    if let Some(seed) = args.first().and_then(|s| s.parse().ok()) {
        config.seed = seed;
    }
    if let Some(n) = args.get(2).and_then(|s| s.parse().ok()) {
        config.services = n;
    }
    for f in ground_truth(&config).faults {
        println!(
            "{} {:<18} {:<14} {} .. {} {:<4} affected={} | {}",
            f.id,
            f.kind.as_str(),
            f.origin.as_str(),
            f.start,
            f.end,
            f.recurrence_of.as_deref().unwrap_or("-"),
            f.affected.len(),
            f.remedy
        );
    }
}
