//! `MATCH_RECOGNIZE`: sequences of rows per partition, like Flink SQL's, for streams.
//!
//! Each row is classified by the `DEFINE` conditions (rows that satisfy none are skipped, so a
//! pattern over `events` is not broken by unrelated rows in between); partial matches advance
//! through the `PATTERN`'s steps; a complete match is a hit, after which matching restarts past
//! its last row (`AFTER MATCH SKIP PAST LAST ROW`). `WITHIN` bounds a match's duration.

use sqlparser::ast::{
    self, MatchRecognizePattern as P, MatchRecognizeSymbol, RepetitionQuantifier as Q, TableFactor,
};

use crate::aggregate::{Acc, AggFn};
use crate::check::{ident_at, Mode, Scope};
use crate::diagnostic::{suggest, RuleError};
use crate::expr::Expr;
use crate::value::Value;

/// Partial matches kept per partition; the oldest are dropped beyond this.
const MAX_PARTIALS: usize = 32;

/// One step of a pattern: any of `vars`, between `min` and `max` times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Bit i: pattern variable i.
    pub vars: u64,
    /// Fewest rows.
    pub min: u32,
    /// Most rows.
    pub max: u32,
}

/// A measure: an aggregate over the rows a variable matched.
#[derive(Clone, Debug)]
pub struct Measure {
    /// Which variable's rows (`None`: all rows of the match).
    pub var: Option<usize>,
    /// Aggregate.
    pub f: AggFn,
    /// Row-level argument.
    pub arg: Option<Expr>,
}

/// A checked `MATCH_RECOGNIZE`.
#[derive(Clone, Debug)]
pub struct SequencePlan {
    /// `PARTITION BY` keys.
    pub partition: Vec<(String, Expr)>,
    /// Variable names.
    pub vars: Vec<String>,
    /// `DEFINE` per variable (`None`: any row).
    pub defines: Vec<Option<Expr>>,
    /// The pattern.
    pub steps: Vec<Step>,
    /// `WITHIN`, ms.
    pub within: Option<u64>,
    /// `MEASURES`.
    pub measures: Vec<Measure>,
    /// Output names → `Expr::Agg(measure index)`.
    pub outputs: Vec<(String, Expr)>,
}

impl SequencePlan {
    /// Row-level expressions (for dependency analysis).
    pub fn row_exprs(&self) -> impl Iterator<Item = &Expr> {
        self.partition
            .iter()
            .map(|(_, e)| e)
            .chain(self.defines.iter().flatten())
            .chain(self.measures.iter().filter_map(|m| m.arg.as_ref()))
    }

    /// Classifies a row: bit i set when variable i's DEFINE holds.
    pub fn classify(&self, cx: &crate::expr::Ctx<'_, '_>) -> u64 {
        let mut bits = 0;
        for (i, d) in self.defines.iter().enumerate() {
            if d.as_ref().is_none_or(|d| d.eval(cx).is_true()) {
                bits |= 1 << i;
            }
        }
        bits
    }
}

