//! `kaizen replay`.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use kaizen_connectors::{
    expand_formatted_inputs, load_history, read_topology, DeadLetterSink, DecodeFailure, Format,
    HistoryWriter, InsightSink, JsonlSink, JsonlSource, SourceError, TerminalSink, TerminalStyle,
};
use kaizen_engine::{replay, EngineConfig, ReplayHooks, ReplayReport};

use crate::progress::ReplayProgress;

/// How insights are written.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OutputFormat {
    /// One JSON object per insight version (the machine-readable contract).
    Jsonl,
    /// Human-readable cards, as they would read in Slack.
    Text,
}

#[derive(Args)]
pub struct ReplayArgs {
    /// Inputs, each `PATH` (native JSONL) or `FORMAT:PATH` with any input format's name:
    /// `native`, `otlp_json`, `otlp_proto_logs`, `alertmanager`, `grafana`, … (docs/formats.md;
    /// `otlp_proto` takes the signal from the file name). A file, a directory (its
    /// .jsonl/.ndjson files, recursively) or `-` for stdin. Text formats hold one message per
    /// line, `otlp_proto*` one base64 message per line. All inputs merge by event time (ties in
    /// the order given); a firing alert takes its `startsAt`. Text before `:` that is not a
    /// format name is part of the path (`./data:2026.jsonl`); write `./` before a path that
    /// starts with a format name and `:`.
    #[arg(required = true, value_name = "[FORMAT:]PATH")]
    inputs: Vec<PathBuf>,
    /// Topology: kaizen's JSON, a Backstage catalog .yaml/.yml, or a directory of them
    /// (services, user-facing flags, dependencies; docs/topology.md).
    #[arg(long)]
    topology: Option<PathBuf>,
    /// Timely worker threads. The output is identical for any value.
    #[arg(long, short = 'w', default_value_t = 1)]
    workers: usize,
    /// Write insights here instead of stdout.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Jsonl)]
    format: OutputFormat,
    /// How late (in event time, behind the newest event) an event may arrive and still count,
    /// e.g. `30s`, `2m`. Later events are reported and counted.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    lateness: Duration,
    /// Write undecodable and late lines here (JSONL: source, line, reason, raw).
    #[arg(long)]
    dead_letter: Option<PathBuf>,
    /// Print the run summary as JSON on stderr.
    #[arg(long)]
    summary_json: bool,
    /// The history of past incidents (JSONL, created if missing): recalled from, and appended
    /// to as incidents resolve and feedback arrives.
    #[arg(long)]
    history: Option<PathBuf>,
    /// Rule files or directories (`.sql`, recursively) to run beside the detectors. Any rule
    /// with an error stops the run before it starts; see `kaizen rules check`.
    #[arg(long)]
    rules: Vec<PathBuf>,
    /// Reload the rules when their files change or on SIGHUP, keeping the state of unchanged
    /// rules (for input that streams in, such as stdin).
    #[arg(long, requires = "rules")]
    watch_rules: bool,
}

pub fn run(args: ReplayArgs) -> Result<()> {
    let mut config = EngineConfig {
        workers: args.workers,
        allowed_lateness: args.lateness,
        ..EngineConfig::default()
    };
    if let Some(path) = &args.topology {
        config.topology = read_topology(path)?;
    }
    let mut history = match &args.history {
        Some(path) => {
            config.history = load_history(path)?;
            Some(
                HistoryWriter::open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?,
            )
        }
        None => None,
    };
    let _watcher = load_rules(&args.rules, args.watch_rules, &mut config)?;
    let inputs = expand_formatted_inputs(&args.inputs).map_err(with_format_hint)?;
    let names: Vec<String> = inputs.iter().map(|(i, _)| i.name()).collect();
    let out: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout())),
    };
    let mut sink: Box<dyn InsightSink> = match args.format {
        OutputFormat::Jsonl => Box::new(JsonlSink::new(out)),
        OutputFormat::Text => Box::new(TerminalSink::new(
            out,
            TerminalStyle {
                color: args.output.is_none() && color_allowed(),
                compact_updates: false,
            },
        )),
    };
    let mut rejected = Rejected::new(args.dead_letter.as_deref())?;
    let bar = ReplayProgress::new(None);
    let mut progress = |n: u64, t: Option<kaizen_model::Timestamp>| bar.update(n, t);
    let report = run_replay(
        JsonlSource::with_formats(inputs),
        &config,
        sink.as_mut(),
        &mut rejected,
        Some(&mut progress),
        history.as_mut(),
    );
    bar.finish();
    let report = report.map_err(|e| match e {
        kaizen_engine::EngineError::EmptyInput => {
            anyhow::anyhow!("the input is empty: no events in {}", names.join(", "))
        }
        other => other.into(),
    })?;
    rejected.finish()?;
    if let Some(h) = &mut history {
        h.flush()
            .with_context(|| format!("cannot write {}", h.path().display()))?;
    }
    print_summary(&report, args.summary_json);
    Ok(())
}

