//! Time-bounded joins of two streams (Flink's interval joins):
//! `FROM alerts a JOIN logs l ON l.service = a.service AND l.ts BETWEEN a.ts - INTERVAL '5'
//! MINUTE AND a.ts`.
//!
//! Stage one sends each side's rows (only the columns the rule reads) keyed by the equality
//! terms of `ON`; stage two keeps each key's recent rows of both sides for as long as the time
//! bound allows and pairs every new row with the other side's. A join without equality terms
//! runs as one group. A join without a time bound is an error: its state would grow forever.

use std::collections::VecDeque;
use std::sync::Arc;

use sqlparser::ast::{self, BinaryOperator, JoinConstraint, JoinOperator, TableFactor};

use crate::check::{at, Mode, Scope};
use crate::diagnostic::{suggest, RuleError};
use crate::evidence::Evidence;
use crate::expr::{BinOp, Expr};
use crate::schema::{Column, StreamName};
use crate::syntax::MAX_INTERVAL;
use crate::value::{Type, Value};

/// Rows kept per side and key; the oldest go first beyond it.
const MAX_BUFFERED: usize = 10_000;

/// What one pair slot reads from its side's row.
#[derive(Clone, Debug)]
pub enum SlotSource {
    /// A column.
    Col(Column),
    /// `labels['key']` / `annotations['key']`.
    Label(Column, Arc<str>),
}

impl SlotSource {
    fn row_expr(&self) -> Expr {
        match self {
            SlotSource::Col(c) => Expr::Col(*c),
            SlotSource::Label(c, k) => Expr::Label(*c, k.clone()),
        }
    }

    fn same(&self, other: &SlotSource) -> bool {
        match (self, other) {
            (SlotSource::Col(a), SlotSource::Col(b)) => a == b,
            (SlotSource::Label(a, x), SlotSource::Label(b, y)) => a == b && x == y,
            _ => false,
        }
    }
}

/// One side while checking.
#[derive(Clone, Debug)]
pub struct JoinSide {
    stream: StreamName,
    names: Vec<String>,
    slots: Vec<SlotSource>,
}

/// Both sides while checking: column names resolve to pair slots.
#[derive(Clone, Debug)]
pub struct JoinScope {
    sides: [JoinSide; 2],
}

impl JoinScope {
    /// Resolves `[qualifier.]name` to `Expr::Slot`, allocating the slot; an error is a message
    /// and perhaps a suggestion.
    pub(crate) fn resolve(
        &mut self,
        qualifier: Option<&ast::Ident>,
        name: &str,
        source: impl Fn(Column) -> SlotSource,
    ) -> Result<(Expr, Type), (String, Option<String>)> {
        let side = match qualifier {
            Some(q) => self
                .sides
                .iter()
                .position(|s| s.names.iter().any(|n| n.eq_ignore_ascii_case(&q.value)))
                .ok_or_else(|| (format!("unknown table `{}`", q.value), None))?,
            None => {
                let has: Vec<usize> = (0..2)
                    .filter(|&i| self.sides[i].stream.column(name).is_some())
                    .collect();
                match has.as_slice() {
                    [one] => *one,
                    [_, _] => {
                        let side = |i: usize| {
                            self.sides[i]
                                .names
                                .last()
                                .map_or("left", String::as_str)
                                .to_string()
                        };
                        return Err((
                            format!("`{name}` is ambiguous in a join"),
                            Some(format!("write {}.{name} or {}.{name}", side(0), side(1))),
                        ));
                    }
                    _ => return Err(self.unknown(0, name)),
                }
            }
        };
        let column = self.sides[side]
            .stream
            .column(name)
            .ok_or_else(|| self.unknown(side, name))?;
        let src = source(column);
        if matches!(src, SlotSource::Label(..)) && column.ty() != Type::Map {
            return Err((
                format!(
                    "`{name}` is not a label map of `{}`",
                    self.sides[side].stream.as_str()
                ),
                Some("index labels['key'] (and annotations['key'] on alerts)".into()),
            ));
        }
        let ty = match src {
            SlotSource::Col(c) => c.ty(),
            SlotSource::Label(..) => Type::Str,
        };
        let slots = &mut self.sides[side].slots;
        let i = match slots.iter().position(|s| s.same(&src)) {
            Some(i) => i,
            None => {
                slots.push(src);
                slots.len() - 1
            }
        };
        Ok((Expr::Slot(side as u8, i as u16), ty))
    }

