//! Rule files → rule statements: the thin streaming layer around `sqlparser`.
//!
//! A file holds `CREATE RULE` statements separated by `;`. The rule header (`SEVERITY`,
//! `LABELS`, annotations, `EMIT`) and the trailing `FOR` / `KEEP FIRING FOR` clauses are read
//! here from sqlparser's tokens; the query between `AS` and the trailer is handed to sqlparser
//! as those same tokens, so every location in every error is a position in the file.

use std::ops::ControlFlow;
use std::time::Duration;

use sqlparser::ast::{self, Query, Spanned, Visit, Visitor};
use sqlparser::dialect::GenericDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::diagnostic::{suggest, Location, RuleError, SourceFile};

/// What a rule produces when it fires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Emit {
    /// A signal that feeds correlation (the default).
    #[default]
    Signal,
    /// An insight routed straight to the sinks.
    Insight,
}

/// One `CREATE RULE` statement, parsed but not yet checked.
#[derive(Clone, Debug)]
pub struct RuleStatement {
    /// Rule name.
    pub name: String,
    /// Where `CREATE` is.
    pub at: Location,
    /// `SEVERITY 'critical'`, with where its value is.
    pub severity: Option<(String, Location)>,
    /// Routing labels (`LABELS (team = 'payments')`).
    pub labels: Vec<(String, String)>,
    /// Annotations: `SUMMARY`, `DESCRIPTION`, `RUNBOOK` and `ANNOTATIONS (k = 'v')`.
    pub annotations: Vec<(String, String, Location)>,
    /// Signal or insight.
    pub emit: Emit,
    /// The query.
    pub query: Box<Query>,
    /// Where the query starts.
    pub query_at: Location,
    /// `FOR`: how long the condition must hold before the rule fires.
    pub for_duration: Duration,
    /// `KEEP FIRING FOR`: how long the rule keeps firing after the condition stops.
    pub keep_firing_for: Duration,
    /// `WITHIN` of a `MATCH_RECOGNIZE` clause, with where it was.
    pub within: Option<(Duration, Location)>,
    /// The statement's text, normalised (whitespace and comments dropped): a rule whose text
    /// did not change keeps its state across reloads.
    pub text: String,
}

/// The clauses of a rule's header.
const CLAUSES: [&str; 8] = [
    "SEVERITY",
    "LABELS",
    "SUMMARY",
    "DESCRIPTION",
    "RUNBOOK",
    "ANNOTATIONS",
    "EMIT",
    "AS",
];

/// Splits and parses a rule file. Every statement is parsed even when an earlier one fails, so
/// one run reports every error.
pub fn parse_file(file: &SourceFile) -> (Vec<RuleStatement>, Vec<RuleError>) {
    let dialect = GenericDialect {};
    let tokens = match Tokenizer::new(&dialect, &file.text).tokenize_with_location() {
        Ok(t) => t,
        Err(e) => {
            // An unclosed comment is reported at the end of the file; show where it opens.
            let mut at: Location = e.location.into();
            if e.message.contains("multi-line comment") {
                if let Some(open) = file.text.rfind("/*") {
                    let before = &file.text[..open];
                    let line = before.matches('\n').count() as u64 + 1;
                    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count());
                    at = Location::new(line, column as u64 + 1);
                }
            }
            return (
                Vec::new(),
                vec![RuleError::new(file, at, lowercase_first(&e.message))],
            );
        }
    };
    let tokens: Vec<TokenWithSpan> = tokens
        .into_iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for statement in tokens.split(|t| t.token == Token::SemiColon) {
        if statement.is_empty() {
            continue;
        }
        if let Some(t) = statement.get(MAX_TOKENS) {
            errors.push(
                RuleError::new(file, t.span.start.into(), "the rule is too long")
                    .help(format!("a rule has at most {MAX_TOKENS} words and symbols")),
            );
            continue;
        }
        match Statement::new(file, statement).parse() {
            Ok(rule) => rules.push(rule),
            Err(e) => errors.push(e),
        }
    }
    (rules, errors)
}

/// A cursor over one statement's tokens.
struct Statement<'a> {
    file: &'a SourceFile,
    tokens: &'a [TokenWithSpan],
    pos: usize,
}

