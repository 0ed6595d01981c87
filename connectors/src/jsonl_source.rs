//! Events from files, directories and stdin: native JSON Lines, or any codec's messages one per
//! line, inputs merged by event time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use kaizen_model::{peek_ts, Event, Timestamp, Topology};

use crate::codecs::{decode_with, DecodeContext, Format};

/// One place to read events from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputSpec {
    /// A file of native JSON Lines.
    File(PathBuf),
    /// Standard input.
    Stdin,
}

impl InputSpec {
    /// How the input is named in error messages.
    pub fn name(&self) -> String {
        match self {
            InputSpec::File(p) => p.display().to_string(),
            InputSpec::Stdin => "<stdin>".to_owned(),
        }
    }
}

/// An input that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The path does not exist.
    #[error("input not found: {0}")]
    NotFound(PathBuf),
    /// A directory with no `.jsonl` / `.ndjson` files in it.
    #[error("no .jsonl or .ndjson files in directory {0}")]
    EmptyDirectory(PathBuf),
    /// Opening or reading failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// What.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The topology file is unusable. The message names the file and says why (`Display`
    /// carries it all, so an error chain prints it once).
    #[error("{}: {reason}", path.display())]
    Topology {
        /// Which file.
        path: PathBuf,
        /// Why.
        reason: kaizen_model::TopologyError,
    },
    /// A topology directory with no topology or catalog file in it.
    #[error(
        "no topology files in directory {0} (kaizen's .json, or Backstage .yaml/.yml catalog files)"
    )]
    NoTopologyFiles(PathBuf),
}

/// Expands paths into inputs: files as given, directories into their `.jsonl` / `.ndjson` files
/// (recursively, sorted by path so the order never depends on the file system), `-` into stdin.
pub fn expand_inputs(paths: &[PathBuf]) -> Result<Vec<InputSpec>, SourceError> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(InputSpec::Stdin);
        } else if p.is_dir() {
            let mut files = Vec::new();
            collect_jsonl(p, &mut files)?;
            if files.is_empty() {
                return Err(SourceError::EmptyDirectory(p.clone()));
            }
            files.sort();
            out.extend(files.into_iter().map(InputSpec::File));
        } else if p.exists() {
            out.push(InputSpec::File(p.clone()));
        } else {
            return Err(SourceError::NotFound(p.clone()));
        }
    }
    Ok(out)
}

/// Splits an input argument into its format and path: `FORMAT:PATH` when the text before the
/// first `:` is a codec name (as [`Format`] parses it: `otlp_json:logs.jsonl`,
/// `alertmanager:-`), otherwise a native path as written (`events.jsonl`,
/// `./data:2026.jsonl`).
pub fn split_format(arg: &Path) -> (Format, PathBuf) {
    if let Some((prefix, rest)) = arg.to_str().and_then(|a| a.split_once(':')) {
        if let Ok(format) = prefix.parse::<Format>() {
            return (format, PathBuf::from(rest));
        }
    }
    (Format::Native, arg.to_owned())
}

/// [`expand_inputs`] for arguments that may name their format ([`split_format`]): every input
/// with the format its argument named (a directory's files all in it).
pub fn expand_formatted_inputs(args: &[PathBuf]) -> Result<Vec<(InputSpec, Format)>, SourceError> {
    let mut out = Vec::new();
    for arg in args {
        let (format, path) = split_format(arg);
        out.extend(
            expand_inputs(std::slice::from_ref(&path))?
                .into_iter()
                .map(|i| (i, format)),
        );
    }
    Ok(out)
}

