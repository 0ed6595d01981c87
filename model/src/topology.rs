//! The service estate: who depends on whom, who is user-facing, who owns what.
//!
//! Two shapes of file describe it (`docs/topology.md`): kaizen's own JSON
//! ([`Topology::from_json`]: `services`, each with `depends_on`, and/or a top-level `edges`
//! list) and Backstage catalog files ([`Topology::from_backstage_yaml`]). A key kaizen does not
//! know is an error naming it, never silently ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Symbol;

mod backstage;
#[cfg(test)]
mod tests;

/// One service in the estate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceInfo {
    /// Service name, as events carry it.
    pub name: Symbol,
    /// `edge`, `core`, `data`, `async`, … (free text; from Backstage, the entity's `spec.type`).
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
    /// `production`, `experimental`, `deprecated`, … (free text, Backstage's `spec.lifecycle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<String>,
    /// The system (group of services) it belongs to (Backstage's `spec.system`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
}

impl ServiceInfo {
    /// A service known only by its name.
    pub fn named(name: impl Into<Symbol>) -> ServiceInfo {
        ServiceInfo {
            name: name.into(),
            ..ServiceInfo::default()
        }
    }
}

/// What a service promises its users.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Share of requests that must succeed, e.g. `0.999` (measured on `http_error_ratio`).
    #[serde(default)]
    pub availability: Option<f64>,
    /// 99th percentile latency target in milliseconds (measured on `http_latency_p99_ms`).
    #[serde(default)]
    pub latency_p99_ms: Option<f64>,
}

/// A `caller → callee` edge in the JSON file's top-level `edges` list.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct EdgeEntry {
    /// The caller.
    from: Symbol,
    /// The callee.
    to: Symbol,
}

/// The JSON document as written: services and/or edges.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopologyDoc {
    #[serde(default)]
    services: Vec<ServiceInfo>,
    #[serde(default)]
    edges: Vec<EdgeEntry>,
}

impl TryFrom<TopologyDoc> for Topology {
    type Error = TopologyError;

    fn try_from(doc: TopologyDoc) -> Result<Topology, TopologyError> {
        Topology::assemble(doc.services, doc.edges.into_iter().map(|e| (e.from, e.to)))
    }
}

/// The topology: every service, each with the services it calls.
///
/// Read from `topology.json` (`{"services": [ServiceInfo, …], "edges": [{"from", "to"}, …]}`,
/// both optional) or from Backstage catalog YAML. Once built, every edge is in its caller's
/// `depends_on` and every service an edge names is in `services`.
///
/// ```
/// use kaizen_model::Topology;
/// let t = Topology::from_json(r#"{"services":[
///   {"name":"frontend","user_facing":true,"depends_on":["checkout"]},
///   {"name":"checkout"}],
///   "edges":[{"from":"checkout","to":"payments"}]}"#).unwrap();
/// assert_eq!(t.edges().count(), 2);
/// assert!(t.service("frontend").unwrap().user_facing);
/// assert!(t.service("payments").is_some());
/// assert!(Topology::from_json(r#"{"servces":[]}"#).unwrap_err().to_string().contains("servces"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TopologyDoc")]
pub struct Topology {
    /// The services.
    pub services: Vec<ServiceInfo>,
}

/// A topology file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// Not valid JSON of the expected shape (an unknown key is named, with its line and column).
    /// The message is all in `Display` (no `source()`), so an error chain prints it once.
    #[error("invalid topology: {0}")]
    Json(serde_json::Error),
    /// Not valid YAML.
    #[error("invalid Backstage catalog: {0}")]
    Yaml(serde_norway::Error),
    /// A Backstage entity kaizen reads (Component, Resource) that is not of the expected shape.
    #[error("invalid Backstage catalog: document {document}{}: {message}", entity_label(.kind, .name))]
    Entity {
        /// 1-based position of the YAML document in the file.
        document: usize,
        /// The entity's kind, if it has one.
        kind: Option<String>,
        /// The entity's name, if it has one.
        name: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A YAML file with no Backstage entity in it (probably not a catalog file).
    #[error(
        "not a Backstage catalog: no entity with `apiVersion: backstage.io/…` in it \
         (kaizen's own topology format is JSON)"
    )]
    NoEntities,
    /// A service appears twice.
    #[error("invalid topology: service {0:?} is listed twice")]
    Duplicate(String),
    /// A service without a name, or an edge with an empty end.
    #[error("invalid topology: {0}")]
    EmptyName(&'static str),
    /// Two topologies being merged describe a service differently.
    #[error("conflicting topologies: service {service:?} has two different `{field}`s")]
    Conflict {
        /// The service.
        service: String,
        /// The field they disagree on.
        field: &'static str,
    },
}

impl From<serde_json::Error> for TopologyError {
    fn from(e: serde_json::Error) -> TopologyError {
        TopologyError::Json(e)
    }
}

impl From<serde_norway::Error> for TopologyError {
    fn from(e: serde_norway::Error) -> TopologyError {
        TopologyError::Yaml(e)
    }
}

fn entity_label(kind: &Option<String>, name: &Option<String>) -> String {
    match (kind, name) {
        (Some(k), Some(n)) => format!(" ({k} {n:?})"),
        (Some(k), None) => format!(" ({k})"),
        (None, Some(n)) => format!(" ({n:?})"),
        (None, None) => String::new(),
    }
}

