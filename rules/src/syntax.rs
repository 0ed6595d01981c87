//! Rule files → rule statements: the thin streaming layer around `sqlparser`.
//!
//! A file holds `CREATE RULE` statements separated by `;`. The rule header (`SEVERITY`,
//! `LABELS`, annotations, `EMIT`) and the trailing `FOR` / `KEEP FIRING FOR` clauses are read
//! here from sqlparser's tokens; the query between `AS` and the trailer is handed to sqlparser
//! as those same tokens, so every location in every error is a position in the file.

use std::time::Duration;

use sqlparser::ast::Query;
use sqlparser::dialect::GenericDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::diagnostic::{Location, RuleError, SourceFile};

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

/// Splits and parses a rule file. Every statement is parsed even when an earlier one fails, so
/// one run reports every error.
pub fn parse_file(file: &SourceFile) -> (Vec<RuleStatement>, Vec<RuleError>) {
    let dialect = GenericDialect {};
    let tokens = match Tokenizer::new(&dialect, &file.text).tokenize_with_location() {
        Ok(t) => t,
        Err(e) => {
            return (
                Vec::new(),
                vec![RuleError::new(file, e.location.into(), e.message)],
            )
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
            Some(t) => Location::new(t.span.end.line, t.span.end.column + 1),
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
        self.eat_word("INTERVAL");
        let (amount, _) = self.string("an interval such as INTERVAL '5' MINUTE")?;
        let unit = match self.peek() {
            Some(TokenWithSpan {
                token: Token::Word(w),
                ..
            }) if w.quote_style.is_none() && parse_unit(&w.value).is_some() => {
                self.pos += 1;
                Some(w.value.clone())
            }
            _ => None,
        };
        parse_interval(&amount, unit.as_deref()).ok_or_else(|| {
            RuleError::new(self.file, at, format!("`{amount}` is not an interval"))
                .help("write INTERVAL '5' MINUTE, INTERVAL '30 seconds' or '2h'")
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
        while !self.is_word("AS") {
            let Some(t) = self.peek() else {
                return Err(self.error("expected `AS` and the rule's query"));
            };
            let clause = match &t.token {
                Token::Word(w) => w.value.to_ascii_uppercase(),
                _ => String::new(),
            };
            self.pos += 1;
            match clause.as_str() {
                "SEVERITY" => {
                    let (s, at) = self.string("the severity")?;
                    rule.severity = Some((s, at));
                }
                "LABELS" => {
                    rule.labels
                        .extend(self.pairs()?.into_iter().map(|(k, v, _)| (k, v)));
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
                    return Err(self
                        .error(format!("unknown rule clause {}", self.found()))
                        .help(
                            "rule clauses are SEVERITY, LABELS, SUMMARY, DESCRIPTION, RUNBOOK, \
                             ANNOTATIONS and EMIT, then AS and the query",
                        ));
                }
            }
        }
        self.pos += 1; // AS
        let query_at = self.here();
        let start = self.pos;
        let end = self.trailer_start();
        let (query_tokens, within) = self.take_within(start, end)?;
        self.pos = end;
        // sqlparser gives no position for "found: EOF"; point just past the query.
        let query_end = query_tokens.last().map_or(query_at, |t| {
            Location::new(t.span.end.line, t.span.end.column + 1)
        });
        let mut parser = Parser::new(&GenericDialect {}).with_tokens_with_locations(query_tokens);
        let query = parser
            .parse_query()
            .map_err(|e| parser_error(self.file, &e.to_string(), query_end))?;
        if parser.peek_token().token != Token::EOF {
            let t = parser.peek_token();
            return Err(RuleError::new(
                self.file,
                t.span.start.into(),
                format!("unexpected `{}` after the query", t.token),
            )
            .help("after the query only FOR and KEEP FIRING FOR may follow"));
        }
        let mut for_duration = Duration::ZERO;
        let mut keep_firing_for = Duration::ZERO;
        while self.peek().is_some() {
            if self.eat_word("FOR") {
                for_duration = self.interval()?;
            } else if self.eat_word("KEEP") {
                self.expect_word("FIRING")?;
                self.expect_word("FOR")?;
                keep_firing_for = self.interval()?;
            } else {
                return Err(self.error(format!("unexpected {} after the query", self.found())));
            }
        }
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

/// sqlparser reports positions inside its message (`... at Line: 3, Column: 5`).
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
    RuleError::new(file, at, text.to_string())
}

fn parse_unit(unit: &str) -> Option<u64> {
    let unit = unit.to_ascii_lowercase();
    let unit = unit.trim_end_matches('s');
    Some(match unit {
        "ms" | "millisecond" => 1,
        "" | "second" | "sec" => 1000,
        "m" | "min" | "minute" => 60_000,
        "h" | "hour" => 3_600_000,
        "d" | "day" => 86_400_000,
        "w" | "week" => 604_800_000,
        _ => return None,
    })
}

/// `'5' MINUTE`, `'5 minutes'`, `'5m'`, `'90s'`, `'1h30m'`.
pub fn parse_interval(amount: &str, unit: Option<&str>) -> Option<Duration> {
    let amount = amount.trim();
    if let Some(unit) = unit {
        let n: f64 = amount.parse().ok()?;
        let ms = n * parse_unit(unit)? as f64;
        return (ms.is_finite() && ms >= 0.0).then(|| Duration::from_millis(ms as u64));
    }
    let mut total = 0f64;
    let mut rest = amount;
    let mut any = false;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..split].parse().ok()?;
        rest = rest[split..].trim_start();
        let unit_end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        total += n * parse_unit(unit)? as f64;
        rest = rest[unit_end..].trim_start();
        any = true;
    }
    (any && total.is_finite()).then(|| Duration::from_millis(total as u64))
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
    }
}
