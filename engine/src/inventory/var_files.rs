//! `group_vars/` and `host_vars/` beside an inventory, as Ansible reads them: `NAME`,
//! `NAME.yml`, `NAME.yaml`, `NAME.json`, or a directory `NAME/` of such files (read in
//! name order, later files winning).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::validate::{self, SourceMap};

/// One variables file: its mapping and where each value sits.
#[derive(Debug, Clone)]
pub(crate) struct VarFile {
    pub(crate) vars: Map<String, Value>,
    pub(crate) map: SourceMap,
}

/// Every variables file beside an inventory, by group or host name.
#[derive(Debug, Clone, Default)]
pub(crate) struct VarFiles {
    pub(crate) groups: BTreeMap<String, Vec<VarFile>>,
    pub(crate) hosts: BTreeMap<String, Vec<VarFile>>,
}

impl VarFiles {
    /// The merged variables of group (or host) `name` from `files`.
    pub(crate) fn merged(files: &BTreeMap<String, Vec<VarFile>>, name: &str) -> Map<String, Value> {
        let mut out = Map::new();
        for file in files.get(name).into_iter().flatten() {
            out.extend(file.vars.clone());
        }
        out
    }

    /// Every file, for per-file checks.
    pub(crate) fn all(&self) -> impl Iterator<Item = &VarFile> {
        self.groups.values().chain(self.hosts.values()).flatten()
    }
}

/// Extensions Ansible reads variables from (besides none at all).
const EXTENSIONS: [&str; 3] = ["yml", "yaml", "json"];

/// Loads `dir/group_vars` and `dir/host_vars` (either may be missing).
pub(crate) fn load(dir: &Path) -> Result<VarFiles, Diagnostics> {
    let mut problems = Vec::new();
    let mut out = VarFiles::default();
    for (sub, target) in [
        ("group_vars", &mut out.groups),
        ("host_vars", &mut out.hosts),
    ] {
        let base = dir.join(sub);
        let Ok(entries) = std::fs::read_dir(&base) else {
            continue;
        };
        let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if file_name.starts_with('.') {
                continue;
            }
            let (name, files) = if path.is_dir() {
                (file_name.to_string(), files_under(&path))
            } else {
                match vars_name(file_name) {
                    Some(name) => (name.to_string(), vec![path.clone()]),
                    None => continue,
                }
            };
            for file in files {
                match read(&file) {
                    Ok(Some(loaded)) => target.entry(name.clone()).or_default().push(loaded),
                    Ok(None) => {}
                    Err(d) => problems.extend(d.0),
                }
            }
        }
    }
    Diagnostics(problems).into_result(out)
}

/// The group or host a file is named for, if Ansible would read it.
fn vars_name(file_name: &str) -> Option<&str> {
    match file_name.rsplit_once('.') {
        None => Some(file_name),
        Some((stem, ext)) if EXTENSIONS.contains(&ext) => Some(stem),
        Some(_) => None,
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or(".");
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if vars_name(name).is_some() {
            out.push(path);
        }
    }
    out
}

/// One variables file; `None` when it holds nothing but comments.
fn read(path: &Path) -> Result<Option<VarFile>, Diagnostics> {
    let text = validate::read(path)?;
    if text.trim_start().starts_with("$ANSIBLE_VAULT") {
        return Err(Diagnostic {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            key: String::new(),
            message: "this file is encrypted with ansible-vault, which kprov cannot read".into(),
            hint: Some(
                "keep secrets out of the inventory (kprov needs none), or decrypt the file".into(),
            ),
        }
        .into());
    }
    let blank = text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    });
    if blank {
        return Ok(None);
    }
    let (document, duplicates) = validate::yaml::parse(path, &text)?;
    let schema = crate::schema::ansible_vars_schema();
    let loaded = validate::check_document(document, duplicates, &schema);
    if !loaded.diagnostics.is_empty() {
        return Err(loaded.diagnostics);
    }
    match loaded.value {
        Value::Object(vars) => Ok(Some(VarFile {
            vars,
            map: loaded.map,
        })),
        Value::Null => Ok(None),
        _ => Err(loaded
            .map
            .at_value(
                "",
                "expected a mapping of variable names to values",
                Some("write `name: value` lines".into()),
            )
            .into()),
    }
}
