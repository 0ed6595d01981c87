//! Releases seen in telemetry, for estates that send no deploy event.
//!
//! Every OpenTelemetry resource names its build (`service.version`, and often
//! `container.image.tag`; the OTLP codec reports them as `target_info`), Prometheus services
//! export `*_build_info{version}`, and kube-state-metrics `kube_pod_container_info{image}`.
//! [`ReleaseWatch`] turns those into [`Change`] events: a service that starts reporting a
//! version it never reported was deployed; one that reports again a version it had left (not
//! seen for [`RETIRED_AFTER_MS`]) was rolled back. The first version a service reports is
//! where it stands, not a change. During a rolling deploy old and new instances report side
//! by side: that is one deploy, not a flip-flop.

use std::collections::BTreeMap;

use kaizen_model::{Change, Event, EventBody, Metric, Symbol};

/// A version not reported for this long has been left behind.
pub const RETIRED_AFTER_MS: u64 = 10 * 60_000;

/// Versions remembered per service (the least recently reported are forgotten beyond it).
const MAX_VERSIONS: usize = 16;

/// Watches the versions services report (see the module docs).
#[derive(Default)]
pub struct ReleaseWatch {
    services: BTreeMap<Symbol, Releases>,
}

#[derive(Default)]
struct Releases {
    /// The version most recently deployed or rolled back to.
    current: String,
    /// Version → when it was last reported (ms).
    last_seen: BTreeMap<String, u64>,
}

impl ReleaseWatch {
    /// Reads one event (in event-time order per service); a deploy or rollback it reveals
    /// comes back as a change event at the same time.
    pub fn on_event(&mut self, event: &Event) -> Option<Event> {
        let EventBody::Metric(m) = &event.body else {
            return None;
        };
        let version = version_of(m)?;
        let ts = event.ts.as_millis();
        let r = self.services.entry(event.service.clone()).or_default();
        let previous = r.last_seen.insert(version.to_owned(), ts);
        if r.current.is_empty() {
            r.current = version.to_owned();
            return None;
        }
        let kind = match previous {
            None => "deploy",
            Some(seen) if version != r.current && ts.saturating_sub(seen) >= RETIRED_AFTER_MS => {
                "rollback"
            }
            Some(_) => return None,
        };
        let before = std::mem::replace(&mut r.current, version.to_owned());
        if r.last_seen.len() > MAX_VERSIONS {
            let oldest = r
                .last_seen
                .iter()
                .min_by_key(|(v, t)| (**t, (*v).clone()))
                .map(|(v, _)| v.clone());
            if let Some(v) = oldest {
                r.last_seen.remove(&v);
            }
        }
        let service = event.service.as_str();
        let description = match kind {
            "deploy" => format!("{service} reports version {version} (was {before})"),
            _ => format!("{service} is back on version {version} (from {before})"),
        };
        Some(Event {
            ts: event.ts,
            service: event.service.clone(),
            body: EventBody::Change(Change {
                change_kind: Symbol::new(kind),
                version: Some(version.to_owned()),
                description,
                author: None,
            }),
        })
    }
}

/// The build a sample names, if it is a build-info sample.
fn version_of(m: &Metric) -> Option<&str> {
    let name = m.name.as_str();
    let label = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| m.labels.get(k))
            .map(|v| v.as_str())
            .filter(|v| !v.is_empty())
    };
    if name == "target_info" {
        return label(&[
            "service.version",
            "container.image.tag",
            "k8s.deployment.revision",
        ]);
    }
    if name.ends_with("_build_info") {
        return label(&[
            "version",
            "git_version",
            "gitVersion",
            "revision",
            "build_version",
        ]);
    }
    if name == "kube_pod_container_info" {
        let image = label(&["image"])?;
        // `registry:5000/shop/payments:v1.4.2` → `v1.4.2`; a digest or no tag: the whole ref.
        let tail = image.rsplit('/').next().unwrap_or(image);
        return Some(tail.rsplit_once(':').map_or(image, |(_, tag)| tag));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(minute: u64, service: &str, name: &str, labels: &str) -> Event {
        let line = format!(
            r#"{{"ts":{},"kind":"metric","service":"{service}","name":"{name}","value":1,"labels":{{{labels}}}}}"#,
            1_767_600_000 + minute * 60
        );
        Event::from_json(&line).unwrap()
    }

    fn changes(w: &mut ReleaseWatch, events: &[Event]) -> Vec<(u64, String, String)> {
        events
            .iter()
            .filter_map(|e| w.on_event(e))
            .map(|e| match e.body {
                EventBody::Change(c) => (
                    (e.ts.as_millis() / 1000 - 1_767_600_000) / 60,
                    c.change_kind.to_string(),
                    c.version.unwrap_or_default(),
                ),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn a_new_version_is_a_deploy_and_a_return_is_a_rollback_once_the_old_one_was_left() {
        let mut w = ReleaseWatch::default();
        let v = |minute, instance: &str, version: &str| {
            let labels = format!(r#""service.version":"{version}","instance":"{instance}""#);
            info(minute, "pay", "target_info", &labels)
        };
        let events = [
            v(0, "a", "1.0"),
            v(0, "b", "1.0"),
            // A rolling deploy: both versions side by side for a few minutes.
            v(5, "a", "1.1"),
            v(5, "b", "1.0"),
            v(6, "a", "1.1"),
            v(6, "b", "1.0"),
            v(7, "a", "1.1"),
            v(7, "b", "1.1"),
            v(30, "a", "1.1"),
            // Back to 1.0, 23 minutes after it was last seen.
            v(31, "a", "1.0"),
            v(31, "b", "1.1"),
            v(32, "a", "1.0"),
        ];
        assert_eq!(
            changes(&mut w, &events),
            [
                (5, "deploy".into(), "1.1".into()),
                (31, "rollback".into(), "1.0".into())
            ]
        );
    }

    #[test]
    fn prometheus_build_info_and_kube_state_metrics_images() {
        let mut w = ReleaseWatch::default();
        let events = [
            info(
                0,
                "api",
                "api_build_info",
                r#""version":"2.3.0","goversion":"go1.22""#,
            ),
            info(
                1,
                "api",
                "api_build_info",
                r#""version":"2.4.0","goversion":"go1.22""#,
            ),
            info(
                0,
                "cart",
                "kube_pod_container_info",
                r#""image":"registry:5000/shop/cart:v7""#,
            ),
            info(
                2,
                "cart",
                "kube_pod_container_info",
                r#""image":"registry:5000/shop/cart:v8""#,
            ),
            info(3, "cart", "up", ""),
        ];
        assert_eq!(
            changes(&mut w, &events),
            [
                (1, "deploy".into(), "2.4.0".into()),
                (2, "deploy".into(), "v8".into())
            ]
        );
    }
}
