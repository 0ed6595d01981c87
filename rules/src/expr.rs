//! Checked expressions and their evaluation.
//!
//! The checker ([`crate::plan`]) turns sqlparser's AST into this small typed tree once; rows
//! are then evaluated against it without any name lookups.

use std::cmp::Ordering;
use std::sync::Arc;

use regex::Regex;

use crate::graph::Dependencies;
use crate::schema::{Column, Row};
use crate::value::Value;

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum BinOp {
    And,
    Or,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Concat,
}

/// A scalar function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Scalar {
    Lower,
    Upper,
    Length,
    Trim,
    Concat,
    Substr,
    Replace,
    StartsWith,
    EndsWith,
    Contains,
    SplitPart,
    RegexpExtract,
    Coalesce,
    NullIf,
    Greatest,
    Least,
    Abs,
    Round,
    Floor,
    Ceil,
    Sqrt,
    Ln,
    Log10,
    Power,
    ToNumber,
    ToInteger,
    ToText,
    DependsOn,
    UpstreamOf,
    DownstreamOf,
    Hops,
}

/// A checked expression.
#[derive(Clone, Debug)]
pub enum Expr {
    /// A column of the current row.
    Col(Column),
    /// `labels['key']` / `annotations['key']`.
    Label(Column, Arc<str>),
    /// A constant.
    Lit(Value),
    /// `NOT e`.
    Not(Box<Expr>),
    /// `-e`.
    Neg(Box<Expr>),
    /// `a op b`.
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// `LIKE`, `ILIKE`, `REGEXP_LIKE`, `~`, `RLIKE` — all compiled to a regex.
    Matches(Box<Expr>, Box<Regex>, bool),
    /// `e [NOT] IN (...)`.
    InList(Box<Expr>, Vec<Expr>, bool),
    /// `e [NOT] BETWEEN low AND high`.
    Between(Box<Expr>, Box<Expr>, Box<Expr>, bool),
    /// `e IS [NOT] NULL`.
    IsNull(Box<Expr>, bool),
    /// `CASE [operand] WHEN .. THEN .. ELSE .. END`.
    Case(Option<Box<Expr>>, Vec<(Expr, Expr)>, Option<Box<Expr>>),
    /// A scalar function call.
    Call(Scalar, Vec<Expr>),
    /// The i-th aggregate's result (in `SELECT` / `HAVING` of an aggregating rule).
    Agg(usize),
    /// The i-th `GROUP BY` key.
    Group(usize),
    /// A column of one side of a joined pair: `(side, slot)` into the pair's values.
    Slot(u8, u16),
    /// Start of the window being evaluated (ms).
    WindowStart,
    /// End of the window being evaluated (ms).
    WindowEnd,
}

/// What an expression is evaluated against.
#[derive(Clone, Copy)]
pub struct Ctx<'r, 'a> {
    /// The current row (row-level expressions).
    pub row: Option<&'r Row<'a>>,
    /// Group keys (group-level expressions).
    pub group: &'r [Value],
    /// Aggregate results (group-level expressions).
    pub aggs: &'r [Value],
    /// The window being evaluated, `[start, end)` in ms.
    pub window: (u64, u64),
    /// A joined pair's values, left and right (join rules).
    pub pair: Option<[&'r [Value]; 2]>,
    /// The service dependency graph, for `depends_on` and friends.
    pub graph: Option<&'r Dependencies>,
    /// The row's `series`, when the caller already has it (see [`crate::schema::Row::get`]).
    pub series: Option<&'r Value>,
}

impl<'r, 'a> Ctx<'r, 'a> {
    /// A row-level context.
    pub fn row(row: &'r Row<'a>) -> Self {
        Ctx {
            row: Some(row),
            group: &[],
            aggs: &[],
            window: (0, 0),
            pair: None,
            graph: None,
            series: None,
        }
    }

    /// A context over a joined pair.
    pub fn pair(left: &'r [Value], right: &'r [Value]) -> Self {
        Ctx {
            row: None,
            group: &[],
            aggs: &[],
            window: (0, 0),
            pair: Some([left, right]),
            graph: None,
            series: None,
        }
    }

    /// With the dependency graph.
    pub fn with_graph(mut self, graph: Option<&'r Dependencies>) -> Self {
        self.graph = graph;
        self
    }

