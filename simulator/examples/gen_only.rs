//! Generation cost without serialisation: `cargo run --release -p kaizen-simulator --example gen_only -- [SERVICES] [INSTANCES] [MINUTES]`.

use std::time::{Duration, Instant};

use kaizen_simulator::{generate, ScenarioConfig};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let mut config = ScenarioConfig::default().with_duration(Duration::from_secs(arg(2, 60) * 60));
    config.services = arg(0, 200) as usize;
    config.instances = arg(1, 20) as usize;
    let started = Instant::now();
    let mut n = 0u64;
    generate(&config, &mut |_| n += 1);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "generate only: {n} events in {secs:.2}s = {:.2} M events/s",
        n as f64 / secs / 1e6
    );
}
