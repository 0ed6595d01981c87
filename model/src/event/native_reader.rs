//! A direct reader for the native format's one flat JSON object, so that the common line skips
//! serde's generic machinery (a visitor per field, a string match per key, `Option` wrappers):
//! decoding was over a third of a worker's time on the Kafka native path.
//!
//! serde's derive on [`RawEvent`] stays the reference. This reader accepts exactly what it
//! accepts, fills the same `RawEvent`, and hands every line it is not sure of — malformed JSON,
//! a duplicate field, a value of the wrong type, a lone surrogate, trailing text — back to it
//! by returning `None`, so errors keep serde's messages and positions. The tests below hold
//! the two to the same result on valid and invalid lines alike.

use std::borrow::Cow;

use super::{Attributes, Labels, RawEvent};
use crate::{Symbol, Timestamp};

/// Reads one native line into `raw` (a default one: it is large, so it is filled in place
/// rather than moved), or `None` where serde must read it (see the module docs); `raw` is
/// then partly filled.
pub(super) fn read<'a>(line: &'a str, raw: &mut RawEvent<'a>) -> Option<Keys> {
    let mut r = Reader {
        text: line,
        bytes: line.as_bytes(),
        at: 0,
    };
    let keys = r.object(raw)?;
    r.ws();
    (r.at == r.bytes.len()).then_some(keys)
}

/// The top-level keys a line had, as far as format detection cares.
#[derive(Clone, Copy, Debug)]
pub(super) struct Keys {
    seen: u32,
    /// A key that is none of the native format's fields.
    pub(super) unknown: bool,
}

impl Keys {
    /// Whether both `kind` and `ts` were present (even as `null`).
    pub(super) fn kind_and_ts(&self) -> bool {
        let both = (1 << Field::Kind as u32) | (1 << Field::Ts as u32);
        self.seen & both == both
    }
}

