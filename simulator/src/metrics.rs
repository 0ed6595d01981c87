//! Metric samples: baselines × daily seasonality × noise, bent by fault effects.

use crate::effects::Effect;
use crate::estate::Baseline;
use crate::rng::{round_to, sin_turns, Rng};

/// The metric names, in the order samples hold them.
pub(crate) const NAMES: [&str; 7] = [
    "http_requests_per_second",
    "http_error_ratio",
    "http_latency_p50_ms",
    "http_latency_p99_ms",
    "cpu_utilization",
    "memory_utilization",
    "saturation",
];
pub(crate) const ERR: usize = 1;
pub(crate) const P50: usize = 2;
pub(crate) const P99: usize = 3;
pub(crate) const CPU: usize = 4;
pub(crate) const MEM: usize = 5;
pub(crate) const SAT: usize = 6;

/// Latency ceiling: clients give up (and report timeouts) well before this.
const MAX_LATENCY_MS: f64 = 30_000.0;

/// Daily seasonality in [-1, 1]: a sinusoid over 24 h peaking at 15:00 UTC.
pub(crate) fn season(t_ms: u64) -> f64 {
    let day_fraction = (t_ms % 86_400_000) as f64 / 86_400_000.0;
    sin_turns(day_fraction - 9.0 / 24.0)
}

/// One instance's sample of every metric (already rounded).
pub(crate) fn sample(
    base: &Baseline,
    mem_offset: f64,
    instances: usize,
    season: f64,
    e: &Effect,
    rng: &mut Rng,
) -> [f64; 7] {
    let rps = base.rps / instances.max(1) as f64
        * (1.0 + 0.35 * season)
        * (1.0 + 0.04 * rng.normal())
        * e.rps_mult;
    let err = (base.err * (1.0 + 0.25 * rng.normal())).max(0.0) + e.err_add;
    let p50 = base.p50 * (1.0 + 0.08 * season) * (1.0 + 0.05 * rng.normal()) * (1.0 + 0.6 * e.lat);
    let p99 = base.p99 * (1.0 + 0.1 * season) * (1.0 + 0.07 * rng.normal()) * (1.0 + e.lat);
    let mut cpu = base.cpu * (1.0 + 0.3 * season) + 0.015 * rng.normal();
    cpu += (e.cpu_target - cpu) * e.cpu_w;
    let mem = match e.mem {
        Some(level) => level + 0.003 * rng.normal(),
        None => base.mem + mem_offset + 0.02 * season + 0.008 * rng.normal(),
    };
    let mut sat = base.sat * (1.0 + 0.3 * season) + 0.02 * rng.normal();
    sat += (e.sat_target - sat) * e.sat_w;
    let p50 = p50.min(MAX_LATENCY_MS);
    [
        round_to(rps.max(0.0), 100.0),
        round_to(err.clamp(0.0, 1.0), 100_000.0),
        round_to(p50, 100.0),
        round_to(p99.clamp(p50, MAX_LATENCY_MS), 100.0),
        round_to(cpu.clamp(0.01, 1.0), 10_000.0),
        round_to(mem.clamp(0.01, 1.0), 10_000.0),
        round_to(sat.clamp(0.0, 1.0), 10_000.0),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estate::Estate;

    #[test]
    fn season_peaks_mid_afternoon() {
        let hour = 3_600_000;
        assert!((season(15 * hour) - 1.0).abs() < 1e-9);
        assert!((season(3 * hour) + 1.0).abs() < 1e-9);
    }

    #[test]
    fn normal_values_stay_clear_of_thresholds() {
        let estate = Estate::build(40);
        let mut rng = Rng::new(3);
        let calm = Effect::default();
        for s in &estate.services {
            for step in 0..200u64 {
                let v = sample(&s.base, 0.03, 1, season(step * 432_000), &calm, &mut rng);
                assert!(v[ERR] < 0.01, "{} err {}", s.name, v[ERR]);
                assert!(v[P99] < 2.0 * s.base.p99, "{} p99 {}", s.name, v[P99]);
                assert!((0.05..0.7).contains(&v[CPU]), "{} cpu {}", s.name, v[CPU]);
                assert!((0.35..0.8).contains(&v[MEM]), "{} mem {}", s.name, v[MEM]);
                assert!(v[SAT] < 0.65, "{} sat {}", s.name, v[SAT]);
                assert!(v[P50] <= v[P99] && v[0] > 0.0);
            }
        }
    }
}
