//! Type-checks sqlparser expressions against a stream's schema and lowers them to [`Expr`].
//!
//! Row-level expressions (`WHERE`, `GROUP BY` keys, aggregate arguments, `DEFINE`) read the
//! current row; group-level ones (`SELECT` and `HAVING` of an aggregating rule) read group keys
//! and aggregate results, which this scope collects as it meets them.

use std::sync::Arc;

use sqlparser::ast::{
    self, AccessExpr, BinaryOperator, CastKind, DataType, DuplicateTreatment, FunctionArg,
    FunctionArgExpr, FunctionArguments, Spanned, Subscript, UnaryOperator,
};

use crate::aggregate::AggFn;
use crate::diagnostic::{suggest, Location, RuleError, SourceFile};
use crate::expr::{like_regex, BinOp, Expr, Scalar};
use crate::join::{JoinScope, SlotSource};
use crate::schema::StreamName;
use crate::syntax::interval_of;
use crate::value::{Type, Value};

/// Where an expression is being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Against the current row.
    Row,
    /// Against a group's keys and aggregates.
    Group,
}

/// One aggregate a rule computes.
#[derive(Clone, Debug)]
pub struct AggSpec {
    /// Which function.
    pub f: AggFn,
    /// Its row-level argument (`None` for `count(*)`).
    pub arg: Option<Expr>,
    /// How it was written (dedupes `count(*)` in SELECT and HAVING).
    pub text: String,
}

/// Names and aggregates in scope while checking one rule.
pub struct Scope<'a> {
    pub(crate) file: &'a SourceFile,
    pub(crate) stream: StreamName,
    /// Table alias (`FROM logs l`) or MATCH_RECOGNIZE pattern variables.
    pub(crate) qualifiers: Vec<String>,
    pub(crate) fallback: Location,
    /// `GROUP BY` keys: how written, lowered, type.
    pub(crate) keys: Vec<(String, Expr, Type)>,
    pub(crate) aggs: Vec<AggSpec>,
    /// SELECT aliases usable in HAVING.
    pub(crate) aliases: Vec<(String, Expr, Type)>,
    pub(crate) windowed: bool,
    /// For join rules: both sides, whose columns resolve to pair slots.
    pub(crate) join: Option<JoinScope>,
    /// How deep [`Scope::expr`] is: lowering recurses, and is stopped at [`MAX_DEPTH`].
    depth: usize,
}

/// How deeply expressions may nest (AND / OR chains of any length count as one level). Lowering
/// recurses once per level; this keeps it far from the end of a 2 MiB thread stack even in
/// debug builds, so that no input can overflow it.
pub(crate) const MAX_DEPTH: usize = 40;

/// Where an AST node starts, or the scope's fallback where sqlparser has no span for it.
pub(crate) fn at(node: &impl Spanned, fallback: Location) -> Location {
    let s = node.span().start;
    if s.line == 0 {
        fallback
    } else {
        s.into()
    }
}

/// Where an identifier starts.
pub(crate) fn ident_at(id: &ast::Ident, fallback: Location) -> Location {
    if id.span.start.line == 0 {
        fallback
    } else {
        id.span.start.into()
    }
}

const SCALARS: [(&str, Scalar); 31] = [
    ("depends_on", Scalar::DependsOn),
    ("upstream_of", Scalar::UpstreamOf),
    ("downstream_of", Scalar::DownstreamOf),
    ("hops", Scalar::Hops),
    ("lower", Scalar::Lower),
    ("upper", Scalar::Upper),
    ("length", Scalar::Length),
    ("char_length", Scalar::Length),
    ("trim", Scalar::Trim),
    ("concat", Scalar::Concat),
    ("substr", Scalar::Substr),
    ("substring", Scalar::Substr),
    ("replace", Scalar::Replace),
    ("starts_with", Scalar::StartsWith),
    ("ends_with", Scalar::EndsWith),
    ("contains", Scalar::Contains),
    ("split_part", Scalar::SplitPart),
    ("regexp_extract", Scalar::RegexpExtract),
    ("coalesce", Scalar::Coalesce),
    ("nullif", Scalar::NullIf),
    ("greatest", Scalar::Greatest),
    ("least", Scalar::Least),
    ("abs", Scalar::Abs),
    ("round", Scalar::Round),
    ("floor", Scalar::Floor),
    ("ceil", Scalar::Ceil),
    ("sqrt", Scalar::Sqrt),
    ("ln", Scalar::Ln),
    ("log10", Scalar::Log10),
    ("power", Scalar::Power),
    ("to_number", Scalar::ToNumber),
];

impl<'a> Scope<'a> {
    /// A scope over `stream`.
    pub fn new(file: &'a SourceFile, stream: StreamName, fallback: Location) -> Self {
        Scope {
            file,
            stream,
            qualifiers: Vec::new(),
            fallback,
            keys: Vec::new(),
            aggs: Vec::new(),
            aliases: Vec::new(),
            windowed: false,
            join: None,
            depth: 0,
        }
    }