impl<'a> Statement<'a> {
    fn new(file: &'a SourceFile, tokens: &'a [TokenWithSpan]) -> Self {
        Statement {
            file,
            tokens,
            pos: 0,
        }
    }

    fn peek(&self) -> Option<&'a TokenWithSpan> {
        self.tokens.get(self.pos)
    }

    fn here(&self) -> Location {
        match self.peek().or(self.tokens.last()) {
            Some(t) if self.pos < self.tokens.len() => t.span.start.into(),
            // Just after the last token (its span ends there, exclusively).
            Some(t) => t.span.end.into(),
            None => Location::new(1, 1),
        }
    }

    fn error(&self, message: impl Into<String>) -> RuleError {
        RuleError::new(self.file, self.here(), message)
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(TokenWithSpan { token: Token::Word(w), .. })
            if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let yes = self.is_word(word);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn expect_word(&mut self, word: &str) -> Result<(), RuleError> {
        if self.eat_word(word) {
            Ok(())
        } else {
            Err(self.error(format!("expected `{word}`, found {}", self.found())))
        }
    }

    fn found(&self) -> String {
        match self.peek() {
            Some(t) => format!("`{}`", t.token),
            None => "the end of the rule".into(),
        }
    }

    fn ident(&mut self, what: &str) -> Result<(String, Location), RuleError> {
        match self.peek() {
            Some(TokenWithSpan {
                token: Token::Word(w),
                span,
            }) => {
                self.pos += 1;
                Ok((w.value.clone(), span.start.into()))
            }
            _ => Err(self.error(format!("expected {what}, found {}", self.found()))),
        }
    }

    fn string(&mut self, what: &str) -> Result<(String, Location), RuleError> {
        match self.peek() {
            Some(TokenWithSpan {
                token: Token::SingleQuotedString(s),
                span,
            }) => {
                self.pos += 1;
                Ok((s.clone(), span.start.into()))
            }
            _ => Err(self
                .error(format!(
                    "expected {what} as a quoted string, found {}",
                    self.found()
                ))
                .help("strings use single quotes: 'like this'")),
        }
    }

    fn expect(&mut self, token: Token) -> Result<(), RuleError> {
        if self.peek().map(|t| &t.token) == Some(&token) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(format!("expected `{token}`, found {}", self.found())))
        }
    }

    /// `(key = 'value', ...)`
    fn pairs(&mut self) -> Result<Vec<(String, String, Location)>, RuleError> {
        self.expect(Token::LParen)?;
        let mut out = Vec::new();
        loop {
            let (key, at) = self.ident("a label name")?;
            self.expect(Token::Eq)?;
            let (value, _) = self.string("the label value")?;
            out.push((key, value, at));
            if self.peek().map(|t| &t.token) == Some(&Token::Comma) {
                self.pos += 1;
                continue;
            }
            self.expect(Token::RParen)?;
            return Ok(out);
        }
    }

    /// `INTERVAL '5' MINUTE`, `INTERVAL '5 minutes'`, or `'5m'`.
    fn interval(&mut self) -> Result<Duration, RuleError> {
        let at = self.here();
        let start = self.pos;
        self.eat_word("INTERVAL");
        // `INTERVAL 5 MINUTE` as well as `INTERVAL '5' MINUTE`, as in expressions.
        let amount = match self.peek() {
            Some(TokenWithSpan {
                token: Token::Number(n, _),
                ..
            }) => {
                self.pos += 1;
                n.clone()
            }
            _ => self.string("an interval such as INTERVAL '5' MINUTE")?.0,
        };
        // A bare number takes the next word as its unit, unless that word starts the next
        // clause: `INTERVAL '5' MONTH` is an unknown unit, not a stray word after the query.
        let bare = amount.trim().parse::<f64>().is_ok();
        let unit = match self.peek() {
            Some(TokenWithSpan {
                token: Token::Word(w),
                span,
            }) if w.quote_style.is_none()
                && (parse_unit(&w.value).is_some()
                    || (bare
                        && !["FOR", "KEEP", "DEFINE", "SUBSET"]
                            .iter()
                            .any(|k| w.value.eq_ignore_ascii_case(k)))) =>
            {
                self.pos += 1;
                Some((w.value.clone(), Location::from(span.start)))
            }
            _ => None,
        };
        interval_of(&amount, unit.as_ref().map(|(u, _)| u.as_str())).map_err(|e| {
            let written = self.tokens[start..self.pos]
                .iter()
                .map(|t| t.token.to_string())
                .collect::<Vec<_>>()
                .join(" ");
            let (message, help) = e.describe(&written);
            let at = match (&e, &unit) {
                (IntervalError::UnknownUnit(_), Some((_, unit_at))) => *unit_at,
                _ => at,
            };
            RuleError::new(self.file, at, message).help(help)
        })
    }

    fn parse(mut self) -> Result<RuleStatement, RuleError> {
        let at = self.here();
        self.expect_word("CREATE")?;
        self.expect_word("RULE").map_err(|e| {
            e.help("a rule file holds statements like: CREATE RULE name AS SELECT ...;")
        })?;
        let (name, _) = self.ident("the rule name")?;
        let mut rule = Header::default();
        // Clauses that may appear once, and label / annotation keys: a second one is a mistake
        // (which one wins would be a guess).
        let mut seen: Vec<String> = Vec::new();
        let mut label_keys: Vec<String> = Vec::new();
        while !self.is_word("AS") {
            let Some(t) = self.peek() else {
                return Err(self.error("expected `AS` and the rule's query"));
            };
            let clause = match &t.token {
                Token::Word(w) => w.value.to_ascii_uppercase(),
                _ => String::new(),
            };
            let clause_at: Location = t.span.start.into();
            if matches!(
                clause.as_str(),
                "SEVERITY" | "SUMMARY" | "DESCRIPTION" | "RUNBOOK" | "EMIT"
            ) {
                if seen.contains(&clause) {
                    return Err(RuleError::new(
                        self.file,
                        clause_at,
                        format!("{clause} is given twice"),
                    )
                    .help(format!("keep one {clause} clause")));
                }
                seen.push(clause.clone());
            }
            self.pos += 1;
            match clause.as_str() {
                "SEVERITY" => {
                    let (s, at) = self.string("the severity")?;
                    rule.severity = Some((s, at));
                }
                "LABELS" => {
                    for (k, v, at) in self.pairs()? {
                        if label_keys.iter().any(|x| x.eq_ignore_ascii_case(&k)) {
                            return Err(RuleError::new(
                                self.file,
                                at,
                                format!("label `{k}` is given twice"),
                            ));
                        }
                        label_keys.push(k.clone());
                        rule.labels.push((k, v));
                    }
                }
                "ANNOTATIONS" => rule.annotations.extend(self.pairs()?),
                "SUMMARY" | "DESCRIPTION" | "RUNBOOK" => {
                    let (s, at) = self.string(&clause.to_ascii_lowercase())?;
                    rule.annotations.push((clause.to_ascii_lowercase(), s, at));
                }
                "EMIT" => {
                    rule.emit = if self.eat_word("SIGNAL") {
                        Emit::Signal
                    } else if self.eat_word("INSIGHT") {
                        Emit::Insight
                    } else {
                        return Err(self.error(format!(
                            "expected SIGNAL or INSIGHT after EMIT, found {}",
                            self.found()
                        )));
                    };
                }
                _ => {
                    self.pos -= 1;
                    let err = self.error(format!("unknown rule clause {}", self.found()));
                    return Err(match suggest(&clause, CLAUSES) {
                        Some(s) if !clause.is_empty() => err.help(format!("did you mean {s}?")),
                        _ => err.help(
                            "rule clauses are SEVERITY, LABELS, SUMMARY, DESCRIPTION, RUNBOOK, \
                             ANNOTATIONS and EMIT, then AS and the query",
                        ),
                    });
                }
            }
        }
        for (i, (k, _, at)) in rule.annotations.iter().enumerate() {
            if rule.annotations[..i]
                .iter()
                .any(|(x, _, _)| x.eq_ignore_ascii_case(k))
            {
                return Err(RuleError::new(
                    self.file,
                    *at,
                    format!("annotation `{k}` is given twice"),
                ));
            }
        }
        self.pos += 1; // AS
        let query_at = self.here();
        let start = self.pos;
        let end = self.trailer_start();
        let (query_tokens, within) = self.take_within(start, end)?;
        self.pos = end;
        // sqlparser gives no position for "found: EOF"; point just past the query.
        let query_end = query_tokens
            .last()
            .map_or(query_at, |t| Location::from(t.span.end));
        let innermost = innermost_paren(&query_tokens);
        let mut parser = Parser::new(&GenericDialect {}).with_tokens_with_locations(query_tokens);
        let query = parser.parse_query().map_err(|e| {
            let e = parser_error(self.file, &e.to_string(), query_end);
            match innermost {
                // sqlparser gives up on deep nesting somewhere inside it; show where it is.
                Some(at) if e.message == TOO_NESTED => RuleError { at, ..e },
                _ => e,
            }
        })?;
        if let Some(deep) = too_deep(&query) {
            return Err(RuleError::new(
                self.file,
                deep.unwrap_or(query_at),
                "the query is nested too deeply",
            )
            .help(format!(
                "expressions nest at most {MAX_AST_DEPTH} levels, and each term of a chain \
                 (a + b + ..., a AND b AND ...) is a level; use IN (...) for long lists"
            )));
        }
        if parser.peek_token().token != Token::EOF {
            let t = parser.peek_token();
            return Err(RuleError::new(
                self.file,
                t.span.start.into(),
                format!("unexpected `{}` after the query", t.token),
            )
            .help("after the query only FOR and KEEP FIRING FOR may follow"));
        }
        let mut for_duration = None;
        let mut keep_firing_for = None;
        while self.peek().is_some() {
            let clause_at = self.here();
            let (slot, clause) = if self.eat_word("FOR") {
                (&mut for_duration, "FOR")
            } else if self.eat_word("KEEP") {
                self.expect_word("FIRING")?;
                self.expect_word("FOR")?;
                (&mut keep_firing_for, "KEEP FIRING FOR")
            } else {
                return Err(self
                    .error(format!("unexpected {} after the query", self.found()))
                    .help("after the query only FOR and KEEP FIRING FOR may follow"));
            };
            if slot.is_some() {
                return Err(RuleError::new(
                    self.file,
                    clause_at,
                    format!("{clause} is given twice"),
                ));
            }
            *slot = Some(self.interval()?);
        }
        let for_duration = for_duration.unwrap_or_default();
        let keep_firing_for = keep_firing_for.unwrap_or_default();
        let text = self
            .tokens
            .iter()
            .map(|t| t.token.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(RuleStatement {
            name,
            at,
            severity: rule.severity,
            labels: rule.labels,
            annotations: rule.annotations,
            emit: rule.emit,
            query,
            query_at,
            for_duration,
            keep_firing_for,
            within,
            text,
        })
    }

    /// Where the trailing `FOR` / `KEEP FIRING FOR` begins (outside parentheses).
    fn trailer_start(&self) -> usize {
        let mut depth = 0i32;
        for (i, t) in self.tokens.iter().enumerate().skip(self.pos) {
            match &t.token {
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                Token::Word(w)
                    if depth == 0
                        && w.quote_style.is_none()
                        && (w.keyword == Keyword::FOR || w.value.eq_ignore_ascii_case("KEEP")) =>
                {
                    return i;
                }
                _ => {}
            }
        }
        self.tokens.len()
    }

    /// Removes `WITHIN <interval>` (Flink's MATCH_RECOGNIZE extension, unknown to sqlparser)
    /// from the query's tokens and returns it separately.
    #[allow(clippy::type_complexity)]
    fn take_within(
        &mut self,
        start: usize,
        end: usize,
    ) -> Result<(Vec<TokenWithSpan>, Option<(Duration, Location)>), RuleError> {
        let mut out = Vec::with_capacity(end - start);
        let mut within = None;
        let mut i = start;
        while i < end {
            let t = &self.tokens[i];
            if matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("WITHIN"))
            {
                let at: Location = t.span.start.into();
                if within.is_some() {
                    return Err(RuleError::new(self.file, at, "WITHIN is given twice"));
                }
                self.pos = i + 1;
                let d = self.interval()?;
                within = Some((d, at));
                i = self.pos;
                continue;
            }
            out.push(t.clone());
            i += 1;
        }
        Ok((out, within))
    }
}

