//! Vector log events encoded as JSON (`encoding.codec = "json"` on its `kafka` or `http` sink):
//! the line in `message`, the time in `timestamp`, and with the `kubernetes_logs` source the pod
//! metadata under `kubernetes` (`pod_namespace`, `pod_labels`, `pod_node_name`, …).

use kaizen_model::Event;

use super::log_lines::{self, Shipper};
use super::{CodecError, DecodeContext, Format};

/// Vector's default field names (its log schema: `message_key`, `timestamp_key`).
const VECTOR: Shipper = Shipper {
    format: Format::Vector,
    message_keys: &["message", "log", "msg"],
    time_keys: &["timestamp", "@timestamp", "time", "date"],
    k8s_namespace: "pod_namespace",
    k8s_labels: "pod_labels",
    k8s_node: "pod_node_name",
};

/// Decodes every Vector event in the message.
pub(super) fn decode(
    payload: &[u8],
    ctx: &DecodeContext<'_>,
    out: &mut Vec<Event>,
) -> Result<(), CodecError> {
    log_lines::decode(&VECTOR, payload, ctx, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codecs::common::test_util::{all, at, fixture, log};
    use crate::codecs::{DecodeContext, Format};
    use kaizen_model::{EventBody, Level};

    #[test]
    fn plain_file_source_uses_the_host_and_the_text_level() {
        let json = br#"{"file":"/var/log/app.log","host":"web-1","message":"2026-01-05 ERROR db timeout","source_type":"file","timestamp":"2026-01-05T10:00:00.123456Z"}"#;
        let mut out = Vec::new();
        decode(json, &DecodeContext::default(), &mut out).unwrap();
        assert_eq!(out[0].service.as_str(), "web-1");
        let EventBody::Log(log) = &out[0].body else {
            panic!()
        };
        assert_eq!(log.level, Level::Error);
        assert_eq!(log.attributes.get("file"), Some("/var/log/app.log"));
        assert_eq!(out[0].ts.to_string(), "2026-01-05T10:00:00.123Z");
        let err = decode(
            br#"{"timestamp":1,"host":"h"}"#,
            &DecodeContext::default(),
            &mut out,
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            "vector: missing message or log or msg"
        );
        let err = decode(br#"{"message":"m"}"#, &DecodeContext::default(), &mut out);
        assert!(err
            .unwrap_err()
            .to_string()
            .starts_with("vector: missing timestamp"));
    }

    #[test]
    fn kubernetes_logs_sample() {
        let events = all(Format::Vector, fixture!("vector/kubernetes_logs.json"));
        let e = &events[0];
        assert_eq!(
            (e.service.as_str(), e.ts),
            ("storage-provisioner", at("2020-10-15T11:01:46.499Z"))
        );
        let l = log(e);
        assert_eq!(l.level, Level::Fatal, "klog F prefix");
        assert!(l.message.starts_with("F1015 11:01:46.499073"));
        assert_eq!(l.attributes.get("k8s.namespace.name"), Some("kube-system"));
        assert_eq!(l.attributes.get("k8s.node.name"), Some("minikube"));
        assert_eq!(l.attributes.get("stream"), Some("stderr"));
        assert_eq!(l.attributes.get("source_type"), Some("kubernetes_logs"));
    }
}
