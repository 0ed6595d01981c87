//! Incident → what a responder reads.

use std::collections::{BTreeMap, BTreeSet};

use kaizen_model::{
    Incident, IncidentStatus, Insight, SignalKind, SignalRef, Slo, Symbol, TimelineEntry, Topology,
};

/// Turns incident versions into [`Insight`]s: a one-line title naming the probable origin and
/// the impact, what users see, and a timeline derived from the incident's signals and changes.
#[derive(Clone, Debug)]
pub struct InsightBuilder {
    /// Timelines longer than this keep their first entries (how it began) and their latest
    /// (where it is now, the resolution included), and say how many were left out between.
    pub max_timeline: usize,
    /// SLOs by service, to say impact against the promise.
    slos: BTreeMap<Symbol, Slo>,
}

impl Default for InsightBuilder {
    fn default() -> Self {
        InsightBuilder {
            max_timeline: 25,
            slos: BTreeMap::new(),
        }
    }
}

impl InsightBuilder {
    /// A builder that knows the topology's SLOs.
    pub fn with_topology(topology: &Topology) -> Self {
        InsightBuilder {
            slos: topology
                .services
                .iter()
                .filter_map(|s| Some((s.name.clone(), s.slo.clone()?)))
                .collect(),
            ..InsightBuilder::default()
        }
    }

    /// One line per impacted service: how many requests fail, how slow, how fast the budget
    /// burns — from the incident's own signals on that service.
    fn impact(&self, incident: &Incident) -> Vec<String> {
        incident
            .impacted
            .iter()
            .filter_map(|svc| {
                let signals: Vec<_> = incident
                    .signals
                    .iter()
                    .filter(|s| &s.service == svc)
                    .collect();
                let until = |s: &SignalRef| s.ended.unwrap_or(incident.updated_at);
                let minutes = |s: &SignalRef| until(s).since(s.onset).as_secs().div_ceil(60).max(1);
                let mut parts = Vec::new();
                if let Some(s) = signals
                    .iter()
                    .find(|s| s.name.as_str() == "http_error_ratio")
                {
                    if let Some(v) = s.value {
                        parts.push(format!(
                            "{}% of requests failing for {} min",
                            fmt_pct(v),
                            minutes(s)
                        ));
                    }
                }
                if let Some(s) = signals
                    .iter()
                    .find(|s| s.name.as_str() == "http_latency_p99_ms")
                {
                    if let Some(v) = s.value {
                        let slo = self.slos.get(svc).and_then(|o| o.latency_p99_ms);
                        parts.push(match slo {
                            Some(t) => format!("p99 {} against a {} SLO", fmt_ms(v), fmt_ms(t)),
                            None => format!("p99 {}", fmt_ms(v)),
                        });
                    }
                }
                if let Some(s) = signals.iter().find(|s| s.kind == SignalKind::SloBurn) {
                    if let Some(v) = s.value {
                        parts.push(format!("error budget burning {v:.0}× too fast"));
                    }
                }
                if parts.is_empty() {
                    let names: BTreeSet<&str> = signals.iter().map(|s| s.name.as_str()).collect();
                    if names.is_empty() {
                        return None;
                    }
                    parts.push(format!(
                        "degraded ({})",
                        names.into_iter().collect::<Vec<_>>().join(", ")
                    ));
                }
                Some(format!("{svc}: {}", parts.join("; ")))
            })
            .collect()
    }

    /// The insight for this incident version.
    pub fn build(&self, incident: &Incident) -> Insight {
        Insight {
            id: incident.id.clone(),
            version: incident.version,
            status: incident.status,
            title: title(incident),
            severity: incident.severity,
            services: incident.services.clone(),
            impacted: incident.impacted.clone(),
            impact: self.impact(incident),
            origin: incident.origin.clone(),
            suspect_changes: incident.changes.clone(),
            similar: Vec::new(),
            novelty: None,
            timeline: self.timeline(incident),
            opened_at: incident.opened_at,
            updated_at: incident.updated_at,
            resolved_at: incident.resolved_at,
            explain: Vec::new(),
        }
    }

