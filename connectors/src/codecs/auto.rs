//! `auto`: tells the format of a message from the message itself, for topics that mix
//! producers or whose format is not configured. The rules (also in `docs/formats.md`):
//!
//! 1. Text that starts with `{` or `[` (after whitespace), ends with `}` or `]` and is UTF-8 is
//!    JSON; a message starting with byte `0x0A` (field 1, length-delimited: every
//!    `Export*ServiceRequest`) is OTLP/protobuf, its signal from the topic or the bytes;
//!    anything else is unrecognised.
//! 2. JSON is told by the top-level keys of its first object (the first element of an array):
//!    `resourceLogs` / `resourceMetrics` / `resourceSpans` → `otlp_json`; `detail-type` →
//!    `cloudwatch`; `event_action`, or `routing_key` with `payload` → `pagerduty`; `alerts` with
//!    one of `orgId`, `title`, `state`, `message` → `grafana`, without → `alertmanager`; `kind`
//!    with `ts` → `native`; `labels` with `value` → `prometheus_kafka_adapter`; `source_type` →
//!    `vector`; `log` → `fluentbit`; `message` with `@timestamp` or `date` → `fluentbit`, with
//!    neither → `vector`.
//!
//! Detection reads the first object's keys only (values are skipped, not built), then the
//! chosen codec parses the message: about twice the JSON work of a configured format. One
//! shortcut, since it is the commonest message: a one-line native object naming only native
//! fields, `kind` and `ts` among them, is what rule 2 calls native whatever else it says, so
//! `decode_with` reads it once as native (`native::decode_if_native`) without detecting.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{CodecError, DecodeContext, Format};

/// The format of `payload` by the rules above (never `Auto`).
///
/// ```
/// use kaizen_connectors::codecs::{detect, DecodeContext, Format};
/// let am = br#"{"version":"4","status":"firing","alerts":[]}"#;
/// assert_eq!(detect(am, &DecodeContext::default()), Ok(Format::Alertmanager));
/// ```
pub fn detect(payload: &[u8], _ctx: &DecodeContext<'_>) -> Result<Format, CodecError> {
    let first = payload.iter().position(|b| !b.is_ascii_whitespace());
    let last = payload.iter().rposition(|b| !b.is_ascii_whitespace());
    let (Some(first), Some(last)) = (first, last) else {
        return Err(CodecError::Unrecognised("empty message".into()));
    };
    let json_like = matches!(payload[first], b'{' | b'[')
        && matches!(payload[last], b'}' | b']')
        && std::str::from_utf8(payload).is_ok();
    if !json_like {
        return match payload[0] {
            0x0A => Ok(Format::OtlpProto(None)),
            b => Err(CodecError::Unrecognised(format!(
                "neither JSON nor OTLP protobuf (first byte 0x{b:02x})"
            ))),
        };
    }
    let keys =
        first_keys(payload).map_err(|e| CodecError::Unrecognised(format!("invalid JSON: {e}")))?;
    let has = |k: &str| keys.contains(k);
    let format = if has("resourceLogs") || has("resourceMetrics") || has("resourceSpans") {
        Format::OtlpJson
    } else if has("detail-type") {
        Format::CloudWatch
    } else if has("event_action") || (has("routing_key") && has("payload")) {
        Format::PagerDuty
    } else if has("alerts") {
        if ["orgId", "title", "state", "message"]
            .iter()
            .any(|k| has(k))
        {
            Format::Grafana
        } else {
            Format::Alertmanager
        }
    } else if has("kind") && has("ts") {
        Format::Native
    } else if has("labels") && has("value") {
        Format::PrometheusKafkaAdapter
    } else if has("source_type") {
        Format::Vector
    } else if has("log") || (has("message") && (has("@timestamp") || has("date"))) {
        Format::FluentBit
    } else if has("message") {
        Format::Vector
    } else {
        let shown: Vec<&str> = keys.iter().take(8).map(String::as_str).collect();
        return Err(CodecError::Unrecognised(format!(
            "JSON with top-level keys [{}] matches no format",
            shown.join(", ")
        )));
    };
    Ok(format)
}

/// The top-level keys of the first JSON object in `payload` (or of an array's first element).
fn first_keys(payload: &[u8]) -> Result<BTreeSet<String>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let keys = FirstKeys.deserialize(&mut de)?;
    Ok(keys)
}

