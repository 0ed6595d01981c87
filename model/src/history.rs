//! What kaizen remembers of past incidents, to recognise them when they recur.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Symbol, Timestamp};

/// What an incident looks like, as weighted features: its origin, its services, and the
/// alerts, metrics, log templates and rules that fired where. Two incidents are alike when
/// their weighted features overlap (weighted Jaccard), which is robust to one incident having
/// a few more symptoms than the other.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint(Vec<(String, f32)>);

impl Fingerprint {
    /// Builds a fingerprint from weighted features.
    pub fn from_features(features: BTreeMap<String, f32>) -> Fingerprint {
        Fingerprint(features.into_iter().collect())
    }

    /// Weighted Jaccard similarity in `[0, 1]`.
    pub fn similarity(&self, other: &Fingerprint) -> f64 {
        let (a, b) = (&self.0, &other.0);
        let (mut i, mut j) = (0, 0);
        let (mut inter, mut union) = (0.0f64, 0.0f64);
        while i < a.len() || j < b.len() {
            match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    inter += f64::from(x.1.min(y.1));
                    union += f64::from(x.1.max(y.1));
                    i += 1;
                    j += 1;
                }
                (Some(x), Some(y)) if x.0 < y.0 => {
                    union += f64::from(x.1);
                    i += 1;
                }
                (Some(_), Some(y)) | (None, Some(y)) => {
                    union += f64::from(y.1);
                    j += 1;
                }
                (Some(x), None) => {
                    union += f64::from(x.1);
                    i += 1;
                }
                (None, None) => break,
            }
        }
        if union == 0.0 {
            0.0
        } else {
            inter / union
        }
    }
}

/// A past (or still open) incident as the history keeps it. Keyed by `id`; the latest record
/// for an id wins, so an append-only file or a compacted Kafka topic can both hold the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PastIncident {
    /// Incident id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// When it opened.
    pub opened_at: Timestamp,
    /// When it resolved.
    pub resolved_at: Option<Timestamp>,
    /// Its services.
    pub services: Vec<Symbol>,
    /// Its most probable origin.
    pub origin: Option<Symbol>,
    /// What it looked like.
    pub fingerprint: Fingerprint,
    /// Remedies responders reported, with their net votes (worked +1, not helpful −1).
    #[serde(default)]
    pub remedies: BTreeMap<String, i32>,
}

impl PastIncident {
    /// The remedy with the most net votes, if any has a positive count.
    pub fn best_remedy(&self) -> Option<&str> {
        self.remedies
            .iter()
            .filter(|(_, v)| **v > 0)
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(r, _)| r.as_str())
    }
}
