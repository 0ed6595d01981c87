//! Stack traces that arrive one line per record.
//!
//! Log shippers that read files line by line (Fluent Bit and Vector without a multiline
//! parser, `kubectl logs`, most Kafka log pipelines) turn one Java, Python, Go, .NET or Node
//! stack trace into tens of records: the message, then `\tat …`, `  File "…", line 12`,
//! `goroutine 7 [running]:`, `   at …`. Mined as templates, each frame is a "new template"
//! and an error spike of its own. [`StackTraceFolder`] tells which records continue the
//! record before them in the same stream (service and pod/instance/host), so the detectors
//! see a trace as its first line — the one that says what failed — and the frames are folded
//! into it. Rules still see every record.
//!
//! A record continues a trace only within [`MAX_GAP_MS`] of the stream's previous record and
//! only while that stream is in a trace; the first line of a trace (an exception, `Traceback
//! (most recent call last):`, `panic:`) is never folded.

use std::collections::HashMap;

use kaizen_model::{Event, EventBody, Log, Symbol};

/// A frame further than this (event time) from the stream's previous record starts afresh.
pub const MAX_GAP_MS: u64 = 2_000;

/// Streams remembered at most; beyond it the map starts over (a safety valve: folding only
/// ever needs the last record of each stream).
const MAX_STREAMS: usize = 100_000;

/// Attributes that tell one process's output from another's within a service.
const STREAM_ATTRIBUTES: [&str; 6] = [
    "k8s.pod.name",
    "pod",
    "service.instance.id",
    "instance",
    "host.name",
    "host",
];

#[derive(Clone, Copy)]
struct Stream {
    last_ms: u64,
    /// The previous record opened or continued a trace.
    in_trace: bool,
    /// Inside a Go goroutine dump, where function lines are not indented.
    in_goroutines: bool,
}

/// Tells stack-trace frames from records of their own (see the module docs).
#[derive(Default)]
pub struct StackTraceFolder {
    streams: HashMap<(Symbol, String), Stream>,
    folded: u64,
}

impl StackTraceFolder {
    /// Whether `event` continues the trace of its stream's previous record (then the
    /// detectors need not see it). Call for every event, in event-time order per service.
    pub fn folds(&mut self, event: &Event) -> bool {
        let EventBody::Log(log) = &event.body else {
            return false;
        };
        if self.streams.len() >= MAX_STREAMS {
            self.streams.clear();
        }
        let ts = event.ts.as_millis();
        let key = (event.service.clone(), stream_of(log));
        let previous = self.streams.get(&key).copied();
        let recent = previous.filter(|p| ts.saturating_sub(p.last_ms) <= MAX_GAP_MS);
        let line = log.message.as_str();
        let (folds, in_goroutines) = match recent {
            Some(p) if p.in_trace => {
                let goroutines = p.in_goroutines || line.starts_with("goroutine ");
                (frame(line) || (goroutines && go_frame(line)), goroutines)
            }
            _ => (false, false),
        };
        let starts = trace_head(line, log);
        self.streams.insert(
            key,
            Stream {
                last_ms: ts,
                in_trace: folds || starts,
                in_goroutines: folds && in_goroutines,
            },
        );
        if folds {
            self.folded += 1;
        }
        folds
    }

    /// Records folded so far.
    pub fn folded(&self) -> u64 {
        self.folded
    }
}

fn stream_of(log: &Log) -> String {
    STREAM_ATTRIBUTES
        .iter()
        .find_map(|k| log.attributes.get(k))
        .unwrap_or("")
        .to_owned()
}

/// A record that may be followed by frames: an error or warning, an exception's line, a
/// Python traceback header, a Go panic.
fn trace_head(line: &str, log: &Log) -> bool {
    use kaizen_model::Level;
    log.level >= Level::Warn
        || line.starts_with("Traceback (most recent call last)")
        || line.starts_with("panic:")
        || line.starts_with("Exception in thread")
        || exception_line(line)
}

/// `java.lang.IllegalStateException: …`, `System.InvalidOperationException: …`,
/// `TypeError: …`, `ValueError: …`.
fn exception_line(line: &str) -> bool {
    let head = line.split([':', ' ']).next().unwrap_or("");
    let class = head.rsplit('.').next().unwrap_or(head);
    !head.is_empty()
        && head
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '_' || c == '$')
        && (class.ends_with("Exception")
            || class.ends_with("Error")
            || class.ends_with("Throwable"))
}