    fn timeline(&self, incident: &Incident) -> Vec<TimelineEntry> {
        let mut entries: Vec<TimelineEntry> = Vec::new();
        for c in &incident.changes {
            entries.push(TimelineEntry {
                ts: c.ts,
                text: c.description.clone(),
            });
        }
        for s in &incident.signals {
            entries.push(TimelineEntry {
                ts: s.onset,
                text: format!("{}: {}", s.service, s.summary),
            });
            if let Some(ended) = s.ended {
                entries.push(TimelineEntry {
                    ts: ended,
                    text: format!("{}: {} cleared", s.service, s.name),
                });
            }
        }
        if let (IncidentStatus::Resolved, Some(at)) = (incident.status, incident.resolved_at) {
            // Only a lagging signal (an error-budget burn) can still be up at resolution; say
            // so, or a responder seeing it page would think the incident closed too soon.
            let still_up: BTreeSet<&str> = incident
                .signals
                .iter()
                .filter(|s| s.ended.is_none() && s.kind == SignalKind::SloBurn)
                .map(|s| s.service.as_str())
                .collect();
            let text = if still_up.is_empty() {
                "resolved: all signals clear for the quiet period".to_owned()
            } else {
                format!(
                    "resolved: all symptoms clear for the quiet period (error budget of {} still \
                     burning over its longer windows)",
                    still_up.into_iter().collect::<Vec<_>>().join(", ")
                )
            };
            entries.push(TimelineEntry { ts: at, text });
        }
        entries.sort_by(|a, b| a.ts.cmp(&b.ts).then_with(|| a.text.cmp(&b.text)));
        if entries.len() > self.max_timeline && self.max_timeline >= 3 {
            // The latest entries matter most while an incident unfolds (and the Slack thread
            // replies only what a version shows): keep a third from the start, the rest from
            // the end.
            let head = self.max_timeline / 3;
            let tail = self.max_timeline - head - 1;
            let left_out = entries.len() - head - tail;
            let ts = entries[head - 1].ts;
            entries.splice(
                head..entries.len() - tail,
                [TimelineEntry {
                    ts,
                    text: format!("… {left_out} more entries"),
                }],
            );
        }
        entries
    }
}

fn fmt_pct(ratio: f64) -> String {
    let p = ratio * 100.0;
    if p >= 10.0 {
        format!("{p:.0}")
    } else {
        format!("{p:.1}")
    }
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

fn title(incident: &Incident) -> String {
    let origin = incident.origin.first().map(|c| &c.service);
    // The most severe, earliest symptom on the origin names the problem.
    let symptom = incident
        .signals
        .iter()
        .filter(|s| Some(&s.service) == origin)
        .max_by(|a, b| a.severity.cmp(&b.severity).then(b.onset.cmp(&a.onset)))
        .or_else(|| incident.signals.first());
    let mut title = match (symptom, origin) {
        (Some(s), Some(o)) => format!("{} on {o}", s.name),
        (Some(s), None) => format!("{} on {}", s.name, s.service),
        _ => "Incident".to_owned(),
    };
    let others = incident.services.len().saturating_sub(1);
    if others > 0 {
        title.push_str(&format!(
            " (+{others} service{})",
            if others == 1 { "" } else { "s" }
        ));
    }
    if !incident.impacted.is_empty() {
        let names: Vec<&str> = incident.impacted.iter().map(|s| s.as_str()).collect();
        title.push_str(&format!(", impacting {}", names.join(", ")));
    }
    title
}

#[cfg(test)]
mod tests {
    use kaizen_model::{OriginCandidate, Severity, SignalKind, SignalRef, Symbol, Timestamp};

    use super::*;

    #[test]
    fn title_names_origin_symptom_and_impact() {
        let sref = |svc: &str, name: &str, sev| SignalRef {
            kind: SignalKind::Alert,
            key: svc.into(),
            service: Symbol::new(svc),
            name: Symbol::new(name),
            severity: sev,
            summary: "x".into(),
            onset: Timestamp::from_millis(1000),
            ended: Some(Timestamp::from_millis(2000)),
            value: None,
            strength: 0.0,
        };
        let incident = Incident {
            id: "inc-1".into(),
            version: 2,
            status: IncidentStatus::Resolved,
            severity: Severity::Critical,
            opened_at: Timestamp::from_millis(1000),
            updated_at: Timestamp::from_millis(5000),
            resolved_at: Some(Timestamp::from_millis(5000)),
            services: vec![Symbol::new("db"), Symbol::new("web")],
            impacted: vec![Symbol::new("web")],
            origin: vec![OriginCandidate {
                service: Symbol::new("db"),
                score: 0.8,
                evidence: vec![],
                deviation: None,
            }],
            signals: vec![
                sref("db", "SlowQueries", Severity::Warning),
                sref("db", "DbDown", Severity::Critical),
                sref("web", "HighErrorRate", Severity::Critical),
            ],
            changes: vec![],
        };
        let insight = InsightBuilder::default().build(&incident);
        assert_eq!(insight.title, "DbDown on db (+1 service), impacting web");
        assert_eq!(insight.timeline.len(), 7);
        assert!(insight
            .timeline
            .last()
            .unwrap()
            .text
            .starts_with("resolved"));
        let short = InsightBuilder {
            max_timeline: 3,
            ..InsightBuilder::default()
        }
        .build(&incident);
        assert_eq!(short.timeline.len(), 3);
        assert_eq!(short.timeline[1].text, "… 5 more entries");
        // The latest entry, the resolution, is kept.
        assert!(short.timeline[2].text.starts_with("resolved"));
        assert_eq!(short.timeline[0], insight.timeline[0]);

        // An error-budget burn may outlast the symptoms (its windows lag): the resolution
        // says so.
        let mut burning = incident.clone();
        let mut burn = sref("web", "error_budget", Severity::Critical);
        burn.kind = SignalKind::SloBurn;
        burn.ended = None;
        burning.signals.push(burn);
        let insight = InsightBuilder::default().build(&burning);
        let last = insight.timeline.last().map(|e| e.text.as_str());
        assert_eq!(
            last,
            Some(
                "resolved: all symptoms clear for the quiet period (error budget of web still \
                 burning over its longer windows)"
            )
        );
    }
}
