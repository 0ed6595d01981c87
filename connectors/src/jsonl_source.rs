//! Native JSON Lines from files, directories and stdin.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use kaizen_model::{Event, Topology};

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

/// Reads native JSON Lines from a sequence of inputs, one after the other, yielding each line
/// decoded or a [`DecodeFailure`]. Blank lines are skipped.
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
    inputs: Option<Vec<InputSpec>>,
    pending: std::vec::IntoIter<InputSpec>,
    current: Option<(String, Box<dyn BufRead + Send>)>,
    line_no: u64,
    buf: Vec<u8>,
}

impl JsonlSource {
    /// A source over the given inputs, read in order.
    pub fn new(inputs: Vec<InputSpec>) -> Self {
        JsonlSource {
            inputs: Some(inputs.clone()),
            pending: inputs.into_iter(),
            current: None,
            line_no: 0,
            buf: Vec::with_capacity(1024),
        }
    }

    /// A source over one reader (tests, pipes).
    pub fn from_reader<R: Read + Send + 'static>(name: &str, reader: R) -> Self {
        JsonlSource {
            inputs: None,
            pending: Vec::new().into_iter(),
            current: Some((
                name.to_owned(),
                Box::new(BufReader::with_capacity(1 << 16, reader)),
            )),
            line_no: 0,
            buf: Vec::with_capacity(1024),
        }
    }

    /// Where the last record came from: the input's name and its 1-based line number.
    pub fn position(&self) -> (&str, u64) {
        match &self.current {
            Some((name, _)) => (name.as_str(), self.line_no),
            None => ("", self.line_no),
        }
    }

    /// Another source over the same inputs from their start, for a second reader — when the
    /// inputs are all files (stdin and readers can be read only once).
    pub fn reopen(&self) -> Option<JsonlSource> {
        let inputs = self.inputs.as_ref()?;
        inputs
            .iter()
            .all(|i| matches!(i, InputSpec::File(_)))
            .then(|| JsonlSource::new(inputs.clone()))
    }

    /// Advances to the next non-blank line; `Ok(false)` at the end of all inputs.
    pub fn next_line(&mut self) -> Result<bool, SourceError> {
        loop {
            let Some((name, reader)) = &mut self.current else {
                match self.pending.next() {
                    None => return Ok(false),
                    Some(spec) => {
                        self.current = Some(open(&spec)?);
                        self.line_no = 0;
                        continue;
                    }
                }
            };
            self.buf.clear();
            let n = reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|source| SourceError::Io {
                    path: name.clone(),
                    source,
                })?;
            if n == 0 {
                self.current = None;
                continue;
            }
            self.line_no += 1;
            if !trim_line(&self.buf).iter().all(u8::is_ascii_whitespace) {
                return Ok(true);
            }
        }
    }

    /// The current line, without its line ending.
    pub fn line(&self) -> &[u8] {
        trim_line(&self.buf)
    }

    /// Decodes the current line.
    pub fn decode_line(&self) -> Result<Event, DecodeFailure> {
        let line = self.line();
        let failure = |reason: String| {
            let (source, line_no) = self.position();
            DecodeFailure {
                source: source.to_owned(),
                line: line_no,
                reason,
                raw: String::from_utf8_lossy(line).into_owned(),
            }
        };
        match std::str::from_utf8(line) {
            Err(e) => Err(failure(format!("not UTF-8: {e}"))),
            Ok(text) => Event::from_json(text).map_err(|e| failure(e.to_string())),
        }
    }

    /// The next record: `Ok(Some(Ok(event)))`, `Ok(Some(Err(failure)))` for a bad line,
    /// `Ok(None)` at the end of all inputs, `Err` if an input cannot be read.
    pub fn next_record(&mut self) -> Result<Option<Result<Event, DecodeFailure>>, SourceError> {
        Ok(self.next_line()?.then(|| self.decode_line()))
    }
}

fn trim_line(buf: &[u8]) -> &[u8] {
    let mut end = buf.len();
    while end > 0 && matches!(buf[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &buf[..end]
}

type OpenInput = (String, Box<dyn BufRead + Send>);

fn open(spec: &InputSpec) -> Result<OpenInput, SourceError> {
    match spec {
        InputSpec::Stdin => Ok((
            spec.name(),
            Box::new(BufReader::with_capacity(1 << 16, io::stdin())),
        )),
        InputSpec::File(path) => {
            let file = File::open(path).map_err(|e| open_error(path, e))?;
            Ok((
                spec.name(),
                Box::new(BufReader::with_capacity(1 << 16, file)),
            ))
        }
    }
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
    fn invalid_utf8_is_a_decode_failure_not_an_error() {
        let bytes: &'static [u8] = b"\xff\xfe\n";
        let mut src = JsonlSource::from_reader("bin", bytes);
        let failure = src.next_record().unwrap().unwrap().unwrap_err();
        assert!(failure.reason.starts_with("not UTF-8"));
    }
}