    fn unknown(&self, side: usize, name: &str) -> (String, Option<String>) {
        let s = &self.sides[side];
        let cols: Vec<&str> = s.stream.columns().iter().map(|c| c.as_str()).collect();
        let help = match suggest(name, cols.iter().copied()) {
            Some(x) => format!("did you mean `{x}`?"),
            None => format!("`{}` has: {}", s.stream.as_str(), cols.join(", ")),
        };
        (
            format!("unknown column `{name}` in `{}`", s.stream.as_str()),
            Some(help),
        )
    }
}

/// A checked join.
#[derive(Clone, Debug)]
pub struct JoinPlan {
    /// Left and right streams.
    pub streams: [StreamName; 2],
    /// One-sided conditions, applied where the rows are (row-level).
    pub filters: [Option<Expr>; 2],
    /// Equality keys per side (row-level), pairwise.
    pub keys: [Vec<Expr>; 2],
    /// What each side sends: the columns the rule reads (row-level).
    pub slots: [Vec<Expr>; 2],
    /// `right.ts - left.ts` must lie in `[lower, upper]` ms.
    pub lower: i64,
    /// See `lower`.
    pub upper: i64,
    /// Conditions across the sides (pair-level).
    pub residual: Option<Expr>,
    /// How the key columns are written (`service`), for GROUP BY and output names.
    pub key_names: Vec<(String, String)>,
}

fn table(scope: &Scope<'_>, t: &TableFactor) -> Result<(StreamName, Vec<String>), RuleError> {
    let TableFactor::Table { name, alias, .. } = t else {
        return Err(scope.err(t, "a join reads streams by name"));
    };
    if let Some(loc) = crate::plan::table_extras(t) {
        return Err(RuleError::new(
            scope.file,
            loc.unwrap_or(scope.fallback),
            "a stream takes no arguments, hints, column aliases or TABLESAMPLE",
        ));
    }
    let text = name.to_string();
    let stream = StreamName::parse(&text).ok_or_else(|| {
        let e = RuleError::new(
            scope.file,
            at(name, scope.fallback),
            format!("unknown stream `{text}`"),
        );
        match suggest(&text, StreamName::ALL.iter().map(|s| s.as_str())) {
            Some(s) => e.help(format!("did you mean `{s}`?")),
            None => e,
        }
    })?;
    let mut names = vec![stream.as_str().to_string()];
    if let Some(a) = alias {
        names.push(a.name.value.clone());
    }
    Ok((stream, names))
}

/// The terms of `a AND b AND ...`, in order (without recursion: chains can be long).
fn ast_conjuncts<'e>(e: &'e ast::Expr, out: &mut Vec<&'e ast::Expr>) {
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match e {
            ast::Expr::BinaryOp {
                left,
                op: BinaryOperator::And,
                right,
            } => {
                stack.push(right);
                stack.push(left);
            }
            ast::Expr::Nested(inner) => stack.push(inner),
            other => out.push(other),
        }
    }
}

/// Which sides an expression reads (bit 0 left, bit 1 right).
fn sides_of(e: &Expr) -> u8 {
    let mut bits = 0;
    e.visit(&mut |x| {
        if let Expr::Slot(s, _) = x {
            bits |= 1 << s;
        }
    });
    bits
}

