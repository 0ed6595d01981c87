//! Runs rules over a JSONL file of events with the fixture runner and prints every output, one
//! per line (Debug form): two builds' outputs can be compared byte for byte.
//!
//! `cargo run --release -p kaizen-rules --example dump_outputs -- EVENTS.jsonl RULES... > out`

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::Arc;

use kaizen_model::Event;
use kaizen_rules::{run, RuleSet};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((events_path, rules)) = args.split_first() else {
        return Err("usage: dump_outputs EVENTS.jsonl RULES...".into());
    };
    let paths: Vec<PathBuf> = rules.iter().map(PathBuf::from).collect();
    let (set, errors) = RuleSet::load(&paths);
    if let Some(e) = errors.first() {
        return Err(e.to_string().into());
    }
    let mut events = Vec::new();
    for line in BufReader::new(std::fs::File::open(events_path)?).lines() {
        if let Ok(e) = Event::from_json(&line?) {
            events.push(e);
        }
    }
    let started = std::time::Instant::now();
    let outputs = run(Arc::new(set), &events, 3_600_000);
    eprintln!(
        "{} events, {} outputs, {:.2}s",
        events.len(),
        outputs.len(),
        started.elapsed().as_secs_f64()
    );
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for o in outputs {
        writeln!(out, "{o:?}")?;
    }
    Ok(())
}