/// Checks a `MATCH_RECOGNIZE` table factor.
pub fn compile(
    scope: &mut Scope<'_>,
    m: &TableFactor,
    within: Option<u64>,
) -> Result<SequencePlan, RuleError> {
    let TableFactor::MatchRecognize {
        partition_by,
        order_by,
        measures,
        pattern,
        symbols,
        rows_per_match,
        after_match_skip,
        ..
    } = m
    else {
        return Err(scope.err(m, "expected MATCH_RECOGNIZE"));
    };
    // Where the pattern is: at its first variable (sqlparser keeps no span for patterns).
    let pattern_at =
        first_symbol(pattern).map_or(scope.fallback, |id| ident_at(id, scope.fallback));
    // A match is one row (its MEASURES) and matching restarts past its last row; other modes
    // would be silently ignored.
    if let Some(rows @ ast::RowsPerMatch::AllRows(_)) = rows_per_match {
        return Err(scope
            .err(m, format!("{rows} is not supported"))
            .help("a MATCH_RECOGNIZE rule emits ONE ROW PER MATCH"));
    }
    if let Some(skip) = after_match_skip {
        if *skip != ast::AfterMatchSkip::PastLastRow {
            return Err(scope
                .err(
                    m,
                    format!("{} is not supported", skip.to_string().replace("  ", " ")),
                )
                .help("matching restarts after a match: AFTER MATCH SKIP PAST LAST ROW"));
        }
    }
    for o in order_by {
        if !matches!(&o.expr, ast::Expr::Identifier(id) if id.value.eq_ignore_ascii_case("ts")) {
            return Err(scope.err(&o.expr, "MATCH_RECOGNIZE orders by event time: ORDER BY ts"));
        }
    }
    let mut vars = Vec::new();
    collect_vars(pattern, &mut vars);
    if vars.len() > 63 {
        return Err(RuleError::new(
            scope.file,
            pattern_at,
            "a pattern may use at most 63 variables",
        ));
    }
    for v in &vars {
        scope.qualifiers.push(v.clone());
    }
    let mut partition = Vec::new();
    for p in partition_by {
        let (x, _) = scope.expr(p, Mode::Row)?;
        partition.push((p.to_string(), x));
    }
    let mut defines = vec![None; vars.len()];
    for d in symbols {
        let Some(i) = vars
            .iter()
            .position(|v| v.eq_ignore_ascii_case(&d.symbol.value))
        else {
            let mut err = RuleError::new(
                scope.file,
                ident_at(&d.symbol, scope.fallback),
                format!("`{}` is defined but not used in PATTERN", d.symbol.value),
            );
            if let Some(s) = suggest(&d.symbol.value, vars.iter().map(String::as_str)) {
                err = err.help(format!("did you mean `{s}`?"));
            }
            return Err(err);
        };
        if defines[i].is_some() {
            return Err(RuleError::new(
                scope.file,
                ident_at(&d.symbol, scope.fallback),
                format!("`{}` is defined twice", d.symbol.value),
            ));
        }
        let mut foreign = None;
        let _ = ast::visit_expressions(&d.definition, |x| {
            if let ast::Expr::CompoundIdentifier(ids) = x {
                if let Some(q) = ids.first() {
                    if !q.value.eq_ignore_ascii_case(&vars[i])
                        && vars.iter().any(|v| v.eq_ignore_ascii_case(&q.value))
                    {
                        foreign = Some(q.clone());
                    }
                }
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        if let Some(q) = foreign {
            return Err(RuleError::new(
                scope.file,
                ident_at(&q, scope.fallback),
                format!(
                    "DEFINE {} may only read its own row, not `{}`",
                    vars[i], q.value
                ),
            )
            .help("compare across rows in MEASURES, or use WITHIN for time bounds"));
        }
        defines[i] = Some(scope.condition(&d.definition, Mode::Row, "DEFINE")?);
    }
    let steps = steps_of(scope, pattern, &vars, pattern_at)?;
    let mut plan_measures = Vec::new();
    let mut outputs: Vec<(String, Expr)> = Vec::new();
    for me in measures {
        if outputs
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(&me.alias.value))
        {
            return Err(RuleError::new(
                scope.file,
                ident_at(&me.alias, scope.fallback),
                format!("measure `{}` is named twice", me.alias.value),
            ));
        }
        plan_measures.push(measure(scope, &me.expr, &vars)?);
        outputs.push((me.alias.value.clone(), Expr::Agg(plan_measures.len() - 1)));
    }
    Ok(SequencePlan {
        partition,
        vars,
        defines,
        steps,
        within,
        measures: plan_measures,
        outputs,
    })
}

fn collect_vars(p: &P, out: &mut Vec<String>) {
    match p {
        P::Symbol(MatchRecognizeSymbol::Named(id))
        | P::Exclude(MatchRecognizeSymbol::Named(id))
            if !out.iter().any(|v| v.eq_ignore_ascii_case(&id.value)) =>
        {
            out.push(id.value.clone());
        }
        P::Permute(s) => s
            .iter()
            .for_each(|x| collect_vars(&P::Symbol(x.clone()), out)),
        P::Concat(ps) | P::Alternation(ps) => ps.iter().for_each(|x| collect_vars(x, out)),
        P::Group(x) | P::Repetition(x, _) => collect_vars(x, out),
        _ => {}
    }
}

/// The first named variable of a pattern, for locations.
fn first_symbol(p: &P) -> Option<&ast::Ident> {
    match p {
        P::Symbol(MatchRecognizeSymbol::Named(id))
        | P::Exclude(MatchRecognizeSymbol::Named(id)) => Some(id),
        P::Permute(s) => s.iter().find_map(|x| match x {
            MatchRecognizeSymbol::Named(id) => Some(id),
            _ => None,
        }),
        P::Concat(ps) | P::Alternation(ps) => ps.iter().find_map(first_symbol),
        P::Group(x) | P::Repetition(x, _) => first_symbol(x),
        _ => None,
    }
}

fn steps_of(
    scope: &Scope<'_>,
    p: &P,
    vars: &[String],
    pattern_at: crate::diagnostic::Location,
) -> Result<Vec<Step>, RuleError> {
    let items: Vec<&P> = match p {
        P::Concat(ps) => ps.iter().collect(),
        other => vec![other],
    };
    let mut steps = Vec::new();
    for item in items {
        let (inner, (min, max)) = match item {
            P::Repetition(x, q) => (&**x, bounds(q)),
            x => (x, (1, 1)),
        };
        let item_at = first_symbol(item).map_or(pattern_at, |id| ident_at(id, pattern_at));
        let mask = mask_of(inner, vars).ok_or_else(|| {
            RuleError::new(scope.file, item_at, format!("pattern element `{item}` is not supported"))
                .help("patterns are sequences of variables or (A | B) groups with quantifiers: *, +, ?, {n}, {n,}, {n,m}")
        })?;
        if max == 0 || min > max {
            return Err(RuleError::new(
                scope.file,
                item_at,
                format!("quantifier in `{item}` matches nothing"),
            )
            .help("quantifiers are *, +, ?, {n}, {n,} and {n,m} with n ≤ m"));
        }
        steps.push(Step {
            vars: mask,
            min,
            max,
        });
    }
    if steps.iter().all(|s| s.min == 0) {
        return Err(RuleError::new(
            scope.file,
            pattern_at,
            "the pattern must require at least one row",
        )
        .help("a pattern that can match no rows would match everywhere: drop a * or ?"));
    }
    Ok(steps)
}

fn bounds(q: &Q) -> (u32, u32) {
    match *q {
        Q::ZeroOrMore => (0, u32::MAX),
        Q::OneOrMore => (1, u32::MAX),
        Q::AtMostOne => (0, 1),
        Q::Exactly(n) => (n, n),
        Q::AtLeast(n) => (n, u32::MAX),
        Q::AtMost(n) => (0, n),
        Q::Range(a, b) => (a, b),
    }
}

fn mask_of(p: &P, vars: &[String]) -> Option<u64> {
    match p {
        P::Symbol(MatchRecognizeSymbol::Named(id)) => vars
            .iter()
            .position(|v| v.eq_ignore_ascii_case(&id.value))
            .map(|i| 1 << i),
        P::Group(x) => mask_of(x, vars),
        P::Alternation(ps) => ps
            .iter()
            .map(|x| mask_of(x, vars))
            .try_fold(0, |acc, m| Some(acc | m?)),
        _ => None,
    }
}

fn measure(scope: &mut Scope<'_>, e: &ast::Expr, vars: &[String]) -> Result<Measure, RuleError> {
    let var_of = |q: &ast::Ident| vars.iter().position(|v| v.eq_ignore_ascii_case(&q.value));
    let usage = "MEASURES take FIRST/LAST/COUNT/MIN/MAX/SUM/AVG(X.column), COUNT(X.*) or X.column";
    match e {
        ast::Expr::CompoundIdentifier(ids) if ids.len() == 2 => {
            let var = var_of(&ids[0]).ok_or_else(|| {
                scope.err(e, format!("`{}` is not a pattern variable", ids[0].value))
            })?;
            let (arg, _) = scope.expr(e, Mode::Row)?;
            Ok(Measure {
                var: Some(var),
                f: AggFn::Last,
                arg: Some(arg),
            })
        }
        ast::Expr::Function(f) => {
            let name = f.name.to_string();
            let args = match &f.args {
                ast::FunctionArguments::List(l) => l.args.as_slice(),
                _ => &[],
            };
            match args {
                [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard)] => {
                    let f = AggFn::parse(&name, true, false).ok_or_else(|| scope.err(e, usage))?;
                    Ok(Measure {
                        var: None,
                        f,
                        arg: None,
                    })
                }
                [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::QualifiedWildcard(obj))] => {
                    let q = obj
                        .0
                        .first()
                        .and_then(|p| p.as_ident())
                        .cloned()
                        .ok_or_else(|| scope.err(e, usage))?;
                    let var = var_of(&q).ok_or_else(|| {
                        scope.err(e, format!("`{}` is not a pattern variable", q.value))
                    })?;
                    let f = AggFn::parse(&name, true, false).ok_or_else(|| scope.err(e, usage))?;
                    Ok(Measure {
                        var: Some(var),
                        f,
                        arg: None,
                    })
                }
                [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(
                    x @ ast::Expr::CompoundIdentifier(ids),
                ))] if ids.len() == 2 => {
                    let var = var_of(&ids[0]).ok_or_else(|| {
                        scope.err(x, format!("`{}` is not a pattern variable", ids[0].value))
                    })?;
                    let f = AggFn::parse(&name, false, false).ok_or_else(|| {
                        scope
                            .err(e, format!("unknown aggregate `{name}`"))
                            .help(usage)
                    })?;
                    let (arg, _) = scope.expr(x, Mode::Row)?;
                    Ok(Measure {
                        var: Some(var),
                        f,
                        arg: Some(arg),
                    })
                }
                _ => Err(scope.err(e, usage)),
            }
        }
        _ => Err(scope.err(e, usage)),
    }
}

