//! The Numenta Anomaly Benchmark's scoring, reimplemented faithfully (numenta/NAB `sweeper.py`,
//! `optimizer.py`, `runner.normalize`): per-point sweep scores from the scaled sigmoid of the
//! position relative to the labelled windows, only the earliest detection in a window counting,
//! false positives weighted by A_FP and missed windows by A_FN, the first 15 % of every file
//! (at most 750 rows) ignored, one threshold for the whole corpus per profile chosen by sweeping
//! every distinct score, and normalisation against the null and the perfect detector.
//!
//! Deliberate differences, none of which changes a score on NAB's own layout: windows are
//! located by timestamp range (first row at or after the start, last row at or before the end)
//! instead of by exact timestamp equality, a one-row window counts an FP after it as far away
//! instead of dividing by zero, and the perfect score counts the windows of the files scored
//! (NAB counts every window in the label file, which is the same when the folder is complete).

/// One application profile: the weights of a true positive, a false positive and a missed window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Profile {
    /// NAB's profile name.
    pub name: &'static str,
    /// A_TP.
    pub tp: f64,
    /// A_FP.
    pub fp: f64,
    /// A_FN.
    pub fn_: f64,
}

/// NAB's three profiles (`config/profiles.json`).
pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "standard",
        tp: 1.0,
        fp: 0.11,
        fn_: 1.0,
    },
    Profile {
        name: "reward_low_FP_rate",
        tp: 1.0,
        fp: 0.22,
        fn_: 1.0,
    },
    Profile {
        name: "reward_low_FN_rate",
        tp: 1.0,
        fp: 0.11,
        fn_: 2.0,
    },
];

/// The scaled sigmoid of NAB: +0.987 at the left edge of a window (relative position -1), 0 at
/// its right edge, towards -1 far after it.
pub fn scaled_sigmoid(relative_position: f64) -> f64 {
    if relative_position >= 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * relative_position).exp()) - 1.0
    }
}

/// Rows of a file in its probationary period (not scored): `min(floor(0.15 n), 0.15 * 5000)`.
pub fn probation_rows(rows: usize) -> usize {
    ((0.15 * rows as f64).floor().min(750.0)) as usize
}

/// One scorable row of the corpus.
#[derive(Clone, Copy, Debug)]
pub struct SweepPoint {
    /// The detector's anomaly score.
    pub score: f64,
    /// NAB's weighted score of a detection at this row.
    pub sweep: f64,
    /// Corpus-wide id of the window the row is in, if any.
    pub window: Option<u32>,
}

/// A file's labelled windows as inclusive row ranges, in time order.
pub type Windows = [(usize, usize)];

/// NAB's `calcSweepScore` for one file: appends the rows after probation to `out`. Window ids
/// are numbered from `first_window`; returns how many windows the file has.
pub fn sweep_file(
    scores: &[f64],
    windows: &Windows,
    profile: &Profile,
    first_window: u32,
    out: &mut Vec<SweepPoint>,
) -> u32 {
    let max_tp = scaled_sigmoid(-1.0);
    let probation = probation_rows(scores.len());
    let mut next = 0usize;
    let mut current: Option<(u32, usize, f64)> = None; // (id, right index, width)
    let mut previous: Option<(usize, f64)> = None; // (right index, width)
    for (i, &score) in scores.iter().enumerate() {
        if current.is_none() && next < windows.len() && i == windows[next].0 {
            let (l, r) = windows[next];
            current = Some((first_window + next as u32, r, (r - l + 1) as f64));
            next += 1;
        }
        let (sweep, window) = match current {
            Some((id, right, width)) => {
                let position = -((right as f64 - i as f64 + 1.0) / width);
                (scaled_sigmoid(position) * profile.tp / max_tp, Some(id))
            }
            None => {
                let position = match previous {
                    Some((right, width)) if width > 1.0 => (i - right) as f64 / (width - 1.0),
                    _ => 3.0,
                };
                (scaled_sigmoid(position) * profile.fp, None)
            }
        };
        if i >= probation {
            out.push(SweepPoint {
                score,
                sweep,
                window,
            });
        }
        if let Some((_, right, width)) = current {
            if i == right {
                previous = Some((right, width));
                current = None;
            }
        }
    }
    windows.len() as u32
}

