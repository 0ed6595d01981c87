//! Input that could not be decoded, kept with the reason.

use std::io::{self, Write};

use serde::Serialize;

use crate::DecodeFailure;

/// Writes each [`DecodeFailure`] as a JSON line `{"source","line","reason","raw"}`, so a bad
/// line is never silently lost and can be replayed once fixed.
pub struct DeadLetterSink<W: Write + Send> {
    out: W,
    count: u64,
}

#[derive(Serialize)]
struct Record<'a> {
    source: &'a str,
    line: u64,
    reason: &'a str,
    raw: &'a str,
}

impl<W: Write + Send> DeadLetterSink<W> {
    /// A dead-letter sink writing to `out`.
    pub fn new(out: W) -> Self {
        DeadLetterSink { out, count: 0 }
    }

    /// Records one failure.
    pub fn record(&mut self, failure: &DecodeFailure) -> io::Result<()> {
        serde_json::to_writer(
            &mut self.out,
            &Record {
                source: &failure.source,
                line: failure.line,
                reason: &failure.reason,
                raw: &failure.raw,
            },
        )?;
        self.count += 1;
        self.out.write_all(b"\n")
    }

    /// Failures recorded so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Flushes the writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
