//! The metric anomaly detector on the Numenta Anomaly Benchmark.
fn main() {}
