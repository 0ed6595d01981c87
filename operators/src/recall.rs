//! Recall: recognising an incident that happened before, and what fixed it.

use std::collections::BTreeMap;

use kaizen_model::{
    Feedback, FeedbackAction, Fingerprint, Incident, IncidentStatus, Insight, Novelty,
    PastIncident, SignalKind, SimilarIncident, Symbol, Timestamp,
};
use serde::{Deserialize, Serialize};

/// The fingerprint of an incident version: its origin, its services, and the alerts,
/// metrics, log templates and rules that fired where, as weighted features.
///
/// What happened at the origin defines a fault; how far it spread and which callers noticed
/// depends on the traffic of the day, so features of other services weigh a quarter. What the
/// system said (alert names, log templates, rules) names a fault; which metrics left their
/// baselines depends on how hard it hit that day (p50 or only p99, saturation or not), so
/// metric anomalies weigh less. Log templates
/// enter by their shape (see [`template_shape`]): the same template reads `GET /categories …`
/// the first time and `GET <*> …` once it has generalised.
pub fn fingerprint(incident: &Incident) -> Fingerprint {
    let mut features: BTreeMap<String, f32> = BTreeMap::new();
    let mut add = |k: String, w: f32| {
        let e = features.entry(k).or_insert(0.0);
        *e = e.max(w);
    };
    let origin = incident.origin.first().map(|o| &o.service);
    let near = |service: &Symbol| if Some(service) == origin { 1.0 } else { 0.25 };
    if let Some(o) = origin {
        add(format!("origin:{o}"), 3.0);
    }
    for s in &incident.services {
        add(format!("service:{s}"), near(s));
    }
    for s in &incident.signals {
        let (prefix, w) = match s.kind {
            SignalKind::Alert => ("alert", 2.0),
            SignalKind::MetricAnomaly => ("metric", 0.75),
            SignalKind::LogTemplate => ("log", 2.0),
            SignalKind::Rule => ("rule", 2.0),
            SignalKind::SloBurn => ("slo", 1.0),
            SignalKind::Change => ("change", 0.5),
        };
        let name = match s.kind {
            SignalKind::LogTemplate => template_shape(s.name.as_str()),
            _ => s.name.to_string(),
        };
        add(
            format!("{prefix}:{}/{name}", s.service),
            w * near(&s.service),
        );
        add(format!("kind:{}", s.kind.as_str()), 0.5);
    }
    Fingerprint::from_features(features)
}

/// The words of a log template that never vary: no wildcards, numbers, paths or truncated
/// words, at most eight. `upstream catalog returned <*> for GET /categories request_id=<*>`
/// and its later generalisation `… for GET <*> …` share the shape
/// `upstream catalog returned for GET`.
pub fn template_shape(template: &str) -> String {
    let mut shape = String::new();
    let words = template.split_whitespace().filter(|w| {
        !(w.contains("<*>")
            || w.starts_with('/')
            || w.ends_with('…')
            || w.bytes().any(|b| b.is_ascii_digit()))
    });
    for w in words.take(8) {
        if !shape.is_empty() {
            shape.push(' ');
        }
        shape.push_str(w);
    }
    shape
}

/// How recall ranks and classifies.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct RecallConfig {
    /// Past incidents at least this similar are shown.
    pub threshold: f64,
    /// At most this many are shown.
    pub top_k: usize,
    /// Fewer similar past incidents than this is `rare`; none is `new`; more is `frequent`.
    pub frequent_at: usize,
}

impl Default for RecallConfig {
    fn default() -> Self {
        RecallConfig {
            threshold: 0.5,
            top_k: 3,
            frequent_at: 3,
        }
    }
}

/// Joins incidents with the history of past incidents: each insight gets the most similar
/// past incidents with the remedy that worked and how long they took, and a novelty class.
/// Feedback updates the history; resolved incidents join it.
///
/// Pure state: the caller loads the history and persists the updates it hands back.
#[derive(Default)]
pub struct IncidentRecall {
    config: RecallConfig,
    history: BTreeMap<String, PastIncident>,
    /// Incidents still open: feedback can arrive before they resolve.
    open: BTreeMap<String, PastIncident>,
}

