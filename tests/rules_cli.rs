//! `kaizen rules check|test` and `kaizen replay --rules` end to end.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn kaizen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kaizen"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the kaizen binary runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kaizen-rules-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn pack() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("queries/default")
        .display()
        .to_string()
}

#[test]
fn check_points_at_the_error_and_fails() {
    let dir = scratch("check");
    let file = dir.join("bad.sql");
    std::fs::write(&file, "CREATE RULE r SEVERITY 'critical'\nAS SELECT service FROM metrics\n   WHERE nmae = 'cpu' AND value > 0.9;\n").expect("write");
    let out = kaizen(&["rules", "check", dir.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("bad.sql:3:10: error: unknown column `nmae` in `metrics`"),
        "{err}"
    );
    assert!(
        err.contains("3 |    WHERE nmae = 'cpu' AND value > 0.9;\n  |          ^"),
        "{err}"
    );
    assert!(err.contains("help: did you mean `name`?"), "{err}");
}

#[test]
fn the_default_pack_checks_and_passes_its_fixtures() {
    let out = kaizen(&["rules", "check", &pack()]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = kaizen(&["rules", "test", &pack()]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("0 failed, 0 without fixtures"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_failing_fixture_prints_a_diff() {
    let dir = scratch("diff");
    std::fs::write(
        dir.join("oom.sql"),
        "CREATE RULE oom AS SELECT service FROM logs WHERE message LIKE '%OOMKilled%';\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("oom.test.jsonl"),
        "{\"ts\": \"+1m\", \"kind\": \"log\", \"service\": \"api\", \"level\": \"error\", \"message\": \"OOMKilled\"}\n{\"expect\": \"open\", \"rule\": \"oom\", \"at\": \"+2m\", \"service\": \"api\"}\n",
    )
    .expect("write");
    let out = kaizen(&["rules", "test", dir.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("- open oom at +2m service=api"), "{stdout}");
    assert!(stdout.contains("+ open oom at +1m service=api"), "{stdout}");
    assert!(
        stdout.contains("+ close oom at +6m service=api"),
        "{stdout}"
    );
}

/// A rule that emits insights straight to the output, so the test can see it fire.
const CRASHES: &str = "CREATE RULE crashes EMIT INSIGHT SUMMARY '{{service}} crashed' AS SELECT service FROM logs WHERE message LIKE '%crash%';\n";

fn log_line(secs: u64, message: &str) -> String {
    format!("{{\"ts\":{},\"kind\":\"log\",\"service\":\"api\",\"level\":\"error\",\"message\":\"{message}\"}}\n", 1_767_225_600 + secs)
}

#[test]
fn watched_rules_reload_and_a_broken_edit_keeps_the_old_rule_firing() {
    let dir = scratch("watch");
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).expect("rules dir");
    std::fs::write(rules.join("crashes.sql"), CRASHES).expect("write");
    let output = dir.join("out.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kaizen"))
        .args([
            "replay",
            "-",
            "--lateness",
            "0s",
            "--watch-rules",
            "--rules",
        ])
        .arg(&rules)
        .arg("-o")
        .arg(&output)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("kaizen starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(log_line(10, "crash in handler").as_bytes())
        .expect("write");
    stdin.flush().expect("flush");

    // Break the rule file; the watcher rejects it with its location and keeps the old rule.
    std::thread::sleep(Duration::from_millis(1200));
    std::fs::write(
        rules.join("crashes.sql"),
        CRASHES.replace("message LIKE", "mesage LIKE"),
    )
    .expect("write");
    let mut seen = Vec::new();
    let reloaded = loop {
        match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(line) => {
                let done = line.contains("rules reloaded");
                seen.push(line);
                if done {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    assert!(reloaded, "no reload reported: {seen:?}");
    let log = seen.join("\n");
    assert!(
        log.contains("crashes.sql:1:98: error: unknown column `mesage`"),
        "{log}"
    );
    assert!(log.contains("1 rejected"), "{log}");

    // Events after the reload still meet the old, working version.
    stdin
        .write_all(log_line(1000, "crash again").as_bytes())
        .expect("write");
    drop(stdin);
    let status = child.wait().expect("kaizen exits");
    let _ = reader.join();
    assert!(status.success());
    let out = std::fs::read_to_string(&output).expect("output");
    let opened: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("\"version\":1"))
        .collect();
    assert_eq!(opened.len(), 2, "{out}");
    assert!(opened[1].contains("\"title\":\"api crashed\""), "{out}");
    assert!(opened[1].contains("\"rule\":\"crashes\""), "{out}");
}

/// Replays two hours of a generated scenario (in `dir`) with `rules` on one worker and on two,
/// checks the outputs are the same, and returns it.
fn replay_deterministically(dir: &std::path::Path, rules: &str) -> Vec<u8> {
    let d = dir.to_str().expect("utf-8");
    let out = kaizen(&["simulate", "--seed", "3", "--duration", "2h", "--out", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = |workers: &str| {
        let events = format!("{d}/events.jsonl");
        let topology = format!("{d}/topology.json");
        let args = ["replay", &events, "--topology", &topology, "--rules", rules];
        let out = kaizen(&[&args[..], &["-w", workers]].concat());
        assert!(out.status.success(), "{}", text(&out.stderr));
        out.stdout
    };
    let one = run("1");
    assert_eq!(
        one,
        run("2"),
        "rules must not make the output depend on the worker count"
    );
    one
}

#[test]
fn replay_with_the_default_pack_is_deterministic_and_explains_rule_insights() {
    let one = replay_deterministically(&scratch("replay"), &pack());
    let jsonl = text(&one);
    let explained: Vec<&str> = jsonl
        .lines()
        .filter(|l| l.contains("\"explain\":["))
        .collect();
    assert!(
        !explained.is_empty(),
        "no insight explains a rule:\n{jsonl}"
    );
    assert!(explained[0].contains("\"source\":\""), "{}", explained[0]);
    assert!(explained[0].contains("\"events\":[\""), "{}", explained[0]);
}

#[test]
fn rules_over_incidents_see_every_incident_correlation_opens() {
    let dir = scratch("incidents");
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).expect("rules dir");
    std::fs::write(
        rules.join("opened.sql"),
        "CREATE RULE opened EMIT INSIGHT SUMMARY 'seen {{id}}' \
         AS SELECT id FROM incidents WHERE status = 'open';\n",
    )
    .expect("write");
    let one = replay_deterministically(&dir, rules.to_str().expect("utf-8"));
    let insights: Vec<serde_json::Value> = text(&one)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    let field = |i: &serde_json::Value, k: &str| i[k].as_str().unwrap_or_default().to_string();
    let mut opened: Vec<String> = insights
        .iter()
        .filter(|i| field(i, "id").starts_with("inc-") && i["version"] == 1)
        .map(|i| field(i, "id"))
        .collect();
    assert!(!opened.is_empty(), "the scenario has incidents");
    let mut seen: Vec<String> = insights
        .iter()
        .filter(|i| i["version"] == 1)
        .filter_map(|i| field(i, "title").strip_prefix("seen ").map(str::to_owned))
        .collect();
    opened.sort();
    seen.sort();
    assert_eq!(seen, opened, "one rule insight per incident");
}
