//! The users' dialect: deterministic, decodable, in the ecosystem's names and not kaizen's,
//! out of order within the lateness, and with a catalog kaizen reads.

use std::collections::BTreeSet;
use std::time::Duration;

use kaizen_model::{EventBody, Topology};

use super::{run, speaker, Speaker, Translator};
use crate::estate::Estate;
use crate::plan::plan;
use crate::{
    catalog_info, engine_topology, ground_truth, topology, write_events, Dialect, FaultKind,
    ScenarioConfig, METRIC_NAMES,
};

fn otel(seed: u64, minutes: u64, faults: usize) -> ScenarioConfig {
    ScenarioConfig {
        seed,
        faults,
        recurrences: 0,
        dialect: Dialect::Otel,
        ..ScenarioConfig::default().with_duration(Duration::from_secs(minutes * 60))
    }
}

fn bytes(config: &ScenarioConfig) -> Vec<u8> {
    let mut out = Vec::new();
    let written = write_events(config, &mut out);
    assert!(written.is_ok_and(|n| n > 0));
    out
}

#[test]
fn same_seed_same_bytes_and_every_line_is_a_native_event() {
    let a = bytes(&otel(1, 40, 1));
    assert!(a == bytes(&otel(1, 40, 1)), "same seed, different output");
    assert!(a != bytes(&otel(2, 40, 1)), "different seeds, same output");
    let kaizen = ScenarioConfig {
        dialect: Dialect::Kaizen,
        ..otel(1, 40, 1)
    };
    assert!(a != bytes(&kaizen));
    let text = String::from_utf8(a).unwrap();
    for line in text.lines() {
        let e = kaizen_model::Event::from_json(line).unwrap_or_else(|err| panic!("{err}: {line}"));
        assert_eq!(e.to_json(), line);
    }
}

#[test]
fn speaks_the_ecosystems_names_and_none_of_kaizens() {
    // Every fault kind once, few logs (fast).
    let config = ScenarioConfig {
        log_rate: 0.05,
        span_rate: 0.05,
        ..otel(2, 10 * 60, 7)
    };
    let mut names = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    let mut services = BTreeSet::new();
    let mut change_kinds = BTreeSet::new();
    let got = run(&config, &mut |e| {
        kinds.insert(e.kind());
        services.insert(e.service.to_string());
        match &e.body {
            EventBody::Metric(m) => {
                names.insert(m.name.to_string());
            }
            EventBody::Change(c) => {
                change_kinds.insert(c.change_kind.to_string());
            }
            _ => {}
        }
        true
    });
    assert_eq!(got.rejected, 0, "a codec rejected a message");
    for kaizen in METRIC_NAMES.iter().chain(&["container_restarts"]) {
        assert!(!names.contains(*kaizen), "kaizen's own name {kaizen}");
    }
    for theirs in [
        "http.server.request.duration_bucket",
        "http.server.request.duration_count",
        "job_duration_seconds_bucket",
        "system.cpu.utilization",
        "system.memory.utilization",
        "k8s.container.restarts",
        "redis.commands.processed",
        "rabbitmq.message.published",
        "db.client.connection.count",
        "target_info",
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "pg_stat_activity_count",
        "kube_pod_container_status_restarts_total",
        "auth_build_info",
    ] {
        assert!(names.contains(theirs), "no {theirs} in {names:?}");
    }
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    assert!(!kinds.contains(&"alert"), "an alert fired: {kinds:?}");
    assert!(kinds.contains(&"span") && kinds.contains(&"log"));
    assert!(
        !change_kinds.contains("deploy") && !change_kinds.contains("rollback"),
        "{change_kinds:?}"
    );
    // kube-state-metrics' series arrive under its own job, as Prometheus labels them.
    assert!(services.contains("kube-state-metrics"));
}

#[test]
fn out_of_order_within_the_default_lateness_on_skewed_clocks() {
    let config = otel(3, 90, 1);
    let got = run(&config, &mut |_| true);
    assert!(
        (5_000..30_000).contains(&got.max_disorder_ms),
        "disorder {} ms",
        got.max_disorder_ms
    );
    let p = plan(&config);
    let t = Translator::new(&config, &p);
    assert!(t.skews.iter().all(|s| s.unsigned_abs() <= 20_000));
    let distinct: BTreeSet<i64> = t.skews.iter().copied().collect();
    assert!(distinct.len() >= 3, "{:?}", t.skews);
    assert!(t.skews.iter().any(|s| s.unsigned_abs() >= 5_000));
}

