//! The metric anomaly detector on the Numenta Anomaly Benchmark.
//!
//! ```sh
//! cargo run --release -p kaizen-benches --bin eval-nab -- \
//!     ../shared/data/nab/data ../shared/data/nab/combined_windows.json /tmp/nab-results
//! ```
//!
//! Streams every `<category>/<file>.csv` (`timestamp,value`) through one [`SeriesBaseline`] and
//! [`AnomalyWindow`] per file — no lookahead, one configuration (the library defaults) for every
//! file — and writes NAB results files (`<out>/kaizen/<category>/kaizen_<file>.csv`:
//! `timestamp,value,anomaly_score,label`) and NAB's per-profile score tables
//! (`<out>/kaizen/kaizen_<profile>_scores.csv`). The default `--output windows` reports what the
//! detector does: a row's score is the confidence of the anomaly window it opens (`1 - p^(1/4)`
//! of the window's smallest p-value so far, 1 when the window holds a value beyond the series'
//! whole range so far, 0 when it repeats the previous window a day later), 0 on every other
//! row; NAB's optimised threshold
//! then plays the role of `MetricAnomalyConfig::signal_p`. `--output points` reports every
//! point's score instead.
//!
//! Prints one JSON line per profile (NAB score with the corpus-wide optimised threshold,
//! window-level precision/recall/F1 at that threshold), one for the scorer's speed and a
//! summary line. Categories and files are discovered by listing; a file without an entry in the
//! label file has no windows. On a terminal, stderr shows a progress bar per stage (reading
//! files, scoring points, sweeping profiles, timing the scorer) with the current file or profile.

#[path = "../nab.rs"]
mod nab;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use kaizen_benches::progress::Progress;
use kaizen_model::Timestamp;
use kaizen_operators::{
    AnomalyScorer, AnomalyWindow, ScorerConfig, SeriesBaseline, WindowConfig, WindowEvent,
    WindowInfo,
};
use serde_json::json;

use nab::{Profile, SweepPoint, ThresholdScore, PROFILES};

/// Evaluate kaizen's metric anomaly scorer on NAB.
#[derive(Parser, Debug)]
struct Args {
    /// NAB data folder (`<category>/<file>.csv`).
    data: PathBuf,
    /// NAB label file (`combined_windows.json`).
    labels: PathBuf,
    /// Where the results files go (`<out>/kaizen/...`).
    out: PathBuf,
    /// What the detector reports per row: the anomaly windows as kaizen opens them (the score
    /// is the window's confidence at the row that opened it, 0 elsewhere) or every point's score.
    #[arg(long, value_enum, default_value_t = Output::Windows)]
    output: Output,
    /// Print every point of the files whose name contains this to stderr (debugging).
    #[arg(long)]
    trace: Option<String>,
    /// Override a scorer or window setting, `name=value` (repeatable), e.g. `--set clip=4`.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Seconds to spend measuring the scorer's speed.
    #[arg(long, default_value_t = 2.0)]
    speed_seconds: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    Windows,
    Points,
}

/// One data file, read.
struct DataFile {
    /// `category/file.csv`, as in the label file.
    name: String,
    raw_ts: Vec<String>,
    raw_values: Vec<String>,
    ts: Vec<Timestamp>,
    values: Vec<f64>,
    /// Inclusive row ranges of the labelled windows.
    windows: Vec<(usize, usize)>,
}

fn parse_ts(s: &str) -> Result<Timestamp> {
    let s = s.trim();
    let with_zone = if s.ends_with('Z') || s.contains('+') {
        s.to_owned()
    } else {
        format!("{s}Z")
    };
    Timestamp::parse(&with_zone).with_context(|| format!("bad timestamp {s:?}"))
}

fn read_labels(path: &Path) -> Result<BTreeMap<String, Vec<(Timestamp, Timestamp)>>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let Some(map) = v.as_object() else {
        bail!("{}: expected an object", path.display());
    };
    let mut out = BTreeMap::new();
    for (file, windows) in map {
        let mut ws = Vec::new();
        for w in windows.as_array().into_iter().flatten() {
            let pair = w.as_array().map(Vec::as_slice).unwrap_or_default();
            let [a, b] = pair else {
                bail!("{file}: a window is not [start, end]");
            };
            let (Some(a), Some(b)) = (a.as_str(), b.as_str()) else {
                bail!("{file}: window bounds must be strings");
            };
            ws.push((parse_ts(a)?, parse_ts(b)?));
        }
        out.insert(file.clone(), ws);
    }
    Ok(out)
}

