//! Fluent Bit records encoded as JSON (`out_kafka` / `out_http` with `format json`): the line in
//! `log` (the `tail` input's key; `message` after some parsers), the time under the output's
//! timestamp key (`@timestamp` for `out_kafka`, `date` for `out_http` and `out_stdout`, as a unix
//! float or ISO 8601) or the parser's `time`, and with the `kubernetes` filter the pod metadata
//! under `kubernetes` (`namespace_name`, `labels`, `host`, …).

use kaizen_model::Event;

use super::log_lines::{self, Shipper};
use super::{CodecError, DecodeContext, Format};

/// Fluent Bit's default field names.
const FLUENT_BIT: Shipper = Shipper {
    format: Format::FluentBit,
    message_keys: &["log", "message", "msg"],
    time_keys: &["@timestamp", "date", "time", "timestamp"],
    k8s_namespace: "namespace_name",
    k8s_labels: "labels",
    k8s_node: "host",
};

/// Decodes every Fluent Bit record in the message.
pub(super) fn decode(
    payload: &[u8],
    ctx: &DecodeContext<'_>,
    out: &mut Vec<Event>,
) -> Result<(), CodecError> {
    log_lines::decode(&FLUENT_BIT, payload, ctx, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codecs::common::test_util::{all, at, fixture, log};
    use crate::codecs::{DecodeContext, Format};
    use kaizen_model::{EventBody, Level};

    #[test]
    fn stdout_style_date_and_explicit_level() {
        let json = br#"[{"date":1767607333.25,"log":"hello","level":"warning","kubernetes":{"container_name":"api"}}]"#;
        let mut out = Vec::new();
        decode(json, &DecodeContext::default(), &mut out).unwrap();
        assert_eq!(out[0].service.as_str(), "api");
        assert_eq!(out[0].ts.to_string(), "2026-01-05T10:02:13.250Z");
        let EventBody::Log(log) = &out[0].body else {
            panic!()
        };
        assert_eq!(log.level, Level::Warn);
        let bad = br#"{"date":"never","log":"x","host":"h"}"#;
        assert!(decode(bad, &DecodeContext::default(), &mut out)
            .unwrap_err()
            .to_string()
            .contains("date"));
    }

    #[test]
    fn kubernetes_filter_sample() {
        let events = all(Format::FluentBit, fixture!("fluentbit/kubernetes.json"));
        let e = &events[0];
        assert_eq!(
            (e.service.as_str(), e.ts),
            ("fluent-bit", at("2025-01-29T08:55:11.566Z"))
        );
        let l = log(e);
        assert_eq!(l.level, Level::Info);
        assert!(l.message.contains("inotify_fs_add()"));
        assert_eq!(l.attributes.get("k8s.namespace.name"), Some("default"));
        assert_eq!(l.attributes.get("k8s.pod.name"), Some("fluent-bit-flhww"));
        assert_eq!(l.attributes.get("k8s.node.name"), Some("kind-worker2"));
        assert_eq!(l.attributes.get("logtag"), Some("F"));
    }
}
