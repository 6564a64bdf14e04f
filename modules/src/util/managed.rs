//! Files whose whole content kprov decides (file, sysctl, repos, units, crictl…): gather
//! compares sha256, apply writes atomically with `kp_put`.

use crate::facts::file::{FileFact, Read};
use crate::facts::Fact;
use crate::script::{b64, quote, sha256_hex};
use crate::util::args::text;
use crate::{Diff, ModuleError, Plan, State};

/// Shell args for optional attributes (empty = leave alone).
pub(crate) fn attr_args(mode: Option<&str>, owner: Option<&str>, group: Option<&str>) -> String {
    [mode, owner, group]
        .iter()
        .map(|v| quote(v.unwrap_or("")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Texts for a unified diff: (before, after).
pub(crate) type Texts = (Option<String>, Option<String>);

/// One file's change, to be folded into a [`Diff`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FileChange {
    pub path: String,
    pub summary: String,
    /// Text for the unified diff: `(before, after)` when the content changes.
    pub texts: Option<Texts>,
}

/// Folds file changes (in order) into one [`Diff`]; texts of several files are joined
/// with `==> path <==` headers.
pub(crate) fn fold(changes: Vec<FileChange>, extra: Vec<String>) -> Diff {
    if changes.is_empty() && extra.is_empty() {
        return Diff::Unchanged;
    }
    let summary = changes
        .iter()
        .map(|c| c.summary.clone())
        .chain(extra)
        .collect::<Vec<_>>()
        .join("; ");
    let with_text: Vec<&FileChange> = changes.iter().filter(|c| c.texts.is_some()).collect();
    let (before, after) = match with_text.as_slice() {
        [] => (None, None),
        [one] => one.texts.clone().unwrap_or((None, None)),
        many => {
            let join = |pick: fn(&Texts) -> &Option<String>| {
                let mut all = String::new();
                for c in many {
                    let side = c.texts.as_ref().and_then(|t| pick(t).clone());
                    all.push_str(&format!("==> {} <==\n", c.path));
                    all.push_str(side.as_deref().unwrap_or("(binary or unreadable)\n"));
                }
                Some(all)
            };
            (join(|t| &t.0), join(|t| &t.1))
        }
    };
    Diff::Change {
        summary,
        before,
        after,
    }
}

/// Several diffs as one: summaries joined, the first file text kept for the unified diff.
pub(crate) fn merge(parts: Vec<Diff>) -> Diff {
    let mut summaries = Vec::new();
    let mut texts = None;
    for d in parts {
        match d {
            Diff::Unchanged => {}
            Diff::Run { summary } => summaries.push(summary),
            Diff::Change {
                summary,
                before,
                after,
            } => {
                summaries.push(summary);
                if texts.is_none() && (before.is_some() || after.is_some()) {
                    texts = Some((before, after));
                }
            }
        }
    }
    if summaries.is_empty() {
        return Diff::Unchanged;
    }
    let (before, after) = texts.unwrap_or((None, None));
    Diff::Change {
        summary: summaries.join("; "),
        before,
        after,
    }
}

/// A file whose content, mode, owner and group kprov decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManagedFile {
    pub path: String,
    pub content: Vec<u8>,
    pub sha: String,
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    /// Hide the content in diffs (secrets).
    pub secret: bool,
}

impl ManagedFile {
    pub fn new(path: impl Into<String>, content: impl Into<Vec<u8>>) -> ManagedFile {
        let content = content.into();
        ManagedFile {
            path: path.into(),
            sha: sha256_hex(&content),
            content,
            mode: None,
            owner: None,
            group: None,
            secret: false,
        }
    }

    /// The fact its gather reads under `prefix`: stat and sha256, and the content only when
    /// it differs (never for secrets).
    pub fn fact(&self, prefix: &str) -> FileFact {
        let read = if self.secret {
            Read::ShaOnly
        } else {
            Read::ContentUnless(self.sha.clone())
        };
        FileFact::new(prefix, &self.path, read)
    }

    /// Gather fragment line: fields `PREFIXstat`, `PREFIXsha`, `PREFIXcontent`.
    pub fn gather(&self, prefix: &str) -> String {
        self.fact(prefix).gather()
    }

    /// What differs on the host, or `None`.
    pub fn change(
        &self,
        module: &str,
        state: &State,
        prefix: &str,
    ) -> Result<Option<FileChange>, ModuleError> {
        let fact = self.fact(prefix);
        let file = fact.parse(module, state)?;
        let mut parts = Vec::new();
        let mut texts = None;
        let new_text = if self.secret {
            None
        } else {
            text(&self.content)
        };
        match &file.stat {
            None => {
                parts.push(format!("create {}", self.path));
                texts = Some((Some(String::new()), new_text));
            }
            Some(stat) if !stat.is_file() => {
                return Err(ModuleError::conflict(
                    module,
                    format!(
                        "{} is a {}, expected a regular file; remove it first",
                        self.path, stat.kind
                    ),
                ))
            }
            Some(stat) => {
                let sha = file
                    .sha
                    .as_deref()
                    .ok_or_else(|| ModuleError::missing(module, &fact.field("sha")))?;
                if sha != self.sha {
                    parts.push(format!("update {}", self.path));
                    let old = if self.secret {
                        None
                    } else {
                        file.content.as_deref().and_then(text)
                    };
                    texts = Some((old, new_text));
                }
                let attrs = stat.attr_changes(
                    self.mode.as_deref(),
                    self.owner.as_deref(),
                    self.group.as_deref(),
                );
                if !attrs.is_empty() {
                    parts.push(format!("{} on {}", attrs.join(", "), self.path));
                }
            }
        }
        if self.secret && texts.is_some() {
            parts.push("(content hidden)".to_string());
        }
        if parts.is_empty() {
            return Ok(None);
        }
        Ok(Some(FileChange {
            path: self.path.clone(),
            summary: parts.join(", "),
            texts,
        }))
    }

    /// The whole diff of a module that only manages this file.
    pub fn diff(&self, module: &str, state: &State) -> Result<Diff, ModuleError> {
        Ok(fold(
            self.change(module, state, "")?.into_iter().collect(),
            Vec::new(),
        ))
    }

    /// The whole plan of a module that only manages this file (fields gathered with
    /// prefix `""`).
    pub fn plan(&self, module: &str, state: &State) -> Result<Plan, ModuleError> {
        Ok(Plan::new(self.diff(module, state)?, self.apply()))
    }

    /// Apply fragment line: writes content and attributes when they differ. Text travels
    /// single-quoted (no decoding process on the host), anything else base64-encoded.
    pub fn apply(&self) -> String {
        let (content, encoding) = match std::str::from_utf8(&self.content) {
            Ok(text) if !text.contains('\0') => (quote(text), ""),
            _ => (quote(&b64(&self.content)), " b64"),
        };
        format!(
            "kp_put {} {} {} {}{encoding} || return\n",
            quote(&self.path),
            content,
            quote(&self.sha),
            attr_args(
                self.mode.as_deref(),
                self.owner.as_deref(),
                self.group.as_deref()
            )
        )
    }
}

/// The fact a file to remove gathers: its stat and content (for the diff).
pub(crate) fn removal_fact(prefix: &str, path: &str) -> FileFact {
    FileFact::new(prefix, path, Read::Content)
}

/// Change for removing a file (`state: absent`) gathered by [`removal_fact`], or `None`
/// when already gone.
pub(crate) fn removal(
    module: &str,
    state: &State,
    prefix: &str,
    path: &str,
) -> Result<Option<FileChange>, ModuleError> {
    let file = removal_fact(prefix, path).parse(module, state)?;
    match file.stat {
        None => Ok(None),
        Some(stat) if stat.is_dir() => Err(ModuleError::conflict(
            module,
            format!("{path} is a directory, expected a file; use the directory module"),
        )),
        Some(_) => Ok(Some(FileChange {
            path: path.to_string(),
            summary: format!("remove {path}"),
            texts: Some((file.content.as_deref().and_then(text), Some(String::new()))),
        })),
    }
}
