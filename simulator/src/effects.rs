//! What the active faults do to each service at one instant.

use crate::faults::{FaultKind, FaultSpec};

/// How long an origin takes to recover after the remedy (callers follow within the same time).
const RECOVER_MS: u64 = 60_000;
/// How long the error burst after an OOM restart lasts.
const RESTART_BURST_MS: u64 = 40_000;

/// The combined deviation of one service from its baseline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Effect {
    /// Added to the error ratio.
    pub err_add: f64,
    /// Extra latency multiple: p99 × (1 + lat), p50 × (1 + 0.6·lat).
    pub lat: f64,
    /// CPU pulled towards `cpu_target` by `cpu_w` (0..1).
    pub cpu_target: f64,
    pub cpu_w: f64,
    /// Saturation pulled towards `sat_target` by `sat_w`.
    pub sat_target: f64,
    pub sat_w: f64,
    /// Memory level forced by a leak.
    pub mem: Option<f64>,
    /// Request-rate multiplier.
    pub rps_mult: f64,
    /// TLS handshake failure intensity seen by this service (as a caller).
    pub tls: f64,
    /// Seconds until the service's certificate expires (negative: expired), when it matters.
    pub cert_expires_in_s: Option<i64>,
    /// OOM restarts in the last 2 minutes / 10 minutes, and in total so far.
    pub restarts_2m: u32,
    pub restarts_10m: u32,
    pub restarts_total: u32,
}

impl Default for Effect {
    fn default() -> Self {
        Effect {
            err_add: 0.0,
            lat: 0.0,
            cpu_target: 0.0,
            cpu_w: 0.0,
            sat_target: 0.0,
            sat_w: 0.0,
            mem: None,
            rps_mult: 1.0,
            tls: 0.0,
            cert_expires_in_s: None,
            restarts_2m: 0,
            restarts_10m: 0,
            restarts_total: 0,
        }
    }
}

impl Effect {
    fn pull_cpu(&mut self, target: f64, w: f64) {
        if w > self.cpu_w {
            self.cpu_target = target;
            self.cpu_w = w.min(1.0);
        }
    }
    fn pull_sat(&mut self, target: f64, w: f64) {
        if w > self.sat_w {
            self.sat_target = target;
            self.sat_w = w.min(1.0);
        }
    }
}

/// A log-worthy role of a service in a fault at this instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Role {
    pub fault: usize,
    pub svc: usize,
    /// The callee the trouble comes from (None at the origin).
    pub via: Option<usize>,
    /// Hops from the origin.
    pub hop: u32,
    /// Current strength, 0..1.
    pub strength: f64,
}

/// Progress of an affected service through a fault: 0 before onset, ramping to 1, back to 0
/// within [`RECOVER_MS`] after the end.
fn envelope(t: u64, onset: u64, end: u64, ramp: u64) -> f64 {
    if t < onset || onset >= end {
        return 0.0;
    }
    let up = ((t - onset) as f64 / ramp.max(1) as f64).min(1.0);
    if t < end {
        return up;
    }
    let at_end = ((end - onset) as f64 / ramp.max(1) as f64).min(1.0);
    let down = 1.0 - (t - end) as f64 / RECOVER_MS as f64;
    (at_end * down).max(0.0)
}

/// Whether fault `f` can affect anything at `t`: `start - warning lead .. end + recovery`.
pub(crate) fn live(f: &FaultSpec, t: u64) -> bool {
    t + f.kind.warning_lead_ms() >= f.start && t < f.end + RECOVER_MS + 10 * 60_000
}

