//! Insights rendered for a person at a terminal, laid out like the Slack message they become.

use std::fmt::Write as _;
use std::io::{self, Write};

use kaizen_model::{IncidentStatus, Insight, Novelty, Severity};

use crate::InsightSink;

/// How [`TerminalSink`] draws.
#[derive(Clone, Copy, Debug, Default)]
pub struct TerminalStyle {
    /// ANSI colours (set when writing to a TTY and `NO_COLOR` is unset).
    pub color: bool,
    /// Print `updated` versions as one line instead of a full card.
    pub compact_updates: bool,
}

/// Prints each insight version as a card: title, severity, status, services, ranked origin
/// candidates with their evidence, suspect changes, similar incidents and the timeline.
pub struct TerminalSink<W: Write + Send> {
    out: W,
    style: TerminalStyle,
}

impl<W: Write + Send> TerminalSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W, style: TerminalStyle) -> Self {
        TerminalSink { out, style }
    }
}

impl<W: Write + Send> InsightSink for TerminalSink<W> {
    fn emit(&mut self, insight: &Insight) -> io::Result<()> {
        let text = if self.style.compact_updates && insight.status == IncidentStatus::Updated {
            render_line(insight, self.style)
        } else {
            render_card(insight, self.style)
        };
        self.out.write_all(text.as_bytes())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn paint(style: TerminalStyle, code: &str, text: &str) -> String {
    if style.color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

fn badge(insight: &Insight, style: TerminalStyle) -> String {
    let (code, mark) = match (insight.status, insight.severity) {
        (IncidentStatus::Resolved, _) => ("1;32", "RESOLVED"),
        (_, Severity::Critical) => ("1;31", "CRITICAL"),
        (_, Severity::Warning) => ("1;33", "WARNING"),
        (_, Severity::Info) => ("1;34", "INFO"),
    };
    paint(style, code, mark)
}

/// One line for an update: `~ 10:04:00 WARNING inc-… v3 title (services)`.
pub(crate) fn render_line(insight: &Insight, style: TerminalStyle) -> String {
    let origin = insight
        .origin
        .first()
        .map(|c| format!(" · origin {} {:.0}%", c.service, c.score * 100.0))
        .unwrap_or_default();
    format!(
        "  ~ {} {} {} v{} {}{origin}\n",
        insight.updated_at.clock(),
        badge(insight, style),
        insight.id,
        insight.version,
        insight.title,
    )
}

/// The full card.
pub(crate) fn render_card(insight: &Insight, style: TerminalStyle) -> String {
    let mut s = String::new();
    let rule = "─".repeat(72);
    let _ = writeln!(s, "{}", paint(style, "2", &rule));
    let _ = writeln!(
        s,
        "{}  {} · v{} · {}",
        badge(insight, style),
        insight.status.as_str(),
        insight.version,
        insight.id
    );
    let _ = writeln!(s, "{}", paint(style, "1", &insight.title));
    let when = match insight.resolved_at {
        Some(r) => format!(
            "opened {} · resolved {} ({} min)",
            insight.opened_at,
            r.clock(),
            r.since(insight.opened_at).as_secs() / 60
        ),
        None => format!(
            "opened {} · updated {}",
            insight.opened_at,
            insight.updated_at.clock()
        ),
    };
    let _ = writeln!(s, "{when}");
    let names =
        |v: &[kaizen_model::Symbol]| v.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", ");
    let _ = writeln!(s, "Services: {}", names(&insight.services));
    if !insight.impacted.is_empty() {
        let _ = writeln!(s, "Impacted: {}", names(&insight.impacted));
        for line in &insight.impact {
            let _ = writeln!(s, "  {line}");
        }
    }
    if !insight.origin.is_empty() {
        let _ = writeln!(s, "{}", paint(style, "1", "Probable origin"));
        for (i, c) in insight.origin.iter().take(3).enumerate() {
            let _ = writeln!(
                s,
                "  {}. {:<14} {:>3.0}%",
                i + 1,
                c.service.as_str(),
                c.score * 100.0
            );
            for e in &c.evidence {
                let _ = writeln!(s, "       · {e}");
            }
        }
    }
    if !insight.suspect_changes.is_empty() {
        let _ = writeln!(s, "{}", paint(style, "1", "Suspect changes"));
        for c in &insight.suspect_changes {
            let _ = writeln!(s, "  {}  {}", c.ts.clock(), c.description);
        }
    }
    match insight.novelty {
        Some(Novelty::New) => {
            let _ = writeln!(s, "Never seen before.");
        }
        Some(Novelty::Frequent) => {
            let _ = writeln!(s, "Frequent: this keeps happening.");
        }
        _ => {}
    }
    if !insight.similar.is_empty() {
        let _ = writeln!(s, "{}", paint(style, "1", "Seen before"));
        for p in &insight.similar {
            let _ = writeln!(
                s,
                "  {} ({:.0}% similar): {}",
                p.id,
                p.similarity * 100.0,
                p.title
            );
            if let Some(r) = &p.remedy {
                let _ = writeln!(s, "       remedy that worked: {r}");
            }
            if let Some(secs) = p.resolved_in_secs {
                let _ = writeln!(s, "       resolved in {} min", secs / 60);
            }
        }
    }
    if !insight.timeline.is_empty() {
        let _ = writeln!(s, "{}", paint(style, "1", "Timeline"));
        for e in &insight.timeline {
            let _ = writeln!(s, "  {}  {}", e.ts.clock(), e.text);
        }
    }
    render_explain(&mut s, insight, style);
    s
}

/// Why rules fired: rule, where it is defined, group, window, values and the first inputs.
fn render_explain(s: &mut String, insight: &Insight, style: TerminalStyle) {
    if insight.explain.is_empty() {
        return;
    }
    let _ = writeln!(s, "{}", paint(style, "1", "Why (rules)"));
    let pairs = |v: &[(String, String)]| {
        v.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for e in &insight.explain {
        let window = e
            .window
            .map(|(a, b)| format!(" · window {}–{}", a.clock(), b.clock()))
            .unwrap_or_default();
        let _ = writeln!(s, "  {} ({}) {}{window}", e.rule, e.source, pairs(&e.group));
        if !e.values.is_empty() {
            let _ = writeln!(s, "       {}", pairs(&e.values));
        }
        for ev in &e.events {
            let _ = writeln!(s, "       · {ev}");
        }
        if e.event_count > e.events.len() as u64 {
            let _ = writeln!(s, "       · … {} input events in all", e.event_count);
        }
    }
}

#[cfg(test)]
mod tests {
    use kaizen_model::{OriginCandidate, Symbol, TimelineEntry, Timestamp};

    use super::*;

    fn insight(status: IncidentStatus) -> Insight {
        Insight {
            id: "inc-00000000000000aa".into(),
            version: 2,
            status,
            title: "HighErrorRate on payments, impacting web".into(),
            severity: Severity::Critical,
            services: vec![Symbol::new("payments"), Symbol::new("web")],
            impacted: vec![Symbol::new("web")],
            impact: vec![],
            origin: vec![OriginCandidate {
                service: Symbol::new("payments"),
                score: 0.71,
                evidence: vec!["first to degrade".into()],
                deviation: None,
            }],
            suspect_changes: vec![],
            similar: vec![],
            novelty: None,
            timeline: vec![TimelineEntry {
                ts: Timestamp::from_millis(3_600_000),
                text: "payments: errors".into(),
            }],
            opened_at: Timestamp::from_millis(3_600_000),
            updated_at: Timestamp::from_millis(3_660_000),
            resolved_at: None,
            explain: Vec::new(),
        }
    }

    #[test]
    fn card_names_origin_evidence_and_timeline() {
        let card = render_card(&insight(IncidentStatus::Open), TerminalStyle::default());
        assert!(card.contains("CRITICAL  open · v2 · inc-00000000000000aa"));
        assert!(card.contains("1. payments        71%"));
        assert!(card.contains("· first to degrade"));
        assert!(card.contains("01:00:00  payments: errors"));
        assert!(!card.contains('\x1b'));
    }

    #[test]
    fn compact_updates_are_one_line() {
        let mut sink = TerminalSink::new(
            Vec::new(),
            TerminalStyle {
                color: false,
                compact_updates: true,
            },
        );
        sink.emit(&insight(IncidentStatus::Updated)).unwrap();
        let text = String::from_utf8(sink.out).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.contains("origin payments 71%"));
    }
}
