//! Backstage catalog files (`catalog-info.yaml`) as a [`Topology`].
//!
//! Only Components and Resources become services (a database or a queue is a node of the
//! service graph like any other); every other kind is skipped. Backstage's entity schema is
//! open-ended (labels, links, plugin annotations, …), so keys kaizen does not use are ignored
//! here, unlike in kaizen's own JSON; a document that is not an entity at all (no `apiVersion`
//! or `kind`) is an error, and so is a file with no Backstage entity in it.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_norway::{Mapping, Value};

use super::{ServiceInfo, Topology, TopologyError};
use crate::Symbol;

/// Annotations that name a service's Slack channel, first found wins. `slack.com/bot-notify` is
/// the annotation Backstage's own Slack notifications module reads.
const SLACK_ANNOTATIONS: [&str; 3] = [
    "kaizen.io/slack-channel",
    "slack.com/channel",
    "slack.com/bot-notify",
];

/// Overrides the user-facing rule either way (`"true"` or `"false"`).
const USER_FACING_ANNOTATION: &str = "kaizen.io/user-facing";

/// Tags that mark a Component as user-facing.
const USER_FACING_TAGS: [&str; 2] = ["user-facing", "frontend"];

/// An entity's `spec`, the part kaizen reads.
#[derive(Default)]
struct Spec {
    r#type: Option<String>,
    lifecycle: Option<String>,
    owner: Option<String>,
    system: Option<String>,
    depends_on: Vec<String>,
    dependency_of: Vec<String>,
    provides_apis: Vec<String>,
    consumes_apis: Vec<String>,
}

/// `section.key` of an entity, read as `T` (absent or null: the default), or a message
/// naming it.
fn field<T: DeserializeOwned + Default>(
    section: Option<&Mapping>,
    section_name: &str,
    key: &str,
) -> Result<T, String> {
    match section.and_then(|m| m.get(key)) {
        None | Some(Value::Null) => Ok(T::default()),
        Some(v) => {
            serde_norway::from_value(v.clone()).map_err(|e| format!("{section_name}.{key}: {e}"))
        }
    }
}

/// The mapping at `key` (absent or null: none), or a message naming it.
fn section<'a>(entity: &'a Mapping, key: &str) -> Result<Option<&'a Mapping>, String> {
    match entity.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Mapping(m)) => Ok(Some(m)),
        Some(_) => Err(format!("{key}: expected a mapping")),
    }
}

