//! The per-series baseline: a robust level, a daily profile, a sustained-shift statistic, and a
//! calibrated anomaly score for every point — with no lookahead.

use kaizen_model::Timestamp;

use super::seasonal::{DailyProfile, Position};
use super::tail::Tail;

/// Mean absolute deviation to standard deviation, for normal data.
const MAD_TO_SIGMA: f64 = 1.253_314;

/// How a [`SeriesBaseline`] learns and scores. Shared by every series (not stored per series).
#[derive(Clone, Debug, PartialEq)]
pub struct ScorerConfig {
    /// Points a series must have before it is scored at all: a baseline learnt from a handful
    /// of points calls everything an anomaly.
    pub warmup_points: u32,
    /// Learning rate of the level (per point). Small: a level is a long memory.
    pub level_alpha: f64,
    /// Learning rate of the scale (mean absolute residual).
    pub scale_alpha: f64,
    /// Learning rate of the long-run error of each model, used to choose between them.
    pub error_alpha: f64,
    /// Learning rate of the short-term mean of residuals that detects sustained shifts: about
    /// `2 / alpha` points of evidence are pooled, so a small shift is found after a few points.
    pub shift_alpha: f64,
    /// Residuals are clipped at this many scales when they update the baseline (Huber-style),
    /// so outliers barely move it.
    pub clip: f64,
    /// Learn a daily profile and use it when it predicts better than the level alone.
    pub seasonal: bool,
    /// How much one day of data moves the daily profile (0..1).
    pub season_alpha_per_day: f64,
    /// Learning rate of the deseasonalised level (per point): slower than the plain level, or
    /// it would follow the daily curve itself and leave the profile nothing to learn.
    pub season_level_alpha: f64,
    /// A shift must stay this significant (in standard errors) ...
    pub accept_shift_z: f64,
    /// ... for this many consecutive points before it becomes the new normal (the level is
    /// moved to it): a level shift is an anomaly when it happens, not forever after.
    pub accept_shift_after: u32,
    /// The scale never drops below this fraction of the level's magnitude, so a flat series
    /// does not turn float noise into alarms.
    pub relative_scale_floor: f64,
    /// A scored value outside the whole range the series has shown (every accepted sample,
    /// warm-up included) by more than this fraction of that range is
    /// [`PointScore::beyond_range`]: "never seen before", however the tails judge it. Numenta's
    /// NAB detector calls this a spatial anomaly and uses the same 5 %. `f64::INFINITY` turns
    /// it off.
    pub range_tolerance: f64,
}

impl Default for ScorerConfig {
    fn default() -> Self {
        ScorerConfig {
            warmup_points: 60,
            level_alpha: 0.05,
            scale_alpha: 0.02,
            error_alpha: 0.01,
            shift_alpha: 0.2,
            clip: 4.0,
            seasonal: true,
            season_alpha_per_day: 0.3,
            season_level_alpha: 0.01,
            accept_shift_z: 4.0,
            accept_shift_after: 12,
            relative_scale_floor: 1e-4,
            range_tolerance: 0.05,
        }
    }
}

/// Which way a point (or a window) departs from its baseline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Above the expected value.
    #[default]
    Up,
    /// Below the expected value.
    Down,
}

impl Direction {
    /// `up` or `down`, for keys and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// Why a sample was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// NaN or ±∞: carries no level information.
    NotFinite,
    /// Not newer than the series' latest accepted sample: applying it would rewrite history,
    /// so it is dropped (the baseline never goes back in time).
    OutOfOrder,
}

/// What happened to a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointStatus {
    /// Scored against a warm baseline.
    Scored,
    /// Learnt from but not scored: the baseline is still warming up.
    WarmingUp,
    /// Not used at all; the baseline is unchanged.
    Skipped(SkipReason),
}

