//! `block`: a marked, managed block of lines in a text file.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::util::args::{self, Presence};
use crate::util::edit::{self, lines, rejoin};
use crate::{Module, ModuleError, Plan, State};

/// Arguments of `block`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Absolute path of the text file.
    path: String,
    /// The block's lines (one string; a final newline is optional).
    #[serde(default)]
    block: String,
    /// Names the block, so one file can hold several.
    name: String,
    /// Marker line template; `{mark}` becomes BEGIN/END, `{name}` the name.
    #[serde(default = "default_marker")]
    marker: String,
    #[serde(default)]
    state: Presence,
    /// Create the file when missing (default true).
    #[serde(default = "yes")]
    create: bool,
}

fn default_marker() -> String {
    "# {mark} KPROV MANAGED BLOCK {name}".to_string()
}

fn yes() -> bool {
    true
}

/// Replaces (or appends, or with `body: None` removes) the block between `begin` and `end`.
pub(crate) fn edit_block(
    mut all: Vec<String>,
    begin: &str,
    end: &str,
    body: Option<&[String]>,
) -> Vec<String> {
    let start = all.iter().position(|l| l == begin);
    let stop = start.and_then(|s| all[s..].iter().position(|l| l == end).map(|i| s + i));
    let replacement: Vec<String> = match body {
        Some(body) => std::iter::once(begin.to_string())
            .chain(body.iter().cloned())
            .chain(std::iter::once(end.to_string()))
            .collect(),
        None => Vec::new(),
    };
    match (start, stop) {
        (Some(s), Some(e)) => {
            all.splice(s..=e, replacement);
        }
        // A begin marker without end: replace from it to the end of the file.
        (Some(s), None) => {
            all.splice(s.., replacement);
        }
        _ => all.extend(replacement),
    }
    all
}

/// A built `block` task.
#[derive(Debug)]
pub(crate) struct Block {
    path: String,
    body: Vec<String>,
    begin: String,
    end: String,
    state: Presence,
    create: bool,
}

const NAME: &str = "block";

impl Block {
    pub fn build(args: serde_json::Value) -> Result<Block, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        args::path(NAME, "path", &a.path)?;
        Block::new(
            NAME, a.path, &a.block, &a.name, &a.marker, a.state, a.create,
        )
    }

    /// Also used by `hosts`.
    pub(crate) fn new(
        module: &str,
        path: String,
        block: &str,
        name: &str,
        marker: &str,
        state: Presence,
        create: bool,
    ) -> Result<Block, ModuleError> {
        if !marker.contains("{mark}") || marker.contains('\n') {
            return Err(ModuleError::args(
                module,
                "marker must be one line containing {mark}",
            ));
        }
        if name.contains('\n') {
            return Err(ModuleError::args(module, "name must not contain a newline"));
        }
        let mark = |m: &str| marker.replace("{name}", name).replace("{mark}", m);
        let body = lines(module, &path, Some(block.as_bytes()))?;
        let (begin, end) = (mark("BEGIN"), mark("END"));
        if body.iter().any(|l| *l == begin || *l == end) {
            return Err(ModuleError::args(
                module,
                "block must not contain its own marker lines",
            ));
        }
        Ok(Block {
            path,
            body,
            begin,
            end,
            state,
            create,
        })
    }

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn edit(
        &self,
        module: &str,
        current: Option<&[u8]>,
    ) -> Result<Option<Vec<u8>>, ModuleError> {
        if current.is_none() && (self.state == Presence::Absent || !self.create) {
            return Ok(None);
        }
        let all = lines(module, &self.path, current)?;
        let body = (self.state == Presence::Present).then_some(self.body.as_slice());
        Ok(Some(rejoin(
            &edit_block(all, &self.begin, &self.end, body),
            current,
        )))
    }
}

impl Module for Block {
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
        let edited = edit::plan(NAME, state, "", &self.path, &|c| self.edit(NAME, c), None)?;
        Ok(edited.into_plan(Vec::new(), ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::Planned as _;
    use crate::util::testutil::{gather, run_cycle};
    use serde_json::json;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn block_edits() {
        let body = s(&["x"]);
        assert_eq!(
            edit_block(s(&["a"]), "B", "E", Some(&body)),
            s(&["a", "B", "x", "E"])
        );
        assert_eq!(
            edit_block(s(&["a", "B", "old", "E", "z"]), "B", "E", Some(&body)),
            s(&["a", "B", "x", "E", "z"])
        );
        assert_eq!(
            edit_block(s(&["a", "B", "old", "E", "z"]), "B", "E", None),
            s(&["a", "z"])
        );
        assert_eq!(
            edit_block(s(&["a", "B", "old"]), "B", "E", Some(&body)),
            s(&["a", "B", "x", "E"])
        );
    }

    #[test]
    fn marker_is_validated() {
        assert!(Block::build(json!({"path": "/f", "name": "n", "marker": "# no mark"})).is_err());
        assert!(Block::build(
            json!({"path": "/f", "name": "n", "block": "# BEGIN KPROV MANAGED BLOCK n"})
        )
        .is_err());
    }

    #[test]
    fn real_cycle_update_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "keep me\n").unwrap();
        for text in crate::util::testutil::HOSTILE
            .iter()
            .filter(|t| !t.contains('\r'))
        {
            let m = Block::build(json!({"path": path, "name": "t", "block": text})).unwrap();
            if m.diff(&gather(&m).state()).unwrap().needs_apply() {
                run_cycle(&m);
            }
            let now = std::fs::read_to_string(&path).unwrap();
            assert!(
                now.starts_with("keep me\n# BEGIN KPROV MANAGED BLOCK t\n"),
                "{now}"
            );
            assert!(now.contains(text.trim_end_matches('\n')), "{now}");
        }
        run_cycle(&Block::build(json!({"path": path, "name": "t", "state": "absent"})).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me\n");
    }
}
