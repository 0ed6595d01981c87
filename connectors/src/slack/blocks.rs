//! An insight as a Slack Block Kit message, always within Slack's limits.
//!
//! For: the one message per incident (header, status fields, probable origin with evidence,
//! impact, suspect changes, similar past incidents with the remedy that worked, buttons), its
//! plain-text fallback, and the thread replies that carry the timeline. It lays the card out like
//! `terminal.rs` does, so the terminal shows what Slack will. Not for: sending (`client.rs`) or
//! deciding what is new (`queue.rs`).
//!
//! Slack rejects a message that breaks a limit (`invalid_blocks`, `msg_too_long`) and the
//! responders then see nothing, so every text is cut to fit, with an ellipsis or "+N more",
//! rather than trusting the input to be small. Lengths are counted in UTF-16 code units, which
//! is never fewer than the characters Slack counts.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use kaizen_model::{IncidentStatus, Insight, Novelty, Severity, Symbol, TimelineEntry, Timestamp};

use super::limits::{
    len16, MAX_BLOCKS, MAX_BUTTON_TEXT, MAX_BUTTON_VALUE, MAX_CONTEXT_ELEMENTS, MAX_FALLBACK_TEXT,
    MAX_FIELD_TEXT, MAX_HEADER_TEXT, MAX_ID, MAX_REPLY_TEXT, MAX_SECTION_TEXT,
};

/// `action_id` of the Acknowledge button.
pub const ACTION_ACKNOWLEDGE: &str = "kaizen_acknowledge";
/// `action_id` of the Resolve button.
pub const ACTION_RESOLVE: &str = "kaizen_resolve";
/// `action_id` prefix of "This remedy worked" (one per similar incident: `…_0`, `…_1`).
pub const ACTION_REMEDY_WORKED: &str = "kaizen_remedy_worked";
/// `action_id` prefix of "Not helpful".
pub const ACTION_NOT_HELPFUL: &str = "kaizen_not_helpful";

const SIMILAR_SHOWN: usize = 3;
const ORIGINS_SHOWN: usize = 3;
const EVIDENCE_SHOWN: usize = 5;
const NAMES_SHOWN: usize = 15;
const LINE_MAX: usize = 500;

/// What a button carries back to the interactivity endpoint: the incident, and for the
/// remedy buttons the remedy (as text, because that is how incident recall keys remedies).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ButtonValue {
    /// The incident the button is on.
    pub incident: String,
    /// The remedy voted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

/// A `chat.postMessage` / `chat.update` payload without channel and ts.
#[derive(Clone, Debug, PartialEq)]
pub struct SlackMessage {
    /// Plain-text fallback for notifications and clients without Block Kit.
    pub text: String,
    /// The Block Kit blocks.
    pub blocks: Vec<Value>,
}

/// Cuts `s` to at most `max` UTF-16 units, ending in `…` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if len16(s) <= max {
        return s.to_owned();
    }
    let budget = max.saturating_sub(1);
    let mut used = 0;
    let mut end = 0;
    for (i, c) in s.char_indices() {
        if used + c.len_utf16() > budget {
            break;
        }
        used += c.len_utf16();
        end = i + c.len_utf8();
    }
    format!("{}…", &s[..end])
}

/// [`truncate`] for escaped mrkdwn: never leaves half an `&amp;` entity behind.
fn truncate_mrkdwn(s: &str, max: usize) -> String {
    if len16(s) <= max {
        return s.to_owned();
    }
    let cut = truncate(s, max);
    let body = cut.strip_suffix('…').unwrap_or(&cut);
    match body.rfind('&') {
        Some(amp) if !body[amp..].contains(';') => format!("{}…", &body[..amp]),
        _ => cut,
    }
}

/// Escapes the three characters mrkdwn treats as control (`&`, `<`, `>`).
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // Newlines in one-line fields would break the layout.
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// One escaped line of a list, cut to a readable length.
fn line(s: &str) -> String {
    truncate_mrkdwn(&escape(s), LINE_MAX)
}

