//! `file` / `copy`: a file with exact content, mode, owner and group; or no file.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::facts::Fact;
use crate::script::{quote, unb64};
use crate::util::args::{self, ModeArg, Presence};
use crate::util::managed::{fold, removal, removal_fact, ManagedFile};
use crate::{Diff, Module, ModuleError, Plan, State};

/// Arguments of `file` and `copy` (templates and `src` files arrive as `content`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Absolute path of the file.
    path: String,
    /// Text content (required for `state: present` unless `content_base64` is given).
    content: Option<String>,
    /// Binary content, base64-encoded.
    content_base64: Option<String>,
    /// Octal mode, e.g. "0644". Unset: new files get 0644, existing ones keep theirs.
    mode: Option<ModeArg>,
    /// User name or uid.
    owner: Option<String>,
    /// Group name or gid.
    group: Option<String>,
    #[serde(default)]
    state: Presence,
    /// Hide the content in diffs (keys, tokens).
    #[serde(default)]
    sensitive: bool,
}

/// A built `file`/`copy` task.
#[derive(Debug)]
pub(crate) struct FileModule {
    name: &'static str,
    file: ManagedFile,
    state: Presence,
}

impl FileModule {
    pub fn build(name: &str, args: serde_json::Value) -> Result<FileModule, ModuleError> {
        let name: &'static str = if name == "copy" { "copy" } else { "file" };
        let a: Args = args::parse(name, args)?;
        args::path(name, "path", &a.path)?;
        let content = match (a.content, a.content_base64, a.state) {
            (Some(_), Some(_), _) => {
                return Err(ModuleError::args(
                    name,
                    "give either content or content_base64, not both",
                ))
            }
            (Some(text), None, _) => text.into_bytes(),
            (None, Some(encoded), _) => unb64(encoded.trim()).map_err(|e| {
                ModuleError::args(name, format!("content_base64 is not valid base64: {e}"))
            })?,
            (None, None, Presence::Absent) => Vec::new(),
            (None, None, Presence::Present) => {
                return Err(ModuleError::args(
                    name,
                    "content is required (or content_base64, or state: absent)",
                ))
            }
        };
        let mut file = ManagedFile::new(a.path, content);
        file.mode = args::mode(name, a.mode.as_ref())?;
        file.owner = a.owner;
        file.group = a.group;
        file.secret = a.sensitive;
        Ok(FileModule {
            name,
            file,
            state: a.state,
        })
    }
}

impl Module for FileModule {
    fn name(&self) -> &'static str {
        self.name
    }

    fn gather(&self) -> String {
        match self.state {
            Presence::Present => self.file.gather(""),
            Presence::Absent => removal_fact("", &self.file.path).gather(),
        }
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        Ok(
            Plan::new(self.planned_diff(state)?, self.planned_script(state))
                .secret(self.holds_secrets()),
        )
    }
}

impl FileModule {
    /// What would change.
    fn planned_diff(&self, state: &State) -> Result<Diff, ModuleError> {
        let change = match self.state {
            Presence::Present => self.file.change(self.name, state, "")?,
            Presence::Absent => removal(self.name, state, "", &self.file.path)?,
        };
        Ok(fold(change.into_iter().collect(), Vec::new()))
    }

    /// The script that makes it so.
    fn planned_script(&self, _state: &State) -> String {
        match self.state {
            Presence::Present => self.file.apply(),
            Presence::Absent => format!("kp_rm {} || return\n", quote(&self.file.path)),
        }
    }

