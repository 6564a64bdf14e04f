//! Files whose whole content kprov decides (file, sysctl, repos, units, crictl…): gather
//! compares sha256, apply writes atomically with `kp_put`.

use crate::script::{b64, quote, sha256_hex};
use crate::util::args::text;
use crate::{Diff, ModuleError, State};

/// `stat` of a path as `kp_stat_file` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileStat {
    /// `regular file`, `regular empty file`, `directory`, …
    pub kind: String,
    pub mode: String,
    pub uid: String,
    pub gid: String,
    pub user: String,
    pub group: String,
}

impl FileStat {
    /// Parses the `PREFIXstat` field; `None` when the path does not exist.
    pub fn from_state(
        module: &str,
        state: &State,
        prefix: &str,
    ) -> Result<Option<FileStat>, ModuleError> {
        let field = format!("{prefix}stat");
        let raw = state.require(module, &field)?;
        if raw == "absent" {
            return Ok(None);
        }
        let parts: Vec<&str> = raw.split('|').collect();
        let [kind, mode, uid, gid, user, group, _size] = parts[..] else {
            return Err(ModuleError::conflict(
                module,
                format!("unexpected stat output `{raw}`"),
            ));
        };
        Ok(Some(FileStat {
            kind: kind.to_string(),
            mode: mode.to_string(),
            uid: uid.to_string(),
            gid: gid.to_string(),
            user: user.to_string(),
            group: group.to_string(),
        }))
    }

    pub fn is_file(&self) -> bool {
        self.kind.starts_with("regular")
    }

    pub fn is_dir(&self) -> bool {
        self.kind == "directory"
    }

    /// Summary parts for attributes that differ from the wanted ones.
    pub fn attr_changes(
        &self,
        mode: Option<&str>,
        owner: Option<&str>,
        group: Option<&str>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(mode) = mode.filter(|m| *m != self.mode) {
            out.push(format!("mode {} → {mode}", self.mode));
        }
        if let Some(owner) = owner.filter(|o| *o != self.uid && *o != self.user) {
            out.push(format!("owner {} → {owner}", self.user));
        }
        if let Some(group) = group.filter(|g| *g != self.gid && *g != self.group) {
            out.push(format!("group {} → {group}", self.group));
        }
        out
    }
}

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

    /// Gather fragment line: fields `PREFIXstat`, `PREFIXsha`, `PREFIXcontent` (only when
    /// the content differs, and never for secrets).
    pub fn gather(&self, prefix: &str) -> String {
        // A leading `-` keeps a secret file's current content on the host.
        let want = if self.secret {
            format!("-{}", self.sha)
        } else {
            self.sha.clone()
        };
        format!(
            "kp_stat_file {} {} {} || return\n",
            quote(prefix),
            quote(&self.path),
            quote(&want)
        )
    }

    /// What differs on the host, or `None`.
    pub fn change(
        &self,
        module: &str,
        state: &State,
        prefix: &str,
    ) -> Result<Option<FileChange>, ModuleError> {
        let stat = FileStat::from_state(module, state, prefix)?;
        let mut parts = Vec::new();
        let mut texts = None;
        let new_text = if self.secret {
            None
        } else {
            text(&self.content)
        };
        match &stat {
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
                let sha = state.require(module, &format!("{prefix}sha"))?;
                if sha != self.sha {
                    parts.push(format!("update {}", self.path));
                    let old = if self.secret {
                        None
                    } else {
                        state.bytes(&format!("{prefix}content")).and_then(text)
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

    /// Apply fragment line: writes content and attributes when they differ. Text travels
    /// single-quoted (no decoding process on the host), anything else base64-encoded.
    /// The whole diff of a module that only manages this file.
    pub fn diff(&self, module: &str, state: &State) -> Result<Diff, ModuleError> {
        Ok(fold(
            self.change(module, state, "")?.into_iter().collect(),
            Vec::new(),
        ))
    }

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

/// Change for removing a file (`state: absent`), or `None` when already gone.
pub(crate) fn removal(
    module: &str,
    state: &State,
    prefix: &str,
    path: &str,
) -> Result<Option<FileChange>, ModuleError> {
    match FileStat::from_state(module, state, prefix)? {
        None => Ok(None),
        Some(stat) if stat.is_dir() => Err(ModuleError::conflict(
            module,
            format!("{path} is a directory, expected a file; use the directory module"),
        )),
        Some(_) => Ok(Some(FileChange {
            path: path.to_string(),
            summary: format!("remove {path}"),
            texts: Some((
                state.bytes(&format!("{prefix}content")).and_then(text),
                Some(String::new()),
            )),
        })),
    }
}
