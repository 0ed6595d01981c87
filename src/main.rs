//! `kaizen`: the command line. Parsing flags and printing; everything else lives in the
//! library crates (`kaizen-engine`, `kaizen-connectors`, `kaizen-rules`, `kaizen-simulator`).

mod config;
mod dead_letters;
mod demo;
mod progress;
mod replay;
mod rules;
mod run;
mod simulate;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Every event is a handful of small allocations freed a poll later; glibc's malloc spent a
/// quarter of the Kafka path's time on them (BENCHMARKS.md, "Kafka end to end").
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// kaizen — a streaming complex event processor for production incidents.
///
/// It joins alerts, metrics, logs, spans and deploys into incidents, names the probable origin
/// and the impact, and emits one living insight per incident.
#[derive(Parser)]
#[command(name = "kaizen", version, about, long_about = None)]
struct Cli {
    /// How logs are written to stderr: `text` for people, `json` (one object per line, with
    /// timestamp, level, message and fields) for log pipelines. Levels: `KAIZEN_LOG`.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "KAIZEN_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_env("KAIZEN_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Json => logs.json().with_current_span(false).init(),
        LogFormat::Text => logs
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .init(),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Generate a scenario and replay it, printing insights as responders would read them.
    Demo(demo::DemoArgs),
    /// Replay event files (native JSONL, or `FORMAT:PATH` in any input format) through the
    /// engine and write insights as JSONL.
    Replay(replay::ReplayArgs),
    /// Check rule files and run their fixtures.
    Rules(rules::RulesArgs),
    /// Run as a service: Kafka and HTTP in; stdout, files, Kafka and Slack out (see --config).
    Run(run::RunArgs),
    /// Generate a deterministic scenario: events, topology and ground truth.
    Simulate(simulate::SimulateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Rules(args) => rules::run(args),
        Command::Run(args) => run::run(args),
        Command::Simulate(args) => simulate::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kaizen: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