impl IncidentRecall {
    /// Recall over `history` (later records for an id replace earlier ones).
    pub fn new(config: RecallConfig, history: impl IntoIterator<Item = PastIncident>) -> Self {
        IncidentRecall {
            config,
            history: history.into_iter().map(|p| (p.id.clone(), p)).collect(),
            open: BTreeMap::new(),
        }
    }

    /// Number of past incidents known.
    pub fn history_len(&self) -> usize {
        self.history.len()
    }

    /// Fills `insight.similar` and `insight.novelty` for this incident version; when the
    /// incident resolves it joins the history and its record is pushed to `updates`.
    pub fn on_incident(
        &mut self,
        incident: &Incident,
        insight: &mut Insight,
        updates: &mut Vec<PastIncident>,
    ) {
        let fingerprint = fingerprint(incident);
        let mut scored: Vec<(f64, &PastIncident)> = self
            .history
            .values()
            .filter(|p| p.id != incident.id && p.opened_at < incident.opened_at)
            .map(|p| (fingerprint.similarity(&p.fingerprint), p))
            .filter(|(s, _)| *s >= self.config.threshold)
            .collect();
        scored.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| b.1.opened_at.cmp(&a.1.opened_at))
                .then_with(|| a.1.id.cmp(&b.1.id))
        });
        let count = scored.len();
        insight.novelty = Some(match count {
            0 => Novelty::New,
            n if n < self.config.frequent_at => Novelty::Rare,
            _ => Novelty::Frequent,
        });
        insight.similar = scored
            .into_iter()
            .take(self.config.top_k)
            .map(|(s, p)| SimilarIncident {
                id: p.id.clone(),
                title: p.title.clone(),
                similarity: (s * 1000.0).round() / 1000.0,
                remedy: p.best_remedy().map(str::to_owned),
                resolved_in_secs: p.resolved_at.map(|r| r.since(p.opened_at).as_secs()),
            })
            .collect();

        let remedies = self
            .open
            .get(&incident.id)
            .map(|p| p.remedies.clone())
            .unwrap_or_default();
        let record = PastIncident {
            id: incident.id.clone(),
            title: insight.title.clone(),
            opened_at: incident.opened_at,
            resolved_at: incident.resolved_at,
            services: incident.services.clone(),
            origin: incident.origin.first().map(|c| c.service.clone()),
            fingerprint,
            remedies,
        };
        if incident.status == IncidentStatus::Resolved {
            self.open.remove(&incident.id);
            updates.push(record.clone());
            self.history.insert(record.id.clone(), record);
        } else {
            self.open.insert(record.id.clone(), record);
        }
    }

    /// Applies a responder's verdict. Feedback that names no incident is about the latest
    /// incident (open first, then past) involving `service` that opened before `ts`.
    pub fn on_feedback(
        &mut self,
        ts: Timestamp,
        service: &Symbol,
        feedback: &Feedback,
        updates: &mut Vec<PastIncident>,
    ) {
        let vote = match feedback.action {
            FeedbackAction::RemedyWorked => 1,
            FeedbackAction::NotHelpful => -1,
            FeedbackAction::Acknowledge | FeedbackAction::Resolve => return,
        };
        let Some(remedy) = feedback.remedy.as_ref().filter(|r| !r.trim().is_empty()) else {
            return;
        };
        let latest = |m: &BTreeMap<String, PastIncident>| {
            m.values()
                .filter(|p| p.opened_at <= ts && p.services.contains(service))
                .max_by(|a, b| a.opened_at.cmp(&b.opened_at).then_with(|| a.id.cmp(&b.id)))
                .map(|p| p.id.clone())
        };
        let id = if feedback.incident.is_empty() {
            latest(&self.open).or_else(|| latest(&self.history))
        } else {
            Some(feedback.incident.clone())
        };
        let Some(id) = id else { return };
        if let Some(p) = self.open.get_mut(&id) {
            *p.remedies.entry(remedy.clone()).or_insert(0) += vote;
        } else if let Some(p) = self.history.get_mut(&id) {
            *p.remedies.entry(remedy.clone()).or_insert(0) += vote;
            updates.push(p.clone());
        }
    }
}

#[cfg(test)]
mod tests;
