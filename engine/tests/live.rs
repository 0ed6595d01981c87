//! The live driver's event time over several partitions, with a scripted source standing in
//! for a consumer (the Kafka path itself is tested against a real broker in `tests/`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kaizen_connectors::InsightSink;
use kaizen_engine::{
    run_live, Assignment, CommitMode, EngineConfig, LiveConfig, LiveHooks, LiveReport, LiveSource,
    Partition, Polled,
};
use kaizen_model::{Event, Insight};

const T0: u64 = 1_767_600_000; // 2026-01-05T08:00:00Z, in seconds

fn partition(stream: &str) -> Partition {
    Partition {
        stream: stream.into(),
        partition: 0,
    }
}

fn metric(t: u64, service: &str) -> Event {
    let line = format!(
        r#"{{"ts":{},"kind":"metric","service":"{service}","name":"cpu","value":0.5}}"#,
        T0 + t
    );
    Event::from_json(&line).expect("a metric event")
}

/// Polls scripted in advance; sets `shutdown` once they are all handed out.
struct Scripted {
    polls: VecDeque<Vec<Polled>>,
    assigned: Option<Vec<Partition>>,
    shutdown: Arc<AtomicBool>,
}

impl LiveSource for Scripted {
    fn poll(&mut self, _: Duration, out: &mut Vec<Polled>) -> Result<(), String> {
        match self.polls.pop_front() {
            Some(batch) => out.extend(batch),
            None => self.shutdown.store(true, Ordering::Release),
        }
        out.extend(
            self.assigned
                .take()
                .map(|parts| Polled::Assignment(Assignment::Assigned(parts))),
        );
        Ok(())
    }

    fn commit(&mut self, _: &[(Partition, i64)], _: CommitMode) -> Result<(), String> {
        Ok(())
    }

    fn awaits_assignment(&self) -> bool {
        self.assigned.is_some()
    }
}

#[derive(Default)]
struct Collected(Vec<Insight>);

impl InsightSink for Collected {
    fn emit(&mut self, insight: &Insight) -> std::io::Result<()> {
        self.0.push(insight.clone());
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs one worker over `polls` (announcing `assigned` first, when given) until they are all
/// handed out.
fn run_scripted(polls: VecDeque<Vec<Polled>>, assigned: Option<Vec<Partition>>) -> LiveReport {
    let shutdown = Arc::new(AtomicBool::new(false));
    let source = Scripted {
        polls,
        assigned,
        shutdown: shutdown.clone(),
    };
    let config = EngineConfig {
        workers: 1,
        ..EngineConfig::default()
    };
    run_live(
        vec![Some(Box::new(source))],
        &config,
        &LiveConfig::default(),
        &mut Collected::default(),
        LiveHooks::default(),
        shutdown,
    )
    .expect("the live run")
}

/// A backlog on two topics, read one topic first: an hour of `logs` in three polls, then the
/// same hour of `metrics`. Returns the events counted late.
fn late_events(announce_assignment: bool) -> u64 {
    let mut polls = VecDeque::new();
    for topic in ["logs", "metrics"] {
        for chunk in 0..3u64 {
            let batch = (0..120u64)
                .map(|i| {
                    let t = (chunk * 120 + i) * 10;
                    Polled::Event {
                        event: metric(t, topic),
                        from: partition(topic),
                        offset: (chunk * 120 + i) as i64,
                    }
                })
                .collect();
            polls.push_back(batch);
        }
    }
    let assigned = announce_assignment.then(|| vec![partition("logs"), partition("metrics")]);
    let report = run_scripted(polls, assigned);
    assert_eq!(report.events + report.late, 720);
    report.late
}

#[test]
fn a_partition_assigned_but_not_yet_read_holds_the_watermark() {
    assert_eq!(late_events(true), 0);
}

#[test]
fn without_knowing_the_assignment_the_topic_read_second_would_be_late() {
    // What the hold prevents: the logs backlog alone ran the watermark an hour ahead.
    assert!(late_events(false) > 300);
}

/// `main` delivers an hour of events, then one from its start. Returns the events counted
/// late: the old one is late only if the watermark moved during that hour, which a partition
/// assigned with it and silent throughout (`empty`) prevents — unless the source said it had
/// nothing to read.
fn late_with_a_silent_partition(empty_at_assignment: bool) -> u64 {
    let (main, empty) = (partition("main"), partition("empty"));
    let hour: Vec<Polled> = (0..360u64)
        .map(|i| Polled::Event {
            event: metric(i * 10, "api"),
            from: main.clone(),
            offset: i as i64,
        })
        .collect();
    let mut first = vec![Polled::Assignment(Assignment::Assigned(vec![
        main.clone(),
        empty.clone(),
    ]))];
    if empty_at_assignment {
        first.push(Polled::Assignment(Assignment::AtEnd(vec![empty])));
    }
    let old = vec![Polled::Event {
        event: metric(0, "api"),
        from: main,
        offset: 360,
    }];
    let report = run_scripted(VecDeque::from([first, hour, Vec::new(), old]), None);
    assert_eq!(report.events + report.late, 361);
    report.late
}

#[test]
fn a_partition_assigned_with_nothing_to_read_does_not_hold_the_watermark() {
    assert_eq!(late_with_a_silent_partition(true), 1);
    // Without being told, the silent partition holds it (for the idle timeout, 10 s).
    assert_eq!(late_with_a_silent_partition(false), 0);
}
