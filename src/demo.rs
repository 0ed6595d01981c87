//! `kaizen demo`: a realistic incident story in the terminal, no Kafka, no network.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use kaizen_connectors::{
    expand_inputs, InsightSink, JsonlSource, LatestInsights, TerminalSink, TerminalStyle,
};
use kaizen_engine::EngineConfig;
use kaizen_model::{Insight, Timestamp};
use kaizen_simulator::{ground_truth, topology, write_scenario, ScenarioConfig};

use crate::progress::ReplayProgress;
use crate::replay::{color_allowed, run_replay, Rejected};

#[derive(Args)]
pub struct DemoArgs {
    /// Scenario seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Timely worker threads.
    #[arg(long, short = 'w', default_value_t = 2)]
    workers: usize,
    /// Keep the generated scenario in this directory (default: a temporary one, removed after).
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Rule files to run beside the detectors (default: the shipped pack, `queries/default`,
    /// when run from the repository).
    #[arg(long)]
    rules: Vec<PathBuf>,
    /// Run without rules.
    #[arg(long, conflicts_with = "rules")]
    no_rules: bool,
}

/// The shipped rule pack, when the demo runs from a checkout.
const DEFAULT_PACK: &str = "queries/default";

/// Prints every insight and remembers the latest version of each.
struct Recorder<S> {
    inner: S,
    latest: LatestInsights,
}

impl<S: InsightSink> InsightSink for Recorder<S> {
    fn emit(&mut self, insight: &Insight) -> io::Result<()> {
        self.latest.emit(insight)?;
        // Clear the progress line before the card.
        if io::stderr().is_terminal() {
            eprint!("\r\x1b[2K");
        }
        self.inner.emit(insight)?;
        self.inner.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub fn run(args: DemoArgs) -> Result<()> {
    let scenario = ScenarioConfig {
        seed: args.seed,
        ..ScenarioConfig::demo()
    };
    let (dir, temporary) = match &args.keep {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("kaizen-demo-{}", std::process::id())),
            true,
        ),
    };
    let summary = write_scenario(&scenario, &dir)
        .with_context(|| format!("cannot write the scenario to {}", dir.display()))?;
    let truth = ground_truth(&scenario);
    eprintln!(
        "kaizen demo: {} services, {} events from {} to {}, {} injected faults; replaying on {} workers…\n",
        scenario.services,
        summary.events,
        summary.first,
        summary.last.clock(),
        truth.faults.len(),
        args.workers
    );

    let mut config = EngineConfig {
        workers: args.workers,
        topology: topology(&scenario),
        ..EngineConfig::default()
    };
    let rules = match (args.no_rules, args.rules.is_empty()) {
        (true, _) => Vec::new(),
        (false, false) => args.rules.clone(),
        (false, true) if std::path::Path::new(DEFAULT_PACK).is_dir() => vec![DEFAULT_PACK.into()],
        _ => Vec::new(),
    };
    crate::replay::load_rules(&rules, false, &mut config)?;
    if let Some(live) = &config.rules {
        eprintln!(
            "kaizen demo: running {} rules from {}\n",
            live.current().len(),
            rules
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut sink = Recorder {
        inner: TerminalSink::new(
            io::stdout(),
            TerminalStyle {
                color: color_allowed(),
                compact_updates: true,
            },
        ),
        latest: LatestInsights::default(),
    };
    let bar = ReplayProgress::new(Some(summary.events));
    let mut progress = |n: u64, t: Option<Timestamp>| bar.update(n, t);
    let inputs = expand_inputs(&[dir.join("events.jsonl")])?;
    let mut rejected = Rejected::new(None)?;
    let report = run_replay(
        JsonlSource::new(inputs),
        &config,
        &mut sink,
        &mut rejected,
        Some(&mut progress),
        None,
    )?;
    bar.finish();
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }

    println!();
    println!(
        "Replayed {} events in {:.1}s ({:.0} events/s): {} incidents, {} insight versions.",
        report.events,
        report.elapsed_secs,
        report.events as f64 / report.elapsed_secs.max(1e-9),
        sink.latest.len(),
        report.insights
    );
    println!("Ground truth (what the simulator injected) against what kaizen concluded:");
    let mut matched: BTreeMap<&str, &Insight> = BTreeMap::new();
    for fault in &truth.faults {
        let found = sink.latest.by_id().values().find(|i| {
            i.opened_at
                >= fault
                    .observable_from
                    .min(fault.start.minus(std::time::Duration::from_secs(120)))
                && i.opened_at <= fault.end
                && i.services.contains(&fault.origin)
        });
        let recurrence = fault
            .recurrence_of
            .as_ref()
            .map(|r| format!(" (recurrence of {r})"))
            .unwrap_or_default();
        let Some(i) = found else {
            println!(
                "  {} {:?} on {}{recurrence} → not detected",
                fault.id, fault.kind, fault.origin
            );
            continue;
        };
        matched.insert(fault.id.as_str(), i);
        let origin = i.origin.first().map(|c| c.service.as_str()).unwrap_or("?");
        let verdict = if origin == fault.origin.as_str() {
            "origin correct"
        } else {
            "origin differs"
        };
        println!(
            "  {} {:?} on {}{recurrence} → {} · origin {origin} · {verdict}",
            fault.id, fault.kind, fault.origin, i.id
        );
        if let Some(earlier) = fault.recurrence_of.as_deref().and_then(|r| matched.get(r)) {
            match i.similar.first() {
                Some(s) if s.id == earlier.id => println!(
                    "      recalled {} ({:.0}% similar) with the remedy that worked: {}",
                    s.id,
                    s.similarity * 100.0,
                    s.remedy.as_deref().unwrap_or("none recorded")
                ),
                _ => println!(
                    "      the earlier occurrence {} was not recalled first",
                    earlier.id
                ),
            }
        }
    }
    Ok(())
}