/// The verdict on one point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PointScore {
    /// Anomaly score in `[0, 1]`: `1 - p^(1/4)` of the p-value below, so the interesting range
    /// (p from 1e-3 to 1e-12) spreads over 0.8–0.999 instead of piling up at 1.
    pub score: f64,
    /// Probability of a deviation at least this large under the baseline (smaller = stranger):
    /// the smaller of the point's and the sustained shift's tail probabilities (each from the
    /// series' own learnt tail on the side of the deviation), doubled for taking the smaller.
    pub p_value: f64,
    /// Robust z-score of the point: residual over the baseline's scale.
    pub z: f64,
    /// Standardised short-term mean of residuals (evidence of a sustained shift).
    pub shift_z: f64,
    /// What the baseline expected.
    pub expected: f64,
    /// The baseline's scale (standard-deviation units) at this point.
    pub scale: f64,
    /// Which way the point departs.
    pub direction: Direction,
    /// The value lies outside everything the series has shown before by more than
    /// [`ScorerConfig::range_tolerance`] of its range (only ever set on scored points). A
    /// series whose tails have grown heavy from many spikes still reports a spike several
    /// times larger than any before it this way.
    pub beyond_range: bool,
    /// Whether the point was scored.
    pub status: PointStatus,
}

impl PointScore {
    fn unscored(status: PointStatus, expected: f64) -> PointScore {
        PointScore {
            score: 0.0,
            p_value: 1.0,
            z: 0.0,
            shift_z: 0.0,
            expected,
            scale: 0.0,
            direction: Direction::Up,
            beyond_range: false,
            status,
        }
    }

    /// `1 - p_value`: how sure the baseline is that the point is not ordinary.
    pub fn confidence(&self) -> f64 {
        1.0 - self.p_value
    }
}

/// One predictor's running state: a robust level and what its residuals look like.
#[derive(Clone, Copy, Debug, Default)]
struct Model {
    level: f64,
    /// Mean absolute residual, Huber-clipped updates: the scale.
    dev: f32,
    /// Long-run mean absolute residual, unclipped: which predictor is better.
    err: f32,
    /// Short-term mean of clipped standardised residuals: sustained shifts.
    shift: f32,
    /// Short-term mean of residuals in value units: where an accepted shift moves the level.
    recent: f32,
    /// Consecutive points with a significant sustained shift.
    run: u16,
}

impl Model {
    /// Updates the shift statistic with the standardised residual `z` and the raw residual `r`;
    /// returns the shift in standard errors of such a mean.
    fn track_shift(&mut self, cfg: &ScorerConfig, z: f64, r: f64, sigma: f64) -> f64 {
        let a = cfg.shift_alpha as f32;
        self.shift += a * (z.clamp(-cfg.clip, cfg.clip) as f32 - self.shift);
        self.recent += a * (r.clamp(-20.0 * sigma, 20.0 * sigma) as f32 - self.recent);
        f64::from(self.shift / (a / (2.0 - a)).sqrt())
    }

    /// Learns from residual `r` (scale `sigma`): level, scale, error, and accepting a shift
    /// that has lasted as the new normal. Returns the accepted level change, if any.
    fn learn(
        &mut self,
        cfg: &ScorerConfig,
        alpha: f64,
        r: f64,
        sigma: f64,
        shift_z: f64,
        warming: Option<u32>,
    ) -> f64 {
        let c = cfg.clip;
        self.level += alpha * r.clamp(-c * sigma, c * sigma);
        match warming {
            // Plain running mean while warming up: the scale starts from nothing, and clipping
            // against a scale of nothing would keep it there.
            Some(n) => self.dev += (r.abs() as f32 - self.dev) / n.max(1) as f32,
            None => self.dev += cfg.scale_alpha as f32 * (r.abs().min(c * sigma) as f32 - self.dev),
        }
        self.err += cfg.error_alpha as f32 * (r.abs() as f32 - self.err);
        if shift_z.abs() >= cfg.accept_shift_z {
            self.run = self.run.saturating_add(1);
        } else {
            self.run = 0;
        }
        if u32::from(self.run) < cfg.accept_shift_after {
            return 0.0;
        }
        let delta = f64::from(self.recent);
        self.level += delta;
        self.shift = 0.0;
        self.recent = 0.0;
        self.run = 0;
        delta
    }
}

/// The seasonal model of a series, allocated once the series has warmed up (so the millions of
/// short-lived series pay only for the level model).
#[derive(Clone, Debug, Default)]
struct Season {
    profile: DailyProfile,
    /// Deseasonalised level and residual statistics.
    model: Model,
    /// When the profile started learning.
    start_ms: u64,
}