impl Topology {
    /// Parses and validates kaizen's JSON topology document. Unknown keys are refused.
    pub fn from_json(text: &str) -> Result<Topology, TopologyError> {
        let doc: TopologyDoc = serde_json::from_str(text)?;
        Topology::try_from(doc)
    }

    /// Reads a Backstage catalog file: one or more YAML documents (`---` separated) of
    /// `apiVersion: backstage.io/v1alpha1` entities. Components and Resources become services;
    /// other kinds (System, API, Group, User, Domain, Location, Template, …) are skipped. See
    /// `docs/topology.md` for how fields map.
    ///
    /// ```
    /// use kaizen_model::Topology;
    /// let t = Topology::from_backstage_yaml("
    /// apiVersion: backstage.io/v1alpha1
    /// kind: Component
    /// metadata: {name: frontend}
    /// spec: {type: website, owner: group:default/team-web, lifecycle: production,
    ///        dependsOn: [component:default/checkout]}
    /// ").unwrap();
    /// let f = t.service("frontend").unwrap();
    /// assert!(f.user_facing);
    /// assert_eq!(f.owner.as_deref(), Some("team-web"));
    /// assert_eq!(f.depends_on[0].as_str(), "checkout");
    /// ```
    pub fn from_backstage_yaml(text: &str) -> Result<Topology, TopologyError> {
        backstage::parse(text)
    }

    /// Builds a topology from services and extra `(caller, callee)` edges: the edges join
    /// their callers' `depends_on` (a repeated edge counts once), and every service an edge
    /// names that is not listed is added with defaults. A service listed twice is an error.
    pub fn assemble(
        services: Vec<ServiceInfo>,
        edges: impl IntoIterator<Item = (Symbol, Symbol)>,
    ) -> Result<Topology, TopologyError> {
        let mut index: BTreeMap<Symbol, usize> = BTreeMap::new();
        for (i, s) in services.iter().enumerate() {
            if s.name.as_str().is_empty() {
                return Err(TopologyError::EmptyName("a service has an empty name"));
            }
            if index.insert(s.name.clone(), i).is_some() {
                return Err(TopologyError::Duplicate(s.name.to_string()));
            }
        }
        let mut topology = Topology { services };
        let mut pending: Vec<(Symbol, Symbol)> = Vec::new();
        for s in &mut topology.services {
            let listed = std::mem::take(&mut s.depends_on);
            pending.extend(listed.into_iter().map(|d| (s.name.clone(), d)));
        }
        pending.extend(edges);
        for (from, to) in pending {
            if from.as_str().is_empty() || to.as_str().is_empty() {
                return Err(TopologyError::EmptyName("an edge has an empty end"));
            }
            let caller = topology.index_of(&mut index, &from);
            if !topology.services[caller].depends_on.contains(&to) {
                topology.services[caller].depends_on.push(to.clone());
            }
            topology.index_of(&mut index, &to);
        }
        Ok(topology)
    }

    /// `name`'s position, adding it (with defaults) when it is not there yet.
    fn index_of(&mut self, index: &mut BTreeMap<Symbol, usize>, name: &Symbol) -> usize {
        *index.entry(name.clone()).or_insert_with(|| {
            self.services.push(ServiceInfo::named(name.clone()));
            self.services.len() - 1
        })
    }

    /// Combines two topologies (e.g. from several catalog files): a service in both keeps the
    /// union of its dependencies and of its fields; two different values for the same field
    /// (owner, tier, …) are a [`TopologyError::Conflict`].
    pub fn merge(self, other: Topology) -> Result<Topology, TopologyError> {
        let mut services = self.services;
        let mut index: BTreeMap<Symbol, usize> = services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        for s in other.services {
            match index.get(&s.name) {
                Some(&i) => combine(&mut services[i], s)?,
                None => {
                    index.insert(s.name.clone(), services.len());
                    services.push(s);
                }
            }
        }
        Topology::assemble(services, [])
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

/// Folds `from` into `into` (same name): see [`Topology::merge`].
fn combine(into: &mut ServiceInfo, from: ServiceInfo) -> Result<(), TopologyError> {
    fn field<T: PartialEq>(
        service: &Symbol,
        name: &'static str,
        into: &mut Option<T>,
        from: Option<T>,
    ) -> Result<(), TopologyError> {
        match (into.as_ref(), from) {
            (_, None) => Ok(()),
            (None, Some(v)) => {
                *into = Some(v);
                Ok(())
            }
            (Some(a), Some(b)) if *a == b => Ok(()),
            (Some(_), Some(_)) => Err(TopologyError::Conflict {
                service: service.to_string(),
                field: name,
            }),
        }
    }
    let name = into.name.clone();
    field(&name, "tier", &mut into.tier, from.tier)?;
    field(&name, "owner", &mut into.owner, from.owner)?;
    field(
        &name,
        "slack_channel",
        &mut into.slack_channel,
        from.slack_channel,
    )?;
    field(&name, "slo", &mut into.slo, from.slo)?;
    field(&name, "lifecycle", &mut into.lifecycle, from.lifecycle)?;
    field(&name, "system", &mut into.system, from.system)?;
    into.user_facing |= from.user_facing;
    for d in from.depends_on {
        if !into.depends_on.contains(&d) {
            into.depends_on.push(d);
        }
    }
    Ok(())
}