fn read_file(
    path: &Path,
    name: String,
    labels: &BTreeMap<String, Vec<(Timestamp, Timestamp)>>,
) -> Result<DataFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut f = DataFile {
        name,
        raw_ts: Vec::new(),
        raw_values: Vec::new(),
        ts: Vec::new(),
        values: Vec::new(),
        windows: Vec::new(),
    };
    for (i, line) in text.lines().enumerate().skip(1) {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((t, v)) = line.split_once(',') else {
            bail!("{}:{}: expected timestamp,value", path.display(), i + 1);
        };
        f.ts.push(parse_ts(t)?);
        // Unparseable values are streamed as NaN: the scorer skips them like any bad sample.
        f.values.push(v.trim().parse().unwrap_or(f64::NAN));
        f.raw_ts.push(t.to_owned());
        f.raw_values.push(v.trim().to_owned());
    }
    for &(a, b) in labels.get(&f.name).map(Vec::as_slice).unwrap_or_default() {
        let start = f.ts.iter().position(|t| *t >= a);
        let end = f.ts.iter().rposition(|t| *t <= b);
        if let (Some(s), Some(e)) = (start, end) {
            if s <= e {
                f.windows.push((s, e));
            }
        }
    }
    f.windows.sort_unstable();
    Ok(f)
}

fn discover(data: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    let mut categories: Vec<PathBuf> = std::fs::read_dir(data)
        .with_context(|| format!("{}", data.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    categories.sort();
    for dir in categories {
        let cat = dir
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let mut csvs: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "csv"))
            .collect();
        csvs.sort();
        for p in csvs {
            let file = p.file_name().and_then(|s| s.to_str()).unwrap_or_default();
            files.push((format!("{cat}/{file}"), p));
        }
    }
    Ok(files)
}

/// The detector's anomaly score for every row of one file, streamed in order.
fn detect(
    file: &DataFile,
    output: Output,
    scorer: &ScorerConfig,
    windows: &WindowConfig,
    trace: Option<&str>,
) -> Vec<f64> {
    let trace = trace.is_some_and(|t| file.name.contains(t));
    let mut baseline = SeriesBaseline::new();
    let mut window = AnomalyWindow::new();
    let mut out = Vec::with_capacity(file.values.len());
    for (&ts, &v) in file.ts.iter().zip(&file.values) {
        let point = baseline.observe(scorer, ts, v);
        let event = window.update(windows, ts, v, &point);
        if trace {
            eprintln!(
                "{} {} v={v} exp={:.4} sc={:.4} z={:.2} sz={:.2} p={:.3e} s={:.4} {:?} {event:?}",
                out.len(),
                file.raw_ts[out.len()],
                point.expected,
                point.scale,
                point.z,
                point.shift_z,
                point.p_value,
                point.score,
                point.direction
            );
            if std::env::var_os("NAB_TRACE_STATE").is_some() {
                eprintln!("    {baseline:?}");
            }
        }
        out.push(match output {
            Output::Points => point.score,
            Output::Windows => match event {
                Some(WindowEvent::Opened(info)) => opening_score(&info),
                _ => 0.0,
            },
        });
    }
    out
}

/// The score of the row that opens a window: its confidence, `1 - p^(1/4)` of the smallest
/// p-value so far, or full confidence when the window holds a value beyond everything the
/// series showed before ([`WindowInfo::beyond_range`], Numenta's "spatial anomaly", which their
/// NAB detector also reports as 1.0). A window that repeats the previous one a day later
/// ([`WindowInfo::daily_repeat`]) is reported as 0 unless it is beyond the range: a daily job's
/// spike is what the series does, and the engine's responders would not want it paged daily.
fn opening_score(info: &WindowInfo) -> f64 {
    if info.beyond_range {
        1.0
    } else if info.daily_repeat {
        0.0
    } else {
        1.0 - info.min_p.sqrt().sqrt()
    }
}

