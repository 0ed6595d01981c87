//! Measures generation throughput through `write_events`:
//! `cargo run --release -p kaizen-simulator --example throughput -- [SERVICES] [INSTANCES] [MINUTES] [FILE]`
//! (defaults: 200 services, 20 instances, 60 minutes, /tmp/kaizen-throughput.jsonl; `-` writes
//! to stdout, e.g. `... -- 200 20 60 - | cat > /dev/null` to measure a pipe).

use std::fs::File;
use std::io::sink;
use std::time::{Duration, Instant};

use kaizen_simulator::{write_events, ScenarioConfig};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let mut config = ScenarioConfig::default().with_duration(Duration::from_secs(arg(2, 60) * 60));
    config.services = arg(0, 200) as usize;
    config.instances = arg(1, 20) as usize;
    let path = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| String::from("/tmp/kaizen-throughput.jsonl"));

    if path == "-" {
        let started = Instant::now();
        let result = write_events(&config, std::io::stdout().lock());
        report("stdout", result, started);
        return;
    }
    let started = Instant::now();
    let result = write_events(&config, sink());
    report("sink", result, started);

    let started = Instant::now();
    let result = File::create(&path)
        .map_err(kaizen_simulator::SimError::from)
        .and_then(|f| write_events(&config, f));
    report(&path, result, started);
    if let Ok(meta) = std::fs::metadata(&path) {
        println!(
            "  file size {:.1} MiB",
            meta.len() as f64 / (1024.0 * 1024.0)
        );
    }
}

fn report(target: &str, result: Result<u64, kaizen_simulator::SimError>, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    match result {
        Ok(n) => eprintln!(
            "{target}: {n} events in {secs:.2}s = {:.2} M events/s",
            n as f64 / secs / 1e6
        ),
        Err(e) => eprintln!("{target}: error {e}"),
    }
}
