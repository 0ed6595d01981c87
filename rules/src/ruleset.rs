//! Loading rule files into a [`RuleSet`], and reloading them without losing what still works.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kaizen_model::EventKind;

use crate::diagnostic::{RuleError, SourceFile};
use crate::plan::{compile, Rule};
use crate::schema::StreamName;
use crate::syntax::parse_file;

/// A set of checked rules, indexed by the stream kinds they read.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    rules: Vec<Arc<Rule>>,
    ids: std::collections::HashMap<u64, usize>,
    /// Rule indexes per event kind (alert, metric, log, span, change), for signals and for
    /// incidents.
    by_kind: [Vec<usize>; 7],
}

/// What a reload did.
#[derive(Debug, Default)]
pub struct ReloadReport {
    /// Rules that are new or changed (fresh state).
    pub changed: Vec<String>,
    /// Rules whose text did not change (state kept).
    pub unchanged: Vec<String>,
    /// Rules that were removed.
    pub removed: Vec<String>,
    /// Errors; the previous version of each broken rule keeps running.
    pub errors: Vec<RuleError>,
}

/// The kinds of event rules can select, in the order of their [`kind_slot`].
pub(crate) const SELECTABLE_KINDS: [EventKind; 5] = [
    EventKind::Alert,
    EventKind::Metric,
    EventKind::Log,
    EventKind::Span,
    EventKind::Change,
];

/// The index of an event kind rules can select, in per-kind tables (feedback: none).
pub(crate) fn kind_slot(kind: EventKind) -> Option<usize> {
    Some(match kind {
        EventKind::Alert => 0,
        EventKind::Metric => 1,
        EventKind::Log => 2,
        EventKind::Span => 3,
        EventKind::Change => 4,
        EventKind::Feedback => return None,
    })
}

const SIGNALS: usize = 5;
const INCIDENTS: usize = 6;

impl RuleSet {
    /// A set of the given rules.
    pub fn new(rules: Vec<Arc<Rule>>) -> RuleSet {
        let mut by_kind: [Vec<usize>; 7] = Default::default();
        for (i, r) in rules.iter().enumerate() {
            let streams = match &r.join {
                Some(j) => j.streams.to_vec(),
                None => vec![r.stream],
            };
            if streams.contains(&StreamName::Signals) {
                by_kind[SIGNALS].push(i);
            }
            if streams.contains(&StreamName::Incidents) {
                by_kind[INCIDENTS].push(i);
            }
            for kind in SELECTABLE_KINDS {
                if streams.iter().any(|s| s.accepts(kind)) {
                    if let Some(k) = kind_slot(kind) {
                        by_kind[k].push(i);
                    }
                }
            }
        }
        let ids = rules.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
        RuleSet {
            rules,
            ids,
            by_kind,
        }
    }

    /// Loads every `.sql` file under `paths` (files or directories, recursively, in name
    /// order). Rules with errors are left out and their errors returned.
    pub fn load(paths: &[PathBuf]) -> (RuleSet, Vec<RuleError>) {
        let (rules, errors) = load_rules(paths);
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut kept = Vec::new();
        let mut errors = errors;
        for (rule, file) in rules {
            if let Some(first) = seen.get(&rule.name) {
                errors.push(
                    RuleError::new(
                        &file,
                        rule.at,
                        format!("rule `{}` is defined twice", rule.name),
                    )
                    .help(format!("first defined at {first}")),
                );
                continue;
            }
            seen.insert(rule.name.clone(), rule.source.clone());
            kept.push(Arc::new(rule));
        }
        (RuleSet::new(kept), errors)
    }

    /// Checks rules given as text (`name` stands in for the file name in errors).
    pub fn from_text(name: &str, text: &str) -> (RuleSet, Vec<RuleError>) {
        let file = SourceFile::new(name, text);
        let (statements, mut errors) = parse_file(&file);
        let mut rules: Vec<Arc<Rule>> = Vec::new();
        for st in &statements {
            let first = rules.iter().find(|r| r.name == st.name);
            match compile(&file, st) {
                Ok(rule) if first.is_some() => errors.push(
                    RuleError::new(
                        &file,
                        rule.at,
                        format!("rule `{}` is defined twice", rule.name),
                    )
                    .help(format!(
                        "first defined at {}",
                        first.map_or("", |r| r.source.as_str())
                    )),
                ),
                Ok(rule) => rules.push(Arc::new(rule)),
                Err(e) => errors.push(e),
            }
        }
        (RuleSet::new(rules), errors)
    }