    pub(crate) fn err(&self, node: &impl Spanned, message: impl Into<String>) -> RuleError {
        RuleError::new(self.file, at(node, self.fallback), message)
    }

    /// Lowers a boolean condition (`WHERE`, `HAVING`, `DEFINE`).
    pub fn condition(
        &mut self,
        e: &ast::Expr,
        mode: Mode,
        clause: &str,
    ) -> Result<Expr, RuleError> {
        let (x, t) = self.expr(e, mode)?;
        if !t.fits(Type::Bool) {
            return Err(self
                .err(
                    e,
                    format!("{clause} needs a condition, but this is a {}", t.name()),
                )
                .help("compare it with something, e.g. `value > 0.9`"));
        }
        Ok(x)
    }

    /// Lowers an expression, returning it with its type.
    pub fn expr(&mut self, e: &ast::Expr, mode: Mode) -> Result<(Expr, Type), RuleError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err(e, "expression nested too deeply").help(format!(
                "rules nest at most {MAX_DEPTH} levels; split long arithmetic, or use IN (...)"
            )));
        }
        self.depth += 1;
        let lowered = self.lower(e, mode);
        self.depth -= 1;
        lowered
    }

    fn lower(&mut self, e: &ast::Expr, mode: Mode) -> Result<(Expr, Type), RuleError> {
        use ast::Expr as A;
        if mode == Mode::Group {
            let text = e.to_string();
            if let Some((_, x, t)) = self
                .keys
                .iter()
                .find(|(k, _, _)| k.eq_ignore_ascii_case(&text))
            {
                return Ok((x.clone(), *t));
            }
        }
        Ok(match e {
            A::Identifier(id) => self.name(None, id, mode)?,
            A::CompoundIdentifier(ids) if ids.len() == 2 => {
                self.name(Some(&ids[0]), &ids[1], mode)?
            }
            A::CompoundIdentifier(_) => {
                return Err(self.err(e, format!("`{e}`: write `column` or `alias.column`")))
            }
            A::CompoundFieldAccess { root, access_chain } => {
                self.label(e, root, access_chain, mode)?
            }
            A::Value(v) => literal(self, e, &v.value)?,
            A::Interval(iv) => (
                Expr::Lit(Value::Num(self.interval(e, iv)? as f64)),
                Type::Interval,
            ),
            A::Nested(inner) => self.expr(inner, mode)?,
            A::UnaryOp { op, expr } => {
                let (x, t) = self.expr(expr, mode)?;
                match op {
                    UnaryOperator::Not => {
                        self.want(expr, t, Type::Bool, "NOT")?;
                        (Expr::Not(Box::new(x)), Type::Bool)
                    }
                    UnaryOperator::Minus => {
                        self.want(expr, t, Type::Num, "-")?;
                        (Expr::Neg(Box::new(x)), t)
                    }
                    UnaryOperator::Plus => (x, t),
                    _ => return Err(self.err(e, format!("operator `{op}` is not supported"))),
                }
            }
            A::BinaryOp { left, op, right } => self.binary(e, left, op, right, mode)?,
            A::Like {
                negated,
                expr,
                pattern,
                any: false,
                escape_char: None,
            }
            | A::ILike {
                negated,
                expr,
                pattern,
                any: false,
                escape_char: None,
            } => {
                let (x, t) = self.expr(expr, mode)?;
                self.want(expr, t, Type::Str, "LIKE")?;
                let p = self.string_literal(pattern, "a LIKE pattern")?;
                let re = like_regex(&p, matches!(e, A::ILike { .. })).map_err(|err| {
                    self.err(
                        &**pattern,
                        format!("bad LIKE pattern: {}", regex_problem(&err)),
                    )
                })?;
                (
                    Expr::Matches(Box::new(x), Box::new(re), *negated),
                    Type::Bool,
                )
            }
            A::RLike {
                negated,
                expr,
                pattern,
                ..
            } => self.regex_match(expr, pattern, *negated, false, mode)?,
            A::InList {
                expr,
                list,
                negated,
            } => {
                let (x, t) = self.expr(expr, mode)?;
                let mut items = Vec::with_capacity(list.len());
                for item in list {
                    let (y, u) = self.expr(item, mode)?;
                    self.comparable(item, t, u)?;
                    items.push(y);
                }
                (Expr::InList(Box::new(x), items, *negated), Type::Bool)
            }
            A::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let (x, t) = self.expr(expr, mode)?;
                let (lo, u) = self.expr(low, mode)?;
                let (hi, w) = self.expr(high, mode)?;
                self.comparable(low, t, u)?;
                self.comparable(high, t, w)?;
                (
                    Expr::Between(Box::new(x), Box::new(lo), Box::new(hi), *negated),
                    Type::Bool,
                )
            }
            A::IsNull(x) | A::IsNotNull(x) => {
                let (y, _) = self.expr(x, mode)?;
                (
                    Expr::IsNull(Box::new(y), matches!(e, A::IsNotNull(_))),
                    Type::Bool,
                )
            }
            A::IsTrue(x) | A::IsFalse(x) | A::IsNotTrue(x) | A::IsNotFalse(x) => {
                let (y, t) = self.expr(x, mode)?;
                let what = match e {
                    A::IsTrue(_) => "IS TRUE",
                    A::IsFalse(_) => "IS FALSE",
                    A::IsNotTrue(_) => "IS NOT TRUE",
                    _ => "IS NOT FALSE",
                };
                self.want(x, t, Type::Bool, what)?;
                // Never NULL: `NULL IS TRUE` is false, `NULL IS NOT TRUE` true.
                let lit = Expr::Lit(Value::Bool(matches!(e, A::IsTrue(_) | A::IsNotTrue(_))));
                let is = Expr::Call(
                    Scalar::Coalesce,
                    vec![
                        Expr::Bin(BinOp::Eq, Box::new(y), Box::new(lit)),
                        Expr::Lit(Value::Bool(false)),
                    ],
                );
                match e {
                    A::IsNotTrue(_) | A::IsNotFalse(_) => (Expr::Not(Box::new(is)), Type::Bool),
                    _ => (is, Type::Bool),
                }
            }
            A::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let operand = match operand {
                    Some(o) => Some(Box::new(self.expr(o, mode)?.0)),
                    None => None,
                };
                let mut branches = Vec::new();
                let mut ty = Type::Any;
                for c in conditions {
                    let when = if operand.is_some() {
                        self.expr(&c.condition, mode)?.0
                    } else {
                        self.condition(&c.condition, mode, "WHEN")?
                    };
                    let (then, t) = self.expr(&c.result, mode)?;
                    if ty == Type::Any {
                        ty = t;
                    }
                    branches.push((when, then));
                }
                let otherwise = match else_result {
                    Some(x) => Some(Box::new(self.expr(x, mode)?.0)),
                    None => None,
                };
                (Expr::Case(operand, branches, otherwise), ty)
            }
            A::Cast {
                expr,
                data_type,
                kind: CastKind::Cast | CastKind::TryCast | CastKind::DoubleColon,
                ..
            } => {
                let (x, _) = self.expr(expr, mode)?;
                match data_type {
                    DataType::Text
                    | DataType::String(_)
                    | DataType::Varchar(_)
                    | DataType::Char(_) => (Expr::Call(Scalar::ToText, vec![x]), Type::Str),
                    DataType::Int(_)
                    | DataType::Integer(_)
                    | DataType::BigInt(_)
                    | DataType::Int64 => (Expr::Call(Scalar::ToInteger, vec![x]), Type::Num),
                    DataType::Double(_)
                    | DataType::Float(_)
                    | DataType::Real
                    | DataType::Decimal(_)
                    | DataType::Numeric(_)
                    | DataType::DoublePrecision
                    | DataType::Float64 => (Expr::Call(Scalar::ToNumber, vec![x]), Type::Num),
                    other => {
                        return Err(self
                            .err(e, format!("cannot CAST to {other}"))
                            .help("CAST to DOUBLE or VARCHAR"))
                    }
                }
            }
            A::Function(f) => self.function(e, f, mode)?,
            // sqlparser gives FLOOR and CEIL their own nodes (for `FLOOR(ts TO DAY)`).
            A::Floor { expr, .. } | A::Ceil { expr, .. } => {
                let (x, t) = self.expr(expr, mode)?;
                self.want(expr, t, Type::Num, "FLOOR / CEIL")?;
                let f = if matches!(e, A::Floor { .. }) {
                    Scalar::Floor
                } else {
                    Scalar::Ceil
                };
                (Expr::Call(f, vec![x]), Type::Num)
            }
            // sqlparser gives SUBSTRING and TRIM their own nodes too.
            A::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let (x, t) = self.expr(expr, mode)?;
                self.want(expr, t, Type::Str, "SUBSTR")?;
                let mut args = vec![x];
                let from = match substring_from {
                    Some(f) => f,
                    None => return Err(self.err(e, "write SUBSTR(text, start[, length])")),
                };
                for a in std::iter::once(from).chain(substring_for) {
                    let (y, u) = self.expr(a, mode)?;
                    self.want(a, u, Type::Num, "SUBSTR")?;
                    args.push(y);
                }
                (Expr::Call(Scalar::Substr, args), Type::Str)
            }
            A::Trim {
                expr,
                trim_where: None,
                trim_what: None,
                trim_characters: None,
            } => {
                let (x, t) = self.expr(expr, mode)?;
                self.want(expr, t, Type::Str, "TRIM")?;
                (Expr::Call(Scalar::Trim, vec![x]), Type::Str)
            }
            other => return Err(self
                .err(other, format!("`{other}` is not supported in rules"))
                .help(
                    "rules support columns, literals, arithmetic, comparisons, LIKE, IN, BETWEEN, \
                     CASE, CAST and functions (see docs/rules.md)",
                )),
        })
    }

    fn want(&self, node: &ast::Expr, got: Type, want: Type, what: &str) -> Result<(), RuleError> {
        if got.fits(want) {
            Ok(())
        } else {
            Err(self.err(
                node,
                format!(
                    "{what} needs a {}, but `{node}` is a {}",
                    want.name(),
                    got.name()
                ),
            ))
        }
    }

    fn comparable(&self, node: &ast::Expr, a: Type, b: Type) -> Result<(), RuleError> {
        let numeric = |t: Type| matches!(t, Type::Num | Type::Time | Type::Interval | Type::Any);
        if a.fits(b) || b.fits(a) || (numeric(a) && numeric(b)) {
            return Ok(());
        }
        let mut e = self.err(
            node,
            format!("cannot compare a {} with a {}", a.name(), b.name()),
        );
        if a == Type::Str || b == Type::Str {
            e = e.help("quote strings ('critical') and leave numbers bare (0.9)");
        }
        Err(e)
    }

    fn name(
        &mut self,
        qualifier: Option<&ast::Ident>,
        id: &ast::Ident,
        mode: Mode,
    ) -> Result<(Expr, Type), RuleError> {
        if let Some(q) = qualifier {
            self.check_qualifier(q)?;
        }
        let name = id.value.as_str();
        if mode == Mode::Group {
            if name.eq_ignore_ascii_case("window_start") && self.windowed {
                return Ok((Expr::WindowStart, Type::Time));
            }
            if name.eq_ignore_ascii_case("window_end") && self.windowed {
                return Ok((Expr::WindowEnd, Type::Time));
            }
            if let Some((_, x, t)) = self
                .aliases
                .iter()
                .find(|(a, _, _)| a.eq_ignore_ascii_case(name))
            {
                return Ok((x.clone(), *t));
            }
            if let Some(c) = self.stream.column(name) {
                return Err(RuleError::new(
                    self.file,
                    ident_at(id, self.fallback),
                    format!(
                        "column `{}` must appear in GROUP BY or inside an aggregate",
                        c.as_str()
                    ),
                )
                .help(format!(
                    "add `{0}` to GROUP BY, or use e.g. last({0})",
                    c.as_str()
                )));
            }
        } else if let Some(join) = self.join.as_mut() {
            return join
                .resolve(qualifier, name, SlotSource::Col)
                .map_err(|(m, help)| {
                    with_help(
                        RuleError::new(self.file, ident_at(id, self.fallback), m),
                        help,
                    )
                });
        } else if let Some(c) = self.stream.column(name) {
            return Ok((Expr::Col(c), c.ty()));
        }
        let mut candidates: Vec<&str> = self.stream.columns().iter().map(|c| c.as_str()).collect();
        candidates.extend(self.aliases.iter().map(|(a, _, _)| a.as_str()));
        let mut err = RuleError::new(
            self.file,
            ident_at(id, self.fallback),
            format!("unknown column `{name}` in `{}`", self.stream.as_str()),
        );
        if id.quote_style == Some('"') {
            err = err.help(format!(
                "\"{name}\" is a quoted name; strings use single quotes: '{name}'"
            ));
        } else if let Some(s) = suggest(name, candidates.iter().copied()) {
            err = err.help(format!("did you mean `{s}`?"));
        } else {
            err = err.help(format!(
                "`{}` has: {}",
                self.stream.as_str(),
                candidates.join(", ")
            ));
        }
        Err(err)
    }

    /// `q` in `q.column` must be the stream, its alias, or a pattern variable.
    fn check_qualifier(&self, q: &ast::Ident) -> Result<(), RuleError> {
        if self
            .qualifiers
            .iter()
            .any(|x| x.eq_ignore_ascii_case(&q.value))
        {
            return Ok(());
        }
        let known: Vec<&str> = self.qualifiers.iter().map(String::as_str).collect();
        let mut err = RuleError::new(
            self.file,
            ident_at(q, self.fallback),
            format!("unknown table or pattern variable `{}`", q.value),
        );
        if let Some(s) = suggest(&q.value, known.iter().copied()) {
            err = err.help(format!("did you mean `{s}`?"));
        } else if !known.is_empty() {
            err = err.help(format!("in scope: {}", known.join(", ")));
        }
        Err(err)
    }

    fn label(
        &mut self,
        e: &ast::Expr,
        root: &ast::Expr,
        chain: &[AccessExpr],
        mode: Mode,
    ) -> Result<(Expr, Type), RuleError> {
        // `labels['k']`, or `l.labels['k']`, which sqlparser reads as `l` then `.labels['k']`.
        let (map, qualifier, chain) = match (root, chain) {
            (
                ast::Expr::Identifier(q),
                [AccessExpr::Dot(ast::Expr::Identifier(map)), rest @ ..],
            ) => (map, Some(q), rest),
            (ast::Expr::Identifier(id), _) => (id, None::<&ast::Ident>, chain),
            (ast::Expr::CompoundIdentifier(ids), _) if ids.len() == 2 => {
                (&ids[1], Some(&ids[0]), chain)
            }
            _ => {
                return Err(self.err(
                    e,
                    "only labels['key'] and annotations['key'] can be indexed",
                ))
            }
        };
        if let Some(q) = qualifier {
            self.check_qualifier(q)?;
        }
        if self.join.is_some() && mode == Mode::Row {
            let [AccessExpr::Subscript(Subscript::Index { index })] = chain else {
                return Err(self.err(e, "write labels['key'] with one quoted key"));
            };
            let key: Arc<str> = Arc::from(self.string_literal(index, "a label key")?.as_str());
            let (file, at) = (self.file, at(e, self.fallback));
            let join = self
                .join
                .as_mut()
                .ok_or_else(|| RuleError::new(file, at, "internal: no join"))?;
            return join
                .resolve(qualifier, &map.value, |c| SlotSource::Label(c, key.clone()))
                .map_err(|(m, help)| with_help(RuleError::new(file, at, m), help));
        }
        let column = match self.stream.column(&map.value) {
            Some(c) if c.ty() == Type::Map => c,
            _ => {
                return Err(self
                    .err(
                        root,
                        format!(
                            "`{}` is not a label map of `{}`",
                            map.value,
                            self.stream.as_str()
                        ),
                    )
                    .help("index labels['key'] (and annotations['key'] on alerts)"))
            }
        };
        if mode == Mode::Group {
            return Err(self
                .err(
                    e,
                    format!("`{e}` must appear in GROUP BY or inside an aggregate"),
                )
                .help(format!("add `{e}` to GROUP BY")));
        }
        let [AccessExpr::Subscript(Subscript::Index { index })] = chain else {
            return Err(self.err(e, "write labels['key'] with one quoted key"));
        };
        let key = self.string_literal(index, "a label key")?;
        Ok((Expr::Label(column, Arc::from(key.as_str())), Type::Str))
    }

    pub(crate) fn string_literal(&self, e: &ast::Expr, what: &str) -> Result<String, RuleError> {
        match e {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => {
                    Ok(s.clone())
                }
                _ => Err(self.err(
                    e,
                    format!("expected {what} as a quoted string, found `{e}`"),
                )),
            },
            _ => Err(self.err(
                e,
                format!("expected {what} as a quoted string, found `{e}`"),
            )),
        }
    }

    /// An interval in milliseconds.
    pub(crate) fn interval(&self, node: &ast::Expr, iv: &ast::Interval) -> Result<u64, RuleError> {
        let amount = match &*iv.value {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(s) => s.clone(),
                ast::Value::Number(n, _) => n.to_string(),
                _ => String::new(),
            },
            _ => String::new(),
        };
        let unit = iv.leading_field.as_ref().map(|f| f.to_string());
        interval_of(&amount, unit.as_deref())
            .map(|d| d.as_millis() as u64)
            .map_err(|e| {
                let (message, help) = e.describe(&node.to_string());
                self.err(node, message).help(help)
            })
    }

    /// `INTERVAL ...` as an argument (window sizes).
    pub(crate) fn interval_arg(&self, e: &ast::Expr) -> Result<u64, RuleError> {
        match e {
            ast::Expr::Interval(iv) => self.interval(e, iv),
            ast::Expr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(s) => interval_of(s, None)
                    .map(|d| d.as_millis() as u64)
                    .map_err(|err| {
                        let (message, help) = err.describe(&e.to_string());
                        self.err(e, message).help(help)
                    }),
                _ => Err(self
                    .err(e, format!("expected an interval, found `{e}`"))
                    .help("write INTERVAL '1' MINUTE")),
            },
            _ => Err(self
                .err(e, format!("expected an interval, found `{e}`"))
                .help("write INTERVAL '1' MINUTE")),
        }
    }

    fn regex_match(
        &mut self,
        expr: &ast::Expr,
        pattern: &ast::Expr,
        negated: bool,
        insensitive: bool,
        mode: Mode,
    ) -> Result<(Expr, Type), RuleError> {
        let (x, t) = self.expr(expr, mode)?;
        self.want(expr, t, Type::Str, "a regex match")?;
        let p = self.string_literal(pattern, "a regex")?;
        let p = if insensitive { format!("(?i){p}") } else { p };
        let re = regex::Regex::new(&p)
            .map_err(|err| self.err(pattern, format!("bad regex: {}", regex_problem(&err))))?;
        Ok((
            Expr::Matches(Box::new(x), Box::new(re), negated),
            Type::Bool,
        ))
    }

    fn binary(
        &mut self,
        e: &ast::Expr,
        left: &ast::Expr,
        op: &BinaryOperator,
        right: &ast::Expr,
        mode: Mode,
    ) -> Result<(Expr, Type), RuleError> {
        use BinaryOperator as B;
        match op {
            B::PGRegexMatch | B::PGRegexIMatch | B::PGRegexNotMatch | B::PGRegexNotIMatch => {
                let negated = matches!(op, B::PGRegexNotMatch | B::PGRegexNotIMatch);
                let insensitive = matches!(op, B::PGRegexIMatch | B::PGRegexNotIMatch);
                return self.regex_match(left, right, negated, insensitive, mode);
            }
            _ => {}
        }
        if matches!(op, B::And | B::Or) {
            // A chain `a AND b AND c ...` (left-deep in the AST) is lowered term by term and
            // rebuilt balanced: no recursion per term, here or when it is evaluated.
            let mut terms = vec![right];
            let mut rest = left;
            while let ast::Expr::BinaryOp {
                left: l,
                op: o,
                right: r,
            } = rest
            {
                if o != op {
                    break;
                }
                terms.push(r);
                rest = l;
            }
            terms.push(rest);
            terms.reverse();
            let mut lowered = Vec::with_capacity(terms.len());
            for term in terms {
                let (x, t) = self.expr(term, mode)?;
                self.want(term, t, Type::Bool, &op.to_string())?;
                lowered.push(x);
            }
            let bop = if *op == B::And { BinOp::And } else { BinOp::Or };
            let chain = Expr::balanced(bop, lowered)
                .ok_or_else(|| self.err(e, "internal: empty AND / OR"))?;
            return Ok((chain, Type::Bool));
        }
        let (a, ta) = self.expr(left, mode)?;
        let (b, tb) = self.expr(right, mode)?;
        let (bop, ty) = match op {
            B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq => {
                self.comparable(e, ta, tb)?;
                let bop = match op {
                    B::Eq => BinOp::Eq,
                    B::NotEq => BinOp::NotEq,
                    B::Lt => BinOp::Lt,
                    B::LtEq => BinOp::LtEq,
                    B::Gt => BinOp::Gt,
                    _ => BinOp::GtEq,
                };
                (bop, Type::Bool)
            }
            B::StringConcat => (BinOp::Concat, Type::Str),
            B::Plus | B::Minus | B::Multiply | B::Divide | B::Modulo => {
                for (node, t) in [(left, ta), (right, tb)] {
                    if !matches!(t, Type::Num | Type::Time | Type::Interval | Type::Any) {
                        return Err(self.err(
                            node,
                            format!("arithmetic needs numbers, but `{node}` is a {}", t.name()),
                        ));
                    }
                }
                let ty = match (op, ta, tb) {
                    (B::Plus | B::Minus, Type::Time, Type::Interval | Type::Num) => Type::Time,
                    (B::Minus, Type::Time, Type::Time) => Type::Interval,
                    _ => Type::Num,
                };
                let bop = match op {
                    B::Plus => BinOp::Add,
                    B::Minus => BinOp::Sub,
                    B::Multiply => BinOp::Mul,
                    B::Divide => BinOp::Div,
                    _ => BinOp::Mod,
                };
                (bop, ty)
            }
            other => return Err(self.err(e, format!("operator `{other}` is not supported"))),
        };
        Ok((Expr::Bin(bop, Box::new(a), Box::new(b)), ty))
    }

    fn function(
        &mut self,
        e: &ast::Expr,
        f: &ast::Function,
        mode: Mode,
    ) -> Result<(Expr, Type), RuleError> {
        let name = f.name.to_string().to_ascii_lowercase();
        let (args, distinct) = match &f.args {
            FunctionArguments::List(list) if !list.clauses.is_empty() => {
                return Err(self.err(
                    e,
                    format!("`{name}`: clauses inside the arguments are not supported"),
                ))
            }
            FunctionArguments::List(list) => (
                list.args.as_slice(),
                matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct)),
            ),
            FunctionArguments::None => (&[][..], false),
            FunctionArguments::Subquery(_) => {
                return Err(self.err(e, "subqueries are not supported in rules"))
            }
        };
        let star = matches!(args, [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)]);
        let plain: Vec<&ast::Expr> = args
            .iter()
            .filter_map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x),
                _ => None,
            })
            .collect();
        if !star && plain.len() != args.len() {
            return Err(self.err(
                e,
                format!("`{name}`: only plain positional arguments are supported"),
            ));
        }
        if f.over.is_some() {
            return Err(self
                .err(e, format!("`{name}` OVER (...) is not supported in rules"))
                .help("aggregate in windows: GROUP BY ..., TUMBLE(ts, INTERVAL '1' MINUTE)"));
        }
        if f.filter.is_some()
            || !f.within_group.is_empty()
            || f.null_treatment.is_some()
            || !matches!(f.parameters, FunctionArguments::None)
        {
            return Err(self.err(
                e,
                format!(
                    "`{name}`: FILTER, WITHIN GROUP, IGNORE NULLS and parameters are not supported"
                ),
            ));
        }
        if distinct && (name != "count" || star) {
            return Err(self
                .err(e, format!("`{name}(DISTINCT ...)` is not supported"))
                .help("DISTINCT is for count(DISTINCT column)"));
        }
        if star && AggFn::parse(&name, true, false).is_none() {
            let mut err = self.err(e, format!("`{name}` does not take `*`"));
            if AggFn::parse(&name, false, false).is_some() {
                err = err.help(format!(
                    "write {name}(column); only count(*) and rate(*) count rows"
                ));
            }
            return Err(err);
        }
        if matches!(name.as_str(), "tumble" | "hop" | "session") {
            return Err(self.err(
                e,
                format!("{} windows belong in GROUP BY", name.to_uppercase()),
            ));
        }
        if matches!(name.as_str(), "window_start" | "window_end")
            && mode == Mode::Group
            && self.windowed
        {
            return Ok((
                if name == "window_start" {
                    Expr::WindowStart
                } else {
                    Expr::WindowEnd
                },
                Type::Time,
            ));
        }
        if let Some(mut agg) = AggFn::parse(&name, star, distinct) {
            if mode == Mode::Row {
                return Err(self
                    .err(e, format!("aggregate `{name}` is not allowed here"))
                    .help(
                        "aggregates go in SELECT and HAVING of a rule with GROUP BY and a window",
                    ));
            }
            let text = e.to_string();
            let quantile = matches!(name.as_str(), "percentile" | "quantile");
            let most = if quantile { 2 } else { 1 };
            if !star && (plain.is_empty() || plain.len() > most) {
                return Err(self
                    .err(
                        e,
                        format!("`{name}` takes {}", arguments(most, most, plain.len())),
                    )
                    .help(if quantile {
                        "write percentile(duration_ms, 0.99)"
                    } else {
                        "aggregates take one column, e.g. max(value)"
                    }));
            }
            let arg = match plain.first() {
                Some(x) if !star => {
                    let (arg, t) = self.expr(x, Mode::Row)?;
                    if matches!(
                        agg,
                        AggFn::Sum
                            | AggFn::Avg
                            | AggFn::Stddev
                            | AggFn::Percentile(_)
                            | AggFn::Rate
                    ) {
                        self.want(x, t, Type::Num, &format!("`{name}`"))?;
                    }
                    Some(arg)
                }
                _ => None,
            };
            if let AggFn::Percentile(_) = agg {
                if name == "percentile" || name == "quantile" {
                    let q = match plain.get(1) {
                        Some(ast::Expr::Value(v)) => match &v.value {
                            ast::Value::Number(n, _) => n.to_string().parse::<f64>().ok(),
                            _ => None,
                        },
                        _ => None,
                    };
                    let q = q.map(|q| if q > 1.0 { q / 100.0 } else { q });
                    match q {
                        Some(q) if q > 0.0 && q <= 1.0 => agg = AggFn::Percentile(q),
                        _ => {
                            return Err(self
                                .err(e, format!("`{name}` needs a quantile between 0 and 1"))
                                .help("write percentile(duration_ms, 0.99) or p99(duration_ms)"))
                        }
                    }
                }
            }
            let i = match self
                .aggs
                .iter()
                .position(|a| a.text.eq_ignore_ascii_case(&text))
            {
                Some(i) => i,
                None => {
                    self.aggs.push(AggSpec { f: agg, arg, text });
                    self.aggs.len() - 1
                }
            };
            let ty = match agg {
                AggFn::Min | AggFn::Max | AggFn::First | AggFn::Last => Type::Any,
                _ => Type::Num,
            };
            return Ok((Expr::Agg(i), ty));
        }
        if name == "regexp_like" || name == "regexp_extract" {
            let most = if name == "regexp_like" { 2 } else { 3 };
            let (Some(subject), Some(pattern), true) =
                (plain.first(), plain.get(1), plain.len() <= most)
            else {
                return Err(self
                    .err(
                        e,
                        format!("`{name}` takes {}", arguments(2, most, plain.len())),
                    )
                    .help(format!("write {name}(text, 'regex')")));
            };
            let (m, _) = self.regex_match(subject, pattern, false, false, mode)?;
            if name == "regexp_like" {
                return Ok((m, Type::Bool));
            }
            let (x, _) = self.expr(subject, mode)?;
            let Expr::Matches(_, re, _) = m else {
                return Err(self.err(e, "internal: regex did not compile"));
            };
            let mut call = vec![
                x,
                Expr::Matches(Box::new(Expr::Lit(Value::Null)), re, false),
            ];
            if let Some(g) = plain.get(2) {
                call.push(self.expr(g, mode)?.0);
            }
            return Ok((Expr::Call(Scalar::RegexpExtract, call), Type::Str));
        }
        let Some((_, scalar)) = SCALARS.iter().find(|(n, _)| *n == name) else {
            let mut names: Vec<&str> = SCALARS.iter().map(|(n, _)| *n).collect();
            names.extend(AggFn::NAMES);
            names.extend([
                "regexp_like",
                "regexp_extract",
                "window_start",
                "window_end",
            ]);
            let mut err = self.err(e, format!("unknown function `{name}`"));
            if let Some(s) = suggest(&name, names.iter().copied()) {
                err = err.help(format!("did you mean `{s}`?"));
            }
            return Err(err);
        };
        let (least, most) = scalar_arity(*scalar);
        if plain.len() < least || plain.len() > most {
            return Err(self.err(
                e,
                format!("`{name}` takes {}", arguments(least, most, plain.len())),
            ));
        }
        let mut lowered = Vec::with_capacity(plain.len());
        let mut first = Type::Any;
        for (i, a) in plain.iter().enumerate() {
            let (x, t) = self.expr(a, mode)?;
            if i == 0 {
                first = t;
            }
            lowered.push(x);
        }
        let ty = match scalar {
            Scalar::Length
            | Scalar::Abs
            | Scalar::Round
            | Scalar::Floor
            | Scalar::Ceil
            | Scalar::Sqrt
            | Scalar::Ln
            | Scalar::Log10
            | Scalar::Power
            | Scalar::ToNumber => Type::Num,
            Scalar::StartsWith
            | Scalar::EndsWith
            | Scalar::Contains
            | Scalar::DependsOn
            | Scalar::UpstreamOf
            | Scalar::DownstreamOf => Type::Bool,
            Scalar::Hops => Type::Num,
            Scalar::Coalesce | Scalar::NullIf | Scalar::Greatest | Scalar::Least => first,
            _ => Type::Str,
        };
        Ok((Expr::Call(*scalar, lowered), ty))
    }
}

