//! Which Slack message belongs to which incident, kept across restarts.
//!
//! For: the state file — JSON Lines, one [`MessageRecord`] per line, appended after every
//! change; on load the latest line per incident wins (like `history_file.rs`, and like a
//! compacted topic keyed by incident id). Without it a restarted kaizen would post every open
//! incident again instead of updating its message. Not for: deciding what to send
//! (`queue.rs`).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use kaizen_model::{StableHasher, TimelineEntry};

/// Records not touched for this long are dropped when the file is compacted: an incident that
/// quiet is over, and a new version of it may well start a new message.
pub const STATE_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// An incident's Slack message as last delivered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// Incident id.
    pub incident: String,
    /// Channel id Slack returned for the post (`chat.update` needs the id, not a name).
    pub channel: String,
    /// The message's `ts`: its id within the channel, and the thread's parent.
    pub ts: String,
    /// The insight version the message shows.
    pub version: u32,
    /// Keys ([`entry_key`]) of the timeline entries already replied in the thread.
    #[serde(default)]
    pub entries: Vec<String>,
    /// When this record was written (unix seconds), for retention.
    #[serde(default)]
    pub saved_at: u64,
}

/// The identity of a timeline entry: its time and text. The insight's timeline is rebuilt on
/// every version (sorted, capped), so positions shift and only content identifies an entry.
pub fn entry_key(e: &TimelineEntry) -> String {
    let mut h = StableHasher::new();
    h.write_u64(e.ts.as_millis());
    h.write_str(&e.text);
    format!("{:016x}", h.finish())
}

/// The insight builder's "… N more entries" marker stands for entries left out, not for an
/// event; its count changes every version, so replying it would repeat it each time.
pub fn is_truncation_marker(e: &TimelineEntry) -> bool {
    e.text.starts_with("… ") && e.text.ends_with(" more entries")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The append-only state file.
pub struct StateFile {
    path: PathBuf,
    out: BufWriter<File>,
}

impl StateFile {
    /// Loads the latest record per incident (a missing file is an empty state; a corrupt line,
    /// e.g. half-written at a crash, is skipped with a warning), compacts the file when it has
    /// grown to more than twice its live records, and opens it for appending.
    pub fn open(path: &Path) -> io::Result<(StateFile, HashMap<String, MessageRecord>)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut latest: HashMap<String, MessageRecord> = HashMap::new();
        let mut lines = 0usize;
        match File::open(path) {
            Ok(f) => {
                for (i, line) in BufReader::new(f).lines().enumerate() {
                    let line = line?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    lines += 1;
                    match serde_json::from_str::<MessageRecord>(&line) {
                        Ok(r) => {
                            latest.insert(r.incident.clone(), r);
                        }
                        Err(e) => tracing::warn!(
                            "{}:{}: skipped Slack state record: {e}",
                            path.display(),
                            i + 1
                        ),
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let cutoff = unix_now().saturating_sub(STATE_RETENTION.as_secs());
        let before = latest.len();
        latest.retain(|_, r| r.saved_at == 0 || r.saved_at >= cutoff);
        if lines > 2 * latest.len() + 64 || latest.len() < before {
            compact(path, &latest)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok((
            StateFile {
                path: path.to_owned(),
                out: BufWriter::new(file),
            },
            latest,
        ))
    }

    /// Appends one record and flushes it to the OS, so a crash right after a post still
    /// remembers the message.
    pub fn append(&mut self, record: &MessageRecord) -> io::Result<()> {
        let mut r = record.clone();
        r.saved_at = unix_now();
        serde_json::to_writer(&mut self.out, &r)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Rewrites the file with only the live records, atomically (temp file + rename), so a crash
/// mid-compaction leaves either the old or the new file.
fn compact(path: &Path, records: &HashMap<String, MessageRecord>) -> io::Result<()> {
    let tmp = path.with_extension("compacting");
    {
        let mut out = BufWriter::new(File::create(&tmp)?);
        let mut sorted: Vec<&MessageRecord> = records.values().collect();
        sorted.sort_by(|a, b| a.incident.cmp(&b.incident));
        for r in sorted {
            serde_json::to_writer(&mut out, r)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        out.get_ref().sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use kaizen_model::Timestamp;

    use super::*;

    fn record(id: &str, version: u32) -> MessageRecord {
        MessageRecord {
            incident: id.into(),
            channel: "C1".into(),
            ts: "1.000100".into(),
            version,
            entries: vec![],
            saved_at: 0,
        }
    }

    #[test]
    fn latest_record_wins_and_the_file_compacts() {
        let dir = std::env::temp_dir().join(format!("kaizen-slack-state-{}", std::process::id()));
        let path = dir.join("slack.jsonl");
        let _ = std::fs::remove_file(&path);
        let (mut f, loaded) = StateFile::open(&path).unwrap();
        assert!(loaded.is_empty());
        for v in 1..=100 {
            f.append(&record("a", v)).unwrap();
        }
        f.append(&record("b", 1)).unwrap();
        drop(f);
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{half a line")
            .unwrap();
        let (_f, loaded) = StateFile::open(&path).unwrap();
        assert_eq!(loaded["a"].version, 100);
        assert_eq!(loaded["b"].version, 1);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "compacted: {text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn entry_keys_are_by_content_and_markers_are_recognised() {
        let e = |ms, t: &str| TimelineEntry {
            ts: Timestamp::from_millis(ms),
            text: t.into(),
        };
        assert_eq!(entry_key(&e(1, "x")), entry_key(&e(1, "x")));
        assert_ne!(entry_key(&e(1, "x")), entry_key(&e(2, "x")));
        assert!(is_truncation_marker(&e(1, "… 5 more entries")));
        assert!(!is_truncation_marker(&e(1, "payments: errors")));
    }
}
