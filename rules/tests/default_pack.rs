//! The shipped rule pack (`queries/default`) checks cleanly and passes its fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::PathBuf;

fn pack() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../queries/default")
}

#[test]
fn every_default_rule_checks_and_passes_its_fixture() {
    let (set, errors) = kaizen_rules::RuleSet::load(&[pack()]);
    assert!(errors.is_empty(), "{}", common::listed(&errors));
    let mut files: Vec<PathBuf> = std::fs::read_dir(pack())
        .expect("queries/default exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    let mut failures = String::new();
    for f in &files {
        let r = kaizen_rules::run_fixture(f);
        if !r.passed() {
            failures.push_str(&format!(
                "{} ({}):\n{}",
                f.display(),
                if r.fixture.is_some() {
                    "fixture failed"
                } else {
                    "no fixture"
                },
                r.diff()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures}");
    assert!(
        set.len() >= 12,
        "the pack ships at least 12 rules, found {}",
        set.len()
    );
}
