//! `kaizen rules test`: rule files run offline against fixtures, like `promtool test rules`.
//!
//! A rule file `x.sql` may have `x.test.jsonl` beside it. Each line is one of:
//!
//! * an input event in kaizen's native JSON, with `ts` relative to the fixture's start
//!   (`"+90s"`, `"+2m"`) or absolute; `"repeat": N, "every": "15s"` repeats it, and for
//!   metrics `"values": [..]` gives one value per repetition;
//! * `{"start": "2026-01-05T10:00:00Z"}` — the start (default 2026-01-01T00:00:00Z);
//! * `{"until": "+1h"}` — how long to run after the last input (default one hour);
//! * a detector signal, for rules over `signals`: `{"ts": "+1m", "signal": {"kind": "alert",
//!   "state": "open", "service": "api", "name": "HighErrorRate", "severity": "critical"}}`;
//! * an incident version, for rules over `incidents`: `{"ts": "+5m", "incident": {"id":
//!   "inc-1", "status": "open", "title": "payments: errors", "severity": "critical",
//!   "service": "payments"}}` (`service` is the probable origin; optional: `services`,
//!   `impacted`, `opened` (default `ts`), `version` (default: one more than the id's last),
//!   `novelty`, `remedy` and `similarity` of the most similar past incident);
//! * `{"depends_on": {"frontend": ["api"], "api": ["db"]}}` — the service graph, for rules
//!   that use `depends_on`, `upstream_of`, `downstream_of` or `hops`;
//! * an expectation: `{"expect": "open" | "close", "rule": "...", "at": "+2m",
//!   "service": "...", "summary": "..."}` (`summary` is compared only when given).
//!
//! Every open and close of the file's rules must be expected, and every expectation met.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value as Json};

use kaizen_model::{
    Event, IncidentStatus, Insight, Novelty, OriginCandidate, Severity, Signal, SignalKind,
    SignalState, SimilarIncident, Symbol, Timestamp,
};

use crate::evaluate::{RuleEvaluator, RuleOutput};
use crate::filter::RuleFilter;
use crate::graph::Dependencies;
use crate::ruleset::RuleSet;
use crate::syntax::parse_interval;

/// The default fixture start: 2026-01-01T00:00:00Z.
const DEFAULT_START: u64 = 1_767_225_600_000;

/// What running one rule file's fixture found.
#[derive(Debug)]
pub struct FixtureReport {
    /// The rule file.
    pub rules: PathBuf,
    /// The fixture file, if there is one.
    pub fixture: Option<PathBuf>,
    /// Expectations checked.
    pub expectations: usize,
    /// Expected but not produced.
    pub missing: Vec<String>,
    /// Produced but not expected.
    pub unexpected: Vec<String>,
    /// Problems with the files themselves.
    pub errors: Vec<String>,
}

impl FixtureReport {
    /// Did it pass?
    pub fn passed(&self) -> bool {
        self.fixture.is_some()
            && self.missing.is_empty()
            && self.unexpected.is_empty()
            && self.errors.is_empty()
    }

    /// A readable diff: `-` expected lines not produced, `+` produced lines not expected.
    pub fn diff(&self) -> String {
        let mut s = String::new();
        for e in &self.errors {
            s.push_str(&format!("  error: {e}\n"));
        }
        for m in &self.missing {
            s.push_str(&format!("  - {m}\n"));
        }
        for u in &self.unexpected {
            s.push_str(&format!("  + {u}\n"));
        }
        s
    }
}

/// The fixture file for a rule file.
pub fn fixture_path(rules: &Path) -> PathBuf {
    rules.with_extension("test.jsonl")
}

