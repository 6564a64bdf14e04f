//! `template: {src, dest}` and `copy: {src}`: the source file is read (and rendered) on
//! the control machine, and the task travels to the host as `copy` with its content.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

use crate::playbook::Task;
use crate::template::Renderer;

/// What resolving a task's source file reads.
pub(crate) struct Sources<'a> {
    pub renderer: &'a Renderer,
    /// The host's variables (a template is rendered with them).
    pub vars: &'a Value,
    /// The playbook's directory (templates and files of tasks outside roles).
    pub playbook_dir: &'a Path,
}

impl Sources<'_> {
    /// `template: {src, dest}` renders the role's `templates/SRC` into `copy` content;
    /// `copy: {src}` reads the role's `files/SRC`.
    pub(crate) fn resolve(&self, task: &Task, args: Value) -> Result<(String, Value), String> {
        let module = task.module.clone();
        let Value::Object(mut map) = args else {
            return Ok((module, args));
        };
        let is_template = module == "template";
        if !(is_template || module == "copy") || !map.contains_key("src") {
            return Ok((module, Value::Object(map)));
        }
        let src = match map.remove("src") {
            Some(Value::String(s)) => s,
            _ => return Err(format!("{}: `src` must be a file name", task.origin)),
        };
        let kind = if is_template { "templates" } else { "files" };
        let path = self.source_path(task, kind, &src);
        if is_template {
            let text = self
                .renderer
                .render_file(&path, self.vars)
                .map_err(|e| e.to_string())?;
            map.insert("content".into(), Value::String(text));
        } else {
            let bytes = std::fs::read(&path).map_err(|e| {
                format!(
                    "{}: cannot read {}: {e}{}",
                    task.origin,
                    path.display(),
                    beside_kprov_hint(&path)
                )
            })?;
            // Text travels as text (readable diffs); anything else (binaries) as base64.
            match String::from_utf8(bytes) {
                Ok(text) => map.insert("content".into(), Value::String(text)),
                Err(raw) => map.insert(
                    "content_base64".into(),
                    Value::String(
                        base64::engine::general_purpose::STANDARD.encode(raw.into_bytes()),
                    ),
                ),
            };
        }
        // Ansible spells the target `dest`; kprov's file modules call it `path`.
        if let Some(dest) = map.remove("dest") {
            map.entry("path").or_insert(dest);
        }
        Ok(("copy".to_string(), Value::Object(map)))
    }

    /// Absolute paths stay; relative ones live in the role's `kind/` directory (or the
    /// playbook's `kind/` directory for tasks outside roles).
    fn source_path(&self, task: &Task, kind: &str, src: &str) -> PathBuf {
        let path = Path::new(src);
        if path.is_absolute() {
            return path.to_path_buf();
        }
        task.role_dir
            .as_deref()
            .unwrap_or(self.playbook_dir)
            .join(kind)
            .join(path)
    }
}

/// For a file that should sit beside the running kprov binary (the companion binaries
/// kprov pushes, such as kprov-agent): how to get it.
fn beside_kprov_hint(path: &Path) -> String {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .is_some_and(|dir| path.parent() == Some(dir.as_path()));
    if beside && !path.exists() {
        format!(
            "; it is built with kprov: run `cargo build --release` in kprov's checkout (it builds \
             every binary kprov pushes into the directory of kprov itself, {})",
            path.parent()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        )
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_beside_kprov_says_how_to_build_it() {
        let dir = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        let hint = beside_kprov_hint(&dir.join("kprov-agent-never-built"));
        assert!(hint.contains("cargo build --release"), "{hint}");
        assert!(beside_kprov_hint(Path::new("/nonexistent/kprov-agent")).is_empty());
    }
}