impl Season {
    /// Expected value and scale at `pos`, if the profile knows this time of day.
    fn predict(&self, pos: Position, floor: f64) -> Option<(f64, f64)> {
        self.profile.ready(pos).then(|| {
            let spread = self
                .profile
                .spread(pos)
                .max(0.5 * f64::from(self.model.dev));
            (
                self.model.level + self.profile.shape(pos),
                (MAD_TO_SIGMA * spread).max(floor),
            )
        })
    }
}

/// One series' baseline: feed it samples in time order, get a [`PointScore`] for each.
///
/// Two predictors run side by side — a robust level, and a deseasonalised level plus a daily
/// profile — and each point is judged by the one with the smaller long-run error, so a flat
/// series is never "seasonal" by accident and a daily one is never flagged every evening.
/// Size: see [`SeriesBaseline::MAX_BYTES`].
#[derive(Clone, Debug, Default)]
pub struct SeriesBaseline {
    last_ms: u64,
    plain: Model,
    /// Typical sampling interval (ms), for time-based learning rates.
    interval_ms: f32,
    points: u32,
    /// Tails of the point z-score (up, down) and of the shift statistic (up, down).
    tails: [Tail; 4],
    /// Smallest and largest accepted value so far.
    lo: f64,
    hi: f64,
    season: Option<Box<Season>>,
}

impl SeriesBaseline {
    /// Upper bound on the memory one series' baseline uses, heap included.
    pub const MAX_BYTES: usize =
        std::mem::size_of::<SeriesBaseline>() + std::mem::size_of::<Season>();

    /// A baseline that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Samples accepted so far.
    pub fn points(&self) -> u32 {
        self.points
    }

