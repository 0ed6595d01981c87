//! Grouping and parsing accuracy of the template miner on a Loghub-2k style folder.
//!
//! `eval-templates <dir>` reads every `<dir>/<System>/<System>_2k.log_structured.csv`
//! (subdirectories are discovered, sorted by name), feeds the `Content` column through one
//! fresh [`TemplateMiner`] with the default configuration, and prints one JSON line per system
//! and a final `"system":"average"` line:
//!
//! * `ga` — grouping accuracy as Loghub defines it: a line is correct when the set of lines in
//!   its predicted group equals the set of lines sharing its `EventId`. The predicted group is
//!   the template a line ended up in after the whole pass (merges followed), as Loghub scores
//!   online parsers.
//! * `pa` — parsing accuracy: a line is correct when its final template text equals its
//!   `EventTemplate` after [`normalise`] on both sides.
//! * `lines_per_sec` — the mining loop alone, on a fresh miner per repetition, repeated until
//!   at least 0.2 s have been timed.
//!
//! On a terminal, stderr shows a progress bar over the systems (the current one and its step).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use kaizen_benches::progress::Progress;
use kaizen_operators::{TemplateConfig, TemplateId, TemplateMiner};

#[derive(Parser)]
#[command(about = "Grouping (GA) and parsing (PA) accuracy and speed of the log template miner")]
struct Args {
    /// Folder holding `<System>/<System>_2k.log_structured.csv`.
    dir: PathBuf,
    /// Minimum timed duration per system for the throughput figure, in seconds.
    #[arg(long, default_value_t = 0.2)]
    min_time: f64,
    /// Print the wrongly grouped templates of each system to stderr (for diagnosis).
    #[arg(long)]
    errors: bool,
}

/// One labelled line.
struct Line {
    content: String,
    event_id: String,
    template: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut systems: Vec<(String, PathBuf)> = Vec::new();
    for entry in
        std::fs::read_dir(&args.dir).with_context(|| format!("reading {}", args.dir.display()))?
    {
        let entry = entry?;
        if !entry.path().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let csv = entry.path().join(format!("{name}_2k.log_structured.csv"));
        if csv.is_file() {
            systems.push((name, csv));
        }
    }
    systems.sort();
    if systems.is_empty() {
        bail!(
            "no <System>/<System>_2k.log_structured.csv under {}",
            args.dir.display()
        );
    }
    let (mut ga_sum, mut pa_sum, mut speed_sum, mut total) = (0.0, 0.0, 0.0, 0usize);
    let progress = Progress::new("eval-templates", Some(systems.len() as u64), "systems");
    for (name, path) in &systems {
        progress.set_message(format!("{name}: reading"));
        let lines = load(path)?;
        progress.set_message(format!("{name}: grouping {} lines", lines.len()));
        let (ga, pa) = if args.errors {
            // The wrong groups go to stderr: keep the bar out of their way.
            progress.suspend(|| accuracy(&lines, Some(name.as_str())))
        } else {
            accuracy(&lines, None)
        };
        progress.set_message(format!("{name}: timing the miner"));
        let speed = throughput(&lines, Duration::from_secs_f64(args.min_time));
        progress.println(record(name, lines.len(), ga, pa, speed));
        progress.inc(1);
        ga_sum += ga;
        pa_sum += pa;
        speed_sum += speed;
        total += lines.len();
    }
    progress.finish();
    let k = systems.len() as f64;
    println!(
        "{}",
        record("average", total, ga_sum / k, pa_sum / k, speed_sum / k)
    );
    Ok(())
}

/// The one configuration for every system: the defaults.
fn config() -> TemplateConfig {
    TemplateConfig::default()
}

/// One output line, fields in a fixed order: system, lines, ga, pa, lines_per_sec.
fn record(system: &str, lines: usize, ga: f64, pa: f64, speed: f64) -> String {
    format!(
        "{{\"system\":{},\"lines\":{lines},\"ga\":{ga:.3},\"pa\":{pa:.3},\"lines_per_sec\":{speed:.0}}}",
        serde_json::Value::from(system)
    )
}

fn load(path: &Path) -> Result<Vec<Line>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut records = parse_csv(&text).into_iter();
    let header = records.next().context("empty CSV")?;
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{}: no {name} column", path.display()))
    };
    let (content, event_id, template) = (col("Content")?, col("EventId")?, col("EventTemplate")?);
    let mut lines = Vec::new();
    for (n, mut r) in records.enumerate() {
        if r.len() == 1 && r[0].is_empty() {
            continue;
        }
        if r.len() <= content.max(event_id).max(template) {
            bail!(
                "{}: record {} has {} fields",
                path.display(),
                n + 2,
                r.len()
            );
        }
        lines.push(Line {
            content: std::mem::take(&mut r[content]),
            event_id: std::mem::take(&mut r[event_id]),
            template: std::mem::take(&mut r[template]),
        });
    }
    Ok(lines)
}

