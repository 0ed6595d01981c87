//! OTLP/protobuf, as the OpenTelemetry Collector's Kafka exporter writes it with
//! `encoding: otlp_proto` (its default): one message is one `Export*ServiceRequest`.
//!
//! The bytes do not say which signal they carry, so the signal is, in order: the format name
//! (`otlp_proto_logs`, `otlp_proto_metrics`, `otlp_proto_traces`), the topic name (the
//! exporter's defaults `otlp_logs`, `otlp_metrics`, `otlp_spans`, or any name containing
//! `log`, `metric`, `span` / `trace`), and last a look at the first record's field numbers and
//! wire types, which differ between a `LogRecord`, a `Metric` and a `Span` (see [`sniff`]).

use kaizen_model::Event;
use prost::Message;

use super::otlp;
use super::otlp_schema::{LogsRequest, MetricsRequest, TracesRequest};
use super::{CodecError, DecodeContext, Format, OtlpSignal};

/// Decodes one `Export*ServiceRequest`.
pub(super) fn decode(
    configured: Option<OtlpSignal>,
    payload: &[u8],
    ctx: &DecodeContext<'_>,
    out: &mut Vec<Event>,
) -> Result<(), CodecError> {
    let format = Format::OtlpProto(configured);
    let signal = configured
        .or_else(|| ctx.topic.and_then(OtlpSignal::from_topic))
        .or_else(|| sniff(payload))
        .ok_or(CodecError::UnknownSignal)?;
    let bad = |e: prost::DecodeError| CodecError::Protobuf {
        format,
        signal: signal.as_str(),
        reason: e.to_string(),
    };
    match signal {
        OtlpSignal::Logs => {
            otlp::logs(format, LogsRequest::decode(payload).map_err(bad)?, ctx, out)
        }
        OtlpSignal::Metrics => otlp::metrics(
            format,
            MetricsRequest::decode(payload).map_err(bad)?,
            ctx,
            out,
        ),
        OtlpSignal::Traces => otlp::traces(
            format,
            TracesRequest::decode(payload).map_err(bad)?,
            ctx,
            out,
        ),
    }
}

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// One field of a message: number, wire type, and for `LEN` fields the bytes.
struct Field<'a> {
    number: u64,
    wire: u8,
    bytes: &'a [u8],
}

fn varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The fields of one message, or `None` at the first malformed byte.
fn fields(buf: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let key = varint(buf, &mut at)?;
        let wire = (key & 7) as u8;
        let start = at;
        let bytes = match wire {
            VARINT => {
                varint(buf, &mut at)?;
                &buf[start..at]
            }
            FIXED64 | FIXED32 => {
                at = at.checked_add(if wire == FIXED64 { 8 } else { 4 })?;
                buf.get(start..at)?
            }
            LEN => {
                let n = usize::try_from(varint(buf, &mut at)?).ok()?;
                let s = at;
                at = at.checked_add(n)?;
                buf.get(s..at)?
            }
            _ => return None,
        };
        out.push(Field {
            number: key >> 3,
            wire,
            bytes,
        });
    }
    Some(out)
}

/// Guesses the signal from the first records of `request → resource_* → scope_* → record`:
/// a `Span` has a varint kind (6) or fixed64 start/end times (7, 8); a `LogRecord` has fixed64
/// times in fields 1 / 11 or a varint severity (2); a `Metric` has a name (1) and a data
/// message (5, 7, 9, 10, 11). `None` when it cannot tell (e.g. an empty request).
pub(super) fn sniff(payload: &[u8]) -> Option<OtlpSignal> {
    for resource in fields(payload)?
        .iter()
        .filter(|f| f.number == 1 && f.wire == LEN)
    {
        for scope in fields(resource.bytes)?
            .iter()
            .filter(|f| f.number == 2 && f.wire == LEN)
        {
            for record in fields(scope.bytes)?
                .iter()
                .filter(|f| f.number == 2 && f.wire == LEN)
            {
                if let Some(signal) = classify(&fields(record.bytes)?) {
                    return Some(signal);
                }
            }
        }
    }
    None
}

fn classify(record: &[Field<'_>]) -> Option<OtlpSignal> {
    let has = |n: u64, w: u8| record.iter().any(|f| f.number == n && f.wire == w);
    if has(6, VARINT) || has(7, FIXED64) || has(8, FIXED64) || has(16, FIXED32) {
        Some(OtlpSignal::Traces)
    } else if has(1, FIXED64) || has(11, FIXED64) || has(2, VARINT) || has(8, FIXED32) {
        Some(OtlpSignal::Logs)
    } else if has(1, LEN) && [5, 7, 9, 10, 11].iter().any(|n| has(*n, LEN)) {
        Some(OtlpSignal::Metrics)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        for bytes in [
            &b"\x0a\xff\xff\xff\xff\x0f"[..],
            b"\x0b",
            b"\xff\xff\xff",
            b"\x0a\x05ab",
        ] {
            let r = decode(
                Some(OtlpSignal::Logs),
                bytes,
                &DecodeContext::default(),
                &mut out,
            );
            assert!(matches!(r, Err(CodecError::Protobuf { .. })), "{r:?}");
            assert_eq!(sniff(bytes), None);
        }
        let r = decode(None, b"\x0a\x00", &DecodeContext::default(), &mut out);
        assert_eq!(r, Err(CodecError::UnknownSignal));
        assert!(out.is_empty());
    }
}
