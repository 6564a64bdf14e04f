//! Control-plane files computed in Rust from what is on the host: gather every path
//! (content included: keys are needed to keep valid certificates), compare with the
//! computed artifacts, write only what differs, atomically with its mode. Diffs name
//! paths only: contents are never put into diff texts.
//!
//! A module's files are written as one set (the prelude's `kp_stage_if`/`kp_commit`):
//! all staged beside their targets, then a journal, then renamed into place. A crash
//! at any instant leaves the previous complete set or the new one: [`settle`] reads an
//! interrupted commit as done (and finishes it) and drops what a dead run staged.

use kprov_controlplane::{Artifact, Existing};

use crate::facts::file::{FileFact, Read};
use crate::facts::Fact;
use crate::script::{b64, quote, sha256_hex};
use crate::{Diff, ModuleError, Plan, State};

/// The fact of `path` in the gathered state: its stat and content, its fields named
/// after the path.
fn fact(path: &str) -> FileFact {
    FileFact::new(format!("{path}:"), path, Read::Content)
}

/// Suffix of a staged file beside its target.
const STAGED: &str = ".kprov-new";

/// The journal of `module`'s file set on the host.
pub(crate) fn journal_for(module: &str) -> String {
    format!("/etc/kubernetes/kprov/commit-{module}")
}

/// Gather fragment: stat and content of every path, of its staged file and of the
/// journal.
pub(crate) fn gather(paths: &[String], journal: &str) -> String {
    paths
        .iter()
        .chain(std::iter::once(&journal.to_string()))
        .flat_map(|p| [fact(p).gather(), fact(&format!("{p}{STAGED}")).gather()])
        .collect()
}

/// Gather fragment for a file of which only whether it exists matters (it holds a key):
/// its stat and sha256, never its content.
pub(crate) fn gather_presence(path: &str) -> String {
    presence(path).gather()
}

/// Whether the file of [`gather_presence`] exists (not gathered: no).
pub(crate) fn present(module: &str, state: &State, path: &str) -> bool {
    presence(path)
        .parse(module, state)
        .is_ok_and(|f| f.stat.is_some())
}

fn presence(path: &str) -> FileFact {
    FileFact::new(format!("{path}:"), path, Read::ShaOnly)
}

/// The gathered state of a host that holds none of `paths` (for tests).
#[cfg(test)]
pub(crate) fn nothing_there(paths: &[String], journal: &str) -> State {
    let mut fields = std::collections::BTreeMap::new();
    for p in paths.iter().chain(std::iter::once(&journal.to_string())) {
        for path in [p.clone(), format!("{p}{STAGED}")] {
            fields.insert(format!("{path}:stat"), b"absent".to_vec());
        }
    }
    State { fields }
}

