//! Prometheus Alertmanager's webhook notification (`version: "4"`): one message is one
//! notification for one alert group, carrying every alert of the group, firing or resolved.
//!
//! Grafana's unified alerting webhook has the same shape plus a few fields, so the decoding
//! here serves both ([`grafana`](super::grafana) calls [`decode_webhook`]).
//!
//! Event time: a resolved alert is stamped with its `endsAt`; a firing alert with the time the
//! notification was sent when the transport knows it ([`DecodeContext::received`]), because
//! Alertmanager re-sends firing alerts with their original `startsAt` and kaizen's alert pipeline
//! keeps an alert alive only while it keeps being re-sent; without it, `startsAt`.

use std::collections::BTreeMap;

use kaizen_model::{AlertStatus, Attributes, Event, Symbol, Timestamp};
use serde::Deserialize;
use serde_json::Value;

use super::common::{
    invalid, json_error, missing, service_from_labels, value_text, AlertParts, TextMap, TimeValue,
    UNKNOWN_SERVICE,
};
use super::{CodecError, DecodeContext, Format};

/// The notification (Alertmanager's `webhook.Message`, Grafana's `ExtendedData`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    #[serde(default)]
    alerts: Option<Vec<WebhookAlert>>,
    #[serde(default)]
    common_labels: TextMap,
}

/// One alert of a notification.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookAlert {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    labels: TextMap,
    #[serde(default)]
    annotations: TextMap,
    #[serde(default)]
    starts_at: Option<TimeValue>,
    #[serde(default)]
    ends_at: Option<TimeValue>,
    #[serde(default, rename = "generatorURL")]
    generator_url: Option<String>,
    #[serde(default)]
    fingerprint: Option<String>,
    // Grafana only
    #[serde(default)]
    values: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    value_string: Option<String>,
    #[serde(default, rename = "dashboardURL")]
    dashboard_url: Option<String>,
    #[serde(default, rename = "panelURL")]
    panel_url: Option<String>,
}

/// Decodes an Alertmanager notification.
pub(super) fn decode(
    payload: &[u8],
    ctx: &DecodeContext<'_>,
    out: &mut Vec<Event>,
) -> Result<(), CodecError> {
    decode_webhook(Format::Alertmanager, payload, ctx, out)
}

/// Decodes an Alertmanager-shaped notification as `format`: one Alert event per alert.
pub(super) fn decode_webhook(
    format: Format,
    payload: &[u8],
    ctx: &DecodeContext<'_>,
    out: &mut Vec<Event>,
) -> Result<(), CodecError> {
    let n: Notification = serde_json::from_slice(payload).map_err(json_error(format))?;
    let alerts = n.alerts.ok_or_else(|| missing(format, "alerts"))?;
    for (i, a) in alerts.into_iter().enumerate() {
        let field = |f: &str| format!("alerts[{i}].{f}");
        let status = match a.status.as_deref().unwrap_or("firing") {
            "firing" | "alerting" => AlertStatus::Firing,
            "resolved" | "ok" | "normal" => AlertStatus::Resolved,
            other => {
                return Err(invalid(
                    format,
                    field("status"),
                    format!("{other:?} (expected firing or resolved)"),
                ))
            }
        };
        let name = a
            .labels
            .get("alertname")
            .ok_or_else(|| missing(format, field("labels.alertname")))?
            .to_owned();
        let starts = time(format, &a.starts_at, &field("startsAt"))?;
        let ends = time(format, &a.ends_at, &field("endsAt"))?;
        let ts = match status {
            AlertStatus::Firing => match (starts, ctx.received) {
                (Some(s), Some(r)) => s.max(r),
                (s, r) => s.or(r).ok_or_else(|| missing(format, field("startsAt")))?,
            },
            AlertStatus::Resolved => ends
                .or(ctx.received)
                .or(starts)
                .ok_or_else(|| missing(format, field("endsAt")))?,
        };
        let service = service_from_labels(&a.labels)
            .or_else(|| service_from_labels(&n.common_labels))
            .unwrap_or(UNKNOWN_SERVICE)
            .to_owned();
        let mut annotations = a.annotations.attribute_pairs();
        let extras = [
            ("generator_url", a.generator_url),
            ("value_string", a.value_string),
            ("dashboard_url", a.dashboard_url),
            ("panel_url", a.panel_url),
            ("values", a.values.map(|v| values_text(&v))),
        ];
        annotations.extend(
            extras
                .into_iter()
                .filter_map(|(k, v)| Some((Symbol::new(k), v.filter(|v| !v.is_empty())?))),
        );
        out.push(
            AlertParts {
                ts,
                service,
                name,
                status,
                severity: None,
                fingerprint: a.fingerprint,
                labels: a.labels.labels(),
                annotations: Attributes::from_pairs(annotations),
            }
            .into_event(),
        );
    }
    Ok(())
}

