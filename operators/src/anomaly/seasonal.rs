//! A compact daily profile: what a series usually does at this time of day, and how much it
//! usually varies then.
//!
//! 48 half-hour knots with linear interpolation between them, so a smooth daily curve is
//! followed closely and a sharp daily edge costs one knot of spread rather than a false alarm.
//! Accumulators are `f32`: the profile only has to be good to a few significant digits, and it is
//! most of a series' memory.

/// Knots per day.
pub(crate) const KNOTS: usize = 48;
const DAY_MS: u64 = 86_400_000;
const KNOT_MS: f64 = DAY_MS as f64 / KNOTS as f64;

/// Where a timestamp falls between two knots.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Position {
    lo: usize,
    hi: usize,
    /// Weight of `hi` (0..1); `lo` gets `1 - w`.
    w: f32,
}

impl Position {
    pub(crate) fn of(ts_ms: u64) -> Position {
        let u = (ts_ms % DAY_MS) as f64 / KNOT_MS - 0.5;
        let u = if u < 0.0 { u + KNOTS as f64 } else { u };
        let lo = (u as usize) % KNOTS;
        Position {
            lo,
            hi: (lo + 1) % KNOTS,
            w: (u - u.floor()) as f32,
        }
    }
}

/// The daily profile of one series: the seasonal component (value minus the deseasonalised
/// level) and the typical absolute error of the seasonal prediction, per knot.
#[derive(Clone, Debug)]
pub(crate) struct DailyProfile {
    shape: [f32; KNOTS],
    spread: [f32; KNOTS],
    /// Points that touched each knot (saturating): a knot never touched predicts nothing.
    seen: [u16; KNOTS],
}

impl Default for DailyProfile {
    fn default() -> Self {
        DailyProfile {
            shape: [0.0; KNOTS],
            spread: [0.0; KNOTS],
            seen: [0; KNOTS],
        }
    }
}

impl DailyProfile {
    /// Both knots around `p` have data.
    pub(crate) fn ready(&self, p: Position) -> bool {
        self.seen[p.lo] > 0 && self.seen[p.hi] > 0
    }

    /// The seasonal component at `p`.
    pub(crate) fn shape(&self, p: Position) -> f64 {
        f64::from(self.shape[p.lo] * (1.0 - p.w) + self.shape[p.hi] * p.w)
    }

    /// The usual absolute error of the seasonal prediction at `p` (0 when unknown).
    pub(crate) fn spread(&self, p: Position) -> f64 {
        f64::from(self.spread[p.lo] * (1.0 - p.w) + self.spread[p.hi] * p.w)
    }

    /// Moves the knots around `p` towards `target` (the deseasonalised deviation) and their
    /// spreads towards `abs_err`, each in proportion to how close `p` is to it. `rate` is the
    /// per-point learning rate; a knot's first points are averaged so it starts sensibly.
    pub(crate) fn learn(&mut self, p: Position, target: f64, abs_err: f64, rate: f64) {
        for (k, weight) in [(p.lo, 1.0 - p.w), (p.hi, p.w)] {
            if weight <= 0.0 {
                continue;
            }
            let n = self.seen[k];
            let a = (rate.max(1.0 / (f64::from(n) + 1.0)) * f64::from(weight)) as f32;
            if n == 0 {
                self.shape[k] = target as f32;
                self.spread[k] = abs_err as f32;
            } else {
                self.shape[k] += a * (target as f32 - self.shape[k]);
                self.spread[k] += a * (abs_err as f32 - self.spread[k]);
            }
            self.seen[k] = n.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_wrap_around_midnight() {
        let p = Position::of(0);
        assert_eq!((p.lo, p.hi), (KNOTS - 1, 0));
        assert!((p.w - 0.5).abs() < 1e-6);
        let q = Position::of(DAY_MS / 2 + (KNOT_MS / 2.0) as u64);
        assert_eq!(q.lo, KNOTS / 2);
        assert!(q.w.abs() < 1e-6);
    }

    #[test]
    fn learns_a_daily_curve() {
        let mut d = DailyProfile::default();
        let f = |t: u64| ((t % DAY_MS) as f64 / DAY_MS as f64 * std::f64::consts::TAU).sin();
        for i in 0..(3 * 288) {
            let t = i * 300_000;
            let p = Position::of(t);
            d.learn(p, f(t), 0.0, 0.05);
        }
        let t = 3 * DAY_MS + 7_000_000;
        let p = Position::of(t);
        assert!(d.ready(p));
        assert!(
            (d.shape(p) - f(t)).abs() < 0.05,
            "{} vs {}",
            d.shape(p),
            f(t)
        );
    }
}
