//! Root-cause accuracy on RCD-style fault-injection data (Sock Shop layout):
//! `<dir>/<service>-<fault>/<case>/{normal,anomalous}.csv`, columns `time,<svc>_<metric>,…`.
//! The root cause of every case is the folder's service.
//!
//! Each case is fed through the engine as metric events — the normal period, then the anomalous
//! period re-timed to follow it — with the Sock Shop topology. The engine's incidents rank
//! probable origins; AC@k is the share of cases whose root cause is among the first k, and
//! Avg@5 the mean of AC@1..5.
//!
//! A case can open several incidents (this data has restarts and load shifts besides the
//! injected fault). The case's ranking is that of the incident a responder triages first: the
//! most abnormal one, whose candidates show the largest deviation from normal (as BARO ranks
//! by the size of each metric's change). `ac@1_most_services` reads the incident with the
//! most services instead, for comparison with earlier runs.
//!
//! `cargo run --release -p kaizen-benches --bin eval-rca -- ../shared/data/sockshop-rca`
//!
//! On a terminal, stderr shows a progress bar over the cases (the current one named).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Parser;
use kaizen_benches::progress::Progress;
use kaizen_connectors::{JsonlSource, LatestInsights};
use kaizen_engine::{replay, EngineConfig, ReplayHooks};
use kaizen_model::{
    Event, EventBody, Insight, Labels, Metric, MetricKind, OriginCandidate, Symbol, Timestamp,
    Topology,
};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Folder of `<service>-<fault>/<case>/{normal,anomalous}.csv`.
    dir: PathBuf,
    /// Print one JSON line per case.
    #[arg(long)]
    verbose: bool,
}

/// Sock Shop: front-end → catalogue, carts, orders, user; orders → payment, shipping, carts,
/// user; shipping → queue-master via rabbitmq; each X → X-db.
fn sockshop_topology() -> Topology {
    let edges: &[(&str, &[&str])] = &[
        ("front-end", &["catalogue", "carts", "orders", "user"]),
        (
            "orders",
            &["payment", "shipping", "carts", "user", "orders-db"],
        ),
        ("shipping", &["rabbitmq"]),
        ("rabbitmq", &["queue-master"]),
        ("catalogue", &["catalogue-db"]),
        ("carts", &["carts-db"]),
        ("user", &["user-db"]),
    ];
    let mut services: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges {
        services.entry(from).or_default().extend(to.iter());
        for t in *to {
            services.entry(t).or_default();
        }
    }
    let json = json!({"services": services.iter().map(|(name, deps)| json!({
        "name": name, "user_facing": *name == "front-end", "depends_on": deps,
    })).collect::<Vec<_>>()});
    Topology::from_json(&json.to_string()).unwrap_or_default()
}

/// `carts-db_cpu` → (`carts-db`, `cpu`); `carts_lat_50` → (`carts`, `lat_50`).
fn split_column(column: &str) -> Option<(&str, &str)> {
    let i = column.find('_')?;
    Some((&column[..i], &column[i + 1..]))
}

/// A CSV's header and its rows as (unix seconds, values).
type Table = (Vec<String>, Vec<(u64, Vec<f64>)>);

fn read_csv(path: &Path) -> Result<Table> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .context("empty csv")?
        .split(',')
        .map(str::to_owned)
        .collect();
    let mut rows = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut fields = line.split(',');
        let Some(t) = fields.next().and_then(|t| t.trim().parse::<f64>().ok()) else {
            continue;
        };
        let values = fields
            .map(|f| f.trim().parse::<f64>().unwrap_or(f64::NAN))
            .collect();
        rows.push((t as u64, values));
    }
    Ok((header, rows))
}

/// The case as native JSONL: the anomalous rows continue right after the normal ones.
fn case_events(case: &Path) -> Result<String> {
    let (header, normal) = read_csv(&case.join("normal.csv"))?;
    let (header2, anomalous) = read_csv(&case.join("anomalous.csv"))?;
    let last = normal.last().map_or(0, |r| r.0);
    let first_anomalous = anomalous.first().map_or(0, |r| r.0);
    let mut out = String::new();
    let mut emit = |header: &[String], t: u64, values: &[f64]| {
        for (column, value) in header.iter().skip(1).zip(values) {
            let Some((service, metric)) = split_column(column) else {
                continue;
            };
            if !value.is_finite() {
                continue;
            }
            let event = Event {
                ts: Timestamp::from_unix_integer(t),
                service: Symbol::new(service),
                body: EventBody::Metric(Metric {
                    name: Symbol::new(metric),
                    value: *value,
                    metric_kind: MetricKind::Gauge,
                    labels: Labels::default(),
                }),
            };
            out.push_str(&event.to_json());
            out.push('\n');
        }
    };
    for (t, values) in &normal {
        emit(&header, *t, values);
    }
    for (t, values) in &anomalous {
        emit(&header2, last + 1 + (t - first_anomalous), values);
    }
    Ok(out)
}

