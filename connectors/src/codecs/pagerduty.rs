//! PagerDuty Events API v2 alert events (the body POSTed to `/v2/enqueue`), as monitoring tools
//! send them to PagerDuty and can send them to kaizen: `trigger`, `acknowledge`, `resolve`,
//! correlated by `dedup_key`. A message may hold one event or a JSON array / lines of them.
//!
//! `trigger` is a firing alert and `resolve` a resolved one (fingerprint = `dedup_key`, so a
//! resolve finds its trigger). `acknowledge` changes nothing kaizen tracks (a human is on it,
//! the condition still holds) and yields no event. A resolve carries no payload, so no service
//! and no time: it is filed under the service `unknown` and stamped with the record time.

use kaizen_model::{AlertStatus, Attributes, Event, Labels, Symbol};
use serde::Deserialize;
use serde_json::Value;

use super::common::{
    for_each_document, invalid, missing, value_text, AlertParts, TimeValue, UNKNOWN_SERVICE,
};
use super::{CodecError, DecodeContext, Format};

const FORMAT: Format = Format::PagerDuty;

#[derive(Deserialize)]
struct PdEvent {
    #[serde(default)]
    event_action: Option<String>,
    #[serde(default)]
    dedup_key: Option<String>,
    #[serde(default)]
    payload: Option<PdPayload>,
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    client_url: Option<String>,
}

#[derive(Deserialize)]
struct PdPayload {
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    timestamp: Option<TimeValue>,
    #[serde(default)]
    component: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    class: Option<String>,
    #[serde(default)]
    custom_details: Option<Value>,
}

