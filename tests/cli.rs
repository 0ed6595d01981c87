//! The `kaizen` binary end to end: the CLI contract later checks and users rely on.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kaizen_model::{Event, Timestamp};

fn kaizen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kaizen"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the kaizen binary runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kaizen-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `kaizen simulate --duration 3h --out DIR` plus `extra` flags.
fn simulate(dir: &Path, extra: &[&str]) {
    let mut args = vec![
        "simulate",
        "--duration",
        "3h",
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = kaizen(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn replay(dir: &Path, workers: &str) -> Vec<u8> {
    let out = kaizen(&[
        "replay",
        dir.join("events.jsonl").to_str().unwrap(),
        "--topology",
        dir.join("topology.json").to_str().unwrap(),
        "--workers",
        workers,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn simulate_is_deterministic_and_writes_the_contracted_files() {
    let (a, b) = (scratch("sim-a"), scratch("sim-b"));
    simulate(&a, &["--seed", "5"]);
    simulate(&b, &["--seed", "5"]);
    for file in ["events.jsonl", "topology.json", "ground_truth.json"] {
        let (x, y) = (
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
        );
        assert!(!x.is_empty(), "{file} is empty");
        assert!(x == y, "{file} differs between two runs with the same seed");
    }
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("ground_truth.json")).unwrap()).unwrap();
    let faults = truth["faults"].as_array().unwrap();
    assert!(!faults.is_empty());
    for f in faults {
        for key in ["kind", "origin", "affected", "start", "end", "remedy"] {
            assert!(!f[key].is_null(), "fault lacks {key}: {f}");
        }
    }
}

#[test]
fn replay_gives_the_same_bytes_with_one_and_four_workers_and_finds_the_faults() {
    let dir = scratch("replay");
    simulate(&dir, &["--seed", "11"]);
    let one = replay(&dir, "1");
    let four = replay(&dir, "4");
    assert!(one == four, "insights differ between -w 1 and -w 4");
    assert!(one == replay(&dir, "1"), "insights differ between two runs");
    let text = String::from_utf8(one).unwrap();
    let insights: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!insights.is_empty());
    for i in &insights {
        for key in [
            "id",
            "version",
            "status",
            "title",
            "severity",
            "services",
            "origin",
            "opened_at",
            "resolved_at",
        ] {
            assert!(i.get(key).is_some(), "insight lacks {key}: {i}");
        }
    }
    // Every injected fault's origin shows up in some incident.
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("ground_truth.json")).unwrap()).unwrap();
    for fault in truth["faults"].as_array().unwrap() {
        let origin = &fault["origin"];
        assert!(
            insights
                .iter()
                .any(|i| i["services"].as_array().unwrap().contains(origin)),
            "no incident involves the origin of {fault}"
        );
    }
}

#[test]
fn bad_lines_are_reported_with_file_and_line_and_skipped() {
    let dir = scratch("bad");
    let path = dir.join("in.jsonl");
    std::fs::write(
        &path,
        "{\"ts\":1767600000,\"kind\":\"metric\",\"service\":\"a\",\"name\":\"m\",\"value\":1}\n{oops\n",
    )
    .unwrap();
    let dead = dir.join("dead.jsonl");
    let out = kaizen(&[
        "replay",
        path.to_str().unwrap(),
        "--dead-letter",
        dead.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:2:", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("1 undecodable"), "{stderr}");
    let dead: serde_json::Value = serde_json::from_slice(&std::fs::read(&dead).unwrap()).unwrap();
    assert_eq!(dead["line"], 2);
    assert_eq!(dead["raw"], "{oops");
}

#[test]
fn logs_can_be_json_lines_for_log_pipelines() {
    let dir = scratch("json-logs");
    let path = dir.join("in.jsonl");
    std::fs::write(&path, "{oops\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kaizen"))
        .args(["replay", path.to_str().unwrap()])
        .env("KAIZEN_LOG_FORMAT", "json")
        .output()
        .expect("the kaizen binary runs");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warning = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|log| log["level"] == "WARN")
        .unwrap_or_else(|| panic!("no JSON warning in {stderr}"));
    let message = warning["fields"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("{}:1:", path.display())),
        "{warning}"
    );
    assert!(warning["timestamp"].is_string(), "{warning}");
    let out = kaizen(&["--log-format", "yaml", "replay", path.to_str().unwrap()]);
    assert!(!out.status.success(), "an unknown log format is refused");
}

#[test]
fn missing_and_empty_inputs_are_clear_errors() {
    let out = kaizen(&["replay", "/no/such/file.jsonl"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("input not found: /no/such/file.jsonl"));

    let dir = scratch("empty");
    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let out = kaizen(&["replay", empty.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the input is empty"), "{stderr}");
}

#[test]
fn demo_prints_insights_with_origins() {
    let out = kaizen(&["demo"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Probable origin"), "{stdout}");
    assert!(stdout.contains("recurrence of"), "{stdout}");
    assert!(stdout.contains("origin correct"), "{stdout}");
    assert!(stdout.contains("Seen before"), "{stdout}");
    assert!(stdout.contains("remedy that worked"), "{stdout}");
    assert!(stdout.contains("      recalled inc-"), "{stdout}");
}

#[test]
fn a_restart_reloads_the_history_and_recalls_the_earlier_incident() {
    let dir = scratch("history");
    simulate(&dir, &["--seed", "7", "--faults", "3"]);
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("ground_truth.json")).unwrap()).unwrap();
    let faults = truth["faults"].as_array().unwrap();
    let recurrence = faults
        .iter()
        .find(|f| !f["recurrence_of"].is_null())
        .unwrap();
    let original = faults
        .iter()
        .find(|f| f["id"] == recurrence["recurrence_of"])
        .unwrap();
    // Split the input halfway between the original's end and the recurrence's start: the
    // original has resolved by then (its quiet period is shorter than the calm between faults).
    let at = |v: &serde_json::Value| Timestamp::parse(v.as_str().unwrap()).unwrap();
    let split = Timestamp::from_millis(
        (at(&original["end"]).as_millis() + at(&recurrence["start"]).as_millis()) / 2,
    );
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    let (mut before, mut after) = (String::new(), String::new());
    for line in events.lines() {
        let ts = Event::from_json(line).unwrap().ts;
        let part = if ts < split { &mut before } else { &mut after };
        part.push_str(line);
        part.push('\n');
    }
    let ends_at = |s: &str| s.lines().last().unwrap_or("").to_owned();
    assert!(
        !before.is_empty() && !after.is_empty(),
        "{}",
        ends_at(&before)
    );
    std::fs::write(dir.join("part1.jsonl"), &before).unwrap();
    std::fs::write(dir.join("part2.jsonl"), &after).unwrap();
    let history = dir.join("data/history.jsonl");
    let run = |part: &str| {
        let out = kaizen(&[
            "replay",
            dir.join(part).to_str().unwrap(),
            "--topology",
            dir.join("topology.json").to_str().unwrap(),
            "--history",
            history.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run("part1.jsonl");
    let stored = std::fs::read_to_string(&history).unwrap();
    assert!(
        stored.contains(original["remedy"].as_str().unwrap()),
        "{stored}"
    );
    // A new process: the history comes only from the file.
    let second = run("part2.jsonl");
    let origin = &recurrence["origin"];
    let recalled = second
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|i| i["services"].as_array().unwrap().contains(origin))
        .find_map(|i| i["similar"].as_array().and_then(|s| s.first().cloned()))
        .expect("the recurrence recalls a past incident");
    assert!(stored.contains(recalled["id"].as_str().unwrap()));
    assert_eq!(recalled["remedy"], original["remedy"]);
}
