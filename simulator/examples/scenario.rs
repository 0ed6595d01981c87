//! Writes one scenario directory: `cargo run --release -p kaizen-simulator --example scenario -- DIR [SEED] [HOURS] [SERVICES]`
//! (`demo` as HOURS writes the demo preset).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kaizen_simulator::{write_scenario, ScenarioConfig};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(args.first().map_or("/tmp/kaizen-scenario", String::as_str));
    let mut config = match args.get(2).map(String::as_str) {
        Some("demo") => ScenarioConfig::demo(),
        Some(h) => ScenarioConfig::default().with_duration(Duration::from_secs_f64(
            h.parse::<f64>().unwrap_or(2.0) * 3600.0,
        )),
        None => ScenarioConfig::default(),
    };
    if let Some(seed) = args.get(1).and_then(|s| s.parse().ok()) {
        config.seed = seed;
    }
    if let Some(n) = args.get(3).and_then(|s| s.parse().ok()) {
        config.services = n;
    }
    let started = Instant::now();
    match write_scenario(&config, &dir) {
        Ok(summary) => println!(
            "{} events, {} faults, {} .. {} in {:.2?} -> {}",
            summary.events,
            summary.faults,
            summary.first,
            summary.last,
            started.elapsed(),
            dir.display()
        ),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
