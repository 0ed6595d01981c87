//! Window ends, merges, evictions and the small helpers of the log template detector.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::*;

impl LogTemplateDetector {
    /// A template's rate window ended at `due` (its last millisecond): update the baseline,
    /// close a spike that fell back, and keep windows running while a spike is open.
    pub(super) fn end_window(
        &mut self,
        service: &Symbol,
        id: TemplateId,
        due: Timestamp,
        out: &mut Vec<Signal>,
    ) {
        let c = &self.config;
        let (alpha, factor, min_count, w) = (
            c.baseline_alpha,
            c.spike_factor,
            c.spike_min_count,
            c.window.as_millis().max(1) as u64,
        );
        let Some(st) = self
            .services
            .get_mut(service)
            .and_then(|s| s.templates.get_mut(&id))
        else {
            return;
        };
        st.window_due = None;
        let end = Timestamp(due.0 + 1);
        let count = st.count;
        let spiking = st.episodes.contains_key(&Kind::Spike);
        let fell_back =
            (count as f64) < factor * st.baseline.max(1.0) / 2.0 || count < min_count / 2;
        if spiking && fell_back {
            self.close(service, id, Kind::Spike, end, "quiet", out);
        }
        let Some(st) = self
            .services
            .get_mut(service)
            .and_then(|s| s.templates.get_mut(&id))
        else {
            return;
        };
        if let Some((e, _)) = st.episodes.get_mut(&Kind::Spike) {
            // Still spiking: the baseline stays frozen and the next window is watched even
            // if no line comes, so that the spike can close.
            e.peak = e.peak.max(count);
            st.window_start = end;
            let next = Timestamp(end.0 + w - 1);
            st.window_due = Some(next);
            self.timers
                .insert((next, service.clone(), id, Kind::Window));
        } else {
            st.baseline = if st.windows == 0 {
                count as f64
            } else {
                alpha * count as f64 + (1.0 - alpha) * st.baseline
            };
            st.windows = st.windows.saturating_add(1);
            st.closed_until = Some(end);
        }
        st.count = 0;
        st.errors = 0;
    }

    /// Template `gone` was merged into `into`: its open signals close, its counts move.
    pub(super) fn fold(
        &mut self,
        service: &Symbol,
        gone: TemplateId,
        into: TemplateId,
        ts: Timestamp,
        out: &mut Vec<Signal>,
    ) {
        let Some(old) = self.drop_template(service, gone, ts, &format!("merged into {into}"), out)
        else {
            return;
        };
        let Some(st) = self
            .services
            .get_mut(service)
            .and_then(|s| s.templates.get_mut(&into))
        else {
            return;
        };
        if st.window_due.is_some() {
            st.count += old.count;
            st.errors += old.errors;
        }
        st.baseline += old.baseline;
        st.windows = st.windows.max(old.windows);
    }

    /// Forgets a template, closing its open signals at `ts` with `why`.
    pub(super) fn drop_template(
        &mut self,
        service: &Symbol,
        id: TemplateId,
        ts: Timestamp,
        why: &str,
        out: &mut Vec<Signal>,
    ) -> Option<TemplateState> {
        let kinds: Vec<Kind> = self
            .services
            .get(service)?
            .templates
            .get(&id)?
            .episodes
            .keys()
            .copied()
            .collect();
        for kind in kinds {
            self.close(service, id, kind, ts, why, out);
        }
        let st = self.services.get_mut(service)?.templates.remove(&id)?;
        if let Some(due) = st.window_due {
            self.timers
                .remove(&(due, service.clone(), id, Kind::Window));
        }
        Some(st)
    }

    /// Keeps the number of services under the cap by dropping the least recently seen.
    pub(super) fn make_room(&mut self, ts: Timestamp, out: &mut Vec<Signal>) {
        while self.services.len() >= self.config.max_services.max(1) {
            let Some(victim) = self
                .services
                .iter()
                .min_by_key(|(name, s)| (s.last_ts, (*name).clone()))
                .map(|(n, _)| n.clone())
            else {
                return;
            };
            let ids: Vec<TemplateId> = self
                .services
                .get(&victim)
                .map(|s| s.templates.keys().copied().collect())
                .unwrap_or_default();
            for id in ids {
                self.drop_template(&victim, id, ts, "no longer tracked", out);
            }
            self.services.remove(&victim);
            self.timers.retain(|t| t.1 != victim);
        }
    }

    /// The signal name (template text, cut) and the text for summaries.
    pub(super) fn names(&self, service: &Symbol, id: TemplateId) -> (Symbol, String) {
        let text = self
            .services
            .get(service)
            .and_then(|s| s.miner.template(id))
            .unwrap_or("");
        let max = self.config.max_name_chars;
        let cut = match text.char_indices().nth(max) {
            Some((i, _)) => format!("{}…", &text[..i]),
            None => text.to_owned(),
        };
        (Symbol::new(&cut), cut)
    }
}