struct ProfileResult {
    best: ThresholdScore,
    null: f64,
    perfect: f64,
    normalised: f64,
}

fn evaluate(files: &[DataFile], scores: &[Vec<f64>], profile: &Profile) -> ProfileResult {
    let mut points: Vec<SweepPoint> = Vec::new();
    let mut nulls: Vec<SweepPoint> = Vec::new();
    let mut windows = 0u32;
    for (f, s) in files.iter().zip(scores) {
        nab::sweep_file(s, &f.windows, profile, windows, &mut points);
        windows += nab::sweep_file(
            &vec![0.0; s.len()],
            &f.windows,
            profile,
            windows,
            &mut nulls,
        );
    }
    let fallback = ThresholdScore {
        threshold: 1.1,
        score: 0.0,
        tp: 0,
        tn: 0,
        fp: 0,
        fn_: 0,
    };
    let best = nab::best_threshold(&nab::scores_by_threshold(&points, windows, profile))
        .unwrap_or(fallback);
    let null = nab::best_threshold(&nab::scores_by_threshold(&nulls, windows, profile))
        .map_or(0.0, |r| r.score);
    let perfect = f64::from(windows) * profile.tp;
    ProfileResult {
        best,
        null,
        perfect,
        normalised: nab::normalise(best.score, null, perfect),
    }
}

/// Window-level precision/recall/F1 at `threshold`: an alarm is a row at or above the threshold
/// whose previous row was below it (after probation); it is true if it falls in a labelled
/// window. A window is found if any of its scored rows is at or above the threshold.
fn window_prf(
    files: &[DataFile],
    scores: &[Vec<f64>],
    threshold: f64,
) -> (f64, f64, f64, u64, u64, u64, u64) {
    let (mut tp_alarms, mut alarms, mut found, mut total) = (0u64, 0u64, 0u64, 0u64);
    for (f, s) in files.iter().zip(scores) {
        let probation = nab::probation_rows(s.len());
        let inside = |i: usize| f.windows.iter().any(|&(a, b)| a <= i && i <= b);
        for i in probation..s.len() {
            if s[i] >= threshold && (i == probation || s[i - 1] < threshold) {
                alarms += 1;
                tp_alarms += u64::from(inside(i));
            }
        }
        for &(a, b) in &f.windows {
            if b < probation {
                continue;
            }
            total += 1;
            found += u64::from((a.max(probation)..=b).any(|i| s[i] >= threshold));
        }
    }
    let precision = if alarms == 0 {
        0.0
    } else {
        tp_alarms as f64 / alarms as f64
    };
    let recall = if total == 0 {
        0.0
    } else {
        found as f64 / total as f64
    };
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    (precision, recall, f1, alarms, tp_alarms, found, total)
}

fn write_results(out: &Path, files: &[DataFile], scores: &[Vec<f64>]) -> Result<()> {
    for (f, s) in files.iter().zip(scores) {
        let (cat, file) = f.name.split_once('/').unwrap_or(("", f.name.as_str()));
        let dir = out.join("kaizen").join(cat);
        std::fs::create_dir_all(&dir)?;
        let mut text = String::from("timestamp,value,anomaly_score,label\n");
        for (i, ((ts, value), score)) in f.raw_ts.iter().zip(&f.raw_values).zip(s).enumerate() {
            let label = u8::from(f.windows.iter().any(|&(a, b)| a <= i && i <= b));
            let _ = writeln!(text, "{ts},{value},{score},{label}");
        }
        std::fs::write(dir.join(format!("kaizen_{file}")), text)?;
    }
    Ok(())
}

