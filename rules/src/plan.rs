//! Checked rules: a [`RuleStatement`] becomes a [`Rule`] whose expressions are typed, whose
//! names are resolved, and whose shape (filter, windowed aggregate, sequence) is known.

use std::path::PathBuf;

use sqlparser::ast::{self, GroupByExpr, SelectItem, SetExpr, Spanned, TableFactor};
use sqlparser::tokenizer::Span;

use kaizen_model::{Severity, StableHasher};

use crate::aggregate::AggFn;
use crate::check::{at, AggSpec, Mode, Scope};
use crate::diagnostic::{suggest, Location, RuleError, SourceFile};
use crate::expr::Expr;
use crate::join::{self, JoinPlan};
use crate::schema::{Column, StreamName};
use crate::sequence::{self, SequencePlan};
use crate::syntax::{Emit, RuleStatement};
use crate::template::Template;
use crate::value::Type;

/// An event-time window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// Fixed, non-overlapping windows of `size` ms.
    Tumble {
        /// Size.
        size: u64,
    },
    /// Windows of `size` ms every `slide` ms.
    Hop {
        /// Slide.
        slide: u64,
        /// Size.
        size: u64,
    },
    /// A window per burst of rows, closed after `gap` ms without one.
    Session {
        /// Inactivity gap.
        gap: u64,
    },
}

/// What a rule computes.
#[derive(Clone, Debug)]
pub enum Shape {
    /// Row by row: every row that passes `WHERE` is a hit for its key.
    Filter {
        /// Row-level outputs (the SELECT list).
        outputs: Vec<(String, Expr)>,
    },
    /// Grouped and windowed: at each window's end, `HAVING` decides hit or miss.
    Aggregate {
        /// The window.
        window: Window,
        /// Aggregates with row-level arguments.
        aggs: Vec<AggSpec>,
        /// Group-level condition.
        having: Option<Expr>,
        /// Group-level outputs.
        outputs: Vec<(String, Expr)>,
    },
    /// `MATCH_RECOGNIZE`: a match is a hit.
    Sequence(SequencePlan),
}

/// A checked, runnable rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Identity across reloads: name + normalised text. Unchanged rules keep their state.
    pub id: u64,
    /// Name.
    pub name: String,
    /// File it came from.
    pub path: PathBuf,
    /// Where `CREATE RULE` is.
    pub at: Location,
    /// Severity of what it emits.
    pub severity: Severity,
    /// Routing labels.
    pub labels: Vec<(String, String)>,
    /// Templated annotations (`summary`, `description`, `runbook`, ...).
    pub annotations: Vec<(String, Template)>,
    /// Signal or insight.
    pub emit: Emit,
    /// The stream it reads.
    pub stream: StreamName,
    /// Row-level filter (the part of WHERE that selects rows).
    pub filter: Option<Expr>,
    /// For filter rules over metrics and spans: the part of WHERE that tests the measured value.
    /// A row that passes `filter` but not `condition` is an explicit miss for its key — the
    /// series is still reporting, just not in the bad range.
    pub condition: Option<Expr>,
    /// Group / partition keys (row-level) and their names.
    pub keys: Vec<(String, Expr)>,
    /// What it computes.
    pub shape: Shape,
    /// `FOR`, ms.
    pub for_ms: u64,
    /// `KEEP FIRING FOR`, ms.
    pub keep_ms: u64,
    /// For joins: both sides, keys, time bound.
    pub join: Option<JoinPlan>,
    /// Does it read log templates?
    pub needs_template: bool,
    /// Does it read a metric's `series` (formatted once per series, not per sample)?
    pub reads_series: bool,
    /// `file:line` for people.
    pub source: String,
    /// Does every group key include the row's service? Then one worker sees all of a group's
    /// rows (events are routed by service) and stage one may combine and de-duplicate them.
    pub groups_by_service: bool,
}