    /// With the row's `series` already known.
    pub fn with_series(mut self, series: Option<&'r Value>) -> Self {
        self.series = series;
        self
    }
}

impl Expr {
    /// Evaluates to a value; errors become NULL (SQL's way, and never a panic on input).
    pub fn eval(&self, cx: &Ctx<'_, '_>) -> Value {
        match self {
            Expr::Col(Column::Series) if cx.series.is_some() => {
                cx.series.cloned().unwrap_or_default()
            }
            Expr::Col(c) => cx.row.map_or(Value::Null, |r| r.get(*c)),
            Expr::Label(map, key) => cx.row.map_or(Value::Null, |r| r.label(*map, key)),
            Expr::Lit(v) => v.clone(),
            Expr::Not(e) => match e.eval(cx) {
                Value::Bool(b) => Value::Bool(!b),
                _ => Value::Null,
            },
            Expr::Neg(e) => e.eval(cx).as_num().map_or(Value::Null, |n| Value::Num(-n)),
            Expr::Bin(op, a, b) => binary(*op, a, b, cx),
            Expr::Matches(e, re, negated) => {
                let hit = match (&**e, cx.row) {
                    (Expr::Col(c), Some(row)) => row.text(*c).map(|s| re.is_match(s)),
                    _ => e.eval(cx).as_str().map(|s| re.is_match(s)),
                };
                hit.map_or(Value::Null, |h| Value::Bool(h != *negated))
            }
            Expr::InList(e, list, negated) => {
                let v = e.eval(cx);
                if v.is_null() {
                    return Value::Null;
                }
                let found = list.iter().any(|x| {
                    let o = match x {
                        Expr::Lit(l) => v.compare(l),
                        x => v.compare(&x.eval(cx)),
                    };
                    o == Some(Ordering::Equal)
                });
                Value::Bool(found != *negated)
            }
            Expr::Between(e, lo, hi, negated) => {
                let v = e.eval(cx);
                match (v.compare(&lo.eval(cx)), v.compare(&hi.eval(cx))) {
                    (Some(a), Some(b)) => {
                        Value::Bool((a != Ordering::Less && b != Ordering::Greater) != *negated)
                    }
                    _ => Value::Null,
                }
            }
            Expr::IsNull(e, negated) => Value::Bool(e.eval(cx).is_null() != *negated),
            Expr::Case(operand, branches, otherwise) => {
                let subject = operand.as_ref().map(|o| o.eval(cx));
                for (when, then) in branches {
                    let w = when.eval(cx);
                    let hit = match &subject {
                        Some(s) => s.compare(&w) == Some(Ordering::Equal),
                        None => w.is_true(),
                    };
                    if hit {
                        return then.eval(cx);
                    }
                }
                otherwise.as_ref().map_or(Value::Null, |e| e.eval(cx))
            }
            Expr::Call(f, args) => call(*f, args, cx),
            Expr::Agg(i) => cx.aggs.get(*i).cloned().unwrap_or_default(),
            Expr::Group(i) => cx.group.get(*i).cloned().unwrap_or_default(),
            Expr::Slot(side, i) => cx
                .pair
                .and_then(|p| p.get(*side as usize).and_then(|v| v.get(*i as usize)))
                .cloned()
                .unwrap_or_default(),
            Expr::WindowStart => Value::Num(cx.window.0 as f64),
            Expr::WindowEnd => Value::Num(cx.window.1 as f64),
        }
    }

    /// Does this expression (or anything under it) read one of `columns`?
    pub fn reads_any(&self, columns: &[Column]) -> bool {
        let mut found = false;
        self.visit(&mut |e| {
            if let Expr::Col(c) = e {
                found |= columns.contains(c);
            }
        });
        found
    }

    /// Calls `f` on this node and every node under it.
    pub fn visit(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Not(e) | Expr::Neg(e) | Expr::IsNull(e, _) | Expr::Matches(e, _, _) => e.visit(f),
            Expr::Bin(_, a, b) => {
                a.visit(f);
                b.visit(f);
            }
            Expr::InList(e, list, _) => {
                e.visit(f);
                list.iter().for_each(|x| x.visit(f));
            }
            Expr::Between(e, a, b, _) => {
                e.visit(f);
                a.visit(f);
                b.visit(f);
            }
            Expr::Case(o, branches, otherwise) => {
                if let Some(o) = o {
                    o.visit(f);
                }
                for (w, t) in branches {
                    w.visit(f);
                    t.visit(f);
                }
                if let Some(e) = otherwise {
                    e.visit(f);
                }
            }
            Expr::Call(_, args) => args.iter().for_each(|x| x.visit(f)),
            _ => {}
        }
    }