#[test]
fn half_the_core_speaks_opentelemetry() {
    let estate = Estate::build(12);
    let otel = (0..12)
        .filter(|&i| speaker(&estate, i) == Speaker::Otel)
        .count();
    assert_eq!(otel, 6);
    let of = |name: &str| estate.index(name).map(|i| speaker(&estate, i));
    // The usual origins are on both sides.
    assert_ne!(of("payments"), of("auth"));
    assert_ne!(of("catalog"), of("cart"));
}

#[test]
fn the_backstage_catalog_parses_into_the_estate() {
    for services in [1, 2, 5, 12, 13, 40] {
        let config = ScenarioConfig {
            services,
            ..otel(1, 60, 1)
        };
        let text = catalog_info(&config);
        let parsed = Topology::from_backstage_yaml(&text).unwrap_or_else(|e| panic!("{e}"));
        let truth = topology(&config);
        let names = |t: &Topology| -> Vec<String> {
            let mut v: Vec<String> = t.services.iter().map(|s| s.name.to_string()).collect();
            v.sort();
            v
        };
        assert_eq!(names(&parsed), names(&truth));
        let edges = |t: &Topology| -> BTreeSet<(String, String)> {
            t.edges()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(edges(&parsed), edges(&truth), "{services} services");
        for s in &truth.services {
            let p = parsed.service(s.name.as_str()).unwrap();
            assert_eq!(p.owner, s.owner);
            assert_eq!(p.lifecycle.as_deref(), Some("production"));
            assert_eq!(p.system.as_deref(), Some("shop"));
        }
        assert_eq!(engine_topology(&config).unwrap(), parsed);
    }
    assert!(catalog_info(&otel(1, 60, 1)).contains("kind: System"));
}

#[test]
fn deploys_show_only_as_new_versions() {
    let config = (0..50)
        .map(|seed| ScenarioConfig {
            log_rate: 0.0,
            span_rate: 0.0,
            ..otel(
                seed,
                3 * 60,
                ScenarioConfig::default_faults(Duration::from_secs(3 * 3600)),
            )
        })
        .find(|c| {
            ground_truth(c)
                .faults
                .iter()
                .any(|f| f.kind == FaultKind::BadDeploy)
        })
        .unwrap();
    let truth = ground_truth(&config);
    let mut versions: Vec<(u64, String, String)> = Vec::new();
    run(&config, &mut |e| {
        if let EventBody::Metric(m) = &e.body {
            let version = match m.name.as_str() {
                "target_info" => m.labels.get("service.version"),
                n if n.ends_with("_build_info") => m.labels.get("version"),
                _ => None,
            };
            if let Some(v) = version {
                versions.push((e.ts.as_millis(), e.service.to_string(), v.to_string()));
            }
        }
        assert!(!matches!(&e.body, EventBody::Change(c) if c.change_kind.as_str() == "deploy"));
        true
    });
    for f in truth
        .faults
        .iter()
        .filter(|f| f.kind == FaultKind::BadDeploy)
    {
        let before: BTreeSet<&str> = versions
            .iter()
            .filter(|(ts, s, _)| s == f.origin.as_str() && *ts + 30_000 < f.start.as_millis())
            .map(|(_, _, v)| v.as_str())
            .collect();
        let during: BTreeSet<&str> = versions
            .iter()
            .filter(|(ts, s, _)| {
                s == f.origin.as_str()
                    && *ts > f.start.as_millis() + 30_000
                    && *ts < f.end.as_millis()
            })
            .map(|(_, _, v)| v.as_str())
            .collect();
        assert!(!during.is_empty() && during.is_disjoint(&before), "{f:?}");
    }
}

#[test]
fn ground_truth_is_the_same_plan_without_warnings() {
    let kaizen = ScenarioConfig::default().with_duration(Duration::from_secs(24 * 3600));
    let otel = ScenarioConfig {
        dialect: Dialect::Otel,
        ..kaizen.clone()
    };
    let (a, b) = (ground_truth(&kaizen), ground_truth(&otel));
    assert_eq!(a.faults.len(), b.faults.len());
    for (x, y) in a.faults.iter().zip(&b.faults) {
        assert_eq!(y.observable_from, y.start);
        let mut x = x.clone();
        x.observable_from = x.start;
        assert_eq!(&x, y);
    }
}

#[test]
fn several_instances_and_odd_estates_decode_cleanly() {
    for (services, instances) in [(1, 1), (2, 3), (14, 2), (30, 1)] {
        let config = ScenarioConfig {
            services,
            instances,
            ..otel(4, 30, 1)
        };
        let mut seen = BTreeSet::new();
        let got = run(&config, &mut |e| {
            seen.insert(e.service.to_string());
            true
        });
        assert_eq!(got.rejected, 0);
        assert!(got.stats.events > 1_000);
        let estate = Estate::build(services);
        for s in &estate.services {
            assert!(seen.contains(s.name.as_str()), "{} silent", s.name);
        }
    }
}