impl Rule {
    /// The pane `[start, end)` a row at `ts` combines into in stage one, for tumbling and
    /// sliding windows grouped by service; `None` when rows must travel one by one.
    pub fn pane(&self, ts: u64) -> Option<(u64, u64)> {
        if !self.groups_by_service || self.join.is_some() {
            return None;
        }
        let width = match &self.shape {
            Shape::Aggregate {
                window: Window::Tumble { size },
                ..
            } => *size,
            Shape::Aggregate {
                window: Window::Hop { slide, .. },
                ..
            } => *slide,
            _ => return None,
        };
        let start = ts - ts % width;
        Some((start, start + width))
    }

    /// Does each row say how things stand until the next row of its key (an incident's
    /// versions), rather than what was seen at one moment? Such a condition holds until a row
    /// says otherwise — no staleness — and `FOR` runs out on time, not at the next row.
    pub fn reads_states(&self) -> bool {
        self.stream == StreamName::Incidents
            && self.join.is_none()
            && matches!(self.shape, Shape::Filter { .. })
    }

    /// The inactivity gap of a session window that stage one combines (grouped by service,
    /// like [`Rule::pane`]); `None` when rows must travel one by one.
    pub fn session_gap(&self) -> Option<u64> {
        match &self.shape {
            Shape::Aggregate {
                window: Window::Session { gap },
                ..
            } if self.groups_by_service && self.join.is_none() => Some(*gap),
            _ => None,
        }
    }

    /// The output column names (for templates and fixtures).
    pub fn output_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.keys.iter().map(|(n, _)| n.as_str()).collect();
        let outputs = match &self.shape {
            Shape::Filter { outputs } | Shape::Aggregate { outputs, .. } => outputs,
            Shape::Sequence(s) => &s.outputs,
        };
        names.extend(outputs.iter().map(|(n, _)| n.as_str()));
        names
    }
}

const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];

