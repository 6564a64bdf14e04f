//! Roles: `roles/NAME/` with `tasks.yaml`, `handlers.yaml`, `defaults.yaml`,
//! `templates/` and `files/`.

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::diagnostic::Diagnostics;

/// A loaded role.
#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    pub dir: PathBuf,
    pub defaults: Map<String, Value>,
    pub tasks: Vec<super::Task>,
    pub handlers: Vec<super::Task>,
}

/// Finds role `name` in the first of `dirs` that has it; `Ok(None)` when none does.
pub(crate) fn load(name: &str, dirs: &[PathBuf]) -> Result<Option<Role>, Diagnostics> {
    let Some(dir) = dirs.iter().map(|d| d.join(name)).find(|d| d.is_dir()) else {
        return Ok(None);
    };
    let dir = dir.canonicalize().unwrap_or(dir);
    let mut problems = Vec::new();
    let mut part = |file: &str| -> Option<(Value, crate::validate::SourceMap)> {
        let path = dir.join(file);
        if !path.exists() {
            return None;
        }
        match super::read(&path) {
            Ok(doc) => Some((doc.value, doc.map)),
            Err(d) => {
                problems.extend(d.0);
                None
            }
        }
    };
    let defaults_doc = part("defaults.yaml");
    let tasks_doc = part("tasks.yaml");
    let handlers_doc = part("handlers.yaml");
    let mut defaults = Map::new();
    if let Some((value, map)) = &defaults_doc {
        defaults = super::object(Some(value), "", map, &mut problems);
    }
    let mut lists = Vec::new();
    for doc in [&tasks_doc, &handlers_doc] {
        lists.push(match doc {
            Some((value, map)) => match super::task::list(Some(value), "", map, Some(&dir)) {
                Ok(t) => t,
                Err(d) => {
                    problems.extend(d.0);
                    Vec::new()
                }
            },
            None => Vec::new(),
        });
    }
    if !problems.is_empty() {
        return Err(Diagnostics(problems));
    }
    let handlers = lists.pop().unwrap_or_default();
    let tasks = lists.pop().unwrap_or_default();
    Ok(Some(Role {
        name: name.to_string(),
        dir,
        defaults,
        tasks,
        handlers,
    }))
}
