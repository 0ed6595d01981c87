use super::backstage::ref_name;
use super::*;

fn deps(t: &Topology, name: &str) -> Vec<String> {
    t.service(name)
        .unwrap_or_else(|| panic!("{name} is missing"))
        .depends_on
        .iter()
        .map(|d| d.to_string())
        .collect()
}

fn names(t: &Topology) -> Vec<&str> {
    t.services.iter().map(|s| s.name.as_str()).collect()
}

#[test]
fn unknown_top_level_key_is_refused_by_name() {
    let err = Topology::from_json(r#"{"services":[{"name":"a"}],"edgez":[]}"#).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, TopologyError::Json(_)));
    assert!(msg.contains("unknown field `edgez`"), "{msg}");
    assert!(msg.contains("line 1"), "{msg}");
}

#[test]
fn unknown_service_slo_and_edge_keys_are_refused_by_name() {
    for (text, key) in [
        (
            r#"{"services":[{"name":"a","dependsOn":["b"]}]}"#,
            "dependsOn",
        ),
        (
            r#"{"services":[{"name":"a","slo":{"availability":0.99,"p99":5}}]}"#,
            "p99",
        ),
        (r#"{"edges":[{"from":"a","to":"b","weight":2}]}"#, "weight"),
        (r#"{"edges":[{"source":"a","target":"b"}]}"#, "source"),
    ] {
        let msg = Topology::from_json(text).unwrap_err().to_string();
        assert!(msg.contains(&format!("unknown field `{key}`")), "{msg}");
    }
}

#[test]
fn edge_without_to_is_refused() {
    let msg = Topology::from_json(r#"{"edges":[{"from":"a"}]}"#)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("missing field `to`"), "{msg}");
}

#[test]
fn the_measured_bug_edges_list_is_used() {
    let t = Topology::from_json(
        r#"{"services":[{"name":"frontend","user_facing":true},{"name":"checkout"}],
            "edges":[{"from":"frontend","to":"checkout"}]}"#,
    )
    .unwrap();
    assert_eq!(deps(&t, "frontend"), ["checkout"]);
    assert_eq!(
        t.edges().collect::<Vec<_>>(),
        [(Symbol::new("frontend"), Symbol::new("checkout"))]
    );
}

#[test]
fn edges_alone_add_their_services_and_duplicates_count_once() {
    let t = Topology::from_json(
        r#"{"edges":[{"from":"web","to":"api"},{"from":"api","to":"db"},
                     {"from":"web","to":"api"}]}"#,
    )
    .unwrap();
    assert_eq!(names(&t), ["web", "api", "db"]);
    assert_eq!(deps(&t, "web"), ["api"]);
    assert_eq!(deps(&t, "api"), ["db"]);
    assert!(deps(&t, "db").is_empty());
    assert!(!t.service("db").unwrap().user_facing);
    assert_eq!(t.edges().count(), 2);
}

#[test]
fn depends_on_and_edges_are_merged() {
    let t = Topology::from_json(
        r#"{"services":[
              {"name":"web","depends_on":["api","api"]},
              {"name":"api","depends_on":["db"],"owner":"team-api"}],
            "edges":[{"from":"api","to":"db"},{"from":"api","to":"cache"},
                     {"from":"worker","to":"db"}]}"#,
    )
    .unwrap();
    assert_eq!(deps(&t, "web"), ["api"]);
    assert_eq!(deps(&t, "api"), ["db", "cache"]);
    assert_eq!(deps(&t, "worker"), ["db"]);
    assert_eq!(names(&t), ["web", "api", "db", "cache", "worker"]);
    assert_eq!(t.service("api").unwrap().owner.as_deref(), Some("team-api"));
    assert_eq!(t.edges().count(), 4);
}