/// Checks one parsed statement.
pub fn compile(file: &SourceFile, st: &RuleStatement) -> Result<Rule, RuleError> {
    let severity = match &st.severity {
        None => Severity::Warning,
        Some((s, loc)) => match s.to_ascii_lowercase().as_str() {
            "info" => Severity::Info,
            "warning" => Severity::Warning,
            "critical" => Severity::Critical,
            _ => {
                let mut e = RuleError::new(file, *loc, format!("unknown severity '{s}'"));
                e = e.help(match suggest(s, SEVERITIES) {
                    Some(x) => format!("did you mean '{x}'?"),
                    None => "severity is 'info', 'warning' or 'critical'".into(),
                });
                return Err(e);
            }
        },
    };
    let q = &st.query;
    let clause = match (&q.with, &q.order_by, &q.limit_clause, &q.fetch) {
        (Some(w), ..) => Some(("WITH", at(w, st.query_at))),
        (_, Some(o), ..) => Some(("ORDER BY", at(o, st.query_at))),
        (_, _, Some(l), _) => Some(("LIMIT", at(l, st.query_at))),
        (.., Some(f)) => Some(("FETCH", at(f, st.query_at))),
        _ => None,
    };
    if let Some((clause, loc)) = clause {
        return Err(
            RuleError::new(file, loc, format!("{clause} is not supported in rules"))
                .help("a rule is one SELECT over a stream, which it reads in event-time order"),
        );
    }
    let select = match &*q.body {
        SetExpr::Select(select) => select,
        SetExpr::SetOperation { op, right, .. } => {
            return Err(RuleError::new(
                file,
                at(&**right, st.query_at),
                format!("{op} is not supported: a rule's query is a single SELECT"),
            )
            .help("write one rule per SELECT"))
        }
        _ => {
            return Err(RuleError::new(
                file,
                st.query_at,
                "a rule's query must be a single SELECT",
            ))
        }
    };
    if let Some((what, loc)) = unsupported_part(select, st.query_at) {
        return Err(RuleError::new(
            file,
            loc,
            format!("{what} is not supported in rules"),
        ));
    }
    let from = match select.from.as_slice() {
        [from] => from,
        [_, second, ..] => {
            return Err(RuleError::new(
                file,
                at(&second.relation, st.query_at),
                "a rule reads one stream, or joins two with JOIN ... ON",
            )
            .help("write FROM alerts a JOIN logs l ON l.service = a.service AND l.ts BETWEEN a.ts - INTERVAL '5' MINUTE AND a.ts"))
        }
        [] => {
            return Err(RuleError::new(
                file,
                st.query_at,
                "a rule reads exactly one stream: SELECT ... FROM <stream>",
            )
            .help(format!("streams: {}", stream_names())))
        }
    };
    let mut id = StableHasher::new();
    id.write_str(&st.name);
    id.write_str(&st.text);
    let mut rule = Rule {
        id: id.finish(),
        name: st.name.clone(),
        path: file.path.clone(),
        at: st.at,
        severity,
        labels: st.labels.clone(),
        annotations: Vec::new(),
        emit: st.emit,
        stream: StreamName::Events,
        filter: None,
        condition: None,
        keys: Vec::new(),
        shape: Shape::Filter {
            outputs: Vec::new(),
        },
        for_ms: st.for_duration.as_millis() as u64,
        keep_ms: st.keep_firing_for.as_millis() as u64,
        join: None,
        needs_template: false,
        reads_series: false,
        source: format!("{}:{}", file.path.display(), st.at.line),
        groups_by_service: false,
    };
    let table = match &from.relation {
        TableFactor::MatchRecognize { table, .. } => &**table,
        other => other,
    };
    if let Some(loc) = table_extras(table) {
        return Err(RuleError::new(
            file,
            loc.unwrap_or(st.query_at),
            "a stream takes no arguments, hints, column aliases or TABLESAMPLE",
        ));
    }
    let (name, alias, recognize) = match &from.relation {
        TableFactor::Table { name, alias, .. } => (name, alias, None),
        TableFactor::MatchRecognize { table, .. } => match &**table {
            TableFactor::Table { name, alias, .. } => (name, alias, Some(&from.relation)),
            other => {
                return Err(RuleError::new(
                    file,
                    at(other, st.query_at),
                    "MATCH_RECOGNIZE reads a stream by name",
                ))
            }
        },
        other => {
            return Err(RuleError::new(
                file,
                at(other, st.query_at),
                format!("`{other}` is not a stream"),
            )
            .help(format!("streams: {}", stream_names())))
        }
    };
    let stream_name = name.to_string();
    rule.stream = StreamName::parse(&stream_name).ok_or_else(|| {
        let loc = at(name, st.query_at);
        let e = RuleError::new(file, loc, format!("unknown stream `{stream_name}`"));
        match suggest(&stream_name, StreamName::ALL.iter().map(|s| s.as_str())) {
            Some(s) => e.help(format!("did you mean `{s}`?")),
            None => e.help(format!("streams: {}", stream_names())),
        }
    })?;
    if rule.stream == StreamName::Incidents && rule.emit == Emit::Signal {
        return Err(incident_signal(file, at(name, st.query_at)));
    }
    let mut scope = Scope::new(file, rule.stream, st.query_at);
    scope.qualifiers.push(rule.stream.as_str().to_string());
    if let Some(a) = alias {
        scope.qualifiers.push(a.name.value.clone());
    }
    if let (Some((_, loc)), None) = (st.within, recognize) {
        return Err(
            RuleError::new(file, loc, "WITHIN only applies to MATCH_RECOGNIZE")
                .help("a join's rows are bounded with BETWEEN in ON; FOR makes a condition hold for a while"),
        );
    }
    if !from.joins.is_empty() {
        if recognize.is_some() {
            return Err(RuleError::new(
                file,
                at(&from.joins[0].relation, st.query_at),
                "MATCH_RECOGNIZE cannot be joined",
            ));
        }
        let plan = join::compile(&mut scope, from, select.selection.as_ref())?;
        if plan.streams.contains(&StreamName::Incidents) {
            let loc = at(&from.joins[0].relation, st.query_at);
            if plan.streams != [StreamName::Incidents; 2] {
                return Err(RuleError::new(
                    file,
                    loc,
                    "`incidents` joins only with `incidents`",
                )
                .help("rules over incidents run after correlation, once the other streams have passed; read the signals an incident is made of with its `id` instead"));
            }
            if rule.emit == Emit::Signal {
                return Err(incident_signal(file, loc));
            }
        }
        rule.stream = plan.streams[0];
        for (left, _) in &plan.key_names {
            rule.keys
                .push((short_name(left), Expr::Lit(crate::value::Value::Null)));
        }
        rule.join = Some(plan);
    } else if let Some(where_) = &select.selection {
        let cond = scope.condition(where_, Mode::Row, "WHERE")?;
        // Terms on the measured value are the condition; the rest select the series.
        let (measure, select_terms): (Vec<Expr>, Vec<Expr>) = cond
            .conjuncts()
            .into_iter()
            .partition(|t| t.reads_any(measured(rule.stream)));
        rule.filter = Expr::conjunction(select_terms);
        rule.condition = Expr::conjunction(measure);
    }
    if let Some(m) = recognize {
        if select.having.is_some()
            || !matches!(&select.group_by, GroupByExpr::Expressions(g, _) if g.is_empty())
        {
            let loc = match (&select.group_by, &select.having) {
                (GroupByExpr::Expressions(g, _), _) if !g.is_empty() => at(&g[0], st.query_at),
                (_, Some(h)) => at(h, st.query_at),
                _ => st.query_at,
            };
            return Err(RuleError::new(
                file,
                loc,
                "GROUP BY and HAVING do not apply to MATCH_RECOGNIZE",
            )
            .help("a sequence is keyed by PARTITION BY; name its results in MEASURES"));
        }
        // A sequence sees every row of the stream that passes WHERE; the value terms are not
        // split off as they are for filter rules.
        rule.filter = Expr::conjunction(
            rule.filter
                .take()
                .into_iter()
                .chain(rule.condition.take())
                .collect(),
        );
        let within = st.within.map(|(d, _)| d.as_millis() as u64);
        let plan = sequence::compile(&mut scope, m, within)?;
        rule.keys = plan.partition.clone();
        rule.shape = Shape::Sequence(plan);
        check_projection_is_star(file, st, select)?;
        return finish(file, st, rule, &scope);
    }

    // GROUP BY: a window and keys.
    let mut window = None;
    let group_exprs: &[ast::Expr] = match &select.group_by {
        GroupByExpr::Expressions(g, modifiers) if !modifiers.is_empty() => {
            return Err(RuleError::new(
                file,
                g.first().map_or(st.query_at, |e| at(e, st.query_at)),
                "GROUP BY modifiers (ROLLUP, CUBE, TOTALS) are not supported",
            ))
        }
        GroupByExpr::Expressions(g, _) => g,
        GroupByExpr::All(_) => {
            return Err(
                RuleError::new(file, st.query_at, "GROUP BY ALL is not supported")
                    .help("list the keys"),
            )
        }
    };
    for g in group_exprs {
        if let Some(w) = window_of(&scope, g)? {
            if window.is_some() {
                return Err(scope.err_at(g, "only one window per rule"));
            }
            window = Some(w);
            continue;
        }
        if let Some(plan) = &rule.join {
            // A join's groups are its keys: GROUP BY names them (either side's spelling).
            let text = g.to_string();
            let Some(i) = plan
                .key_names
                .iter()
                .position(|(l, r)| l.eq_ignore_ascii_case(&text) || r.eq_ignore_ascii_case(&text))
            else {
                return Err(scope
                    .err_at(g, "a join rule groups by its join keys")
                    .help("GROUP BY the columns ON compares with =, e.g. a.service"));
            };
            scope.keys.push((text, Expr::Group(i), Type::Str));
            continue;
        }
        if let ast::Expr::Value(_) = g {
            return Err(scope
                .err_at(g, "GROUP BY takes columns, not constants or column numbers")
                .help("name the column: GROUP BY service"));
        }
        let (x, t) = scope.expr(g, Mode::Row)?;
        if t == Type::Map {
            return Err(scope.err_at(g, "group by one label: labels['key']"));
        }
        scope
            .keys
            .push((g.to_string(), Expr::Group(rule.keys.len()), t));
        rule.keys.push((output_name(g), x));
    }
    scope.windowed = window.is_some();
    let first_aggregate = first_aggregate(&select.projection);
    let aggregating = window.is_some() || select.having.is_some() || first_aggregate.is_some();
    let mut selected = Selected::default();
    if aggregating {
        let Some(window) = window else {
            let loc = group_exprs
                .first()
                .map(|g| at(g, st.query_at))
                .or(first_aggregate.flatten())
                .or(select.having.as_ref().map(|h| at(h, st.query_at)))
                .unwrap_or(st.query_at);
            return Err(RuleError::new(file, loc, "an aggregating rule needs a window in GROUP BY")
                .help("add TUMBLE(ts, INTERVAL '1' MINUTE), HOP(ts, slide, size) or SESSION(ts, gap) to GROUP BY"));
        };
        let mut outputs = Vec::new();
        for item in &select.projection {
            let (name, e) =
                match item {
                    SelectItem::UnnamedExpr(e) => (output_name(e), e),
                    SelectItem::ExprWithAlias { expr, alias } => (alias.value.clone(), expr),
                    _ => return Err(RuleError::new(
                        file,
                        at(item, st.query_at),
                        "SELECT * does not apply to an aggregating rule",
                    )
                    .help(
                        "select the keys and aggregates, e.g. SELECT service, count(*) AS errors",
                    )),
                };
            selected.add(file, &name, at(item, st.query_at))?;
            let (x, t) = scope.expr(e, Mode::Group)?;
            match x {
                // A selected key is named by its alias (`COALESCE(labels['team'], '-') AS team`).
                Expr::Group(i) => {
                    if let Some(k) = rule.keys.get_mut(i) {
                        k.0 = name.clone();
                    }
                }
                _ => outputs.push((name.clone(), x.clone())),
            }
            scope.aliases.push((name, x, t));
        }
        let having = match &select.having {
            Some(h) => Some(scope.condition(h, Mode::Group, "HAVING")?),
            None => None,
        };
        rule.shape = Shape::Aggregate {
            window,
            aggs: std::mem::take(&mut scope.aggs),
            having,
            outputs,
        };
    } else {
        let mut outputs = Vec::new();
        for item in &select.projection {
            let loc = at(item, st.query_at);
            match item {
                SelectItem::UnnamedExpr(e) => {
                    selected.add(file, &output_name(e), loc)?;
                    outputs.push((output_name(e), scope.expr(e, Mode::Row)?.0))
                }
                SelectItem::ExprWithAlias { expr, alias } => {
                    selected.add(file, &alias.value, loc)?;
                    outputs.push((alias.value.clone(), scope.expr(expr, Mode::Row)?.0))
                }
                SelectItem::ExprWithAliases { .. } => {
                    return Err(RuleError::new(file, loc, "one alias per SELECT item"))
                }
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                    for c in rule.stream.columns().iter().filter(|c| c.ty() != Type::Map) {
                        selected.add(file, c.as_str(), loc)?;
                        outputs.push((c.as_str().to_string(), Expr::Col(*c)));
                    }
                }
            }
        }
        if rule.keys.is_empty() && rule.join.is_none() && rule.stream == StreamName::Incidents {
            // One firing per incident: its versions are the rows of one key.
            rule.keys.push(("id".into(), Expr::Col(Column::Id)));
        } else if rule.keys.is_empty() && rule.join.is_none() {
            rule.keys
                .push(("service".into(), Expr::Col(Column::Service)));
            // A metric condition holds per series, as a Prometheus alert does: one instance
            // in the bad range and another fine are two keys, not a flapping one.
            if rule.stream == StreamName::Metrics {
                rule.keys.push(("series".into(), Expr::Col(Column::Series)));
            }
        }
        rule.shape = Shape::Filter { outputs };
    }
    finish(file, st, rule, &scope)
}

