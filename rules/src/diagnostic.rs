//! Errors in rule files, reported the way compilers do: `file:line:col`, the source line, a
//! caret under the spot, and a suggestion where one can be guessed.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A position in a rule file (1-based, as editors count).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
}

impl Location {
    /// A location.
    pub fn new(line: u64, column: u64) -> Location {
        Location { line, column }
    }
}

impl From<sqlparser::tokenizer::Location> for Location {
    fn from(l: sqlparser::tokenizer::Location) -> Location {
        Location::new(l.line, l.column)
    }
}

/// A rule file's text and name, shared by every error that points into it.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its text.
    pub text: Arc<str>,
}

impl SourceFile {
    /// A source file. A leading byte-order mark is dropped: editors do not count it as a
    /// column, and it is not part of the first statement.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> SourceFile {
        let text: Arc<str> = text.into();
        let text = match text.strip_prefix('\u{feff}') {
            Some(rest) => Arc::from(rest),
            None => text,
        };
        SourceFile {
            path: path.into(),
            text,
        }
    }

    /// The text of line `n` (1-based).
    pub fn line(&self, n: u64) -> Option<&str> {
        self.text.lines().nth(n.checked_sub(1)? as usize)
    }
}

/// One error in a rule, with where it is and what might fix it.
#[derive(Clone, Debug, thiserror::Error)]
pub struct RuleError {
    /// The file.
    pub path: PathBuf,
    /// Where in it.
    pub at: Location,
    /// What is wrong.
    pub message: String,
    /// What to do about it, if we can guess.
    pub help: Option<String>,
    /// The offending source line, for the caret display.
    pub source_line: Option<String>,
}

impl RuleError {
    /// An error at `at` in `file`.
    pub fn new(file: &SourceFile, at: Location, message: impl Into<String>) -> RuleError {
        RuleError {
            path: file.path.clone(),
            at,
            message: message.into(),
            help: None,
            source_line: file.line(at.line).map(str::to_owned),
        }
    }

    /// Adds a suggestion.
    pub fn help(mut self, help: impl Into<String>) -> RuleError {
        self.help = Some(help.into());
        self
    }

    /// An error about a whole file (it cannot be read).
    pub fn file(path: &Path, message: impl Into<String>) -> RuleError {
        RuleError {
            path: path.to_path_buf(),
            at: Location::new(1, 1),
            message: message.into(),
            help: None,
            source_line: None,
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.path.display(),
            self.at.line,
            self.at.column,
            self.message
        )?;
        if let Some(line) = &self.source_line {
            let gutter = self.at.line.to_string();
            let pad = " ".repeat(gutter.len());
            // Tabs keep their width under the caret line.
            let indent: String = line
                .chars()
                .take(self.at.column.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "\n{pad} |\n{gutter} | {line}\n{pad} | {indent}^")?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        Ok(())
    }
}

/// The closest candidate to a misspelled name, if one is close enough to be a likely typo.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    let limit = (name.len() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&name, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// Optimal-string-alignment distance: edits plus swaps of neighbours (`levle` → `level` is 1).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_a_compiler() {
        let file = SourceFile::new("queries/x.sql", "SELECT *\nFROM logz\n");
        let e = RuleError::new(&file, Location::new(2, 6), "unknown stream `logz`")
            .help("did you mean `logs`?");
        assert_eq!(
            e.to_string(),
            "queries/x.sql:2:6: error: unknown stream `logz`\n  |\n2 | FROM logz\n  |      ^\n  = help: did you mean `logs`?"
        );
    }

    #[test]
    fn suggests_close_names_only() {
        let cols = ["service", "severity", "status", "value"];
        assert_eq!(suggest("sevrity", cols), Some("severity"));
        assert_eq!(suggest("servce", cols), Some("service"));
        assert_eq!(suggest("zzz", cols), None);
        assert_eq!(suggest("levle", ["level", "message"]), Some("level"));
    }
}
