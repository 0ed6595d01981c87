//! Undecodable Kafka messages, kept before their offsets are committed.
//!
//! The worker that read a message it could not decode writes it to the dead-letter topic or
//! file itself, and its source's commits first make every dead letter durable (the broker's
//! acknowledgement, or a flushed file): offsets are never committed ahead of the dead letters
//! of the records they cover, so a crash between the two re-reads the message instead of
//! losing it.

use std::fs::File;
use std::io::BufWriter;
use std::sync::{Arc, Mutex};

use kaizen_connectors::{Counter, DeadLetterSink, DecodeFailure, KafkaDeadLetter};
use kaizen_engine::{CommitMode, LiveSource, Partition, Polled};

/// A dead-letter file, shared with the HTTP ingest endpoints.
pub type DeadLetterFile = Arc<Mutex<DeadLetterSink<BufWriter<File>>>>;

/// Where undecodable messages go.
pub enum DeadLetterOut {
    /// The dead-letter topic: original bytes, reason and origin in headers.
    Topic(KafkaDeadLetter),
    /// A JSONL file: source (`topic/partition`), offset, reason, bytes as text.
    File(DeadLetterFile),
}

/// The dead-letter output shared by the workers' sources. `failed` is sticky: once a dead
/// letter may be lost, no offset is committed again by this process (a restart re-reads).
pub struct DeadLetters {
    out: DeadLetterOut,
    failed: Option<String>,
}

impl DeadLetters {
    /// Dead letters to `out`.
    pub fn new(out: DeadLetterOut) -> Arc<Mutex<DeadLetters>> {
        Arc::new(Mutex::new(DeadLetters { out, failed: None }))
    }

    fn send(&mut self, from: &Partition, offset: i64, raw: &[u8], reason: &str) -> bool {
        let sent = match &mut self.out {
            DeadLetterOut::Topic(producer) => producer
                .send(
                    from.stream.as_str(),
                    from.partition,
                    offset,
                    None,
                    raw,
                    reason,
                )
                .map_err(|e| e.to_string()),
            DeadLetterOut::File(file) => match file.lock() {
                Ok(mut sink) => sink
                    .record(&DecodeFailure {
                        source: format!("{}/{}", from.stream, from.partition),
                        line: offset.max(0) as u64,
                        reason: reason.to_string(),
                        raw: String::from_utf8_lossy(raw).into_owned(),
                    })
                    .map_err(|e| e.to_string()),
                Err(_) => Err("the dead-letter file is poisoned".to_string()),
            },
        };
        match sent {
            Ok(()) => true,
            Err(e) => {
                tracing::error!("dead letters: {e}; offsets are no longer committed");
                self.failed.get_or_insert(e);
                false
            }
        }
    }

    /// Makes every dead letter sent durable; an error once one may be lost (sticky).
    pub fn flush(&mut self) -> Result<(), String> {
        if self.failed.is_none() {
            let flushed = match &mut self.out {
                DeadLetterOut::Topic(producer) => producer.flush().map_err(|e| e.to_string()),
                DeadLetterOut::File(file) => match file.lock() {
                    Ok(mut sink) => sink.flush().map_err(|e| e.to_string()),
                    Err(_) => Err("the dead-letter file is poisoned".to_string()),
                },
            };
            if let Err(e) = flushed {
                self.failed = Some(e);
            }
        }
        match &self.failed {
            Some(e) => Err(format!("a dead letter was not delivered ({e})")),
            None => Ok(()),
        }
    }
}

/// A Kafka source whose undecodable messages go to the dead letters from the worker that read
/// them, and whose commits first make every dead letter sent durable.
pub struct DeadLettering<S> {
    source: S,
    dead_letters: Arc<Mutex<DeadLetters>>,
    sent: Counter,
}

impl<S: LiveSource> DeadLettering<S> {
    /// `source`, keeping its undecodable messages in `dead_letters`; `sent` counts them.
    pub fn new(source: S, dead_letters: Arc<Mutex<DeadLetters>>, sent: Counter) -> Self {
        DeadLettering {
            source,
            dead_letters,
            sent,
        }
    }