/// Runs the fixture of the rule file at `path`.
pub fn run_fixture(path: &Path) -> FixtureReport {
    let mut report = FixtureReport {
        rules: path.to_path_buf(),
        fixture: None,
        expectations: 0,
        missing: Vec::new(),
        unexpected: Vec::new(),
        errors: Vec::new(),
    };
    let (set, errors) = RuleSet::load(&[path.to_path_buf()]);
    if !errors.is_empty() {
        report.errors.extend(errors.iter().map(|e| e.to_string()));
        return report;
    }
    let fixture = fixture_path(path);
    let text = match std::fs::read_to_string(&fixture) {
        Ok(t) => t,
        Err(_) => return report,
    };
    report.fixture = Some(fixture.clone());
    let parsed = match Fixture::parse(&text) {
        Ok(f) => f,
        Err(e) => {
            report.errors.push(format!("{}: {e}", fixture.display()));
            return report;
        }
    };
    let start = parsed.start;
    let outputs = run_inputs(
        Arc::new(set),
        &parsed.events,
        &parsed.signals,
        &parsed.incidents,
        parsed.until,
        parsed.graph.map(Arc::new),
    );
    let rel = |t: Timestamp| relative(t.as_millis().saturating_sub(start));
    let mut actual: Vec<(String, String)> = Vec::new();
    for o in &outputs {
        let (state, rule, at, service, summary) = match o {
            RuleOutput::Signal(s, _) => (
                if s.state == SignalState::Open {
                    "open"
                } else {
                    "close"
                },
                s.name.as_str().to_string(),
                s.ts,
                s.service.as_str().to_string(),
                s.summary.clone(),
            ),
            RuleOutput::Insight(i) => (
                if i.resolved_at.is_some() {
                    "close"
                } else {
                    "open"
                },
                i.explain
                    .first()
                    .map(|e| e.rule.clone())
                    .unwrap_or_default(),
                i.updated_at,
                i.services
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                i.title.clone(),
            ),
        };
        let base = format!("{state} {rule} at {} service={service}", rel(at));
        actual.push((base, summary));
    }
    report.expectations = parsed.expect.len();
    let mut unmatched: Vec<bool> = vec![true; actual.len()];
    for e in &parsed.expect {
        let base = format!(
            "{} {} at {} service={}",
            e.state,
            e.rule,
            relative(e.at.saturating_sub(start)),
            e.service
        );
        let found = actual.iter().enumerate().position(|(i, (b, s))| {
            unmatched[i] && *b == base && e.summary.as_ref().is_none_or(|want| want == s)
        });
        match found {
            Some(i) => unmatched[i] = false,
            None => report.missing.push(match &e.summary {
                Some(s) => format!("{base} summary={s:?}"),
                None => base,
            }),
        }
    }
    for (i, (b, s)) in actual.iter().enumerate() {
        if unmatched[i] {
            report.unexpected.push(format!("{b} summary={s:?}"));
        }
    }
    report
}

/// Runs rules over events (sorted by time here) and flushes `until` ms after the last.
pub fn run(rules: Arc<RuleSet>, events: &[Event], until: u64) -> Vec<RuleOutput> {
    run_with_graph(rules, events, until, None)
}

/// [`run`], with a service dependency graph for `depends_on` and friends.
pub fn run_with_graph(
    rules: Arc<RuleSet>,
    events: &[Event],
    until: u64,
    graph: Option<Arc<Dependencies>>,
) -> Vec<RuleOutput> {
    run_inputs(rules, events, &[], &[], until, graph)
}

/// Runs rules over events, detector signals and incident versions, merged in event-time
/// order (events, then signals, then incidents at equal times), and flushes `until` ms after
/// the last.
pub fn run_inputs(
    rules: Arc<RuleSet>,
    events: &[Event],
    signals: &[Signal],
    incidents: &[Insight],
    until: u64,
    graph: Option<Arc<Dependencies>>,
) -> Vec<RuleOutput> {
    let mut order: Vec<(u64, u8, usize)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.ts.as_millis(), 0, i))
        .chain(
            signals
                .iter()
                .enumerate()
                .map(|(i, s)| (s.ts.as_millis(), 1, i)),
        )
        .chain(
            incidents
                .iter()
                .enumerate()
                .map(|(i, x)| (x.updated_at.as_millis(), 2, i)),
        )
        .collect();
    order.sort();
    let mut filter = RuleFilter::new(rules.clone());
    let mut eval = RuleEvaluator::new(rules);
    if let Some(g) = graph {
        filter = filter.with_graph(g.clone());
        eval = eval.with_graph(g);
    }
    let mut rows = Vec::new();
    let mut out = Vec::new();
    let mut last = 0;
    for (ts, kind, i) in order {
        filter.flush(Some(ts), &mut rows);
        for r in rows.drain(..) {
            eval.on_row(r, &mut out);
        }
        match kind {
            0 => filter.on_event(&events[i], i as u64, &mut rows),
            1 => filter.on_signal(&signals[i], &mut rows),
            _ => filter.on_incident(&incidents[i], &mut rows),
        }
        rows.sort_by_key(|r| r.seq);
        for r in rows.drain(..) {
            eval.on_row(r, &mut out);
        }
        last = ts;
    }
    filter.flush(None, &mut rows);
    for r in rows.drain(..) {
        eval.on_row(r, &mut out);
    }
    eval.on_watermark(last + until, &mut out);
    out
}