    fn holds_secrets(&self) -> bool {
        self.file.secret
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::Planned as _;
    use crate::util::testutil::{fields, run_cycle};
    use serde_json::json;

    fn build(args: serde_json::Value) -> FileModule {
        FileModule::build("copy", args).unwrap()
    }

    #[test]
    fn diff_create_update_attrs_unchanged() {
        let m = build(json!({"path": "/etc/x", "content": "new\n", "mode": "0600"}));
        let d = m.diff(&fields(&[("stat", "absent")])).unwrap();
        assert_eq!(
            d,
            Diff::Change {
                summary: "create /etc/x".into(),
                before: Some(String::new()),
                after: Some("new\n".into())
            }
        );
        let stat = "regular file|644|0|0|root|root|4";
        let d = m
            .diff(&fields(&[
                ("stat", stat),
                ("sha", "0ld"),
                ("content", "old\n"),
            ]))
            .unwrap();
        let Diff::Change {
            summary, before, ..
        } = d
        else {
            panic!()
        };
        assert_eq!(summary, "update /etc/x, mode 644 → 600 on /etc/x");
        assert_eq!(before.as_deref(), Some("old\n"));
        let same = "regular file|600|0|0|root|root|4";
        let sha = m.file.sha.clone();
        assert_eq!(
            m.diff(&fields(&[("stat", same), ("sha", &sha)])).unwrap(),
            Diff::Unchanged
        );
    }

    #[test]
    fn directory_in_the_way_is_a_conflict() {
        let m = build(json!({"path": "/etc/x", "content": ""}));
        let err = m
            .diff(&fields(&[("stat", "directory|755|0|0|root|root|4096")]))
            .unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
    }

    #[test]
    fn sensitive_content_is_hidden() {
        let m = build(json!({"path": "/k", "content": "secret", "sensitive": true}));
        let Diff::Change {
            summary,
            before,
            after,
        } = m.diff(&fields(&[("stat", "absent")])).unwrap()
        else {
            panic!()
        };
        assert!(summary.contains("hidden"));
        assert!(before.unwrap_or_default().is_empty() && after.is_none());
    }

    #[test]
    fn bad_args_are_clear() {
        let e = FileModule::build("file", json!({"path": "rel", "content": ""})).unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
        let e = FileModule::build("file", json!({"path": "/x"})).unwrap_err();
        assert!(e.to_string().contains("content is required"), "{e}");
        let e = FileModule::build("file", json!({"path": "/x", "contnet": "a"})).unwrap_err();
        assert!(e.to_string().contains("unknown field `contnet`"), "{e}");
    }

    #[test]
    fn real_cycle_binary_content_owner_and_group() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.bin");
        let bytes = [0u8, 255, 10, 39, 0, 36, 40];
        let m = build(json!({
            "path": path, "content_base64": crate::script::b64(&bytes),
            "mode": "0600", "owner": "nobody", "group": "nogroup", "sensitive": true,
        }));
        run_cycle(&m);
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        // A secret file's current content never leaves the host.
        std::fs::write(&path, "old secret").unwrap();
        let state = crate::util::testutil::gather(&m).state();
        assert!(state.bytes("sha").is_some() && state.bytes("content").is_none());
        assert!(m.diff(&state).unwrap().needs_apply());
        run_cycle(&m);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o600);
        assert_eq!(meta.uid(), 65534, "owned by nobody");
        // Owner alone drifts: only the owner is repaired (numeric ids work too).
        std::os::unix::fs::chown(&path, Some(0), None).unwrap();
        let m = build(json!({
            "path": path, "content_base64": crate::script::b64(&bytes), "owner": "65534",
        }));
        let Diff::Change { summary, .. } =
            m.diff(&crate::util::testutil::gather(&m).state()).unwrap()
        else {
            panic!()
        };
        assert!(summary.starts_with("owner root → 65534"), "{summary}");
        run_cycle(&m);
        assert_eq!(std::fs::metadata(&path).unwrap().uid(), 65534);
    }

    #[test]
    fn real_cycle_with_hostile_content_and_attributes() {
        let dir = tempfile::tempdir().unwrap();
        for (i, hostile) in crate::util::testutil::HOSTILE.iter().enumerate() {
            let path = dir.path().join(format!("f{i} $(touch x) 'q'"));
            let m = build(json!({"path": path, "content": hostile, "mode": "0640"}));
            run_cycle(&m);
            assert_eq!(std::fs::read(&path).unwrap(), hostile.as_bytes());
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o7777, 0o640);
        }
        assert!(!std::path::Path::new("/tmp/pwned").exists());
        // Changing the mode alone is a change, then idempotent again.
        let path = dir.path().join("f0 $(touch x) 'q'");
        let m = build(
            json!({"path": path, "content": crate::util::testutil::HOSTILE[0], "mode": "600"}),
        );
        run_cycle(&m);
        // Removal.
        let m = build(json!({"path": path, "state": "absent"}));
        run_cycle(&m);
        assert!(!path.exists());
        // No temp files left behind.
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".kprov"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