fn write_score_table(
    out: &Path,
    files: &[DataFile],
    scores: &[Vec<f64>],
    profile: &Profile,
    threshold: f64,
) -> Result<()> {
    let mut text = String::from("Detector,Profile,File,Threshold,Score,TP,TN,FP,FN,Total_Count\n");
    let mut totals = [0.0f64; 6];
    for (f, s) in files.iter().zip(scores) {
        let mut pts = Vec::new();
        let n = nab::sweep_file(s, &f.windows, profile, 0, &mut pts);
        let rows = nab::scores_by_threshold(&pts, n, profile);
        // The row for this threshold: the last one whose threshold is not below it.
        let row = rows
            .iter()
            .take_while(|r| r.threshold >= threshold)
            .last()
            .copied();
        let Some(r) = row else { continue };
        let vals = [
            r.score,
            r.tp as f64,
            r.tn as f64,
            r.fp as f64,
            r.fn_ as f64,
            s.len() as f64,
        ];
        for (t, v) in totals.iter_mut().zip(vals) {
            *t += v;
        }
        let _ = writeln!(
            text,
            "kaizen,{},{},{threshold},{},{},{},{},{},{}",
            profile.name,
            f.name,
            r.score,
            r.tp,
            r.tn,
            r.fp,
            r.fn_,
            s.len()
        );
    }
    let _ = writeln!(
        text,
        "Totals,,,,{},{},{},{},{},{}",
        totals[0], totals[1], totals[2], totals[3], totals[4], totals[5]
    );
    std::fs::write(
        out.join("kaizen")
            .join(format!("kaizen_{}_scores.csv", profile.name)),
        text,
    )?;
    Ok(())
}

/// Points per second through the scorer alone (and with the window state machine).
fn speed(
    files: &[DataFile],
    scorer: &ScorerConfig,
    windows: &WindowConfig,
    seconds: f64,
    progress: &Progress,
) -> (f64, f64, u64) {
    let measure = |with_window: bool| {
        progress.set_message(if with_window {
            "scorer and window"
        } else {
            "scorer alone"
        });
        let start = Instant::now();
        let mut n = 0u64;
        let mut sink = 0.0f64;
        while start.elapsed().as_secs_f64() < seconds / 2.0 || n == 0 {
            for f in files {
                let mut s = AnomalyScorer::new(scorer.clone());
                let mut w = AnomalyWindow::new();
                for (&ts, &v) in f.ts.iter().zip(&f.values) {
                    let p = s.observe(ts, v);
                    sink += p.score;
                    if with_window && w.update(windows, ts, v, &p).is_some() {
                        sink += 1.0;
                    }
                }
                n += f.values.len() as u64;
            }
        }
        std::hint::black_box(sink);
        let result = (n as f64 / start.elapsed().as_secs_f64(), n);
        progress.inc(1);
        result
    };
    let (scorer_pps, n) = measure(false);
    let (window_pps, _) = measure(true);
    (scorer_pps, window_pps, n)
}