#[test]
fn duplicate_and_empty_names_are_refused() {
    let err = Topology::from_json(r#"{"services":[{"name":"a"},{"name":"a"}]}"#).unwrap_err();
    assert!(matches!(err, TopologyError::Duplicate(ref n) if n == "a"));
    let err = Topology::from_json(r#"{"edges":[{"from":"a","to":""}]}"#).unwrap_err();
    assert!(matches!(err, TopologyError::EmptyName(_)), "{err}");
}

#[test]
fn serialized_topology_parses_back_to_itself() {
    let t = Topology::from_json(
        r##"{"services":[
              {"name":"web","tier":"edge","user_facing":true,"owner":"team-web",
               "slack_channel":"#web","depends_on":["api"],
               "slo":{"availability":0.999,"latency_p99_ms":800},"lifecycle":"production",
               "system":"shop"},
              {"name":"api"}]}"##,
    )
    .unwrap();
    let text = serde_json::to_string(&t).unwrap();
    assert!(!text.contains("edges"));
    assert_eq!(Topology::from_json(&text).unwrap(), t);
    // Through serde directly too (`try_from`): edges are merged there as well.
    let via_serde: Topology = serde_json::from_str(r#"{"edges":[{"from":"a","to":"b"}]}"#).unwrap();
    assert_eq!(deps(&via_serde, "a"), ["b"]);
}

#[test]
fn entity_ref_forms_name_the_entity() {
    assert_eq!(ref_name("checkout"), "checkout");
    assert_eq!(ref_name("component:checkout"), "checkout");
    assert_eq!(ref_name("component:default/checkout"), "checkout");
    assert_eq!(ref_name("resource:orders-db"), "orders-db");
    assert_eq!(ref_name("default/checkout"), "checkout");
    assert_eq!(ref_name("group:team-web"), "team-web");
    assert_eq!(ref_name("  user:platform/jdoe "), "jdoe");
}

const CATALOG: &str = r##"
apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: shop
spec:
  owner: team-shop
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: frontend
  description: The web shop
  annotations:
    github.com/project-slug: acme/frontend
    slack.com/channel: "#web-oncall"
  tags: [javascript]
  links:
    - url: https://example.com
spec:
  type: website
  lifecycle: production
  owner: group:default/team-web
  system: system:default/shop
  dependsOn:
    - component:default/checkout
    - component:search
  consumesApis: [catalog-api]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout
  namespace: payments
  annotations:
    kaizen.io/slack-channel: "#checkout"
  tags: [java]
spec:
  type: service
  lifecycle: experimental
  owner: user:jdoe
  system: shop
  dependsOn: [resource:default/orders-db, payments]
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: orders-db
spec:
  type: database
  owner: team-data
  dependencyOf: [component:reporting]
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: catalog-api
spec:
  type: openapi
  lifecycle: production
  owner: team-catalog
  definition: |
    openapi: 3.0.0
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-web
spec:
  type: team
  children: []
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: jdoe
spec:
  memberOf: [team-web]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: catalog
  tags: [user-facing]
spec:
  type: service
  lifecycle: production
  owner: team-catalog
  providesApis: [api:default/catalog-api]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: admin
  tags: [frontend]
  annotations:
    kaizen.io/user-facing: "false"
spec:
  type: website
  lifecycle: production
  owner: team-web
---
"##;

#[test]
fn backstage_multi_document_catalog() {
    let t = Topology::from_backstage_yaml(CATALOG).unwrap();
    // Components and Resources, in file order, then the services only named by edges.
    assert_eq!(
        names(&t),
        [
            "frontend",
            "checkout",
            "orders-db",
            "catalog",
            "admin",
            "search",
            "payments",
            "reporting"
        ]
    );
    let f = t.service("frontend").unwrap();
    assert!(f.user_facing, "spec.type website");
    assert_eq!(f.owner.as_deref(), Some("team-web"));
    assert_eq!(f.lifecycle.as_deref(), Some("production"));
    assert_eq!(f.tier.as_deref(), Some("website"));
    assert_eq!(f.system.as_deref(), Some("shop"));
    assert_eq!(f.slack_channel.as_deref(), Some("#web-oncall"));
    assert_eq!(deps(&t, "frontend"), ["checkout", "search", "catalog"]);

    let c = t.service("checkout").unwrap();
    assert!(!c.user_facing);
    assert_eq!(c.owner.as_deref(), Some("jdoe"));
    assert_eq!(c.lifecycle.as_deref(), Some("experimental"));
    assert_eq!(c.slack_channel.as_deref(), Some("#checkout"));
    assert_eq!(deps(&t, "checkout"), ["orders-db", "payments"]);

    let db = t.service("orders-db").unwrap();
    assert!(!db.user_facing);
    assert_eq!(db.tier.as_deref(), Some("database"));
    assert_eq!(db.owner.as_deref(), Some("team-data"));
    assert_eq!(deps(&t, "reporting"), ["orders-db"], "dependencyOf");

    assert!(t.service("catalog").unwrap().user_facing, "tag user-facing");
    assert!(!t.service("admin").unwrap().user_facing, "annotation wins");
    for skipped in ["shop", "catalog-api", "team-web", "jdoe"] {
        assert!(t.service(skipped).is_none(), "{skipped} is not a service");
    }
}

#[test]
fn backstage_user_facing_annotation_and_tags() {
    let t = Topology::from_backstage_yaml(
        "apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata:\n  name: cdn\n  \
         annotations: {kaizen.io/user-facing: \"true\"}\nspec: {type: cdn}\n---\n\
         apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: app, tags: [frontend]}\n\
         spec: {type: service}\n---\n\
         apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata: {name: bucket, tags: [frontend]}\n",
    )
    .unwrap();
    assert!(t.service("cdn").unwrap().user_facing);
    assert!(t.service("app").unwrap().user_facing);
    assert!(
        !t.service("bucket").unwrap().user_facing,
        "the tag rule is for Components"
    );
    let err = Topology::from_backstage_yaml(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: x\n  \
         annotations: {kaizen.io/user-facing: \"yes\"}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("kaizen.io/user-facing"), "{err}");
}

#[test]
fn backstage_errors_name_the_document() {
    let err = Topology::from_backstage_yaml(
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: g}\n---\n\
         apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {title: nameless}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("document 2 (Component): metadata.name is required"),
        "{err}"
    );

    let err = Topology::from_backstage_yaml("name: frontend\ndepends_on: [x]\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("document 1") && err.contains("apiVersion"),
        "{err}"
    );

    let err = Topology::from_backstage_yaml(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: a}\nspec:\n  dependsOn: b\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("document 1 (Component \"a\"): spec.dependsOn: invalid type"),
        "{err}"
    );

    let err = Topology::from_backstage_yaml("a: [unclosed\n").unwrap_err();
    assert!(matches!(err, TopologyError::Yaml(_)), "{err}");
}

#[test]
fn backstage_file_without_entities_is_refused() {
    let err = Topology::from_backstage_yaml(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n",
    )
    .unwrap_err();
    assert!(matches!(err, TopologyError::NoEntities), "{err}");
    assert!(matches!(
        Topology::from_backstage_yaml(""),
        Err(TopologyError::NoEntities)
    ));
    // Only skipped kinds is a valid, empty estate.
    let t = Topology::from_backstage_yaml(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: l}\nspec:\n  targets: [./a.yaml]\n",
    )
    .unwrap();
    assert!(t.services.is_empty());
}