/// A partial match.
#[derive(Clone, Debug)]
struct Partial {
    step: usize,
    count: u32,
    start: u64,
    accs: Vec<Acc>,
}

/// The running matcher for one partition.
#[derive(Clone, Debug, Default)]
pub struct Matcher {
    partials: Vec<Partial>,
}

/// A complete match: when it started and its measures.
pub struct Match {
    /// First row's time.
    pub start: u64,
    /// Measure values.
    pub values: Vec<Value>,
}

impl Matcher {
    /// Is nothing in progress?
    pub fn is_idle(&self) -> bool {
        self.partials.is_empty()
    }

    /// Feeds one row (classified into `bits`, with measure arguments `args`).
    pub fn on_row(
        &mut self,
        plan: &SequencePlan,
        ts: u64,
        bits: u64,
        args: &[Value],
    ) -> Option<Match> {
        if bits == 0 {
            return None;
        }
        let steps = &plan.steps;
        let mut next = Vec::with_capacity(self.partials.len() + 1);
        let take = |p: &Partial, step: usize| -> Partial {
            let mut q = p.clone();
            if q.step != step {
                q.step = step;
                q.count = 0;
            }
            q.count += 1;
            let var = (bits & steps[step].vars).trailing_zeros() as usize;
            for (i, m) in plan.measures.iter().enumerate() {
                if m.var.is_none_or(|v| v == var) {
                    q.accs[i].add(m.f, ts, args.get(i).unwrap_or(&Value::Null));
                }
            }
            q
        };
        let fresh = Partial {
            step: 0,
            count: 0,
            start: ts,
            accs: plan.measures.iter().map(|m| m.f.start()).collect(),
        };
        let candidates = std::mem::take(&mut self.partials);
        for p in candidates.iter().chain(std::iter::once(&fresh)) {
            if plan.within.is_some_and(|w| ts.saturating_sub(p.start) > w) {
                continue;
            }
            let is_fresh = p.count == 0 && p.step == 0;
            let mut moved = false;
            // Stay on the current step.
            if !is_fresh && p.count < steps[p.step].max && bits & steps[p.step].vars != 0 {
                next.push(take(p, p.step));
                moved = true;
            }
            // Advance: to the next step, skipping optional ones.
            let mut j = if is_fresh { 0 } else { p.step + 1 };
            let satisfied = is_fresh || p.count >= steps[p.step].min;
            while satisfied && j < steps.len() {
                if bits & steps[j].vars != 0 {
                    next.push(take(p, j));
                    moved = true;
                    break;
                }
                if steps[j].min > 0 {
                    break;
                }
                j += 1;
            }
            if !moved && !is_fresh {
                next.push(p.clone());
            }
        }
        let done = next.iter().position(|p| {
            p.count >= steps[p.step].min && steps[p.step + 1..].iter().all(|s| s.min == 0)
        });
        if let Some(i) = done {
            let p = next.swap_remove(i);
            self.partials.clear();
            let values = plan
                .measures
                .iter()
                .zip(&p.accs)
                .map(|(m, a)| a.result(m.f, ts.saturating_sub(p.start)))
                .collect();
            return Some(Match {
                start: p.start,
                values,
            });
        }
        if next.len() > MAX_PARTIALS {
            next.drain(..next.len() - MAX_PARTIALS);
        }
        self.partials = next;
        None
    }

    /// Drops partial matches that can no longer complete within `WITHIN`.
    pub fn expire(&mut self, plan: &SequencePlan, now: u64) {
        if let Some(w) = plan.within {
            self.partials.retain(|p| now.saturating_sub(p.start) <= w);
        }
    }
}