/// Unknown fields may hold anything; past this depth serde decides (it stops at 128).
const MAX_DEPTH: usize = 100;

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.at += 1)
    }

    fn object(&mut self, raw: &mut RawEvent<'a>) -> Option<Keys> {
        let mut keys = Keys {
            seen: 0,
            unknown: false,
        };
        self.members(b'{', |r, key| {
            let Some(field) = Field::of(&key?) else {
                keys.unknown = true;
                return r.skip(0);
            };
            let bit = 1u32 << field as u32;
            if keys.seen & bit != 0 {
                return None; // serde: "duplicate field"
            }
            keys.seen |= bit;
            r.field(field, raw)
        })?;
        Some(keys)
    }

    /// Walks an object (`open` is `{`: each member comes with its key) or an array (`[`:
    /// without), handing every member's value to `each`; separators and the closing bracket
    /// are checked here.
    fn members(
        &mut self,
        open: u8,
        mut each: impl FnMut(&mut Self, Option<Cow<'a, str>>) -> Option<()>,
    ) -> Option<()> {
        let close = if open == b'{' { b'}' } else { b']' };
        self.eat(open)?;
        if self.peek()? == close {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = if open == b'{' {
                if self.peek()? != b'"' {
                    return None;
                }
                let key = self.string()?;
                self.eat(b':')?;
                Some(key)
            } else {
                None
            };
            each(self, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b if b == close => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn field(&mut self, field: Field, raw: &mut RawEvent<'a>) -> Option<()> {
        if self.peek()? == b'n' {
            return self.literal(b"null"); // every field is optional: null is absent
        }
        match field {
            Field::Ts => raw.ts = Some(self.timestamp()?),
            Field::Kind => raw.kind = Some(self.text()?),
            Field::Service => raw.service = Some(self.text()?),
            Field::Name => raw.name = Some(self.text()?),
            Field::Status => raw.status = Some(self.text()?),
            Field::Severity => raw.severity = Some(self.text()?),
            Field::Fingerprint => raw.fingerprint = Some(self.owned()?),
            Field::Labels => raw.labels = Some(Labels::from_pairs(self.pairs(Symbol::new)?)),
            Field::Annotations => {
                raw.annotations = Some(Attributes::from_pairs(self.pairs(str::to_owned)?))
            }
            Field::Value => raw.value = Some(self.float()?),
            Field::MetricKind => raw.metric_kind = Some(self.text()?),
            Field::Level => raw.level = Some(self.text()?),
            Field::Message => raw.message = Some(self.owned()?),
            Field::Attributes => {
                raw.attributes = Some(Attributes::from_pairs(self.pairs(str::to_owned)?))
            }
            Field::Peer => raw.peer = Some(self.text()?),
            Field::Operation => raw.operation = Some(self.text()?),
            Field::DurationMs => raw.duration_ms = Some(self.float()?),
            Field::TraceId => raw.trace_id = Some(self.owned()?),
            Field::ChangeKind => raw.change_kind = Some(self.text()?),
            Field::Version => raw.version = Some(self.owned()?),
            Field::Description => raw.description = Some(self.owned()?),
            Field::Author => raw.author = Some(self.owned()?),
            Field::Incident => raw.incident = Some(self.owned()?),
            Field::Action => raw.action = Some(self.text()?),
            Field::Remedy => raw.remedy = Some(self.owned()?),
            Field::User => raw.user = Some(self.owned()?),
        }
        Some(())
    }

    /// A string value (whitespace skipped), borrowed unless it has escapes.
    fn text(&mut self) -> Option<Cow<'a, str>> {
        if self.peek()? != b'"' {
            return None;
        }
        self.string()
    }

    fn owned(&mut self) -> Option<String> {
        self.text().map(Cow::into_owned)
    }

    /// A number as `f64`, as serde reads one into an `f64` field.
    fn float(&mut self) -> Option<f64> {
        self.ws();
        self.number()?.parse().ok()
    }

    /// As `Timestamp`'s deserializer: RFC 3339 text, or a unix time in s, ms, µs or ns.
    fn timestamp(&mut self) -> Option<Timestamp> {
        if self.peek()? == b'"' {
            return Timestamp::parse(&self.string()?).ok();
        }
        let n = self.number()?;
        if is_integer(n) {
            if let Ok(v) = n.parse::<u64>() {
                return Some(Timestamp::from_unix_integer(v));
            }
            if n.starts_with('-') {
                return None; // negative: serde's error
            }
        }
        Timestamp::from_unix_number(n.parse().ok()?).ok()
    }

    /// A JSON object of scalars as `(key, value)` pairs, values as `PairVisitor` reads them.
    fn pairs<V>(&mut self, value: impl Fn(&str) -> V) -> Option<Vec<(Symbol, V)>> {
        let mut out = Vec::new();
        self.members(b'{', |r, key| {
            let v = match r.peek()? {
                b'"' => value(&r.string()?),
                b't' => r.literal(b"true").map(|()| value("true"))?,
                b'f' => r.literal(b"false").map(|()| value("false"))?,
                b'n' => r.literal(b"null").map(|()| value(""))?,
                _ => value(&scalar_number_text(r.number()?)?),
            };
            out.push((Symbol::new(&key?), v));
            Some(())
        })?;
        Some(out)
    }

    /// Skips any value (an unknown field's).
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            open @ (b'{' | b'[') => self.members(open, |r, _| r.skip(depth + 1)),
            _ => self.number().map(drop),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// The string starting at the current `"`.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let start = self.at + 1;
        let mut i = plain_run(self.bytes, start);
        match *self.bytes.get(i)? {
            b'"' => {
                self.at = i + 1;
                return Some(Cow::Borrowed(self.text.get(start..i)?));
            }
            b'\\' => {}
            _ => return None, // a control character
        }
        let mut out = String::with_capacity(i - start + 16);
        out.push_str(self.text.get(start..i)?);
        loop {
            match *self.bytes.get(i)? {
                b'"' => {
                    self.at = i + 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {
                    let escape = *self.bytes.get(i + 1)?;
                    i += 2;
                    out.push(match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let (c, used) = self.unicode_escape(i)?;
                            i += used;
                            c
                        }
                        _ => return None,
                    });
                }
                c if c < 0x20 => return None,
                _ => {
                    let run = i;
                    i = plain_run(self.bytes, i);
                    out.push_str(self.text.get(run..i)?);
                }
            }
        }
    }

    /// The character of a `\uXXXX` whose hex digits start at `i` (a surrogate pair takes a
    /// second escape), and how many bytes it used after the first `\u`.
    fn unicode_escape(&self, i: usize) -> Option<(char, usize)> {
        let first = self.hex4(i)?;
        match first {
            0xD800..=0xDBFF => {
                if self.bytes.get(i + 4..i + 6)? != b"\\u" {
                    return None;
                }
                let low = self.hex4(i + 6)?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return None;
                }
                let c = 0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00);
                Some((char::from_u32(c)?, 10))
            }
            0xDC00..=0xDFFF => None,
            _ => Some((char::from_u32(first)?, 4)),
        }
    }

    fn hex4(&self, i: usize) -> Option<u32> {
        let digits = self.text.get(i..i + 4)?;
        if !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(digits, 16).ok()
    }

    /// A number's text, checked against JSON's grammar.
    fn number(&mut self) -> Option<&'a str> {
        let start = self.at;
        let b = self.bytes;
        let digits = |mut i: usize| {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            i
        };
        let mut i = start + usize::from(b.get(start) == Some(&b'-'));
        i = match b.get(i)? {
            b'0' => i + 1,
            b'1'..=b'9' => digits(i + 1),
            _ => return None,
        };
        if b.get(i) == Some(&b'.') {
            let end = digits(i + 1);
            if end == i + 1 {
                return None;
            }
            i = end;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let end = digits(i);
            if end == i {
                return None;
            }
            i = end;
        }
        self.at = i;
        self.text.get(start..i)
    }
}

