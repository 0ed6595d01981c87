//! Unit tests of the Block Kit rendering: truncation helpers and the layout of one card.

use kaizen_model::{ChangeRef, OriginCandidate, SimilarIncident, Symbol, TimelineEntry, Timestamp};

use super::*;
use crate::slack::limits::{check_message_limits, MAX_REPLY_TEXT};

fn insight() -> Insight {
    Insight {
        id: "inc-00000000000000aa".into(),
        version: 2,
        status: IncidentStatus::Open,
        title: "HighErrorRate on payments, impacting web".into(),
        severity: Severity::Critical,
        services: vec![Symbol::new("payments"), Symbol::new("web")],
        impacted: vec![Symbol::new("web")],
        impact: vec!["web: 23% of requests fail (SLO 99.9%)".into()],
        origin: vec![OriginCandidate {
            service: Symbol::new("payments"),
            score: 0.71,
            evidence: vec!["first to degrade".into(), "deploy 2 min before".into()],
            deviation: None,
        }],
        suspect_changes: vec![ChangeRef {
            ts: Timestamp::from_millis(3_590_000),
            service: Symbol::new("payments"),
            change_kind: Symbol::new("deploy"),
            version: Some("v1.2.3".into()),
            description: "payments v1.2.3 <canary>".into(),
        }],
        similar: vec![SimilarIncident {
            id: "inc-00000000000000bb".into(),
            title: "payments errors".into(),
            similarity: 0.83,
            remedy: Some("roll back payments".into()),
            resolved_in_secs: Some(720),
        }],
        novelty: Some(Novelty::Rare),
        timeline: vec![TimelineEntry {
            ts: Timestamp::from_millis(3_600_000),
            text: "payments: errors".into(),
        }],
        opened_at: Timestamp::from_millis(3_600_000),
        updated_at: Timestamp::from_millis(3_660_000),
        resolved_at: None,
        explain: Vec::new(),
    }
}

fn payload(m: &SlackMessage) -> Value {
    json!({"text": m.text, "blocks": m.blocks})
}

#[test]
fn truncation_counts_utf16_and_keeps_entities_whole() {
    assert_eq!(truncate("abcdef", 6), "abcdef");
    assert_eq!(truncate("abcdef", 4), "abc…");
    // An emoji is two UTF-16 units: it does not fit in the last slot.
    assert_eq!(truncate("ab😀cd", 4), "ab…");
    let escaped = escape("a & b");
    assert_eq!(escaped, "a &amp; b");
    assert_eq!(truncate_mrkdwn(&escaped, 6), "a …");
    assert_eq!(escape("x\ny<z>"), "x y&lt;z&gt;");
}

#[test]
fn lists_end_in_plus_n_more_when_they_do_not_fit() {
    let lines: Vec<String> = (0..100)
        .map(|i| format!("line {i:03} {}", "x".repeat(90)))
        .collect();
    let text = list_text("*H*", &lines, 1000);
    assert!(len16(&text) <= 1000, "{}", len16(&text));
    assert!(text.ends_with(" more_"), "{text}");
    let shown = text.lines().count() - 2;
    assert!(text.contains(&format!("+{} more", 100 - shown)), "{text}");
}

#[test]
fn card_has_the_terminal_cards_content_and_buttons() {
    let m = render_insight(&insight());
    check_message_limits(&payload(&m)).unwrap();
    let all = serde_json::to_string(&m.blocks).unwrap();
    assert_eq!(m.blocks[0]["type"], "header");
    assert_eq!(
        m.blocks[0]["text"]["text"],
        "HighErrorRate on payments, impacting web"
    );
    for needle in [
        "*Probable origin*",
        "*1. payments* — 71%",
        "first to degrade",
        "*Impact*",
        "*Suspect changes*",
        "payments v1.2.3 &lt;canary&gt;",
        "Remedy that worked: *roll back payments*",
        "Resolved in 12 min",
        "<!date^3600^",
    ] {
        assert!(all.contains(needle), "missing {needle} in {all}");
    }
    let buttons: Vec<&Value> = m
        .blocks
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().into_iter().flatten())
        .collect();
    let ids: Vec<&str> = buttons
        .iter()
        .filter_map(|b| b["action_id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "kaizen_remedy_worked_0",
            "kaizen_not_helpful_0",
            "kaizen_acknowledge",
            "kaizen_resolve"
        ]
    );
    let value: ButtonValue = serde_json::from_str(buttons[0]["value"].as_str().unwrap()).unwrap();
    assert_eq!(value.incident, "inc-00000000000000aa");
    assert_eq!(value.remedy.as_deref(), Some("roll back payments"));
    assert!(m
        .text
        .starts_with("[CRITICAL] open: HighErrorRate on payments"));
}

#[test]
fn resolved_cards_drop_acknowledge_and_resolve_but_keep_remedy_votes() {
    let mut i = insight();
    i.status = IncidentStatus::Resolved;
    i.resolved_at = Some(Timestamp::from_millis(3_600_000 + 42 * 60_000));
    let m = render_insight(&i);
    let all = serde_json::to_string(&m.blocks).unwrap();
    assert!(all.contains("Resolved after 42 min"), "{all}");
    assert!(!all.contains("kaizen_acknowledge"));
    assert!(all.contains("kaizen_remedy_worked_0"));
}

#[test]
fn a_huge_remedy_still_gives_a_valid_button_value() {
    let mut i = insight();
    i.similar[0].remedy = Some("\"quoted\" ".repeat(1000));
    i.title = "t".repeat(10_000);
    let m = render_insight(&i);
    check_message_limits(&payload(&m)).unwrap();
    let value = m.blocks.iter().find(|b| b["type"] == "actions").unwrap()["elements"][0]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let v: ButtonValue = serde_json::from_str(&value).unwrap();
    assert!(v.remedy.unwrap().ends_with('…'));
}

#[test]
fn timeline_replies_pack_entries_into_few_messages() {
    let entries: Vec<TimelineEntry> = (0..200)
        .map(|i| TimelineEntry {
            ts: Timestamp::from_millis(i * 1000),
            text: format!("entry {i} {}", "y".repeat(40)),
        })
        .collect();
    let refs: Vec<&TimelineEntry> = entries.iter().collect();
    let replies = render_timeline(&refs);
    assert!(replies.len() > 1 && replies.len() < 10, "{}", replies.len());
    assert_eq!(replies.iter().map(|r| r.entries).sum::<usize>(), 200);
    assert!(replies.iter().all(|r| len16(&r.text) <= MAX_REPLY_TEXT));
    assert!(replies[0].text.starts_with("`00:00:00` entry 0 "));
}
