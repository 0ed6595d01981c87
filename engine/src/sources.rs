//! The live sources the engine drives: Kafka partitions (one consumer per worker, one group)
//! and events pushed in by the HTTP ingest endpoints.

use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use kaizen_connectors::kafka::{AssignmentChange, Decoded, PartitionId};
use kaizen_connectors::KafkaSource;
use kaizen_model::{Event, Symbol};

use crate::live::{Assignment, CommitMode, LiveSource, Partition, Polled};

/// A Kafka consumer as a [`LiveSource`].
pub struct KafkaLive {
    source: KafkaSource,
    assigned: bool,
}

impl KafkaLive {
    /// Wraps a consumer.
    pub fn new(source: KafkaSource) -> KafkaLive {
        KafkaLive {
            source,
            assigned: false,
        }
    }
}

impl LiveSource for KafkaLive {
    fn poll(&mut self, timeout: Duration, out: &mut Vec<Polled>) -> Result<(), String> {
        // The partition of the message before (mostly the same): reused, not rebuilt, and
        // recognised by the address of the source's shared topic name.
        let mut from: Option<(*const str, Partition)> = None;
        self.source
            .poll_with(timeout, |meta, decoded| {
                let topic = Arc::as_ptr(meta.topic);
                let from = match &mut from {
                    Some((t, p)) if p.partition == meta.partition && std::ptr::eq(*t, topic) => p,
                    slot => {
                        let p = Partition {
                            stream: Symbol::new(meta.topic),
                            partition: meta.partition,
                        };
                        &mut slot.insert((topic, p)).1
                    }
                };
                match decoded {
                    Decoded::Events(events) => {
                        out.extend(events.drain(..).map(|event| Polled::Event {
                            event,
                            from: from.clone(),
                            offset: meta.offset,
                        }))
                    }
                    Decoded::Undecodable { bytes, reason, .. } => out.push(Polled::Rejected {
                        raw: bytes.to_vec(),
                        reason,
                        from: from.clone(),
                        offset: meta.offset,
                    }),
                }
            })
            .map_err(|e| e.to_string())?;
        let partitions = |parts: Vec<PartitionId>| {
            parts
                .into_iter()
                .map(|p| Partition {
                    stream: Symbol::new(&p.topic),
                    partition: p.partition,
                })
                .collect()
        };
        for change in self.source.take_assignment_changes() {
            out.push(Polled::Assignment(match change {
                AssignmentChange::Assigned(parts) => {
                    self.assigned = true;
                    Assignment::Assigned(partitions(parts))
                }
                AssignmentChange::Revoked(parts) => Assignment::Revoked(partitions(parts)),
                AssignmentChange::AtEnd(parts) => Assignment::AtEnd(partitions(parts)),
            }));
        }
        Ok(())
    }

    fn commit(&mut self, offsets: &[(Partition, i64)], mode: CommitMode) -> Result<(), String> {
        let offsets: Vec<(&str, i32, i64)> = offsets
            .iter()
            .map(|(p, o)| (p.stream.as_str(), p.partition, *o))
            .collect();
        match mode {
            CommitMode::Periodic => self.source.commit_async(&offsets),
            CommitMode::Final => self.source.commit(&offsets),
        }
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    fn awaits_assignment(&self) -> bool {
        !self.assigned
    }

    fn lag(&self) -> Vec<(Partition, i64)> {
        let Ok(states) = self.source.partitions() else {
            return Vec::new();
        };
        states
            .into_iter()
            .filter_map(|s| {
                let lag = s.lag?;
                Some((
                    Partition {
                        stream: Symbol::new(&s.partition.topic),
                        partition: s.partition.partition,
                    },
                    lag,
                ))
            })
            .collect()
    }
}

/// Events pushed through a channel (HTTP ingest) as a [`LiveSource`]: one partition, offsets
/// counted locally (nothing to commit — the sender got its answer when the event was queued).
pub struct ChannelLive {
    events: Receiver<Event>,
    name: Symbol,
    next: i64,
}

impl ChannelLive {
    /// Reads `events`; `name` labels its partition.
    pub fn new(events: Receiver<Event>, name: impl Into<String>) -> ChannelLive {
        ChannelLive {
            events,
            name: Symbol::new(&name.into()),
            next: 0,
        }
    }
}

impl LiveSource for ChannelLive {
    fn poll(&mut self, timeout: Duration, out: &mut Vec<Polled>) -> Result<(), String> {
        let first = match self.events.recv_timeout(timeout) {
            Ok(e) => e,
            Err(_) => return Ok(()),
        };
        for event in std::iter::once(first).chain(self.events.try_iter().take(4095)) {
            out.push(Polled::Event {
                event,
                from: Partition {
                    stream: self.name.clone(),
                    partition: 0,
                },
                offset: self.next,
            });
            self.next += 1;
        }
        Ok(())
    }

    fn commit(&mut self, _: &[(Partition, i64)], _: CommitMode) -> Result<(), String> {
        Ok(())
    }
}

/// Several sources on one worker, polled in turn.
pub struct Both(pub Vec<Box<dyn LiveSource>>);

impl LiveSource for Both {
    fn poll(&mut self, timeout: Duration, out: &mut Vec<Polled>) -> Result<(), String> {
        let share = timeout / self.0.len().max(1) as u32;
        for s in &mut self.0 {
            s.poll(share, out)?;
        }
        Ok(())
    }

    fn commit(&mut self, offsets: &[(Partition, i64)], mode: CommitMode) -> Result<(), String> {
        for s in &mut self.0 {
            s.commit(offsets, mode)?;
        }
        Ok(())
    }

    fn lag(&self) -> Vec<(Partition, i64)> {
        self.0.iter().flat_map(|s| s.lag()).collect()
    }

    fn awaits_assignment(&self) -> bool {
        self.0.iter().any(|s| s.awaits_assignment())
    }
}
