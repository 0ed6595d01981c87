//! Delivery: per-channel queues drained by one worker thread, paced, retried, coalesced.
//!
//! For: turning "the newest version of incident X" into the right sequence of Web API calls —
//! `chat.postMessage` the first time, `chat.update` of the same message afterwards, then thread
//! replies for timeline entries not yet replied — one request at a time, at most one per
//! `per_channel_interval` per channel, honouring 429 `Retry-After`, backing off on 5xx and
//! network errors, and remembering each message in the state file. Not for: rendering
//! (`blocks.rs`) or HTTP (`client.rs`).
//!
//! Each incident is queued at most once, in the channel its message lives in; a newer version
//! emitted while one is queued replaces it (coalescing), so memory is bounded by the number of
//! incidents, not versions, and a burst of versions costs one `chat.update`. An incident's
//! calls are strictly ordered (post or update, then its replies), and a channel's head waits
//! out its backoff, so incidents in one channel keep their order too. Nothing is dropped
//! silently: a request that fails for good is logged, counted and reported by the next
//! `flush`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use kaizen_model::Insight;

use super::blocks::{render_insight, render_timeline, SlackMessage};
use super::client::{CallError, Posted, SlackClient};
use super::config::DeliveryConfig;
use super::state::{entry_key, is_truncation_marker, MessageRecord, StateFile};

/// Counters of everything the Slack sink did, for logs and `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlackStats {
    /// New messages posted (`chat.postMessage` without thread).
    pub posted: u64,
    /// Messages updated in place (`chat.update`).
    pub updated: u64,
    /// Thread replies posted.
    pub replies: u64,
    /// Requests retried (after a 429, 5xx, network error or transient `ok:false`).
    pub retries: u64,
    /// Of those, because Slack rate-limited.
    pub rate_limited: u64,
    /// Requests that failed for good (or state that could not be saved); each one is logged.
    pub failures: u64,
    /// Versions replaced by a newer one before they were sent.
    pub coalesced: u64,
    /// Incidents waiting to be delivered right now.
    pub queue_depth: u64,
}

#[derive(Default)]
struct IncidentState {
    /// The message as delivered (None: not posted yet).
    record: Option<MessageRecord>,
    /// The newest version not yet fully delivered.
    pending: Option<Insight>,
    /// Bumped on every emit, so the worker knows whether `pending` changed under it.
    generation: u64,
    /// The channel queue holding this incident, if queued.
    queued_on: Option<String>,
    /// Failed attempts of the current request.
    attempts: u32,
}

#[derive(Default)]
struct Inner {
    incidents: HashMap<String, IncidentState>,
    /// Queued incident ids by channel as queued: the routed name for a first post, the id
    /// Slack answered afterwards.
    queues: HashMap<String, VecDeque<String>>,
    /// Per real channel (see [`Inner::canonical`]): no request before then (pacing,
    /// `Retry-After` or backoff). Entries stay; channels are few.
    next_at: HashMap<String, Instant>,
    /// Channel as routed (a name) → channel id Slack answered, so that a name's queue and the
    /// id's queue share one pacing slot and later incidents go straight to the id.
    aliases: HashMap<String, String>,
    in_flight: bool,
    failures: Vec<String>,
    stats: SlackStats,
    stop: bool,
    worker_gone: bool,
}

impl Inner {
    fn has_work(&self) -> bool {
        self.in_flight || self.queues.values().any(|q| !q.is_empty())
    }

    /// The channel a queue key stands for: its id once Slack told it.
    fn canonical<'a>(&'a self, key: &'a str) -> &'a str {
        self.aliases.get(key).map_or(key, String::as_str)
    }

    /// When the queue `key` may send next.
    fn ready_at(&self, key: &str) -> Option<Instant> {
        self.next_at.get(self.canonical(key)).copied()
    }
}

/// State shared by the sink (producer side) and the worker.
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    work: Condvar,
    idle: Condvar,
}

