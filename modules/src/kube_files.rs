//! Control-plane files computed in Rust from what is on the host: gather every path
//! (content included: keys are needed to keep valid certificates), compare with the
//! computed artifacts, write only what differs, atomically with its mode. Diffs name
//! paths only: contents are never put into diff texts.

use kprov_controlplane::{Artifact, Existing};

use crate::managed::FileStat;
use crate::script::{b64, quote, sha256_hex};
use crate::{Diff, ModuleError, State};

/// Field prefix of `path` in the gathered state.
fn prefix(path: &str) -> String {
    format!("{path}:")
}

/// Gather fragment: stat and content of every path.
pub(crate) fn gather(paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| {
            format!(
                "kp_stat_file {} {} '' || return\n",
                quote(&prefix(p)),
                quote(p)
            )
        })
        .collect()
}

/// The files of `paths` present on the host. A directory (or anything else) where a
/// file belongs, or a file over 1 MiB, is a conflict.
pub(crate) fn existing(
    module: &str,
    state: &State,
    paths: &[String],
) -> Result<Existing, ModuleError> {
    let mut found = Existing::empty();
    for path in paths {
        let pre = prefix(path);
        let Some(stat) = FileStat::from_state(module, state, &pre)? else {
            continue;
        };
        if !stat.is_file() {
            return Err(ModuleError::conflict(
                module,
                format!(
                    "{path} is a {}, expected a regular file; remove it",
                    stat.kind
                ),
            ));
        }
        let content = state
            .bytes(&format!("{pre}content"))
            .ok_or_else(|| ModuleError::conflict(module, format!("{path} is larger than 1 MiB")))?;
        found.0.insert(path.clone(), content.to_vec());
    }
    Ok(found)
}

/// The actions last computed for a gathered state. Modules that generate keys must
/// apply exactly what diff showed (new keys are random), so they compute once per state.
#[derive(Debug, Default)]
pub(crate) struct PlanMemo(std::sync::Mutex<Option<(State, Vec<Action>)>>);

impl PlanMemo {
    /// The actions for `state`: remembered, or computed by `plan` and remembered.
    pub(crate) fn get_or(
        &self,
        state: &State,
        plan: impl FnOnce() -> Result<Vec<Action>, ModuleError>,
    ) -> Result<Vec<Action>, ModuleError> {
        if let Ok(guard) = self.0.lock() {
            if let Some((s, actions)) = guard.as_ref() {
                if s == state {
                    return Ok(actions.clone());
                }
            }
        }
        let actions = plan()?;
        if let Ok(mut guard) = self.0.lock() {
            *guard = Some((state.clone(), actions.clone()));
        }
        Ok(actions)
    }
}

/// One file to fix.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Write the artifact; `old_sha` is the gathered content's sha256 (or `absent`).
    Write { artifact: Artifact, old_sha: String },
    /// Content is right; only the mode differs.
    Chmod {
        path: String,
        from: String,
        to: String,
    },
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())
    }
}

impl Action {
    fn summary(&self) -> String {
        match self {
            Action::Write { artifact, old_sha } if old_sha == "absent" => {
                format!("create {}", artifact.path)
            }
            Action::Write { artifact, .. } => format!("update {} (content differs)", artifact.path),
            Action::Chmod { path, from, to } => format!("mode {from} → {to} on {path}"),
        }
    }
}

/// What must change for the host to hold exactly `artifacts`.
pub(crate) fn actions(
    module: &str,
    state: &State,
    artifacts: &[Artifact],
) -> Result<Vec<Action>, ModuleError> {
    let mut out = Vec::new();
    for a in artifacts {
        let pre = prefix(&a.path);
        let stat = FileStat::from_state(module, state, &pre)?;
        let mode = format!("{:o}", a.mode);
        let current = state.bytes(&format!("{pre}content"));
        match (stat, current) {
            (Some(stat), Some(bytes)) if stat.is_file() && bytes == a.content.as_slice() => {
                if stat.mode != mode {
                    out.push(Action::Chmod {
                        path: a.path.clone(),
                        from: stat.mode,
                        to: mode,
                    });
                }
            }
            (Some(stat), _) if !stat.is_file() => {
                return Err(ModuleError::conflict(
                    module,
                    format!(
                        "{} is a {}, expected a regular file; remove it",
                        a.path, stat.kind
                    ),
                ))
            }
            (stat, current) => out.push(Action::Write {
                artifact: a.clone(),
                old_sha: match (stat, current) {
                    (None, _) => "absent".into(),
                    (Some(_), Some(bytes)) => sha256_hex(bytes),
                    (Some(_), None) => "unknown".into(),
                },
            }),
        }
    }
    Ok(out)
}

/// The diff of `actions` plus `extra` notes: paths only, never contents.
pub(crate) fn diff(actions: &[Action], extra: Option<String>) -> Diff {
    if actions.is_empty() {
        return Diff::Unchanged;
    }
    let mut parts: Vec<String> = actions.iter().map(Action::summary).collect();
    parts.extend(extra);
    Diff::change(parts.join("; "))
}

/// Apply fragment: every write guarded by the gathered sha (`kp_stale` when the file
/// changed meanwhile), atomic, with its mode; content travels base64-encoded.
pub(crate) fn apply(actions: &[Action]) -> String {
    let mut script = String::new();
    for action in actions {
        match action {
            Action::Write { artifact, old_sha } => script.push_str(&format!(
                "kp_put_if {} {} {} {} {} b64 || return\n",
                quote(&artifact.path),
                quote(old_sha),
                quote(&b64(&artifact.content)),
                quote(&sha256_hex(&artifact.content)),
                quote(&format!("{:o}", artifact.mode)),
            )),
            Action::Chmod { path, to, .. } => script.push_str(&format!(
                "kp_attrs {} {} '' '' || return\n",
                quote(path),
                quote(to)
            )),
        }
    }
    script
}