    /// Bytes this baseline uses now, heap included.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .season
                .as_ref()
                .map_or(0, |_| std::mem::size_of::<Season>())
    }

    /// Event time of the latest accepted sample.
    pub fn last_seen(&self) -> Option<Timestamp> {
        (self.points > 0).then_some(Timestamp(self.last_ms))
    }

    /// Scores `value` at `ts` against what the series did before, then learns from it.
    pub fn observe(&mut self, cfg: &ScorerConfig, ts: Timestamp, value: f64) -> PointScore {
        let level = self.plain.level;
        if !value.is_finite() {
            return PointScore::unscored(PointStatus::Skipped(SkipReason::NotFinite), level);
        }
        let t = ts.as_millis();
        if self.points == 0 {
            self.plain.level = value;
            (self.lo, self.hi) = (value, value);
            self.last_ms = t;
            self.points = 1;
            return PointScore::unscored(PointStatus::WarmingUp, value);
        }
        if t <= self.last_ms {
            return PointScore::unscored(PointStatus::Skipped(SkipReason::OutOfOrder), level);
        }
        let dt = (t - self.last_ms) as f32;
        self.interval_ms = if self.points == 1 {
            dt
        } else {
            self.interval_ms + 0.05 * (dt - self.interval_ms)
        };
        self.last_ms = t;
        self.points = self.points.saturating_add(1);
        let warm = self.points > cfg.warmup_points;

        // Both predictors' expectations.
        let floor = floor_of(level, cfg);
        let plain_sigma = (MAD_TO_SIGMA * f64::from(self.plain.dev)).max(floor);
        let r_plain = value - level;
        let pos = Position::of(t);
        let plain_err = self.plain.err;
        let seasonal = self
            .season
            .as_deref()
            .filter(|_| cfg.seasonal)
            .and_then(|s| {
                let usable =
                    t.saturating_sub(s.start_ms) >= 86_400_000 && s.model.err < 0.85 * plain_err;
                s.predict(pos, floor).map(|p| (p, usable))
            });
        let z_plain = r_plain / plain_sigma;
        let shift_plain = self.plain.track_shift(cfg, z_plain, r_plain, plain_sigma);
        let mut chosen = (level, plain_sigma, z_plain, shift_plain);
        let mut season_shift = None;
        if let (Some(((expected, sigma), use_season)), Some(s)) =
            (seasonal, self.season.as_deref_mut())
        {
            let r = value - expected;
            let z = r / sigma;
            let sz = s.model.track_shift(cfg, z, r, sigma);
            season_shift = Some((r, sigma, sz));
            if use_season {
                chosen = (expected, sigma, z, sz);
            }
        }
        let (expected, sigma, z, shift_z) = chosen;

        let mut out = PointScore::unscored(
            if warm {
                PointStatus::Scored
            } else {
                PointStatus::WarmingUp
            },
            expected,
        );
        out.z = z;
        out.shift_z = shift_z;
        out.scale = sigma;
        let margin = cfg.range_tolerance * (self.hi - self.lo);
        out.beyond_range =
            warm && self.hi > self.lo && (value > self.hi + margin || value < self.lo - margin);
        let above = value > self.hi;
        self.lo = self.lo.min(value);
        self.hi = self.hi.max(value);
        if warm {
            let [pu, pd, su, sd] = self.tails;
            let (p_point, dir_point) = if z >= 0.0 {
                (pu.p(z), Direction::Up)
            } else {
                (pd.p(-z), Direction::Down)
            };
            // The shift statistic's runs are not penalised as multiple tests here: its tail is
            // learnt from its own (autocorrelated) history, and windows need k of n points.
            let (p_shift, dir_shift) = if shift_z >= 0.0 {
                (su.p(shift_z), Direction::Up)
            } else {
                (sd.p(-shift_z), Direction::Down)
            };
            let (p, direction) = if p_point <= p_shift {
                (p_point, dir_point)
            } else {
                (p_shift, dir_shift)
            };
            out.p_value = (2.0 * p).min(1.0);
            out.direction = direction;
            out.score = 1.0 - out.p_value.sqrt().sqrt();
            // Tails learn only from a warm baseline; until they have seen a few hundred points
            // they lean on their normal prior.
            let seen = (self.points - cfg.warmup_points) as f32;
            let ra = (1.0 / (seen + 100.0)).max(0.002);
            self.tails[0].learn(z, ra, 0.05);
            self.tails[1].learn(-z, ra, 0.05);
            self.tails[2].learn(shift_z, ra, 0.05);
            self.tails[3].learn(-shift_z, ra, 0.05);
        }
        if out.beyond_range {
            out.direction = if above {
                Direction::Up
            } else {
                Direction::Down
            };
        }

        // Learn.
        let warming = (!warm).then_some(self.points - 1);
        self.plain.learn(
            cfg,
            cfg.level_alpha,
            r_plain,
            plain_sigma,
            shift_plain,
            warming,
        );
        if cfg.seasonal && warm && self.season.is_none() {
            self.season = Some(Box::new(Season {
                model: Model {
                    level: self.plain.level,
                    dev: self.plain.dev,
                    err: self.plain.err,
                    ..Model::default()
                },
                start_ms: t,
                ..Season::default()
            }));
        }
        if let Some(s) = self.season.as_deref_mut() {
            let interval = f64::from(self.interval_ms.max(1.0));
            let rate = (cfg.season_alpha_per_day * interval / 1_800_000.0).clamp(0.002, 0.5);
            match season_shift {
                Some((r, sigma, sz)) => {
                    let shape = s.profile.shape(pos);
                    let rc = r.clamp(-cfg.clip * sigma, cfg.clip * sigma);
                    s.profile
                        .learn(pos, shape + rc, rc.abs() / MAD_TO_SIGMA, rate);
                    s.model
                        .learn(cfg, cfg.season_level_alpha, r, sigma, sz, None);
                }
                // A knot's first day: take the deviation as it is (nothing to clip against).
                None => {
                    s.profile
                        .learn(pos, value - s.model.level, f64::from(self.plain.dev), rate)
                }
            }
        }
        out
    }
}

/// The smallest scale a series may have, so a flat series does not turn float noise into alarms.
fn floor_of(level: f64, cfg: &ScorerConfig) -> f64 {
    (cfg.relative_scale_floor * level.abs()).max(1e-12)
}

/// A [`SeriesBaseline`] with its own configuration: the scorer to use on one series alone
/// (evaluation harnesses, notebooks), where carrying the config separately is a nuisance.
#[derive(Clone, Debug, Default)]
pub struct AnomalyScorer {
    config: ScorerConfig,
    baseline: SeriesBaseline,
}

impl AnomalyScorer {
    /// A fresh scorer.
    pub fn new(config: ScorerConfig) -> Self {
        AnomalyScorer {
            config,
            baseline: SeriesBaseline::new(),
        }
    }

    /// Scores and learns one sample.
    pub fn observe(&mut self, ts: Timestamp, value: f64) -> PointScore {
        self.baseline.observe(&self.config, ts, value)
    }

    /// The baseline so far.
    pub fn baseline(&self) -> &SeriesBaseline {
        &self.baseline
    }
}
