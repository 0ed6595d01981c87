//! OTLP/JSON, as the OpenTelemetry Collector's Kafka exporter writes it with
//! `encoding: otlp_json`: one `Export*ServiceRequest` per message, in the protobuf JSON mapping
//! with OTLP's rules (camelCase keys, 64-bit integers as strings, enums as integers, trace and
//! span ids as hex). The signal is the top-level key: `resourceLogs`, `resourceMetrics` or
//! `resourceSpans`. Several requests in one message (one per line, as the Collector's file
//! exporter writes them) are read in order.
//!
//! The readers below are lenient where producers differ: 64-bit integers as strings or numbers,
//! enums as integers or their names, `NaN` / `Infinity` as strings, ids in either hex case.

use std::fmt;

use kaizen_model::Event;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use super::common::{for_each_document, missing};
use super::otlp;
use super::otlp_schema::{
    LogsRequest, MetricsRequest, ResourceLogs, ResourceMetrics, ResourceSpans, TracesRequest,
};
use super::{CodecError, DecodeContext, Format};

/// Any of the three requests: the key present says which.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnyRequest {
    resource_logs: Option<Vec<ResourceLogs>>,
    resource_metrics: Option<Vec<ResourceMetrics>>,
    resource_spans: Option<Vec<ResourceSpans>>,
}

/// Decodes every request in the message.
pub(super) fn decode(
    payload: &[u8],
    ctx: &DecodeContext<'_>,
    out: &mut Vec<Event>,
) -> Result<(), CodecError> {
    let format = Format::OtlpJson;
    for_each_document(format, payload, |_, req: AnyRequest| {
        let mut any = false;
        if let Some(resource_logs) = req.resource_logs {
            otlp::logs(format, LogsRequest { resource_logs }, ctx, out)?;
            any = true;
        }
        if let Some(resource_metrics) = req.resource_metrics {
            otlp::metrics(format, MetricsRequest { resource_metrics }, ctx, out)?;
            any = true;
        }
        if let Some(resource_spans) = req.resource_spans {
            otlp::traces(format, TracesRequest { resource_spans }, ctx, out)?;
            any = true;
        }
        if any {
            Ok(())
        } else {
            Err(missing(
                format,
                "resourceLogs, resourceMetrics or resourceSpans",
            ))
        }
    })
}

// ---- lenient JSON scalars (the OTLP/JSON rules, and what producers write anyway) ----

/// A JSON number or a string holding one (`"1544712660300000000"`, `"NaN"`, `"Infinity"`).
enum Num {
    Int(i128),
    Float(f64),
}

struct NumVisitor;

impl Visitor<'_> for NumVisitor {
    type Value = Num;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number or a string holding one")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
        Ok(Num::Int(i128::from(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
        Ok(Num::Int(i128::from(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
        Ok(Num::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Num, E> {
        let t = v.trim();
        if let Ok(i) = t.parse::<i128>() {
            return Ok(Num::Int(i));
        }
        match t {
            "NaN" => Ok(Num::Float(f64::NAN)),
            "Infinity" | "+Infinity" | "inf" | "+Inf" => Ok(Num::Float(f64::INFINITY)),
            "-Infinity" | "-inf" | "-Inf" => Ok(Num::Float(f64::NEG_INFINITY)),
            _ => t
                .parse::<f64>()
                .map(Num::Float)
                .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
}

fn num<'de, D: Deserializer<'de>>(d: D) -> Result<Num, D::Error> {
    d.deserialize_any(NumVisitor)
}

fn int_in<T: TryFrom<i128>, E: de::Error>(n: Num) -> Result<T, E> {
    let i = match n {
        Num::Int(i) => i,
        Num::Float(f) if f.fract() == 0.0 && f.abs() < 1e38 => f as i128,
        Num::Float(f) => return Err(E::custom(format!("{f} is not an integer"))),
    };
    T::try_from(i).map_err(|_| E::custom(format!("{i} is out of range")))
}

pub(super) fn u64_any<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    int_in(num(d)?)
}

pub(super) fn f64_any<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(match num(d)? {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
    })
}

pub(super) fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    int_in(num(d)?).map(Some)
}

pub(super) fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    f64_any(d).map(Some)
}

macro_rules! seq_of {
    ($name:ident, $ty:ty, $conv:expr) => {
        pub(super) fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<$ty>, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Vec<$ty>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an array of numbers")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<$ty>, A::Error> {
                    let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(8).min(4096));
                    while let Some(n) = seq.next_element::<NumSeed>()? {
                        let conv: fn(Num) -> Result<$ty, A::Error> = $conv;
                        out.push(conv(n.0)?);
                    }
                    Ok(out)
                }
            }
            d.deserialize_seq(V)
        }
    };
}

struct NumSeed(Num);

impl<'de> Deserialize<'de> for NumSeed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        num(d).map(NumSeed)
    }
}

seq_of!(vec_u64, u64, |n| int_in(n));
seq_of!(vec_f64, f64, |n| Ok(match n {
    Num::Int(i) => i as f64,
    Num::Float(f) => f,
}));