#[derive(Default)]
struct Header {
    severity: Option<(String, Location)>,
    labels: Vec<(String, String)>,
    annotations: Vec<(String, String, Location)>,
    emit: Emit,
}

/// The most tokens (words, literals, symbols) one statement may have. Rules are a few hundred;
/// the cap bounds how deep sqlparser's own trees can get before [`MAX_AST_DEPTH`] is checked
/// (dropping a tree recurses over it).
pub(crate) const MAX_TOKENS: usize = 10_000;

/// How deeply a query's expressions may nest. Chains (`a + b + ...`, `a AND b AND ...`) are as
/// deep as they are long, and sqlparser recurses over them (spans, display, visits, clones);
/// this keeps every such walk well inside a 2 MiB thread stack, even in debug builds.
pub(crate) const MAX_AST_DEPTH: usize = 200;

/// `Some(where, if known)` when an expression of `query` nests deeper than [`MAX_AST_DEPTH`].
/// The visit stops at that depth, so it cannot overflow the stack itself.
fn too_deep(query: &Query) -> Option<Option<Location>> {
    // `Break = ()`: a larger break type makes every frame of sqlparser's visit much larger.
    struct Depth {
        now: usize,
        deep: Option<Option<Location>>,
    }
    impl Visitor for Depth {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &ast::Expr) -> ControlFlow<()> {
            self.now += 1;
            if self.now > MAX_AST_DEPTH {
                self.deep = Some(leftmost_leaf(e));
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, _: &ast::Expr) -> ControlFlow<()> {
            self.now -= 1;
            ControlFlow::Continue(())
        }
    }
    let mut depth = Depth { now: 0, deep: None };
    let _ = query.visit(&mut depth);
    depth.deep
}

