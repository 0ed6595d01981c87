//! Slack's documented message limits, and a checker for them.
//!
//! For: the numbers rendering must respect (`blocks.rs` cuts every text to them) and
//! [`check_message_limits`], which tests and the Web API stub run on every message so a
//! rendering change that would earn `invalid_blocks` fails a test instead of an incident
//! channel. Not for: rendering itself.
//!
//! Lengths are counted in UTF-16 code units, which is never fewer than the characters Slack
//! counts.

use std::collections::HashSet;

use serde_json::Value;

/// Blocks per message.
pub const MAX_BLOCKS: usize = 50;
/// Characters in a header block's text.
pub const MAX_HEADER_TEXT: usize = 150;
/// Characters in a section block's text.
pub const MAX_SECTION_TEXT: usize = 3000;
/// Fields per section block.
pub const MAX_FIELDS: usize = 10;
/// Characters per section field.
pub const MAX_FIELD_TEXT: usize = 2000;
/// Elements per context block.
pub const MAX_CONTEXT_ELEMENTS: usize = 10;
/// Elements per actions block.
pub const MAX_ACTION_ELEMENTS: usize = 25;
/// Characters in a button's text.
pub const MAX_BUTTON_TEXT: usize = 75;
/// Characters in a button's value.
pub const MAX_BUTTON_VALUE: usize = 2000;
/// Characters in an `action_id` or `block_id`.
pub const MAX_ID: usize = 255;
/// Characters of the top-level `text`. Slack accepts 40,000 but truncates long ones; the
/// fallback is a notification line, so it is kept far shorter.
pub const MAX_FALLBACK_TEXT: usize = 3000;
/// Characters per thread reply (the same as a section, to stay readable).
pub const MAX_REPLY_TEXT: usize = 3000;

/// Length as Slack may count it (UTF-16 code units: an emoji counts two).
pub(crate) fn len16(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Checks a `chat.postMessage` / `chat.update` payload (`text` + `blocks`) against Slack's
/// documented limits; `Err` lists every violation. Tests run it on every message sent, and it
/// is public so a stub of the Web API can too.
pub fn check_message_limits(message: &Value) -> Result<(), Vec<String>> {
    let mut errs = Vec::new();
    let text_len = |v: &Value| v.as_str().map(len16);
    match message.get("text").and_then(|t| t.as_str()) {
        Some(t) if !t.trim().is_empty() && len16(t) <= 40_000 => {}
        other => errs.push(format!(
            "top-level text missing, empty or too long: {other:?}"
        )),
    }
    let blocks = message
        .get("blocks")
        .and_then(|b| b.as_array())
        .cloned()
        .unwrap_or_default();
    if blocks.len() > MAX_BLOCKS {
        errs.push(format!("{} blocks > {MAX_BLOCKS}", blocks.len()));
    }
    let mut ids = HashSet::new();
    let mut check_id = |kind: &str, id: Option<&str>, errs: &mut Vec<String>| {
        if let Some(id) = id {
            if len16(id) > MAX_ID || !ids.insert(format!("{kind}:{id}")) {
                errs.push(format!("{kind} {id:?} too long or not unique"));
            }
        }
    };
    for (i, b) in blocks.iter().enumerate() {
        check_id(
            "block_id",
            b.get("block_id").and_then(|v| v.as_str()),
            &mut errs,
        );
        let limit = |errs: &mut Vec<String>, what: &str, v: Option<usize>, max: usize| match v {
            Some(n) if n > 0 && n <= max => {}
            other => errs.push(format!(
                "block {i}: {what} length {other:?} not in 1..={max}"
            )),
        };
        match b.get("type").and_then(|t| t.as_str()) {
            Some("header") => {
                if b["text"]["type"] != "plain_text" {
                    errs.push(format!("block {i}: header text must be plain_text"));
                }
                limit(
                    &mut errs,
                    "header",
                    text_len(&b["text"]["text"]),
                    MAX_HEADER_TEXT,
                );
            }
            Some("section") => {
                if let Some(t) = b.get("text") {
                    limit(
                        &mut errs,
                        "section text",
                        text_len(&t["text"]),
                        MAX_SECTION_TEXT,
                    );
                }
                if let Some(fields) = b.get("fields").and_then(|f| f.as_array()) {
                    if fields.len() > MAX_FIELDS {
                        errs.push(format!("block {i}: {} fields", fields.len()));
                    }
                    for f in fields {
                        limit(&mut errs, "field", text_len(&f["text"]), MAX_FIELD_TEXT);
                    }
                } else if b.get("text").is_none() {
                    errs.push(format!("block {i}: section without text or fields"));
                }
            }
            Some("context") => {
                let elements = b["elements"].as_array().map(Vec::len).unwrap_or(0);
                if elements == 0 || elements > MAX_CONTEXT_ELEMENTS {
                    errs.push(format!("block {i}: {elements} context elements"));
                }
            }
            Some("actions") => {
                let elements = b["elements"].as_array().cloned().unwrap_or_default();
                if elements.is_empty() || elements.len() > MAX_ACTION_ELEMENTS {
                    errs.push(format!("block {i}: {} action elements", elements.len()));
                }
                for e in &elements {
                    limit(
                        &mut errs,
                        "button text",
                        text_len(&e["text"]["text"]),
                        MAX_BUTTON_TEXT,
                    );
                    limit(
                        &mut errs,
                        "button value",
                        text_len(&e["value"]),
                        MAX_BUTTON_VALUE,
                    );
                    check_id(
                        "action_id",
                        e.get("action_id").and_then(|v| v.as_str()),
                        &mut errs,
                    );
                }
            }
            Some("divider") => {}
            other => errs.push(format!("block {i}: unexpected type {other:?}")),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_checker_catches_each_kind_of_violation() {
        let button = |id: &str| {
            json!({"type": "button", "action_id": id, "value": "v",
                   "text": {"type": "plain_text", "text": "ok"}})
        };
        let fields: Vec<Value> = (0..11)
            .map(|_| json!({"type": "mrkdwn", "text": "f"}))
            .collect();
        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": "h".repeat(151)}}),
            json!({"type": "section", "fields": fields}),
            json!({"type": "section", "text": {"type": "mrkdwn", "text": "s".repeat(3001)}}),
            json!({"type": "actions", "elements": [button("a"), button("a")]}),
        ];
        blocks.resize(51, json!({"type": "divider"}));
        let errs = check_message_limits(&json!({"text": "", "blocks": blocks})).unwrap_err();
        for needle in [
            "top-level text",
            "51 blocks",
            "header",
            "11 fields",
            "section text",
            "\"a\"",
        ] {
            assert!(
                errs.iter().any(|e| e.contains(needle)),
                "{needle}: {errs:?}"
            );
        }
        let fine = json!({"text": "t", "blocks": [{"type": "divider"}]});
        assert_eq!(check_message_limits(&fine), Ok(()));
    }
}