/// An enum field: its number, or its name looked up in `names` (`SEVERITY_NUMBER_INFO`…).
fn enum_field<'de, D: Deserializer<'de>>(d: D, names: &[(&str, i32)]) -> Result<i32, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    match &v {
        serde_json::Value::Number(n) => n
            .as_i64()
            .and_then(|i| i32::try_from(i).ok())
            .ok_or_else(|| de::Error::custom(format!("enum value {n} out of range"))),
        serde_json::Value::String(s) => names
            .iter()
            .find(|(name, _)| name == s)
            .map(|(_, n)| *n)
            .or_else(|| s.parse().ok())
            .ok_or_else(|| de::Error::custom(format!("unknown enum value {s:?}"))),
        serde_json::Value::Null => Ok(0),
        other => Err(de::Error::custom(format!(
            "enum value {other} is not a number"
        ))),
    }
}

pub(super) fn severity_number<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    const NAMES: [(&str, i32); 7] = [
        ("SEVERITY_NUMBER_UNSPECIFIED", 0),
        ("SEVERITY_NUMBER_TRACE", 1),
        ("SEVERITY_NUMBER_DEBUG", 5),
        ("SEVERITY_NUMBER_INFO", 9),
        ("SEVERITY_NUMBER_WARN", 13),
        ("SEVERITY_NUMBER_ERROR", 17),
        ("SEVERITY_NUMBER_FATAL", 21),
    ];
    enum_field(d, &NAMES)
}

pub(super) fn span_kind<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    const NAMES: [(&str, i32); 6] = [
        ("SPAN_KIND_UNSPECIFIED", 0),
        ("SPAN_KIND_INTERNAL", 1),
        ("SPAN_KIND_SERVER", 2),
        ("SPAN_KIND_CLIENT", 3),
        ("SPAN_KIND_PRODUCER", 4),
        ("SPAN_KIND_CONSUMER", 5),
    ];
    enum_field(d, &NAMES)
}

pub(super) fn status_code<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    const NAMES: [(&str, i32); 3] = [
        ("STATUS_CODE_UNSET", 0),
        ("STATUS_CODE_OK", 1),
        ("STATUS_CODE_ERROR", 2),
    ];
    enum_field(d, &NAMES)
}

pub(super) fn temporality<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    const NAMES: [(&str, i32); 3] = [
        ("AGGREGATION_TEMPORALITY_UNSPECIFIED", 0),
        ("AGGREGATION_TEMPORALITY_DELTA", 1),
        ("AGGREGATION_TEMPORALITY_CUMULATIVE", 2),
    ];
    enum_field(d, &NAMES)
}

/// Trace and span ids: hex in OTLP/JSON (either case); empty for none.
pub(super) fn hex_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s: Option<std::borrow::Cow<'de, str>> = Option::deserialize(d)?;
    let s = s.unwrap_or_default();
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return Err(de::Error::custom(format!("odd-length hex id {s:?}")));
    }
    b.chunks(2)
        .map(|p| match (digit(p[0]), digit(p[1])) {
            (Some(hi), Some(lo)) => Ok((hi << 4) | lo),
            _ => Err(de::Error::custom(format!("invalid hex id {s:?}"))),
        })
        .collect()
}

/// `bytesValue`: base64 (standard or URL-safe alphabet, padding optional).
pub(super) fn opt_base64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    let s: String = String::deserialize(d)?;
    let sextet = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = sextet(c).ok_or_else(|| de::Error::custom("invalid base64 in bytesValue"))?;
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_model::{EventBody, Level};

    #[test]
    fn collector_quirks() {
        // enums by name, ints as numbers, upper-case hex, empty array value, unknown keys
        let json = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},
            "scopeLogs":[{"logRecords":[{"timeUnixNano":1767607333000000000,"severityNumber":"SEVERITY_NUMBER_WARN",
            "traceId":"5B8EFFF798038103D269B633813FC60C","body":{"arrayValue":{}},"attributes":[{"key":"n","value":{"intValue":"-7"}}],
            "somethingNew":{"x":1}}]}]}]}"#;
        let mut out = Vec::new();
        decode(json, &DecodeContext::default(), &mut out).unwrap();
        let EventBody::Log(log) = &out[0].body else {
            panic!("{out:?}")
        };
        assert_eq!(log.level, Level::Warn);
        assert_eq!(log.message, "[]");
        assert_eq!(log.attributes.get("n"), Some("-7"));
        assert_eq!(
            log.attributes.get("trace_id"),
            Some("5b8efff798038103d269b633813fc60c")
        );
        assert_eq!(out[0].ts.to_string(), "2026-01-05T10:02:13.000Z");
    }

    #[test]
    fn wrong_shapes_are_errors() {
        let mut out = Vec::new();
        let ctx = DecodeContext::default();
        for bad in [
            &br#"{"foo":1}"#[..],
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}"#,
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"-1"}]}]}]}"#,
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{}]}]}]}"#,
            br#"{"resourceMetrics":"#,
            b"",
        ] {
            assert!(
                decode(bad, &ctx, &mut out).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
