//! kaizen's native JSON Lines as a message codec: one or more lines per message, each decoded
//! by [`Event::from_json`] exactly as `kaizen replay` reads files, so a topic can carry what a
//! file would.

use kaizen_model::Event;

use super::CodecError;

/// A message of one native line (a trailing newline allowed) that detection would call native
/// by its keys, decoded as [`decode`] would; `None` for anything else, to be detected as usual.
pub(super) fn decode_if_native(
    payload: &[u8],
    out: &mut Vec<Event>,
) -> Option<Result<(), CodecError>> {
    let line = payload.strip_suffix(b"\n").unwrap_or(payload);
    if memchr::memchr(b'\n', line).is_some() {
        return None;
    }
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let event = Event::from_json_if_native(std::str::from_utf8(line).ok()?)?;
    Some(match event {
        Ok(event) => {
            out.push(event);
            Ok(())
        }
        Err(e) => Err(CodecError::NativeLine {
            line: 1,
            reason: e.to_string(),
        }),
    })
}

/// Decodes every non-blank line (`\n` or `\r\n`); the first bad line rejects the message.
pub(super) fn decode(payload: &[u8], out: &mut Vec<Event>) -> Result<(), CodecError> {
    let mut any = false;
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', payload).chain([payload.len()]);
    for (i, end) in ends.enumerate() {
        let raw = &payload[start..end];
        start = end + 1;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let text = std::str::from_utf8(line).map_err(|e| CodecError::NativeLine {
            line: i + 1,
            reason: format!("not UTF-8: {e}"),
        })?;
        let event = Event::from_json(text).map_err(|e| CodecError::NativeLine {
            line: i + 1,
            reason: e.to_string(),
        })?;
        out.push(event);
        any = true;
    }
    if any {
        Ok(())
    } else {
        Err(CodecError::NativeLine {
            line: 1,
            reason: "empty message".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_lines_and_the_bad_one_named() {
        let ok = r#"{"ts":1767607333,"kind":"log","service":"a","message":"m"}"#;
        let mut out = Vec::new();
        decode(format!("{ok}\r\n\n{ok}\n").as_bytes(), &mut out).unwrap();
        assert_eq!(out.len(), 2);
        let err = decode(format!("{ok}\n{{\"kind\":\"log\"}}").as_bytes(), &mut out).unwrap_err();
        assert!(err.to_string().starts_with("native: line 2: "), "{err}");
        assert!(decode(b" \n", &mut out).is_err());
        assert!(decode(b"\xff\n", &mut out).is_err());
    }
}