/// A detector signal in a fixture: `{"ts": "+1m", "signal": {"kind": "alert", "service":
/// "api", "name": "HighErrorRate", "severity": "critical"}}`.
#[derive(serde::Deserialize)]
struct SignalLine {
    kind: SignalKind,
    #[serde(default = "open")]
    state: SignalState,
    service: String,
    name: String,
    #[serde(default)]
    severity: Severity,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    strength: f64,
    #[serde(default)]
    key: Option<String>,
}

/// An incident version in a fixture: `{"ts": "+5m", "incident": {"id": "inc-1", "status":
/// "open", "title": "...", "severity": "critical", "service": "payments"}}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentLine {
    id: String,
    #[serde(default = "incident_open")]
    status: IncidentStatus,
    #[serde(default)]
    title: String,
    #[serde(default)]
    severity: Severity,
    service: String,
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    impacted: Vec<String>,
    #[serde(default)]
    opened: Option<Json>,
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    novelty: Option<Novelty>,
    #[serde(default)]
    remedy: Option<String>,
    #[serde(default)]
    similarity: Option<f64>,
}

fn incident_open() -> IncidentStatus {
    IncidentStatus::Open
}

fn open() -> SignalState {
    SignalState::Open
}

fn relative(ms: u64) -> String {
    let s = ms / 1000;
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::from("+");
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 || (h == 0 && m == 0) {
        out.push_str(&format!("{sec}s"));
    }
    if !ms.is_multiple_of(1000) {
        out.push_str(&format!("{}ms", ms % 1000));
    }
    out
}

struct Expect {
    state: String,
    rule: String,
    at: u64,
    service: String,
    summary: Option<String>,
}

struct Fixture {
    graph: Option<Dependencies>,
    signals: Vec<Signal>,
    incidents: Vec<Insight>,
    start: u64,
    until: u64,
    events: Vec<Event>,
    expect: Vec<Expect>,
}

