//! Anomaly windows: turning a stream of point scores into "open at … / closed at …" with
//! hysteresis, so one incident is one window and a noisy point is not a page.

use kaizen_model::Timestamp;

use super::scorer::{Direction, PointScore, PointStatus};

const DAY_MS: u64 = 86_400_000;

/// When a window opens and closes.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowConfig {
    /// A point is anomalous when its p-value is at most this.
    pub open_p: f64,
    /// A window opens when `open_k` of the last `open_n` scored points are anomalous ...
    pub open_k: u8,
    /// ... (at most 32).
    pub open_n: u8,
    /// ... or at once on one point this extreme: a spike is one point long.
    pub instant_p: f64,
    /// ... or at once on a point beyond everything the series has shown
    /// ([`PointScore::beyond_range`]), which counts as anomalous whatever its p-value.
    pub open_beyond_range: bool,
    /// A point is normal when its p-value is above this (between the two it is neither, and
    /// keeps an open window open).
    pub close_p: f64,
    /// An open window closes after this many consecutive normal points.
    pub close_after: u16,
    /// [`WindowInfo::magnitude`] measures deviations in the series' usual spread, but never in
    /// less than this fraction of its usual level: a series that hardly ever moves must not
    /// claim thousands of σ for a 2 % change when origins are compared by how far they moved.
    pub magnitude_floor: f64,
    /// A window that opens one day (± this many milliseconds) after the previous one opened, in
    /// the same direction, is marked [`WindowInfo::daily_repeat`]: the daily job's spike, not
    /// news. Default: half an hour, the daily profile's resolution (0 turns it off).
    pub daily_repeat_tolerance_ms: u64,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            open_p: 1e-2,
            open_k: 3,
            open_n: 5,
            instant_p: 1e-4,
            open_beyond_range: true,
            close_p: 5e-2,
            close_after: 10,
            magnitude_floor: 0.01,
            daily_repeat_tolerance_ms: 1_800_000,
        }
    }
}

/// What a window looked like when it opened or closed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowInfo {
    /// First anomalous point of the window that moved by at least one usual spread (see
    /// `magnitude`), or the first anomalous point while none has.
    pub onset: Timestamp,
    /// When this state change happened (the confirming point, or the closing one).
    pub ts: Timestamp,
    /// Direction of the most extreme point.
    pub direction: Direction,
    /// The most extreme value so far (largest |z|).
    pub peak: f64,
    /// What the baseline expected at the peak.
    pub expected_at_peak: f64,
    /// Smallest p-value so far.
    pub min_p: f64,
    /// Largest |z| so far (point or sustained-shift z).
    pub max_z: f64,
    /// Largest deviation so far in units of the usual spread, floored at
    /// [`WindowConfig::magnitude_floor`] of the usual level: comparable across series, unlike
    /// `max_z` (whose tiny scales on flat series serve detection, not comparison).
    pub magnitude: f64,
    /// Anomalous points so far.
    pub anomalous_points: u32,
    /// Some anomalous point so far lay beyond the series' whole range
    /// ([`PointScore::beyond_range`]).
    pub beyond_range: bool,
    /// The window opened one day after the previous one, in the same direction (see
    /// [`WindowConfig::daily_repeat_tolerance_ms`]).
    pub daily_repeat: bool,
}

impl WindowInfo {
    /// `1 - min_p`.
    pub fn confidence(&self) -> f64 {
        1.0 - self.min_p
    }
}

/// A window state change.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WindowEvent {
    /// Enough anomalous points: the window is open.
    Opened(WindowInfo),
    /// Enough normal points (or the series went quiet): the window is closed.
    Closed(WindowInfo),
}

/// The hysteresis state machine of one series (about 100 bytes).
#[derive(Clone, Debug, Default)]
pub struct AnomalyWindow {
    info: Option<WindowInfo>,
    /// When the previous window opened (ms, 0 = never) and which way it went.
    last_open_ms: u64,
    last_open_direction: Direction,
    /// Last `open_n` scored points, newest in bit 0: 1 = anomalous.
    recent: u32,
    normal_run: u16,
    open: bool,
}

impl AnomalyWindow {
    /// A closed window with no history.
    pub fn new() -> Self {
        Self::default()
    }

