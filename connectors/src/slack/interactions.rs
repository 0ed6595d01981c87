//! Button clicks coming back from Slack: request signatures and feedback events.
//!
//! For: what an HTTP endpoint (Slack app → *Interactivity* → Request URL) does with a POST —
//! verify Slack's v0 request signature over the raw body, then turn `block_actions` clicks on
//! kaizen's buttons into [`Feedback`] events for the engine. Transport-independent: the server
//! hands in headers, the raw body and the time, and maps [`Rejection::status`] to its answer.
//! Not for: serving HTTP, or answering Slack beyond the status (the next insight version
//! updates the message anyway).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use kaizen_model::{Event, EventBody, Feedback, FeedbackAction, Symbol, Timestamp};

use super::blocks::{
    ButtonValue, ACTION_ACKNOWLEDGE, ACTION_NOT_HELPFUL, ACTION_REMEDY_WORKED, ACTION_RESOLVE,
};
use super::config::Secret;

/// How far a request's timestamp may be from now: Slack's recommendation against replays.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Header carrying the request's unix time.
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// Header carrying `v0=` + hex HMAC-SHA256.
pub const SIGNATURE_HEADER: &str = "x-slack-signature";

/// Why a request's signature was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Slack-Request-Timestamp`.
    #[error("missing X-Slack-Request-Timestamp header")]
    MissingTimestamp,
    /// No `X-Slack-Signature`.
    #[error("missing X-Slack-Signature header")]
    MissingSignature,
    /// The timestamp is not a unix time in seconds.
    #[error("X-Slack-Request-Timestamp is not a unix time")]
    BadTimestamp,
    /// The timestamp is more than [`MAX_CLOCK_SKEW`] from now: a replay, or a skewed clock.
    #[error("request timestamp is {0} s from now (more than 5 minutes)")]
    Stale(u64),
    /// Not `v0=` followed by 64 hex digits.
    #[error("X-Slack-Signature is not v0=<64 hex digits>")]
    Malformed,
    /// Well-formed but wrong: another secret, or a changed body.
    #[error("signature does not match")]
    Mismatch,
}

/// Why an (authentic) interaction payload could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InteractionError {
    /// The form body has no `payload` field.
    #[error("no payload= field in the form body")]
    NoPayload,
    /// `payload` is not the JSON Slack sends.
    #[error("payload is not valid interaction JSON: {0}")]
    Json(String),
    /// One of kaizen's buttons carried a value kaizen did not write.
    #[error("button {action_id} has an unreadable value: {reason}")]
    BadValue {
        /// The button.
        action_id: String,
        /// Why.
        reason: String,
    },
}

/// Why [`handle_interaction`] refused a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not from Slack (or replayed): answer 401.
    #[error("unauthorized: {0}")]
    Unauthorized(#[from] SignatureError),
    /// From Slack but unreadable: answer 400.
    #[error("bad request: {0}")]
    BadRequest(#[from] InteractionError),
}

impl Rejection {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::Unauthorized(_) => 401,
            Rejection::BadRequest(_) => 400,
        }
    }
}

