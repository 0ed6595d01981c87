//! Helpers every JSON codec shares: lenient timestamps, scalar maps, the service-from-labels
//! rule, log level sniffing, and reading a message that holds one object, an array of them, or
//! several concatenated / newline-delimited ones.

use std::collections::BTreeMap;
use std::fmt;

use kaizen_model::{Alert, AlertStatus, Attributes, Event, EventBody, Labels, Level, Symbol};
use kaizen_model::{Timestamp, TimestampError};
use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{CodecError, Format};

/// The labels that name an alert's service, in the order they are tried. `service` and
/// `service_name` are explicit; `app` / `app_kubernetes_io_name` / `application` name the
/// workload; `job` is Prometheus' scrape job (often the service, sometimes a pool name);
/// `container` and `namespace` are coarser last resorts.
pub(super) const ALERT_SERVICE_LABELS: [&str; 8] = [
    "service",
    "service_name",
    "app",
    "app_kubernetes_io_name",
    "application",
    "job",
    "container",
    "namespace",
];

/// The service of an alert that names none: it is kept (alerts are too valuable to dead-letter)
/// under this name rather than rejected.
pub(super) const UNKNOWN_SERVICE: &str = "unknown";

/// A `serde_json` error as a [`CodecError`] of `format`.
pub(super) fn json_error(format: Format) -> impl Fn(serde_json::Error) -> CodecError {
    move |e| CodecError::Json {
        format,
        reason: e.to_string(),
    }
}

/// A required field that is absent.
pub(super) fn missing(format: Format, field: impl Into<String>) -> CodecError {
    CodecError::Missing {
        format,
        field: field.into(),
    }
}

/// A field with a value outside its domain.
pub(super) fn invalid(
    format: Format,
    field: impl Into<String>,
    reason: impl fmt::Display,
) -> CodecError {
    CodecError::Invalid {
        format,
        field: field.into(),
        reason: reason.to_string(),
    }
}

/// Parses the timestamps senders actually write: RFC 3339, plus `+0000`-style offsets
/// (PagerDuty, CloudWatch), no offset at all (read as UTC), and unix numbers as text.
pub(super) fn parse_time(s: &str) -> Result<Timestamp, TimestampError> {
    let s = s.trim();
    match Timestamp::parse(s) {
        Ok(t) => Ok(t),
        Err(e) => {
            let b = s.as_bytes();
            let n = b.len();
            // `…+0000` → `…+00:00`
            if n > 5 && matches!(b[n - 5], b'+' | b'-') && b[n - 4..].iter().all(u8::is_ascii_digit)
            {
                let fixed = format!("{}:{}", &s[..n - 2], &s[n - 2..]);
                return Timestamp::parse(&fixed).map_err(|_| e);
            }
            // no zone → UTC
            if n >= 19 && b[n - 1].is_ascii_digit() && s.get(..19).is_some_and(|p| p.contains(':'))
            {
                return Timestamp::parse(&format!("{s}Z")).map_err(|_| e);
            }
            Err(e)
        }
    }
}

/// A JSON time value: an RFC 3339-ish string, a unix number, or a unix number as text.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum TimeValue {
    /// A readable instant.
    At(Timestamp),
    /// Present but unreadable: the reason, for the error message.
    Bad(String),
}

impl TimeValue {
    /// The instant, or an `Invalid` error naming `field`.
    pub(super) fn get(&self, format: Format, field: &str) -> Result<Timestamp, CodecError> {
        match self {
            TimeValue::At(t) => Ok(*t),
            TimeValue::Bad(reason) => Err(invalid(format, field, reason)),
        }
    }
}