/// RFC 4180 CSV: comma-separated, fields optionally in double quotes, `""` for a quote inside
/// quotes, line breaks (LF or CRLF) allowed inside quotes.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => record.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                any = false;
            }
            _ => field.push(c),
        }
    }
    if any {
        record.push(field);
        records.push(record);
    }
    records
}

/// The normalisation applied to both the predicted and the true template before comparing:
/// whitespace runs become one space, the ends are trimmed, and `<*>` placeholders adjacent or
/// separated only by one of `. : , _ - /` collapse into one `<*>` — how finely a variable such
/// as `10.0.0.1:80` is split is a matter of taste, not of parsing.
fn normalise(t: &str) -> String {
    let words: Vec<&str> = t.split_whitespace().collect();
    let mut s = words.join(" ");
    loop {
        let mut next = s.replace("<*><*>", "<*>");
        for sep in [".", ":", ",", "_", "-", "/"] {
            next = next.replace(&format!("<*>{sep}<*>"), "<*>");
        }
        if next == s {
            return s;
        }
        s = next;
    }
}

/// Follows merges reported by the miner to each line's final template.
fn find(parent: &mut HashMap<TemplateId, TemplateId>, id: TemplateId) -> TemplateId {
    let mut root = id;
    while let Some(&p) = parent.get(&root) {
        if p == root {
            break;
        }
        root = p;
    }
    parent.insert(id, root);
    root
}

fn accuracy(lines: &[Line], errors: Option<&str>) -> (f64, f64) {
    let mut miner = TemplateMiner::new(config());
    let mut parent: HashMap<TemplateId, TemplateId> = HashMap::new();
    let mut ids = Vec::with_capacity(lines.len());
    for line in lines {
        let m = miner.observe(&line.content);
        for &gone in m.merged {
            parent.insert(gone, m.id);
        }
        ids.push(m.id);
    }
    let ids: Vec<TemplateId> = ids.into_iter().map(|id| find(&mut parent, id)).collect();
    let mut truth_size: HashMap<&str, usize> = HashMap::new();
    for l in lines {
        *truth_size.entry(l.event_id.as_str()).or_default() += 1;
    }
    let mut groups: HashMap<TemplateId, Vec<usize>> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        groups.entry(*id).or_default().push(i);
    }
    let mut correct = 0usize;
    let mut wrong: Vec<(TemplateId, &Vec<usize>)> = Vec::new();
    for (id, members) in &groups {
        let first = lines[members[0]].event_id.as_str();
        let pure = members.iter().all(|&i| lines[i].event_id == first);
        if pure && truth_size.get(first) == Some(&members.len()) {
            correct += members.len();
        } else {
            wrong.push((*id, members));
        }
    }
    if let Some(system) = errors {
        wrong.sort_by_key(|(id, _)| *id);
        for (id, members) in wrong {
            let mut truths: Vec<&str> = members
                .iter()
                .map(|&i| lines[i].event_id.as_str())
                .collect();
            truths.sort_unstable();
            truths.dedup();
            eprintln!(
                "{system} {id} ({} lines, truth {:?}): {}",
                members.len(),
                truths,
                miner.template(id).unwrap_or("?")
            );
            for t in truths.iter().take(4) {
                if let Some(l) = lines.iter().find(|l| l.event_id == *t) {
                    eprintln!("    {t} (of {}): {}", truth_size[t], l.template);
                }
            }
        }
    }
    let parsed = lines
        .iter()
        .zip(&ids)
        .filter(|(l, id)| {
            miner
                .template(**id)
                .is_some_and(|t| normalise(t) == normalise(&l.template))
        })
        .count();
    let n = lines.len().max(1) as f64;
    (correct as f64 / n, parsed as f64 / n)
}

fn throughput(lines: &[Line], min_time: Duration) -> f64 {
    let mut observed = 0usize;
    let mut elapsed = Duration::ZERO;
    while elapsed < min_time || observed == 0 {
        let mut miner = TemplateMiner::new(config());
        let start = Instant::now();
        let mut sink = 0u64;
        for line in lines {
            sink = sink.wrapping_add(u64::from(miner.observe(&line.content).id.0));
        }
        elapsed += start.elapsed();
        std::hint::black_box(sink);
        observed += lines.len();
    }
    observed as f64 / elapsed.as_secs_f64().max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_handles_quotes_commas_and_newlines() {
        let r = parse_csv("a,b,c\n1,\"x, \"\"y\"\"\",\"multi\nline\"\r\n2,,z");
        assert_eq!(r.len(), 3);
        assert_eq!(r[1], ["1", "x, \"y\"", "multi\nline"]);
        assert_eq!(r[2], ["2", "", "z"]);
    }

    #[test]
    fn normalise_collapses_split_variables_and_spaces() {
        assert_eq!(
            normalise("  <*>:<*> open  <*>.<*>.<*> x "),
            "<*> open <*> x"
        );
        assert_eq!(normalise("blk_<*> <*> <*>"), "blk_<*> <*> <*>");
    }
}
