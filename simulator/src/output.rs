//! JSON Lines output: events encoded with the model's `Event::write_json`, one per line.
//!
//! Generation is several times cheaper than JSON encoding, so on machines with more than one
//! core the encoding is spread over worker threads: the calling thread generates frames of
//! events, workers encode them, and the calling thread writes the encodings strictly in order
//! (bytes are identical to the serial path) and recycles the frames, so no event is cloned.
//! At most a few frames are in flight, so memory stays bounded. The writer never leaves the
//! calling thread, so it need not be `Send`.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Mutex;

use kaizen_model::Event;

use crate::frame::{Frame, FrameSink};
use crate::generator::{self, Stats};
use crate::{ScenarioConfig, SimError};

/// Encoded lines are handed to the `BufWriter` in chunks of about this size (which it passes
/// straight through), so each byte is copied once.
const CHUNK: usize = 1 << 16;
/// Most encoding workers used.
const MAX_WORKERS: usize = 4;

/// Writes every event of `config` to `out`; returns the run's statistics.
pub(crate) fn write_jsonl<W: Write>(config: &ScenarioConfig, out: W) -> Result<Stats, SimError> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(MAX_WORKERS);
    let mut w = BufWriter::with_capacity(CHUNK, out);
    let stats = if workers < 2 {
        serial(config, &mut w)?
    } else {
        parallel(config, &mut w, workers)?
    };
    w.flush()?;
    Ok(stats)
}

/// Writes the users'-dialect events of `config` (see `crate::otel`), decoded by kaizen's
/// codecs, to `out`; returns the run's statistics.
pub(crate) fn write_otel_jsonl<W: Write>(
    config: &ScenarioConfig,
    out: W,
) -> Result<Stats, SimError> {
    let mut w = BufWriter::with_capacity(CHUNK, out);
    let run = write_chunked(&mut w, |emit| crate::otel::run(config, emit))?;
    w.flush()?;
    Ok(run.stats)
}

fn serial<W: Write>(config: &ScenarioConfig, w: &mut W) -> Result<Stats, SimError> {
    write_chunked(w, |emit| generator::run(config, emit))
}

/// Runs a generator whose events are written to `w` as JSON lines, `CHUNK` bytes at a time;
/// the first write error stops the generator and is returned.
fn write_chunked<W: Write, T>(
    w: &mut W,
    generate: impl FnOnce(&mut dyn FnMut(&Event) -> bool) -> T,
) -> Result<T, SimError> {
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + 4096);
    let mut failed: Option<std::io::Error> = None;
    let result = generate(&mut |e| {
        e.write_json(&mut buf);
        buf.push(b'\n');
        if buf.len() < CHUNK {
            return true;
        }
        let written = w.write_all(&buf);
        buf.clear();
        match written {
            Ok(()) => true,
            Err(err) => {
                failed = Some(err);
                false
            }
        }
    });
    if let Some(err) = failed {
        return Err(SimError::Io(err));
    }
    w.write_all(&buf)?;
    Ok(result)
}

/// A frame to encode: sequence number, events, and a byte buffer to reuse.
type Job = (u64, Frame, Vec<u8>);

/// The calling thread's side of the pipeline: hands frames to workers, writes their encodings
/// in sequence, recycles frames and buffers.
struct Pipeline<'w, W: Write> {
    w: &'w mut W,
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Job>,
    spare_frames: Vec<Frame>,
    spare_bytes: Vec<Vec<u8>>,
    /// Encoded frames that arrived before their predecessors.
    waiting: BTreeMap<u64, Vec<u8>>,
    next_seq: u64,
    next_write: u64,
    in_flight: usize,
    max_in_flight: usize,
    failed: Option<std::io::Error>,
}

