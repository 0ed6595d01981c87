//! Durations in configs: humantime strings (`"30s"`, `"250ms"`, `"2m"`) or integer
//! milliseconds. `#[serde(with = "kaizen_model::duration_serde")]`.
//!
//! The one reading of a duration every config of kaizen's shares, so that a bare integer means
//! the same thing (milliseconds) wherever it is written.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Writes a humantime string.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

/// Reads a humantime string or integer milliseconds.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(
        untagged,
        expecting = "a duration such as \"30s\" or integer milliseconds"
    )]
    enum Raw {
        Millis(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Millis(ms) => Ok(Duration::from_millis(ms)),
        Raw::Text(t) => humantime::parse_duration(&t).map_err(serde::de::Error::custom),
    }
}