/// Where a (possibly very deep) expression starts: down its first operands without recursion,
/// to a name or a literal, whose span is cheap.
fn leftmost_leaf(mut e: &ast::Expr) -> Option<Location> {
    use ast::Expr as A;
    loop {
        e = match e {
            A::BinaryOp { left, .. } => left,
            A::IsNull(x)
            | A::IsNotNull(x)
            | A::IsTrue(x)
            | A::IsFalse(x)
            | A::IsNotTrue(x)
            | A::IsNotFalse(x)
            | A::IsUnknown(x)
            | A::IsNotUnknown(x)
            | A::IsDistinctFrom(x, _)
            | A::IsNotDistinctFrom(x, _)
            | A::Nested(x) => x,
            A::UnaryOp { expr, .. }
            | A::Cast { expr, .. }
            | A::Collate { expr, .. }
            | A::InList { expr, .. }
            | A::Between { expr, .. }
            | A::Like { expr, .. }
            | A::ILike { expr, .. }
            | A::RLike { expr, .. }
            | A::SimilarTo { expr, .. } => expr,
            A::AtTimeZone { timestamp, .. } => timestamp,
            A::CompoundFieldAccess { root, .. } => root,
            A::Identifier(id) => return (id.span.start.line != 0).then(|| id.span.start.into()),
            A::CompoundIdentifier(ids) => {
                let s = ids.first()?.span.start;
                return (s.line != 0).then(|| s.into());
            }
            A::Value(v) => return (v.span.start.line != 0).then(|| v.span.start.into()),
            A::Function(f) => {
                let s = f.name.0.first()?.span().start;
                return (s.line != 0).then(|| s.into());
            }
            _ => return None,
        };
    }
}

