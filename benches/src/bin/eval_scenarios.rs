//! Incident accuracy on generated scenarios with ground truth: one fault = one incident,
//! unrelated faults never merged, the right origin, and recurrences recalled.
//!
//! For each seed: simulate (all seven fault kinds appear in a day), replay through the engine,
//! match incidents to faults (an incident matches a fault when it opened between 2 minutes
//! before the fault's start — or its first observable warning, when earlier — and its end, and
//! involves one of its affected services), and score:
//!
//! * recall — faults matched by at least one incident; precision — incidents that match a fault;
//! * split — faults matched by more than one incident; merged — incidents that took in symptoms
//!   of two or more faults while those lasted;
//! * origin AC@1 — matched faults whose incident's top origin is the fault's origin;
//! * recall@1 — recurrences whose incident's most similar past incident is an earlier
//!   occurrence of the same fault. The same fault is the same kind, origin and remedy (the
//!   ground truth's own definition of `recurrence_of`, which the generator sets only for the
//!   repeats it plans: a random draw can repeat a fault too), and only detected occurrences can
//!   be recalled;
//! * false recall — first occurrences (no earlier detected fault of the same kind and origin)
//!   whose incident recalled anything above the threshold. A fault of the same kind and origin
//!   but another remedy (another slow query on the same database) is related, not unrelated:
//!   it counts in neither.
//!
//! `cargo run --release -p kaizen-benches --bin eval-scenarios -- --seeds 3 --duration 24h`
//!
//! `--dialect otel` runs the same plans in the users' dialect (OpenTelemetry and Prometheus
//! names, one-minute exports, skewed clocks, no alerts, deploys seen only as versions, the
//! Backstage catalog as topology; see `kaizen_simulator::Dialect`).
//!
//! On a terminal, stderr shows a progress bar over the events of all seeds (events/s, the
//! current seed and the event time its replay reached).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use kaizen_benches::progress::Progress;
use kaizen_connectors::{JsonlSource, LatestInsights};
use kaizen_engine::{replay, EngineConfig, ReplayHooks};
use kaizen_model::Insight;
use kaizen_simulator::{engine_topology, ground_truth, write_events, Dialect, ScenarioConfig};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// How many seeds.
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// The first seed (seeds run from here): evaluate on seeds nothing was tuned on.
    #[arg(long, default_value_t = 1)]
    first_seed: u64,
    /// Scenario length.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// One JSON line per fault.
    #[arg(long)]
    verbose: bool,
    /// The scenarios' vocabulary: `kaizen` or `otel`.
    #[arg(long, default_value = "kaizen", value_parser = parse_dialect)]
    dialect: Dialect,
}

fn parse_dialect(s: &str) -> Result<Dialect, String> {
    s.parse()
}

