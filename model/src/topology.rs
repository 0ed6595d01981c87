//! The service estate: who depends on whom, who is user-facing, who owns what.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Symbol;

/// One service in the estate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// Service name, as events carry it.
    pub name: Symbol,
    /// `edge`, `core`, `data`, `async`, … (free text).
    #[serde(default)]
    pub tier: Option<String>,
    /// Serves end users directly: its symptoms are the impact.
    #[serde(default)]
    pub user_facing: bool,
    /// Owning team.
    #[serde(default)]
    pub owner: Option<String>,
    /// Where to talk about it.
    #[serde(default)]
    pub slack_channel: Option<String>,
    /// Services this one calls (edges point from caller to callee).
    #[serde(default)]
    pub depends_on: Vec<Symbol>,
    /// Service level objectives, if it has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<Slo>,
}

/// What a service promises its users.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    /// Share of requests that must succeed, e.g. `0.999` (measured on `http_error_ratio`).
    #[serde(default)]
    pub availability: Option<f64>,
    /// 99th percentile latency target in milliseconds (measured on `http_latency_p99_ms`).
    #[serde(default)]
    pub latency_p99_ms: Option<f64>,
}

/// The topology file (`topology.json`): `{"services": [ServiceInfo, …]}`.
///
/// ```
/// use kaizen_model::Topology;
/// let t = Topology::from_json(r#"{"services":[
///   {"name":"frontend","user_facing":true,"depends_on":["checkout"]},
///   {"name":"checkout"}]}"#).unwrap();
/// assert_eq!(t.edges().count(), 1);
/// assert!(t.service("frontend").unwrap().user_facing);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Topology {
    /// The services.
    pub services: Vec<ServiceInfo>,
}

/// A topology file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// Not valid JSON of the expected shape.
    #[error("invalid topology: {0}")]
    Json(#[from] serde_json::Error),
    /// A service appears twice.
    #[error("invalid topology: service {0:?} is listed twice")]
    Duplicate(String),
}

impl Topology {
    /// Parses and validates a topology document.
    pub fn from_json(text: &str) -> Result<Topology, TopologyError> {
        let topology: Topology = serde_json::from_str(text)?;
        let mut seen = BTreeMap::new();
        for s in &topology.services {
            if seen.insert(s.name.clone(), ()).is_some() {
                return Err(TopologyError::Duplicate(s.name.to_string()));
            }
        }
        Ok(topology)
    }

    /// The service called `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceInfo> {
        self.services.iter().find(|s| s.name.as_str() == name)
    }

    /// Every `(caller, callee)` edge.
    pub fn edges(&self) -> impl Iterator<Item = (Symbol, Symbol)> + '_ {
        self.services.iter().flat_map(|s| {
            s.depends_on
                .iter()
                .map(move |d| (s.name.clone(), d.clone()))
        })
    }
}
