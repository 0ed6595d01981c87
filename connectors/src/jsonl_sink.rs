//! Insights as JSON Lines.

use std::io::{self, Write};

use kaizen_model::Insight;

use crate::InsightSink;

/// Writes one JSON object per insight version, one per line.
pub struct JsonlSink<W: Write + Send> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write + Send> JsonlSink<W> {
    /// A sink writing to `out` (wrap files in a `BufWriter`).
    pub fn new(out: W) -> Self {
        JsonlSink {
            out,
            buf: Vec::with_capacity(4096),
        }
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> InsightSink for JsonlSink<W> {
    fn emit(&mut self, insight: &Insight) -> io::Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, insight)?;
        self.buf.push(b'\n');
        self.out.write_all(&self.buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
