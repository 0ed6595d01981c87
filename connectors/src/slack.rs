//! Slack as one living message per incident (issue 6, part 3).
//!
//! For: the [`SlackSink`] — the first version of an incident is posted (`chat.postMessage`)
//! to the channel routing picks, every later version updates that same message
//! (`chat.update`), and new timeline entries go to its thread as replies; the buttons on the
//! message come back through [`interactions`] as feedback events. Setup (app scopes,
//! interactivity URL, signing secret, routing) is in `docs/slack.md`.
//!
//! Not for: serving the interactivity endpoint over HTTP (the server mounts
//! [`interactions::handle_interaction`]), nor reading `kaizen.toml` (the CLI builds a
//! [`SlackConfig`]).
//!
//! | module | what it is for |
//! |---|---|
//! | `config` | [`SlackConfig`], [`DeliveryConfig`], secrets from env or files, redacted |
//! | `routing` | [`RoutingConfig`]: service / team / severity → channel |
//! | `blocks` | Block Kit rendering within Slack's limits |
//! | `limits` | Slack's message limits, and a checker tests run on every message |
//! | `client` | the blocking Web API client |
//! | `queue` | per-channel pacing, retries, coalescing, ordering, [`SlackStats`] |
//! | `state` | the state file that survives restarts |
//! | `interactions` | signature verification and button clicks → feedback events |

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;

use kaizen_model::Insight;

use crate::InsightSink;

pub mod blocks;
pub mod client;
pub mod config;
pub mod interactions;
pub mod limits;
mod queue;
pub mod routing;
pub mod state;

pub use blocks::{render_insight, SlackMessage};
pub use config::{DeliveryConfig, Secret, SecretRef, SlackConfig, DEFAULT_API_BASE};
pub use interactions::{
    handle_interaction, parse_interaction, verify_signature, InteractionError, Rejection,
    SignatureError,
};
pub use limits::check_message_limits;
pub use queue::SlackStats;
pub use routing::RoutingConfig;

pub use client::RequestLatency;
use client::SlackClient;
use queue::{Shared, Worker};
use state::StateFile;

/// Why the Slack sink could not start.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    /// A secret could not be read.
    #[error("Slack secret: {0}")]
    Secret(String),
    /// The configuration is unusable.
    #[error("Slack config: {0}")]
    Config(String),
    /// The state file could not be read or opened.
    #[error("Slack state file {path}: {source}")]
    State {
        /// The file.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// The delivery thread could not be started.
    #[error("cannot start the Slack delivery thread: {0}")]
    Spawn(io::Error),
}

/// Delivers insights to Slack. `emit` only queues (it never waits on the network); `flush`
/// waits until everything emitted so far is delivered or has failed for good, and fails if
/// anything did — so a Kafka source can commit offsets after a successful flush and replay
/// otherwise (re-emitting a delivered `(id, version)` sends nothing).
pub struct SlackSink {
    shared: Arc<Shared>,
    latency: RequestLatency,
    routing: RoutingConfig,
    worker: Option<JoinHandle<()>>,
}

/// A cloneable view of a sink's counters, for a metrics endpoint that outlives borrows of
/// the sink.
#[derive(Clone)]
pub struct SlackStatsHandle {
    shared: Arc<Shared>,
    latency: RequestLatency,
}

impl SlackStatsHandle {
    /// The counters now.
    pub fn snapshot(&self) -> SlackStats {
        self.shared.stats()
    }

    /// The request latency histograms.
    pub fn latency(&self) -> &RequestLatency {
        &self.latency
    }
}

impl SlackSink {
    /// Starts the sink, reading the bot token from `config.token`.
    pub fn new(config: SlackConfig) -> Result<Self, SlackError> {
        let token = config.token.load()?;
        Self::with_token(config, token)
    }

    /// Starts the sink with a token already loaded: loads the state file, then starts the
    /// delivery thread.
    pub fn with_token(config: SlackConfig, token: Secret) -> Result<Self, SlackError> {
        if config.routing.default_channel.trim().is_empty() {
            return Err(SlackError::Config(
                "routing.default_channel must name a channel".into(),
            ));
        }
        let client = SlackClient::new(&config.api_base, &token, config.delivery.request_timeout)?;
        let (state_file, records) = match &config.state_file {
            Some(path) => {
                let (file, records) =
                    StateFile::open(path).map_err(|source| SlackError::State {
                        path: path.display().to_string(),
                        source,
                    })?;
                tracing::info!(
                    "Slack state: {} incident message(s) from {}",
                    records.len(),
                    path.display()
                );
                (Some(file), records)
            }
            None => (None, Default::default()),
        };
        let shared = Shared::new(records);
        let latency = client.latency();
        let worker = Worker {
            shared: shared.clone(),
            client,
            config: config.delivery.clone(),
            state_file,
        };
        let handle = std::thread::Builder::new()
            .name("kaizen-slack".into())
            .spawn(move || worker.run())
            .map_err(SlackError::Spawn)?;
        Ok(SlackSink {
            shared,
            latency,
            routing: config.routing,
            worker: Some(handle),
        })
    }

    /// The counters now.
    pub fn stats(&self) -> SlackStats {
        self.shared.stats()
    }

    /// A handle on the counters that can be kept elsewhere.
    pub fn stats_handle(&self) -> SlackStatsHandle {
        SlackStatsHandle {
            shared: self.shared.clone(),
            latency: self.latency.clone(),
        }
    }

    /// Flushes, then stops the delivery thread.
    pub fn close(mut self) -> io::Result<()> {
        let result = self.flush();
        self.stop();
        result
    }

    fn stop(&mut self) {
        self.shared.stop();
        if let Some(h) = self.worker.take() {
            if h.join().is_err() {
                tracing::error!("the Slack delivery thread panicked");
            }
        }
    }
}

impl InsightSink for SlackSink {
    fn emit(&mut self, insight: &Insight) -> io::Result<()> {
        if self.shared.enqueue(insight, self.routing.route(insight)) {
            Ok(())
        } else {
            Err(io::Error::other("the Slack delivery thread has stopped"))
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.shared.wait_idle().map_err(|failures| {
            let shown: Vec<&str> = failures.iter().take(3).map(String::as_str).collect();
            io::Error::other(format!(
                "{} Slack deliver{} failed: {}",
                failures.len(),
                if failures.len() == 1 { "y" } else { "ies" },
                shown.join("; ")
            ))
        })
    }
}

impl Drop for SlackSink {
    /// Stops after the request in flight; whatever is still queued is logged, not sent (call
    /// `flush` or `close` first to deliver it).
    fn drop(&mut self) {
        self.stop();
    }
}
