//! Event time: milliseconds since the Unix epoch, parsed from RFC 3339 or unix s/ms/µs/ns.

use std::cell::Cell;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An event-time instant with millisecond precision (milliseconds since 1970-01-01T00:00:00Z).
///
/// Millisecond precision is what alerting and metrics carry; finer input is truncated.
/// Serialises as RFC 3339 in UTC with milliseconds, which sorts lexically.
///
/// ```
/// use kaizen_model::Timestamp;
/// let t = Timestamp::parse("2026-01-05T10:00:00.250+01:00").unwrap();
/// assert_eq!(t.to_string(), "2026-01-05T09:00:00.250Z");
/// assert_eq!(Timestamp::from_unix_number(1767603600.25).unwrap(), Timestamp::parse("2026-01-05T09:00:00.250Z").unwrap());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

/// Why a timestamp could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// The text is not RFC 3339.
    #[error("invalid RFC 3339 timestamp {0:?} (expected e.g. 2026-01-05T10:00:00.000Z)")]
    Rfc3339(String),
    /// The number is negative, not finite or out of range.
    #[error("invalid unix timestamp {0}")]
    Unix(String),
}

impl Timestamp {
    /// The earliest representable instant.
    pub const MIN: Timestamp = Timestamp(0);
    /// The latest representable instant.
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    /// From milliseconds since the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating.
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(d.as_millis() as u64))
    }

    /// `self - d`, saturating at the epoch.
    pub fn minus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_sub(d.as_millis() as u64))
    }

    /// The duration from `earlier` to `self` (zero if `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// Time of day in UTC as `HH:MM:SS`, for messages people read.
    pub fn clock(self) -> String {
        let secs = self.0 / 1000;
        format!(
            "{:02}:{:02}:{:02}",
            secs / 3600 % 24,
            secs / 60 % 60,
            secs % 60
        )
    }

    /// Interprets a unix timestamp whose unit is guessed from its magnitude: seconds
    /// (may be fractional), milliseconds, microseconds or nanoseconds. Any real instant
    /// between 1973 and 5138 is unambiguous under this rule.
    pub fn from_unix_number(v: f64) -> Result<Self, TimestampError> {
        if !v.is_finite() || v < 0.0 {
            return Err(TimestampError::Unix(v.to_string()));
        }
        let ms = if v < 1e11 {
            v * 1e3
        } else if v < 1e14 {
            v
        } else if v < 1e17 {
            v / 1e3
        } else {
            v / 1e6
        };
        Ok(Timestamp(ms as u64))
    }

    /// Integer variant of [`Timestamp::from_unix_number`], exact for nanoseconds.
    pub fn from_unix_integer(v: u64) -> Self {
        Timestamp(if v < 100_000_000_000 {
            v.saturating_mul(1000)
        } else if v < 100_000_000_000_000 {
            v
        } else if v < 100_000_000_000_000_000 {
            v / 1_000
        } else {
            v / 1_000_000
        })
    }

    /// Parses RFC 3339 (`2026-01-05T10:00:00Z`, fractional seconds and `±hh:mm` offsets
    /// allowed, `t`/`z`/space accepted) or a unix number given as text.
    pub fn parse(s: &str) -> Result<Self, TimestampError> {
        let b = s.as_bytes();
        if !b.is_empty() && b.iter().all(|c| c.is_ascii_digit() || *c == b'.') {
            if let Ok(n) = s.parse::<u64>() {
                return Ok(Self::from_unix_integer(n));
            }
            return s
                .parse::<f64>()
                .map_err(|_| TimestampError::Unix(s.to_owned()))
                .and_then(Self::from_unix_number);
        }
        parse_rfc3339(b).ok_or_else(|| TimestampError::Rfc3339(s.to_owned()))
    }
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u64> {
    let slice = b.get(at..at + n)?;
    slice.iter().try_fold(0u64, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
    })
}

thread_local! {
    /// The last valid `YYYY-MM-DD` read on this thread and its day number: a stream's
    /// timestamps share their date for hours, and checking and counting the date was about
    /// half of reading one.
    static LAST_DATE: Cell<([u8; 10], i64)> = const { Cell::new(([0; 10], 0)) };
}

/// The day number (since 1970-01-01) of a valid `YYYY-MM-DD` date.
fn date_days(date: [u8; 10]) -> Option<i64> {
    if let Ok((last, days)) = LAST_DATE.try_with(Cell::get) {
        if last == date {
            return Some(days);
        }
    }
    let year = digits(&date, 0, 4)?;
    let month = digits(&date, 5, 2)?;
    let day = digits(&date, 8, 2)?;
    if date[4] != b'-' || date[7] != b'-' {
        return None;
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year as i64, month as i64, day as i64);
    let _ = LAST_DATE.try_with(|c| c.set((date, days)));
    Some(days)
}