impl<'de> Deserialize<'de> for TimeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = TimeValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a timestamp (RFC 3339 text or a unix number)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TimeValue, E> {
                Ok(match parse_time(v) {
                    Ok(t) => TimeValue::At(t),
                    Err(e) => TimeValue::Bad(e.to_string()),
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<TimeValue, E> {
                Ok(TimeValue::At(Timestamp::from_unix_integer(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<TimeValue, E> {
                Ok(match u64::try_from(v) {
                    Ok(u) => TimeValue::At(Timestamp::from_unix_integer(u)),
                    Err(_) => TimeValue::Bad(format!("negative unix time {v}")),
                })
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<TimeValue, E> {
                Ok(match Timestamp::from_unix_number(v) {
                    Ok(t) => TimeValue::At(t),
                    Err(e) => TimeValue::Bad(e.to_string()),
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Renders a JSON value as label / attribute text: strings as they are, numbers and booleans
/// as their JSON text, `null` as empty, arrays and objects as compact JSON.
pub(super) fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// An object of JSON values read as `key → text` pairs (see [`value_text`]); `null` or an
/// absent object is empty.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct TextMap(pub(super) BTreeMap<String, String>);

impl<'de> Deserialize<'de> for TextMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: Option<BTreeMap<String, Value>> = Option::deserialize(d)?;
        Ok(TextMap(
            raw.unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, value_text(&v)))
                .collect(),
        ))
    }
}

impl TextMap {
    /// The text under `key`, if present and not empty.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
    /// As interned labels, leaving out keys that start with `__` (internal to the sender).
    pub(super) fn labels(&self) -> Labels {
        Labels::from_pairs(
            self.0
                .iter()
                .filter(|(k, _)| !k.starts_with("__"))
                .map(|(k, v)| (Symbol::new(k), Symbol::new(v))),
        )
    }
    /// As attribute pairs, leaving out keys that start with `__`.
    pub(super) fn attribute_pairs(&self) -> Vec<(Symbol, String)> {
        self.0
            .iter()
            .filter(|(k, _)| !k.starts_with("__"))
            .map(|(k, v)| (Symbol::new(k), v.clone()))
            .collect()
    }
}

/// The first of [`ALERT_SERVICE_LABELS`] present in `labels`.
pub(super) fn service_from_labels(labels: &TextMap) -> Option<&str> {
    ALERT_SERVICE_LABELS.iter().find_map(|k| labels.get(k))
}

/// Everything an alert event needs; `fingerprint: None` derives one like the native format.
pub(super) struct AlertParts {
    pub(super) ts: Timestamp,
    pub(super) service: String,
    pub(super) name: String,
    pub(super) status: AlertStatus,
    pub(super) severity: Option<String>,
    pub(super) fingerprint: Option<String>,
    pub(super) labels: Labels,
    pub(super) annotations: Attributes,
}

impl AlertParts {
    /// The event; severity defaults to `labels.severity`, then `warning` (as in native JSON).
    pub(super) fn into_event(self) -> Event {
        let service = Symbol::new(&self.service);
        let name = Symbol::new(&self.name);
        let severity = self
            .severity
            .filter(|s| !s.is_empty())
            .map(|s| Symbol::new(&s))
            .or_else(|| self.labels.get("severity").cloned())
            .unwrap_or_else(|| Symbol::new("warning"));
        let fingerprint = self
            .fingerprint
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| Alert::derive_fingerprint(&self.name, &self.service, &self.labels));
        Event {
            ts: self.ts,
            service,
            body: EventBody::Alert(Alert {
                name,
                status: self.status,
                severity,
                fingerprint,
                labels: self.labels,
                annotations: self.annotations,
            }),
        }
    }
}

/// A level written at the start of a plain-text line: klog's `E0102 …`, or a word such as
/// `ERROR`, `[warn]`, `level=error` among the first few tokens. `None` when nothing says.
pub(super) fn sniff_level(message: &str) -> Option<Level> {
    let b = message.as_bytes();
    if b.len() > 5
        && matches!(b[0], b'I' | b'W' | b'E' | b'F')
        && b[1..5].iter().all(u8::is_ascii_digit)
    {
        return Some(match b[0] {
            b'I' => Level::Info,
            b'W' => Level::Warn,
            b'E' => Level::Error,
            _ => Level::Fatal,
        });
    }
    let head = message.get(..message.len().min(80)).unwrap_or(message);
    for token in head.split_whitespace().take(6) {
        let token = token.strip_prefix("level=").unwrap_or(token);
        let word = token.trim_matches(|c: char| !c.is_ascii_alphabetic());
        let level = match word {
            "TRACE" | "trace" => Level::Trace,
            "DEBUG" | "debug" => Level::Debug,
            "INFO" | "info" => Level::Info,
            "WARN" | "WARNING" | "warn" | "warning" => Level::Warn,
            "ERROR" | "ERR" | "error" => Level::Error,
            "FATAL" | "CRITICAL" | "PANIC" | "fatal" | "critical" | "panic" => Level::Fatal,
            _ => continue,
        };
        return Some(level);
    }
    None
}

/// Reads a message holding one JSON object, a JSON array of them, or several concatenated or
/// newline-delimited ones, calling `each(index, item)` for every item in order.
pub(super) fn for_each_document<T, F>(
    format: Format,
    payload: &[u8],
    mut each: F,
) -> Result<(), CodecError>
where
    T: DeserializeOwned,
    F: FnMut(usize, T) -> Result<(), CodecError>,
{
    let first = payload.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let items: Vec<T> = serde_json::from_slice(payload).map_err(json_error(format))?;
        for (i, item) in items.into_iter().enumerate() {
            each(i, item)?;
        }
        return Ok(());
    }
    let mut n = 0;
    for item in serde_json::Deserializer::from_slice(payload).into_iter::<T>() {
        each(n, item.map_err(json_error(format))?)?;
        n += 1;
    }
    if n == 0 {
        return Err(invalid(format, "payload", "empty message"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_times() {
        let t = |s: &str| parse_time(s).map(|t| t.to_string());
        assert_eq!(
            t("2015-07-17T08:42:58.315+0000").as_deref(),
            Ok("2015-07-17T08:42:58.315Z")
        );
        assert_eq!(
            t("2019-10-02T17:04:40.989+0200").as_deref(),
            Ok("2019-10-02T15:04:40.989Z")
        );
        assert_eq!(
            t("2015-07-17T08:42:58.315").as_deref(),
            Ok("2015-07-17T08:42:58.315Z")
        );
        assert_eq!(t("1767607333").as_deref(), Ok("2026-01-05T10:02:13.000Z"));
        assert!(parse_time("0001-01-01T00:00:00Z").is_err());
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("").is_err());
        assert!(parse_time("é+0000").is_err());
    }

    #[test]
    fn levels_from_text() {
        assert_eq!(
            sniff_level("F1015 11:01:46.499073 1 main.go:39] boom"),
            Some(Level::Fatal)
        );
        assert_eq!(
            sniff_level("[2025/01/29 08:55:11] [ warn] disk"),
            Some(Level::Warn)
        );
        assert_eq!(sniff_level("ts=1 level=error msg=x"), Some(Level::Error));
        assert_eq!(sniff_level("GET /index.html 200"), None);
        assert_eq!(sniff_level("É"), None);
    }
}

/// What the codecs' unit tests share: fixtures decoded through the public entry point.
#[cfg(test)]
pub(super) mod test_util {
    use kaizen_model::{Alert, Event, EventBody, Log, Metric, Timestamp};

    use crate::codecs::{decode, Format};

    /// The bytes of `tests/fixtures/codecs/<path>`.
    macro_rules! fixture {
        ($path:literal) => {
            include_bytes!(concat!("../../tests/fixtures/codecs/", $path)).as_slice()
        };
    }
    pub(crate) use fixture;

    /// Every event of `payload`, panicking on error.
    pub(crate) fn all(format: Format, payload: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        if let Err(e) = decode(format, payload, &mut out) {
            panic!("{format}: {e}");
        }
        out
    }

    pub(crate) fn at(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    pub(crate) fn alert(e: &Event) -> &Alert {
        match &e.body {
            EventBody::Alert(a) => a,
            other => panic!("not an alert: {other:?}"),
        }
    }

    pub(crate) fn log(e: &Event) -> &Log {
        match &e.body {
            EventBody::Log(l) => l,
            other => panic!("not a log: {other:?}"),
        }
    }

    pub(crate) fn metric<'a>(events: &'a [Event], name: &str) -> &'a Metric {
        events
            .iter()
            .find_map(|e| match &e.body {
                EventBody::Metric(m) if m.name.as_str() == name => Some(m),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no metric {name}"))
    }
}