#[test]
fn backstage_duplicate_entity_is_refused() {
    let err = Topology::from_backstage_yaml(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: a}\n---\n\
         apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata: {name: a}\n",
    )
    .unwrap_err();
    assert!(matches!(err, TopologyError::Duplicate(ref n) if n == "a"));
}

#[test]
fn merge_combines_compatible_descriptions() {
    let a = Topology::from_backstage_yaml(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: web}\n\
         spec: {owner: team-web, dependsOn: [resource:db]}\n",
    )
    .unwrap();
    let b = Topology::from_json(
        r##"{"services":[{"name":"db","owner":"team-data","slack_channel":"#data"},
                         {"name":"web","depends_on":["api"]}]}"##,
    )
    .unwrap();
    let t = a.merge(b).unwrap();
    assert_eq!(names(&t), ["web", "db", "api"]);
    assert_eq!(deps(&t, "web"), ["db", "api"]);
    assert_eq!(t.service("db").unwrap().owner.as_deref(), Some("team-data"));

    let c = Topology::from_json(r#"{"services":[{"name":"db","owner":"someone-else"}]}"#).unwrap();
    let err = t.merge(c).unwrap_err();
    assert!(
        matches!(err, TopologyError::Conflict { ref service, field: "owner" } if service == "db"),
        "{err}"
    );
}
