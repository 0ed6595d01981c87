//! `kaizen rules check` and `kaizen rules test`: the rule files' promtool.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use kaizen_rules::{collect_sql, run_fixture, RuleSet};

#[derive(Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    command: RulesCommand,
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Parse and type-check rule files; every error with file:line:col and a suggestion.
    Check {
        /// Rule files or directories (their .sql files, recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Run each rule file's fixtures (`x.test.jsonl` beside `x.sql`) offline.
    Test {
        /// Rule files or directories (their .sql files, recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

pub fn run(args: RulesArgs) -> Result<()> {
    match args.command {
        RulesCommand::Check { paths } => check(&paths),
        RulesCommand::Test { paths } => test(&paths),
    }
}

fn check(paths: &[PathBuf]) -> Result<()> {
    let (set, errors) = RuleSet::load(paths);
    for e in &errors {
        eprintln!("{e}\n");
    }
    if !errors.is_empty() {
        bail!("{} error(s); {} rule(s) are fine", errors.len(), set.len());
    }
    println!("{} rule(s) checked, no errors", set.len());
    Ok(())
}

fn test(paths: &[PathBuf]) -> Result<()> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        collect_sql(p, &mut files, &mut errors);
    }
    for e in &errors {
        eprintln!("{e}");
    }
    let (mut passed, mut failed, mut without) = (0, 0, 0);
    for f in &files {
        let r = run_fixture(f);
        match (&r.fixture, r.passed()) {
            (_, true) => {
                passed += 1;
                println!("ok    {} ({} expectations)", f.display(), r.expectations);
            }
            (None, false) if r.errors.is_empty() => {
                without += 1;
                println!(
                    "skip  {} (no {})",
                    f.display(),
                    kaizen_rules::fixture_path(f).display()
                );
            }
            _ => {
                failed += 1;
                println!("FAIL  {}\n{}", f.display(), r.diff());
            }
        }
    }
    println!("{passed} passed, {failed} failed, {without} without fixtures");
    if failed > 0 || !errors.is_empty() {
        bail!("{failed} rule file(s) failed their fixtures");
    }
    Ok(())
}
