//! The estate as a Backstage software catalog (`catalog-info.yaml`): one System, a Group per
//! team, a Component per service (`spec.type` `website` or `service`, owner, lifecycle,
//! `dependsOn`) and a Resource per database, cache and queue — written from Backstage's own
//! entity schema (backstage.io/v1alpha1), not from what kaizen reads of it.

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::estate::{Estate, Kind};

/// The System every entity belongs to.
const SYSTEM: &str = "shop";

fn description(kind: Kind) -> &'static str {
    match kind {
        Kind::Web => "Server-rendered storefront",
        Kind::Gateway => "Public REST API for partners and mobile apps",
        Kind::Service => "Domain service",
        Kind::Auth => "Identity, sessions and OAuth tokens",
        Kind::Payments => "Payment authorisation and capture (external PSP)",
        Kind::Worker => "Asynchronous order processing",
        Kind::Sql => "PostgreSQL database",
        Kind::Cache => "Redis cache",
        Kind::Queue => "RabbitMQ queue",
    }
}

/// `(kind, spec.type)` of a service's entity.
fn entity(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Web => ("Component", "website"),
        Kind::Sql => ("Resource", "database"),
        Kind::Cache => ("Resource", "cache"),
        Kind::Queue => ("Resource", "queue"),
        _ => ("Component", "service"),
    }
}

fn tags(kind: Kind, language: &str) -> Vec<&str> {
    let mut tags = match kind {
        Kind::Sql => vec!["postgresql"],
        Kind::Cache => vec!["redis"],
        Kind::Queue => vec!["rabbitmq"],
        Kind::Gateway => vec![language, "api-gateway"],
        Kind::Worker => vec![language, "worker"],
        _ => vec![language],
    };
    tags.dedup();
    tags
}

/// The catalog, one YAML document per entity. `language(i)` is service `i`'s language tag.
pub(crate) fn catalog(estate: &Estate, language: &dyn Fn(usize) -> &'static str) -> String {
    let mut out = String::new();
    let teams: BTreeSet<&str> = estate.services.iter().map(|s| s.team).collect();
    let _ = write!(
        out,
        "apiVersion: backstage.io/v1alpha1\n\
         kind: System\n\
         metadata:\n  name: {SYSTEM}\n  description: The online shop\n\
         spec:\n  owner: group:default/platform\n"
    );
    for team in &teams {
        let _ = write!(
            out,
            "---\napiVersion: backstage.io/v1alpha1\n\
             kind: Group\n\
             metadata:\n  name: {team}\n\
             spec:\n  type: team\n  children: []\n"
        );
    }
    for (i, s) in estate.services.iter().enumerate() {
        let (kind, spec_type) = entity(s.kind);
        let name = s.name.as_str();
        let _ = write!(
            out,
            "---\napiVersion: backstage.io/v1alpha1\n\
             kind: {kind}\n\
             metadata:\n  name: {name}\n  description: {}\n  annotations:\n    \
             backstage.io/kubernetes-id: {name}\n    \
             github.com/project-slug: acme-shop/{name}\n  tags:\n",
            description(s.kind)
        );
        for tag in tags(s.kind, language(i)) {
            let _ = writeln!(out, "    - {tag}");
        }
        let _ = write!(
            out,
            "spec:\n  type: {spec_type}\n  lifecycle: production\n  \
             owner: group:default/{}\n  system: {SYSTEM}\n",
            s.team
        );
        if !s.callees.is_empty() {
            out.push_str("  dependsOn:\n");
            for &c in &s.callees {
                let callee = &estate.services[c];
                let (callee_kind, _) = entity(callee.kind);
                let _ = writeln!(
                    out,
                    "    - {}:default/{}",
                    callee_kind.to_ascii_lowercase(),
                    callee.name
                );
            }
        }
    }
    out
}