impl<W: Write> FrameSink for Pipeline<'_, W> {
    fn fresh(&mut self) -> Frame {
        self.spare_frames.pop().unwrap_or_default()
    }

    fn full(&mut self, frame: Frame) -> bool {
        if self.failed.is_some() {
            return false;
        }
        let bytes = self.spare_bytes.pop().unwrap_or_default();
        let sent = match &self.jobs {
            Some(jobs) => jobs.send((self.next_seq, frame, bytes)).is_ok(),
            None => false,
        };
        if !sent {
            self.failed = Some(std::io::Error::other("encoding worker stopped"));
            return false;
        }
        self.next_seq += 1;
        self.in_flight += 1;
        while self.in_flight >= self.max_in_flight && self.failed.is_none() {
            self.receive_one();
        }
        self.failed.is_none()
    }
}

impl<W: Write> Pipeline<'_, W> {
    /// Waits for one encoded frame and writes whatever is now in order.
    fn receive_one(&mut self) {
        let Ok((seq, mut frame, bytes)) = self.done.recv() else {
            self.failed = Some(std::io::Error::other("encoding worker stopped"));
            self.in_flight = 0;
            return;
        };
        self.in_flight -= 1;
        frame.reset();
        self.spare_frames.push(frame);
        self.waiting.insert(seq, bytes);
        while let Some(bytes) = self.waiting.remove(&self.next_write) {
            if self.failed.is_none() {
                if let Err(err) = self.w.write_all(&bytes) {
                    self.failed = Some(err);
                }
            }
            self.spare_bytes.push(bytes);
            self.next_write += 1;
        }
    }

    fn finish(&mut self) {
        self.jobs = None;
        while self.in_flight > 0 {
            self.receive_one();
        }
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>, done: Sender<Job>) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((seq, frame, mut bytes)) = job else {
            return;
        };
        bytes.clear();
        for e in frame.events() {
            e.write_json(&mut bytes);
            bytes.push(b'\n');
        }
        if done.send((seq, frame, bytes)).is_err() {
            return;
        }
    }
}

fn parallel<W: Write>(
    config: &ScenarioConfig,
    w: &mut W,
    workers: usize,
) -> Result<Stats, SimError> {
    let (job_tx, job_rx) = sync_channel::<Job>(workers);
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = channel::<Job>();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let done = done_tx.clone();
            let jobs = &job_rx;
            scope.spawn(move || worker(jobs, done));
        }
        drop(done_tx);
        let mut p = Pipeline {
            w,
            jobs: Some(job_tx),
            done: done_rx,
            spare_frames: Vec::new(),
            spare_bytes: Vec::new(),
            waiting: BTreeMap::new(),
            next_seq: 0,
            next_write: 0,
            in_flight: 0,
            max_in_flight: 2 * workers,
            failed: None,
        };
        let stats = generator::run_frames(config, &mut p);
        p.finish();
        match p.failed {
            Some(err) => Err(SimError::Io(err)),
            None => Ok(stats),
        }
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn config() -> ScenarioConfig {
        ScenarioConfig {
            faults: 1,
            recurrences: 0,
            ..ScenarioConfig::default().with_duration(Duration::from_secs(30 * 60))
        }
    }

    /// Fails once more than `limit` bytes have been written.
    struct Failing {
        written: usize,
        limit: usize,
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.written += buf.len();
            if self.written > self.limit {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "closed",
                ));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn parallel_and_serial_write_the_same_bytes() {
        let mut a = Vec::new();
        let sa = serial(&config(), &mut a).unwrap();
        for workers in [2, 3] {
            let mut b = Vec::new();
            let sb = parallel(&config(), &mut b, workers).unwrap();
            assert_eq!(sa, sb);
            assert!(a == b, "{workers} workers changed the bytes");
        }
        assert_eq!(a.iter().filter(|&&c| c == b'\n').count() as u64, sa.events);
    }

    #[test]
    fn write_errors_stop_generation_and_are_reported() {
        let mut w = Failing {
            written: 0,
            limit: 100_000,
        };
        assert!(matches!(serial(&config(), &mut w), Err(SimError::Io(_))));
        let mut w = Failing {
            written: 0,
            limit: 100_000,
        };
        assert!(matches!(
            parallel(&config(), &mut w, 2),
            Err(SimError::Io(_))
        ));
        assert!(w.written < 10_000_000, "kept writing after the error");
    }
}
