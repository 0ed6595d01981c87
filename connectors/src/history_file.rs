//! The embedded history store: past incidents as an append-only JSON Lines file.
//!
//! Each line is one [`PastIncident`] record; a later record for the same id replaces an earlier
//! one — the same semantics as a compacted Kafka topic keyed by incident id, so either can hold
//! the history.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use kaizen_model::PastIncident;

use crate::SourceError;

/// Loads the latest record per incident id. A missing file is an empty history; a corrupt line
/// is skipped with a warning (the rest of the history is still worth having).
pub fn load_history(path: &Path) -> Result<Vec<PastIncident>, SourceError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(SourceError::Io {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let mut latest = BTreeMap::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| SourceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<PastIncident>(&line) {
            Ok(record) => {
                latest.insert(record.id.clone(), record);
            }
            Err(e) => tracing::warn!("{}:{}: skipped history record: {e}", path.display(), i + 1),
        }
    }
    Ok(latest.into_values().collect())
}

/// Appends history records as they change.
pub struct HistoryWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl HistoryWriter {
    /// Opens (creating if needed) the history file for appending.
    pub fn open(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(HistoryWriter {
            path: path.to_owned(),
            out: BufWriter::new(file),
        })
    }

    /// Appends one record.
    pub fn append(&mut self, record: &PastIncident) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")
    }

    /// Flushes to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use kaizen_model::{Fingerprint, Timestamp};

    use super::*;

    fn record(id: &str, remedy: Option<&str>) -> PastIncident {
        PastIncident {
            id: id.into(),
            title: "t".into(),
            opened_at: Timestamp::from_millis(1),
            resolved_at: None,
            services: vec![],
            origin: None,
            fingerprint: Fingerprint::default(),
            remedies: remedy.map(|r| (r.to_owned(), 1)).into_iter().collect(),
        }
    }

    #[test]
    fn the_latest_record_per_id_wins_across_reopens() {
        let dir = std::env::temp_dir().join(format!("kaizen-hist-{}", std::process::id()));
        let path = dir.join("history.jsonl");
        let _ = std::fs::remove_file(&path);
        assert!(load_history(&path).unwrap().is_empty());
        let mut w = HistoryWriter::open(&path).unwrap();
        w.append(&record("a", None)).unwrap();
        w.append(&record("b", None)).unwrap();
        w.flush().unwrap();
        drop(w);
        let mut w = HistoryWriter::open(&path).unwrap();
        w.append(&record("a", Some("restart"))).unwrap();
        w.flush().unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{corrupt\n")
            .unwrap();
        let loaded = load_history(&path).unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0].best_remedy(), Some("restart"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