/// Rewrites a one-sided pair expression to read the row directly.
fn to_row(e: &Expr, slots: &[SlotSource]) -> Expr {
    match e {
        Expr::Slot(_, i) => slots
            .get(*i as usize)
            .map_or(Expr::Lit(Value::Null), SlotSource::row_expr),
        Expr::Not(x) => Expr::Not(Box::new(to_row(x, slots))),
        Expr::Neg(x) => Expr::Neg(Box::new(to_row(x, slots))),
        Expr::Bin(op, a, b) => {
            Expr::Bin(*op, Box::new(to_row(a, slots)), Box::new(to_row(b, slots)))
        }
        Expr::Matches(x, re, n) => Expr::Matches(Box::new(to_row(x, slots)), re.clone(), *n),
        Expr::InList(x, l, n) => Expr::InList(
            Box::new(to_row(x, slots)),
            l.iter().map(|y| to_row(y, slots)).collect(),
            *n,
        ),
        Expr::Between(x, a, b, n) => Expr::Between(
            Box::new(to_row(x, slots)),
            Box::new(to_row(a, slots)),
            Box::new(to_row(b, slots)),
            *n,
        ),
        Expr::IsNull(x, n) => Expr::IsNull(Box::new(to_row(x, slots)), *n),
        Expr::Case(o, br, el) => Expr::Case(
            o.as_ref().map(|x| Box::new(to_row(x, slots))),
            br.iter()
                .map(|(w, t)| (to_row(w, slots), to_row(t, slots)))
                .collect(),
            el.as_ref().map(|x| Box::new(to_row(x, slots))),
        ),
        Expr::Call(f, args) => Expr::Call(*f, args.iter().map(|y| to_row(y, slots)).collect()),
        other => other.clone(),
    }
}

/// `x.ts` as a slot reading `ts`, with its side.
fn ts_slot(e: &Expr, scope: &JoinScope) -> Option<u8> {
    match e {
        Expr::Slot(s, i) => matches!(
            scope.sides[*s as usize].slots.get(*i as usize),
            Some(SlotSource::Col(Column::Ts))
        )
        .then_some(*s),
        _ => None,
    }
}

/// `y.ts`, `y.ts + c` or `y.ts - c` as (side, offset ms).
fn shifted_ts(e: &Expr, scope: &JoinScope) -> Option<(u8, i64)> {
    match e {
        Expr::Bin(op @ (BinOp::Add | BinOp::Sub), a, b) => {
            let side = ts_slot(a, scope)?;
            let Expr::Lit(Value::Num(ms)) = &**b else {
                return None;
            };
            Some((
                side,
                if *op == BinOp::Add {
                    *ms as i64
                } else {
                    -(*ms as i64)
                },
            ))
        }
        other => ts_slot(other, scope).map(|s| (s, 0)),
    }
}

