//! kaizen's engine: assembles the timely/differential dataflow from the detectors and
//! correlators of `kaizen-operators` and the sources and sinks of `kaizen-connectors`, and runs
//! it on `-w N` worker threads.
//!
//! ```text
//! source ─► Stamped<Event> ─exchange by service─► detectors ─► Signal ─exchange to 0─┐
//!    │                                                                             correlate ─► Insight ─► sinks
//!    └─ spans ─► call edges ─┐                                                         ▲
//! topology edges ────────────┴─► differential `distinct` (the service graph) ──────────┘
//! ```
//!
//! Time is event time. The timely timestamp of a record is a *lower bound* on its event time:
//! the source's watermark (max event time seen − allowed lateness, in `tick` steps) when it was
//! read. Every operator buffers records until the frontier passes their event time, then feeds
//! them to its state machine in `(event time, sequence)` order, and feeds the frontier as the
//! watermark. Together with the operators' contract (timers fire by event time, not by
//! watermark batching), that makes the output a function of the input alone: the same files
//! give the same insights, byte for byte, with 1 worker or 8.
//!
//! This crate is for wiring and running. It is not for detection logic (that lives in
//! `kaizen-operators`, as plain state machines) nor for formats and I/O (`kaizen-connectors`).

mod config;
mod dataflow;
mod live;
mod ordered;
mod replay;
mod rules;
mod sources;
mod watch;

pub use config::EngineConfig;
pub use live::{
    run_live, Assignment, CommitMode, LiveConfig, LiveHooks, LiveReport, LiveSource, Partition,
    Polled,
};
pub use replay::{replay, EngineError, LatencySummary, ReplayHooks, ReplayReport};
pub use sources::{Both, ChannelLive, KafkaLive};
pub use watch::{reload, OnReload, RuleWatcher};