    /// Splits a conjunction into its terms.
    pub fn conjuncts(self) -> Vec<Expr> {
        match self {
            Expr::Bin(BinOp::And, a, b) => {
                let mut v = a.conjuncts();
                v.extend(b.conjuncts());
                v
            }
            e => vec![e],
        }
    }

    /// Joins terms with AND (`None` when there are none).
    pub fn conjunction(terms: Vec<Expr>) -> Option<Expr> {
        Expr::balanced(BinOp::And, terms)
    }

    /// Joins terms with `op` (AND or OR, which associate) into a balanced tree, so that a
    /// long chain is only log₂(n) deep when it is evaluated; `None` when there are none.
    pub fn balanced(op: BinOp, mut terms: Vec<Expr>) -> Option<Expr> {
        while terms.len() > 1 {
            let mut pairs = Vec::with_capacity(terms.len().div_ceil(2));
            let mut it = terms.into_iter();
            while let Some(a) = it.next() {
                pairs.push(match it.next() {
                    Some(b) => Expr::Bin(op, Box::new(a), Box::new(b)),
                    None => a,
                });
            }
            terms = pairs;
        }
        terms.pop()
    }
}

fn binary(op: BinOp, a: &Expr, b: &Expr, cx: &Ctx<'_, '_>) -> Value {
    match op {
        // Three-valued logic, short-circuiting where the answer is already known.
        BinOp::And => match a.eval(cx) {
            Value::Bool(false) => Value::Bool(false),
            x => match (x, b.eval(cx)) {
                (_, Value::Bool(false)) => Value::Bool(false),
                (Value::Bool(true), Value::Bool(true)) => Value::Bool(true),
                _ => Value::Null,
            },
        },
        BinOp::Or => match a.eval(cx) {
            Value::Bool(true) => Value::Bool(true),
            x => match (x, b.eval(cx)) {
                (_, Value::Bool(true)) => Value::Bool(true),
                (Value::Bool(false), Value::Bool(false)) => Value::Bool(false),
                _ => Value::Null,
            },
        },
        BinOp::Eq | BinOp::NotEq | BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq => {
            let ord = compare_operands(a, b, cx);
            ord.map_or(Value::Null, |o| {
                Value::Bool(match op {
                    BinOp::Eq => o == Ordering::Equal,
                    BinOp::NotEq => o != Ordering::Equal,
                    BinOp::Lt => o == Ordering::Less,
                    BinOp::LtEq => o != Ordering::Greater,
                    BinOp::Gt => o == Ordering::Greater,
                    _ => o != Ordering::Less,
                })
            })
        }
        BinOp::Concat => {
            let (x, y) = (a.eval(cx), b.eval(cx));
            if x.is_null() || y.is_null() {
                return Value::Null;
            }
            Value::Str(format!("{x}{y}").into())
        }
        _ => match (a.eval(cx).as_num(), b.eval(cx).as_num()) {
            (Some(x), Some(y)) => {
                let r = match op {
                    BinOp::Add => x + y,
                    BinOp::Sub => x - y,
                    BinOp::Mul => x * y,
                    BinOp::Div if y != 0.0 => x / y,
                    BinOp::Mod if y != 0.0 => x % y,
                    _ => return Value::Null,
                };
                Value::Num(r)
            }
            _ => Value::Null,
        },
    }
}

/// Compares without allocating when one side is a text column of the row.
fn compare_operands(a: &Expr, b: &Expr, cx: &Ctx<'_, '_>) -> Option<Ordering> {
    if let (Expr::Col(c), Expr::Lit(v), Some(row)) = (a, b, cx.row) {
        if let (Some(s), Some(lit)) = (row.text(*c), v.as_str()) {
            return Some(s.cmp(lit));
        }
    }
    // Literals are compared in place, not cloned.
    match (a, b) {
        (a, Expr::Lit(l)) => a.eval(cx).compare(l),
        (Expr::Lit(l), b) => l.compare(&b.eval(cx)),
        _ => a.eval(cx).compare(&b.eval(cx)),
    }
}

fn text(args: &[Expr], i: usize, cx: &Ctx<'_, '_>) -> Option<String> {
    let v = args.get(i)?.eval(cx);
    (!v.is_null()).then(|| v.to_string())
}