/// The host's files as they are once what a crash interrupted is settled, and the step
/// that settles it: with a journal, the staged files it lists are the new set (finish
/// the commit); staged files without a journal are left over from a run that died
/// before committing (remove them; the files in place are the complete old set).
pub(crate) fn settle(
    module: &str,
    state: &State,
    paths: &[String],
    journal: &str,
) -> Result<(State, Vec<Action>), ModuleError> {
    let mut view = state.clone();
    let journal_path = journal.to_string();
    let staged: Vec<&String> = paths
        .iter()
        .chain(std::iter::once(&journal_path))
        .map(|p| {
            let staged = fact(&format!("{p}{STAGED}")).parse(module, state)?;
            Ok((p, staged.stat))
        })
        .collect::<Result<Vec<_>, ModuleError>>()?
        .into_iter()
        .filter_map(|(p, stat)| stat.map(|_| p))
        .collect();
    let journal_file = fact(journal).parse(module, state)?;
    if journal_file.stat.is_none() {
        let recovery = (!staged.is_empty()).then(|| Action::Discard {
            staged: staged.iter().map(|p| format!("{p}{STAGED}")).collect(),
        });
        return Ok((view, recovery.into_iter().collect()));
    }
    let listed = journal_file
        .content
        .map(|c| String::from_utf8_lossy(&c).into_owned())
        .unwrap_or_default();
    let listed: Vec<&str> = listed.lines().collect();
    let (listed_staged, stray): (Vec<&String>, Vec<&String>) =
        staged.iter().partition(|p| listed.contains(&p.as_str()));
    for path in listed_staged {
        let (from, to) = (fact(&format!("{path}{STAGED}")), fact(path));
        for field in ["stat", "sha", "content"] {
            match state.bytes(&from.field(field)) {
                Some(bytes) => view.fields.insert(to.field(field), bytes.to_vec()),
                None => view.fields.remove(&to.field(field)),
            };
        }
    }
    let mut recovery = vec![Action::Finish {
        journal: journal.to_string(),
        files: listed.len(),
    }];
    if !stray.is_empty() {
        recovery.push(Action::Discard {
            staged: stray.iter().map(|p| format!("{p}{STAGED}")).collect(),
        });
    }
    Ok((view, recovery))
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
        let file = fact(path).parse(module, state)?;
        let Some(stat) = file.stat else {
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
        let content = file
            .content
            .ok_or_else(|| ModuleError::conflict(module, format!("{path} is larger than 1 MiB")))?;
        found.0.insert(path.clone(), content);
    }
    Ok(found)
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
    /// Finish the commit of `files` files that a crash interrupted.
    Finish { journal: String, files: usize },
    /// Remove files a run staged before it died without committing.
    Discard { staged: Vec<String> },
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
            Action::Finish { files, .. } => {
                format!("finish writing the {files} files an interrupted run committed")
            }
            Action::Discard { staged } => format!(
                "remove {} files an interrupted run staged and never committed",
                staged.len()
            ),
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
        let file = fact(&a.path).parse(module, state)?;
        let mode = format!("{:o}", a.mode);
        let current = file.content.as_deref();
        match (file.stat, current) {
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

/// The plan of `actions` (committed under `journal`) plus `extra` notes: its diff names
/// paths only, never contents; it holds keys, so it is secret.
pub(crate) fn plan(actions: &[Action], journal: &str, extra: Option<String>) -> Plan {
    Plan::new(diff(actions, extra), apply(actions, journal)).secret(true)
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

/// Apply fragment: settle what a crash left, then stage every write (guarded by the
/// gathered sha: `kp_stale` when the file changed meanwhile) and commit them as one set
/// under `journal`; content travels base64-encoded. Mode-only fixes follow.
pub(crate) fn apply(actions: &[Action], journal: &str) -> String {
    let mut script = String::from("kp_txn=\n");
    let mut chmods = String::new();
    for action in actions {
        match action {
            Action::Finish { journal, .. } => {
                script.push_str(&format!("kp_finish {} || return\n", quote(journal)))
            }
            Action::Discard { staged } => {
                for path in staged {
                    script.push_str(&format!("kp_rm {} || return\n", quote(path)));
                }
            }
            Action::Write { artifact, old_sha } => script.push_str(&format!(
                "kp_stage_if {} {} {} {} {} || {{ kp_unstage; return; }}\n",
                quote(&artifact.path),
                quote(old_sha),
                quote(&b64(&artifact.content)),
                quote(&sha256_hex(&artifact.content)),
                quote(&format!("{:o}", artifact.mode)),
            )),
            Action::Chmod { path, to, .. } => chmods.push_str(&format!(
                "kp_attrs {} {} '' '' || return\n",
                quote(path),
                quote(to)
            )),
        }
    }
    script.push_str(&format!("kp_commit {} || return\n", quote(journal)));
    script.push_str(&chmods);
    script
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::Planned as _;
    use crate::util::testutil::{apply, gather};
    use crate::Module;

    /// A file set under a temporary root, written by the real prelude.
    #[derive(Debug)]
    struct Set {
        paths: Vec<String>,
        journal: String,
        wanted: Vec<Artifact>,
        /// Shell lines put before the apply fragment (fault injection).
        before: String,
    }

    impl Set {
        fn new(root: &str, version: &str) -> Set {
            let paths: Vec<String> = ["a.key", "a.crt", "sub/b.conf"]
                .iter()
                .map(|p| format!("{root}/{p}"))
                .collect();
            let wanted = paths
                .iter()
                .map(|p| Artifact {
                    path: p.clone(),
                    content: format!("{p} {version}\n").into_bytes(),
                    mode: 0o600,
                    secret: true,
                })
                .collect();
            Set {
                journal: format!("{root}/kprov/commit-test"),
                paths,
                wanted,
                before: String::new(),
            }
        }

        fn actions(&self, state: &State) -> Result<Vec<Action>, ModuleError> {
            let (state, mut out) = settle("test", state, &self.paths, &self.journal)?;
            out.extend(actions("test", &state, &self.wanted)?);
            Ok(out)
        }

        /// The contents the host would hold once settled.
        fn settled(&self) -> Vec<Option<Vec<u8>>> {
            let state = gather(self).state();
            let (view, _) = settle("test", &state, &self.paths, &self.journal).unwrap();
            let found = existing("test", &view, &self.paths).unwrap();
            self.paths
                .iter()
                .map(|p| found.get(p).map(<[u8]>::to_vec))
                .collect()
        }
    }

    impl Module for Set {
        fn name(&self) -> &'static str {
            "test"
        }
        fn gather(&self) -> String {
            super::gather(&self.paths, &self.journal)
        }
        fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
            let mut plan = super::plan(&self.actions(state)?, &self.journal, None);
            plan.script = format!("{}{}", self.before, plan.script);
            Ok(plan)
        }
    }

    fn contents(set: &Set) -> Vec<Option<Vec<u8>>> {
        set.wanted.iter().map(|a| Some(a.content.clone())).collect()
    }

    fn leftovers(root: &str) -> Vec<String> {
        let out = std::process::Command::new("find")
            .args([root, "-name", "*.kprov*", "-o", "-name", "commit-*"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect()
    }

    /// Every rename of an update (the journal, then three files) is a place a crash can
    /// hit: after each, the host holds the old set or the new one, and
    /// the next run completes the new one and leaves nothing behind.
    #[test]
    fn a_crash_at_any_rename_leaves_one_complete_set_and_the_next_run_converges() {
        for cut in 0..=4 {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_string_lossy().into_owned();
            let old = Set::new(&root, "v1");
            let first = apply(&old, &gather(&old).state());
            assert!(first.ok() && first.changed, "{first:?}");
            assert!(leftovers(&root).is_empty(), "{:?}", leftovers(&root));

            let mut new = Set::new(&root, "v2");
            // `mv` is how the journal and then every file lands; the crash kills the
            // shell after `cut` of them.
            new.before = format!(
                "kp_cuts=0\nmv() {{ kp_cuts=$((kp_cuts + 1)); [ \"$kp_cuts\" -le {cut} ] || exit 9; command mv \"$@\"; }}\n"
            );
            let crashed = apply(&new, &gather(&new).state());
            assert!(!crashed.ok() || cut == 4, "cut {cut}: {crashed:?}");
            let settled = new.settled();
            let expect = if cut == 0 {
                contents(&old)
            } else {
                contents(&new)
            };
            assert_eq!(settled, expect, "cut {cut}: a mixed set");

            new.before.clear();
            let state = gather(&new).state();
            let plan = diff(&new.actions(&state).unwrap(), None);
            assert!(cut == 4 || plan.needs_apply(), "cut {cut}: {plan:?}");
            let rerun = apply(&new, &state);
            assert!(rerun.ok(), "cut {cut}: {rerun:?}");
            for (path, want) in new.paths.iter().zip(contents(&new)) {
                assert_eq!(std::fs::read(path).ok(), want, "cut {cut}: {path}");
            }
            assert!(
                leftovers(&root).is_empty(),
                "cut {cut}: {:?}",
                leftovers(&root)
            );
            let again = gather(&new).state();
            assert_eq!(new.diff(&again).unwrap(), Diff::Unchanged, "cut {cut}");
        }
    }

    /// A disk that fills while staging fails the task, changes nothing in place and
    /// leaves no staged file.
    #[test]
    fn a_failed_staging_changes_nothing_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_string_lossy().into_owned();
        let old = Set::new(&root, "v1");
        assert!(apply(&old, &gather(&old).state()).ok());
        let mut new = Set::new(&root, "v2");
        // The third staged write fails as on a full disk.
        new.before = format!(
            "base64() {{ if [ \"$1\" = -d ]; then echo >>{root}/count; \
             [ \"$(wc -l <{root}/count)\" -lt 3 ] || return 1; fi; command base64 \"$@\"; }}\n"
        );
        let failed = apply(&new, &gather(&new).state());
        assert!(!failed.ok() && !failed.changed, "{failed:?}");
        for (path, want) in old.paths.iter().zip(contents(&old)) {
            assert_eq!(std::fs::read(path).ok(), want, "{path}");
        }
        assert!(leftovers(&root).is_empty(), "{:?}", leftovers(&root));
    }
}