/// `a.service` → `service`.
fn short_name(text: &str) -> String {
    text.rsplit('.').next().unwrap_or(text).to_string()
}

fn finish(
    file: &SourceFile,
    st: &RuleStatement,
    mut rule: Rule,
    _scope: &Scope<'_>,
) -> Result<Rule, RuleError> {
    // A rule whose group does not name the service is about the services its rows came
    // from: a hidden tally counts them, so what fires is attributed to the service with the
    // most rows (and an insight lists them all), not to whichever row came first.
    if rule.join.is_none() && !rule.keys.iter().any(|(n, _)| n == "service") {
        if let Shape::Aggregate { aggs, .. } = &mut rule.shape {
            aggs.push(AggSpec {
                f: AggFn::Tally,
                arg: Some(Expr::Col(Column::Service)),
                text: String::new(),
            });
        }
    }
    let mut needs = false;
    let mut series = false;
    let mut visit = |e: &Expr| {
        e.visit(&mut |x| {
            if let Expr::Col(c) = x {
                needs |= c.needs_template();
                series |= *c == Column::Series;
            }
        })
    };
    rule.filter
        .iter()
        .chain(rule.condition.iter())
        .for_each(&mut visit);
    rule.keys.iter().for_each(|(_, e)| visit(e));
    match &rule.shape {
        Shape::Filter { outputs } => outputs.iter().for_each(|(_, e)| visit(e)),
        Shape::Aggregate { aggs, .. } => aggs
            .iter()
            .filter_map(|a| a.arg.as_ref())
            .for_each(&mut visit),
        Shape::Sequence(s) => s.row_exprs().for_each(&mut visit),
    }
    if let Some(plan) = rule.join.as_mut() {
        plan.refresh_slots(_scope);
        for e in plan
            .slots
            .iter()
            .flatten()
            .chain(plan.filters.iter().flatten())
            .chain(plan.keys.iter().flatten())
        {
            e.visit(&mut |x| {
                if let Expr::Col(c) = x {
                    needs |= c.needs_template();
                    series |= *c == Column::Series;
                }
            });
        }
    }
    rule.needs_template = needs;
    rule.reads_series = series;
    rule.groups_by_service = rule.join.is_none()
        && rule
            .keys
            .iter()
            .any(|(_, e)| matches!(e, Expr::Col(Column::Service)));
    let names = rule
        .output_names()
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    for (key, text, loc) in &st.annotations {
        let t = Template::parse(text).map_err(|m| RuleError::new(file, *loc, m))?;
        for var in t.vars() {
            if !names.iter().any(|n| n == var) && !Template::BUILTINS.contains(&var) {
                let mut e = RuleError::new(
                    file,
                    *loc,
                    format!("`{{{{{var}}}}}` in {key} is not a column of the rule's result"),
                );
                let mut candidates: Vec<&str> = Vec::new();
                for n in names.iter().map(String::as_str).chain(Template::BUILTINS) {
                    if !candidates.contains(&n) {
                        candidates.push(n);
                    }
                }
                e = e.help(match suggest(var, candidates.iter().copied()) {
                    Some(s) => format!("did you mean `{{{{{s}}}}}`?"),
                    None => format!("the result has: {}", candidates.join(", ")),
                });
                return Err(e);
            }
        }
        rule.annotations.push((key.clone(), t));
    }
    Ok(rule)
}