/// Computes every service's effect at `t` into `effects` (reset first) and the roles of
/// services with fault logs into `roles`.
pub(crate) fn compute(
    faults: &[FaultSpec],
    base_mem: &[f64],
    t: u64,
    effects: &mut [Effect],
    roles: &mut Vec<Role>,
) {
    effects.iter_mut().for_each(|e| *e = Effect::default());
    roles.clear();
    for (fi, f) in faults.iter().enumerate() {
        if !live(f, t) {
            continue;
        }
        let ramp = f.kind.ramp_ms();
        for imp in &f.impacts {
            let x = envelope(t, imp.onset, f.end, ramp);
            let k = x * imp.weight;
            let e = &mut effects[imp.svc];
            let origin = imp.hop == 0;
            let m = f.magnitude;
            let mut strength = k;
            match f.kind {
                FaultKind::BadDeploy => {
                    e.err_add += m * k;
                    e.lat += 0.4 * k;
                }
                FaultKind::DependencyOutage => {
                    if origin {
                        e.err_add += m * k;
                        e.lat += 0.5 * k;
                    } else {
                        e.err_add += 0.7 * k;
                        e.lat += 0.6 * k;
                    }
                }
                FaultKind::CertificateExpiry => {
                    if origin {
                        e.err_add += m * k;
                        e.rps_mult *= 1.0 - 0.3 * k;
                        let expires = f.start as i64 - t as i64;
                        if t + f.kind.warning_lead_ms() >= f.start && t < f.end {
                            e.cert_expires_in_s = Some(expires / 1000);
                        }
                    } else {
                        e.err_add += 0.75 * k;
                        if imp.hop == 1 {
                            e.tls = e.tls.max(x);
                        }
                    }
                }
                FaultKind::DatabaseSlowdown => {
                    if origin {
                        e.lat += (m - 1.0) * k;
                        e.pull_sat(0.985, k);
                        e.pull_cpu(0.8, 0.7 * k);
                        // Statement timeouts.
                        e.err_add += 0.08 * k;
                    } else {
                        e.lat += 0.7 * m * k;
                        e.err_add += 0.12 * k;
                        e.pull_sat(0.85, k);
                    }
                }
                FaultKind::NoisyNeighbor => {
                    if origin {
                        e.pull_cpu(0.975, k);
                        e.lat += (m - 1.0) * k;
                        e.pull_sat(0.75, 0.6 * k);
                    } else {
                        e.lat += 0.7 * (m - 1.0) * k;
                        e.err_add += 0.01 * k;
                    }
                }
                FaultKind::CascadingTimeouts => {
                    if origin {
                        e.lat += (m - 1.0) * k;
                        e.pull_sat(0.9, k);
                        // Its own deadline-exceeded responses.
                        e.err_add += 0.12 * k;
                    } else {
                        e.lat += 0.8 * m * k;
                        e.pull_sat(1.0, k.min(1.0) / imp.weight.max(0.5));
                        e.err_add += 0.25 * k;
                    }
                }
                FaultKind::MemoryLeak => {
                    strength = leak(f, imp.svc, origin, x, t, base_mem, e);
                }
            }
            if strength > 0.0 {
                roles.push(Role {
                    fault: fi,
                    svc: imp.svc,
                    via: imp.via,
                    hop: imp.hop,
                    strength,
                });
            }
        }
    }
}

/// Memory-leak effects on one service; returns the strength of its fault logs.
fn leak(
    f: &FaultSpec,
    svc: usize,
    origin: bool,
    x: f64,
    t: u64,
    base_mem: &[f64],
    e: &mut Effect,
) -> f64 {
    if t < f.start {
        return 0.0;
    }
    let recent = |window: u64| {
        f.restarts
            .iter()
            .filter(|&&r| r <= t && t < r + window)
            .count() as u32
    };
    let burst = f
        .restarts
        .iter()
        .any(|&r| r <= t && t < r + RESTART_BURST_MS);
    if !origin {
        // Callers only notice the restarts.
        if burst && x > 0.0 {
            e.err_add += 0.3 * f.kind.attenuation();
            e.lat += 0.3;
            return 0.6;
        }
        return 0.0;
    }
    e.restarts_2m += recent(2 * 60_000);
    e.restarts_10m += recent(10 * 60_000);
    e.restarts_total += f.restarts.iter().filter(|&&r| r <= t).count() as u32;
    if t >= f.end {
        // Restarted and rolled back: memory is back to normal.
        return 0.0;
    }
    let period = f.leak_period.max(1);
    let phase = ((t - f.start) % period) as f64 / period as f64;
    let base = base_mem.get(svc).copied().unwrap_or(0.5);
    let mem = base + (f.magnitude - base) * phase;
    e.mem = Some(mem);
    if mem > 0.85 {
        // Garbage collection thrash.
        e.pull_cpu(0.8, (mem - 0.85) / 0.15);
        e.lat += 2.0 * (mem - 0.85) / 0.15;
    }
    if burst {
        e.err_add += 0.3;
        e.rps_mult *= 0.6;
        e.pull_cpu(0.85, 1.0);
    }
    if burst {
        1.0
    } else {
        ((mem - base) / (f.magnitude - base).max(0.01)).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_ramps_up_and_recovers() {
        assert_eq!(envelope(0, 10, 1000, 100), 0.0);
        assert!((envelope(60, 10, 1000, 100) - 0.5).abs() < 1e-9);
        assert_eq!(envelope(500, 10, 1000, 100), 1.0);
        assert!(envelope(1000 + RECOVER_MS / 2, 10, 1000, 100) > 0.0);
        assert_eq!(envelope(1000 + RECOVER_MS, 10, 1000, 100), 0.0);
    }
}