/// A frame or continuation line of Java, .NET, Node, Python or a Go goroutine dump.
fn frame(line: &str) -> bool {
    let trimmed = line.trim_start();
    let indented = trimmed.len() < line.len();
    (indented && (trimmed.starts_with("at ") || trimmed.starts_with("File \"")))
        // Python's source line under `File "…"`.
        || line.starts_with("    ")
        || trimmed.starts_with("... ") && trimmed.ends_with(" more")
        || trimmed.starts_with("Caused by: ")
        || trimmed.starts_with("Suppressed: ")
        || trimmed.starts_with("--- End of inner exception stack trace ---")
        || trimmed.starts_with("--- End of stack trace from previous location ---")
        || line.starts_with("goroutine ") && line.ends_with(':')
        || line.starts_with('\t') && trimmed.contains(".go:")
        || trimmed.starts_with("During handling of the above exception")
        || trimmed.starts_with("The above exception was the direct cause")
}

/// An unindented Go function line inside a goroutine dump: `main.main()`,
/// `net/http.(*conn).serve(0xc000104000)`, `created by net/http.(*Server).Serve in goroutine 1`.
fn go_frame(line: &str) -> bool {
    line.starts_with("created by ")
        || (line.ends_with(')') && line.contains('(') && !line.contains(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(ms: u64, pod: &str, level: &str, message: &str) -> Event {
        let line = serde_json::json!({
            "ts": (1_767_600_000_000u64 + ms) as f64 / 1000.0,
            "kind": "log",
            "service": "api",
            "level": level,
            "message": message,
            "attributes": {"pod": pod},
        })
        .to_string();
        Event::from_json(&line).unwrap()
    }

    fn folded(lines: &[(u64, &str, &str, &str)]) -> Vec<bool> {
        let mut f = StackTraceFolder::default();
        lines
            .iter()
            .map(|(ms, pod, level, msg)| f.folds(&log(*ms, pod, level, msg)))
            .collect()
    }

    #[test]
    fn java_frames_fold_into_the_error_and_other_pods_stay_apart() {
        let lines = [
            (0, "a", "error", "Request failed"),
            (1, "a", "info", "java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available"),
            (1, "a", "info", "\tat com.zaxxer.hikari.pool.HikariPool.createTimeoutException(HikariPool.java:696)"),
            (1, "b", "info", "\tat some.other.Place(Place.java:1)"),
            (2, "a", "info", "\tat com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:181)"),
            (2, "a", "info", "Caused by: java.net.SocketTimeoutException: Read timed out"),
            (2, "a", "info", "\t... 42 more"),
            (5_000, "a", "info", "\tat late.Frame(Frame.java:9)"),
            (5_001, "a", "info", "GET /health 200"),
        ];
        assert_eq!(
            folded(&lines),
            [false, false, true, false, true, true, true, false, false]
        );
    }

    #[test]
    fn python_go_dotnet_and_node_traces() {
        let python = [
            (0, "p", "error", "Traceback (most recent call last):"),
            (
                0,
                "p",
                "error",
                "  File \"/app/main.py\", line 12, in handler",
            ),
            (0, "p", "error", "    return db.query(sql)"),
            (0, "p", "error", "ValueError: invalid literal for int()"),
        ];
        assert_eq!(folded(&python), [false, true, true, false]);
        let go = [
            (
                0,
                "g",
                "error",
                "panic: runtime error: invalid memory address or nil pointer dereference",
            ),
            (0, "g", "error", "goroutine 1 [running]:"),
            (0, "g", "error", "main.handler(0x0)"),
            (0, "g", "error", "\t/app/main.go:27 +0x1d"),
            (
                0,
                "g",
                "error",
                "created by net/http.(*Server).Serve in goroutine 1",
            ),
        ];
        assert_eq!(folded(&go), [false, true, true, true, true]);
        let dotnet_node = [
            (
                0,
                "d",
                "error",
                "System.InvalidOperationException: Sequence contains no elements",
            ),
            (
                0,
                "d",
                "error",
                "   at System.Linq.ThrowHelper.ThrowNoElementsException()",
            ),
            (
                0,
                "d",
                "error",
                "--- End of stack trace from previous location ---",
            ),
            (
                0,
                "n",
                "error",
                "TypeError: Cannot read properties of undefined (reading 'id')",
            ),
            (0, "n", "error", "    at handler (/app/server.js:14:22)"),
        ];
        assert_eq!(folded(&dotnet_node), [false, true, true, false, true]);
    }

    #[test]
    fn indented_lines_after_ordinary_info_records_are_not_frames() {
        let lines = [
            (0, "a", "info", "config loaded:"),
            (0, "a", "info", "    at_start = true"),
            (0, "a", "info", "  at 10:00 the job runs"),
        ];
        assert_eq!(folded(&lines), [false, false, false]);
    }
}
