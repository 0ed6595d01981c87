//! Label matchers, inhibition rules and silences, as Alertmanager defines them.

use std::fmt;
use std::str::FromStr;

use kaizen_model::{Labels, Timestamp};
use serde::{Deserialize, Serialize};

/// How a matcher compares a label's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchOp {
    /// `label=value`
    Equal,
    /// `label!=value`
    NotEqual,
}

/// One `label=value` or `label!=value` condition. A missing label has the empty value, as in
/// Alertmanager, so `team!=db` matches alerts without a `team` label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    /// Label name (`alertname`, `service` and `severity` are always present).
    pub label: String,
    /// Comparison.
    pub op: MatchOp,
    /// Value to compare with.
    pub value: String,
}

/// A matcher that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid matcher {0:?}: expected label=value or label!=value")]
pub struct MatcherError(String);

impl FromStr for Matcher {
    type Err = MatcherError;

    /// Parses `label=value`, `label!=value`, with optional quotes around the value.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (label, op, value) = if let Some((l, v)) = s.split_once("!=") {
            (l, MatchOp::NotEqual, v)
        } else if let Some((l, v)) = s.split_once('=') {
            (l, MatchOp::Equal, v)
        } else {
            return Err(MatcherError(s.to_owned()));
        };
        let label = label.trim();
        if label.is_empty() || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(MatcherError(s.to_owned()));
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        Ok(Matcher {
            label: label.to_owned(),
            op,
            value: value.to_owned(),
        })
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
        };
        write!(f, "{}{op}{:?}", self.label, self.value)
    }
}

impl Matcher {
    /// Whether `labels` satisfy this matcher.
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.label).map_or("", |v| v.as_str());
        (value == self.value) == (self.op == MatchOp::Equal)
    }
}

/// True when every matcher matches (an empty list matches everything).
pub(crate) fn all_match(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// While an alert matching `source` fires, alerts matching `target` that have the same values
/// for every `equal` label are muted. An alert never inhibits itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InhibitRule {
    /// What the inhibiting alert looks like.
    pub source: Vec<Matcher>,
    /// What the inhibited alerts look like.
    pub target: Vec<Matcher>,
    /// Labels that must be equal on both.
    pub equal: Vec<String>,
}

impl InhibitRule {
    /// Whether a firing `source` alert inhibits `target` under this rule.
    pub(crate) fn inhibits(&self, source: &Labels, target: &Labels) -> bool {
        all_match(&self.source, source)
            && all_match(&self.target, target)
            && self
                .equal
                .iter()
                .all(|l| source.get(l).map(|v| v.as_str()) == target.get(l).map(|v| v.as_str()))
    }
}

/// Alerts matching every matcher are muted between `starts_at` and `ends_at` (event time).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// What it mutes.
    pub matchers: Vec<Matcher>,
    /// From (inclusive).
    pub starts_at: Timestamp,
    /// Until (exclusive).
    pub ends_at: Timestamp,
    /// Why, and who.
    #[serde(default)]
    pub comment: String,
}

impl Silence {
    /// Whether this silence mutes an alert with `labels` at `ts`.
    pub fn mutes(&self, labels: &Labels, ts: Timestamp) -> bool {
        ts >= self.starts_at && ts < self.ends_at && all_match(&self.matchers, labels)
    }
}

#[cfg(test)]
mod tests {
    use kaizen_model::Symbol;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().map(|(k, v)| (Symbol::new(k), Symbol::new(v))))
    }

    #[test]
    fn matchers_parse_and_treat_missing_labels_as_empty() {
        let eq: Matcher = "severity=\"critical\"".parse().unwrap();
        let ne: Matcher = "team != db".parse().unwrap();
        assert_eq!(eq.value, "critical");
        assert!(eq.matches(&labels(&[("severity", "critical")])));
        assert!(ne.matches(&labels(&[])));
        assert!(!ne.matches(&labels(&[("team", "db")])));
        assert!("no operator".parse::<Matcher>().is_err());
        assert!("=x".parse::<Matcher>().is_err());
        assert_eq!(ne.to_string(), "team!=\"db\"");
    }

    #[test]
    fn inhibition_needs_equal_labels() {
        let rule = InhibitRule {
            source: vec!["alertname=NodeDown".parse().unwrap()],
            target: vec!["severity=warning".parse().unwrap()],
            equal: vec!["node".into()],
        };
        let source = labels(&[("alertname", "NodeDown"), ("node", "n1")]);
        let same = labels(&[("severity", "warning"), ("node", "n1")]);
        let other = labels(&[("severity", "warning"), ("node", "n2")]);
        assert!(rule.inhibits(&source, &same));
        assert!(!rule.inhibits(&source, &other));
    }
}
