//! Which rules stage one tests an event against, found without evaluating them, and what of
//! their `WHERE` is left to test once the event's kind and `name` / `level` are known.

use std::collections::HashMap;

use kaizen_model::{Event, EventBody, EventKind};

use crate::expr::{BinOp, Expr};
use crate::plan::{Rule, Shape};
use crate::ruleset::{kind_slot, RuleSet, SELECTABLE_KINDS};
use crate::schema::Column;

/// Which rules can select an event, found without evaluating them: per event kind, the rules
/// that read it and do not rule the kind out (`WHERE kind = ...`, or every `DEFINE` of a
/// sequence); for metrics and logs, further by the one value of `name` / `level` their
/// `WHERE` requires. A rule left out is one whose `WHERE` (or every `DEFINE`) is false for
/// the event, so testing it would do nothing. Rules keep their order.
#[derive(Default)]
pub(crate) struct Dispatch {
    /// Per [`kind_slot`]: the rules, and by the text of the kind's dispatch column.
    kinds: [KindDispatch; 5],
    /// What is left of rules' `WHERE` once dispatch settled part of it (see [`Target`]).
    residuals: Vec<Option<Expr>>,
}

#[derive(Default)]
struct KindDispatch {
    /// Rules that require no particular value of the column.
    any: Vec<Target>,
    /// For each value some rule requires: the rules that can select it, in order.
    by_value: HashMap<Box<str>, Vec<Target>>,
}

/// A rule to test an event against, and what of its `WHERE` is left to test.
#[derive(Clone, Copy)]
pub(crate) struct Target {
    /// Index of the rule in the set.
    pub(crate) rule: usize,
    /// Whether the event's value of the dispatch column already settled part of the `WHERE`:
    /// then `Some(i)`, and `Dispatch::residuals[i]` is the rest (`None`: nothing is left).
    residual: Option<usize>,
}

/// Dispatch found the rules whose `WHERE` requires the event's value of the dispatch column;
/// the terms of their `WHERE` that say only that (`name = 'x'`, `level IN (...)`) are true for
/// every event they are tested against, so they need not be evaluated again.
fn residual(filter: &Expr, column: Column) -> Option<Option<Expr>> {
    let terms = filter.clone().conjuncts();
    let n = terms.len();
    let rest: Vec<Expr> = terms
        .into_iter()
        .filter(|t| exactly(t, column).is_none())
        .collect();
    (rest.len() < n).then(|| Expr::conjunction(rest))
}

/// The values of `column` for which `e` is true, when `e` says nothing but that `column` is one
/// of them (`c = 'x'`, `c IN ('x', 'y')`, and AND / OR of such): `e` is then true exactly when
/// the column's text is in the list (never NULL: the column is text every event has).
fn exactly(e: &Expr, column: Column) -> Option<Vec<&str>> {
    match e {
        Expr::Bin(BinOp::And, a, b) => {
            let y = exactly(b, column)?;
            Some(
                exactly(a, column)?
                    .into_iter()
                    .filter(|v| y.contains(v))
                    .collect(),
            )
        }
        Expr::Bin(BinOp::Or, a, b) => {
            let mut x = exactly(a, column)?;
            x.extend(exactly(b, column)?);
            Some(x)
        }
        Expr::Bin(BinOp::Eq, _, _) | Expr::InList(_, _, false) => required(e, column),
        _ => None,
    }
}

/// The column metrics and logs are dispatched on.
fn dispatch_column(kind: EventKind) -> Option<Column> {
    match kind {
        EventKind::Metric => Some(Column::Name),
        EventKind::Log => Some(Column::Level),
        _ => None,
    }
}

/// The values of `column` under which `e` can be true, when `e` restricts it to a list of
/// text literals (`c = 'x'`, `c IN ('x', 'y')`, and AND / OR of such); `None` when it does
/// not (or not in a way read here). For text columns every event has, compared as text.
fn required<'e>(e: &'e Expr, column: Column) -> Option<Vec<&'e str>> {
    let lit = |x: &'e Expr| match x {
        Expr::Lit(v) => v.as_str(),
        _ => None,
    };
    match e {
        Expr::Bin(BinOp::And, a, b) => match (required(a, column), required(b, column)) {
            (Some(x), Some(y)) => Some(x.into_iter().filter(|v| y.contains(v)).collect()),
            (x, None) => x,
            (None, y) => y,
        },
        Expr::Bin(BinOp::Or, a, b) => {
            let mut x = required(a, column)?;
            x.extend(required(b, column)?);
            Some(x)
        }
        Expr::Bin(BinOp::Eq, a, b) => match (&**a, &**b) {
            (Expr::Col(c), v) | (v, Expr::Col(c)) if *c == column => lit(v).map(|v| vec![v]),
            _ => None,
        },
        Expr::InList(x, list, false) if matches!(&**x, Expr::Col(c) if *c == column) => {
            list.iter().map(lit).collect()
        }
        _ => None,
    }
}