fn check_projection_is_star(
    file: &SourceFile,
    st: &RuleStatement,
    select: &ast::Select,
) -> Result<(), RuleError> {
    match select.projection.as_slice() {
        [SelectItem::Wildcard(_)] => Ok(()),
        items => Err(RuleError::new(
            file,
            items.first().map_or(st.query_at, |i| at(i, st.query_at)),
            "a MATCH_RECOGNIZE rule selects `*`; name its outputs in MEASURES",
        )),
    }
}

/// The names a SELECT list gives its results: each once, or templates and fixtures would have
/// to guess which one `{{name}}` means.
#[derive(Default)]
struct Selected(Vec<String>);

impl Selected {
    fn add(&mut self, file: &SourceFile, name: &str, loc: Location) -> Result<(), RuleError> {
        if self.0.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return Err(
                RuleError::new(file, loc, format!("`{name}` is selected twice"))
                    .help("give one of them another name with AS"),
            );
        }
        self.0.push(name.to_string());
        Ok(())
    }
}

/// Where a SELECT uses a feature of another SQL dialect that rules do not support.
fn unsupported_part(select: &ast::Select, fallback: Location) -> Option<(&'static str, Location)> {
    let loc = |s: Span| {
        if s.start.line == 0 {
            fallback
        } else {
            s.start.into()
        }
    };
    let select_at = loc(select.select_token.0.span);
    let exprs = |v: &[ast::Expr]| v.first().map_or(select_at, |e| at(e, select_at));
    let parts = [
        (select.distinct.is_some(), "SELECT DISTINCT", select_at),
        (select.top.is_some(), "SELECT TOP", select_at),
        (
            select.into.is_some(),
            "SELECT INTO",
            select.into.as_ref().map_or(select_at, |i| loc(i.span())),
        ),
        (select.exclude.is_some(), "SELECT * EXCLUDE", select_at),
        (
            !select.lateral_views.is_empty(),
            "LATERAL VIEW",
            select
                .lateral_views
                .first()
                .map_or(select_at, |v| loc(v.span())),
        ),
        (
            select.prewhere.is_some(),
            "PREWHERE",
            select
                .prewhere
                .as_ref()
                .map_or(select_at, |e| at(e, select_at)),
        ),
        (
            !select.connect_by.is_empty(),
            "CONNECT BY",
            select
                .connect_by
                .first()
                .map_or(select_at, |c| loc(c.span())),
        ),
        (
            !select.cluster_by.is_empty(),
            "CLUSTER BY",
            exprs(&select.cluster_by),
        ),
        (
            !select.distribute_by.is_empty(),
            "DISTRIBUTE BY",
            exprs(&select.distribute_by),
        ),
        (
            !select.sort_by.is_empty(),
            "SORT BY",
            select.sort_by.first().map_or(select_at, |o| loc(o.span())),
        ),
        (
            !select.named_window.is_empty(),
            "WINDOW",
            select
                .named_window
                .first()
                .map_or(select_at, |w| loc(w.span())),
        ),
        (
            select.qualify.is_some(),
            "QUALIFY",
            select
                .qualify
                .as_ref()
                .map_or(select_at, |e| at(e, select_at)),
        ),
        (
            select.value_table_mode.is_some(),
            "SELECT AS VALUE",
            select_at,
        ),
    ];
    parts
        .into_iter()
        .find(|(present, _, _)| *present)
        .map(|(_, what, at)| (what, at))
}