/// Decodes every event of the message.
pub(super) fn decode(
    payload: &[u8],
    ctx: &DecodeContext<'_>,
    out: &mut Vec<Event>,
) -> Result<(), CodecError> {
    for_each_document(FORMAT, payload, |i, e: PdEvent| event(i, e, ctx, out))
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

fn event(
    i: usize,
    e: PdEvent,
    ctx: &DecodeContext<'_>,
    out: &mut Vec<Event>,
) -> Result<(), CodecError> {
    let field = |f: &str| {
        if i == 0 {
            f.to_owned()
        } else {
            format!("[{i}].{f}")
        }
    };
    let status = match e.event_action.as_deref() {
        Some("trigger") => AlertStatus::Firing,
        Some("resolve") => AlertStatus::Resolved,
        Some("acknowledge") => {
            tracing::debug!(dedup_key = ?e.dedup_key, "pagerduty acknowledge: nothing to decode");
            return Ok(());
        }
        Some(other) => {
            return Err(invalid(
                FORMAT,
                field("event_action"),
                format!("{other:?} (expected trigger, acknowledge or resolve)"),
            ))
        }
        None => return Err(missing(FORMAT, field("event_action"))),
    };
    let dedup_key = nonempty(&e.dedup_key).map(str::to_owned);
    let Some(p) = e.payload else {
        // resolve (or a sloppy trigger) without payload: only the dedup key is known
        let key = dedup_key.ok_or_else(|| missing(FORMAT, field("payload")))?;
        let ts = ctx
            .received
            .ok_or_else(|| missing(FORMAT, field("payload.timestamp")))?;
        out.push(
            AlertParts {
                ts,
                service: UNKNOWN_SERVICE.to_owned(),
                name: key.clone(),
                status,
                severity: None,
                fingerprint: Some(key),
                labels: Labels::default(),
                annotations: Attributes::default(),
            }
            .into_event(),
        );
        return Ok(());
    };
    let ts = match &p.timestamp {
        Some(t) => t.get(FORMAT, &field("payload.timestamp"))?,
        None => ctx
            .received
            .ok_or_else(|| missing(FORMAT, field("payload.timestamp")))?,
    };
    let name = nonempty(&p.class)
        .or(nonempty(&p.summary))
        .or(dedup_key.as_deref())
        .ok_or_else(|| missing(FORMAT, field("payload.summary")))?
        .to_owned();
    let details_service = match &p.custom_details {
        Some(Value::Object(m)) => m.get("service").map(value_text).filter(|s| !s.is_empty()),
        _ => None,
    };
    let service = details_service
        .or_else(|| nonempty(&p.component).map(str::to_owned))
        .or_else(|| nonempty(&p.group).map(str::to_owned))
        .or_else(|| nonempty(&p.source).map(str::to_owned))
        .unwrap_or_else(|| UNKNOWN_SERVICE.to_owned());
    let labels = [
        ("source", &p.source),
        ("component", &p.component),
        ("group", &p.group),
        ("class", &p.class),
        ("severity", &p.severity),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((Symbol::new(k), Symbol::new(nonempty(v)?))))
    .collect::<Vec<_>>();
    let mut annotations: Vec<(Symbol, String)> = [
        ("summary", p.summary.clone()),
        ("client", e.client),
        ("client_url", e.client_url),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((Symbol::new(k), v.filter(|v| !v.is_empty())?)))
    .collect();
    match p.custom_details {
        Some(Value::Object(m)) => {
            annotations.extend(m.iter().map(|(k, v)| (Symbol::new(k), value_text(v))))
        }
        Some(Value::Null) | None => {}
        Some(other) => annotations.push((Symbol::new("custom_details"), value_text(&other))),
    }
    out.push(
        AlertParts {
            ts,
            service,
            name,
            status,
            severity: p.severity,
            fingerprint: dedup_key,
            labels: Labels::from_pairs(labels),
            annotations: Attributes::from_pairs(annotations),
        }
        .into_event(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codecs::common::test_util::{alert, all, at, fixture};
    use crate::codecs::{decode_with, DecodeContext, Format};
    use kaizen_model::{EventBody, Timestamp};

    #[test]
    fn acknowledge_is_nothing_and_bare_resolve_needs_a_record_time() {
        let mut out = Vec::new();
        let ack = br#"{"routing_key":"k","dedup_key":"d","event_action":"acknowledge"}"#;
        decode(ack, &DecodeContext::default(), &mut out).unwrap();
        assert!(out.is_empty());
        let resolve = br#"{"routing_key":"k","dedup_key":"srv01/mysql","event_action":"resolve"}"#;
        let err = decode(resolve, &DecodeContext::default(), &mut out).unwrap_err();
        assert_eq!(err.to_string(), "pagerduty: missing payload.timestamp");
        let ctx = DecodeContext {
            received: Timestamp::parse("2026-01-05T10:00:00Z").ok(),
            ..Default::default()
        };
        decode(resolve, &ctx, &mut out).unwrap();
        let EventBody::Alert(a) = &out[0].body else {
            panic!()
        };
        assert_eq!(
            (a.status, a.fingerprint.as_str()),
            (AlertStatus::Resolved, "srv01/mysql")
        );
        let bad = br#"{"event_action":"page","payload":{}}"#;
        assert!(decode(bad, &ctx, &mut out)
            .unwrap_err()
            .to_string()
            .contains("event_action"));
    }

    #[test]
    fn pagerduty_events() {
        let events = all(Format::PagerDuty, fixture!("pagerduty/trigger.json"));
        let e = &events[0];
        assert_eq!(
            (e.service.as_str(), e.ts),
            ("mysql", at("2015-07-17T08:42:58.315Z"))
        );
        let a = alert(e);
        assert_eq!(
            (a.name.as_str(), a.status, a.severity.as_str()),
            ("disk", AlertStatus::Firing, "critical")
        );
        assert_eq!(a.fingerprint, "srv01/mysql");
        assert_eq!(
            a.labels.get("source").map(|v| v.as_str()),
            Some("prod-datapipe03.example.com")
        );
        assert_eq!(
            a.annotations.get("summary"),
            Some("DISK at 99% on machine prod-datapipe03.example.com")
        );
        assert_eq!(a.annotations.get("load avg"), Some("0.75"));
        assert_eq!(a.annotations.get("free space"), Some("1%"));

        assert!(all(Format::PagerDuty, fixture!("pagerduty/acknowledge.json")).is_empty());
        let ctx = DecodeContext {
            received: Some(at("2026-01-05T10:00:00Z")),
            ..Default::default()
        };
        let mut out = Vec::new();
        decode_with(
            Format::PagerDuty,
            fixture!("pagerduty/resolve.json"),
            &ctx,
            &mut out,
        )
        .unwrap();
        let a = alert(&out[0]);
        assert_eq!(
            (a.status, a.fingerprint.as_str()),
            (AlertStatus::Resolved, "dedupkeyhere")
        );
    }
}