fn num(args: &[Expr], i: usize, cx: &Ctx<'_, '_>) -> Option<f64> {
    args.get(i)?.eval(cx).as_num()
}

fn call(f: Scalar, args: &[Expr], cx: &Ctx<'_, '_>) -> Value {
    let s = |v: Option<String>| v.map_or(Value::Null, |s| Value::Str(s.into()));
    let n = |v: Option<f64>| v.filter(|x| x.is_finite()).map_or(Value::Null, Value::Num);
    let b = |v: Option<bool>| v.map_or(Value::Null, Value::Bool);
    match f {
        Scalar::Lower => s(text(args, 0, cx).map(|t| t.to_lowercase())),
        Scalar::Upper => s(text(args, 0, cx).map(|t| t.to_uppercase())),
        Scalar::Length => n(text(args, 0, cx).map(|t| t.chars().count() as f64)),
        Scalar::Trim => s(text(args, 0, cx).map(|t| t.trim().to_string())),
        Scalar::ToText => s(text(args, 0, cx)),
        Scalar::ToNumber => n(num(args, 0, cx)),
        Scalar::ToInteger => n(num(args, 0, cx).map(f64::trunc)),
        Scalar::Concat => {
            let mut out = String::new();
            for a in args {
                let v = a.eval(cx);
                if !v.is_null() {
                    out.push_str(&v.to_string());
                }
            }
            Value::Str(out.into())
        }
        Scalar::Substr => {
            let (Some(t), Some(start)) = (text(args, 0, cx), num(args, 1, cx)) else {
                return Value::Null;
            };
            let skip = (start.max(1.0) as usize).saturating_sub(1);
            let take = num(args, 2, cx).map_or(usize::MAX, |l| l.max(0.0) as usize);
            Value::Str(t.chars().skip(skip).take(take).collect::<String>().into())
        }
        Scalar::Replace => match (text(args, 0, cx), text(args, 1, cx), text(args, 2, cx)) {
            (Some(t), Some(from), Some(to)) if !from.is_empty() => {
                Value::Str(t.replace(&from, &to).into())
            }
            (Some(t), Some(_), Some(_)) => Value::Str(t.into()),
            _ => Value::Null,
        },
        Scalar::StartsWith => b(text(args, 0, cx)
            .zip(text(args, 1, cx))
            .map(|(t, p)| t.starts_with(&p))),
        Scalar::EndsWith => b(text(args, 0, cx)
            .zip(text(args, 1, cx))
            .map(|(t, p)| t.ends_with(&p))),
        Scalar::Contains => b(text(args, 0, cx)
            .zip(text(args, 1, cx))
            .map(|(t, p)| t.contains(&p))),
        Scalar::SplitPart => {
            let (Some(t), Some(d), Some(i)) =
                (text(args, 0, cx), text(args, 1, cx), num(args, 2, cx))
            else {
                return Value::Null;
            };
            if d.is_empty() || i < 1.0 {
                return Value::Null;
            }
            s(t.split(d.as_str()).nth(i as usize - 1).map(str::to_owned))
        }
        Scalar::RegexpExtract => {
            // The pattern is compiled at check time and passed as a `Matches` node.
            let (Some(t), Some(Expr::Matches(_, re, _))) = (text(args, 0, cx), args.get(1)) else {
                return Value::Null;
            };
            let group = num(args, 2, cx).map_or(if re.captures_len() > 1 { 1 } else { 0 }, |g| {
                g.max(0.0) as usize
            });
            s(re.captures(&t)
                .and_then(|c| c.get(group))
                .map(|m| m.as_str().to_owned()))
        }
        Scalar::Coalesce => args
            .iter()
            .map(|a| a.eval(cx))
            .find(|v| !v.is_null())
            .unwrap_or_default(),
        Scalar::NullIf => {
            let (x, y) = (
                args.first().map(|a| a.eval(cx)).unwrap_or_default(),
                args.get(1).map(|a| a.eval(cx)).unwrap_or_default(),
            );
            if x.compare(&y) == Some(Ordering::Equal) {
                Value::Null
            } else {
                x
            }
        }
        Scalar::Greatest | Scalar::Least => args
            .iter()
            .map(|a| a.eval(cx))
            .filter(|v| !v.is_null())
            .reduce(|x, y| {
                let keep_x = match x.compare(&y) {
                    Some(Ordering::Less) => f == Scalar::Least,
                    Some(_) => f == Scalar::Greatest,
                    None => true,
                };
                if keep_x {
                    x
                } else {
                    y
                }
            })
            .unwrap_or_default(),
        Scalar::Abs => n(num(args, 0, cx).map(f64::abs)),
        Scalar::Round => {
            let digits = num(args, 1, cx).unwrap_or(0.0).clamp(-10.0, 10.0) as i32;
            let scale = 10f64.powi(digits);
            n(num(args, 0, cx).map(|x| (x * scale).round() / scale))
        }
        Scalar::Floor => n(num(args, 0, cx).map(f64::floor)),
        Scalar::Ceil => n(num(args, 0, cx).map(f64::ceil)),
        Scalar::Sqrt => n(num(args, 0, cx).filter(|x| *x >= 0.0).map(f64::sqrt)),
        Scalar::Ln => n(num(args, 0, cx).filter(|x| *x > 0.0).map(f64::ln)),
        Scalar::Log10 => n(num(args, 0, cx).filter(|x| *x > 0.0).map(f64::log10)),
        Scalar::Power => n(num(args, 0, cx)
            .zip(num(args, 1, cx))
            .map(|(x, y)| x.powf(y))),
        Scalar::DependsOn | Scalar::UpstreamOf | Scalar::DownstreamOf | Scalar::Hops => {
            let (Some(a), Some(b), Some(g)) = (text(args, 0, cx), text(args, 1, cx), cx.graph)
            else {
                return Value::Null;
            };
            match f {
                Scalar::DependsOn => Value::Bool(g.depends_on(&a, &b)),
                Scalar::UpstreamOf => Value::Bool(g.upstream_of(&a, &b)),
                Scalar::DownstreamOf => Value::Bool(g.upstream_of(&b, &a)),
                _ => n(g.hops(&a, &b).map(|h| h as f64)),
            }
        }
    }
}