fn parse_rfc3339(b: &[u8]) -> Option<Timestamp> {
    let days = date_days(b.get(..10)?.try_into().ok()?)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0u64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 3 {
                millis = millis * 10 + u64::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..3 {
            millis *= 10;
        }
    }
    let offset_secs: i64 = match b.get(i)? {
        b'Z' | b'z' => {
            i += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            let oh = digits(b, i + 1, 2)? as i64;
            let om = digits(b, i + 4, 2)? as i64;
            if b.get(i + 3) != Some(&b':') || oh > 23 || om > 59 {
                return None;
            }
            i += 6;
            let off = oh * 3600 + om * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    if i != b.len() {
        return None;
    }
    let secs = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - offset_secs;
    if secs < 0 {
        return None;
    }
    Some(Timestamp(secs as u64 * 1000 + millis))
}

fn is_leap(y: u64) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days: exact for the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Timestamp {
    /// RFC 3339 in UTC with milliseconds (`2026-01-05T10:00:00.000Z`), written without going
    /// through `fmt` machinery: encoding timestamps is on every producer's hot path.
    pub fn rfc3339_bytes(self) -> [u8; 24] {
        let secs = (self.0 / 1000) as i64;
        let ms = (self.0 % 1000) as u32;
        let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400) as u32;
        let mut b = *b"0000-00-00T00:00:00.000Z";
        let y = y.clamp(0, 9999) as u32;
        let put = |b: &mut [u8; 24], at: usize, v: u32, width: usize| {
            let mut v = v;
            for i in (0..width).rev() {
                b[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(&mut b, 0, y, 4);
        put(&mut b, 5, mo, 2);
        put(&mut b, 8, d, 2);
        put(&mut b, 11, rem / 3600, 2);
        put(&mut b, 14, rem / 60 % 60, 2);
        put(&mut b, 17, rem % 60, 2);
        put(&mut b, 20, ms, 3);
        b
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.rfc3339_bytes();
        // Only ASCII digits and separators are written.
        f.write_str(std::str::from_utf8(&b).unwrap_or_default())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            let b = self.rfc3339_bytes();
            serializer.serialize_str(std::str::from_utf8(&b).unwrap_or_default())
        } else {
            serializer.serialize_u64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TsVisitor;
        impl Visitor<'_> for TsVisitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 string or a unix timestamp in s, ms, µs or ns")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                Ok(Timestamp::from_unix_integer(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                u64::try_from(v)
                    .map(Timestamp::from_unix_integer)
                    .map_err(|_| E::custom(TimestampError::Unix(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                Timestamp::from_unix_number(v).map_err(E::custom)
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(TsVisitor)
        } else {
            u64::deserialize(deserializer).map(Timestamp)
        }
    }
}

/// The event time of a native JSON Lines record without decoding the rest of it: the value of
/// its top-level `ts` field, read as [`Timestamp`]'s deserializer would read it.
///
/// Readers that split a file between workers use it so that every worker sees every line's
/// event time — and so agrees on the watermark — while decoding only its own share.
///
/// ```
/// use kaizen_model::{peek_ts, Timestamp};
/// let line = br#"{"labels":{"ts":1},"ts":"2026-01-05T00:00:00Z","kind":"log"}"#;
/// assert_eq!(peek_ts(line), Timestamp::parse("2026-01-05T00:00:00Z").ok());
/// assert_eq!(peek_ts(br#"{"kind":"log"}"#), None);
/// ```
pub fn peek_ts(line: &[u8]) -> Option<Timestamp> {
    let ws = |mut i: usize| {
        while line.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    };
    let string_end = |start: usize| {
        let mut i = start + 1;
        while i < line.len() {
            match line[i] {
                b'\\' => i += 2,
                b'"' => return Some(i),
                _ => i += 1,
            }
        }
        None
    };
    let mut i = ws(0);
    if line.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let mut depth = 1usize;
    let mut expect_key = true;
    while i < line.len() {
        match line[i] {
            b'"' => {
                let end = string_end(i)?;
                if depth == 1 && expect_key {
                    let key = &line[i + 1..end];
                    let colon = ws(end + 1);
                    if line.get(colon) != Some(&b':') {
                        return None;
                    }
                    let value = ws(colon + 1);
                    if key == b"ts" {
                        return peek_value(line, value);
                    }
                    expect_key = false;
                    i = value;
                    continue;
                }
                i = end + 1;
            }
            b'{' | b'[' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return None;
                }
                i += 1;
            }
            b',' => {
                expect_key = depth == 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

fn peek_value(line: &[u8], at: usize) -> Option<Timestamp> {
    if line.get(at) == Some(&b'"') {
        let rest = &line[at + 1..];
        let end = rest.iter().position(|&c| c == b'"' || c == b'\\')?;
        if rest[end] != b'"' {
            return None;
        }
        return Timestamp::parse(std::str::from_utf8(&rest[..end]).ok()?).ok();
    }
    let rest = &line[at..];
    let end = rest
        .iter()
        .position(|c| !matches!(c, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'))
        .unwrap_or(rest.len());
    let text = std::str::from_utf8(&rest[..end]).ok()?;
    if let Ok(n) = text.parse::<u64>() {
        return Some(Timestamp::from_unix_integer(n));
    }
    Timestamp::from_unix_number(text.parse::<f64>().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_and_accepts_offsets() {
        let t = Timestamp::parse("2026-11-22T00:23:13.5Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-22T00:23:13.500Z");
        assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        let with_offset = Timestamp::parse("2026-11-22T02:23:13.500+02:00").unwrap();
        assert_eq!(with_offset, t);
        assert_eq!(
            Timestamp::parse("1970-01-01T00:00:00Z").unwrap(),
            Timestamp(0)
        );
        assert_eq!(
            Timestamp::parse("2024-02-29T12:00:00.123456789Z")
                .unwrap()
                .to_string(),
            "2024-02-29T12:00:00.123Z"
        );
    }

    #[test]
    fn a_date_read_before_counts_as_when_read_first() {
        // The thread remembers the last date: reading it again, after another date, or after
        // a bad line with a good date must give the arithmetic's answer every time.
        let days = |d: &str| {
            let t = Timestamp::parse(&format!("{d}T01:02:03.004Z")).unwrap();
            (t.0 - 3_723_004) / 86_400_000
        };
        let expect = [
            ("2024-02-29", 19_782),
            ("2024-03-01", 19_783),
            ("1970-01-01", 0),
        ];
        for _ in 0..2 {
            for (d, n) in expect {
                assert_eq!(days(d), n, "{d}");
                assert_eq!(days(d), n, "{d} again");
                assert!(Timestamp::parse(&format!("{d}X01:02:03Z")).is_err());
                assert!(Timestamp::parse("2023-02-29T01:02:03Z").is_err());
            }
        }
    }

    #[test]
    fn rejects_malformed_rfc3339() {
        for bad in [
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01",
            "yesterday",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00Zjunk",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn peek_agrees_with_full_decoding() {
        let lines = [
            r#"{"ts":"2026-01-05T10:00:00.250+01:00","kind":"log","service":"a","message":"m"}"#,
            r#"{ "kind" : "log", "service":"a","message":"ts","ts" : 1767600000 }"#,
            r#"{"extra":{"ts":"x","n":[1,{"ts":2}]},"ts":1767600000123,"kind":"log","service":"a","message":"m"}"#,
            r#"{"ts":1767600000.5,"kind":"log","service":"a","message":"{\"ts\":1}"}"#,
            r#"{"ts":"1767600000","kind":"log","service":"a","message":"m"}"#,
        ];
        for line in lines {
            let decoded = crate::Event::from_json(line).unwrap().ts;
            assert_eq!(peek_ts(line.as_bytes()), Some(decoded), "{line}");
        }
        for bad in [
            r#"{"kind":"log"}"#,
            "not json",
            r#"{"ts":"yesterday"}"#,
            r#"[{"ts":1}]"#,
        ] {
            assert_eq!(peek_ts(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn unix_units_are_inferred_from_magnitude() {
        let expect = Timestamp(1_767_607_200_000);
        assert_eq!(Timestamp::from_unix_integer(1_767_607_200), expect);
        assert_eq!(Timestamp::from_unix_integer(1_767_607_200_000), expect);
        assert_eq!(Timestamp::from_unix_integer(1_767_607_200_000_000), expect);
        assert_eq!(
            Timestamp::from_unix_integer(1_767_607_200_000_000_000),
            expect
        );
        assert_eq!(
            Timestamp::from_unix_number(1_767_607_200.0).unwrap(),
            expect
        );
        assert!(Timestamp::from_unix_number(f64::NAN).is_err());
        assert!(Timestamp::from_unix_number(-1.0).is_err());
        let from_json: Timestamp = serde_json::from_str("1767607200123").unwrap();
        assert_eq!(from_json, Timestamp(1_767_607_200_123));
    }
}
