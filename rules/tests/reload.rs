//! Hot reload: unchanged rules keep their state, a broken edit is rejected with its location
//! and the previous version keeps firing, a valid edit starts fresh.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::path::PathBuf;
use std::sync::Arc;

use kaizen_model::{Event, SignalState};
use kaizen_rules::{RuleEvaluator, RuleFilter, RuleOutput, RuleSet};

const T0: u64 = 1_767_225_600_000;

fn log(secs: u64, message: &str) -> Event {
    let line = format!(
        r#"{{"ts":{},"kind":"log","service":"api","level":"error","message":"{message}"}}"#,
        T0 + secs * 1000
    );
    Event::from_json(&line).unwrap_or_else(|e| panic!("{e}"))
}

struct Engine {
    filter: RuleFilter,
    eval: RuleEvaluator,
    seq: u64,
    out: Vec<RuleOutput>,
}

impl Engine {
    fn feed(&mut self, events: impl IntoIterator<Item = Event>) {
        let mut rows = Vec::new();
        for e in events {
            self.seq += 1;
            self.filter.on_event(&e, self.seq, &mut rows);
            for r in rows.drain(..) {
                self.eval.on_row(r, &mut self.out);
            }
        }
    }

    fn opened(&self) -> Vec<String> {
        self.out
            .iter()
            .filter_map(|o| match o {
                RuleOutput::Signal(s, _) if s.state == SignalState::Open => Some(format!(
                    "{}@{}",
                    s.name.as_str(),
                    (s.ts.as_millis() - T0) / 1000
                )),
                _ => None,
            })
            .collect()
    }
}

const STEADY: &str = "CREATE RULE steady AS SELECT service FROM logs WHERE message LIKE '%boom%' FOR INTERVAL '10' MINUTE;\n";
const EDITED_V1: &str =
    "CREATE RULE edited AS SELECT service FROM logs WHERE message LIKE '%crash%';\n";

#[test]
fn reload_keeps_unchanged_state_and_rejects_broken_edits() {
    let dir = std::env::temp_dir().join(format!("kaizen-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let steady = dir.join("steady.sql");
    let edited = dir.join("edited.sql");
    std::fs::write(&steady, STEADY).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&edited, EDITED_V1).unwrap_or_else(|e| panic!("{e}"));
    let paths: Vec<PathBuf> = vec![dir.clone()];
    let (set, errors) = RuleSet::load(&paths);
    assert!(errors.is_empty());
    let set = Arc::new(set);
    let mut engine = Engine {
        filter: RuleFilter::new(set.clone()),
        eval: RuleEvaluator::new(set.clone()),
        seq: 0,
        out: Vec::new(),
    };

    // Phase 1: `steady` starts pending at 0 s (FOR 10 min); `edited` fires on a crash.
    engine.feed((0..10).map(|i| log(i * 30, "boom")));
    engine.feed([log(290, "crash")]);
    assert_eq!(engine.opened(), ["edited@290"]);

    // A broken edit of `edited`: rejected with its location, the old version stays.
    std::fs::write(
        &edited,
        "CREATE RULE edited AS SELECT service FROM logs WHERE mesage LIKE '%crash%';\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (next, report) = set.reload(&paths);
    assert_eq!(report.errors.len(), 1);
    let err = report.errors[0].to_string();
    assert!(
        err.contains("edited.sql:1:54: error: unknown column `mesage`"),
        "{err}"
    );
    assert!(err.contains("did you mean `message`?"), "{err}");
    assert_eq!(report.unchanged, ["steady", "edited"]);
    let next = Arc::new(next);
    engine.filter.set_rules(next.clone());
    engine
        .eval
        .set_rules(next.clone(), T0 + 300_000, &mut engine.out);

    // Phase 2: `steady` fires at 600 s — ten minutes after its first hit, so its pending state
    // survived the reload — and the old `edited` keeps firing on a new crash (after its
    // quiet period closed the first one).
    engine.feed((10..22).map(|i| log(i * 30, "boom")));
    engine.feed([log(700, "crash")]);
    assert_eq!(engine.opened(), ["edited@290", "steady@600", "edited@700"]);

    // A valid edit replaces `edited` (fresh state); `steady` is still unchanged.
    std::fs::write(
        &edited,
        "CREATE RULE edited AS SELECT service FROM logs WHERE message LIKE '%panic%';\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (third, report) = next.reload(&paths);
    assert!(report.errors.is_empty());
    assert_eq!(
        (report.changed.as_slice(), report.unchanged.as_slice()),
        (&["edited".to_string()][..], &["steady".to_string()][..])
    );
    let third = Arc::new(third);
    engine.filter.set_rules(third.clone());
    // The replaced rule's firing group resolves at the swap.
    let before = engine.out.len();
    engine.eval.set_rules(third, T0 + 710_000, &mut engine.out);
    assert!(
        matches!(&engine.out[before..], [RuleOutput::Signal(s, _)] if s.state == SignalState::Close && s.name.as_str() == "edited")
    );
    engine.feed([log(720, "crash"), log(730, "panic")]);
    assert_eq!(
        engine.opened().last().map(String::as_str),
        Some("edited@730")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