    fn dead_letters(&self) -> Result<std::sync::MutexGuard<'_, DeadLetters>, String> {
        self.dead_letters
            .lock()
            .map_err(|_| "the dead-letter output is poisoned".to_string())
    }
}

impl<S: LiveSource> LiveSource for DeadLettering<S> {
    fn poll(&mut self, timeout: std::time::Duration, out: &mut Vec<Polled>) -> Result<(), String> {
        let start = out.len();
        self.source.poll(timeout, out)?;
        for polled in out.iter().skip(start) {
            let Polled::Rejected {
                raw,
                reason,
                from,
                offset,
            } = polled
            else {
                continue;
            };
            if self.dead_letters()?.send(from, *offset, raw, reason) {
                self.sent.inc();
            }
        }
        Ok(())
    }

    fn commit(&mut self, offsets: &[(Partition, i64)], mode: CommitMode) -> Result<(), String> {
        self.dead_letters()?.flush()?;
        self.source.commit(offsets, mode)
    }

    fn lag(&self) -> Vec<(Partition, i64)> {
        self.source.lag()
    }

    fn awaits_assignment(&self) -> bool {
        self.source.awaits_assignment()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One undecodable record, then nothing; remembers what was committed.
    struct Garbage {
        polled: bool,
        committed: Arc<Mutex<Vec<(Partition, i64)>>>,
        file: std::path::PathBuf,
        on_disk_at_commit: Arc<Mutex<String>>,
    }

    impl LiveSource for Garbage {
        fn poll(&mut self, _: std::time::Duration, out: &mut Vec<Polled>) -> Result<(), String> {
            if !std::mem::replace(&mut self.polled, true) {
                out.push(Polled::Rejected {
                    raw: b"{not json".to_vec(),
                    reason: "expected a JSON object".into(),
                    from: Partition {
                        stream: "events".into(),
                        partition: 3,
                    },
                    offset: 41,
                });
            }
            Ok(())
        }

        fn commit(&mut self, offsets: &[(Partition, i64)], _: CommitMode) -> Result<(), String> {
            let text = std::fs::read_to_string(&self.file).unwrap_or_default();
            *self.on_disk_at_commit.lock().map_err(|e| e.to_string())? = text;
            self.committed
                .lock()
                .map_err(|e| e.to_string())?
                .extend_from_slice(offsets);
            Ok(())
        }
    }

    #[test]
    fn a_dead_letter_is_on_disk_before_the_offset_past_it_is_committed() {
        let dir = std::env::temp_dir().join(format!("kaizen-dl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("dead.jsonl");
        let file: DeadLetterFile = Arc::new(Mutex::new(DeadLetterSink::new(BufWriter::new(
            File::create(&path).expect("file"),
        ))));
        let on_disk = Arc::new(Mutex::new(String::new()));
        let committed = Arc::new(Mutex::new(Vec::new()));
        let registry = kaizen_connectors::Registry::new();
        let sent = registry.counter(&kaizen_connectors::metrics::DEAD_LETTERS, &[]);
        let mut source = DeadLettering::new(
            Garbage {
                polled: false,
                committed: committed.clone(),
                file: path.clone(),
                on_disk_at_commit: on_disk.clone(),
            },
            DeadLetters::new(DeadLetterOut::File(file)),
            sent.clone(),
        );
        let mut out = Vec::new();
        source
            .poll(std::time::Duration::ZERO, &mut out)
            .expect("poll");
        assert_eq!(
            out.len(),
            1,
            "the record still reaches the driver, to be counted"
        );
        let offset = (
            Partition {
                stream: "events".into(),
                partition: 3,
            },
            42,
        );
        source
            .commit(std::slice::from_ref(&offset), CommitMode::Periodic)
            .expect("commit");
        let line = on_disk.lock().expect("lock").clone();
        assert!(line.contains(r#""source":"events/3""#), "{line}");
        assert!(line.contains(r#""line":41"#), "{line}");
        assert!(line.contains("expected a JSON object"), "{line}");
        assert_eq!(*committed.lock().expect("lock"), vec![offset]);
        assert_eq!(sent.get(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