/// `heading` then as many `lines` as fit in `max`, then `… +N more`.
fn list_text(heading: &str, lines: &[String], max: usize) -> String {
    let mut out = heading.to_owned();
    let reserve = 24; // room for "\n_… +NNNNN more_"
    for (i, l) in lines.iter().enumerate() {
        let remaining_after = lines.len() - i - 1;
        let need = len16(&out) + 1 + len16(l) + if remaining_after > 0 { reserve } else { 0 };
        if need > max {
            out.push_str(&format!("\n_… +{} more_", lines.len() - i));
            return out;
        }
        out.push('\n');
        out.push_str(l);
    }
    out
}

/// `a, b, c, … +N more`, within `max`.
fn names(list: &[Symbol], max: usize) -> String {
    if list.is_empty() {
        return "—".to_owned();
    }
    let shown: Vec<String> = list
        .iter()
        .take(NAMES_SHOWN)
        .map(|s| line(s.as_str()))
        .collect();
    let mut text = shown.join(", ");
    if list.len() > NAMES_SHOWN {
        text.push_str(&format!(" … +{} more", list.len() - NAMES_SHOWN));
    }
    truncate_mrkdwn(&text, max)
}

fn mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": text})
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": mrkdwn(truncate_mrkdwn(&text, MAX_SECTION_TEXT))})
}

fn context(texts: Vec<String>) -> Value {
    let elements: Vec<Value> = texts
        .into_iter()
        .take(MAX_CONTEXT_ELEMENTS)
        .map(|t| mrkdwn(truncate_mrkdwn(&t, MAX_FIELD_TEXT)))
        .collect();
    json!({"type": "context", "elements": elements})
}

fn field(label: &str, value: &str) -> Value {
    mrkdwn(truncate_mrkdwn(
        &format!("*{label}*\n{value}"),
        MAX_FIELD_TEXT,
    ))
}

/// The JSON of a button value, with the remedy shortened until it fits in
/// [`MAX_BUTTON_VALUE`]. A remedy that long is a paragraph, not a remedy name; voting on its
/// shortened form is the lesser evil next to an invalid message.
fn button_value(value: &ButtonValue) -> String {
    let mut v = value.clone();
    v.incident = truncate(&v.incident, 200);
    for _ in 0..64 {
        let text = serde_json::to_string(&v).unwrap_or_default();
        let over = len16(&text).saturating_sub(MAX_BUTTON_VALUE);
        match (&v.remedy, over) {
            (_, 0) => return text,
            (Some(r), _) => {
                let keep = len16(r).saturating_sub(over + 8);
                v.remedy = Some(truncate(r, keep));
            }
            (None, _) => break,
        }
    }
    // Unreachable with a 200-unit incident id, but never emit an oversized value.
    truncate(
        &serde_json::to_string(&v).unwrap_or_default(),
        MAX_BUTTON_VALUE,
    )
}

fn button(text: &str, action_id: &str, value: &ButtonValue, style: Option<&str>) -> Value {
    let mut b = json!({
        "type": "button",
        "text": {"type": "plain_text", "text": truncate(text, MAX_BUTTON_TEXT), "emoji": true},
        "action_id": truncate(action_id, MAX_ID),
        "value": button_value(value),
    });
    if let Some(style) = style {
        b["style"] = json!(style);
    }
    b
}

/// `<!date^…>`: Slack shows it in each reader's own time zone; the RFC 3339 text is the
/// fallback for clients that cannot.
fn slack_date(ts: Timestamp) -> String {
    format!(
        "<!date^{}^{{date_short_pretty}} {{time_secs}}|{}>",
        ts.as_millis() / 1000,
        ts
    )
}