impl Shared {
    pub(crate) fn new(records: HashMap<String, MessageRecord>) -> Arc<Shared> {
        let mut inner = Inner::default();
        for (id, record) in records {
            let state = IncidentState {
                record: Some(record),
                ..IncidentState::default()
            };
            inner.incidents.insert(id, state);
        }
        Arc::new(Shared {
            inner: Mutex::new(inner),
            work: Condvar::new(),
            idle: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock means the worker panicked mid-update; the counters and queues are
        // still consistent enough to report and drain.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues the newest version of an incident; `route` names the channel of a first post.
    pub(crate) fn enqueue(&self, insight: &Insight, route: &str) -> bool {
        let mut inner = self.lock();
        if inner.worker_gone {
            return false;
        }
        let alias = inner.aliases.get(route).cloned();
        let inner = &mut *inner;
        let state = inner.incidents.entry(insight.id.clone()).or_default();
        if let Some(p) = &state.pending {
            if p.version > insight.version {
                return true; // an older version replayed late: the newer one stands
            }
            if p.version < insight.version {
                inner.stats.coalesced += 1;
            }
        }
        state.pending = Some(insight.clone());
        state.generation += 1;
        if state.queued_on.is_none() {
            let key = match &state.record {
                Some(r) => r.channel.clone(),
                None => alias.unwrap_or_else(|| route.to_owned()),
            };
            state.queued_on = Some(key.clone());
            inner
                .queues
                .entry(key)
                .or_default()
                .push_back(insight.id.clone());
        }
        self.work.notify_one();
        true
    }

    /// Blocks until nothing is queued or in flight; returns the failures since the last call.
    pub(crate) fn wait_idle(&self) -> Result<(), Vec<String>> {
        let mut inner = self.lock();
        while inner.has_work() && !inner.worker_gone {
            inner = self.idle.wait(inner).unwrap_or_else(|p| p.into_inner());
        }
        let mut failures = std::mem::take(&mut inner.failures);
        if inner.worker_gone && inner.has_work() {
            failures.push("the Slack worker stopped with deliveries queued".into());
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures)
        }
    }

    pub(crate) fn stats(&self) -> SlackStats {
        let inner = self.lock();
        let mut s = inner.stats;
        s.queue_depth = inner.queues.values().map(|q| q.len() as u64).sum();
        s
    }

    pub(crate) fn stop(&self) {
        self.lock().stop = true;
        self.work.notify_all();
    }
}

/// One Web API call, planned from an incident's state.
enum Step {
    Post {
        channel: String,
        version: u32,
        message: SlackMessage,
    },
    Update {
        channel: String,
        ts: String,
        version: u32,
        message: SlackMessage,
    },
    Reply {
        channel: String,
        thread_ts: String,
        text: String,
        keys: Vec<String>,
    },
}

/// What the incident needs next, given the message as delivered and the newest version.
fn plan(
    record: Option<&MessageRecord>,
    insight: &Insight,
    queue_key: &str,
    replies: bool,
) -> Option<Step> {
    let Some(r) = record else {
        return Some(Step::Post {
            channel: queue_key.to_owned(),
            version: insight.version,
            message: render_insight(insight),
        });
    };
    if insight.version > r.version {
        return Some(Step::Update {
            channel: r.channel.clone(),
            ts: r.ts.clone(),
            version: insight.version,
            message: render_insight(insight),
        });
    }
    if !replies {
        return None;
    }
    let fresh: Vec<_> = insight
        .timeline
        .iter()
        .filter(|e| !is_truncation_marker(e))
        .map(|e| (entry_key(e), e))
        .filter(|(k, _)| !r.entries.contains(k))
        .collect();
    let entries: Vec<_> = fresh.iter().map(|(_, e)| *e).collect();
    let first = render_timeline(&entries).into_iter().next()?;
    let keys = fresh
        .into_iter()
        .take(first.entries)
        .map(|(k, _)| k)
        .collect();
    Some(Step::Reply {
        channel: r.channel.clone(),
        thread_ts: r.ts.clone(),
        text: first.text,
        keys,
    })
}

/// The worker: owns the client and the state file, drains the queues until stopped.
pub(crate) struct Worker {
    pub(crate) shared: Arc<Shared>,
    pub(crate) client: SlackClient,
    pub(crate) config: DeliveryConfig,
    pub(crate) state_file: Option<StateFile>,
}

/// Marks the worker gone however it ends (a panic included), so `flush` cannot wait forever.
struct GoneOnDrop(Arc<Shared>);

impl Drop for GoneOnDrop {
    fn drop(&mut self) {
        let mut inner = self.0.lock();
        inner.worker_gone = true;
        inner.in_flight = false;
        drop(inner);
        self.0.idle.notify_all();
    }
}

/// The incident the worker is serving, as it was when picked.
struct Job {
    key: String,
    id: String,
    record: Option<MessageRecord>,
    insight: Insight,
    generation: u64,
}

/// Takes an incident off its channel queue; its pending version is done with (delivered or
/// failed for good).
fn unqueue(inner: &mut Inner, key: &str, id: &str) {
    if let Some(q) = inner.queues.get_mut(key) {
        q.retain(|x| x != id);
    }
    if let Some(s) = inner.incidents.get_mut(id) {
        s.pending = None;
        s.queued_on = None;
        s.attempts = 0;
    }
}

impl Worker {
    pub(crate) fn run(mut self) {
        let _gone = GoneOnDrop(self.shared.clone());
        while let Some(job) = self.next_job() {
            let replies = self.config.thread_replies;
            match plan(job.record.as_ref(), &job.insight, &job.key, replies) {
                Some(step) => {
                    let result = self.send(&step);
                    self.apply(&job, step, result);
                }
                None => {
                    let mut inner = self.shared.lock();
                    let unchanged = inner
                        .incidents
                        .get(&job.id)
                        .is_some_and(|s| s.generation == job.generation);
                    if unchanged {
                        unqueue(&mut inner, &job.key, &job.id);
                    }
                }
            }
        }
        let inner = self.shared.lock();
        let left: usize = inner.queues.values().map(VecDeque::len).sum();
        if left > 0 {
            tracing::warn!("Slack sink stopped with {left} incident(s) not delivered");
        }
    }

    /// Waits for the channel whose head is due first; returns its head, marked in flight.
    fn next_job(&self) -> Option<Job> {
        let mut inner = self.shared.lock();
        loop {
            inner.in_flight = false;
            if inner.stop {
                return None;
            }
            let now = Instant::now();
            let due = inner
                .queues
                .iter()
                .filter(|(_, q)| !q.is_empty())
                .map(|(k, _)| (k, inner.ready_at(k).unwrap_or(now)))
                .min_by_key(|(_, at)| *at)
                .map(|(k, at)| (k.clone(), at));
            let Some((key, at)) = due else {
                self.shared.idle.notify_all();
                inner = self
                    .shared
                    .work
                    .wait(inner)
                    .unwrap_or_else(|p| p.into_inner());
                continue;
            };
            if at > now {
                inner = self
                    .shared
                    .work
                    .wait_timeout(inner, at - now)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
                continue;
            }
            let Some(id) = inner.queues.get(&key).and_then(|q| q.front().cloned()) else {
                continue;
            };
            let job = inner.incidents.get(&id).and_then(|s| {
                Some(Job {
                    key: key.clone(),
                    id: id.clone(),
                    record: s.record.clone(),
                    insight: s.pending.clone()?,
                    generation: s.generation,
                })
            });
            match job {
                Some(job) => {
                    inner.in_flight = true;
                    return Some(job);
                }
                // Nothing pending (cannot happen for a queued incident): unqueue, not spin.
                None => unqueue(&mut inner, &key, &id),
            }
        }
    }

    fn send(&self, step: &Step) -> Result<Posted, CallError> {
        match step {
            Step::Post {
                channel, message, ..
            } => self.client.post_message(channel, message, None),
            Step::Update {
                channel,
                ts,
                message,
                ..
            } => self.client.update_message(channel, ts, message),
            Step::Reply {
                channel,
                thread_ts,
                text,
                ..
            } => {
                let message = SlackMessage {
                    text: text.clone(),
                    blocks: Vec::new(),
                };
                self.client.post_message(channel, &message, Some(thread_ts))
            }
        }
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(20);
        let base = self
            .config
            .backoff_initial
            .saturating_mul(1u32 << exp)
            .min(self.config.backoff_max);
        // Up to 25% jitter, so many kaizen instances behind one outage do not retry in step.
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        base + base.mul_f64(f64::from(nanos % 1000) / 4000.0)
    }

    fn apply(&mut self, job: &Job, step: Step, result: Result<Posted, CallError>) {
        let (key, id) = (job.key.as_str(), job.id.as_str());
        let now = Instant::now();
        let interval = self.config.per_channel_interval;
        let max_attempts = self.config.max_attempts.max(1);
        let mut inner = self.shared.lock();
        let Inner {
            incidents,
            aliases,
            stats,
            ..
        } = &mut *inner;
        let Some(state) = incidents.get_mut(id) else {
            return;
        };
        let mut to_save = None;
        let outcome = match result {
            Ok(posted) => {
                state.attempts = 0;
                match step {
                    Step::Post {
                        channel, version, ..
                    } => {
                        stats.posted += 1;
                        if posted.channel != channel {
                            aliases.insert(channel, posted.channel.clone());
                        }
                        state.record = Some(MessageRecord {
                            incident: id.to_owned(),
                            channel: posted.channel,
                            ts: posted.ts,
                            version,
                            entries: Vec::new(),
                            saved_at: 0,
                        });
                    }
                    Step::Update { version, .. } => {
                        stats.updated += 1;
                        if let Some(r) = state.record.as_mut() {
                            r.version = r.version.max(version);
                        }
                    }
                    Step::Reply { keys, .. } => {
                        stats.replies += 1;
                        if let Some(r) = state.record.as_mut() {
                            r.entries.extend(keys);
                        }
                    }
                }
                to_save = state.record.clone();
                Ok(interval)
            }
            Err(CallError::Slack(e))
                if e == "message_not_found" && matches!(step, Step::Update { .. }) =>
            {
                // Someone deleted the message: post a new one rather than fail forever.
                tracing::warn!("Slack message of {id} was deleted; posting it again");
                state.record = None;
                state.attempts = 0;
                Ok(interval)
            }
            Err(CallError::RateLimited { retry_after }) => {
                stats.retries += 1;
                stats.rate_limited += 1;
                let delay = retry_after.unwrap_or(self.config.rate_limit_default);
                tracing::info!("Slack rate-limited {key}: retrying {id} in {delay:?}");
                Ok(delay)
            }
            Err(e) if e.is_retryable() && state.attempts + 1 < max_attempts => {
                stats.retries += 1;
                state.attempts += 1;
                let delay = self.backoff(state.attempts);
                tracing::warn!(
                    "Slack {e} for {id}; attempt {} of {max_attempts} in {delay:?}",
                    state.attempts + 1
                );
                Ok(delay)
            }
            Err(e) => {
                let hint = match e.slack_error() {
                    Some("not_in_channel") => " (invite the bot to the channel)",
                    Some("channel_not_found") => {
                        " (check the routing; a private channel needs the bot invited)"
                    }
                    Some("invalid_auth" | "not_authed" | "token_revoked" | "account_inactive") => {
                        " (check the bot token)"
                    }
                    Some("missing_scope") => " (the app needs the chat:write scope)",
                    _ => "",
                };
                let attempts = if e.is_retryable() {
                    format!(" after {} attempts", state.attempts + 1)
                } else {
                    String::new()
                };
                Err(format!("{id} in {key}: {e}{attempts}{hint}"))
            }
        };
        let delay = match outcome {
            Ok(delay) => delay,
            Err(msg) => {
                tracing::error!("Slack delivery failed: {msg}");
                inner.stats.failures += 1;
                inner.failures.push(msg);
                let newer = inner
                    .incidents
                    .get(id)
                    .is_some_and(|s| s.generation != job.generation);
                if newer {
                    // A version emitted during the failed request gets its own try.
                    if let Some(s) = inner.incidents.get_mut(id) {
                        s.attempts = 0;
                    }
                } else {
                    unqueue(&mut inner, key, id);
                }
                interval
            }
        };
        pace(&mut inner, key, now + delay);
        drop(inner);
        if let (Some(record), Some(file)) = (to_save, self.state_file.as_mut()) {
            if let Err(e) = file.append(&record) {
                let msg = format!("cannot save Slack state to {}: {e}", file.path().display());
                tracing::error!("{msg}");
                let mut inner = self.shared.lock();
                inner.stats.failures += 1;
                inner.failures.push(msg);
            }
        }
    }
}

/// Sets when the channel behind queue `key` may take its next request.
fn pace(inner: &mut Inner, key: &str, at: Instant) {
    let channel = inner.canonical(key).to_owned();
    inner.next_at.insert(channel, at);
}