/// `--set name=value`: every numeric setting of [`ScorerConfig`] and [`WindowConfig`].
fn apply_setting(s: &mut ScorerConfig, w: &mut WindowConfig, kv: &str) -> Result<()> {
    let Some((name, value)) = kv.split_once('=') else {
        bail!("--set {kv:?}: expected name=value");
    };
    let v: f64 = value.parse().with_context(|| format!("--set {kv:?}"))?;
    match name {
        "warmup_points" => s.warmup_points = v as u32,
        "level_alpha" => s.level_alpha = v,
        "scale_alpha" => s.scale_alpha = v,
        "error_alpha" => s.error_alpha = v,
        "shift_alpha" => s.shift_alpha = v,
        "clip" => s.clip = v,
        "seasonal" => s.seasonal = v != 0.0,
        "season_alpha_per_day" => s.season_alpha_per_day = v,
        "season_level_alpha" => s.season_level_alpha = v,
        "accept_shift_z" => s.accept_shift_z = v,
        "accept_shift_after" => s.accept_shift_after = v as u32,
        "relative_scale_floor" => s.relative_scale_floor = v,
        "range_tolerance" => s.range_tolerance = v,
        "open_p" => w.open_p = v,
        "open_k" => w.open_k = v as u8,
        "open_n" => w.open_n = v as u8,
        "instant_p" => w.instant_p = v,
        "daily_repeat_tolerance_ms" => w.daily_repeat_tolerance_ms = v as u64,
        "open_beyond_range" => w.open_beyond_range = v != 0.0,
        "close_p" => w.close_p = v,
        "close_after" => w.close_after = v as u16,
        _ => bail!("--set: unknown setting {name:?}"),
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let labels = read_labels(&args.labels)?;
    let mut files = Vec::new();
    let discovered = discover(&args.data)?;
    let progress = Progress::new("eval-nab reading", Some(discovered.len() as u64), "files");
    for (name, path) in discovered {
        progress.set_message(name.clone());
        files.push(read_file(&path, name, &labels)?);
        progress.inc(1);
    }
    progress.finish();
    if files.is_empty() {
        bail!("no <category>/<file>.csv under {}", args.data.display());
    }
    let mut scorer = ScorerConfig::default();
    let mut window = WindowConfig::default();
    for kv in &args.set {
        apply_setting(&mut scorer, &mut window, kv)?;
    }
    let rows: usize = files.iter().map(|f| f.values.len()).sum();
    let progress = Progress::new("eval-nab scoring", Some(rows as u64), "points");
    let trace = args.trace.as_deref();
    let mut scores: Vec<Vec<f64>> = Vec::with_capacity(files.len());
    for f in &files {
        progress.set_message(f.name.clone());
        let s = if trace.is_some_and(|t| f.name.contains(t)) {
            // The trace goes to stderr: keep the bar out of its way.
            progress.suspend(|| detect(f, args.output, &scorer, &window, trace))
        } else {
            detect(f, args.output, &scorer, &window, trace)
        };
        scores.push(s);
        progress.inc(f.values.len() as u64);
    }
    progress.set_message("writing the results files");
    write_results(&args.out, &files, &scores)?;
    progress.finish();

    let mut summary = serde_json::Map::new();
    let progress = Progress::new("eval-nab sweeping", Some(PROFILES.len() as u64), "profiles");
    for profile in &PROFILES {
        progress.set_message(profile.name);
        let r = evaluate(&files, &scores, profile);
        write_score_table(&args.out, &files, &scores, profile, r.best.threshold)?;
        let (precision, recall, f1, alarms, tp_alarms, found, total) =
            window_prf(&files, &scores, r.best.threshold);
        progress.inc(1);
        progress.println(json!({
            "bench": "eval-nab", "profile": profile.name, "nab_score": r.normalised,
            "threshold": r.best.threshold, "raw_score": r.best.score, "null_score": r.null,
            "perfect_score": r.perfect, "tp_rows": r.best.tp, "fp_rows": r.best.fp,
            "fn_rows": r.best.fn_, "tn_rows": r.best.tn, "precision": precision,
            "recall": recall, "f1": f1, "alarms": alarms, "true_alarms": tp_alarms,
            "windows_found": found, "windows": total,
        }));
        summary.insert(profile.name.to_owned(), json!(r.normalised));
    }
    progress.finish();
    let progress = Progress::new("eval-nab timing", Some(2), "passes");
    let (scorer_pps, window_pps, n) =
        speed(&files, &scorer, &window, args.speed_seconds, &progress);
    progress.finish();
    println!(
        "{}",
        json!({"bench": "eval-nab", "stage": "speed", "scorer_points_per_sec": scorer_pps,
               "scorer_and_window_points_per_sec": window_pps, "points": n})
    );
    println!(
        "{}",
        json!({"bench": "eval-nab", "summary": true, "output": format!("{:?}", args.output).to_lowercase(),
               "files": files.len(), "rows": rows, "windows": files.iter().map(|f| f.windows.len()).sum::<usize>(),
               "nab": summary, "scorer_points_per_sec": scorer_pps})
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_beyond_the_range_opens_with_full_confidence() {
        let info = WindowInfo {
            onset: Timestamp(1),
            ts: Timestamp(1),
            direction: kaizen_operators::Direction::Up,
            peak: 9.0,
            expected_at_peak: 1.0,
            min_p: 1e-4,
            max_z: 5.0,
            magnitude: 5.0,
            anomalous_points: 1,
            beyond_range: false,
            daily_repeat: false,
        };
        assert!((opening_score(&info) - 0.9).abs() < 1e-12);
        let repeat = WindowInfo {
            daily_repeat: true,
            ..info
        };
        assert_eq!(opening_score(&repeat), 0.0);
        let beyond = WindowInfo {
            beyond_range: true,
            ..info
        };
        assert_eq!(opening_score(&beyond), 1.0);
    }
}