fn status_line(insight: &Insight) -> String {
    match (insight.status, insight.resolved_at) {
        (IncidentStatus::Resolved, Some(r)) => format!(
            ":white_check_mark: Resolved after {} min",
            r.since(insight.opened_at).as_secs() / 60
        ),
        (IncidentStatus::Resolved, None) => ":white_check_mark: Resolved".to_owned(),
        (IncidentStatus::Open, _) => format!("{} Open", severity_emoji(insight.severity)),
        (IncidentStatus::Updated, _) => format!("{} Ongoing", severity_emoji(insight.severity)),
    }
}

fn severity_emoji(s: Severity) -> &'static str {
    match s {
        Severity::Critical => ":red_circle:",
        Severity::Warning => ":large_orange_circle:",
        Severity::Info => ":large_blue_circle:",
    }
}

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "Critical",
        Severity::Warning => "Warning",
        Severity::Info => "Info",
    }
}

/// The plain-text fallback: what a notification or a screen reader says.
pub fn fallback_text(insight: &Insight) -> String {
    let origin = insight
        .origin
        .first()
        .map(|c| format!(" · origin {} ({:.0}%)", c.service, c.score * 100.0))
        .unwrap_or_default();
    let text = format!(
        "[{}] {}: {}{origin} · {} v{}",
        insight.severity.as_str().to_uppercase(),
        insight.status.as_str(),
        insight.title,
        insight.id,
        insight.version
    );
    truncate_mrkdwn(&escape(&text), MAX_FALLBACK_TEXT)
}

