//! From a task as written to a ready module for one host: `when`, templates,
//! `template:`/`copy: {src}` resolved to content, arguments checked by the module.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::events::Failure;
use crate::playbook::Task;
use crate::template::Renderer;

/// What to do with a task on a host.
#[derive(Debug)]
pub enum Prepared {
    /// Run this module.
    Ready(Box<dyn kprov_modules::Module>),
    /// `when` is false.
    Skip(String),
    /// Plan only: an input is known only after apply.
    Unknown(String),
    /// The task cannot run (template error, bad arguments).
    Fail(Failure),
}

/// Everything `prepare` reads.
pub struct Inputs<'a> {
    pub renderer: &'a Renderer,
    /// The variable context of the host.
    pub vars: &'a Value,
    pub host: &'a kprov_modules::HostContext,
    /// Registered variables whose values are unknown until apply (plan mode).
    pub unknown: &'a HashSet<String>,
    /// The playbook's directory (templates and files of tasks outside roles).
    pub playbook_dir: &'a Path,
}

/// Prepares `task` for one host.
pub fn prepare(task: &Task, input: &Inputs<'_>) -> Prepared {
    let args = match render(task, input) {
        Ok(args) => args,
        Err(not_ready) => return not_ready,
    };
    let (module, args) = match resolve_sources(task, args, input) {
        Ok(pair) => pair,
        Err(message) => return fail(message),
    };
    match kprov_modules::build(&module, args, input.host) {
        Ok(m) => Prepared::Ready(m),
        Err(e) => fail(format!("{}: {e}", task.origin)),
    }
}

/// The task's arguments rendered for one host, or why it does not run (`when`, an
/// input known only after apply, a template error).
pub fn render(task: &Task, input: &Inputs<'_>) -> Result<Value, Prepared> {
    // A `when` that is known and false skips the task, whatever else it uses.
    let when_known = task
        .when
        .as_deref()
        .is_some_and(|w| unknown_in(std::iter::once(w), input).is_none());
    if when_known {
        check_when(task, input)?;
    }
    if let Some(name) = unknown_in(task.texts().into_iter(), input) {
        return Err(Prepared::Unknown(format!(
            "uses `{name}`, known after apply"
        )));
    }
    if !when_known {
        check_when(task, input)?;
    }
    input
        .renderer
        .render_value(&task.args, &task.origin, input.vars)
        .map_err(|e| fail(e.to_string()))
}

fn fail(message: String) -> Prepared {
    Prepared::Fail(Failure {
        message,
        ..Failure::default()
    })
}

/// `Err(Skip)` when the task's `when` is false.
fn check_when(task: &Task, input: &Inputs<'_>) -> Result<(), Prepared> {
    let Some(when) = &task.when else {
        return Ok(());
    };
    match input.renderer.truthy(when, &task.origin, input.vars) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Prepared::Skip(format!("when: {when}"))),
        Err(e) => Err(fail(e.to_string())),
    }
}

/// The first unknown registered variable `texts` mention, if any.
fn unknown_in<'t>(mut texts: impl Iterator<Item = &'t str>, input: &Inputs<'_>) -> Option<String> {
    if input.unknown.is_empty() {
        return None;
    }
    texts.find_map(|t| {
        input
            .renderer
            .references(&as_template(t))
            .into_iter()
            .map(|path| path.split('.').next().unwrap_or_default().to_string())
            .find(|root| {
                input.unknown.contains(root)
                    || (root == "hostvars" && mentions_any(t, input.unknown))
            })
    })
}

fn mentions_any(text: &str, names: &HashSet<String>) -> bool {
    names.iter().any(|n| text.contains(n.as_str()))
}

/// `when:` holds a bare expression; wrap it so it parses as a template.
fn as_template(text: &str) -> String {
    if text.contains("{{") || text.contains("{%") {
        text.to_string()
    } else {
        format!("{{{{ {text} }}}}")
    }
}

/// `template: {src, dest}` renders the role's `templates/SRC` into `copy` content;
/// `copy: {src}` reads the role's `files/SRC`.
fn resolve_sources(
    task: &Task,
    args: Value,
    input: &Inputs<'_>,
) -> Result<(String, Value), String> {
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
    let path = source_path(
        task,
        input.playbook_dir,
        if is_template { "templates" } else { "files" },
        &src,
    );
    if is_template {
        let text = input
            .renderer
            .render_file(&path, input.vars)
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
                Value::String(base64::engine::general_purpose::STANDARD.encode(raw.into_bytes())),
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
fn source_path(task: &Task, playbook_dir: &Path, kind: &str, src: &str) -> PathBuf {
    let path = Path::new(src);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    task.role_dir
        .as_deref()
        .unwrap_or(playbook_dir)
        .join(kind)
        .join(path)
}

/// The value a task registers: its status plus the module's reported fields.
pub fn registered(
    changed: bool,
    failed: bool,
    skipped: bool,
    fields: &std::collections::BTreeMap<String, Vec<u8>>,
) -> Value {
    let mut m = Map::new();
    m.insert("changed".into(), Value::Bool(changed));
    m.insert("failed".into(), Value::Bool(failed));
    m.insert("skipped".into(), Value::Bool(skipped));
    for (k, v) in fields {
        let text = String::from_utf8_lossy(v).into_owned();
        let value = match k.as_str() {
            "rc" => text
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or(Value::String(text)),
            _ => Value::String(text),
        };
        m.insert(k.clone(), value);
    }
    Value::Object(m)
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
    use serde_json::json;

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

    fn task(when: &str) -> Task {
        Task {
            name: "join".into(),
            module: "file".into(),
            args: json!({"path": "/x", "content": "{{ hostvars.m.join.token }}"}),
            when: Some(when.into()),
            notify: Vec::new(),
            tags: Vec::new(),
            register: None,
            retries: 0,
            delay: std::time::Duration::ZERO,
            until: None,
            timeout: None,
            become_root: None,
            role_dir: None,
            origin: "t.yaml:1".into(),
        }
    }

    /// Plan: a `when` that is known and false skips, even when the arguments use a value
    /// known only after apply; a true one leaves the task unknown.
    #[test]
    fn a_known_false_when_skips_before_unknown_inputs() {
        let renderer = Renderer::new();
        let vars = json!({"inventory_hostname": "m", "hostvars": {"m": {}}});
        let unknown: HashSet<String> = ["join".to_string()].into();
        let input = Inputs {
            renderer: &renderer,
            vars: &vars,
            host: &kprov_modules::HostContext::default(),
            unknown: &unknown,
            playbook_dir: Path::new("."),
        };
        let skipped = render(&task("inventory_hostname != 'm'"), &input);
        assert!(matches!(skipped, Err(Prepared::Skip(_))), "{skipped:?}");
        let unknown_task = render(&task("inventory_hostname == 'm'"), &input);
        assert!(
            matches!(unknown_task, Err(Prepared::Unknown(_))),
            "{unknown_task:?}"
        );
        let when_unknown = render(&task("join.changed"), &input);
        assert!(
            matches!(when_unknown, Err(Prepared::Unknown(_))),
            "{when_unknown:?}"
        );
    }
}