/// sqlparser reports positions inside its message (`... at Line: 3, Column: 5`); its wording
/// (`Expected: an expression, found: EOF`) is made to read like the rest of the errors.
fn parser_error(file: &SourceFile, message: &str, fallback: Location) -> RuleError {
    let (text, at) = match message.rfind(" at Line: ") {
        Some(i) => {
            let rest = &message[i + " at Line: ".len()..];
            let mut parts = rest.split(", Column: ");
            let line = parts.next().and_then(|l| l.trim().parse().ok());
            let col = parts.next().and_then(|c| c.trim().parse().ok());
            match (line, col) {
                (Some(l), Some(c)) => (&message[..i], Location::new(l, c)),
                _ => (message, fallback),
            }
        }
        None => (message, fallback),
    };
    let text = text.trim_start_matches("sql parser error: ");
    if text == "recursion limit exceeded" {
        return RuleError::new(file, at, TOO_NESTED)
            .help("rules allow at most 50 levels of parentheses and nested expressions");
    }
    let text = match text
        .strip_prefix("Expected: ")
        .and_then(|t| t.rsplit_once(", found: "))
    {
        Some((want, "EOF")) => format!("expected {want}, found the end of the rule"),
        Some((want, found)) => format!("expected {want}, found `{found}`"),
        None => lowercase_first(text),
    };
    RuleError::new(file, at, text)
}

