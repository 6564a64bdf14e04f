//! `line`: one line in a text file — replace the line a regexp matches or append it; or
//! remove matching lines.

use regex::Regex;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::util::args::{self, Presence};
use crate::util::edit::{self, lines, rejoin};
use crate::{Module, ModuleError, Plan, State};

/// Arguments of `line`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Absolute path of the text file.
    path: String,
    /// The line (without newline). Required for `state: present`.
    line: Option<String>,
    /// Regular expression (Rust syntax) selecting the line to replace (the last match) or,
    /// with `state: absent`, the lines to remove.
    regexp: Option<String>,
    #[serde(default)]
    state: Presence,
    /// Create the file when it does not exist (default false: missing file is an error).
    #[serde(default)]
    create: bool,
}

/// A built `line` task.
#[derive(Debug)]
pub(crate) struct Line {
    path: String,
    line: Option<String>,
    regexp: Option<Regex>,
    state: Presence,
    create: bool,
}

const NAME: &str = "line";

impl Line {
    pub fn build(args: serde_json::Value) -> Result<Line, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        args::path(NAME, "path", &a.path)?;
        if a.line.as_deref().is_some_and(|l| l.contains('\n')) {
            return Err(ModuleError::args(
                NAME,
                "line must not contain a newline; use block",
            ));
        }
        if a.state == Presence::Present && a.line.is_none() {
            return Err(ModuleError::args(
                NAME,
                "line is required for state: present",
            ));
        }
        if a.line.is_none() && a.regexp.is_none() {
            return Err(ModuleError::args(NAME, "give line or regexp"));
        }
        let regexp = a
            .regexp
            .as_deref()
            .map(Regex::new)
            .transpose()
            .map_err(|e| ModuleError::args(NAME, format!("regexp is invalid: {e}")))?;
        Ok(Line {
            path: a.path,
            line: a.line,
            regexp,
            state: a.state,
            create: a.create,
        })
    }

    fn matches(&self, candidate: &str) -> bool {
        match (&self.regexp, &self.line) {
            (Some(re), _) => re.is_match(candidate),
            (None, Some(line)) => candidate == line,
            (None, None) => false,
        }
    }

    /// The new content for the current one.
    fn edit(&self, current: Option<&[u8]>) -> Result<Option<Vec<u8>>, ModuleError> {
        let mut all = lines(NAME, &self.path, current)?;
        match self.state {
            Presence::Absent => {
                if current.is_none() {
                    return Ok(None);
                }
                all.retain(|l| !self.matches(l));
            }
            Presence::Present => {
                if current.is_none() && !self.create {
                    return Err(ModuleError::conflict(
                        NAME,
                        format!(
                            "{} does not exist; set create: true to create it",
                            self.path
                        ),
                    ));
                }
                let line = self.line.clone().unwrap_or_default();
                let last_match = self
                    .regexp
                    .as_ref()
                    .and_then(|re| all.iter().rposition(|l| re.is_match(l)));
                match last_match {
                    Some(i) => all[i] = line,
                    None if all.contains(&line) => {}
                    None => all.push(line),
                }
            }
        }
        Ok(Some(rejoin(&all, current)))
    }
}

impl Module for Line {
    fn name(&self) -> &'static str {
        NAME
    }

    fn edited_file(&self) -> Option<(&str, &'static str)> {
        Some((&self.path, ""))
    }

    fn gather(&self) -> String {
        edit::gather("", &self.path)
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        let edited = edit::plan(NAME, state, "", &self.path, &|c| self.edit(c), None)?;
        Ok(edited.into_plan(Vec::new(), ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::{apply, gather, run_cycle};
    use serde_json::json;

    fn edit(args: serde_json::Value, current: Option<&str>) -> Result<Option<String>, ModuleError> {
        let m = Line::build(args)?;
        Ok(m.edit(current.map(str::as_bytes))?
            .map(|b| String::from_utf8(b).unwrap()))
    }

    #[test]
    fn replace_append_remove() {
        let sel = json!({"path": "/c", "regexp": "^SELINUX=", "line": "SELINUX=permissive"});
        let cur = "# c\nSELINUX=enforcing\nSELINUXTYPE=targeted\n";
        assert_eq!(
            edit(sel.clone(), Some(cur)).unwrap().unwrap(),
            "# c\nSELINUX=permissive\nSELINUXTYPE=targeted\n"
        );
        assert_eq!(
            edit(sel.clone(), Some("a")).unwrap().unwrap(),
            "a\nSELINUX=permissive\n"
        );
        let plain = json!({"path": "/c", "line": "x"});
        assert_eq!(edit(plain.clone(), Some("x\ny")).unwrap().unwrap(), "x\ny");
        assert!(edit(plain, None).is_err());
        let create = json!({"path": "/c", "line": "x", "create": true});
        assert_eq!(edit(create, None).unwrap().unwrap(), "x\n");
        let rm = json!({"path": "/c", "regexp": "^#", "state": "absent"});
        assert_eq!(
            edit(rm.clone(), Some("#a\nb\n#c\n")).unwrap().unwrap(),
            "b\n"
        );
        assert_eq!(edit(rm, None).unwrap(), None);
    }

    #[test]
    fn invalid_args() {
        assert!(Line::build(json!({"path": "/c", "line": "a\nb"})).is_err());
        assert!(Line::build(json!({"path": "/c", "regexp": "("})).is_err());
        assert!(Line::build(json!({"path": "/c", "state": "absent"})).is_err());
    }

    #[test]
    fn real_cycle_and_stale_guard() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, "SELINUX=enforcing\nother\n").unwrap();
        let hostile = "SELINUX=permissive # it's $(touch /tmp/kprov-pwned) `x` ✓";
        let m = Line::build(json!({"path": path, "regexp": "^SELINUX=", "line": hostile})).unwrap();
        run_cycle(&m);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{hostile}\nother\n")
        );

        // Edited by hand between gather and apply: apply refuses (stale) and leaves it alone.
        std::fs::write(&path, "SELINUX=enforcing\n").unwrap();
        let state = gather(&m).state();
        std::fs::write(&path, "SELINUX=disabled\n").unwrap();
        let r = apply(&m, &state);
        assert!(
            r.stale.is_some() && r.failed.is_none() && !r.changed,
            "{r:?}"
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "SELINUX=disabled\n"
        );
    }
}
