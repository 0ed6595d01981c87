//! Regressions found while writing the default rule pack (`queries/default`): a quiet rule
//! with KEEP FIRING FOR must terminate, aggregates honour WHERE terms on measured columns,
//! FLOOR/CEIL check, and resolved insights still name their rule. And found while writing
//! `errors.rs`: qualified labels, `'500ms'`, `IS TRUE` of NULL, SUBSTR / TRIM, and intervals
//! long enough to overflow event time.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

mod common;

use common::{ev, rules, T0};
use kaizen_model::{Event, SignalState};
use kaizen_rules::{run, RuleOutput, RuleSet};

fn transitions(out: &[RuleOutput]) -> Vec<String> {
    out.iter()
        .map(|o| match o {
            RuleOutput::Signal(s, _) => format!(
                "{} {}@{}",
                if s.state == SignalState::Open {
                    "open"
                } else {
                    "close"
                },
                s.name.as_str(),
                (s.ts.as_millis() - T0) / 1000
            ),
            RuleOutput::Insight(i) => format!(
                "insight v{} {}@{}",
                i.version,
                i.explain.first().map_or("", |e| e.rule.as_str()),
                (i.updated_at.as_millis() - T0) / 1000
            ),
        })
        .collect()
}

/// Runs on a thread: `None` if it has not finished after 10 s (it spins forever).
fn run_with_timeout(set: Arc<RuleSet>, events: Vec<Event>) -> Option<Vec<String>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(transitions(&run(set, &events, 3_600_000)));
    });
    rx.recv_timeout(Duration::from_secs(10)).ok()
}

/// A row-by-row rule (filter, sequence or session) with KEEP FIRING FOR that goes quiet while
/// firing never returns: after the quiet period `on_time` calls `miss(last_hit + QUIET_MS)`,
/// which starts keep-firing but does not close, and `next_due` schedules `last_hit + QUIET_MS`
/// again — a timer in the past — so `fire_due` pops and re-inserts it forever.
/// Expected: open at 10 s, keep-firing from 310 s (10 s + 5 min quiet), close at 430 s.
#[test]
fn keep_firing_on_a_quiet_filter_rule_terminates() {
    let set = rules(
        "CREATE RULE oom AS SELECT service FROM logs WHERE message LIKE '%OOMKilled%' KEEP FIRING FOR INTERVAL '2' MINUTE;",
    );
    let events = vec![ev(
        10,
        r#""kind":"log","service":"api","level":"error","message":"OOMKilled""#,
    )];
    let out = run_with_timeout(set, events).expect("the evaluator hangs");
    assert_eq!(out, ["open oom@10", "close oom@430"]);
}

