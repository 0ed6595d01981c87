//! `Level::parse_lenient` reads the spellings sources use, in any case, without allocating.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use kaizen_model::Level;

#[test]
fn spellings_in_any_case() {
    for (text, level) in [
        ("TRACE", Level::Trace),
        ("finest", Level::Trace),
        ("Debug", Level::Debug),
        ("WARNING", Level::Warn),
        ("warn", Level::Warn),
        ("err", Level::Error),
        ("SEVERE", Level::Error),
        ("Emergency", Level::Fatal),
        ("crit", Level::Fatal),
        ("info", Level::Info),
        ("", Level::Info),
        ("notice", Level::Info),
        ("emergencyy", Level::Info),
        ("wärn", Level::Info),
    ] {
        assert_eq!(Level::parse_lenient(text), level, "{text:?}");
    }
}