#[derive(Default)]
struct Totals {
    faults: usize,
    detected: usize,
    split: usize,
    incidents: usize,
    matching: usize,
    merged: usize,
    origin_hits: usize,
    recurrences: usize,
    recalled: usize,
    firsts: usize,
    false_recalls: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut t = Totals::default();
    // A bar over the events of all seeds: each seed's count is known once generated, and the
    // seeds still to come are assumed as large as the latest.
    let progress = Progress::new("eval-scenarios", None, "events");
    let mut events_done = 0u64;
    for (index, seed) in (args.first_seed..args.first_seed + args.seeds).enumerate() {
        let of_seeds = format!("seed {seed} ({}/{})", index + 1, args.seeds);
        progress.set_message(format!("{of_seeds} · generating"));
        let scenario = ScenarioConfig {
            seed,
            dialect: args.dialect,
            ..ScenarioConfig::default().with_duration(args.duration)
        };
        let truth = ground_truth(&scenario);
        let mut bytes = Vec::new();
        let events = write_events(&scenario, &mut bytes)?;
        progress.set_length(events_done + events * (args.seeds - index as u64));
        progress.set_message(format!("{of_seeds} · replaying"));
        let config = EngineConfig {
            workers: args.workers,
            topology: engine_topology(&scenario)?,
            ..EngineConfig::default()
        };
        let mut sink = LatestInsights::default();
        let mut on_progress = |n: u64, newest: Option<kaizen_model::Timestamp>| {
            progress.set_position(events_done + n);
            if let Some(ts) = newest {
                progress.set_message(format!("{of_seeds} · event time {}", ts.clock()));
            }
        };
        replay(
            JsonlSource::from_reader("scenario", std::io::Cursor::new(bytes)),
            &config,
            &mut sink,
            ReplayHooks {
                on_progress: Some(&mut on_progress),
                ..ReplayHooks::default()
            },
        )?;
        events_done += events;
        progress.set_position(events_done);
        progress.set_message(format!("{of_seeds} · scoring"));
        let incidents: Vec<&Insight> = sink.by_id().values().collect();
        let matches = |f: &kaizen_simulator::Fault, i: &Insight| {
            i.opened_at
                >= f.observable_from
                    .min(f.start.minus(Duration::from_secs(120)))
                && i.opened_at <= f.end
                && i.services.iter().any(|s| f.affected.contains(s))
        };
        let mut incident_of: BTreeMap<&str, &Insight> = BTreeMap::new();
        let mut seed_hits = 0;
        for f in &truth.faults {
            let mut found: Vec<&&Insight> = incidents.iter().filter(|i| matches(f, i)).collect();
            found.sort_by_key(|i| i.opened_at);
            t.faults += 1;
            if args.verbose {
                progress.println(
                    json!({"fault": f.id, "kind": f.kind, "origin": f.origin, "start": f.start,
                           "end": f.end, "recurrence_of": f.recurrence_of,
                           "original_incident": f.recurrence_of.as_ref()
                               .and_then(|o| incident_of.get(o.as_str())).map(|i| &i.id),
                           "incidents": found.iter().map(|i| json!({"id": i.id, "opened": i.opened_at,
                               "origin": i.origin.first().map(|c| &c.service),
                               "similar": i.similar.iter().map(|s| (&s.id, s.similarity))
                                   .collect::<Vec<_>>()})).collect::<Vec<_>>()})
                );
            }
            if found.len() > 1 {
                t.split += 1;
            }
            // The fault's incident: the first that names its origin, else the first at all
            // (another fault's incident that took in its symptoms).
            let Some(i) = found
                .iter()
                .find(|i| i.origin.first().map(|c| &c.service) == Some(&f.origin))
                .or(found.first())
            else {
                continue;
            };
            t.detected += 1;
            if i.origin.first().map(|c| &c.service) == Some(&f.origin) {
                t.origin_hits += 1;
                seed_hits += 1;
            }
            let same = |o: &kaizen_simulator::Fault| o.kind == f.kind && o.origin == f.origin;
            let earlier: Vec<&str> = truth
                .faults
                .iter()
                .take_while(|o| o.id != f.id)
                .filter(|o| same(o) && o.remedy == f.remedy)
                .filter_map(|o| incident_of.get(o.id.as_str()).map(|i| i.id.as_str()))
                .collect();
            let related = truth
                .faults
                .iter()
                .take_while(|o| o.id != f.id)
                .any(|o| same(o) && incident_of.contains_key(o.id.as_str()));
            if !earlier.is_empty() {
                t.recurrences += 1;
                if i.similar
                    .first()
                    .is_some_and(|s| earlier.contains(&s.id.as_str()))
                {
                    t.recalled += 1;
                } else if args.verbose {
                    progress.println(
                        json!({"recall_miss": f.id, "incident": i.id, "earlier": earlier,
                               "top": i.similar.first().map(|s| (&s.id, s.similarity))}),
                    );
                }
            } else if !related {
                t.firsts += 1;
                if !i.similar.is_empty() {
                    t.false_recalls += 1;
                }
            }
            incident_of.insert(f.id.as_str(), i);
        }
        // An incident covers a fault when it took in a symptom of one of the fault's services
        // while the fault lasted: covering two faults is a merge, whether or not the incident
        // opened in either one's window. A symptom clearing is not one taken in. The insight's
        // timeline keeps its first and latest entries only, so a merge hidden in the middle
        // of a long incident is not counted: a lower bound.
        let covers = |i: &Insight, f: &kaizen_simulator::Fault| {
            i.timeline.iter().any(|e| {
                !e.text.ends_with(" cleared")
                    && e.ts >= f.start
                    && e.ts <= f.end
                    && f.affected
                        .iter()
                        .any(|s| e.text.starts_with(&format!("{s}: ")))
            })
        };
        for i in &incidents {
            t.incidents += 1;
            if truth.faults.iter().any(|f| matches(f, i)) {
                t.matching += 1;
            }
            let covered: Vec<&str> = truth
                .faults
                .iter()
                .filter(|f| covers(i, f))
                .map(|f| f.id.as_str())
                .collect();
            if covered.len() > 1 {
                t.merged += 1;
                if args.verbose {
                    progress.println(
                        json!({"merged": i.id, "opened": i.opened_at, "resolved": i.resolved_at,
                               "faults": covered, "services": i.services}),
                    );
                }
            }
        }
        progress.println(
            json!({"seed": seed, "faults": truth.faults.len(), "incidents": incidents.len(),
                   "origin_hits": seed_hits}),
        );
    }
    progress.finish();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    println!(
        "{}",
        json!({
            "faults": t.faults, "incidents": t.incidents,
            "recall": ratio(t.detected, t.faults),
            "precision": ratio(t.matching, t.incidents),
            "split_faults": t.split, "merged_incidents": t.merged,
            "origin_ac@1": ratio(t.origin_hits, t.detected),
            "recurrences": t.recurrences,
            "recall_top1": ratio(t.recalled, t.recurrences),
            "false_recall": ratio(t.false_recalls, t.firsts), "first_occurrences": t.firsts,
        })
    );
    Ok(())
}