/// Checks the FROM … JOIN … ON and WHERE of a join rule; leaves `scope` resolving both sides.
pub fn compile(
    scope: &mut Scope<'_>,
    from: &ast::TableWithJoins,
    where_: Option<&ast::Expr>,
) -> Result<JoinPlan, RuleError> {
    let join = match from.joins.as_slice() {
        [join] => join,
        [_, third, ..] => {
            return Err(scope.err(&third.relation, "a rule joins at most two streams"));
        }
        [] => return Err(scope.err(&from.relation, "internal: no join")),
    };
    let on = match &join.join_operator {
        JoinOperator::Join(JoinConstraint::On(e)) | JoinOperator::Inner(JoinConstraint::On(e)) => e,
        _ => {
            return Err(scope
                .err(&join.relation, "only inner joins with ON are supported")
                .help("write … JOIN logs l ON l.service = a.service AND l.ts BETWEEN a.ts - INTERVAL '5' MINUTE AND a.ts"))
        }
    };
    let (left, left_names) = table(scope, &from.relation)?;
    let (right, right_names) = table(scope, &join.relation)?;
    // Each side needs a name of its own (`logs a JOIN logs b`), or `a.ts` would be a guess.
    if let (Some(l), Some(r)) = (left_names.last(), right_names.last()) {
        if l.eq_ignore_ascii_case(r) {
            return Err(scope
                .err(
                    &join.relation,
                    format!("both sides of the join are called `{r}`"),
                )
                .help("give them different aliases, e.g. FROM logs a JOIN logs b"));
        }
    }
    scope.qualifiers = left_names.iter().chain(&right_names).cloned().collect();
    scope.join = Some(JoinScope {
        sides: [
            JoinSide {
                stream: left,
                names: left_names,
                slots: Vec::new(),
            },
            JoinSide {
                stream: right,
                names: right_names,
                slots: Vec::new(),
            },
        ],
    });
    let mut terms = Vec::new();
    ast_conjuncts(on, &mut terms);
    if let Some(w) = where_ {
        ast_conjuncts(w, &mut terms);
    }
    let mut bound: Option<(i64, i64)> = None;
    let mut keys: [Vec<Expr>; 2] = Default::default();
    let mut key_names = Vec::new();
    let mut one_sided: [Vec<Expr>; 2] = Default::default();
    let mut residual = Vec::new();
    for &t in &terms {
        let x = scope.condition(t, Mode::Row, "ON")?;
        let js = scope
            .join
            .as_ref()
            .ok_or_else(|| scope.err(t, "internal: no join"))?;
        if let Expr::Between(subject, lo, hi, false) = &x {
            if let (Some(sx), Some((sl, lo_ms)), Some((sh, hi_ms))) =
                (ts_slot(subject, js), shifted_ts(lo, js), shifted_ts(hi, js))
            {
                if sl == sh && sl != sx {
                    // x.ts ∈ [y.ts + lo, y.ts + hi]; as right − left:
                    let (lower, upper) = if sx == 1 {
                        (lo_ms, hi_ms)
                    } else {
                        (-hi_ms, -lo_ms)
                    };
                    if lower > upper {
                        return Err(scope.err(
                            t,
                            "the time bound is empty: its low end is above its high end",
                        ));
                    }
                    let widest = MAX_INTERVAL.as_millis() as i64;
                    if lower < -widest || upper > widest {
                        return Err(scope
                            .err(t, "the time bound is too wide")
                            .help("a join's rows are at most 365 days apart"));
                    }
                    bound = Some(match bound {
                        Some((a, b)) => (a.max(lower), b.min(upper)),
                        None => (lower, upper),
                    });
                    continue;
                }
            }
        }
        match (&x, sides_of(&x)) {
            (Expr::Bin(BinOp::Eq, a, b), 3)
                if sides_of(a) != sides_of(b) && sides_of(a) != 3 && sides_of(b) != 3 =>
            {
                let (l, r) = if sides_of(a) == 1 { (a, b) } else { (b, a) };
                keys[0].push(to_row(l, &js.sides[0].slots));
                keys[1].push(to_row(r, &js.sides[1].slots));
                let ast::Expr::BinaryOp {
                    left: la,
                    right: ra,
                    ..
                } = t
                else {
                    return Err(scope.err(t, "internal: equality without operands"));
                };
                let (lt, rt) = if sides_of(a) == 1 { (la, ra) } else { (ra, la) };
                key_names.push((lt.to_string(), rt.to_string()));
            }
            (_, 1) => one_sided[0].push(to_row(&x, &js.sides[0].slots)),
            (_, 2) => one_sided[1].push(to_row(&x, &js.sides[1].slots)),
            _ => residual.push(x),
        }
    }
    let Some((lower, upper)) = bound else {
        return Err(scope
            .err(
                on,
                "a join needs a time bound, or its state would grow forever",
            )
            .help("add e.g. AND l.ts BETWEEN a.ts - INTERVAL '5' MINUTE AND a.ts"));
    };
    if lower > upper {
        return Err(scope.err(
            on,
            "the join's time bounds do not overlap: no rows can pair",
        ));
    }
    let js = scope
        .join
        .as_ref()
        .ok_or_else(|| scope.err(on, "internal: no join"))?;
    Ok(JoinPlan {
        streams: [left, right],
        filters: one_sided.map(Expr::conjunction),
        keys,
        slots: [
            js.sides[0].slots.iter().map(SlotSource::row_expr).collect(),
            js.sides[1].slots.iter().map(SlotSource::row_expr).collect(),
        ],
        lower,
        upper,
        residual: Expr::conjunction(residual),
        key_names,
    })
}

