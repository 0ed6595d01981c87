//! Typed configuration of the Slack sink, and secrets that never reach a log.
//!
//! For: what an operator writes in `kaizen.toml` (`[slack]`), deserialisable with serde, with
//! defaults that are right for slack.com. Durations read as humantime strings (`"1s"`,
//! `"250ms"`) or integer milliseconds. Not for: reading the TOML file or `KAIZEN_…` overrides
//! (the CLI does that), nor channel routing (`routing.rs`).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::routing::RoutingConfig;
use super::SlackError;

/// The Web API base URL of slack.com; Enterprise Grid and tests point elsewhere.
pub const DEFAULT_API_BASE: &str = "https://slack.com/api/";

/// Everything the Slack sink needs except the secrets themselves, which are named by
/// [`SecretRef`] and loaded when the sink starts (so the config can be printed and logged).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Web API base URL, ending in `/` (a missing one is added): `https://slack.com/api/`.
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// Where the bot token (`xoxb-…`) comes from; default: env `SLACK_BOT_TOKEN`.
    #[serde(default = "SecretRef::bot_token")]
    pub token: SecretRef,
    /// Where the signing secret of the interactivity endpoint comes from; default: env
    /// `SLACK_SIGNING_SECRET`. Only the HTTP endpoint reads it, the sink does not.
    #[serde(default = "SecretRef::signing_secret")]
    pub signing_secret: SecretRef,
    /// Which channel each incident goes to.
    pub routing: RoutingConfig,
    /// JSON Lines file remembering each incident's message (`channel`, `ts`, version sent,
    /// thread entries sent), so a restart updates messages instead of reposting them. Without
    /// it a restart posts every incident anew.
    #[serde(default)]
    pub state_file: Option<PathBuf>,
    /// Pacing, retries and timeouts.
    #[serde(default)]
    pub delivery: DeliveryConfig,
}

impl SlackConfig {
    /// A config with defaults that posts everything to `default_channel`.
    pub fn new(default_channel: impl Into<String>) -> Self {
        SlackConfig {
            api_base: default_api_base(),
            token: SecretRef::bot_token(),
            signing_secret: SecretRef::signing_secret(),
            routing: RoutingConfig::new(default_channel),
            state_file: None,
            delivery: DeliveryConfig::default(),
        }
    }
}

fn default_api_base() -> String {
    DEFAULT_API_BASE.to_owned()
}

/// How messages are paced and retried.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Minimum gap between two requests to one channel: Slack allows about one message per
    /// second per channel, and bursts beyond it earn 429s.
    #[serde(with = "crate::duration_serde")]
    pub per_channel_interval: Duration,
    /// Attempts per request before it counts as failed (5xx, network errors, transient
    /// `ok:false`). 429s do not use attempts up: Slack says when to come back.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt, with up to 25% jitter.
    #[serde(with = "crate::duration_serde")]
    pub backoff_initial: Duration,
    /// Largest retry delay.
    #[serde(with = "crate::duration_serde")]
    pub backoff_max: Duration,
    /// Wait after a 429 without a usable `Retry-After` header.
    #[serde(with = "crate::duration_serde")]
    pub rate_limit_default: Duration,
    /// Whole-request timeout (connect, send, receive).
    #[serde(with = "crate::duration_serde")]
    pub request_timeout: Duration,
    /// Post new timeline entries as thread replies under the incident's message.
    pub thread_replies: bool,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            per_channel_interval: Duration::from_secs(1),
            max_attempts: 6,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            rate_limit_default: Duration::from_secs(30),
            request_timeout: Duration::from_secs(15),
            thread_replies: true,
        }
    }
}

/// Where a secret comes from: a file (wins when set; surrounding whitespace trimmed, as
/// mounted Kubernetes secrets often end in a newline) or an environment variable. Secrets are
/// never written into config files themselves, so configs can be committed and logged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretRef {
    /// Environment variable holding the secret.
    pub env: Option<String>,
    /// File holding the secret.
    pub file: Option<PathBuf>,
}

impl SecretRef {
    /// The bot token's default source: env `SLACK_BOT_TOKEN`.
    pub fn bot_token() -> Self {
        SecretRef {
            env: Some("SLACK_BOT_TOKEN".into()),
            file: None,
        }
    }

    /// The signing secret's default source: env `SLACK_SIGNING_SECRET`.
    pub fn signing_secret() -> Self {
        SecretRef {
            env: Some("SLACK_SIGNING_SECRET".into()),
            file: None,
        }
    }

    /// Reads the secret. An empty value is an error: an empty bearer token only earns
    /// `not_authed` from Slack later, far from the cause.
    pub fn load(&self) -> Result<Secret, SlackError> {
        let value = if let Some(path) = &self.file {
            std::fs::read_to_string(path)
                .map_err(|e| SlackError::Secret(format!("cannot read {}: {e}", path.display())))?
        } else if let Some(var) = &self.env {
            std::env::var(var)
                .map_err(|_| SlackError::Secret(format!("environment variable {var} is not set")))?
        } else {
            return Err(SlackError::Secret("no env or file given".into()));
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(SlackError::Secret(format!("{self:?} is empty")));
        }
        Ok(Secret::new(value))
    }
}

/// A token or signing secret. `Debug` and `Display` print `[redacted]`, so a secret inside a
/// config or error that gets logged stays secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug_and_display() {
        let s = Secret::new("xoxb-very-secret");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(s.to_string(), "[redacted]");
        assert!(!format!("{:?}", Some(&s)).contains("xoxb"));
    }

    #[test]
    fn secret_from_a_file_is_trimmed_and_wins_over_env() {
        let path = std::env::temp_dir().join(format!("kaizen-slack-secret-{}", std::process::id()));
        std::fs::write(&path, "xoxb-123\n").unwrap();
        let r = SecretRef {
            env: Some("KAIZEN_TEST_SURELY_UNSET_VAR".into()),
            file: Some(path.clone()),
        };
        assert_eq!(r.load().unwrap().expose(), "xoxb-123");
        std::fs::remove_file(&path).unwrap();
        assert!(r.load().is_err());
        let env_only = SecretRef {
            env: Some("KAIZEN_TEST_SURELY_UNSET_VAR".into()),
            file: None,
        };
        let err = env_only.load().unwrap_err().to_string();
        assert!(err.contains("KAIZEN_TEST_SURELY_UNSET_VAR"), "{err}");
    }

    #[test]
    fn config_reads_with_defaults_and_humantime_durations() {
        let cfg: SlackConfig = serde_json::from_str(
            r##"{"routing":{"default_channel":"#incidents"},
                "delivery":{"per_channel_interval":"250ms","backoff_max":2000}}"##,
        )
        .unwrap();
        assert_eq!(cfg.api_base, DEFAULT_API_BASE);
        assert_eq!(cfg.token, SecretRef::bot_token());
        assert_eq!(
            cfg.delivery.per_channel_interval,
            Duration::from_millis(250)
        );
        assert_eq!(cfg.delivery.backoff_max, Duration::from_secs(2));
        assert_eq!(cfg.delivery.max_attempts, 6);
    }
}