fn collect_jsonl(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SourceError> {
    let io_err = |source| SourceError::Io {
        path: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        if path.is_dir() {
            collect_jsonl(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("jsonl" | "ndjson")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// A file that cannot be opened: missing files get their own, clearer error.
fn open_error(path: &Path, source: io::Error) -> SourceError {
    if source.kind() == io::ErrorKind::NotFound {
        SourceError::NotFound(path.to_owned())
    } else {
        SourceError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Reads the topology (`docs/topology.md`). The shape is picked by extension: `.yaml` / `.yml`
/// is a Backstage catalog file (`catalog-info.yaml`), anything else kaizen's JSON. A directory
/// is every `.json`, `.yaml` and `.yml` file under it (recursively, hidden entries skipped, in
/// path order) merged into one topology; there a YAML file with no Backstage entity in it is
/// another tool's and skipped. Every error names the file.
pub fn read_topology(path: &Path) -> Result<Topology, SourceError> {
    if !path.is_dir() {
        return read_topology_file(path);
    }
    let mut files = Vec::new();
    collect_topology_files(path, &mut files)?;
    files.sort();
    let mut topology = Topology::default();
    let mut read = 0;
    for file in files {
        let part = match read_topology_file(&file) {
            Err(SourceError::Topology {
                reason: kaizen_model::TopologyError::NoEntities,
                ..
            }) if is_yaml(&file) => continue,
            part => part?,
        };
        read += 1;
        topology = topology
            .merge(part)
            .map_err(|reason| SourceError::Topology {
                path: file.clone(),
                reason,
            })?;
    }
    if read == 0 {
        return Err(SourceError::NoTopologyFiles(path.to_owned()));
    }
    Ok(topology)
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

fn read_topology_file(path: &Path) -> Result<Topology, SourceError> {
    let text = std::fs::read_to_string(path).map_err(|e| open_error(path, e))?;
    let parsed = if is_yaml(path) {
        Topology::from_backstage_yaml(&text)
    } else {
        Topology::from_json(&text)
    };
    parsed.map_err(|reason| SourceError::Topology {
        path: path.to_owned(),
        reason,
    })
}

fn collect_topology_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SourceError> {
    let io_err = |source| SourceError::Io {
        path: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'))
        {
            continue;
        }
        if path.is_dir() {
            collect_topology_files(&path, out)?;
        } else if is_yaml(&path) || path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// A line that could not be decoded: where it was, why, and the line itself, so that nothing
/// is lost (it goes to the dead-letter sink).
#[derive(Clone, Debug, PartialEq)]
pub struct DecodeFailure {
    /// The input's name.
    pub source: String,
    /// 1-based line number.
    pub line: u64,
    /// What was wrong.
    pub reason: String,
    /// The raw line (lossily decoded if it was not UTF-8).
    pub raw: String,
}

impl std::fmt::Display for DecodeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.source, self.line, self.reason)
    }
}

/// Reads events from a set of inputs merged by event time, yielding each line decoded or a
/// [`DecodeFailure`]. Blank lines are skipped.
///
/// Each input is in one [`Format`]: native JSON Lines (one event per line, [`Event::from_json`])
/// or any codec's messages, one per line ([`decode_with`], without a transport time, so that a
/// firing webhook alert takes its `startsAt`; a file's name stands for the topic), base64
/// encoded for the binary `otlp_proto*` formats.
///
/// The merge: every input is read in its own order, and of the inputs' next lines the one with
/// the earliest event time comes first (ties: the input given first). A line's event time is
/// its `ts` for native lines and the earliest of its events for other formats; a line without
/// one (undecodable, or a message with no events) keeps its place in its own input. The order
/// depends on nothing but the inputs' bytes, so every reader of the same inputs sees the same
/// lines in the same order, and one input reads in file order.
///
/// ```
/// use kaizen_connectors::JsonlSource;
/// let input = "{\"ts\":1767600000,\"kind\":\"log\",\"service\":\"api\",\"message\":\"hi\"}\nnot json\n";
/// let mut source = JsonlSource::from_reader("example", input.as_bytes());
/// assert!(source.next_record().unwrap().unwrap().is_ok());
/// let failure = source.next_record().unwrap().unwrap().unwrap_err();
/// assert_eq!((failure.source.as_str(), failure.line), ("example", 2));
/// assert!(source.next_record().unwrap().is_none());
/// ```
pub struct JsonlSource {
    /// Every input, to open the same inputs again for another reader.
    inputs: Option<Vec<(InputSpec, Format)>>,
    /// Inputs not opened yet: all are opened, and their first lines read, on the first read.
    unopened: Vec<(InputSpec, Format)>,
    started: bool,
    readers: Vec<Reader>,
    /// The next line of every input that has one left: (event time, input index).
    heads: BinaryHeap<Reverse<(u64, usize)>>,
    /// The input of the current line; it reads its next line on the next advance.
    current: Option<usize>,
}

impl JsonlSource {
    /// A source over native JSON Lines inputs.
    pub fn new(inputs: Vec<InputSpec>) -> Self {
        JsonlSource::with_formats(inputs.into_iter().map(|i| (i, Format::Native)).collect())
    }

    /// A source over inputs each in its own format (see [`expand_formatted_inputs`]).
    pub fn with_formats(inputs: Vec<(InputSpec, Format)>) -> Self {
        JsonlSource {
            inputs: Some(inputs.clone()),
            unopened: inputs,
            started: false,
            readers: Vec::new(),
            heads: BinaryHeap::new(),
            current: None,
        }
    }

    /// A source over one reader of native JSON Lines (tests, pipes).
    pub fn from_reader<R: Read + Send + 'static>(name: &str, reader: R) -> Self {
        JsonlSource::from_reader_as(Format::Native, name, reader)
    }

    /// A source over one reader of `format` messages, one per line.
    pub fn from_reader_as<R: Read + Send + 'static>(format: Format, name: &str, reader: R) -> Self {
        let reader = Reader::new(
            name.to_owned(),
            None,
            format,
            Box::new(BufReader::with_capacity(1 << 16, reader)),
        );
        JsonlSource {
            inputs: None,
            unopened: Vec::new(),
            started: false,
            readers: vec![reader],
            heads: BinaryHeap::new(),
            current: None,
        }
    }

    fn current(&self) -> Option<&Reader> {
        self.current.and_then(|i| self.readers.get(i))
    }

    /// Where the last record came from: the input's name and its 1-based line number.
    pub fn position(&self) -> (&str, u64) {
        match self.current() {
            Some(r) => (r.name.as_str(), r.line_no),
            None => ("", 0),
        }
    }

    /// Another source over the same inputs from their start, for a second reader — when the
    /// inputs are all files (stdin and readers can be read only once).
    pub fn reopen(&self) -> Option<JsonlSource> {
        let inputs = self.inputs.as_ref()?;
        inputs
            .iter()
            .all(|(i, _)| matches!(i, InputSpec::File(_)))
            .then(|| JsonlSource::with_formats(inputs.clone()))
    }

    /// Advances to the next non-blank line in event-time order; `Ok(false)` at the end of all
    /// inputs.
    pub fn next_line(&mut self) -> Result<bool, SourceError> {
        if !self.started {
            self.started = true;
            for (spec, format) in std::mem::take(&mut self.unopened) {
                self.readers.push(open(&spec, format)?);
            }
            for (i, reader) in self.readers.iter_mut().enumerate() {
                if let Some(t) = reader.advance()? {
                    self.heads.push(Reverse((t, i)));
                }
            }
        } else if let Some(i) = self.current.take() {
            if let Some(t) = self.readers[i].advance()? {
                self.heads.push(Reverse((t, i)));
            }
        }
        match self.heads.pop() {
            Some(Reverse((_, i))) => {
                self.current = Some(i);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The current line, without its line ending.
    pub fn line(&self) -> &[u8] {
        self.current().map_or(&[], |r| trim_line(&r.buf))
    }

    /// The newest event time in the current line, known without decoding a native line (its
    /// `ts`, peeked), `None` when it has none.
    pub fn newest_time(&self) -> Option<Timestamp> {
        self.current().and_then(|r| r.newest)
    }

    /// How many events the current line holds, known without decoding a native line: 1 for
    /// a native line (even one that will not decode), the message's events for other formats
    /// (0 when it does not decode).
    pub fn event_count(&self) -> usize {
        self.current().map_or(0, |r| r.count)
    }

    /// Decodes the current line as one event: a native line, or a message of another format
    /// that holds exactly one event ([`JsonlSource::decode_events`] reads any message).
    pub fn decode_line(&self) -> Result<Event, DecodeFailure> {
        let Some(r) = self.current() else {
            return Err(failure("", 0, "no current line".into(), &[]));
        };
        if r.format == Format::Native {
            return r.decode_native();
        }
        match (&r.decoded, r.events.as_slice()) {
            (Err(reason), _) => Err(r.failure(reason.clone())),
            (Ok(()), [one]) => Ok(one.clone()),
            (Ok(()), events) => Err(r.failure(format!(
                "{}: the message holds {} events, not one",
                r.format,
                events.len()
            ))),
        }
    }

    /// Decodes the current line, appending its events to `out`; returns how many.
    pub fn decode_events(&mut self, out: &mut Vec<Event>) -> Result<usize, DecodeFailure> {
        let Some(r) = self.current.and_then(|i| self.readers.get_mut(i)) else {
            return Ok(0);
        };
        if r.format == Format::Native {
            out.push(r.decode_native()?);
            return Ok(1);
        }
        match std::mem::replace(&mut r.decoded, Ok(())) {
            Err(reason) => Err(r.failure(reason)),
            Ok(()) => {
                let n = r.events.len();
                out.append(&mut r.events);
                Ok(n)
            }
        }
    }

    /// The next record: `Ok(Some(Ok(event)))`, `Ok(Some(Err(failure)))` for a bad line,
    /// `Ok(None)` at the end of all inputs, `Err` if an input cannot be read.
    pub fn next_record(&mut self) -> Result<Option<Result<Event, DecodeFailure>>, SourceError> {
        Ok(self.next_line()?.then(|| self.decode_line()))
    }
}

/// One open input and its next (or current) line.
struct Reader {
    name: String,
    /// What the codecs get as [`DecodeContext::topic`]: the file's name.
    topic: Option<String>,
    format: Format,
    reader: Box<dyn BufRead + Send>,
    line_no: u64,
    buf: Vec<u8>,
    /// The event time the input's lines merge at: the last one seen.
    merge_at: u64,
    /// The line's newest event time.
    newest: Option<Timestamp>,
    /// How many events the line holds (see [`JsonlSource::event_count`]).
    count: usize,
    /// Formats other than native: the line decoded, since its event times are needed before
    /// the line is handed out.
    decoded: Result<(), String>,
    events: Vec<Event>,
}

impl Reader {
    fn new(
        name: String,
        topic: Option<String>,
        format: Format,
        reader: Box<dyn BufRead + Send>,
    ) -> Reader {
        Reader {
            name,
            topic,
            format,
            reader,
            line_no: 0,
            buf: Vec::with_capacity(1024),
            merge_at: 0,
            newest: None,
            count: 0,
            decoded: Ok(()),
            events: Vec::new(),
        }
    }

    /// Reads the next non-blank line and returns the event time it merges at; `None` at the
    /// end of the input.
    fn advance(&mut self) -> Result<Option<u64>, SourceError> {
        loop {
            self.buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|source| SourceError::Io {
                    path: self.name.clone(),
                    source,
                })?;
            if n == 0 {
                return Ok(None);
            }
            self.line_no += 1;
            if !trim_line(&self.buf).iter().all(u8::is_ascii_whitespace) {
                break;
            }
        }
        let line = trim_line(&self.buf);
        let earliest = if self.format == Format::Native {
            self.newest = peek_ts(line);
            self.count = 1;
            self.newest
        } else {
            self.events.clear();
            self.decoded =
                decode_message(self.format, line, self.topic.as_deref(), &mut self.events);
            self.count = self.events.len();
            self.newest = self.events.iter().map(|e| e.ts).max();
            self.events.iter().map(|e| e.ts).min()
        };
        if let Some(t) = earliest {
            self.merge_at = t.as_millis();
        }
        Ok(Some(self.merge_at))
    }

    fn failure(&self, reason: String) -> DecodeFailure {
        failure(&self.name, self.line_no, reason, trim_line(&self.buf))
    }

    fn decode_native(&self) -> Result<Event, DecodeFailure> {
        match std::str::from_utf8(trim_line(&self.buf)) {
            Err(e) => Err(self.failure(format!("not UTF-8: {e}"))),
            Ok(text) => Event::from_json(text).map_err(|e| self.failure(e.to_string())),
        }
    }
}

fn failure(source: &str, line: u64, reason: String, raw: &[u8]) -> DecodeFailure {
    DecodeFailure {
        source: source.to_owned(),
        line,
        reason,
        raw: String::from_utf8_lossy(raw).into_owned(),
    }
}

/// Decodes one line of a format other than native: the message itself, or its base64 for the
/// binary formats. The error is the dead-letter reason.
fn decode_message(
    format: Format,
    line: &[u8],
    topic: Option<&str>,
    out: &mut Vec<Event>,
) -> Result<(), String> {
    let ctx = DecodeContext {
        topic,
        received: None,
    };
    let bytes;
    let payload = if matches!(format, Format::OtlpProto(_)) {
        bytes =
            base64_decode(line.trim_ascii()).map_err(|e| format!("{format}: not base64: {e}"))?;
        &bytes[..]
    } else {
        line
    };
    decode_with(format, payload, &ctx, out)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Base64, standard or URL-safe alphabet, padding optional.
fn base64_decode(text: &[u8]) -> Result<Vec<u8>, String> {
    let body = text
        .strip_suffix(b"==")
        .or_else(|| text.strip_suffix(b"="))
        .unwrap_or(text);
    if body.len() % 4 == 1 {
        return Err(format!(
            "{} characters is not a whole number of bytes",
            body.len()
        ));
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for (i, &c) in body.iter().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => {
                return Err(format!(
                    "unexpected {:?} at column {}",
                    char::from(c),
                    i + 1
                ))
            }
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

fn trim_line(buf: &[u8]) -> &[u8] {
    let mut end = buf.len();
    while end > 0 && matches!(buf[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &buf[..end]
}

fn open(spec: &InputSpec, format: Format) -> Result<Reader, SourceError> {
    let reader: Box<dyn BufRead + Send> = match spec {
        InputSpec::Stdin => Box::new(BufReader::with_capacity(1 << 16, io::stdin())),
        InputSpec::File(path) => {
            let file = File::open(path).map_err(|e| open_error(path, e))?;
            Box::new(BufReader::with_capacity(1 << 16, file))
        }
    };
    let topic = match spec {
        InputSpec::File(path) => path.file_name().map(|n| n.to_string_lossy().into_owned()),
        InputSpec::Stdin => None,
    };
    Ok(Reader::new(spec.name(), topic, format, reader))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_files_in_order_and_reports_bad_lines_with_their_position() {
        let dir = std::env::temp_dir().join(format!("kaizen-src-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let good =
            r#"{"ts":"2026-01-05T00:00:00Z","kind":"metric","service":"a","name":"m","value":1}"#;
        std::fs::write(
            dir.join("b.jsonl"),
            format!("{good}\n\n{{\"kind\":\"metric\"}}\n"),
        )
        .unwrap();
        std::fs::write(dir.join("sub/a.jsonl"), format!("{good}\r\n")).unwrap();
        std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
        let inputs = expand_inputs(std::slice::from_ref(&dir)).unwrap();
        assert_eq!(inputs.len(), 2);
        assert_eq!(inputs[0], InputSpec::File(dir.join("b.jsonl")));
        let mut src = JsonlSource::new(inputs);
        let mut records = Vec::new();
        while let Some(r) = src.next_record().unwrap() {
            records.push(r);
        }
        assert_eq!(records.len(), 3);
        let failure = records[1].clone().unwrap_err();
        assert_eq!(failure.line, 3);
        assert!(failure.reason.contains("ts"), "{failure}");
        assert!(records[2].is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_inputs_are_clear_errors() {
        let err = expand_inputs(&[PathBuf::from("/definitely/not/here.jsonl")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "input not found: /definitely/not/here.jsonl"
        );
    }

    /// A fresh scratch directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kaizen-topo-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn topology_errors_name_the_file_and_the_key() {
        let dir = scratch("bad");
        let json = dir.join("topology.json");
        std::fs::write(
            &json,
            r#"{"services":[{"name":"frontend"}],"edgse":[{"from":"frontend","to":"checkout"}]}"#,
        )
        .unwrap();
        let msg = read_topology(&json).unwrap_err().to_string();
        assert!(msg.starts_with(&format!("{}: ", json.display())), "{msg}");
        assert!(msg.contains("unknown field `edgse`"), "{msg}");

        let yaml = dir.join("catalog-info.yaml");
        std::fs::write(
            &yaml,
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {title: x}\n",
        )
        .unwrap();
        let msg = read_topology(&yaml).unwrap_err().to_string();
        assert!(msg.starts_with(&format!("{}: ", yaml.display())), "{msg}");
        assert!(msg.contains("document 1 (Component)"), "{msg}");

        let missing = dir.join("nope.json");
        let msg = read_topology(&missing).unwrap_err().to_string();
        assert!(msg.contains("nope.json"), "{msg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn topology_shape_follows_the_extension() {
        let dir = scratch("ext");
        let json = dir.join("topology.json");
        std::fs::write(
            &json,
            r#"{"services":[{"name":"frontend","user_facing":true}],
                "edges":[{"from":"frontend","to":"checkout"}]}"#,
        )
        .unwrap();
        let t = read_topology(&json).unwrap();
        assert_eq!(t.edges().count(), 1);
        assert!(t.service("checkout").is_some());

        let yml = dir.join("catalog-info.yml");
        std::fs::write(
            &yml,
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: web}\n\
             spec: {type: website, dependsOn: [component:default/api]}\n",
        )
        .unwrap();
        let t = read_topology(&yml).unwrap();
        assert!(t.service("web").unwrap().user_facing);
        assert_eq!(t.edges().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn topology_directory_merges_its_files() {
        let dir = scratch("dir");
        std::fs::create_dir_all(dir.join("checkout")).unwrap();
        std::fs::create_dir_all(dir.join(".git")).unwrap();
        std::fs::write(
            dir.join("catalog-info.yaml"),
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: web}\n\
             spec: {type: website, owner: team-web, dependsOn: [component:checkout]}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("checkout/catalog-info.yaml"),
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: checkout}\n\
             spec: {owner: group:team-checkout, dependsOn: [resource:orders-db]}\n",
        )
        .unwrap();
        // Another tool's YAML is skipped; hidden directories are not read.
        std::fs::write(
            dir.join("checkout/deploy.yaml"),
            "apiVersion: apps/v1\nkind: Deployment\n",
        )
        .unwrap();
        std::fs::write(dir.join(".git/config.json"), "not json").unwrap();
        std::fs::write(
            dir.join("extra.json"),
            r#"{"edges":[{"from":"checkout","to":"payments"}]}"#,
        )
        .unwrap();
        let t = read_topology(&dir).unwrap();
        let names: Vec<&str> = t.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["web", "checkout", "orders-db", "payments"]);
        let checkout = t.service("checkout").unwrap();
        assert_eq!(checkout.owner.as_deref(), Some("team-checkout"));
        assert_eq!(checkout.depends_on.len(), 2);

        // Two files disagreeing about a service: the error names the second.
        let conflict = dir.join("zz.json");
        std::fs::write(
            &conflict,
            r#"{"services":[{"name":"web","owner":"team-other"}]}"#,
        )
        .unwrap();
        let msg = read_topology(&dir).unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!("{}: ", conflict.display())),
            "{msg}"
        );
        assert!(msg.contains("owner"), "{msg}");

        let empty = scratch("empty");
        let msg = read_topology(&empty).unwrap_err().to_string();
        assert!(msg.contains("no topology files"), "{msg}");
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&empty).unwrap();
    }

    #[test]
    fn formats_are_named_before_the_path_and_unknown_prefixes_stay_paths() {
        let split = |a: &str| split_format(Path::new(a));
        assert_eq!(
            split("otlp_json:logs.jsonl"),
            (Format::OtlpJson, PathBuf::from("logs.jsonl"))
        );
        assert_eq!(
            split("OTLP-PROTO-LOGS:/tmp/a:b.b64"),
            (
                Format::OtlpProto(Some(crate::OtlpSignal::Logs)),
                PathBuf::from("/tmp/a:b.b64")
            )
        );
        assert_eq!(split("alertmanager:-"), (Format::Alertmanager, "-".into()));
        assert_eq!(
            split("./data:2026.jsonl"),
            (Format::Native, "./data:2026.jsonl".into())
        );
        assert_eq!(
            split("events.jsonl"),
            (Format::Native, "events.jsonl".into())
        );
    }

    #[test]
    fn inputs_merge_by_event_time_and_keep_their_own_order() {
        let dir = scratch("merge");
        let line = |s: u64, svc: &str| {
            format!(
                r#"{{"ts":{},"kind":"metric","service":"{svc}","name":"m","value":1}}"#,
                1_767_600_000 + s
            )
        };
        // a: 0, 20, (bad), 30; b: an alert at 10 (firing: startsAt), 20, 25
        std::fs::write(
            dir.join("a.jsonl"),
            [line(0, "a"), line(20, "a"), "{oops".into(), line(30, "a")].join("\n"),
        )
        .unwrap();
        let alert = |s: u64| {
            format!(
                r#"{{"alerts":[{{"status":"firing","labels":{{"alertname":"A","job":"b"}},"startsAt":"{}"}}]}}"#,
                Timestamp::from_millis((1_767_600_000 + s) * 1000)
            )
        };
        std::fs::write(
            dir.join("b.jsonl"),
            format!("{}\n\n{}\n{}\n", alert(10), alert(20), alert(25)),
        )
        .unwrap();
        let inputs = vec![
            (InputSpec::File(dir.join("a.jsonl")), Format::Native),
            (InputSpec::File(dir.join("b.jsonl")), Format::Alertmanager),
        ];
        let mut src = JsonlSource::with_formats(inputs);
        let mut seen = Vec::new();
        let mut events = Vec::new();
        while src.next_line().unwrap() {
            let (name, line) = src.position();
            let name = Path::new(name)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let count = src.event_count();
            let at = src
                .newest_time()
                .map(|t| t.as_millis() / 1000 - 1_767_600_000);
            let ok = src.decode_events(&mut events).is_ok();
            seen.push((name, line, count, at, ok));
        }
        let s = |n: &str, l, c, t: Option<u64>, ok| (n.to_owned(), l, c, t, ok);
        assert_eq!(
            seen,
            [
                s("a.jsonl", 1, 1, Some(0), true),
                s("b.jsonl", 1, 1, Some(10), true),
                s("a.jsonl", 2, 1, Some(20), true),
                s("a.jsonl", 3, 1, None, false),
                s("b.jsonl", 3, 1, Some(20), true),
                s("b.jsonl", 4, 1, Some(25), true),
                s("a.jsonl", 4, 1, Some(30), true),
            ]
        );
        assert_eq!(events.len(), 6);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn binary_formats_are_base64_lines_and_bad_ones_say_why() {
        assert_eq!(base64_decode(b"aGk=").unwrap(), b"hi");
        assert_eq!(base64_decode(b"aGk").unwrap(), b"hi");
        assert_eq!(
            base64_decode(b"-_8=").unwrap(),
            base64_decode(b"+/8").unwrap()
        );
        assert!(base64_decode(b"a").is_err());
        let fixture = |name: &str| {
            std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/codecs/otlp")
                    .join(name),
            )
            .unwrap()
        };
        let pb = fixture("checkout_logs.pb");
        let text = format!(
            "{}\nnot base64!\n{}\n",
            encode(&pb),
            encode(&pb[..pb.len() / 2])
        );
        let mut src = JsonlSource::from_reader_as(
            Format::OtlpProto(Some(crate::OtlpSignal::Logs)),
            "logs.b64",
            std::io::Cursor::new(text.into_bytes()),
        );
        let mut out = Vec::new();
        assert!(src.next_line().unwrap());
        assert_eq!(src.decode_events(&mut out), Ok(2));
        assert!(src.next_line().unwrap());
        let f = src.decode_events(&mut out).unwrap_err();
        assert_eq!((f.line, f.raw.as_str()), (2, "not base64!"));
        assert!(f.reason.starts_with("otlp_proto_logs: not base64"), "{f}");
        assert!(src.next_line().unwrap());
        let f = src.decode_events(&mut out).unwrap_err();
        assert!(f.reason.contains("invalid protobuf"), "{f}");
        assert!(!src.next_line().unwrap());
    }

    fn encode(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
                << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        out
    }

    #[test]
    fn invalid_utf8_is_a_decode_failure_not_an_error() {
        let bytes: &'static [u8] = b"\xff\xfe\n";
        let mut src = JsonlSource::from_reader("bin", bytes);
        let failure = src.next_record().unwrap().unwrap().unwrap_err();
        assert!(failure.reason.starts_with("not UTF-8"));
    }
}