impl JoinPlan {
    /// Slots allocated after `compile` (by SELECT, GROUP BY, aggregates) are sent too.
    pub(crate) fn refresh_slots(&mut self, scope: &Scope<'_>) {
        if let Some(js) = &scope.join {
            for s in 0..2 {
                self.slots[s] = js.sides[s].slots.iter().map(SlotSource::row_expr).collect();
            }
        }
    }

    /// The longest a row must be kept.
    pub fn horizon(&self) -> u64 {
        self.upper.unsigned_abs().max(self.lower.unsigned_abs())
    }
}

/// A buffered row: event time, the columns the rule reads, and its evidence.
type Buffered = (u64, Vec<Value>, Option<Evidence>);

/// One key's recent rows of both sides.
#[derive(Clone, Debug, Default)]
pub struct JoinBuffers {
    sides: [VecDeque<Buffered>; 2],
}

impl JoinBuffers {
    /// Is nothing buffered?
    pub fn is_empty(&self) -> bool {
        self.sides.iter().all(VecDeque::is_empty)
    }

    /// Adds a row of `side` at `ts`; calls `pair(left, right, other_evidence)` for every row of
    /// the other side within the bound. Rows arrive in event-time order.
    pub fn add(
        &mut self,
        plan: &JoinPlan,
        side: usize,
        ts: u64,
        values: Vec<Value>,
        evidence: Option<Evidence>,
        mut pair: impl FnMut(&[Value], &[Value], Option<&Evidence>),
    ) {
        self.expire(plan, ts);
        let other = 1 - side;
        for (t2, v2, e2) in &self.sides[other] {
            let (l, r) = if side == 0 { (ts, *t2) } else { (*t2, ts) };
            let d = r as i64 - l as i64;
            if d >= plan.lower && d <= plan.upper {
                if side == 0 {
                    pair(&values, v2, e2.as_ref());
                } else {
                    pair(v2, &values, e2.as_ref());
                }
            }
        }
        let buf = &mut self.sides[side];
        buf.push_back((ts, values, evidence));
        if buf.len() > MAX_BUFFERED {
            buf.pop_front();
        }
    }

    /// Drops rows no future row (at `now` or later) can pair with.
    pub fn expire(&mut self, plan: &JoinPlan, now: u64) {
        // A left row at l pairs with right rows up to l + upper; a right row at r with left
        // rows from r - upper.. to r - lower, so it is useful until r - lower.
        let keep = [plan.upper, -plan.lower];
        for (side, k) in keep.into_iter().enumerate() {
            let buf = &mut self.sides[side];
            while buf
                .front()
                .is_some_and(|(t, _, _)| (*t as i64).saturating_add(k) < now as i64)
            {
                buf.pop_front();
            }
        }
    }

    /// When the oldest row can be dropped, for timers.
    pub fn next_expiry(&self, plan: &JoinPlan) -> Option<u64> {
        let keep = [plan.upper, -plan.lower];
        (0..2)
            .filter_map(|s| {
                self.sides[s]
                    .front()
                    .map(|(t, _, _)| ((*t as i64).saturating_add(keep[s]) + 1).max(0) as u64)
            })
            .min()
    }
}
