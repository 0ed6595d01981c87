//! Grafana unified alerting's webhook contact point. Its body is Alertmanager's webhook
//! notification (Grafana embeds Alertmanager) plus `orgId`, `title`, `state`, `message` at the
//! top and `values`, `valueString`, `dashboardURL`, `panelURL`, `silenceURL`, `imageURL` per
//! alert, so it is decoded by [`decode_webhook`] as format `grafana`; the extras that help a
//! responder (`values`, `valueString`, dashboard and panel links) become annotations.
//! Labels starting with `__` (Grafana-internal) are dropped; `alerting` and `ok` (legacy
//! spellings) are read as firing and resolved.

use kaizen_model::Event;

use super::alertmanager::decode_webhook;
use super::{CodecError, DecodeContext, Format};

/// Decodes a Grafana webhook notification: one Alert event per alert.
pub(super) fn decode(
    payload: &[u8],
    ctx: &DecodeContext<'_>,
    out: &mut Vec<Event>,
) -> Result<(), CodecError> {
    decode_webhook(Format::Grafana, payload, ctx, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_model::{AlertStatus, EventBody};

    #[test]
    fn legacy_states_and_internal_labels() {
        let json = br#"{"orgId":1,"state":"alerting","alerts":[{"status":"alerting","labels":{"alertname":"Disk","__alert_rule_uid__":"x","service_name":"db"},"values":{"A":0.97},"startsAt":"2026-01-05T10:00:00Z"},{"status":"ok","labels":{"alertname":"Disk"},"endsAt":"2026-01-05T10:05:00+01:00"}]}"#;
        let mut out = Vec::new();
        decode(json, &DecodeContext::default(), &mut out).unwrap();
        assert_eq!(out.len(), 2);
        let EventBody::Alert(a) = &out[0].body else {
            panic!()
        };
        assert_eq!(out[0].service.as_str(), "db");
        assert_eq!(a.labels.get("__alert_rule_uid__"), None);
        assert_eq!(a.annotations.get("values"), Some("A=0.97"));
        let EventBody::Alert(b) = &out[1].body else {
            panic!()
        };
        assert_eq!(b.status, AlertStatus::Resolved);
        assert_eq!(out[1].ts.to_string(), "2026-01-05T09:05:00.000Z");
        let err = decode(
            br#"{"alerts":[{"labels":{}}]}"#,
            &DecodeContext::default(),
            &mut out,
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            "grafana: missing alerts[0].labels.alertname"
        );
    }
}