/// Compiles a SQL `LIKE` pattern (`%` any run, `_` one character, `\` escapes) to a regex.
pub fn like_regex(pattern: &str, case_insensitive: bool) -> Result<Regex, regex::Error> {
    let mut re = String::with_capacity(pattern.len() + 8);
    re.push_str(if case_insensitive { "(?is)^" } else { "(?s)^" });
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => re.push_str(".*"),
            '_' => re.push('.'),
            '\\' => {
                if let Some(next) = chars.next() {
                    re.push_str(&regex::escape(&next.to_string()));
                }
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(v: f64) -> Box<Expr> {
        Box::new(Expr::Lit(Value::Num(v)))
    }

    #[test]
    fn three_valued_logic() {
        let cx = Ctx {
            row: None,
            group: &[],
            aggs: &[],
            window: (0, 0),
            pair: None,
            graph: None,
            series: None,
        };
        let null = Box::new(Expr::Lit(Value::Null));
        let t = Box::new(Expr::Lit(Value::Bool(true)));
        let f = Box::new(Expr::Lit(Value::Bool(false)));
        assert!(Expr::Bin(BinOp::And, null.clone(), f.clone()).eval(&cx) == Value::Bool(false));
        assert!(Expr::Bin(BinOp::And, null.clone(), t.clone())
            .eval(&cx)
            .is_null());
        assert!(Expr::Bin(BinOp::Or, null.clone(), t).eval(&cx) == Value::Bool(true));
        assert!(Expr::Bin(BinOp::Gt, lit(2.0), null).eval(&cx).is_null());
        assert!(Expr::Bin(BinOp::Div, lit(1.0), lit(0.0))
            .eval(&cx)
            .is_null());
    }

    #[test]
    fn like_patterns() {
        let re = like_regex("%connection pool%exhausted%", false).unwrap();
        assert!(re.is_match("ERROR connection pool 'main' exhausted after 30s"));
        assert!(!re.is_match("Connection pool exhausted"));
        let re = like_regex("%connection pool%exhausted%", true).unwrap();
        assert!(re.is_match("Connection pool exhausted"));
        let re = like_regex("50_\\%", false).unwrap();
        assert!(re.is_match("503%"));
        assert!(!re.is_match("503x"));
        assert!(like_regex("a.b", false).unwrap().is_match("a.b"));
        assert!(!like_regex("a.b", false).unwrap().is_match("axb"));
    }
}
