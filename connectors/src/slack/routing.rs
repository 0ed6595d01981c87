//! Which Slack channel an incident goes to.
//!
//! For: choosing the channel of an incident's *first* message from its services, their owning
//! teams and its severity. Not for: moving a message later — once posted, every version of an
//! incident updates the same message in the same channel, even if its origin or severity
//! changes (a message that hops channels would lose its thread and its readers).
//!
//! Precedence, most specific first:
//! 1. `by_service`: the probable origin (top candidate) first, then the incident's other
//!    services in their (sorted) order; the first service with a channel wins;
//! 2. `by_team`: the owning team (`service_teams`) of the origin, then of the other services;
//! 3. `by_severity`: the incident's highest severity;
//! 4. `default_channel`.
//!
//! The owner of a service is the team that should see it first; severity routing is for
//! incidents nobody claims.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use kaizen_model::{Insight, Severity, Topology};

/// Channel routing. Channels are names (`#payments-oncall`) or ids (`C0123ABCD`); an id is
/// safer, since a renamed channel keeps its id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// Where incidents go when nothing below matches.
    pub default_channel: String,
    /// Service name → channel.
    #[serde(default)]
    pub by_service: BTreeMap<String, String>,
    /// Team name → channel.
    #[serde(default)]
    pub by_team: BTreeMap<String, String>,
    /// Service name → owning team, for `by_team` (filled from the topology's `owner` by
    /// [`RoutingConfig::apply_topology`]).
    #[serde(default)]
    pub service_teams: BTreeMap<String, String>,
    /// Severity (`critical`, `warning`, `info`) → channel.
    #[serde(default)]
    pub by_severity: BTreeMap<Severity, String>,
}

impl RoutingConfig {
    /// Everything to `default_channel`.
    pub fn new(default_channel: impl Into<String>) -> Self {
        RoutingConfig {
            default_channel: default_channel.into(),
            ..RoutingConfig::default()
        }
    }

    /// Learns service owners (`owner`) and service channels (`slack_channel`) from the
    /// topology. Entries already in the config win: the operator's word beats the inventory.
    pub fn apply_topology(&mut self, topology: &Topology) {
        for s in &topology.services {
            let name = s.name.as_str();
            if let Some(team) = s.owner.as_ref().filter(|t| !t.is_empty()) {
                self.service_teams
                    .entry(name.to_owned())
                    .or_insert_with(|| team.clone());
            }
            if let Some(channel) = s.slack_channel.as_ref().filter(|c| !c.is_empty()) {
                self.by_service
                    .entry(name.to_owned())
                    .or_insert_with(|| channel.clone());
            }
        }
    }

    /// The channel for an incident's first message (see the module doc for precedence).
    pub fn route(&self, insight: &Insight) -> &str {
        let origin = insight.origin.first().map(|c| c.service.as_str());
        let services = || {
            origin
                .into_iter()
                .chain(insight.services.iter().map(|s| s.as_str()))
        };
        if let Some(c) = services().find_map(|s| self.by_service.get(s)) {
            return c;
        }
        if let Some(c) = services()
            .filter_map(|s| self.service_teams.get(s))
            .find_map(|team| self.by_team.get(team))
        {
            return c;
        }
        if let Some(c) = self.by_severity.get(&insight.severity) {
            return c;
        }
        &self.default_channel
    }
}

#[cfg(test)]
mod tests {
    use kaizen_model::{IncidentStatus, OriginCandidate, Symbol, Timestamp};

    use super::*;

    fn insight(services: &[&str], origin: Option<&str>, severity: Severity) -> Insight {
        Insight {
            id: "inc-1".into(),
            version: 1,
            status: IncidentStatus::Open,
            title: "t".into(),
            severity,
            services: services.iter().map(|s| Symbol::new(s)).collect(),
            impacted: vec![],
            impact: vec![],
            origin: origin
                .map(|o| OriginCandidate {
                    service: Symbol::new(o),
                    score: 0.9,
                    evidence: vec![],
                    deviation: None,
                })
                .into_iter()
                .collect(),
            suspect_changes: vec![],
            similar: vec![],
            novelty: None,
            timeline: vec![],
            opened_at: Timestamp::from_millis(0),
            updated_at: Timestamp::from_millis(0),
            resolved_at: None,
            explain: Vec::new(),
        }
    }

    #[test]
    fn service_beats_team_beats_severity_beats_default() {
        let mut r = RoutingConfig::new("#incidents");
        r.by_severity.insert(Severity::Critical, "#sev1".into());
        assert_eq!(
            r.route(&insight(&["a"], None, Severity::Warning)),
            "#incidents"
        );
        assert_eq!(r.route(&insight(&["a"], None, Severity::Critical)), "#sev1");
        r.service_teams.insert("b".into(), "payments".into());
        r.by_team.insert("payments".into(), "#payments".into());
        assert_eq!(
            r.route(&insight(&["a", "b"], None, Severity::Critical)),
            "#payments"
        );
        r.by_service.insert("a".into(), "#svc-a".into());
        r.by_service.insert("b".into(), "#svc-b".into());
        assert_eq!(
            r.route(&insight(&["a", "b"], None, Severity::Critical)),
            "#svc-a"
        );
        // The probable origin comes before the sorted service list.
        assert_eq!(
            r.route(&insight(&["a", "b"], Some("b"), Severity::Critical)),
            "#svc-b"
        );
    }

    #[test]
    fn topology_fills_gaps_but_config_wins() {
        let topo = Topology::from_json(
            r##"{"services":[
              {"name":"a","owner":"team-a","slack_channel":"#from-topology"},
              {"name":"b","owner":"team-b","slack_channel":"#b-topology"}]}"##,
        )
        .unwrap();
        let mut r = RoutingConfig::new("#incidents");
        r.by_service.insert("a".into(), "#configured".into());
        r.apply_topology(&topo);
        assert_eq!(r.by_service["a"], "#configured");
        assert_eq!(r.by_service["b"], "#b-topology");
        assert_eq!(r.service_teams["a"], "team-a");
    }

    #[test]
    fn severity_keys_read_from_config() {
        let r: RoutingConfig = serde_json::from_str(
            r##"{"default_channel":"#inc","by_severity":{"critical":"#sev1"}}"##,
        )
        .unwrap();
        assert_eq!(r.by_severity[&Severity::Critical], "#sev1");
    }
}