/// `payments/T17/new`: stable for the life of the service's miner, unique per service,
/// template and signal type.
pub(super) fn key(service: &Symbol, id: TemplateId, kind: Kind) -> String {
    format!("{service}/{id}/{}", kind.as_str())
}

/// Severity of an error line: from its level, or — for lines at the default level, which is
/// what a source without levels gives — from words that mean failure.
pub(super) fn error_severity(level: Level, message: &str) -> Option<Severity> {
    match level {
        Level::Fatal => Some(Severity::Critical),
        Level::Error => Some(Severity::Warning),
        Level::Info => FAILURE_WORDS.severity(&message.as_bytes()[..message.len().min(4096)]),
        _ => None,
    }
}

/// The words that make an info line an error, ignoring ASCII case: any of the fatal ones makes
/// it critical, else any of the others a warning. Every info line is searched, so the search
/// is one pass over it (seven window scans, then two passes, were up to ~4 % of a worker on
/// the Kafka path).
static FAILURE_WORDS: LazyLock<FailureWords> = LazyLock::new(|| {
    FailureWords::new(
        &[
            "panic",
            "fatal",
            "oomkilled",
            "out of memory",
            "segmentation fault",
        ],
        &["exception", "traceback"],
    )
});

struct FailureWords {
    /// The fatal words, then the others (a pattern's index says which it is).
    words: Vec<&'static str>,
    fatal: usize,
    /// `None` only if the automaton could not be built (it always can for these words); the
    /// search then compares window by window.
    automaton: Option<AhoCorasick>,
}

impl FailureWords {
    fn new(fatal: &[&'static str], error: &[&'static str]) -> FailureWords {
        let words: Vec<&'static str> = fatal.iter().chain(error).copied().collect();
        let automaton = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&words)
            .ok();
        FailureWords {
            words,
            fatal: fatal.len(),
            automaton,
        }
    }

    fn severity(&self, hay: &[u8]) -> Option<Severity> {
        // Overlapping matches: a fatal word is found even where it shares letters with an
        // earlier error word.
        match self
            .automaton
            .as_ref()
            .and_then(|a| a.try_find_overlapping_iter(hay).ok())
        {
            Some(hits) => self.classify(hits.map(|m| m.pattern().as_usize())),
            None => self.classify(self.words.iter().enumerate().filter_map(|(i, w)| {
                let n = w.as_bytes();
                let hit =
                    hay.len() >= n.len() && hay.windows(n.len()).any(|x| x.eq_ignore_ascii_case(n));
                hit.then_some(i)
            })),
        }
    }

    /// Critical at the first fatal word, else a warning if there was any word.
    fn classify(&self, patterns: impl Iterator<Item = usize>) -> Option<Severity> {
        let mut found = None;
        for pattern in patterns {
            if pattern < self.fatal {
                return Some(Severity::Critical);
            }
            found = Some(Severity::Warning);
        }
        found
    }
}

pub(super) fn level_severity(level: Level) -> Severity {
    if level >= Level::Warn {
        Severity::Warning
    } else {
        Severity::Info
    }
}

pub(super) fn lines(n: u64) -> String {
    if n == 1 {
        "1 line".to_owned()
    } else {
        format!("{n} lines")
    }
}

/// `90s`, `5m`, `1h30m` — for summaries people read.
pub(super) fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, 0) => format!("{}ms", d.as_millis()),
        (0, 0, sec) => format!("{sec}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, sec) => format!("{m}m{sec}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_words_make_an_info_line_an_error_whatever_their_case() {
        let cases = [
            (
                Level::Info,
                "java.lang.OutOfMemoryError: Out Of Memory",
                Some(Severity::Critical),
            ),
            (
                Level::Info,
                "container OOMKilled after 3 restarts",
                Some(Severity::Critical),
            ),
            (
                Level::Info,
                "Traceback (most recent call last):",
                Some(Severity::Warning),
            ),
            (
                Level::Info,
                "NullPointerException in handler",
                Some(Severity::Warning),
            ),
            (
                Level::Info,
                "panic and exception: fatal wins",
                Some(Severity::Critical),
            ),
            (
                Level::Info,
                "Traceback, then a PANIC: fatal wins wherever it is",
                Some(Severity::Critical),
            ),
            (
                Level::Info,
                "segmentation faultraceback (sharing a letter)",
                Some(Severity::Critical),
            ),
            (Level::Info, "GET /orders 200 12ms", None),
            (Level::Info, "", None),
            (Level::Warn, "segmentation fault", None),
            (Level::Error, "anything", Some(Severity::Warning)),
            (Level::Fatal, "anything", Some(Severity::Critical)),
        ];
        for (level, message, want) in cases {
            assert_eq!(
                error_severity(level, message),
                want,
                "{level:?} {message:?}"
            );
        }
    }
}