/// Where the run of string bytes needing no care that starts at `i` ends: at the next `"`,
/// `\\` or control character, or at the end. Eight bytes at a time: log messages are long.
fn plain_run(bytes: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        // A byte is flagged when it is zero (in `quote`, `backslash`) or below 0x20 in `w`;
        // borrows can flag bytes after the first hit, never before it.
        let hits = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w);
        let hits = hits & HIGHS;
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while bytes
        .get(i)
        .is_some_and(|&c| c != b'"' && c != b'\\' && c >= 0x20)
    {
        i += 1;
    }
    i
}

fn is_integer(number: &str) -> bool {
    !number.bytes().any(|c| matches!(c, b'.' | b'e' | b'E'))
}

/// A number in a label or attribute object as text, the way serde_json hands it to
/// `ScalarText`: integers as integers, anything else as the `f64` it reads.
fn scalar_number_text(n: &str) -> Option<String> {
    if is_integer(n) {
        if let Ok(v) = n.parse::<u64>() {
            return Some(v.to_string());
        }
        // serde_json reads `-0` as the float -0.0.
        if let Ok(v @ (..=-1)) = n.parse::<i64>() {
            return Some(v.to_string());
        }
    }
    n.parse::<f64>().ok().map(|v| v.to_string())
}

/// The fields of [`RawEvent`], one bit each in the reader's duplicate check.
#[derive(Clone, Copy)]
enum Field {
    Ts,
    Kind,
    Service,
    Name,
    Status,
    Severity,
    Fingerprint,
    Labels,
    Annotations,
    Value,
    MetricKind,
    Level,
    Message,
    Attributes,
    Peer,
    Operation,
    DurationMs,
    TraceId,
    ChangeKind,
    Version,
    Description,
    Author,
    Incident,
    Action,
    Remedy,
    User,
}