/// Where a table reference carries more than a name and an alias (`logs('x')`, `logs
/// TABLESAMPLE (10 PERCENT)`, `logs AS l(a, b)`): `Some(where, if known)`.
pub(crate) fn table_extras(t: &TableFactor) -> Option<Option<Location>> {
    let TableFactor::Table {
        name,
        alias,
        args,
        with_hints,
        version,
        with_ordinality,
        partitions,
        json_path,
        sample,
        index_hints,
    } = t
    else {
        return None;
    };
    let extra = args.is_some()
        || !with_hints.is_empty()
        || version.is_some()
        || *with_ordinality
        || !partitions.is_empty()
        || json_path.is_some()
        || sample.is_some()
        || !index_hints.is_empty()
        || alias.as_ref().is_some_and(|a| !a.columns.is_empty());
    let s = name.span().start;
    extra.then_some((s.line != 0).then(|| s.into()))
}

fn stream_names() -> String {
    StreamName::ALL
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `service` for a column, the alias-free text otherwise.
fn output_name(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Identifier(id) => id.value.clone(),
        ast::Expr::CompoundIdentifier(ids) => {
            ids.last().map(|i| i.value.clone()).unwrap_or_default()
        }
        ast::Expr::CompoundFieldAccess { access_chain, .. } => match access_chain.as_slice() {
            [ast::AccessExpr::Subscript(ast::Subscript::Index {
                index: ast::Expr::Value(v),
            })] => match &v.value {
                ast::Value::SingleQuotedString(s) => s.clone(),
                _ => e.to_string(),
            },
            _ => e.to_string(),
        },
        _ => e.to_string(),
    }
}