/// The corpus score at one threshold, with NAB's counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThresholdScore {
    /// Rows with `score >= threshold` are detections.
    pub threshold: f64,
    /// Raw (unnormalised) score.
    pub score: f64,
    /// Detected rows inside windows.
    pub tp: u64,
    /// Undetected rows outside windows.
    pub tn: u64,
    /// Detected rows outside windows.
    pub fp: u64,
    /// Undetected rows inside windows.
    pub fn_: u64,
}

/// NAB's `calcScoreByThreshold`: the score at every distinct threshold, highest first, starting
/// at 1.1 (nothing detected). `windows` is the number of window ids used.
pub fn scores_by_threshold(
    points: &[SweepPoint],
    windows: u32,
    profile: &Profile,
) -> Vec<ThresholdScore> {
    let mut order: Vec<&SweepPoint> = points.iter().collect();
    order.sort_by(|a, b| b.score.total_cmp(&a.score));
    // A window is in play only if some scorable row is in it.
    let mut part: Vec<Option<f64>> = vec![None; windows as usize];
    for p in points {
        if let Some(w) = p.window {
            part[w as usize] = Some(-profile.fn_);
        }
    }
    let mut fp_part = 0.0;
    let mut window_sum: f64 = part.iter().flatten().sum();
    let mut tn = points.iter().filter(|p| p.window.is_none()).count() as u64;
    let mut fn_ = points.len() as u64 - tn;
    let (mut tp, mut fp) = (0u64, 0u64);
    let mut threshold = 1.1;
    let mut out = Vec::new();
    for p in order {
        if p.score != threshold {
            out.push(ThresholdScore {
                threshold,
                score: fp_part + window_sum,
                tp,
                tn,
                fp,
                fn_,
            });
            threshold = p.score;
        }
        match p.window {
            None => {
                fp += 1;
                tn -= 1;
                fp_part += p.sweep;
            }
            Some(w) => {
                tp += 1;
                fn_ -= 1;
                if let Some(v) = part[w as usize].as_mut() {
                    if p.sweep > *v {
                        window_sum += p.sweep - *v;
                        *v = p.sweep;
                    }
                }
            }
        }
    }
    out.push(ThresholdScore {
        threshold,
        score: fp_part + window_sum,
        tp,
        tn,
        fp,
        fn_,
    });
    out
}

/// NAB's optimiser: the row with the best score (the highest threshold among ties, as Python's
/// stable sort keeps it).
pub fn best_threshold(rows: &[ThresholdScore]) -> Option<ThresholdScore> {
    rows.iter()
        .copied()
        .fold(None, |best: Option<ThresholdScore>, r| match best {
            Some(b) if b.score >= r.score => Some(b),
            _ => Some(r),
        })
}

/// NAB's normalisation to 0–100: 0 for the null detector, 100 for the perfect one.
pub fn normalise(raw: f64, null: f64, perfect: f64) -> f64 {
    if perfect == null {
        0.0
    } else {
        100.0 * (raw - null) / (perfect - null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_matches_nab() {
        assert!((scaled_sigmoid(-1.0) - 0.986_614_298).abs() < 1e-8);
        assert!((scaled_sigmoid(-0.5) - 0.848_283_639).abs() < 1e-8);
        assert!(scaled_sigmoid(0.0).abs() < 1e-12);
        assert_eq!(scaled_sigmoid(3.0), -1.0);
    }

    #[test]
    fn earliest_detection_counts_once_and_fps_cost() {
        // 100 rows, probation 15, one window 40..=49.
        let windows = [(40usize, 49usize)];
        let mut scores = vec![0.0; 100];
        scores[40] = 1.0; // left edge: full credit
        scores[45] = 1.0; // later in the same window: no extra credit
        scores[20] = 1.0; // before any window: -A_FP
        let p = &PROFILES[0];
        let mut pts = Vec::new();
        sweep_file(&scores, &windows, p, 0, &mut pts);
        assert_eq!(pts.len(), 85);
        let rows = scores_by_threshold(&pts, 1, p);
        assert_eq!(rows[0].threshold, 1.1);
        assert!((rows[0].score + 1.0).abs() < 1e-12);
        let best = rows.iter().find(|r| r.threshold == 1.0).copied();
        let best = best.map(|r| r.score).unwrap_or(f64::NAN);
        assert!((best - (1.0 - 0.11)).abs() < 1e-9, "{best}");
    }
}