/// Can `rule` select an event of `kind`? `false` only when its WHERE, or every DEFINE of a
/// sequence, requires another kind.
fn kind_possible(rule: &Rule, kind: EventKind) -> bool {
    if rule.join.is_some() {
        return true;
    }
    let allows = |e: &Expr| required(e, Column::Kind).is_none_or(|k| k.contains(&kind.as_str()));
    if !rule.filter.as_ref().is_none_or(allows) {
        return false;
    }
    match &rule.shape {
        Shape::Sequence(plan) => plan.defines.iter().any(|d| d.as_ref().is_none_or(allows)),
        _ => true,
    }
}

impl Dispatch {
    pub(crate) fn new(rules: &RuleSet) -> Dispatch {
        let mut d = Dispatch::default();
        for kind in SELECTABLE_KINDS {
            let Some(k) = kind_slot(kind) else {
                continue;
            };
            let candidates: Vec<(usize, Option<Vec<&str>>)> = rules
                .for_kind(kind)
                .iter()
                .map(|&i| (i, &rules.rules()[i]))
                .filter(|(_, r)| kind_possible(r, kind))
                .map(|(i, r)| {
                    let values = match (dispatch_column(kind), &r.filter, &r.join) {
                        (Some(c), Some(f), None) => required(f, c),
                        _ => None,
                    };
                    (i, values)
                })
                .collect();
            // A rule listed under some values is only ever tested against events with one of
            // them, so the terms of its WHERE that require that much hold for all it sees.
            let targets: Vec<Target> = candidates
                .iter()
                .map(|(i, values)| {
                    let rest = match (values, dispatch_column(kind), &rules.rules()[*i].filter) {
                        (Some(_), Some(c), Some(f)) => residual(f, c),
                        _ => None,
                    };
                    Target {
                        rule: *i,
                        residual: rest.map(|r| {
                            d.residuals.push(r);
                            d.residuals.len() - 1
                        }),
                    }
                })
                .collect();
            let slot = &mut d.kinds[k];
            for ((_, values), t) in candidates.iter().zip(&targets) {
                match values {
                    None => slot.any.push(*t),
                    Some(vs) => {
                        for v in vs {
                            slot.by_value.entry((*v).into()).or_default();
                        }
                    }
                }
            }
            for (value, list) in slot.by_value.iter_mut() {
                *list = candidates
                    .iter()
                    .zip(&targets)
                    .filter(|((_, vs), _)| vs.as_ref().is_none_or(|vs| vs.contains(&&**value)))
                    .map(|(_, t)| *t)
                    .collect();
            }
        }
        d
    }

    /// The rule's `WHERE` as far as it is left to test for `t`.
    pub(crate) fn filter<'r>(&'r self, t: Target, rule: &'r Rule) -> Option<&'r Expr> {
        match t.residual {
            Some(i) => self.residuals.get(i).and_then(Option::as_ref),
            None => rule.filter.as_ref(),
        }
    }