impl Field {
    fn of(key: &str) -> Option<Field> {
        Some(match key {
            "ts" => Field::Ts,
            "kind" => Field::Kind,
            "service" => Field::Service,
            "name" => Field::Name,
            "status" => Field::Status,
            "severity" => Field::Severity,
            "fingerprint" => Field::Fingerprint,
            "labels" => Field::Labels,
            "annotations" => Field::Annotations,
            "value" => Field::Value,
            "metric_kind" => Field::MetricKind,
            "level" => Field::Level,
            "message" => Field::Message,
            "attributes" => Field::Attributes,
            "peer" => Field::Peer,
            "operation" => Field::Operation,
            "duration_ms" => Field::DurationMs,
            "trace_id" => Field::TraceId,
            "change_kind" => Field::ChangeKind,
            "version" => Field::Version,
            "description" => Field::Description,
            "author" => Field::Author,
            "incident" => Field::Incident,
            "action" => Field::Action,
            "remedy" => Field::Remedy,
            "user" => Field::User,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Event;
    use super::*;

    /// What serde alone makes of `line`: the event, or its error text.
    fn by_serde(line: &str) -> Result<Event, String> {
        serde_json::from_str::<RawEvent<'_>>(line)
            .map_err(|e| e.to_string())
            .and_then(|raw| raw.into_event().map_err(|e| e.to_string()))
    }

    /// The reader agrees with serde: it reads the line the same, or leaves it to serde.
    fn agrees(line: &str) -> bool {
        let mut raw = RawEvent::default();
        if read(line, &mut raw).is_none() {
            return false;
        }
        let fast = raw.into_event().map_err(|e| e.to_string());
        assert_eq!(fast, by_serde(line), "{line}");
        true
    }

    fn leaves(line: &str) -> bool {
        read(line, &mut RawEvent::default()).is_none()
    }

    #[test]
    fn reads_every_kind_as_serde_does() {
        let lines = [
            r#"{"ts":"2026-01-05T00:00:00.030Z","kind":"log","service":"q","level":"info","message":"deleted 5 segments","attributes":{"pod":"q-0"}}"#,
            r#"{"ts":1767607333,"kind":"metric","service":"f","name":"rps","value":86.55,"labels":{"instance":"f-0"}}"#,
            r#"{"ts":1767607333123,"kind":"metric","service":"f","name":"c","value":3,"metric_kind":"counter"}"#,
            r#"{"ts":1767607333.5,"kind":"span","service":"c","peer":"redis","operation":"GET","duration_ms":0.5,"status":"ok","trace_id":"21"}"#,
            r#"{"ts":"2026-01-05T00:30:10Z","kind":"alert","service":"c","name":"HighMem","status":"firing","severity":"warning","fingerprint":"5d","labels":{"alertname":"HighMem","team":"d"},"annotations":{"summary":"91.5% (threshold 90%)"}}"#,
            r#"{"ts":"2026-01-05T00:25:38Z","kind":"change","service":"c","change_kind":"deploy","version":"v1","description":"Deploy","author":"bob"}"#,
            r#"{"ts":"2026-01-05T00:25:38Z","kind":"feedback","incident":"inc-1","action":"remedy_worked","remedy":"roll back","user":"amy"}"#,
            // Whitespace, unknown fields of every shape, nulls, key order.
            " { \"kind\" : \"log\" , \"x\":[1,{\"a\":[]},\"s\",true,null,-2.5e3], \"ts\":1767607333,\n\"service\":\"a\",\"message\":\"m\",\"level\":null,\"y\":{} }\r\n",
            // Escapes, borrowed and owned, with a surrogate pair.
            r#"{"ts":1,"kind":"log","service":"a\u0062","message":"say \"hi\"\n\t\\ \/ \ud83d\ude00 é","attributes":{"k\"":"v\u00e9"}}"#,
            // Scalars of every type in labels; duplicate label keys (the last wins).
            r#"{"ts":1,"kind":"metric","service":"a","name":"m","value":-0,"labels":{"a":503,"b":-7,"z":-0,"y":-0.0,"c":1.50,"d":1e3,"e":true,"f":false,"g":null,"a":"x","h":18446744073709551616}}"#,
            r#"{"ts":1,"kind":"metric","service":"a","name":"m","value":1.7976931348623157e308}"#,
            r#"{"ts":18446744073709551616,"kind":"metric","service":"a","name":"m","value":1}"#,
            r#"{"ts":1,"kind":"metric","service":"a","name":"m","value":12345678901234567890}"#,
            r#"{"ts":1,"kind":"alert","service":"a","name":"n","labels":{"severity":"critical"}}"#,
            r#"{}"#,
            // Errors found after reading (in `into_event`) are the same too.
            r#"{"ts":1,"kind":"metric","service":"a","name":"m"}"#,
            r#"{"ts":1,"kind":"nope","service":"a"}"#,
            r#"{"ts":1,"kind":"span","service":"a","status":"bad"}"#,
            r#"{"kind":"log","service":"a","message":"m"}"#,
        ];
        for line in lines {
            assert!(agrees(line), "left to serde: {line}");
        }
    }

    #[test]
    fn a_plain_run_stops_at_the_first_byte_that_needs_care() {
        for (text, end) in [
            ("", 0),
            ("abc", 3),
            ("abcdefghijklmnop", 16),
            ("abcdefgh\"", 8),
            ("abcdefghi\\", 9),
            ("abcdefghij\n", 10),
            ("a\"cdefghijklmn", 1),
            ("\u{7f}\u{80}é\u{1f}xxxxxxxxxx", 5),
            ("é\"\"", 2),
        ] {
            assert_eq!(plain_run(text.as_bytes(), 0), end, "{text:?}");
        }
    }

    #[test]
    fn leaves_what_serde_rejects_to_serde() {
        let lines = [
            "",
            "[]",
            "{",
            r#"{"ts":1,"ts":2}"#,
            r#"{"ts":1,"kind":"log",}"#,
            r#"{"ts":1} x"#,
            r#"{"ts":-1,"kind":"log","service":"a","message":"m"}"#,
            r#"{"ts":true}"#,
            r#"{"ts":01}"#,
            r#"{"ts":1.}"#,
            r#"{"ts":1e}"#,
            r#"{"value":"5"}"#,
            r#"{"service":5}"#,
            r#"{"labels":{"a":{"b":1}}}"#,
            r#"{"labels":{"a":[1]}}"#,
            r#"{"message":"bad \x escape"}"#,
            r#"{"message":"lone \ud800 surrogate"}"#,
            r#"{"message":"lone \udc00 surrogate"}"#,
            "{\"message\":\"raw \u{1} control\"}",
            r#"{"x":nul}"#,
            r#"{"x":[1,]}"#,
            r#"{"x":{"a" 1}}"#,
            r#"{"ts":"not a time","kind":"log","service":"a","message":"m"}"#,
        ];
        for line in lines {
            assert!(leaves(line), "read but serde rejects: {line}");
            assert!(by_serde(line).is_err(), "serde reads: {line}");
        }
        let deep = format!(r#"{{"x":{}1{}}}"#, "[".repeat(200), "]".repeat(200));
        assert!(leaves(&deep));
    }
}