const TOO_NESTED: &str = "the query is nested too deeply";

/// The first of the most deeply nested `(`, if any.
fn innermost_paren(tokens: &[TokenWithSpan]) -> Option<Location> {
    let (mut depth, mut deepest, mut at) = (0usize, 0usize, None);
    for t in tokens {
        match t.token {
            Token::LParen => {
                depth += 1;
                if depth > deepest {
                    deepest = depth;
                    at = Some(t.span.start.into());
                }
            }
            Token::RParen => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    at
}

/// `Unterminated string literal` → `unterminated string literal`, as the other errors read.
fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn parse_unit(unit: &str) -> Option<u64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        "w" | "week" | "weeks" => 604_800_000,
        _ => return None,
    })
}

/// The longest interval a rule may use (`FOR`, windows, `WITHIN`, join bounds, fixture times):
/// a year. Longer ones are mistakes, and event-time arithmetic stays far from overflowing.
pub const MAX_INTERVAL: Duration = Duration::from_secs(365 * 86_400);

/// Why a text is not an interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum IntervalError {
    /// Not numbers with units.
    Malformed,
    /// A number without a unit (`'5'`): seconds or minutes?
    NoUnit,
    /// A unit that is not one of ms, s, m, h, d, w.
    UnknownUnit(String),
    /// Longer than [`MAX_INTERVAL`].
    TooLong,
}

impl IntervalError {
    /// The message and help for an interval written as `text`.
    pub(crate) fn describe(&self, text: &str) -> (String, &'static str) {
        const UNITS: &str = "units are ms, s, m, h, d and w, or MILLISECOND, SECOND, MINUTE, \
                             HOUR, DAY and WEEK: INTERVAL '5' MINUTE, '30 seconds', '1h30m'";
        match self {
            IntervalError::Malformed => (
                format!("`{text}` is not an interval"),
                "write INTERVAL '5' MINUTE, INTERVAL '30 seconds' or '2h'",
            ),
            IntervalError::NoUnit => (format!("`{text}` has no unit"), UNITS),
            IntervalError::UnknownUnit(u) => (format!("unknown interval unit `{u}`"), UNITS),
            IntervalError::TooLong => (
                format!("`{text}` is too long"),
                "intervals in rules are at most 365 days",
            ),
        }
    }
}

/// `'5' MINUTE`, `'5 minutes'`, `'5m'`, `'90s'`, `'1h30m'`; at most [`MAX_INTERVAL`].
pub(crate) fn interval_of(amount: &str, unit: Option<&str>) -> Result<Duration, IntervalError> {
    let amount = amount.trim();
    let ms = match unit {
        Some(unit) => {
            let n: f64 = amount.parse().map_err(|_| IntervalError::Malformed)?;
            let per =
                parse_unit(unit).ok_or_else(|| IntervalError::UnknownUnit(unit.to_string()))?;
            n * per as f64
        }
        None => {
            if amount.is_empty() {
                return Err(IntervalError::Malformed);
            }
            let mut total = 0f64;
            let mut rest = amount;
            while !rest.is_empty() {
                let split = rest
                    .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                    .unwrap_or(rest.len());
                let n: f64 = rest[..split]
                    .parse()
                    .map_err(|_| IntervalError::Malformed)?;
                rest = rest[split..].trim_start();
                let unit_end = rest
                    .find(|c: char| !c.is_ascii_alphabetic())
                    .unwrap_or(rest.len());
                let unit = &rest[..unit_end];
                if unit.is_empty() {
                    return Err(IntervalError::NoUnit);
                }
                let per =
                    parse_unit(unit).ok_or_else(|| IntervalError::UnknownUnit(unit.to_string()))?;
                total += n * per as f64;
                rest = rest[unit_end..].trim_start();
            }
            total
        }
    };
    if ms.is_nan() || ms < 0.0 {
        return Err(IntervalError::Malformed);
    }
    if ms > MAX_INTERVAL.as_millis() as f64 {
        return Err(IntervalError::TooLong);
    }
    Ok(Duration::from_millis(ms as u64))
}