/// The first aggregate call of a SELECT list (`Some(where, if known)`); window functions
/// (`OVER`) are not aggregates here, and are rejected when the list is checked.
fn first_aggregate(items: &[SelectItem]) -> Option<Option<Location>> {
    for item in items {
        let e = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
            _ => continue,
        };
        let found = ast::visit_expressions(e, |x| {
            if let ast::Expr::Function(f) = x {
                let star = matches!(&f.args, ast::FunctionArguments::List(l) if matches!(l.args.as_slice(), [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard)]));
                if f.over.is_none() && AggFn::parse(&f.name.to_string(), star, false).is_some() {
                    let s = x.span().start;
                    return std::ops::ControlFlow::Break((s.line != 0).then(|| s.into()));
                }
            }
            std::ops::ControlFlow::Continue(())
        });
        if let std::ops::ControlFlow::Break(loc) = found {
            return Some(loc);
        }
    }
    None
}

/// The shortest window, HOP slide and SESSION gap, ms.
const MIN_WINDOW_MS: u64 = 1000;
/// The most slides a HOP window may span (each row is in that many windows).
const MAX_HOP_PANES: u64 = 10_000;

fn window_of(scope: &Scope<'_>, g: &ast::Expr) -> Result<Option<Window>, RuleError> {
    let ast::Expr::Function(f) = g else {
        return Ok(None);
    };
    let name = f.name.to_string().to_ascii_lowercase();
    if !matches!(name.as_str(), "tumble" | "hop" | "session") {
        return Ok(None);
    }
    let args: Vec<&ast::Expr> = match &f.args {
        ast::FunctionArguments::List(l) => l
            .args
            .iter()
            .filter_map(|a| match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) => Some(x),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let usage = match name.as_str() {
        "tumble" => "TUMBLE(ts, INTERVAL '1' MINUTE)",
        "hop" => "HOP(ts, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE) — slide, then size",
        _ => "SESSION(ts, INTERVAL '5' MINUTE) — the inactivity gap",
    };
    let want = if name == "hop" { 3 } else { 2 };
    if args.len() != want
        || !matches!(args[0], ast::Expr::Identifier(id) if id.value.eq_ignore_ascii_case("ts"))
    {
        return Err(scope.err_at(g, format!("write {usage}")));
    }
    let a = scope.interval_arg(args[1])?;
    let w = match name.as_str() {
        "tumble" => Window::Tumble { size: a },
        "session" => Window::Session { gap: a },
        _ => {
            let size = scope.interval_arg(args[2])?;
            if a == 0 || size < a || size % a != 0 {
                return Err(scope.err_at(
                    g,
                    "a HOP window's size must be a positive multiple of its slide",
                ));
            }
            Window::Hop { slide: a, size }
        }
    };
    let size = match w {
        Window::Tumble { size } | Window::Hop { size, .. } => size,
        Window::Session { gap } => gap,
    };
    if size == 0 {
        return Err(scope.err_at(g, "a window must be longer than zero"));
    }
    // Every window (every slide, for HOP) is evaluated as event time passes, and a HOP row
    // lands in size / slide windows: tiny windows or slides would stall the engine.
    let step = match w {
        Window::Hop { slide, .. } => slide,
        _ => size,
    };
    if step < MIN_WINDOW_MS {
        return Err(scope
            .err_at(g, "a window (and a HOP's slide) must be at least 1 second")
            .help(format!("write {usage}")));
    }
    if let Window::Hop { slide, size } = w {
        if size / slide > MAX_HOP_PANES {
            return Err(scope
                .err_at(
                    g,
                    format!("a HOP window spans at most {MAX_HOP_PANES} slides"),
                )
                .help("use a longer slide, or TUMBLE"));
        }
    }
    Ok(Some(w))
}

impl Scope<'_> {
    pub(crate) fn err_at(&self, node: &ast::Expr, message: impl Into<String>) -> RuleError {
        self.err(node, message)
    }
}

/// The columns whose terms in `WHERE` are a filter rule's condition (a row failing them is a
/// miss, which ends the firing) rather than its selection: the measured value, and for an
/// incident its status, so that resolving the incident ends what its opening started.
fn measured(stream: StreamName) -> &'static [Column] {
    match stream {
        StreamName::Incidents => &[Column::Status, Column::DurationMs],
        _ => &[Column::Value, Column::DurationMs, Column::Strength],
    }
}

fn incident_signal(file: &SourceFile, loc: Location) -> RuleError {
    RuleError::new(file, loc, "a rule over `incidents` emits insights, not signals").help(
        "add EMIT INSIGHT to its header: a signal would go back into the correlation that made the incident",
    )
}
