//! Helpers shared by the rules crate's integration tests. Each test file uses a subset.
#![allow(dead_code)]

use std::sync::Arc;

use kaizen_model::Event;
use kaizen_rules::{RuleError, RuleSet};

/// 2026-01-01T00:00:00Z in ms: the start of every test's event time.
pub const T0: u64 = 1_767_225_600_000;

/// Every error, one per line, for assertion messages.
pub fn listed(errors: &[RuleError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Rules checked from text (as file `test.sql`); any error fails the test.
pub fn rules(text: &str) -> Arc<RuleSet> {
    let (set, errors) = RuleSet::from_text("test.sql", text);
    assert!(errors.is_empty(), "{}", listed(&errors));
    Arc::new(set)
}

/// A native event `secs` after [`T0`]; `rest` is the JSON after `ts`.
pub fn ev(secs: u64, rest: &str) -> Event {
    let line = format!(r#"{{"ts":{},{rest}}}"#, T0 + secs * 1000);
    Event::from_json(&line).unwrap_or_else(|e| panic!("{line}: {e}"))
}