    /// The rules to test `event` against, in order.
    pub(crate) fn targets(&self, event: &Event) -> &[Target] {
        let Some(slot) = kind_slot(event.kind()).map(|k| &self.kinds[k]) else {
            return &[];
        };
        if slot.by_value.is_empty() {
            return &slot.any;
        }
        let value = match &event.body {
            EventBody::Metric(m) => m.name.as_str(),
            EventBody::Log(l) => l.level.as_str(),
            _ => return &slot.any,
        };
        slot.by_value.get(value).unwrap_or(&slot.any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(line: &str) -> Event {
        Event::from_json(line).unwrap()
    }

    #[test]
    fn dispatch_leaves_out_only_rules_whose_where_cannot_hold() {
        let (set, errors) = RuleSet::from_text(
            "t.sql",
            "CREATE RULE a AS SELECT service FROM metrics WHERE name = 'cpu' AND value > 1;
             CREATE RULE b AS SELECT service FROM metrics WHERE name IN ('cpu', 'mem') OR (name = 'disk' AND value > 2);
             CREATE RULE c AS SELECT service FROM metrics WHERE value > 1;
             CREATE RULE d AS SELECT service FROM metrics WHERE 'mem' = name;
             CREATE RULE e AS SELECT service FROM metrics WHERE name = 'cpu' OR value > 1;
             CREATE RULE f AS SELECT * FROM events MATCH_RECOGNIZE (PARTITION BY service ORDER BY ts MEASURES COUNT(A.*) AS n PATTERN (A B) DEFINE A AS A.kind = 'change', B AS B.kind = 'log' AND B.level = 'error');
             CREATE RULE g AS SELECT * FROM events MATCH_RECOGNIZE (PARTITION BY service ORDER BY ts MEASURES COUNT(A.*) AS n PATTERN (A B) DEFINE A AS A.kind = 'change');
             CREATE RULE h AS SELECT service FROM logs WHERE level IN ('error', 'fatal');
             CREATE RULE i AS SELECT service FROM events WHERE kind = 'metric' AND name = 'mem';
             CREATE RULE j AS SELECT service FROM metrics WHERE name IN ('cpu') OR name = 'disk';",
        );
        assert!(errors.is_empty(), "{errors:?}");
        let d = Dispatch::new(&set);
        let names = |e: &Event| -> Vec<&str> {
            d.targets(e)
                .iter()
                .map(|t| set.rules()[t.rule].name.as_str())
                .collect()
        };
        let metric = |name: &str| {
            event(&format!(
                r#"{{"ts":"2026-01-05T00:00:00.000Z","kind":"metric","service":"a","name":"{name}","value":1}}"#
            ))
        };
        // b and e test the value in their OR: a condition, not a filter, so they stay.
        assert_eq!(names(&metric("cpu")), ["a", "b", "c", "e", "g", "j"]);
        assert_eq!(names(&metric("mem")), ["b", "c", "d", "e", "g", "i"]);
        assert_eq!(names(&metric("disk")), ["b", "c", "e", "g", "j"]);
        assert_eq!(names(&metric("other")), ["b", "c", "e", "g"]);
        let log = |level: &str| {
            event(&format!(
                r#"{{"ts":"2026-01-05T00:00:00.000Z","kind":"log","service":"a","level":"{level}","message":"x"}}"#
            ))
        };
        assert_eq!(names(&log("error")), ["f", "g", "h"]);
        assert_eq!(names(&log("info")), ["f", "g"]);
        let change = event(
            r#"{"ts":"2026-01-05T00:00:00.000Z","kind":"change","service":"a","change_kind":"deploy"}"#,
        );
        assert_eq!(names(&change), ["f", "g"]);
    }

    #[test]
    fn dispatch_leaves_out_only_the_where_terms_it_settled() {
        let (set, errors) = RuleSet::from_text(
            "t.sql",
            "CREATE RULE a AS SELECT service FROM metrics WHERE name = 'cpu' AND value > 1;
             CREATE RULE b AS SELECT service FROM metrics WHERE name IN ('cpu', 'mem') OR (name = 'disk' AND value > 2);
             CREATE RULE c AS SELECT service FROM metrics WHERE name = 'cpu';
             CREATE RULE d AS SELECT service FROM metrics WHERE (name = 'cpu' OR name = 'mem') AND labels['x'] = 'y' AND name <> 'mem';
             CREATE RULE e AS SELECT service FROM metrics WHERE value > 1;
             CREATE RULE f AS SELECT service FROM metrics WHERE name = 'cpu' OR labels['x'] = 'y';",
        );
        assert!(errors.is_empty(), "{errors:?}");
        let d = Dispatch::new(&set);
        let cpu = event(
            r#"{"ts":"2026-01-05T00:00:00.000Z","kind":"metric","service":"a","name":"cpu","value":1}"#,
        );
        let left: Vec<(String, Option<String>)> = d
            .targets(&cpu)
            .iter()
            .map(|&t| {
                let rule = &set.rules()[t.rule];
                (
                    rule.name.clone(),
                    d.filter(t, rule).map(|f| format!("{f:?}")),
                )
            })
            .collect();
        let by = |n: &str| {
            left.iter()
                .find(|(r, _)| r == n)
                .and_then(|(_, f)| f.clone())
        };
        // a: `value > 1` is the condition (not in the filter), so nothing is left to test.
        assert_eq!(by("a"), None);
        // b: its OR tests the value, so all of it is the condition: no filter to shorten.
        assert_eq!(by("b"), None);
        assert!(set.rules()[1].filter.is_none() && set.rules()[1].condition.is_some());
        assert_eq!(by("c"), None);
        // d: the name terms went, the label and `<>` terms stay.
        let f = by("d").unwrap_or_default();
        assert!(
            f.contains("Label") && f.contains("NotEq") && !f.contains("Or"),
            "{f}"
        );
        assert!(left.iter().any(|(r, _)| r == "e"));
        // f: not dispatched on the name, so its whole WHERE is tested.
        assert!(by("f").is_some_and(|f| f.contains("Or")), "{left:?}");
    }
}