/// A missing input named like `FORMAT:PATH` with a word before `:` that is no format: most
/// likely a misspelt format, so the error says which formats there are.
fn with_format_hint(e: SourceError) -> anyhow::Error {
    if let SourceError::NotFound(path) = &e {
        let prefix = path
            .to_str()
            .and_then(|p| p.split_once(':'))
            .map(|(f, _)| f);
        if let Some(word) = prefix.filter(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }) {
            let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
            return anyhow::anyhow!(
                "{e} ({word:?} is not a format: expected one of {})",
                names.join(", ")
            );
        }
    }
    e.into()
}

/// Loads `paths` into the config (no rules when empty); with `watch`, keeps them reloaded.
pub fn load_rules(
    paths: &[PathBuf],
    watch: bool,
    config: &mut EngineConfig,
) -> Result<Option<kaizen_engine::RuleWatcher>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let (set, errors) = kaizen_rules::RuleSet::load(paths);
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("{e}\n");
        }
        anyhow::bail!("{} error(s) in the rules", errors.len());
    }
    tracing::info!("{} rules loaded", set.len());
    let live = kaizen_rules::LiveRules::new(set);
    config.rules = Some(live.clone());
    if !watch {
        return Ok(None);
    }
    let watcher = kaizen_engine::RuleWatcher::start(
        paths.to_vec(),
        live,
        Duration::from_secs(1),
        Box::new(|r| {
            eprintln!(
                "kaizen: rules reloaded: {} changed, {} unchanged, {} removed, {} rejected",
                r.changed.len(),
                r.unchanged.len(),
                r.removed.len(),
                r.errors.len()
            )
        }),
    )
    .context("cannot watch the rule files")?;
    Ok(Some(watcher))
}

/// Runs a replay, routing rejected lines to `rejected`.
pub fn run_replay(
    source: JsonlSource,
    config: &EngineConfig,
    sink: &mut dyn InsightSink,
    rejected: &mut Rejected,
    on_progress: Option<&mut dyn FnMut(u64, Option<kaizen_model::Timestamp>)>,
    history: Option<&mut HistoryWriter>,
) -> Result<ReplayReport, kaizen_engine::EngineError> {
    let rejected = RefCell::new(rejected);
    let mut on_failure =
        |f: &DecodeFailure| rejected.borrow_mut().record("skipped undecodable line", f);
    let mut on_late =
        |f: &DecodeFailure| rejected.borrow_mut().record("late event not processed", f);
    let keep_history = history.is_some();
    let mut history = history;
    let mut on_history = |p: &kaizen_model::PastIncident| {
        if let Some(h) = history.as_mut() {
            if let Err(e) = h.append(p) {
                tracing::error!("cannot write history record {}: {e}", p.id);
            }
        }
    };
    replay(
        source,
        config,
        sink,
        ReplayHooks {
            on_decode_failure: Some(&mut on_failure),
            on_late: Some(&mut on_late),
            on_progress: on_progress
                .map(|p| p as &mut dyn FnMut(u64, Option<kaizen_model::Timestamp>)),
            on_history: keep_history.then_some(&mut on_history),
        },
    )
}

/// Reports and keeps lines the engine could not use: the first few as warnings, all of them
/// in the dead-letter file when one is given.
#[derive(Default)]
pub struct Rejected {
    dead_letter: Option<DeadLetterSink<BufWriter<File>>>,
    warned: usize,
}

const WARN_AT_MOST: usize = 10;

impl Rejected {
    pub fn new(path: Option<&std::path::Path>) -> Result<Self> {
        let dead_letter = match path {
            Some(p) => Some(DeadLetterSink::new(BufWriter::new(
                File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
            ))),
            None => None,
        };
        Ok(Rejected {
            dead_letter,
            warned: 0,
        })
    }

    fn record(&mut self, what: &str, f: &DecodeFailure) {
        if self.warned < WARN_AT_MOST {
            tracing::warn!("{what}: {f}");
            self.warned += 1;
        }
        if let Some(d) = &mut self.dead_letter {
            if let Err(e) = d.record(f) {
                tracing::error!("cannot write dead-letter record: {e}");
            }
        }
    }

    pub fn finish(&mut self) -> Result<()> {
        if let Some(d) = &mut self.dead_letter {
            d.flush().context("cannot write dead-letter file")?;
        }
        Ok(())
    }
}

fn print_summary(report: &ReplayReport, json: bool) {
    if json {
        if let Ok(text) = serde_json::to_string(report) {
            eprintln!("{text}");
        }
        return;
    }
    let rate = report.events as f64 / report.elapsed_secs.max(1e-9);
    eprintln!(
        "kaizen: replayed {} events ({} undecodable, {} late) → {} insight versions in {:.2}s ({:.0} events/s)",
        report.events,
        report.decode_failures,
        report.late_events,
        report.insights,
        report.elapsed_secs,
        rate
    );
}

pub fn color_allowed() -> bool {
    io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}