impl Fixture {
    fn parse(text: &str) -> Result<Fixture, String> {
        let mut f = Fixture {
            graph: None,
            signals: Vec::new(),
            incidents: Vec::new(),
            start: DEFAULT_START,
            until: 3_600_000,
            events: Vec::new(),
            expect: Vec::new(),
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with("//") || line.starts_with('#') {
                continue;
            }
            let at = |m: String| format!("line {}: {m}", n + 1);
            let obj: Map<String, Json> =
                serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
            if let Some(s) = obj.get("start") {
                let s = s
                    .as_str()
                    .ok_or_else(|| at("start is a timestamp string".into()))?;
                f.start = Timestamp::parse(s)
                    .map_err(|e| at(e.to_string()))?
                    .as_millis();
            } else if let Some(sig) = obj.get("signal") {
                let line: SignalLine = serde_json::from_value(sig.clone())
                    .map_err(|e| at(format!("bad signal: {e}")))?;
                let ts = f
                    .time(obj.get("ts"))
                    .ok_or_else(|| at("a signal needs \"ts\"".into()))?;
                let ts = Timestamp::from_millis(ts);
                f.signals.push(Signal {
                    ts,
                    onset: ts,
                    service: Symbol::new(&line.service),
                    kind: line.kind,
                    state: line.state,
                    key: line
                        .key
                        .unwrap_or_else(|| format!("{}:{}", line.service, line.name)),
                    name: Symbol::new(&line.name),
                    severity: line.severity,
                    summary: line.summary,
                    value: line.value,
                    strength: line.strength,
                });
            } else if let Some(inc) = obj.get("incident") {
                let line: IncidentLine = serde_json::from_value(inc.clone())
                    .map_err(|e| at(format!("bad incident: {e}")))?;
                let ts = f
                    .time(obj.get("ts"))
                    .ok_or_else(|| at("an incident needs \"ts\"".into()))?;
                let opened = match &line.opened {
                    Some(v) => f
                        .time(Some(v))
                        .ok_or_else(|| at("opened is \"+5m\" or a timestamp".into()))?,
                    None => ts,
                };
                let insight = f.incident(line, opened, ts);
                f.incidents.push(insight);
            } else if let Some(t) = obj.get("depends_on").and_then(Json::as_object) {
                let g = f.graph.get_or_insert_with(Dependencies::default);
                for (caller, callees) in t {
                    for callee in callees
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Json::as_str)
                    {
                        g.add(caller, callee);
                    }
                }
            } else if let Some(u) = obj.get("until") {
                f.until =
                    offset(u).ok_or_else(|| at("until is an interval like \"+1h\"".into()))?;
            } else if let Some(state) = obj.get("expect").and_then(Json::as_str) {
                if state != "open" && state != "close" {
                    return Err(at(format!(
                        "expect is \"open\" or \"close\", not {state:?}"
                    )));
                }
                let field = |k: &str| obj.get(k).and_then(Json::as_str).map(str::to_owned);
                f.expect.push(Expect {
                    state: state.to_string(),
                    rule: field("rule")
                        .ok_or_else(|| at("an expectation names its rule".into()))?,
                    at: f
                        .time(obj.get("at"))
                        .ok_or_else(|| at("an expectation has \"at\"".into()))?,
                    service: field("service").unwrap_or_default(),
                    summary: field("summary"),
                });
            } else {
                f.events_from(obj).map_err(at)?;
            }
        }
        Ok(f)
    }

    /// The version an incident line describes, as correlation would have built it.
    fn incident(&self, line: IncidentLine, opened: u64, ts: u64) -> Insight {
        let version = line.version.unwrap_or_else(|| {
            let last = self.incidents.iter().rev().find(|i| i.id == line.id);
            last.map_or(1, |i| i.version + 1)
        });
        let mut services: Vec<Symbol> = std::iter::once(&line.service)
            .chain(&line.services)
            .map(|s| Symbol::new(s))
            .collect();
        services.sort();
        services.dedup();
        let mut impacted: Vec<Symbol> = line.impacted.iter().map(|s| Symbol::new(s)).collect();
        impacted.sort();
        let resolved = line.status == IncidentStatus::Resolved;
        Insight {
            id: line.id,
            version,
            status: line.status,
            title: line.title,
            severity: line.severity,
            services,
            impacted,
            impact: Vec::new(),
            origin: vec![OriginCandidate {
                service: Symbol::new(&line.service),
                score: 1.0,
                evidence: Vec::new(),
                deviation: None,
            }],
            suspect_changes: Vec::new(),
            similar: match (line.remedy, line.similarity) {
                (None, None) => Vec::new(),
                (remedy, similarity) => vec![SimilarIncident {
                    id: String::new(),
                    title: String::new(),
                    similarity: similarity.unwrap_or(1.0),
                    remedy,
                    resolved_in_secs: None,
                }],
            },
            novelty: line.novelty,
            timeline: Vec::new(),
            opened_at: Timestamp::from_millis(opened),
            updated_at: Timestamp::from_millis(ts),
            resolved_at: resolved.then(|| Timestamp::from_millis(ts)),
            explain: Vec::new(),
        }
    }

    fn time(&self, v: Option<&Json>) -> Option<u64> {
        let v = v?;
        match v.as_str() {
            Some(s) if s.starts_with('+') => offset(v).map(|d| self.start + d),
            Some(s) => Timestamp::parse(s).ok().map(Timestamp::as_millis),
            None => v
                .as_f64()
                .and_then(|x| Timestamp::from_unix_number(x).ok())
                .map(Timestamp::as_millis),
        }
    }

    fn events_from(&mut self, mut obj: Map<String, Json>) -> Result<(), String> {
        let ts = self
            .time(obj.get("ts"))
            .ok_or("an event needs \"ts\" (\"+90s\" or a timestamp)")?;
        let every = match obj.remove("every") {
            Some(v) => offset(&v).ok_or("every is an interval like \"15s\"")?,
            None => 0,
        };
        let values: Option<Vec<Json>> = obj.remove("values").and_then(|v| v.as_array().cloned());
        let repeat = match obj.remove("repeat") {
            Some(v) => v.as_u64().ok_or("repeat is a count")? as usize,
            None => values.as_ref().map_or(1, Vec::len),
        };
        for i in 0..repeat.max(1) {
            let mut o = obj.clone();
            o.insert("ts".into(), Json::from(ts + i as u64 * every));
            if let Some(vs) = &values {
                if let Some(v) = vs.get(i % vs.len().max(1)) {
                    o.insert("value".into(), v.clone());
                }
            }
            let line = Json::Object(o).to_string();
            self.events
                .push(Event::from_json(&line).map_err(|e| format!("bad event: {e}"))?);
        }
        Ok(())
    }
}

fn offset(v: &Json) -> Option<u64> {
    let s = v.as_str()?;
    parse_interval(s.trim_start_matches('+'), None).map(|d| d.as_millis() as u64)
}