/// The most abnormal incident first, then the one with the most services.
fn by_deviation(i: &Insight) -> (f64, usize) {
    let deviation = i
        .origin
        .iter()
        .filter_map(|c| c.deviation)
        .fold(0.0, f64::max);
    (deviation, i.services.len())
}

/// By the number of services, then the earliest.
fn by_services(i: &Insight) -> (usize, std::cmp::Reverse<Timestamp>) {
    (i.services.len(), std::cmp::Reverse(i.opened_at))
}

/// The ranked origins the engine concluded for a case, read from the last version of the
/// incident that `key` puts first (nothing if none opened); for each of the two orders.
fn ranked_origins(
    case: &Path,
    config: &EngineConfig,
) -> Result<(Vec<OriginCandidate>, Vec<OriginCandidate>)> {
    let events = case_events(case)?;
    let mut sink = LatestInsights::default();
    replay(
        JsonlSource::from_reader("case", std::io::Cursor::new(events.into_bytes())),
        config,
        &mut sink,
        ReplayHooks::default(),
    )?;
    let incidents = sink.by_id();
    let most_abnormal = incidents.values().max_by(|a, b| {
        by_deviation(a)
            .partial_cmp(&by_deviation(b))
            .unwrap_or(Ordering::Equal)
    });
    let most_services = incidents.values().max_by_key(|i| by_services(i));
    let origins = |i: Option<&Insight>| i.map(|i| i.origin.clone()).unwrap_or_default();
    Ok((origins(most_abnormal), origins(most_services)))
}

/// A `<service>-<fault>` folder's root-cause service and fault kind.
fn fault_of(folder: &Path) -> Option<(&str, &str)> {
    folder
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .rsplit_once('-')
}

/// A fault folder's cases (the subfolders with both CSVs), sorted.
fn case_dirs(folder: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(folder)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("normal.csv").exists() && p.join("anomalous.csv").exists())
        .collect();
    cases.sort();
    Ok(cases)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let config = EngineConfig {
        topology: sockshop_topology(),
        ..EngineConfig::default()
    };
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&args.dir)
        .with_context(|| format!("reading {}", args.dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    if folders.is_empty() {
        bail!("no <service>-<fault> folders in {}", args.dir.display());
    }
    let mut hits = [0usize; 5];
    let mut hits_by_size = 0usize;
    let mut cases = 0usize;
    // For the progress bar only: the loop below lists the folders again and reports errors.
    let total: usize = folders
        .iter()
        .filter(|f| fault_of(f).is_some())
        .filter_map(|f| case_dirs(f).ok())
        .map(|c| c.len())
        .sum();
    let progress = Progress::new("eval-rca", Some(total as u64), "cases");
    for folder in &folders {
        let Some((root, fault)) = fault_of(folder) else {
            continue;
        };
        for case in case_dirs(folder)? {
            progress.set_message(
                case.strip_prefix(&args.dir)
                    .unwrap_or(&case)
                    .display()
                    .to_string(),
            );
            let (ranked, by_size) = ranked_origins(&case, &config)?;
            let rank = ranked.iter().position(|c| c.service.as_str() == root);
            if by_size.first().is_some_and(|c| c.service.as_str() == root) {
                hits_by_size += 1;
            }
            for (k, hit) in hits.iter_mut().enumerate() {
                if rank.is_some_and(|r| r <= k) {
                    *hit += 1;
                }
            }
            cases += 1;
            progress.inc(1);
            if args.verbose {
                progress.println(
                    json!({"case": case.strip_prefix(&args.dir).unwrap_or(&case).display().to_string(),
                           "root_cause": root, "fault": fault, "rank": rank.map(|r| r + 1),
                           "ranked": ranked.iter().take(if args.verbose { 20 } else { 5 }).map(|c| json!({
                               "service": c.service.as_str(), "score": c.score, "evidence": c.evidence,
                           })).collect::<Vec<_>>()}),
                );
            }
        }
    }
    progress.finish();
    let ac = |k: usize| hits[k - 1] as f64 / cases.max(1) as f64;
    let avg5 = (1..=5).map(ac).sum::<f64>() / 5.0;
    println!(
        "{}",
        json!({"cases": cases, "ac@1": ac(1), "ac@3": ac(3), "avg@5": avg5,
               "ac@2": ac(2), "ac@4": ac(4), "ac@5": ac(5),
               "ac@1_most_services": hits_by_size as f64 / cases.max(1) as f64})
    );
    Ok(())
}