/// `'5' MINUTE`, `'5 minutes'`, `'5m'`, `'90s'`, `'1h30m'`; `None` for anything else, for a
/// bare number (which unit?) and for more than [`MAX_INTERVAL`].
pub fn parse_interval(amount: &str, unit: Option<&str>) -> Option<Duration> {
    interval_of(amount, unit).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Vec<RuleStatement>, Vec<RuleError>) {
        parse_file(&SourceFile::new("t.sql", text))
    }

    #[test]
    fn header_query_and_trailer() {
        let (rules, errors) = parse(
            "-- comment\nCREATE RULE db_pool\n  SEVERITY 'critical'\n  LABELS (team = 'db')\n  SUMMARY '{{service}}: {{errors}}'\n  RUNBOOK 'https://r/x'\nAS SELECT service, count(*) AS errors FROM logs\n   GROUP BY service, TUMBLE(ts, INTERVAL '1' MINUTE)\n   HAVING count(*) > 20\nFOR INTERVAL '2' MINUTE KEEP FIRING FOR '5m';\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        let r = &rules[0];
        assert_eq!(r.name, "db_pool");
        assert_eq!(r.at, Location::new(2, 1));
        assert_eq!(r.severity.as_ref().map(|s| s.0.as_str()), Some("critical"));
        assert_eq!(r.labels, vec![("team".to_string(), "db".to_string())]);
        assert_eq!(r.annotations.len(), 2);
        assert_eq!(r.for_duration, Duration::from_secs(120));
        assert_eq!(r.keep_firing_for, Duration::from_secs(300));
        assert_eq!(r.query_at, Location::new(7, 4));
    }

    #[test]
    fn every_statement_is_parsed_and_errors_point_into_the_file() {
        let (rules, errors) = parse(
            "CREATE RULE a AS SELECT * FROM logs;\nCREATE RULE b AS SELECT * FROM logs WHERE level = ;\nCREATE RULE c AS SELECT * FROM metrics;",
        );
        assert_eq!(rules.len(), 2);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].at.line, 2);
        assert!(errors[0].at.column >= 40, "{}", errors[0]);
    }

    #[test]
    fn header_errors() {
        let (_, e) = parse("CREATE RUEL x AS SELECT 1");
        assert!(e[0].message.contains("expected `RULE`"), "{}", e[0]);
        let (_, e) = parse("CREATE RULE x SEVERTY 'x' AS SELECT 1");
        assert!(e[0].message.contains("unknown rule clause"), "{}", e[0]);
        assert_eq!(e[0].at, Location::new(1, 15));
        let (_, e) = parse("CREATE RULE x SEVERITY critical AS SELECT 1");
        assert!(e[0].help.as_deref().unwrap_or("").contains("single quotes"));
        let (_, e) = parse("CREATE RULE x AS SELECT 1 FOR INTERVAL 'soon'");
        assert!(e[0].message.contains("not an interval"), "{}", e[0]);
        let (_, e) = parse("CREATE RULE x EMIT PAGE AS SELECT 1");
        assert!(e[0].message.contains("SIGNAL or INSIGHT"), "{}", e[0]);
    }

    #[test]
    fn within_is_lifted_out_of_match_recognize() {
        let (rules, errors) = parse(
            "CREATE RULE d AS SELECT * FROM events MATCH_RECOGNIZE (PARTITION BY service ORDER BY ts MEASURES FIRST(D.ts) AS t PATTERN (D E{3,}) WITHIN INTERVAL '10' MINUTE DEFINE D AS D.kind = 'change', E AS E.kind = 'alert')",
        );
        assert!(errors.is_empty(), "{}", errors[0]);
        assert_eq!(rules[0].within.map(|w| w.0), Some(Duration::from_secs(600)));
    }

    #[test]
    fn intervals() {
        assert_eq!(
            parse_interval("5", Some("MINUTE")),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            parse_interval("1h30m", None),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(
            parse_interval("30 seconds", None),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_interval("soon", None), None);
        assert_eq!(parse_interval("", None), None);
        assert_eq!(
            parse_interval("500ms", None),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_interval("5", None), None, "which unit?");
        assert_eq!(parse_interval("365d", None), Some(MAX_INTERVAL));
        assert_eq!(parse_interval("366d", None), None);
        assert_eq!(parse_interval("1e30", Some("MINUTE")), None);
    }
}