/// The message for one insight version.
pub fn render_insight(insight: &Insight) -> SlackMessage {
    let mut blocks = Vec::new();
    let title = if insight.title.trim().is_empty() {
        insight.id.as_str()
    } else {
        insight.title.as_str()
    };
    blocks.push(json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(title, MAX_HEADER_TEXT), "emoji": true},
    }));
    blocks.push(json!({"type": "section", "fields": [
        field("Status", &status_line(insight)),
        field("Severity", severity_word(insight.severity)),
        field("Services", &names(&insight.services, MAX_FIELD_TEXT - 16)),
        field("Impacted", &names(&insight.impacted, MAX_FIELD_TEXT - 16)),
    ]}));
    let mut when = format!(
        "`{}` · v{} · opened {}",
        escape(&insight.id),
        insight.version,
        slack_date(insight.opened_at)
    );
    match insight.resolved_at {
        Some(r) => when.push_str(&format!(" · resolved {}", slack_date(r))),
        None => when.push_str(&format!(" · updated {}", slack_date(insight.updated_at))),
    }
    blocks.push(context(vec![when]));

    if !insight.origin.is_empty() {
        let mut lines = Vec::new();
        for (i, c) in insight.origin.iter().take(ORIGINS_SHOWN).enumerate() {
            lines.push(format!(
                "*{}. {}* — {:.0}%",
                i + 1,
                line(c.service.as_str()),
                c.score * 100.0
            ));
            for e in c.evidence.iter().take(EVIDENCE_SHOWN) {
                lines.push(format!("      • {}", line(e)));
            }
            if c.evidence.len() > EVIDENCE_SHOWN {
                lines.push(format!(
                    "      _… +{} more evidence_",
                    c.evidence.len() - EVIDENCE_SHOWN
                ));
            }
        }
        if insight.origin.len() > ORIGINS_SHOWN {
            lines.push(format!(
                "_… +{} more candidates_",
                insight.origin.len() - ORIGINS_SHOWN
            ));
        }
        blocks.push(section(list_text(
            "*Probable origin*",
            &lines,
            MAX_SECTION_TEXT,
        )));
    }
    if !insight.impact.is_empty() {
        let lines: Vec<String> = insight
            .impact
            .iter()
            .map(|l| format!("• {}", line(l)))
            .collect();
        blocks.push(section(list_text("*Impact*", &lines, MAX_SECTION_TEXT)));
    }
    if !insight.suspect_changes.is_empty() {
        let lines: Vec<String> = insight
            .suspect_changes
            .iter()
            .map(|c| {
                let version = c
                    .version
                    .as_deref()
                    .map(|v| format!(" `{}`", line(v)))
                    .unwrap_or_default();
                format!(
                    "• `{}` *{}* {}{version}: {}",
                    c.ts.clock(),
                    line(c.service.as_str()),
                    line(c.change_kind.as_str()),
                    line(&c.description)
                )
            })
            .collect();
        blocks.push(section(list_text(
            "*Suspect changes*",
            &lines,
            MAX_SECTION_TEXT,
        )));
    }
    match insight.novelty {
        Some(Novelty::New) => blocks.push(context(vec![":new: Never seen before.".into()])),
        Some(Novelty::Frequent) => blocks.push(context(vec![
            ":repeat: Frequent: this keeps happening.".into(),
        ])),
        _ => {}
    }
    for (i, p) in insight.similar.iter().take(SIMILAR_SHOWN).enumerate() {
        let mut text = format!(
            "*Seen before* · `{}` ({:.0}% similar): {}",
            line(&p.id),
            p.similarity * 100.0,
            line(&p.title)
        );
        if let Some(r) = &p.remedy {
            text.push_str(&format!("\nRemedy that worked: *{}*", line(r)));
        }
        if let Some(secs) = p.resolved_in_secs {
            text.push_str(&format!("\nResolved in {} min", secs / 60));
        }
        blocks.push(section(text));
        if let Some(r) = &p.remedy {
            let value = ButtonValue {
                incident: insight.id.clone(),
                remedy: Some(r.clone()),
            };
            blocks.push(json!({
                "type": "actions",
                "block_id": format!("kaizen_remedy_{i}"),
                "elements": [
                    button("This remedy worked", &format!("{ACTION_REMEDY_WORKED}_{i}"), &value, Some("primary")),
                    button("Not helpful", &format!("{ACTION_NOT_HELPFUL}_{i}"), &value, None),
                ],
            }));
        }
    }
    if insight.similar.len() > SIMILAR_SHOWN {
        blocks.push(context(vec![format!(
            "_… +{} more similar incidents_",
            insight.similar.len() - SIMILAR_SHOWN
        )]));
    }
    if insight.status != IncidentStatus::Resolved {
        let value = ButtonValue {
            incident: insight.id.clone(),
            remedy: None,
        };
        blocks.push(json!({
            "type": "actions",
            "block_id": "kaizen_incident",
            "elements": [
                button("Acknowledge", ACTION_ACKNOWLEDGE, &value, Some("primary")),
                button("Resolve", ACTION_RESOLVE, &value, None),
            ],
        }));
    }
    if blocks.len() > MAX_BLOCKS {
        // Not reachable with today's layout (at most ~15 blocks); kept so a future section
        // cannot make the whole message invalid. The last block (the buttons) survives.
        let last = blocks.pop();
        blocks.truncate(MAX_BLOCKS - 1);
        blocks.extend(last);
    }
    SlackMessage {
        text: fallback_text(insight),
        blocks,
    }
}

/// One thread reply: its text and how many timeline entries it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineReply {
    /// mrkdwn, one entry per line.
    pub text: String,
    /// Entries in it (the first `entries` of those given).
    pub entries: usize,
}

/// Thread replies for new timeline entries, in the order given, packed into as few messages
/// as fit [`MAX_REPLY_TEXT`] (each message is one request against the channel's rate limit).
pub fn render_timeline(entries: &[&TimelineEntry]) -> Vec<TimelineReply> {
    let mut out = Vec::new();
    let mut current = TimelineReply {
        text: String::new(),
        entries: 0,
    };
    for e in entries {
        let l = format!("`{}` {}", e.ts.clock(), line(&e.text));
        if current.entries > 0 && len16(&current.text) + 1 + len16(&l) > MAX_REPLY_TEXT {
            out.push(std::mem::replace(
                &mut current,
                TimelineReply {
                    text: String::new(),
                    entries: 0,
                },
            ));
        }
        if current.entries > 0 {
            current.text.push('\n');
        }
        current.text.push_str(&l);
        current.entries += 1;
    }
    if current.entries > 0 {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests;