    /// The window is open.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// The open (or pending) window so far.
    pub fn info(&self) -> Option<&WindowInfo> {
        self.info.as_ref()
    }

    /// Feeds one scored point; unscored points (warm-up, skipped) change nothing.
    pub fn update(
        &mut self,
        cfg: &WindowConfig,
        ts: Timestamp,
        value: f64,
        point: &PointScore,
    ) -> Option<WindowEvent> {
        if point.status != PointStatus::Scored {
            return None;
        }
        let n = u32::from(cfg.open_n.clamp(1, 32));
        let mask = if n >= 32 { u32::MAX } else { (1u32 << n) - 1 };
        let beyond = cfg.open_beyond_range && point.beyond_range;
        let anomalous = point.p_value <= cfg.open_p || beyond;
        // A new episode starts at an anomalous point with none among the previous n-1.
        if !self.open && anomalous && self.recent & (mask >> 1) == 0 {
            self.info = None;
        }
        self.recent = ((self.recent << 1) | u32::from(anomalous)) & mask;
        if anomalous || self.open {
            self.track(cfg, ts, value, point, anomalous);
        } else if self.recent == 0 {
            self.info = None;
        }
        if self.open {
            if point.p_value > cfg.close_p && !beyond {
                self.normal_run = self.normal_run.saturating_add(1);
            } else {
                self.normal_run = 0;
            }
            if self.normal_run >= cfg.close_after {
                return self.close(ts).map(WindowEvent::Closed);
            }
            return None;
        }
        let confirmed = self.recent.count_ones() >= u32::from(cfg.open_k.max(1))
            || (anomalous && point.p_value <= cfg.instant_p)
            || beyond;
        if confirmed {
            self.open = true;
            self.normal_run = 0;
            if let Some(info) = self.info.as_mut() {
                info.ts = ts;
                let t = ts.as_millis();
                let since = t.saturating_sub(self.last_open_ms);
                info.daily_repeat = self.last_open_ms > 0
                    && cfg.daily_repeat_tolerance_ms > 0
                    && since.abs_diff(DAY_MS) <= cfg.daily_repeat_tolerance_ms
                    && self.last_open_direction == info.direction;
                self.last_open_ms = t;
                self.last_open_direction = info.direction;
                return Some(WindowEvent::Opened(*info));
            }
        }
        None
    }

    fn track(
        &mut self,
        cfg: &WindowConfig,
        ts: Timestamp,
        value: f64,
        point: &PointScore,
        anomalous: bool,
    ) {
        let z = point.z.abs().max(point.shift_z.abs());
        let spread = point
            .scale
            .max(cfg.magnitude_floor * point.expected.abs())
            .max(f64::MIN_POSITIVE);
        let magnitude = ((value - point.expected).abs() / spread).min(1e12);
        let info = self.info.get_or_insert(WindowInfo {
            onset: ts,
            ts,
            direction: point.direction,
            peak: value,
            expected_at_peak: point.expected,
            min_p: point.p_value,
            max_z: z,
            magnitude,
            anomalous_points: 0,
            beyond_range: false,
            daily_repeat: false,
        });
        if anomalous {
            info.anomalous_points += 1;
            info.beyond_range |= cfg.open_beyond_range && point.beyond_range;
        }
        if z > info.max_z || (anomalous && info.anomalous_points == 1) {
            info.max_z = info.max_z.max(z);
            info.peak = value;
            info.expected_at_peak = point.expected;
            info.direction = point.direction;
        }
        info.min_p = info.min_p.min(point.p_value);
        // The episode began when the series first moved materially: a flat series' 0.01 %
        // wobble seconds before the real move must not make it look first to degrade.
        if info.magnitude < 1.0 && magnitude >= 1.0 {
            info.onset = ts;
        }
        info.magnitude = info.magnitude.max(magnitude);
    }

    /// Closes an open window at `ts` (e.g. the series went quiet); `None` if none was open.
    pub fn close(&mut self, ts: Timestamp) -> Option<WindowInfo> {
        if !self.open {
            return None;
        }
        self.open = false;
        self.recent = 0;
        self.normal_run = 0;
        self.info.take().map(|mut info| {
            info.ts = ts;
            info
        })
    }
}
