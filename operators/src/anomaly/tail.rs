//! Learnt tails: how rare a standardised deviation is on this particular series.

/// One tail of a standardised statistic, learnt online ("peaks over threshold"): how often the
/// statistic exceeds [`TAIL_START`] and how far beyond it it then goes. A series whose residuals
/// are heavy-tailed or lumpy (counts, quantised CPU) earns a wide tail and a smooth series a
/// narrow one, so the same p-value means the same rarity on every series — which is what lets
/// one threshold serve them all. Beyond the start the tail is Pareto (Hill estimator of the
/// index), the usual shape of operational metrics' extremes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tail {
    /// Fraction of points beyond `TAIL_START`.
    rate: f32,
    /// Mean of `ln(x / TAIL_START)` over those points (the Pareto tail index, Hill's estimator).
    log_excess: f32,
}

/// Where tails start, in robust standard deviations: common enough (a few % of points) to be
/// learnt quickly, rare enough to be a tail.
pub(crate) const TAIL_START: f64 = 2.0;

impl Default for Tail {
    /// The prior: the tail of a standard normal distribution, which a robust z-score of
    /// well-behaved data follows, until the series shows its own.
    fn default() -> Self {
        *NORMAL_TAIL
    }
}

/// The standard normal's rate beyond [`TAIL_START`] and its mean log-excess there
/// (`E[ln(X / start) | X > start]`, integrated numerically once).
static NORMAL_TAIL: std::sync::LazyLock<Tail> = std::sync::LazyLock::new(|| {
    use statrs::distribution::{Continuous, ContinuousCDF, Normal};
    let Ok(n) = Normal::new(0.0, 1.0) else {
        return Tail {
            rate: 0.0228,
            log_excess: 0.17,
        };
    };
    let rate = n.sf(TAIL_START);
    let (steps, end) = (4000, TAIL_START + 8.0);
    let h = (end - TAIL_START) / f64::from(steps);
    let mass: f64 = (0..steps)
        .map(|i| {
            let x = TAIL_START + (f64::from(i) + 0.5) * h;
            (x / TAIL_START).ln() * n.pdf(x) * h
        })
        .sum();
    Tail {
        rate: rate as f32,
        log_excess: (mass / rate) as f32,
    }
});

impl Tail {
    /// Probability of a value at least `x` (one-sided).
    pub(crate) fn p(&self, x: f64) -> f64 {
        if x <= TAIL_START {
            return 1.0;
        }
        let index = f64::from(self.log_excess).max(0.05);
        (f64::from(self.rate) * (x / TAIL_START).powf(-1.0 / index)).min(1.0)
    }

    pub(crate) fn learn(&mut self, x: f64, rate_alpha: f32, excess_alpha: f32) {
        let beyond = x > TAIL_START;
        self.rate += rate_alpha * (f32::from(u8::from(beyond)) - self.rate);
        if beyond {
            // One enormous outlier must not make the series numb for days: cap its weight.
            let le = ((x / TAIL_START).ln() as f32).min(3.0 * self.log_excess + 0.5);
            self.log_excess += excess_alpha * (le - self.log_excess);
        }
    }
}
