//! `directory`: a directory with mode, owner and group; or no directory (removed with its
//! content).

use schemars::JsonSchema;
use serde::Deserialize;

use crate::facts::file::{FileFact, Read};
use crate::facts::Fact;
use crate::script::quote;
use crate::util::args::{self, ModeArg, Presence};
use crate::util::managed::attr_args;
use crate::{Diff, Module, ModuleError, Plan, State};

/// Arguments of `directory`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Absolute path; missing parents are created.
    path: String,
    /// Octal mode, e.g. "0755". Unset: new directories get the umask default.
    mode: Option<ModeArg>,
    owner: Option<String>,
    group: Option<String>,
    /// `absent` removes the directory and everything in it.
    #[serde(default)]
    state: Presence,
}

/// A built `directory` task.
#[derive(Debug)]
pub(crate) struct Directory {
    path: String,
    mode: Option<String>,
    owner: Option<String>,
    group: Option<String>,
    state: Presence,
}

const NAME: &str = "directory";

impl Directory {
    pub fn build(args: serde_json::Value) -> Result<Directory, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        args::path(NAME, "path", &a.path)?;
        Ok(Directory {
            path: a.path.trim_end_matches('/').to_string(),
            mode: args::mode(NAME, a.mode.as_ref())?,
            owner: a.owner,
            group: a.group,
            state: a.state,
        })
    }
}

impl Module for Directory {
    fn name(&self) -> &'static str {
        NAME
    }

    fn gather(&self) -> String {
        // A regular file in the way shows its content.
        self.fact().gather()
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        Ok(Plan::new(
            self.planned_diff(state)?,
            self.planned_script(state),
        ))
    }
}

impl Directory {
    /// What its gather reads: the path's stat.
    fn fact(&self) -> FileFact {
        FileFact::new("", &self.path, Read::Content)
    }

    /// What would change.
    fn planned_diff(&self, state: &State) -> Result<Diff, ModuleError> {
        let stat = self.fact().parse(NAME, state)?.stat;
        match (self.state, stat) {
            (Presence::Absent, None) => Ok(Diff::Unchanged),
            (_, Some(s)) if !s.is_dir() => Err(ModuleError::conflict(
                NAME,
                format!(
                    "{} is a {}, expected a directory; remove it first",
                    self.path, s.kind
                ),
            )),
            (Presence::Absent, Some(_)) => Ok(Diff::change(format!(
                "remove directory {} and its content",
                self.path
            ))),
            (Presence::Present, None) => {
                Ok(Diff::change(format!("create directory {}", self.path)))
            }
            (Presence::Present, Some(s)) => {
                let attrs = s.attr_changes(
                    self.mode.as_deref(),
                    self.owner.as_deref(),
                    self.group.as_deref(),
                );
                if attrs.is_empty() {
                    Ok(Diff::Unchanged)
                } else {
                    Ok(Diff::change(format!(
                        "{} on {}",
                        attrs.join(", "),
                        self.path
                    )))
                }
            }
        }
    }

    /// The script that makes it so.
    fn planned_script(&self, _state: &State) -> String {
        let p = quote(&self.path);
        match self.state {
            Presence::Absent => format!(
                "if [ -d {p} ] && [ ! -L {p} ]; then\n  rm -rf -- {p} || {{ kp_fail \"cannot remove \"{p}; return; }}\n  kp_changed\nfi\n"
            ),
            Presence::Present => {
                let mode = self
                    .mode
                    .as_deref()
                    .map(|m| format!("-m {m} "))
                    .unwrap_or_default();
                // A directory just made with -m needs no attribute check unless an owner or
                // group is wanted.
                let owner_or_group = self.owner.is_some() || self.group.is_some();
                let made = if owner_or_group { "" } else { "\n  return 0" };
                format!(
                    "if [ -e {p} ] && [ ! -d {p} ]; then kp_fail {p}' exists and is not a directory'; return; fi\n\
                     if [ ! -d {p} ]; then\n  mkdir -p {mode}-- {p} || {{ kp_fail \"cannot create \"{p}; return; }}\n  kp_changed{made}\nfi\n\
                     kp_attrs {p} {} || return\n",
                    attr_args(self.mode.as_deref(), self.owner.as_deref(), self.group.as_deref())
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::Planned as _;
    use crate::util::testutil::{fields, run_cycle};
    use serde_json::json;

    #[test]
    fn diff_logic() {
        let m = Directory::build(json!({"path": "/d/", "mode": "0750"})).unwrap();
        assert_eq!(
            m.diff(&fields(&[("stat", "absent")])).unwrap(),
            Diff::change("create directory /d")
        );
        let d = m
            .diff(&fields(&[("stat", "directory|755|0|0|root|root|1")]))
            .unwrap();
        assert_eq!(d, Diff::change("mode 755 → 750 on /d"));
        assert_eq!(
            m.diff(&fields(&[("stat", "directory|750|0|0|root|root|1")]))
                .unwrap(),
            Diff::Unchanged
        );
        assert!(m
            .diff(&fields(&[("stat", "regular file|644|0|0|root|root|1")]))
            .is_err());
    }

    #[test]
    fn real_cycle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a b/'c' $(touch /tmp/kprov-pwned)/d");
        run_cycle(&Directory::build(json!({"path": path, "mode": "0700"})).unwrap());
        assert!(path.is_dir());
        std::fs::write(path.join("inner"), "x").unwrap();
        run_cycle(&Directory::build(json!({"path": path, "state": "absent"})).unwrap());
        assert!(!path.exists());
    }
}