    /// Reloads from `paths`: rules whose text is unchanged keep their identity (and so their
    /// state); a rule that now has an error keeps its previous version running.
    pub fn reload(&self, paths: &[PathBuf]) -> (RuleSet, ReloadReport) {
        let (fresh, errors) = RuleSet::load(paths);
        let mut report = ReloadReport {
            errors,
            ..ReloadReport::default()
        };
        let mut rules: Vec<Arc<Rule>> = Vec::new();
        for r in fresh.rules() {
            match self.rules.iter().find(|old| old.id == r.id) {
                Some(old) => {
                    report.unchanged.push(r.name.clone());
                    rules.push(old.clone());
                }
                None => {
                    report.changed.push(r.name.clone());
                    rules.push(r.clone());
                }
            }
        }
        for old in &self.rules {
            if rules.iter().any(|r| r.name == old.name) {
                continue;
            }
            // A rule whose file (or statement) now fails to check keeps its previous version.
            let broken = report.errors.iter().any(|e| e.path == old.path);
            if broken && old.path.exists() {
                report.unchanged.push(old.name.clone());
                rules.push(old.clone());
            } else {
                report.removed.push(old.name.clone());
            }
        }
        (RuleSet::new(rules), report)
    }

    /// The rules.
    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// None loaded?
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Rules reading events of `kind`.
    pub fn for_kind(&self, kind: EventKind) -> &[usize] {
        kind_slot(kind).map_or(&[], |k| &self.by_kind[k])
    }

    /// Rules reading detectors' signals.
    pub fn for_signals(&self) -> &[usize] {
        &self.by_kind[SIGNALS]
    }

    /// Does any rule read events of `kind`?
    pub fn reads(&self, kind: EventKind) -> bool {
        !self.for_kind(kind).is_empty()
    }

    /// Does any rule read signals?
    pub fn reads_signals(&self) -> bool {
        !self.by_kind[SIGNALS].is_empty()
    }

    /// Rules reading incidents (they run after correlation, apart from the others).
    pub fn for_incidents(&self) -> &[usize] {
        &self.by_kind[INCIDENTS]
    }

    /// The rule with `id`.
    pub fn by_id(&self, id: u64) -> Option<&Arc<Rule>> {
        self.ids.get(&id).and_then(|&i| self.rules.get(i))
    }
}

/// Parses and checks every rule file under `paths`.
fn load_rules(paths: &[PathBuf]) -> (Vec<(Rule, SourceFile)>, Vec<RuleError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        collect_sql(p, &mut files, &mut errors);
    }
    let mut rules = Vec::new();
    for path in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(RuleError::file(&path, format!("cannot read: {e}")));
                continue;
            }
        };
        let file = SourceFile::new(path, text);
        let (statements, parse_errors) = parse_file(&file);
        errors.extend(parse_errors);
        for st in &statements {
            match compile(&file, st) {
                Ok(rule) => rules.push((rule, file.clone())),
                Err(e) => errors.push(e),
            }
        }
    }
    (rules, errors)
}

/// The `.sql` files under `path`, sorted, recursively.
pub fn collect_sql(path: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<RuleError>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                errors.push(RuleError::file(path, format!("cannot list: {e}")));
                return;
            }
        };
        entries.sort();
        for e in entries {
            if e.is_dir() || e.extension().is_some_and(|x| x == "sql") {
                collect_sql(&e, files, errors);
            }
        }
    } else if path.exists() {
        files.push(path.to_path_buf());
    } else {
        errors.push(RuleError::file(path, "no such file or directory"));
    }
}

/// The rule set a running engine uses, replaceable while it runs (hot reload). Operators
/// check [`LiveRules::generation`] — one atomic load — and fetch the new set only when it
/// changed.
#[derive(Clone, Debug, Default)]
pub struct LiveRules {
    inner: Arc<LiveInner>,
}

#[derive(Debug, Default)]
struct LiveInner {
    generation: std::sync::atomic::AtomicU64,
    set: std::sync::RwLock<Arc<RuleSet>>,
}

impl LiveRules {
    /// Starts with `set`.
    pub fn new(set: RuleSet) -> LiveRules {
        let live = LiveRules::default();
        live.replace(set);
        live
    }

    /// Swaps in a new set; operators pick it up at their next activation.
    pub fn replace(&self, set: RuleSet) {
        if let Ok(mut s) = self.inner.set.write() {
            *s = Arc::new(set);
        }
        self.inner
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// Bumped by every [`LiveRules::replace`].
    pub fn generation(&self) -> u64 {
        self.inner
            .generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The current set.
    pub fn current(&self) -> Arc<RuleSet> {
        match self.inner.set.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}