/// Reads an object's keys (or the first array element's), skipping every value.
struct FirstKeys;

impl<'de> DeserializeSeed<'de> for FirstKeys {
    type Value = BTreeSet<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FirstKeys {
    type Value = BTreeSet<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object or an array of objects")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut keys = BTreeSet::new();
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            map.next_value::<IgnoredAny>()?;
            keys.insert(k.into_owned());
        }
        Ok(keys)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let keys = seq.next_element_seed(FirstKeys)?.unwrap_or_default();
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let ctx = DecodeContext::default();
        let d = |s: &[u8]| detect(s, &ctx);
        assert_eq!(d(br#"{"resourceSpans":[]}"#), Ok(Format::OtlpJson));
        assert_eq!(
            d(br#" [{"event_action":"trigger"}] "#),
            Ok(Format::PagerDuty)
        );
        assert_eq!(d(br#"{"alerts":[],"orgId":1}"#), Ok(Format::Grafana));
        assert_eq!(
            d(b"{\"ts\":1,\"kind\":\"log\"}\n{\"ts\":2}"),
            Ok(Format::Native)
        );
        assert_eq!(
            d(br#"{"labels":{},"value":"1","name":"up"}"#),
            Ok(Format::PrometheusKafkaAdapter)
        );
        assert_eq!(d(br#"{"log":"x","@timestamp":1}"#), Ok(Format::FluentBit));
        assert_eq!(d(br#"{"message":"x","timestamp":"t"}"#), Ok(Format::Vector));
        assert_eq!(d(br#"{"detail-type":"x"}"#), Ok(Format::CloudWatch));
        assert_eq!(d(b"\x0a\x02\x0a\x00"), Ok(Format::OtlpProto(None)));
        for bad in [
            &b""[..],
            b"  ",
            b"hello",
            b"{\"a\":1}",
            b"{\"a\":",
            b"[]",
            b"\xff{}",
        ] {
            assert!(
                matches!(d(bad), Err(CodecError::Unrecognised(_))),
                "{bad:?}"
            );
        }
    }
}

#[cfg(test)]
mod native_shortcut {
    use super::super::decode_with;
    use super::*;

    /// What `auto` made of a message before the shortcut: detect, then decode as detected.
    fn detected_then_decoded(payload: &[u8]) -> Result<Vec<kaizen_model::Event>, String> {
        let ctx = DecodeContext::default();
        let format = detect(payload, &ctx).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        decode_with(format, payload, &ctx, &mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn auto_reads_a_native_line_as_detection_then_decoding_would() {
        let payloads: [&[u8]; 12] = [
            br#"{"ts":1767607333,"kind":"log","service":"a","message":"m"}"#,
            b"{\"ts\":1,\"kind\":\"metric\",\"service\":\"a\",\"name\":\"n\",\"value\":1}\n",
            b"{\"ts\":1,\"kind\":\"metric\",\"service\":\"a\",\"name\":\"n\",\"value\":1}\r\n",
            b"  {\"ts\":1,\"kind\":\"log\",\"service\":\"a\",\"message\":\"m\"}  ",
            // Not native by the shortcut's reading: left to detection.
            br#"{"ts":1,"kind":"log","service":"a","message":"m","extra":{"x":[1]}}"#,
            br#"{"kind":"log","service":"a","message":"m"}"#,
            br#"{"ts":1,"kind":"log","service":"a","alerts":[]}"#,
            b"{\"ts\":1,\"kind\":\"log\",\"service\":\"a\",\"message\":\"m\"}\n{\"ts\":2}",
            // Native by its keys, rejected by the codec: the same error.
            br#"{"ts":1,"kind":"nope","service":"a"}"#,
            br#"{"ts":1,"kind":"metric","service":"a","name":"n"}"#,
            br#"{"ts":null,"kind":"log","service":"a","message":"m"}"#,
            b"\n{\"ts\":1,\"kind\":\"nope\"}",
        ];
        let ctx = DecodeContext::default();
        for payload in payloads {
            let mut out = Vec::new();
            let auto = decode_with(Format::Auto, payload, &ctx, &mut out)
                .map(|_| out)
                .map_err(|e| e.to_string());
            assert_eq!(
                auto,
                detected_then_decoded(payload),
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
    }
}
