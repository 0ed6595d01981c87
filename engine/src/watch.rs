//! Hot reload of rule files: on a change to any `.sql` file under the watched paths, or on
//! SIGHUP, the rules are reloaded into the running engine's [`LiveRules`]. Unchanged rules keep
//! their state; a rule with an error is logged with its location and its previous version keeps
//! running.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use kaizen_rules::{LiveRules, ReloadReport, RuleSet};

/// A background thread that keeps [`LiveRules`] in step with the rule files.
pub struct RuleWatcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Called after every reload (for logs, metrics and tests).
pub type OnReload = Box<dyn FnMut(&ReloadReport) + Send>;

impl RuleWatcher {
    /// Watches `paths`, polling every `every`; SIGHUP forces a reload.
    pub fn start(
        paths: Vec<PathBuf>,
        live: LiveRules,
        every: Duration,
        mut on_reload: OnReload,
    ) -> std::io::Result<RuleWatcher> {
        let stop = Arc::new(AtomicBool::new(false));
        let hup = Arc::new(AtomicBool::new(false));
        #[cfg(unix)]
        signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())?;
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kaizen-rules-watch".into())
            .spawn(move || {
                let mut seen = fingerprint(&paths);
                while !stopping.load(Ordering::Acquire) {
                    std::thread::sleep(every);
                    let now = fingerprint(&paths);
                    let forced = hup.swap(false, Ordering::AcqRel);
                    if now == seen && !forced {
                        continue;
                    }
                    seen = now;
                    let report = reload(&paths, &live);
                    on_reload(&report);
                }
            })?;
        Ok(RuleWatcher {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for RuleWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reloads `paths` into `live` once, logging what changed and every error.
pub fn reload(paths: &[PathBuf], live: &LiveRules) -> ReloadReport {
    let current: Arc<RuleSet> = live.current();
    let (next, report) = current.reload(paths);
    for e in &report.errors {
        tracing::error!("rule rejected, previous version keeps running: {e}");
    }
    tracing::info!(
        changed = report.changed.len(),
        unchanged = report.unchanged.len(),
        removed = report.removed.len(),
        errors = report.errors.len(),
        "rules reloaded"
    );
    live.replace(next);
    report
}

/// Path, length and modification time of every rule file: cheap to compare every second.
fn fingerprint(paths: &[PathBuf]) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        kaizen_rules::collect_sql(p, &mut files, &mut errors);
    }
    files
        .into_iter()
        .map(|f| {
            let meta = std::fs::metadata(&f).ok();
            let len = meta.as_ref().map_or(0, |m| m.len());
            let modified = meta.and_then(|m| m.modified().ok());
            (f, len, modified)
        })
        .collect()
}