/// The regex crate's error in one line: its syntax errors draw the pattern with a caret over
/// several lines, and end with `error: what`.
fn regex_problem(err: &regex::Error) -> String {
    let text = err.to_string();
    let last = text.lines().last().unwrap_or_default().trim();
    last.strip_prefix("error: ").unwrap_or(last).to_string()
}

/// How many arguments a scalar function takes: (fewest, most).
fn scalar_arity(f: Scalar) -> (usize, usize) {
    use Scalar as S;
    match f {
        S::Concat | S::Coalesce | S::Greatest | S::Least => (1, usize::MAX),
        S::Substr | S::RegexpExtract => (2, 3),
        S::Round => (1, 2),
        S::Replace | S::SplitPart => (3, 3),
        S::StartsWith
        | S::EndsWith
        | S::Contains
        | S::NullIf
        | S::Power
        | S::DependsOn
        | S::UpstreamOf
        | S::DownstreamOf
        | S::Hops => (2, 2),
        _ => (1, 1),
    }
}

/// `1 argument, got 3`, `2 or 3 arguments, got 1`, `at least 1 argument, got 0`.
fn arguments(least: usize, most: usize, got: usize) -> String {
    let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
    let want = if least == most {
        format!("{least} {}", plural(least))
    } else if most == usize::MAX {
        format!("at least {least} {}", plural(least))
    } else if most == least + 1 {
        format!("{least} or {most} arguments")
    } else {
        format!("{least} to {most} arguments")
    };
    format!("{want}, got {got}")
}

/// Adds a help line when there is one.
fn with_help(e: RuleError, help: Option<String>) -> RuleError {
    match help {
        Some(h) => e.help(h),
        None => e,
    }
}

fn literal(scope: &Scope<'_>, node: &ast::Expr, v: &ast::Value) -> Result<(Expr, Type), RuleError> {
    Ok(match v {
        ast::Value::Number(n, _) => match n.to_string().parse::<f64>() {
            Ok(x) => (Expr::Lit(Value::Num(x)), Type::Num),
            Err(_) => return Err(scope.err(node, format!("`{n}` is not a number"))),
        },
        ast::Value::SingleQuotedString(s) => (Expr::Lit(Value::str(s)), Type::Str),
        ast::Value::DoubleQuotedString(s) => {
            return Err(scope
                .err(
                    node,
                    format!("\"{s}\" is a quoted identifier, not a string"),
                )
                .help(format!("strings use single quotes: '{s}'")))
        }
        ast::Value::Boolean(b) => (Expr::Lit(Value::Bool(*b)), Type::Bool),
        ast::Value::Null => (Expr::Lit(Value::Null), Type::Any),
        other => return Err(scope.err(node, format!("literal `{other}` is not supported"))),
    })
}
