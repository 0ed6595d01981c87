//! Parser and checker errors: every error the rule parser, checker and planner report, each
//! from a small bad rule, with its message, the `line:column` it points at and its suggestion
//! (`CASES`); rules at the limits that must still check; inputs no rule author means (empty,
//! garbage, huge, deeply nested, mutated at random) that must give a clean error and never a
//! panic; and `RuleSet::load`'s file errors. Good rules of each construct are checked here only
//! where `constructs.rs` does not already run them.
//!
//! Covered, by where the error is made:
//! - `syntax.rs`: tokenizer errors (unterminated string, comment, quoted name); a statement of
//!   over 10 000 tokens; `CREATE`, `RULE`, the rule name or `AS` missing; an unknown header
//!   clause (with and without a suggestion); a clause, label or annotation given twice;
//!   `LABELS (k = 'v')` syntax (`(`, name, `=`, quoted value, `)`); unquoted strings; `EMIT`
//!   other than SIGNAL / INSIGHT; sqlparser's errors (inside the query, at its end, past its
//!   nesting limit); expressions nested over 200 levels; tokens left after the query; `FOR` /
//!   `KEEP FIRING FOR` (stray word, missing FIRING or FOR, given twice); intervals (not quoted,
//!   not an interval, no unit, unknown unit as a word or in the text, over 365 days); `WITHIN`
//!   given twice or malformed.
//! - `plan.rs`: unknown severity (with and without a suggestion); WITH, ORDER BY, LIMIT, FETCH,
//!   UNION, a query that is not a SELECT; other dialects' SELECT parts (DISTINCT, INTO, QUALIFY;
//!   LATERAL VIEW, PREWHERE, WINDOW and the rest go the same way); no stream, two streams, stream arguments, TABLESAMPLE, a
//!   subquery; unknown stream (with and without a suggestion); WITHIN without MATCH_RECOGNIZE;
//!   MATCH_RECOGNIZE joined, grouped or selecting columns; GROUP BY ALL, ROLLUP, a constant, a
//!   label map, two windows, a join's non-key column; aggregates without a window (found by
//!   GROUP BY, by aggregate, by HAVING); SELECT * with aggregates; a name selected twice; window
//!   calls (arguments, HOP slide and size, zero, under a second, over 10 000 slides, sizes that
//!   are numbers, nonsense, unitless, in unknown units, over 365 days); annotation templates
//!   (unclosed, empty, unknown name with and without a suggestion); a rule defined twice in a
//!   text and across files, and files that are missing or not UTF-8 (`RuleSet::load`).
//! - `check.rs`: conditions that are not (WHERE, HAVING, WHEN, ON, DEFINE); `a.b.c`; unsupported
//!   unary and binary operators; operand types (NOT, -, AND, LIKE, IS TRUE, FLOOR, SUBSTR,
//!   arithmetic, comparisons, IN, BETWEEN, aggregates); CAST targets; LIKE / regex patterns that
//!   are not literals or do not compile; unsupported expressions (ESCAPE, TRIM LEADING, EXISTS,
//!   subqueries, literals); unknown qualifiers and columns (with a suggestion, with the list,
//!   double-quoted strings, window_start outside windows); columns outside GROUP BY; join names
//!   (ambiguous, misspelt, not a label map); label access (non-map, expression, two indexes, a
//!   number key); intervals; function calls (named arguments, argument clauses, OVER, FILTER,
//!   DISTINCT, `*`, windows outside GROUP BY, aggregates in rows or aggregates, arity of
//!   aggregates, scalars and regexp_like, percentile's quantile, unknown names with and without
//!   a suggestion); expressions nested over 40 levels.
//! - `sequence.rs`: ORDER BY other than ts; over 63 variables; ALL ROWS PER MATCH; AFTER MATCH
//!   other than SKIP PAST LAST ROW; DEFINE of an unused variable (with a suggestion), twice, or
//!   reading another row; pattern elements (anchors, repeated groups), empty quantifiers, a
//!   pattern that needs no row; MEASURES (unknown variable in three forms, unknown aggregate,
//!   other expressions, `SUM(*)`, a name twice, a misspelt column).
//! - `join.rs`: a third stream; LEFT JOIN, USING; a subquery, arguments or a misspelt stream on
//!   the right; both sides with one name; a time bound that is empty, too wide, missing, or
//!   that does not overlap another; `incidents` joined with another stream.
//! - Rules over `incidents` that would emit signals (one stream, or a join of two).
//!
//! Not reachable from rule text, so not here: the `internal: ...` guards; `MATCH_RECOGNIZE`
//! over something other than a table, `one alias per SELECT item` and subquery arguments
//! (`f(SELECT ...)`), which sqlparser's generic dialect does not parse; number literals that are
//! not numbers and double-quoted string literals (sqlparser makes them names); the join's
//! `unknown table` (qualifiers are checked first); a directory that cannot be listed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;

mod common;

use common::{ev, listed};
use kaizen_rules::{run, RuleSet, Window};

#[rustfmt::skip]
macro_rules! rule { ($q:literal) => { concat!("CREATE RULE r AS ", $q) }; }
#[rustfmt::skip]
macro_rules! logs { ($w:literal) => { concat!("CREATE RULE r AS SELECT * FROM logs WHERE ", $w) }; }
#[rustfmt::skip]
macro_rules! metrics { ($w:literal) => { concat!("CREATE RULE r AS SELECT * FROM metrics WHERE ", $w) }; }
#[rustfmt::skip]
macro_rules! group { ($g:literal) => { concat!("CREATE RULE r AS SELECT count(*) AS n FROM logs GROUP BY ", $g) }; }
#[rustfmt::skip]
macro_rules! agg { ($item:literal) => {
    concat!("CREATE RULE r AS SELECT service, ", $item, " FROM metrics GROUP BY service, TUMBLE(ts, INTERVAL '1' MINUTE)")
}; }
#[rustfmt::skip]
macro_rules! join { ($rest:literal) => { concat!("CREATE RULE r AS SELECT a.name FROM alerts a JOIN logs l ON ",
    "l.service = a.service AND l.ts BETWEEN a.ts AND a.ts + INTERVAL '1' MINUTE ", $rest) }; }
/// A `MATCH_RECOGNIZE` rule: MEASURES, PATTERN, [WITHIN,] DEFINE.
#[rustfmt::skip]
macro_rules! seq {
    ($m:literal, $p:literal, $d:literal) => { concat!(seq!(), $m, " PATTERN (", $p, ") DEFINE ", $d, ")") };
    ($m:literal, $p:literal, $w:literal, $d:literal) => {
        concat!(seq!(), $m, " PATTERN (", $p, ") ", $w, " DEFINE ", $d, ")")
    };
    () => { "CREATE RULE r AS SELECT * FROM events MATCH_RECOGNIZE (PARTITION BY service ORDER BY ts MEASURES " };
}

