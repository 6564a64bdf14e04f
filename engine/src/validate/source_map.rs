//! Where every value of a loaded YAML file came from, so any check can point at it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostic;

/// A 1-based line and column in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// Where one value sits: its key (for mapping entries) and the value itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) key: Option<Position>,
    pub(crate) value: Position,
    /// The dotted key shown to users (`runtime.registries."docker.io"`).
    pub(crate) dotted: String,
    /// The source text of a plain scalar (`1.30` stays `1.30`, not 1.3).
    pub(crate) raw: Option<String>,
}

/// Index from JSON pointers (`/hosts/node1/address`) to source positions.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SourceMap {
    file: PathBuf,
    entries: HashMap<String, Entry>,
}

/// Never prints the entries: they hold the source text of values, secrets included.
impl std::fmt::Debug for SourceMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceMap")
            .field("file", &self.file)
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl SourceMap {
    pub(crate) fn new(file: &Path) -> Self {
        SourceMap {
            file: file.to_path_buf(),
            entries: HashMap::new(),
        }
    }

    pub(crate) fn insert(&mut self, pointer: String, entry: Entry) {
        self.entries.insert(pointer, entry);
    }

    /// The file this map describes.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Position of the value at `pointer`, or of its nearest existing ancestor.
    pub fn value_position(&self, pointer: &str) -> Position {
        self.nearest(pointer)
            .map(|e| e.value)
            .unwrap_or(Position { line: 1, column: 1 })
    }

    /// Position of the key of the entry at `pointer` (its value for sequence items), or of
    /// its nearest existing ancestor.
    pub fn key_position(&self, pointer: &str) -> Position {
        self.nearest(pointer)
            .map(|e| e.key.unwrap_or(e.value))
            .unwrap_or(Position { line: 1, column: 1 })
    }

    /// The source text of the plain scalar at `pointer`.
    pub fn raw(&self, pointer: &str) -> Option<&str> {
        self.entries.get(pointer).and_then(|e| e.raw.as_deref())
    }

    /// True when the file has a value at `pointer`.
    pub fn contains(&self, pointer: &str) -> bool {
        self.entries.contains_key(pointer)
    }

    /// The dotted key for `pointer`, as users see it.
    pub fn dotted(&self, pointer: &str) -> String {
        if let Some(entry) = self.entries.get(pointer) {
            return entry.dotted.clone();
        }
        match pointer.rsplit_once('/') {
            None => String::new(),
            Some((parent, last)) => {
                join_dotted(&self.dotted(parent), &unescape_segment(last), false)
            }
        }
    }

    /// A diagnostic pointing at the value at `pointer`.
    pub fn at_value(
        &self,
        pointer: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        self.diagnostic(pointer, self.value_position(pointer), message.into(), hint)
    }

    /// A diagnostic pointing at the key of the entry at `pointer`.
    pub fn at_key(
        &self,
        pointer: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        self.diagnostic(pointer, self.key_position(pointer), message.into(), hint)
    }

    fn diagnostic(
        &self,
        pointer: &str,
        at: Position,
        message: String,
        hint: Option<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            line: at.line,
            column: at.column,
            key: self.dotted(pointer),
            message,
            hint,
        }
    }

    fn nearest(&self, pointer: &str) -> Option<&Entry> {
        let mut current = pointer;
        loop {
            if let Some(entry) = self.entries.get(current) {
                return Some(entry);
            }
            current = current.rsplit_once('/')?.0;
        }
    }
}

/// Appends one segment to a JSON pointer.
pub(crate) fn pointer_join(parent: &str, segment: &str) -> String {
    format!("{parent}/{}", segment.replace('~', "~0").replace('/', "~1"))
}

fn unescape_segment(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// Appends a mapping key (quoted when it has dots or odd characters) or a sequence index.
pub(crate) fn join_dotted(parent: &str, segment: &str, index: bool) -> String {
    if index {
        return format!("{parent}[{segment}]");
    }
    let plain = !segment.is_empty()
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let segment = if plain {
        segment.to_string()
    } else {
        format!("\"{}\"", segment.replace('"', "\\\""))
    };
    if parent.is_empty() {
        segment
    } else {
        format!("{parent}.{segment}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_keys_quote_odd_segments() {
        assert_eq!(join_dotted("", "runtime", false), "runtime");
        assert_eq!(join_dotted("a", "docker.io", false), "a.\"docker.io\"");
        assert_eq!(join_dotted("a.hosts", "1", true), "a.hosts[1]");
    }

    #[test]
    fn pointers_escape_slashes() {
        assert_eq!(pointer_join("/a", "x/y~z"), "/a/x~1y~0z");
        assert_eq!(unescape_segment("x~1y~0z"), "x/y~z");
    }
}