/// Verifies Slack's v0 signature: `v0=` + hex(HMAC-SHA256(secret, "v0:{ts}:{raw body}")),
/// with the timestamp within 5 minutes of `now` in either direction. The comparison is
/// constant-time (`Mac::verify_slice`), so response timing leaks nothing about the expected
/// signature. The body must be the raw bytes as received: re-encoding a parsed form changes
/// them.
pub fn verify_signature(
    signing_secret: &Secret,
    timestamp_header: &str,
    raw_body: &[u8],
    signature_header: &str,
    now: SystemTime,
) -> Result<(), SignatureError> {
    let ts_text = timestamp_header.trim();
    let ts: u64 = ts_text.parse().map_err(|_| SignatureError::BadTimestamp)?;
    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let skew = now_secs.abs_diff(ts);
    if skew > MAX_CLOCK_SKEW.as_secs() {
        return Err(SignatureError::Stale(skew));
    }
    let hex = signature_header
        .trim()
        .strip_prefix("v0=")
        .ok_or(SignatureError::Malformed)?;
    let expected = decode_hex(hex).ok_or(SignatureError::Malformed)?;
    if expected.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(signing_secret.expose().as_bytes())
        .map_err(|_| SignatureError::Mismatch)?;
    mac.update(b"v0:");
    mac.update(ts_text.as_bytes());
    mac.update(b":");
    mac.update(raw_body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// The `X-Slack-Signature` value Slack would send; for tests and local tooling.
pub fn sign(signing_secret: &Secret, timestamp: &str, raw_body: &[u8]) -> String {
    let mut out = String::from("v0=");
    if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(signing_secret.expose().as_bytes()) {
        mac.update(b"v0:");
        mac.update(timestamp.as_bytes());
        mac.update(b":");
        mac.update(raw_body);
        for b in mac.finalize().into_bytes() {
            out.push_str(&format!("{b:02x}"));
        }
    }
    out
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes()
        .chunks_exact(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    user: Option<User>,
    #[serde(default)]
    actions: Vec<Action>,
}

#[derive(Deserialize)]
struct User {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct Action {
    #[serde(default)]
    action_id: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    action_ts: Option<String>,
}

fn action_of(action_id: &str) -> Option<FeedbackAction> {
    let prefixed = |prefix: &str| {
        action_id
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('_'))
    };
    if action_id == ACTION_ACKNOWLEDGE {
        Some(FeedbackAction::Acknowledge)
    } else if action_id == ACTION_RESOLVE {
        Some(FeedbackAction::Resolve)
    } else if prefixed(ACTION_REMEDY_WORKED) {
        Some(FeedbackAction::RemedyWorked)
    } else if prefixed(ACTION_NOT_HELPFUL) {
        Some(FeedbackAction::NotHelpful)
    } else {
        None
    }
}

/// Decodes an interaction request body (`application/x-www-form-urlencoded`, one `payload`
/// field holding JSON) into feedback events, one per click on a kaizen button. Other
/// interaction types (shortcuts, modals) and other apps' buttons give no events. The event
/// time is the click's `action_ts` (the system clock when absent); the service is empty,
/// because the feedback names its incident.
pub fn parse_interaction(raw_body: &[u8]) -> Result<Vec<Event>, InteractionError> {
    let payload = form_urlencoded::parse(raw_body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or(InteractionError::NoPayload)?;
    let payload: Payload =
        serde_json::from_str(&payload).map_err(|e| InteractionError::Json(e.to_string()))?;
    if payload.kind != "block_actions" {
        tracing::debug!("ignored Slack interaction of type {}", payload.kind);
        return Ok(Vec::new());
    }
    let user = payload
        .user
        .and_then(|u| u.username.or(u.name).or(u.id))
        .filter(|u| !u.is_empty());
    let mut events = Vec::new();
    for a in payload.actions {
        let Some(action) = action_of(&a.action_id) else {
            tracing::debug!("ignored Slack action {}", a.action_id);
            continue;
        };
        let bad = |reason: String| InteractionError::BadValue {
            action_id: a.action_id.clone(),
            reason,
        };
        let value: ButtonValue = serde_json::from_str(a.value.as_deref().unwrap_or(""))
            .map_err(|e| bad(e.to_string()))?;
        if value.incident.is_empty() {
            return Err(bad("no incident".into()));
        }
        let remedy = match action {
            FeedbackAction::RemedyWorked | FeedbackAction::NotHelpful => value.remedy,
            FeedbackAction::Acknowledge | FeedbackAction::Resolve => None,
        };
        let ts = a
            .action_ts
            .as_deref()
            .and_then(|t| t.parse::<f64>().ok())
            .and_then(|t| Timestamp::from_unix_number(t).ok())
            .unwrap_or_else(now_ts);
        events.push(Event {
            ts,
            service: Symbol::default(),
            body: EventBody::Feedback(Feedback {
                incident: value.incident,
                action,
                remedy,
                user: user.clone(),
            }),
        });
    }
    Ok(events)
}

fn now_ts() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Timestamp::from_millis(ms)
}

/// Everything an HTTP endpoint does with an interaction request: finds the two signature
/// headers (names case-insensitive), verifies the signature, then parses the clicks. Answer
/// 200 with no body on `Ok` (within Slack's 3 seconds), [`Rejection::status`] otherwise.
pub fn handle_interaction<'h, H>(
    signing_secret: &Secret,
    headers: H,
    body: &[u8],
    now: SystemTime,
) -> Result<Vec<Event>, Rejection>
where
    H: IntoIterator<Item = (&'h str, &'h str)>,
{
    let mut timestamp = None;
    let mut signature = None;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(TIMESTAMP_HEADER) {
            timestamp = Some(value);
        } else if name.eq_ignore_ascii_case(SIGNATURE_HEADER) {
            signature = Some(value);
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::MissingTimestamp)?;
    let signature = signature.ok_or(SignatureError::MissingSignature)?;
    verify_signature(signing_secret, timestamp, body, signature, now)?;
    Ok(parse_interaction(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_documented_example_verifies() {
        // The worked example of Slack's "Verifying requests from Slack" page.
        let secret = Secret::new("8f742231b10e8888abcd99yyyzzz85a5");
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        let now = UNIX_EPOCH + Duration::from_secs(1531420618 + 10);
        assert_eq!(sign(&secret, "1531420618", body), sig);
        assert_eq!(
            verify_signature(&secret, "1531420618", body, sig, now),
            Ok(())
        );
    }

    #[test]
    fn hex_decoding_rejects_junk() {
        assert_eq!(decode_hex("0aff"), Some(vec![0x0a, 0xff]));
        assert_eq!(decode_hex("0g"), None);
        assert_eq!(decode_hex("abc"), None);
    }

    #[test]
    fn action_ids_map_to_feedback_actions() {
        assert_eq!(
            action_of("kaizen_acknowledge"),
            Some(FeedbackAction::Acknowledge)
        );
        assert_eq!(action_of("kaizen_resolve"), Some(FeedbackAction::Resolve));
        assert_eq!(
            action_of("kaizen_remedy_worked_2"),
            Some(FeedbackAction::RemedyWorked)
        );
        assert_eq!(
            action_of("kaizen_not_helpful_0"),
            Some(FeedbackAction::NotHelpful)
        );
        assert_eq!(action_of("kaizen_not_helpfulness"), None);
        assert_eq!(action_of("other_app_button"), None);
    }
}