/// A case: what, rule text, message (a substring), line, column, help (a substring; `None`:
/// no help).
type Case = (&'static str, &'static str, &'static str, u64, u64, Help);
/// A suggestion the error must have (a substring), or `None`: no help.
type Help = Option<&'static str>;
/// What an odd file gives: how many rules, or the error's message, line and column.
type Outcome = Result<usize, (&'static str, u64, u64)>;

#[rustfmt::skip]
const CASES: &[Case] = &[
    // Files and statements, the rule header and trailer (syntax.rs).
    ("unterminated string", logs!("message = 'abc"), "unterminated string literal", 1, 53, None),
    ("unterminated comment", logs!("message = 'a' /* no end"), "unexpected EOF while in a multi-line comment", 1, 57, None),
    ("unterminated quoted name", logs!("message = \"abc"), "expected close delimiter '\"' before EOF.", 1, 53, None),
    ("not a rule", "SELECT * FROM logs", "expected `CREATE`, found `SELECT`", 1, 1, None),
    ("CREATE something else", "CREATE TABLE t (x INT)", "expected `RULE`, found `TABLE`", 1, 8, Some("a rule file holds statements like: CREATE RULE")),
    ("end of the header", "CREATE", "expected `RULE`, found the end of the rule", 1, 7, Some("a rule file holds statements like: CREATE RULE")),
    ("rule name missing", "CREATE RULE 'r' AS SELECT * FROM logs", "expected the rule name, found `'r'`", 1, 13, None),
    ("header without AS", "CREATE RULE r SEVERITY 'critical'", "expected `AS` and the rule's query", 1, 34, None),
    ("unknown clause, close", "CREATE RULE r SEVERTY 'critical' AS SELECT * FROM logs", "unknown rule clause `SEVERTY`", 1, 15, Some("did you mean SEVERITY?")),
    ("unknown clause", "CREATE RULE r PRIORITY 'high' AS SELECT * FROM logs", "unknown rule clause `PRIORITY`", 1, 15, Some("rule clauses are SEVERITY, LABELS, SUMMARY,")),
    ("severity unquoted", "CREATE RULE r SEVERITY critical AS SELECT * FROM logs", "expected the severity as a quoted string, found `critical`", 1, 24, Some("strings use single quotes: 'like this'")),
    ("clause twice", "CREATE RULE r SEVERITY 'info' SEVERITY 'critical' AS SELECT * FROM logs", "SEVERITY is given twice", 1, 31, Some("keep one SEVERITY clause")),
    ("labels without (", "CREATE RULE r LABELS team = 'db' AS SELECT * FROM logs", "expected `(`, found `team`", 1, 22, None),
    ("label name quoted", "CREATE RULE r LABELS ('team' = 'db') AS SELECT * FROM logs", "expected a label name, found `'team'`", 1, 23, None),
    ("label without =", "CREATE RULE r LABELS (team 'db') AS SELECT * FROM logs", "expected `=`, found `'db'`", 1, 28, None),
    ("label value unquoted", "CREATE RULE r LABELS (team = db) AS SELECT * FROM logs", "expected the label value as a quoted string, found `db`", 1, 30, Some("strings use single quotes: 'like this'")),
    ("labels without )", "CREATE RULE r LABELS (team = 'db' AS SELECT * FROM logs", "expected `)`, found `AS`", 1, 35, None),
    ("label twice", "CREATE RULE r LABELS (team = 'db', team = 'api') AS SELECT * FROM logs", "label `team` is given twice", 1, 36, None),
    ("annotation twice", "CREATE RULE r SUMMARY 'a' ANNOTATIONS (summary = 'b') AS SELECT * FROM logs", "annotation `summary` is given twice", 1, 40, None),
    ("EMIT what", "CREATE RULE r EMIT PAGE AS SELECT * FROM logs", "expected SIGNAL or INSIGHT after EMIT, found `PAGE`", 1, 20, None),
    ("sqlparser error, multi-line", "CREATE RULE r\nAS SELECT *\n   FROM logs\n   WHERE level = = 'error'", "expected an expression, found `=`", 4, 18, None),
    ("query ends early", logs!("level ="), "expected an expression, found the end of the rule", 1, 50, None),
    ("no query", "CREATE RULE r AS", "expected SELECT, VALUES, or a subquery in the query body, found the end of the rule", 1, 17, None),
    ("leftover after query", logs!("level = 'x' )"), "unexpected `)` after the query", 1, 55, Some("after the query only FOR and KEEP FIRING FOR may follow")),
    ("word after trailer", "CREATE RULE r AS SELECT * FROM logs FOR '5m' NOW", "unexpected `NOW` after the query", 1, 46, Some("after the query only FOR and KEEP FIRING FOR may follow")),
    ("KEEP without FIRING", "CREATE RULE r AS SELECT * FROM logs KEEP FOR '5m'", "expected `FIRING`, found `FOR`", 1, 42, None),
    ("KEEP FIRING without FOR", "CREATE RULE r AS SELECT * FROM logs KEEP FIRING '5m'", "expected `FOR`, found `'5m'`", 1, 49, None),
    ("FOR twice", "CREATE RULE r AS SELECT * FROM logs FOR '1m' FOR '2m'", "FOR is given twice", 1, 46, None),
    ("KEEP FIRING FOR twice", "CREATE RULE r AS SELECT * FROM logs KEEP FIRING FOR '1m' KEEP FIRING FOR '2m'", "KEEP FIRING FOR is given twice", 1, 58, None),
    ("FOR a word", "CREATE RULE r AS SELECT * FROM logs FOR soon", "expected an interval such as INTERVAL '5' MINUTE as a quoted string, found `soon`", 1, 41, Some("strings use single quotes: 'like this'")),
    ("FOR a number", "CREATE RULE r AS SELECT * FROM logs FOR 5", "`5` has no unit", 1, 41, Some("units are ms, s, m, h, d and w, or MILLISECOND,")),
    ("FOR nonsense", "CREATE RULE r AS SELECT * FROM logs FOR INTERVAL 'soon'", "`INTERVAL 'soon'` is not an interval", 1, 41, Some("write INTERVAL '5' MINUTE, INTERVAL '30 seconds' or '2h'")),
    ("FOR without unit", "CREATE RULE r AS SELECT * FROM logs FOR '5'", "`'5'` has no unit", 1, 41, Some("units are ms, s, m, h, d and w, or MILLISECOND,")),
    ("FOR unknown unit word", "CREATE RULE r AS SELECT * FROM logs FOR INTERVAL '5' MONTH", "unknown interval unit `MONTH`", 1, 54, Some("units are ms, s, m, h, d and w, or MILLISECOND,")),
    ("FOR unknown unit in text", "CREATE RULE r AS SELECT * FROM logs FOR '2 fortnights'", "unknown interval unit `fortnights`", 1, 41, Some("units are ms, s, m, h, d and w, or MILLISECOND,")),
    ("FOR too long", "CREATE RULE r AS SELECT * FROM logs FOR '99999999999999999999h'", "`'99999999999999999999h'` is too long", 1, 41, Some("intervals in rules are at most 365 days")),
    ("KEEP FIRING FOR too long", "CREATE RULE r AS SELECT * FROM logs KEEP FIRING FOR INTERVAL '366' DAY", "`INTERVAL '366' DAY` is too long", 1, 53, Some("intervals in rules are at most 365 days")),
    ("WITHIN twice", seq!("COUNT(A.*) AS n", "A B", "WITHIN '1m' WITHIN '2m'", "A AS A.kind = 'log'"), "WITHIN is given twice", 1, 140, None),
    ("WITHIN bad interval", seq!("COUNT(A.*) AS n", "A B", "WITHIN 'soon'", "A AS A.kind = 'log'"), "`'soon'` is not an interval", 1, 135, Some("write INTERVAL '5' MINUTE, INTERVAL '30 seconds' or '2h'")),
    // The rule's query: clauses, stream, GROUP BY, windows, outputs, templates (plan.rs).
    ("severity typo", "CREATE RULE r SEVERITY 'critcal' AS SELECT * FROM logs", "unknown severity 'critcal'", 1, 24, Some("did you mean 'critical'?")),
    ("severity unknown", "CREATE RULE r SEVERITY 'page' AS SELECT * FROM logs", "unknown severity 'page'", 1, 24, Some("severity is 'info', 'warning' or 'critical'")),
    ("WITH", rule!("WITH e AS (SELECT * FROM logs) SELECT * FROM e"), "WITH is not supported in rules", 1, 18, Some("a rule is one SELECT over a stream, which it")),
    ("ORDER BY", logs!("level = 'error' ORDER BY ts"), "ORDER BY is not supported in rules", 1, 68, Some("a rule is one SELECT over a stream, which it")),
    ("LIMIT", logs!("level = 'error' LIMIT 5"), "LIMIT is not supported in rules", 1, 65, Some("a rule is one SELECT over a stream, which it")),
    ("FETCH", logs!("level = 'x' FETCH FIRST 5 ROWS ONLY"), "FETCH is not supported in rules", 1, 67, Some("a rule is one SELECT over a stream, which it")),
    ("UNION", rule!("SELECT * FROM logs UNION SELECT * FROM metrics"), "UNION is not supported: a rule's query is a single SELECT", 1, 43, Some("write one rule per SELECT")),
    ("not a SELECT", rule!("VALUES (1)"), "a rule's query must be a single SELECT", 1, 18, None),
    ("SELECT DISTINCT", rule!("SELECT DISTINCT service FROM logs"), "SELECT DISTINCT is not supported in rules", 1, 18, None),
    ("SELECT INTO", rule!("SELECT service INTO t FROM logs"), "SELECT INTO is not supported in rules", 1, 38, None),
    ("QUALIFY", rule!("SELECT service FROM logs QUALIFY 1"), "QUALIFY is not supported in rules", 1, 51, None),
    ("two streams", rule!("SELECT * FROM logs, metrics"), "a rule reads one stream, or joins two with JOIN ... ON", 1, 38, Some("write FROM alerts a JOIN logs l ON l.service =")),
    ("no stream", rule!("SELECT 1"), "a rule reads exactly one stream: SELECT ... FROM <stream>", 1, 18, Some("streams: alerts, metrics, logs, spans, changes, events, signals")),
    ("stream with arguments", rule!("SELECT * FROM logs('x')"), "a stream takes no arguments, hints, column aliases or TABLESAMPLE", 1, 32, None),
    ("TABLESAMPLE", rule!("SELECT * FROM logs TABLESAMPLE (10 PERCENT)"), "a stream takes no arguments, hints, column aliases or TABLESAMPLE", 1, 32, None),
    ("subquery as stream", rule!("SELECT * FROM (SELECT * FROM logs) l"), "`(SELECT * FROM logs) l` is not a stream", 1, 33, Some("streams: alerts, metrics, logs, spans, changes, events, signals")),
    ("stream typo", rule!("SELECT * FROM logz"), "unknown stream `logz`", 1, 32, Some("did you mean `logs`?")),
    ("stream unknown", rule!("SELECT * FROM telemetry"), "unknown stream `telemetry`", 1, 32, Some("streams: alerts, metrics, logs, spans, changes, events, signals")),
    ("WITHIN without MATCH_RECOGNIZE", logs!("level = 'x' WITHIN '5m'"), "WITHIN only applies to MATCH_RECOGNIZE", 1, 55, Some("a join's rows are bounded with BETWEEN in ON;")),
    ("MATCH_RECOGNIZE joined", rule!("SELECT * FROM events MATCH_RECOGNIZE (PARTITION BY service ORDER BY ts MEASURES COUNT(A.*) AS n PATTERN (A) DEFINE A AS A.kind = 'log') JOIN logs l ON l.ts BETWEEN ts AND ts"), "MATCH_RECOGNIZE cannot be joined", 1, 159, None),
    ("MATCH_RECOGNIZE with GROUP BY", rule!("SELECT * FROM events MATCH_RECOGNIZE (PARTITION BY service ORDER BY ts MEASURES COUNT(A.*) AS n PATTERN (A) DEFINE A AS A.kind = 'log') GROUP BY service"), "GROUP BY and HAVING do not apply to MATCH_RECOGNIZE", 1, 163, Some("a sequence is keyed by PARTITION BY; name its")),
    ("MATCH_RECOGNIZE selects columns", rule!("SELECT service FROM events MATCH_RECOGNIZE (PARTITION BY service ORDER BY ts MEASURES COUNT(A.*) AS n PATTERN (A) DEFINE A AS A.kind = 'log')"), "a MATCH_RECOGNIZE rule selects `*`; name its outputs in MEASURES", 1, 25, None),
    ("GROUP BY ALL", rule!("SELECT service FROM logs GROUP BY ALL"), "GROUP BY ALL is not supported", 1, 18, Some("list the keys")),
    ("GROUP BY ROLLUP", rule!("SELECT service FROM logs GROUP BY service WITH ROLLUP"), "GROUP BY modifiers (ROLLUP, CUBE, TOTALS) are not supported", 1, 52, None),
    ("two windows", group!("TUMBLE(ts, INTERVAL '1' MINUTE), TUMBLE(ts, INTERVAL '2' MINUTE)"), "only one window per rule", 1, 91, None),
    ("GROUP BY a number", rule!("SELECT service FROM logs GROUP BY 1"), "GROUP BY takes columns, not constants or column numbers", 1, 52, Some("name the column: GROUP BY service")),
    ("GROUP BY a label map", group!("labels, TUMBLE(ts, INTERVAL '1' MINUTE)"), "group by one label: labels['key']", 1, 58, None),
    ("join grouped by a non-key", rule!("SELECT count(*) AS n FROM alerts a JOIN logs l ON l.service = a.service AND l.ts BETWEEN a.ts AND a.ts + INTERVAL '1' MINUTE GROUP BY l.level, TUMBLE(ts, INTERVAL '1' MINUTE)"), "a join rule groups by its join keys", 1, 152, Some("GROUP BY the columns ON compares with =, e.g. a.service")),
    ("aggregate without window", rule!("SELECT service, count(*) AS n FROM logs GROUP BY service"), "an aggregating rule needs a window in GROUP BY", 1, 67, Some("add TUMBLE(ts, INTERVAL '1' MINUTE), HOP(ts,")),
    ("aggregate without GROUP BY", rule!("SELECT count(*) AS n FROM logs"), "an aggregating rule needs a window in GROUP BY", 1, 25, Some("add TUMBLE(ts, INTERVAL '1' MINUTE), HOP(ts,")),
    ("HAVING without window", rule!("SELECT service FROM logs HAVING service = 'x'"), "an aggregating rule needs a window in GROUP BY", 1, 50, Some("add TUMBLE(ts, INTERVAL '1' MINUTE), HOP(ts,")),
    ("SELECT * with aggregates", rule!("SELECT * FROM logs GROUP BY service, TUMBLE(ts, INTERVAL '1' MINUTE)"), "SELECT * does not apply to an aggregating rule", 1, 25, Some("select the keys and aggregates, e.g. SELECT")),
    ("selected twice", rule!("SELECT service AS s, level AS s FROM logs"), "`s` is selected twice", 1, 39, Some("give one of them another name with AS")),
    ("TUMBLE arguments", group!("TUMBLE(ts)"), "write TUMBLE(ts, INTERVAL '1' MINUTE)", 1, 58, None),
    ("TUMBLE on another column", group!("TUMBLE(service, INTERVAL '1' MINUTE)"), "write TUMBLE(ts, INTERVAL '1' MINUTE)", 1, 58, None),
    ("HOP arguments", group!("HOP(ts, INTERVAL '1' MINUTE)"), "write HOP(ts, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE) — slide, then size", 1, 58, None),
    ("HOP size not a multiple", group!("HOP(ts, INTERVAL '2' MINUTE, INTERVAL '3' MINUTE)"), "a HOP window's size must be a positive multiple of its slide", 1, 58, None),
    ("window of zero", group!("TUMBLE(ts, INTERVAL '0' MINUTE)"), "a window must be longer than zero", 1, 58, None),
    ("window under a second", group!("TUMBLE(ts, INTERVAL '500' MILLISECOND)"), "a window (and a HOP's slide) must be at least 1 second", 1, 58, Some("write TUMBLE(ts, INTERVAL '1' MINUTE)")),
    ("HOP of too many slides", group!("HOP(ts, INTERVAL '1' SECOND, INTERVAL '1' DAY)"), "a HOP window spans at most 10000 slides", 1, 58, Some("use a longer slide, or TUMBLE")),
    ("window size a number", group!("TUMBLE(ts, 60)"), "expected an interval, found `60`", 1, 69, Some("write INTERVAL '1' MINUTE")),
    ("window size nonsense", group!("SESSION(ts, 'soon')"), "`'soon'` is not an interval", 1, 70, Some("write INTERVAL '5' MINUTE, INTERVAL '30 seconds' or '2h'")),
    ("window size without unit", group!("TUMBLE(ts, '60')"), "`'60'` has no unit", 1, 69, Some("units are ms, s, m, h, d and w, or MILLISECOND,")),
    ("window unit unknown", group!("TUMBLE(ts, INTERVAL '1' MONTH)"), "unknown interval unit `MONTH`", 1, 78, Some("units are ms, s, m, h, d and w, or MILLISECOND,")),
    ("window too long", group!("TUMBLE(ts, INTERVAL '1000' DAY)"), "`INTERVAL '1000' DAY` is too long", 1, 78, Some("intervals in rules are at most 365 days")),
    ("template unclosed", "CREATE RULE r SUMMARY '{{service' AS SELECT * FROM logs", "unclosed `{{` in template '{{service'", 1, 23, None),
    ("template empty", "CREATE RULE r SUMMARY 'on {{ }}' AS SELECT * FROM logs", "empty `{{}}` in template 'on {{ }}'", 1, 23, None),
    ("template typo", "CREATE RULE r SUMMARY '{{servce}} is down' AS SELECT service FROM logs", "`{{servce}}` in summary is not a column of the rule's result", 1, 23, Some("did you mean `{{service}}`?")),
    ("template unknown", "CREATE RULE r DESCRIPTION '{{owner}}' AS SELECT service FROM logs", "`{{owner}}` in description is not a column of the rule's result", 1, 27, Some("the result has: service, rule, severity,")),
    ("rule defined twice", "CREATE RULE r AS SELECT * FROM logs;\nCREATE RULE r AS SELECT * FROM metrics;", "rule `r` is defined twice", 2, 1, Some("first defined at t.sql:1")),
    // Expressions: names, types, operators, functions, aggregates, labels, intervals (check.rs).
    ("WHERE not a condition", logs!("level"), "WHERE needs a condition, but this is a string", 1, 43, Some("compare it with something, e.g. `value > 0.9`")),
    ("HAVING not a condition", rule!("SELECT service, count(*) AS n FROM logs GROUP BY service, TUMBLE(ts, INTERVAL '1' MINUTE) HAVING count(*)"), "HAVING needs a condition, but this is a number", 1, 115, Some("compare it with something, e.g. `value > 0.9`")),
    ("WHEN not a condition", metrics!("CASE WHEN value THEN 1 END = 1"), "WHEN needs a condition, but this is a number", 1, 56, Some("compare it with something, e.g. `value > 0.9`")),
    ("three-part name", logs!("a.b.c = 1"), "`a.b.c`: write `column` or `alias.column`", 1, 43, None),
    ("unsupported unary operator", metrics!("~value = 1"), "operator `~` is not supported", 1, 47, None),
    ("NOT of a string", logs!("NOT level"), "NOT needs a boolean, but `level` is a string", 1, 47, None),
    ("minus of a string", logs!("-level = 1"), "- needs a number, but `level` is a string", 1, 44, None),
    ("AND of a number", logs!("level = 'x' AND 1"), "AND needs a boolean, but `1` is a number", 1, 59, None),
    ("LIKE on a number", metrics!("value LIKE '9%'"), "LIKE needs a string, but `value` is a number", 1, 46, None),
    ("LIKE pattern a column", logs!("message LIKE level"), "expected a LIKE pattern as a quoted string, found `level`", 1, 56, None),
    ("LIKE ESCAPE", logs!("message LIKE '%a' ESCAPE '!'"), "`message LIKE '%a' ESCAPE '!'` is not supported in rules", 1, 43, Some("rules support columns, literals, arithmetic,")),
    ("IS TRUE of a number", metrics!("value IS TRUE"), "IS TRUE needs a boolean, but `value` is a number", 1, 46, None),
    ("compare number with string", metrics!("value > 'high'"), "cannot compare a number with a string", 1, 46, Some("quote strings ('critical') and leave numbers bare (0.9)")),
    ("IN list of mixed types", logs!("level IN ('error', 5)"), "cannot compare a string with a number", 1, 62, Some("quote strings ('critical') and leave numbers bare (0.9)")),
    ("BETWEEN strings and numbers", metrics!("value BETWEEN 'a' AND 2"), "cannot compare a number with a string", 1, 60, Some("quote strings ('critical') and leave numbers bare (0.9)")),
    ("CAST to a date", metrics!("CAST(value AS DATE) IS NULL"), "cannot CAST to DATE", 1, 51, Some("CAST to DOUBLE or VARCHAR")),
    ("FLOOR of a string", logs!("FLOOR(message) = 1"), "FLOOR / CEIL needs a number, but `message` is a string", 1, 49, None),
    ("SUBSTR of a number", metrics!("SUBSTR(value, 1) = '1'"), "SUBSTR needs a string, but `value` is a number", 1, 53, None),
    ("SUBSTRING without start", logs!("SUBSTRING(message FOR 3) = 'x'"), "write SUBSTR(text, start[, length])", 1, 53, None),
    ("TRIM LEADING", logs!("TRIM(LEADING 'x' FROM message) = 'y'"), "`TRIM(LEADING 'x' FROM message)` is not supported in rules", 1, 56, Some("rules support columns, literals, arithmetic,")),
    ("EXISTS", logs!("EXISTS (SELECT 1)"), "`EXISTS (SELECT 1)` is not supported in rules", 1, 51, Some("rules support columns, literals, arithmetic,")),
    ("subquery", logs!("level = (SELECT 1)"), "`(SELECT 1)` is not supported in rules", 1, 52, Some("rules support columns, literals, arithmetic,")),
    ("unknown qualifier, close", rule!("SELECT * FROM logs l WHERE m.level = 'error'"), "unknown table or pattern variable `m`", 1, 45, Some("did you mean `l`?")),
    ("unknown qualifier", rule!("SELECT * FROM logs l WHERE zz.level = 'error'"), "unknown table or pattern variable `zz`", 1, 45, Some("in scope: logs, l")),
    ("column outside GROUP BY", rule!("SELECT service, level, count(*) AS n FROM logs GROUP BY service, TUMBLE(ts, INTERVAL '1' MINUTE)"), "column `level` must appear in GROUP BY or inside an aggregate", 1, 34, Some("add `level` to GROUP BY, or use e.g. last(level)")),
    ("column typo", logs!("levle = 'error'"), "unknown column `levle` in `logs`", 1, 43, Some("did you mean `level`?")),
    ("column unknown", logs!("value > 1"), "unknown column `value` in `logs`", 1, 43, Some("`logs` has: ts, service, kind, level, message,")),
    ("double-quoted string", logs!("message = \"timeout\""), "unknown column `timeout` in `logs`", 1, 53, Some("\"timeout\" is a quoted name; strings use single quotes: 'timeout'")),
    ("window_start outside a window", logs!("window_start > 0"), "unknown column `window_start` in `logs`", 1, 43, Some("`logs` has: ts, service, kind, level, message,")),
    ("join column ambiguous", join!("WHERE service = 'api'"), "`service` is ambiguous in a join", 1, 142, Some("write a.service or l.service")),
    ("join column typo", join!("WHERE l.levle = 'error'"), "unknown column `levle` in `logs`", 1, 144, Some("did you mean `level`?")),
    ("join label map typo", join!("WHERE a.service['x'] = 'y'"), "`service` is not a label map of `alerts`", 1, 142, Some("index labels['key'] (and annotations['key'] on alerts)")),
    ("join label ambiguous", rule!("SELECT a.name FROM alerts a JOIN logs l ON l.ts BETWEEN a.ts AND a.ts + INTERVAL '1' MINUTE WHERE labels['x'] = 'y'"), "`labels` is ambiguous in a join", 1, 116, Some("write a.labels or l.labels")),
    ("index a non-map", logs!("service['x'] = 'y'"), "`service` is not a label map of `logs`", 1, 43, Some("index labels['key'] (and annotations['key'] on alerts)")),
    ("index an expression", logs!("(labels)['x'] = 'y'"), "only labels['key'] and annotations['key'] can be indexed", 1, 44, None),
    ("index twice", logs!("labels['a']['b'] = 'y'"), "write labels['key'] with one quoted key", 1, 43, None),
    ("index twice in a join", join!("WHERE l.labels['a']['b'] = 'y'"), "write labels['key'] with one quoted key", 1, 142, None),
    ("label key a number", logs!("labels[1] = 'y'"), "expected a label key as a quoted string, found `1`", 1, 50, None),
    ("label outside GROUP BY", rule!("SELECT labels['team'] AS team, count(*) AS n FROM logs GROUP BY service, TUMBLE(ts, INTERVAL '1' MINUTE)"), "`labels['team']` must appear in GROUP BY or inside an aggregate", 1, 25, Some("add `labels['team']` to GROUP BY")),
    ("interval nonsense", logs!("ts > INTERVAL 'soon' MINUTE"), "`INTERVAL 'soon' MINUTE` is not an interval", 1, 57, Some("write INTERVAL '5' MINUTE, INTERVAL '30 seconds' or '2h'")),
    ("interval without unit", logs!("ts > INTERVAL '5'"), "`INTERVAL '5'` has no unit", 1, 57, Some("units are ms, s, m, h, d and w, or MILLISECOND,")),
    ("bad regex", logs!("message ~ '(unclosed'"), "bad regex: unclosed group", 1, 53, None),
    ("regex a column", logs!("message ~ level"), "expected a regex as a quoted string, found `level`", 1, 53, None),
    ("arithmetic on a string", logs!("message - 1 > 0"), "arithmetic needs numbers, but `message` is a string", 1, 43, None),
    ("unsupported operator", metrics!("value & 1 > 0"), "operator `&` is not supported", 1, 46, None),
    ("named argument", logs!("lower(a => message) = 'x'"), "`lower`: only plain positional arguments are supported", 1, 43, None),
    ("argument clause", logs!("lower(message ORDER BY ts) = 'x'"), "`lower`: clauses inside the arguments are not supported", 1, 43, None),
    ("OVER", rule!("SELECT count(*) OVER (PARTITION BY service) AS n FROM logs"), "`count` OVER (...) is not supported in rules", 1, 25, Some("aggregate in windows: GROUP BY ..., TUMBLE(ts,")),
    ("FILTER", agg!("count(*) FILTER (WHERE value > 1) AS n"), "`count`: FILTER, WITHIN GROUP, IGNORE NULLS and parameters are not supported", 1, 34, None),
    ("DISTINCT in sum", agg!("sum(DISTINCT value) AS n"), "`sum(DISTINCT ...)` is not supported", 1, 34, Some("DISTINCT is for count(DISTINCT column)")),
    ("star in sum", agg!("sum(*) AS n"), "`sum` does not take `*`", 1, 34, Some("write sum(column); only count(*) and rate(*) count rows")),
    ("star in lower", logs!("lower(*) = 'x'"), "`lower` does not take `*`", 1, 43, None),
    ("window in WHERE", logs!("TUMBLE(ts, INTERVAL '1' MINUTE) IS NULL"), "TUMBLE windows belong in GROUP BY", 1, 43, None),
    ("aggregate in WHERE", logs!("count(*) > 5"), "aggregate `count` is not allowed here", 1, 43, Some("aggregates go in SELECT and HAVING of a rule")),
    ("aggregate of aggregate", agg!("sum(count(*)) AS n"), "aggregate `count` is not allowed here", 1, 38, Some("aggregates go in SELECT and HAVING of a rule")),
    ("aggregate without argument", agg!("sum() AS n"), "`sum` takes 1 argument, got 0", 1, 34, Some("aggregates take one column, e.g. max(value)")),
    ("aggregate with two arguments", agg!("max(value, 2) AS n"), "`max` takes 1 argument, got 2", 1, 34, Some("aggregates take one column, e.g. max(value)")),
    ("sum of strings", agg!("sum(name) AS n"), "`sum` needs a number, but `name` is a string", 1, 38, None),
    ("percentile without quantile", agg!("percentile(value) AS n"), "`percentile` needs a quantile between 0 and 1", 1, 34, Some("write percentile(duration_ms, 0.99) or p99(duration_ms)")),
    ("percentile out of range", agg!("percentile(value, 0) AS n"), "`percentile` needs a quantile between 0 and 1", 1, 34, Some("write percentile(duration_ms, 0.99) or p99(duration_ms)")),
    ("regexp_like arity", logs!("regexp_like(message)"), "`regexp_like` takes 2 arguments, got 1", 1, 43, Some("write regexp_like(text, 'regex')")),
    ("function typo", logs!("lowr(message) = 'x'"), "unknown function `lowr`", 1, 43, Some("did you mean `lower`?")),
    ("function unknown", logs!("frobnicate(message) = 'x'"), "unknown function `frobnicate`", 1, 43, None),
    ("function arity", logs!("replace(message, 'a') = 'x'"), "`replace` takes 3 arguments, got 2", 1, 43, None),
    ("unsupported literal", logs!("message = X'AB'"), "literal `X'AB'` is not supported", 1, 53, None),
    // MATCH_RECOGNIZE (sequence.rs).
    ("ORDER BY not ts", rule!("SELECT * FROM events MATCH_RECOGNIZE (PARTITION BY service ORDER BY service MEASURES COUNT(A.*) AS n PATTERN (A) DEFINE A AS A.kind = 'log')"), "MATCH_RECOGNIZE orders by event time: ORDER BY ts", 1, 86, None),
    ("ALL ROWS PER MATCH", rule!("SELECT * FROM events MATCH_RECOGNIZE (PARTITION BY service ORDER BY ts MEASURES COUNT(A.*) AS n ALL ROWS PER MATCH PATTERN (A) DEFINE A AS A.kind = 'log')"), "ALL ROWS PER MATCH is not supported", 1, 32, Some("a MATCH_RECOGNIZE rule emits ONE ROW PER MATCH")),
    ("AFTER MATCH SKIP TO NEXT ROW", rule!("SELECT * FROM events MATCH_RECOGNIZE (PARTITION BY service ORDER BY ts MEASURES COUNT(A.*) AS n AFTER MATCH SKIP TO NEXT ROW PATTERN (A) DEFINE A AS A.kind = 'log')"), "AFTER MATCH SKIP TO NEXT ROW is not supported", 1, 32, Some("matching restarts after a match: AFTER MATCH SKIP PAST LAST ROW")),
    ("DEFINE unused variable", seq!("COUNT(A.*) AS n", "A B", "C AS C.kind = 'log'"), "`C` is defined but not used in PATTERN", 1, 135, Some("did you mean `A`?")),
    ("DEFINE twice", seq!("COUNT(A.*) AS n", "A B", "A AS A.kind = 'log', A AS A.level = 'error'"), "`A` is defined twice", 1, 156, None),
    ("DEFINE reads another row", seq!("COUNT(A.*) AS n", "A B", "A AS B.kind = 'log'"), "DEFINE A may only read its own row, not `B`", 1, 140, Some("compare across rows in MEASURES, or use WITHIN for time bounds")),
    ("DEFINE not a condition", seq!("COUNT(A.*) AS n", "A B", "A AS A.kind"), "DEFINE needs a condition, but this is a string", 1, 140, Some("compare it with something, e.g. `value > 0.9`")),
    ("pattern anchor", seq!("COUNT(A.*) AS n", "A ^ B", "A AS A.kind = 'log'"), "pattern element `^` is not supported", 1, 123, Some("patterns are sequences of variables or (A | B)")),
    ("pattern group repeated", seq!("COUNT(A.*) AS n", "A (B C)+", "A AS A.kind = 'log'"), "pattern element `( B C )+` is not supported", 1, 126, Some("patterns are sequences of variables or (A | B)")),
    ("quantifier of zero", seq!("COUNT(A.*) AS n", "A B{0}", "A AS A.kind = 'log'"), "quantifier in `B{0}` matches nothing", 1, 125, Some("quantifiers are *, +, ?, {n}, {n,} and {n,m} with n ≤ m")),
    ("quantifier backwards", seq!("COUNT(A.*) AS n", "A B{3,2}", "A AS A.kind = 'log'"), "quantifier in `B{3,2}` matches nothing", 1, 125, Some("quantifiers are *, +, ?, {n}, {n,} and {n,m} with n ≤ m")),
    ("pattern of optional rows", seq!("COUNT(A.*) AS n", "A* B?", "A AS A.kind = 'log'"), "the pattern must require at least one row", 1, 123, Some("a pattern that can match no rows would match")),
    ("measure of unknown variable", seq!("Z.ts AS t", "A", "A AS A.kind = 'log'"), "`Z` is not a pattern variable", 1, 98, None),
    ("measure COUNT(Z.*)", seq!("COUNT(Z.*) AS n", "A", "A AS A.kind = 'log'"), "`Z` is not a pattern variable", 1, 98, None),
    ("measure FIRST(Z.x)", seq!("FIRST(Z.ts) AS t", "A", "A AS A.kind = 'log'"), "`Z` is not a pattern variable", 1, 104, None),
    ("measure unknown aggregate", seq!("FROB(A.ts) AS t", "A", "A AS A.kind = 'log'"), "unknown aggregate `FROB`", 1, 98, Some("MEASURES take")),
    ("measure expression", seq!("1 + 1 AS t", "A", "A AS A.kind = 'log'"), "MEASURES take FIRST/LAST/COUNT/MIN/MAX/SUM/AVG(X.column), COUNT(X.*) or X.column", 1, 98, None),
    ("measure SUM(*)", seq!("SUM(*) AS t", "A", "A AS A.kind = 'log'"), "MEASURES take FIRST/LAST/COUNT/MIN/MAX/SUM/AVG(X.column), COUNT(X.*) or X.column", 1, 98, None),
    ("measure named twice", seq!("COUNT(A.*) AS n, LAST(A.ts) AS n", "A", "A AS A.kind = 'log'"), "measure `n` is named twice", 1, 129, None),
    ("measure column typo", seq!("LAST(A.tss) AS t", "A", "A AS A.kind = 'log'"), "unknown column `tss` in `events`", 1, 105, Some("did you mean `ts`?")),
    // Joins (join.rs).
    ("three streams", rule!("SELECT a.name FROM alerts a JOIN logs l ON l.ts BETWEEN a.ts AND a.ts + INTERVAL '1' MINUTE JOIN spans s ON s.ts BETWEEN a.ts AND a.ts + INTERVAL '1' MINUTE"), "a rule joins at most two streams", 1, 115, None),
    ("LEFT JOIN", rule!("SELECT a.name FROM alerts a LEFT JOIN logs l ON l.ts BETWEEN a.ts AND a.ts + INTERVAL '1' MINUTE"), "only inner joins with ON are supported", 1, 56, Some("write … JOIN logs l ON l.service = a.service")),
    ("JOIN USING", rule!("SELECT a.name FROM alerts a JOIN logs l USING (service)"), "only inner joins with ON are supported", 1, 51, Some("write … JOIN logs l ON l.service = a.service")),
    ("join a subquery", rule!("SELECT a.name FROM alerts a JOIN (SELECT * FROM logs) l ON l.ts BETWEEN a.ts AND a.ts + INTERVAL '1' MINUTE"), "a join reads streams by name", 1, 52, None),
    ("join a stream with arguments", rule!("SELECT a.name FROM alerts a JOIN logs('x') l ON l.ts BETWEEN a.ts AND a.ts + INTERVAL '1' MINUTE"), "a stream takes no arguments, hints, column aliases or TABLESAMPLE", 1, 51, None),
    ("join stream typo", rule!("SELECT a.name FROM alerts a JOIN logz l ON l.ts BETWEEN a.ts AND a.ts + INTERVAL '1' MINUTE"), "unknown stream `logz`", 1, 51, Some("did you mean `logs`?")),
    ("join sides with one name", rule!("SELECT a.name FROM alerts a JOIN logs a ON a.ts BETWEEN a.ts AND a.ts + INTERVAL '1' MINUTE"), "both sides of the join are called `a`", 1, 51, Some("give them different aliases, e.g. FROM logs a JOIN logs b")),
    ("join ON not a condition", rule!("SELECT a.name FROM alerts a JOIN logs l ON l.ts BETWEEN a.ts AND a.ts + INTERVAL '1' MINUTE AND a.name"), "ON needs a condition, but this is a string", 1, 114, Some("compare it with something, e.g. `value > 0.9`")),
    ("time bound backwards", rule!("SELECT a.name FROM alerts a JOIN logs l ON l.ts BETWEEN a.ts + INTERVAL '1' MINUTE AND a.ts"), "the time bound is empty: its low end is above its high end", 1, 61, None),
    ("time bound too wide", rule!("SELECT a.name FROM alerts a JOIN logs l ON l.ts BETWEEN a.ts AND a.ts + 1e300"), "the time bound is too wide", 1, 61, Some("a join's rows are at most 365 days apart")),
    ("no time bound", rule!("SELECT a.name FROM alerts a JOIN logs l ON l.service = a.service"), "a join needs a time bound, or its state would grow forever", 1, 61, Some("add e.g. AND l.ts BETWEEN a.ts - INTERVAL '5' MINUTE AND a.ts")),
    ("incidents emit signals", rule!("SELECT id FROM incidents WHERE severity = 'critical'"), "a rule over `incidents` emits insights, not signals", 1, 33, Some("add EMIT INSIGHT")),
    ("incidents joined with a stream", "CREATE RULE r EMIT INSIGHT AS SELECT i.id FROM incidents i JOIN alerts a ON a.ts BETWEEN i.ts AND i.ts + INTERVAL '1' MINUTE", "`incidents` joins only with `incidents`", 1, 65, Some("rules over incidents run after correlation")),
    ("incidents joined, emitting signals", "CREATE RULE r AS SELECT i.id FROM incidents i JOIN incidents j ON j.ts BETWEEN i.ts AND i.ts + INTERVAL '1' MINUTE", "a rule over `incidents` emits insights, not signals", 1, 35, Some("add EMIT INSIGHT")),
    ("incident column typo", "CREATE RULE r EMIT INSIGHT AS SELECT id FROM incidents WHERE impacted_cout > 2", "unknown column `impacted_cout`", 1, 62, Some("did you mean `impacted_count`?")),
    ("time bounds apart", join!("AND l.ts BETWEEN a.ts + INTERVAL '2' MINUTE AND a.ts + INTERVAL '3' MINUTE"), "the join's time bounds do not overlap: no rows can pair", 1, 61, None),
];

/// What is wrong with the error `text` gives, if anything.
fn mismatch(text: &str, message: &str, at: (u64, u64), help: Help) -> Option<String> {
    let (_, errors) = RuleSet::from_text("t.sql", text);
    let [e] = errors.as_slice() else {
        return Some(format!(
            "{} errors instead of one:\n{}",
            errors.len(),
            listed(&errors)
        ));
    };
    let help_ok = match (help, &e.help) {
        (None, None) => true,
        (Some(want), Some(got)) => got.contains(want),
        _ => false,
    };
    let rendered = e.to_string();
    // The source line is shown with a caret under the column (at most just past the line).
    let caret_ok = e.source_line.as_ref().is_some_and(|l| {
        e.at.column as usize <= l.chars().count() + 1
            && rendered.contains(&format!("\n{} | ", at.0))
    });
    let ok = e.message.contains(message)
        && (e.at.line, e.at.column) == at
        && help_ok
        && caret_ok
        && rendered.starts_with(&format!("t.sql:{}:{}: error: ", at.0, at.1));
    (!ok).then(|| {
        format!(
            "want {}:{} {message:?} help {help:?}, got\n{rendered}",
            at.0, at.1
        )
    })
}

#[test]
fn every_error_path_reports_its_message_location_and_suggestion() {
    let mut names: Vec<&str> = CASES.iter().map(|c| c.0).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), CASES.len(), "case names are unique");
    let failures: Vec<String> = CASES
        .iter()
        .filter_map(|&(name, text, message, line, col, help)| {
            mismatch(text, message, (line, col), help).map(|m| format!("[{name}] {m}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

const LOGS: &str = logs!("");
const METRICS: &str = metrics!("");

/// Rules too big or too deep for the parser or checker fail where they go wrong, with the
/// limit in the help; just under the limits they check.
#[test]
fn oversized_rules_fail_at_their_limit() {
    let chain = |n: usize| vec!["1"; n].join(" + ");
    let vars = |n: usize| {
        (0..n)
            .map(|i| format!("V{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let pattern = |p: String| {
        format!("CREATE RULE r AS SELECT * FROM events MATCH_RECOGNIZE (PARTITION BY service ORDER BY ts MEASURES COUNT(V0.*) AS n PATTERN ({p}) DEFINE V0 AS V0.kind = 'log')")
    };
    let parens = |n: usize| format!("{LOGS}{}level = 'x'{}", "(".repeat(n), ")".repeat(n));
    #[rustfmt::skip]
    let bad = [
        (parens(60), "the query is nested too deeply", (1, 102), "50 levels"),
        (format!("{METRICS}value > {}", chain(250)), "the query is nested too deeply", (1, 54), "200 levels"),
        (format!("{METRICS}{}", vec!["value > 1"; 250].join(" AND ")), "the query is nested too deeply", (1, 46), "200 levels"),
        (format!("{METRICS}value > {}", chain(45)), "expression nested too deeply", (1, 54), "40 levels"),
        (parens(45), "expression nested too deeply", (1, 88), "40 levels"),
        (format!("{METRICS}name IN ({})", vec!["'a'"; 5000].join(", ")), "the rule is too long", (1, 25025), "10000"),
        (pattern(vars(64)), "a pattern may use at most 63 variables", (1, 124), "-"),
        (format!("{LOGS}message LIKE '{}'", "_".repeat(200_000)), "bad LIKE pattern: Compiled regex exceeds", (1, 56), "-"),
    ];
    for (text, message, at, help) in bad {
        let help = (help != "-").then_some(help);
        if let Some(m) = mismatch(&text, message, at, help) {
            panic!("{}…: {m}", &text[..80]);
        }
    }
    #[rustfmt::skip]
    let good = [
        format!("{METRICS}value > {}", chain(39)),
        format!("{METRICS}{}", vec!["value > 1"; 150].join(" AND ")),
        format!("{METRICS}name = 'x' AND ({})", vec!["value > 1"; 150].join(" OR ")),
        parens(35),
        pattern(vars(63)),
        format!("{METRICS}name IN ({})", vec!["'a'"; 4900].join(", ")),
    ];
    for text in good {
        let (set, errors) = RuleSet::from_text("t.sql", &text);
        assert!(errors.is_empty() && set.len() == 1, "{}", listed(&errors));
    }
}

/// Files that are empty, odd or garbage: a clean result, and errors that point into the file.
#[test]
fn odd_files_give_clean_results() {
    #[rustfmt::skip]
    let cases: [(&str, Outcome); 12] = [
        ("", Ok(0)),
        (" \n\t\r\n ", Ok(0)),
        ("-- only a comment\n/* and another */\n", Ok(0)),
        (";;;\n;", Ok(0)),
        ("\u{feff}CREATE RULE r AS SELECT * FROM logs", Ok(1)),
        ("CREATE RULE r\r\nAS SELECT * FROM logs\r\nWHERE levle = 'x'", Err(("unknown column `levle`", 3, 7))),
        ("CREATE RULE r AS SELECT * FROM logs WHERE\tlevle = 'x'", Err(("unknown column `levle`", 1, 43))),
        ("\u{0}\u{1}\u{7f}\u{fffd}", Err(("expected `CREATE`", 1, 1))),
        ("CREATE RULE é AS SELECT * FROM logs WHERE message = '🔥 \u{0}'", Ok(1)),
        ("CREATE RULE r AS SELECT * FROM metrics WHERE value > 1e999 OR value < -1e999", Ok(1)),
        ("CREATE RULE r AS SELECT * FROM metrics WHERE value > 99999999999999999999999999999999", Ok(1)),
        ("CREATE RULE r AS SELECT * FROM logs FOR '1e400h'", Err(("unknown interval unit `e`", 1, 41))),
    ];
    for (text, want) in cases {
        let (set, errors) = RuleSet::from_text("t.sql", text);
        match want {
            Ok(n) => assert!(
                errors.is_empty() && set.len() == n,
                "{text:?}: {}",
                listed(&errors)
            ),
            Err((message, line, col)) => {
                let e = errors
                    .first()
                    .unwrap_or_else(|| panic!("{text:?}: no error"));
                assert!(e.message.contains(message), "{text:?}: {e}");
                assert_eq!((e.at.line, e.at.column), (line, col), "{text:?}: {e}");
            }
        }
    }
}

/// A small deterministic generator (xorshift): the same inputs on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// Valid rules cut, spliced and sprinkled with odd tokens never panic the parser, the checker
/// or (when they still check) the engine; every error points into the file.
#[test]
fn mutated_rules_never_panic() {
    let seeds = [
        "CREATE RULE pool SEVERITY 'critical' LABELS (team = 'db') SUMMARY '{{service}}: {{errors}}' AS SELECT service, count(*) AS errors FROM logs WHERE level IN ('error', 'fatal') AND message ILIKE '%pool%' GROUP BY service, TUMBLE(ts, INTERVAL '1' MINUTE) HAVING count(*) >= 20 FOR INTERVAL '2' MINUTE KEEP FIRING FOR '2m';",
        "CREATE RULE d AS SELECT service FROM metrics WHERE name = 'disk' AND value > 0.9 AND labels['mount'] LIKE '/var%' FOR '5m';",
        "CREATE RULE p AS SELECT service, peer, p99(duration_ms) AS p FROM spans GROUP BY service, peer, HOP(ts, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE) HAVING p99(duration_ms) > 500;",
        "CREATE RULE s AS SELECT * FROM events MATCH_RECOGNIZE (PARTITION BY service ORDER BY ts MEASURES LAST(D.version) AS v, COUNT(E.*) AS n PATTERN (D (E | F){3,}) WITHIN INTERVAL '10' MINUTE DEFINE D AS D.kind = 'change', E AS E.level = 'error');",
        "CREATE RULE j SUMMARY '{{alert}}' AS SELECT a.service, a.name AS alert, l.labels['pod'] AS pod FROM alerts a JOIN logs l ON l.service = a.service AND l.ts BETWEEN a.ts - INTERVAL '5' MINUTE AND a.ts WHERE a.status = 'firing';",
        "CREATE RULE c EMIT INSIGHT AS SELECT service, CASE WHEN value > 1 THEN 'hi' ELSE 'lo' END AS x, CAST(value AS VARCHAR) || substr(name, 2) AS y FROM metrics WHERE NOT (value BETWEEN 1 AND 2) OR value IS NULL;",
    ];
    let odd: Vec<&str> = "(|)|'|\"|`|;|,|*|-|--|/*|*/|{{|}}|\\|\n|\u{0}|é|1e309|-0|99999999999999999999|0x10|\
        INTERVAL|'0s'|'366d'|FOR|KEEP FIRING FOR|AS|SELECT|FROM|WHERE|GROUP BY|HAVING|JOIN|ON|AND|OR|NOT|\
        NULL|CREATE RULE|MATCH_RECOGNIZE|PATTERN|DEFINE|WITHIN|TUMBLE(ts,|labels[|::|~"
        .split('|')
        .collect();
    #[rustfmt::skip]
    let events = [
        ev(1, r#""kind":"log","service":"api","level":"error","message":"pool exhausted""#),
        ev(2, r#""kind":"metric","service":"db","name":"disk","value":0.95"#),
        ev(3, r#""kind":"alert","service":"api","name":"High","status":"firing","severity":"critical""#),
        ev(4, r#""kind":"change","service":"api","name":"deploy","version":"v2""#),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..3000 {
        let seed: Vec<char> = seeds[i % seeds.len()].chars().collect();
        let (a, b) = (rng.below(seed.len()), rng.below(seed.len()));
        let (a, b) = (a.min(b), a.max(b));
        let text: String = match rng.below(4) {
            0 => seed[..a].iter().chain(&seed[b..]).collect(),
            1 => seed[..b].iter().chain(&seed[a..]).collect(),
            2 => {
                seed[..a].iter().collect::<String>()
                    + " "
                    + odd[rng.below(odd.len())]
                    + " "
                    + &seed[a..].iter().collect::<String>()
            }
            _ => seed[..a].iter().collect(),
        };
        let checked = std::panic::catch_unwind(|| RuleSet::from_text("t.sql", &text));
        let (set, errors) = checked.unwrap_or_else(|_| panic!("checking panics on {text:?}"));
        let lines = text.lines().count().max(1) as u64 + 1;
        for e in &errors {
            assert!(
                e.at.line >= 1 && e.at.line <= lines && e.at.column >= 1,
                "{text:?}: {e:?}"
            );
            assert!(e.to_string().starts_with(&format!("t.sql:{}:", e.at.line)));
        }
        if !set.is_empty() {
            let set = Arc::new(set);
            let ran = std::panic::catch_unwind(|| run(set, &events, 3_600_000));
            assert!(ran.is_ok(), "running panics on {text:?}");
        }
    }
}

/// One good rule per construct that `constructs.rs` does not run, and the limits: they check,
/// and their intervals and windows mean what they say.
#[test]
fn good_rules_check_cleanly() {
    let text = "
        -- every header clause, in lower case, with comments between
        create rule header severity 'info' labels (team = 'db', tier = 'core') /* routing */
          summary '{{service}}' description 'd' runbook 'https://r/x' annotations (dash = 'x')
          emit insight
        as select service from logs where level = 'error'
        for interval '30 seconds' keep firing for '1h30m';
        CREATE RULE units AS SELECT * FROM logs FOR '500ms' KEEP FIRING FOR INTERVAL 2 HOUR;
        CREATE RULE longest AS SELECT * FROM logs FOR '365d' KEEP FIRING FOR '52w';
        CREATE RULE scalars AS SELECT service, lower(message) AS a, upper(message) AS b,
          length(message) AS c, trim(message) AS d, concat(service, '/', message) AS e,
          substr(message, 2) AS f, substring(message, 1, 3) AS g, substring(message FROM 2 FOR 3) AS h,
          replace(message, 'a', 'b') AS i, starts_with(message, 'x') AS j, ends_with(message, 'y') AS k,
          contains(message, 'z') AS l, split_part(message, ' ', 2) AS m, regexp_extract(message, 'id=(\\d+)', 1) AS n,
          coalesce(labels['pod'], 'none') AS o, nullif(level, 'info') AS p, hops(service, 'db') AS q,
          depends_on(service, 'db') AS r, upstream_of('db', service) AS s, downstream_of(service, 'db') AS t
          FROM logs;
        CREATE RULE numbers AS SELECT service, greatest(value, 1, 2) AS a, least(value, 2) AS b, abs(value) AS c,
          round(value) AS d, round(value, 2) AS e, sqrt(value) AS f, ln(value) AS g, log10(value) AS h,
          power(value, 2) AS i, to_number(labels['x']) AS j, CAST(value AS VARCHAR) AS k, value::INT AS l,
          TRY_CAST(labels['y'] AS DOUBLE) AS m, -value % 7 AS n
          FROM metrics WHERE value BETWEEN 0 AND 1e9 AND value NOT BETWEEN 5 AND 6;
        CREATE RULE aggregates AS SELECT service, count(*) AS a, count(value) AS b, count(DISTINCT name) AS c,
          count_distinct(name) AS d, sum(value) AS e, avg(value) AS f, min(value) AS g, max(value) AS h,
          stddev(value) AS i, percentile(value, 0.99) AS j, percentile(value, 95) AS k, p50(value) AS l,
          p90(value) AS m, p95(value) AS n, p99(value) AS o, median(value) AS p, rate(value) AS q,
          rate(*) AS s, first(value) AS t, last(value) AS u, window_start AS ws, window_end() AS we
          FROM metrics GROUP BY service, TUMBLE(ts, INTERVAL '1' SECOND) HAVING a > 1 AND max(value) > 0;
        CREATE RULE predicates AS SELECT * FROM logs l WHERE l.message LIKE 'a%' AND message ILIKE '%B_'
          AND message NOT LIKE '%c' AND message RLIKE 'd+' AND message ~ 'e' AND message ~* 'f'
          AND message !~ 'g' AND message !~* 'h' AND regexp_like(message, 'i') AND l.labels['pod'] IS NOT NULL
          AND labels['x'] IS NULL AND (level = 'error') IS TRUE AND (level = 'x') IS NOT TRUE
          AND level IN ('error', 'fatal') AND level NOT IN ('info') AND NOT (level = 'debug')
          AND CASE level WHEN 'error' THEN true ELSE false END AND service || '/' || level <> 'x';
        CREATE RULE windows AS SELECT COALESCE(labels['pod'], '-') AS pod, count(*) AS n FROM logs
          GROUP BY COALESCE(labels['pod'], '-'), HOP(ts, INTERVAL '1' SECOND, INTERVAL '10000' SECOND);
        CREATE RULE sessions AS SELECT service, level, count(*) AS n FROM logs
          GROUP BY service, level, SESSION(ts, INTERVAL '1' SECOND) HAVING n > 2;
        CREATE RULE sequence AS SELECT * FROM events MATCH_RECOGNIZE (PARTITION BY service ORDER BY ts
          MEASURES FIRST(A.ts) AS a, LAST(B.version) AS b, COUNT(*) AS c, COUNT(C.*) AS d, MIN(C.value) AS e,
            MAX(C.value) AS f, SUM(C.value) AS g, AVG(C.value) AS h, B.version AS i
          ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW
          PATTERN (A+ B? (C | D){2,5} E* F{1,}) WITHIN '365d'
          DEFINE A AS A.kind = 'alert', B AS B.kind = 'change', C AS C.value > 1, D AS D.level = 'error');
        CREATE RULE labels_in_a_join SUMMARY '{{pod}} {{team}}'
        AS SELECT a.service, l.labels['pod'] AS pod, a.labels['team'] AS team
           FROM alerts a JOIN logs l ON l.service = a.service
            AND l.ts BETWEEN a.ts - INTERVAL '365' DAY AND a.ts + INTERVAL 365 DAY
           WHERE a.annotations['summary'] LIKE '%down%' AND l.labels['pod'] <> ''
        "; // the last statement has no semicolon
    let (set, errors) = RuleSet::from_text("good.sql", text);
    assert!(errors.is_empty(), "{}", listed(&errors));
    assert_eq!(set.len(), 11);
    let rule = |name: &str| {
        set.rules()
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    let ms = |name: &str| (rule(name).for_ms, rule(name).keep_ms);
    #[rustfmt::skip]
    assert_eq!(
        [ms("header"), ms("units"), ms("longest")],
        [(30_000, 5_400_000), (500, 7_200_000), (365 * 86_400_000, 52 * 604_800_000)]
    );
    assert_eq!(rule("header").source, "good.sql:3");
    let window = |name: &str| match &rule(name).shape {
        kaizen_rules::Shape::Aggregate { window, .. } => *window,
        other => panic!("{name}: {other:?}"),
    };
    #[rustfmt::skip]
    assert_eq!(
        [window("aggregates"), window("windows"), window("sessions")],
        [Window::Tumble { size: 1000 }, Window::Hop { slide: 1000, size: 10_000_000 }, Window::Session { gap: 1000 }]
    );
    let join = rule("labels_in_a_join").join.as_ref().expect("a join");
    assert_eq!(
        (join.lower, join.upper),
        (-365 * 86_400_000, 365 * 86_400_000)
    );
}

/// `RuleSet::load`: a missing path, a file that is not UTF-8, and a rule defined in two files.
#[test]
fn load_reports_unreadable_files_and_duplicates_across_files() {
    let dir = std::env::temp_dir().join(format!("kaizen-rules-errors-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("more")).expect("temp dir");
    #[rustfmt::skip]
    let files: [(&str, &[u8]); 4] = [
        ("a.sql", b"CREATE RULE twice AS SELECT * FROM logs;\n"),
        ("more/b.sql", b"\n\nCREATE RULE twice AS SELECT * FROM metrics;\n"),
        ("c.sql", b"CREATE RULE r AS SELECT * FROM logs WHERE message = '\xff';"),
        ("notes.txt", b"not a rule file"),
    ];
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).expect("write");
    }
    let (set, errors) = RuleSet::load(&[dir.clone(), dir.join("missing.sql")]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(set.len(), 1, "{}", listed(&errors));
    let find = |what: &str| {
        errors
            .iter()
            .find(|e| e.message.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} in:\n{}", listed(&errors)))
    };
    let unreadable = find("cannot read");
    assert_eq!(
        (unreadable.path.file_name(), unreadable.at.line),
        (Some("c.sql".as_ref()), 1)
    );
    let missing = find("no such file or directory");
    assert_eq!(missing.path, dir.join("missing.sql"));
    let twice = find("rule `twice` is defined twice");
    assert_eq!((twice.at.line, twice.at.column), (3, 1));
    let first = dir.join("a.sql");
    assert_eq!(
        twice.help.as_deref(),
        Some(format!("first defined at {}:1", first.display()).as_str())
    );
    assert_eq!(errors.len(), 3, "{}", listed(&errors));
}