/// The same with a metric filter rule whose miss sample comes a minute after the last hit:
/// keep-firing (10 min) outlasts the quiet period (5 min after the last hit), so the quiet
/// timer lands in the past and loops. Expected: open at 300 s, close at 660 + 600 = 1260 s.
#[test]
fn keep_firing_longer_than_the_quiet_period_terminates() {
    let set = rules(
        "CREATE RULE disk AS SELECT service FROM metrics WHERE name = 'disk_used_ratio' AND value > 0.9 FOR INTERVAL '5' MINUTE KEEP FIRING FOR INTERVAL '10' MINUTE;",
    );
    let mut events = Vec::new();
    for i in 0..40u64 {
        let v = if i <= 10 { 0.95 } else { 0.5 };
        events.push(ev(
            i * 60,
            &format!(r#""kind":"metric","service":"db","name":"disk_used_ratio","value":{v}"#),
        ));
    }
    let out = run_with_timeout(set, events).expect("the evaluator hangs");
    assert_eq!(out, ["open disk@300", "close disk@1260"]);
}

/// In an aggregating rule the WHERE terms on `value` / `duration_ms` / `strength` are split off
/// as the filter-rule "condition" and then never evaluated (`filter::test` ignores
/// `rule.condition` for `Shape::Aggregate`), so every row of the selected series is counted.
/// Here no span is slower than 1 s, yet the rule fires. Expected: nothing.
#[test]
fn aggregate_rules_apply_where_terms_on_measured_columns() {
    let set = rules(
        "CREATE RULE slow_calls AS SELECT service, count(*) AS n FROM spans WHERE duration_ms > 1000 GROUP BY service, TUMBLE(ts, INTERVAL '1' MINUTE) HAVING count(*) >= 10;",
    );
    let events: Vec<Event> = (0..30u64)
        .map(|s| {
            ev(
                s,
                r#""kind":"span","service":"api","peer":"db","operation":"q","duration_ms":20"#,
            )
        })
        .collect();
    let out = run_with_timeout(set, events).expect("finishes");
    assert!(out.is_empty(), "{out:?}");
}

/// `floor` and `ceil` are in the scalar list, but sqlparser parses `FLOOR(x)` / `CEIL(x)` as
/// `Expr::Floor` / `Expr::Ceil`, not as function calls, so the checker rejects them:
/// "`FLOOR(value)` is not supported in rules".
#[test]
fn floor_and_ceil_are_accepted() {
    let (_, errors) = RuleSet::from_text(
        "gap.sql",
        "CREATE RULE f SUMMARY '{{d}} {{u}}' AS SELECT service, floor(value) AS d, ceil(value) AS u FROM metrics WHERE name = 'x';",
    );
    assert!(
        errors.is_empty(),
        "{}",
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The fixture runner (and anything else reading `Insight::explain`) names an insight's rule
/// from its explanation, but only the opening version carries one: the resolved version of an
/// `EMIT INSIGHT` rule has `explain: []`, so fixtures must expect `"rule": ""` for its close.
#[test]
fn resolved_insight_names_its_rule() {
    let set = rules(
        "CREATE RULE cert EMIT INSIGHT AS SELECT service FROM metrics WHERE name = 'ssl_cert_expiry_days' AND value < 7;",
    );
    let events = vec![
        ev(
            10,
            r#""kind":"metric","service":"edge","name":"ssl_cert_expiry_days","value":5"#,
        ),
        ev(
            20,
            r#""kind":"metric","service":"edge","name":"ssl_cert_expiry_days","value":90"#,
        ),
    ];
    let out = run_with_timeout(set, events).expect("finishes");
    assert_eq!(out, ["insight v1 cert@10", "insight v2 cert@20"]);
}

/// Found while writing `errors.rs`: sqlparser reads `l.labels['pod']` as `l` followed by
/// `.labels['pod']`, which the checker did not expect, so a qualified label failed with
/// "`l` is not a label map of `logs`" in any rule, and no join could read a label at all.
#[test]
fn qualified_labels_are_read_in_filters_and_joins() {
    let set = rules(
        "CREATE RULE pods SUMMARY '{{pod}}' AS SELECT service, l.labels['pod'] AS pod FROM logs l WHERE l.labels['pod'] LIKE 'api-%';
         CREATE RULE paged SUMMARY '{{team}} {{pod}}' AS SELECT a.service, a.labels['team'] AS team, l.labels['pod'] AS pod
           FROM alerts a JOIN logs l ON l.service = a.service AND l.ts BETWEEN a.ts - INTERVAL '1' MINUTE AND a.ts;",
    );
    let events = [
        ev(
            10,
            r#""kind":"log","service":"api","level":"error","message":"x","attributes":{"pod":"api-7"}"#,
        ),
        ev(
            20,
            r#""kind":"alert","service":"api","name":"Down","severity":"critical","labels":{"team":"core"}"#,
        ),
    ];
    let summaries: Vec<String> = run(set, &events, 60_000)
        .iter()
        .filter_map(|o| match o {
            RuleOutput::Signal(s, _) if s.state == SignalState::Open => Some(s.summary.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(summaries, ["api-7", "core api-7"]);
}

/// Found while writing `errors.rs`: `'500ms'` was 500 minutes (the unit lost its trailing `s`
/// before being looked up), and `x IS TRUE` was NULL, not false, when `x` is NULL, so
/// `NOT (x IS TRUE)` never held for a missing label.
#[test]
fn milliseconds_and_is_true_of_null() {
    let set = rules(
        "CREATE RULE quick AS SELECT service FROM logs WHERE (labels['pod'] = 'x') IS NOT TRUE FOR '500ms';",
    );
    assert_eq!(set.rules()[0].for_ms, 500);
    let events = [
        ev(
            10,
            r#""kind":"log","service":"api","level":"error","message":"a""#,
        ),
        ev(
            11,
            r#""kind":"log","service":"api","level":"error","message":"b""#,
        ),
    ];
    assert_eq!(
        transitions(&run(set, &events, 600_000)),
        ["open quick@11", "close quick@311"]
    );
}

/// Found while writing `errors.rs`: sqlparser gives SUBSTRING / SUBSTR and TRIM their own
/// nodes, so the documented `substr` and `trim` were rejected as "not supported in rules".
#[test]
fn substr_and_trim_evaluate() {
    let set = rules(
        "CREATE RULE cut SUMMARY '{{a}}|{{b}}|{{c}}' AS SELECT service, substr(message, 2, 3) AS a, substring(message FROM 5) AS b, trim(message) AS c FROM logs;",
    );
    let events = [ev(
        10,
        r#""kind":"log","service":"api","level":"error","message":" abcdef ""#,
    )];
    let out = run(set, &events, 60_000);
    let RuleOutput::Signal(s, _) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(s.summary.to_string(), "abc|def |abcdef");
}

/// Found while writing `errors.rs`: intervals had no upper bound, so `KEEP FIRING FOR` or a
/// window of 10^20 hours overflowed event-time arithmetic (a panic in debug builds, wrong
/// times in release); a join bound of `a.ts + 1e300` did the same. Now intervals are at most
/// 365 days, and rules at that limit run.
#[test]
fn intervals_at_the_limit_run() {
    let set = rules(
        "CREATE RULE a AS SELECT service FROM logs FOR '365d' KEEP FIRING FOR '365d';
         CREATE RULE b AS SELECT service FROM logs KEEP FIRING FOR '365d';
         CREATE RULE c AS SELECT service, count(*) AS n FROM logs GROUP BY service, SESSION(ts, INTERVAL '365' DAY) KEEP FIRING FOR '365d';
         CREATE RULE d AS SELECT a.name FROM alerts a JOIN logs l ON l.ts BETWEEN a.ts - INTERVAL '365' DAY AND a.ts + INTERVAL '365' DAY;
         CREATE RULE e AS SELECT * FROM events MATCH_RECOGNIZE (PARTITION BY service ORDER BY ts MEASURES COUNT(A.*) AS n PATTERN (A B{0,4294967295}) WITHIN '365d' DEFINE A AS A.kind = 'log') KEEP FIRING FOR '365d';",
    );
    let events = [
        ev(
            10,
            r#""kind":"log","service":"api","level":"error","message":"x""#,
        ),
        ev(
            20,
            r#""kind":"alert","service":"api","name":"Down","severity":"critical""#,
        ),
    ];
    let out = run_with_timeout(set, events.to_vec()).expect("finishes");
    assert!(out.iter().any(|t| t.starts_with("open b@")), "{out:?}");
}

/// Sessions grouped by service are combined in stage one (one row per finished session) like
/// tumbling and sliding panes. A session closed by a later row, by time, or left open at the
/// end of input must fire, resolve and explain itself exactly as when its rows travel one by
/// one (the same rule keyed by `service || ''` is not combined).
#[test]
fn sessions_combined_in_stage_one_behave_as_rows_one_by_one() {
    let rule = |name: &str, key: &str| {
        format!(
            "CREATE RULE {name} AS SELECT {key} AS s, count(*) AS n, avg(value) AS v, stddev(value) AS sd, p95(value) AS p, rate(value) AS r, first(value) AS f, last(value) AS l FROM metrics WHERE name = 'm' AND value >= 0 GROUP BY {key}, SESSION(ts, INTERVAL '30' SECOND) HAVING count(*) >= 3 KEEP FIRING FOR INTERVAL '1' MINUTE;"
        )
    };
    let set = rules(&(rule("combined", "service") + &rule("alone", "service || ''")));
    let mut events = Vec::new();
    // Bursts 10 s apart within, 40-200 s apart between; negative values are filtered out.
    let mut t = 0;
    for (burst, gap) in [(4, 40), (2, 45), (5, 200), (3, 31), (1, 30), (6, 0)] {
        for i in 0..burst {
            for (service, value) in [("api", 1.0 + i as f64), ("db", -1.0), ("web", 2.0)] {
                events.push(ev(
                    t,
                    &format!(
                        r#""kind":"metric","service":"{service}","name":"m","value":{value},"labels":{{"instance":"{service}-0"}}"#
                    ),
                ));
            }
            t += 10;
        }
        t += gap;
    }
    let out = run(set, &events, 20_000);
    let seen = |rule: &str| -> Vec<String> {
        out.iter()
            .filter_map(|o| match o {
                RuleOutput::Signal(s, why) if s.name.as_str() == rule => Some(format!(
                    "{} {} {:?} {:?} {} {:?}",
                    s.ts.as_millis() - T0,
                    s.onset.as_millis() - T0,
                    s.state,
                    s.value,
                    s.summary.replace(rule, ""),
                    why.as_ref()
                        .map(|w| (&w.window, &w.values, &w.events, w.event_count))
                )),
                _ => None,
            })
            .collect()
    };
    let combined = seen("combined");
    assert!(combined.len() >= 4, "{combined:?}");
    assert_eq!(combined, seen("alone"));
}