impl Spec {
    fn read(spec: Option<&Mapping>) -> Result<Spec, String> {
        Ok(Spec {
            r#type: field(spec, "spec", "type")?,
            lifecycle: field(spec, "spec", "lifecycle")?,
            owner: field(spec, "spec", "owner")?,
            system: field(spec, "spec", "system")?,
            depends_on: field(spec, "spec", "dependsOn")?,
            dependency_of: field(spec, "spec", "dependencyOf")?,
            provides_apis: field(spec, "spec", "providesApis")?,
            consumes_apis: field(spec, "spec", "consumesApis")?,
        })
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Component,
    Resource,
}

/// The name part of an entity reference: `[kind:][namespace/]name` → `name`.
pub(super) fn ref_name(reference: &str) -> &str {
    let reference = reference.trim();
    let without_kind = reference
        .split_once(':')
        .map_or(reference, |(_, rest)| rest);
    without_kind
        .rsplit_once('/')
        .map_or(without_kind, |(_, name)| name)
}

pub(super) fn parse(text: &str) -> Result<Topology, TopologyError> {
    let mut services = Vec::new();
    let mut edges: Vec<(Symbol, Symbol)> = Vec::new();
    // API name → the services providing it, and (consumer, API) pairs: a consumer calls every
    // provider of the APIs it consumes.
    let mut providers: BTreeMap<String, Vec<Symbol>> = BTreeMap::new();
    let mut consumes: Vec<(Symbol, String)> = Vec::new();
    let mut entities = 0;
    for (i, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let document_no = i + 1;
        let value = Value::deserialize(document)?;
        if value.is_null() {
            continue; // an empty document, e.g. after a trailing `---`
        }
        let error =
            |kind: Option<&str>, name: Option<&str>, message: String| TopologyError::Entity {
                document: document_no,
                kind: kind.map(str::to_owned),
                name: name.map(str::to_owned),
                message,
            };
        let Value::Mapping(map) = &value else {
            return Err(error(
                None,
                None,
                "not a Backstage entity (expected a mapping with apiVersion, kind, metadata)"
                    .into(),
            ));
        };
        let api_version = map.get("apiVersion").and_then(Value::as_str);
        let kind_name = map.get("kind").and_then(Value::as_str);
        let (Some(api_version), Some(kind_name)) = (api_version, kind_name) else {
            return Err(error(
                kind_name,
                None,
                "not a Backstage entity: `apiVersion` and `kind` are required".into(),
            ));
        };
        if !api_version.starts_with("backstage.io/") {
            continue; // another tool's document in the same file
        }
        entities += 1;
        let kind = if kind_name.eq_ignore_ascii_case("component") {
            Kind::Component
        } else if kind_name.eq_ignore_ascii_case("resource") {
            Kind::Resource
        } else {
            continue; // System, API, Group, User, Domain, Location, Template, …
        };
        let name_of = entity_name(map);
        let fail = |message: String| error(Some(kind_name), name_of, message);
        let metadata = section(map, "metadata").map_err(fail)?;
        let spec = section(map, "spec").and_then(Spec::read).map_err(fail)?;
        let name: String = field(metadata, "metadata", "name").map_err(fail)?;
        let name = name.trim();
        if name.is_empty() {
            return Err(fail("metadata.name is required".into()));
        }
        let annotations: BTreeMap<String, Value> =
            field(metadata, "metadata", "annotations").map_err(fail)?;
        let tags: Vec<String> = field(metadata, "metadata", "tags").map_err(fail)?;
        let user_facing = match annotations.get(USER_FACING_ANNOTATION) {
            Some(v) => annotation_bool(v).ok_or_else(|| {
                error(
                    Some(kind_name),
                    Some(name),
                    format!("annotation {USER_FACING_ANNOTATION} must be \"true\" or \"false\""),
                )
            })?,
            None => {
                kind == Kind::Component
                    && (spec.r#type.as_deref() == Some("website")
                        || tags.iter().any(|t| USER_FACING_TAGS.contains(&t.as_str())))
            }
        };
        let slack_channel = SLACK_ANNOTATIONS
            .iter()
            .filter_map(|key| annotations.get(*key).and_then(Value::as_str))
            .map(str::trim)
            .find(|c| !c.is_empty())
            .map(str::to_owned);
        let symbol = Symbol::new(name);
        let names = |refs: &[String]| -> Vec<Symbol> {
            refs.iter()
                .map(|r| ref_name(r))
                .filter(|n| !n.is_empty())
                .map(Symbol::new)
                .collect()
        };
        for callee in names(&spec.depends_on) {
            edges.push((symbol.clone(), callee));
        }
        for caller in names(&spec.dependency_of) {
            edges.push((caller, symbol.clone()));
        }
        for api in &spec.provides_apis {
            providers
                .entry(ref_name(api).to_owned())
                .or_default()
                .push(symbol.clone());
        }
        for api in &spec.consumes_apis {
            consumes.push((symbol.clone(), ref_name(api).to_owned()));
        }
        services.push(ServiceInfo {
            name: symbol,
            tier: spec.r#type.filter(|t| !t.is_empty()),
            user_facing,
            owner: spec
                .owner
                .as_deref()
                .map(ref_name)
                .filter(|o| !o.is_empty())
                .map(str::to_owned),
            slack_channel,
            depends_on: Vec::new(),
            slo: None,
            lifecycle: spec.lifecycle.filter(|l| !l.is_empty()),
            system: spec
                .system
                .as_deref()
                .map(ref_name)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        });
    }
    if entities == 0 {
        return Err(TopologyError::NoEntities);
    }
    for (consumer, api) in consumes {
        for provider in providers.get(&api).into_iter().flatten() {
            if *provider != consumer {
                edges.push((consumer.clone(), provider.clone()));
            }
        }
    }
    Topology::assemble(services, edges)
}

fn entity_name(map: &Mapping) -> Option<&str> {
    map.get("metadata")?.get("name")?.as_str()
}

/// `true`, `false`, `"true"`, `"false"` (any case).
fn annotation_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}