/// A readable time, `None` when absent or the zero time Go writes for "unset"
/// (`0001-01-01T00:00:00Z`), an error when present but unreadable otherwise.
fn time(
    format: Format,
    v: &Option<TimeValue>,
    field: &str,
) -> Result<Option<Timestamp>, CodecError> {
    match v {
        None => Ok(None),
        Some(TimeValue::At(t)) => Ok(Some(*t)),
        Some(TimeValue::Bad(_)) if is_go_zero(v) => Ok(None),
        Some(bad) => bad.get(format, field).map(Some),
    }
}

fn is_go_zero(v: &Option<TimeValue>) -> bool {
    // Timestamp cannot represent year 1, so the zero time arrives as unreadable text.
    matches!(v, Some(TimeValue::Bad(reason)) if reason.contains("\"0001-01-01"))
}

/// Grafana's `values` (`{"B": 44.2, "C": 1}`) as `B=44.2, C=1`.
fn values_text(values: &BTreeMap<String, Value>) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k}={}", value_text(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_model::EventBody;

    fn one(json: &str, ctx: &DecodeContext<'_>) -> Result<Event, CodecError> {
        let mut out = Vec::new();
        decode(json.as_bytes(), ctx, &mut out)?;
        Ok(out.remove(0))
    }

    #[test]
    fn firing_time_is_the_send_time_and_resolved_time_is_ends_at() {
        let firing = r#"{"alerts":[{"status":"firing","labels":{"alertname":"A","job":"api"},"startsAt":"2026-01-05T10:00:00Z","endsAt":"0001-01-01T00:00:00Z"}]}"#;
        let sent = Timestamp::parse("2026-01-05T10:04:00Z").ok();
        let ctx = DecodeContext {
            received: sent,
            ..Default::default()
        };
        assert_eq!(Some(one(firing, &ctx).unwrap().ts), sent);
        let e = one(firing, &DecodeContext::default()).unwrap();
        assert_eq!(e.ts.to_string(), "2026-01-05T10:00:00.000Z");
        assert_eq!(e.service.as_str(), "api");
        let resolved = r#"{"alerts":[{"status":"resolved","labels":{"alertname":"A"},"startsAt":"2026-01-05T10:00:00Z","endsAt":"2026-01-05T10:09:00Z"}]}"#;
        let e = one(resolved, &ctx).unwrap();
        assert_eq!(e.ts.to_string(), "2026-01-05T10:09:00.000Z");
        assert_eq!(e.service.as_str(), UNKNOWN_SERVICE);
        let EventBody::Alert(a) = e.body else {
            panic!()
        };
        assert_eq!(a.status, AlertStatus::Resolved);
    }

    #[test]
    fn bad_alerts_say_which_and_why() {
        let ctx = DecodeContext::default();
        let err = |json: &str| one(json, &ctx).unwrap_err().to_string();
        assert_eq!(
            err(r#"{"alerts":[{"labels":{}}]}"#),
            "alertmanager: missing alerts[0].labels.alertname"
        );
        assert!(
            err(r#"{"alerts":[{"status":"pending","labels":{"alertname":"A"}}]}"#)
                .contains("alerts[0].status")
        );
        assert!(
            err(r#"{"alerts":[{"labels":{"alertname":"A"},"startsAt":"soon"}]}"#)
                .contains("alerts[0].startsAt")
        );
        assert_eq!(
            err(r#"{"status":"firing"}"#),
            "alertmanager: missing alerts"
        );
        assert!(err("[1,2]").starts_with("alertmanager: invalid JSON"));
    }
}
