//! Where a value a task failed on came from: `-e`, the cluster spec (its
//! `file:line:column`), the host's inventory variables, or the task itself.

use std::path::PathBuf;

use serde_json::{Map, Value};

use super::source_map::pointer_join;
use super::tasks::TaskInputs;
use crate::diagnostic::Diagnostic;
use crate::inventory::Host;
use crate::playbook::{Play, Task};
use crate::template::Renderer;

/// The variable layers of one host in one play.
pub(super) struct Layers<'a> {
    pub play: &'a Play,
    pub host: &'a Host,
    pub spec_vars: &'a Map<String, Value>,
    pub extra: &'a Map<String, Value>,
}

impl Layers<'_> {
    /// Merged by precedence, as the run merges them.
    pub fn merged(&self) -> Map<String, Value> {
        crate::vars::Layers {
            role_defaults: Some(&self.play.defaults),
            inventory: Some(&self.host.vars),
            play: Some(&self.play.vars),
            spec: Some(self.spec_vars),
            extra: Some(self.extra),
        }
        .merge()
    }
}

/// A diagnostic (message filled in by the caller) at the value the task reads that is
/// most likely wrong: a `-e` variable, else a spec value, else a host variable, else the
/// task's own line. The hint names the variable to correct.
pub(super) fn locate(
    renderer: &Renderer,
    task: &Task,
    layers: &Layers<'_>,
    input: &TaskInputs<'_>,
    message: &str,
) -> Diagnostic {
    let mut paths: Vec<String> = task
        .texts()
        .into_iter()
        .flat_map(|t| renderer.references(t))
        .collect();
    paths.sort();
    paths.dedup();
    if let Some(d) = at_quoted_address(task, input, message) {
        return d;
    }
    let root = |p: &str| p.split('.').next().unwrap_or_default().to_string();
    let from = |layer: &Map<String, Value>| paths.iter().find(|p| layer.contains_key(&root(p)));
    let given = Value::Object(input.given_extra.clone());
    let from_e = paths
        .iter()
        .find(|p| given.pointer(&dotted_pointer(p)).is_some())
        .or_else(|| from(layers.extra));
    if let Some(path) = from_e {
        return Diagnostic {
            file: PathBuf::from("-e"),
            line: 1,
            column: 1,
            key: path.clone(),
            message: String::new(),
            hint: Some(format!(
                "correct `{path}` given with -e (task `{}` at {} uses it)",
                task.name, task.origin
            )),
        };
    }
    // A spec value the message quotes is the likeliest culprit.
    let spec_value = Value::Object(layers.spec_vars.clone());
    let quoted_in_spec = paths.iter().find(|p| {
        spec_value
            .pointer(&dotted_pointer(p))
            .is_some_and(|v| quotes_any(v, message))
    });
    if let (Some(path), Some(spec)) = (quoted_in_spec.or(from(layers.spec_vars)), input.spec) {
        let pointer = spec_pointer(path, spec.source());
        let whole = Value::Object(layers.spec_vars.clone());
        let (pointer, is_key) = refine(&whole, pointer, message);
        let mut d = if is_key {
            spec.source().at_key(&pointer, "", None)
        } else {
            spec.source().at_value(&pointer, "", None)
        };
        d.hint = Some(format!(
            "correct `{}` in the cluster spec (task `{}` at {} uses it)",
            spec.source().dotted(&pointer),
            task.name,
            task.origin
        ));
        return d;
    }
    if let Some(path) = from(&layers.host.vars) {
        let mut d = input.inventory.at_host_address(&layers.host.name, "", None);
        d.key = format!("{}.vars.{path}", layers.host.name);
        d.hint = Some(format!(
            "correct the variable `{path}` of host `{}` (or of its groups) in the inventory \
             (task `{}` at {} uses it)",
            layers.host.name, task.name, task.origin
        ));
        return d;
    }
    let (file, line) = match task.origin.rsplit_once(':') {
        Some((file, line)) if line.parse::<usize>().is_ok() => {
            (file.to_string(), line.parse().unwrap_or(1))
        }
        _ => (task.origin.clone(), 1),
    };
    Diagnostic {
        file: PathBuf::from(file),
        line,
        column: 1,
        key: task.name.clone(),
        message: String::new(),
        hint: paths
            .first()
            .map(|p| format!("check the value of `{p}` this task uses")),
    }
}

/// A host address the message quotes (`` `node2.example` is not an IP address``): the
/// diagnostic points at where the inventory writes it.
fn at_quoted_address(task: &Task, input: &TaskInputs<'_>, message: &str) -> Option<Diagnostic> {
    let host = input.inventory.hosts.iter().find(|h| {
        message.contains(&format!("`{}`", h.address))
            || message.contains(&format!("`{}`", h.ssh_address))
    })?;
    let mut d = input.inventory.at_host_address(&host.name, "", None);
    d.key = format!("{}.address", host.name);
    d.hint = Some(format!(
        "correct the address of host `{}` (task `{}` at {} uses it)",
        host.name, task.name, task.origin
    ));
    Some(d)
}

/// True when `message` quotes `value` or any string inside it.
fn quotes_any(value: &Value, message: &str) -> bool {
    crate::playbook::Task::strings_of(value)
        .iter()
        .any(|s| !s.is_empty() && message.contains(&format!("`{s}`")))
        || (!value.is_string() && message.contains(&format!("`{value}`")))
}

/// `os.kernel_modules` → `/os/kernel_modules`.
fn dotted_pointer(path: &str) -> String {
    path.split('.')
        .fold(String::new(), |p, s| pointer_join(&p, s))
}

/// The deepest pointer of `path` (`os.kernel_modules`) the spec file writes.
fn spec_pointer(path: &str, map: &super::SourceMap) -> String {
    let mut pointer = String::new();
    let mut deepest = String::new();
    for segment in path.split('.') {
        pointer = pointer_join(&pointer, segment);
        if map.contains(&pointer) {
            deepest = pointer.clone();
        }
    }
    deepest
}

/// Narrows `pointer` to the list item or mapping key that `message` quotes (`` `a;b` is
/// not a kernel module name`` → `/os/kernel_modules/2`); true when it names a key.
fn refine(root: &Value, pointer: String, message: &str) -> (String, bool) {
    let quoted = |s: &str| message.contains(&format!("`{s}`"));
    match root.pointer(&pointer) {
        Some(Value::Array(items)) => items
            .iter()
            .position(|v| v.as_str().is_some_and(quoted))
            .map_or((pointer.clone(), false), |i| {
                (pointer_join(&pointer, &i.to_string()), false)
            }),
        Some(Value::Object(map)) => match map.keys().find(|k| quoted(k)) {
            Some(k) => (pointer_join(&pointer, k), true),
            None => match map.iter().find(|(_, v)| v.as_str().is_some_and(quoted)) {
                Some((k, _)) => (pointer_join(&pointer, k), false),
                None => (pointer, false),
            },
        },
        _ => (pointer, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refine_finds_the_quoted_item_or_key() {
        let root = json!({"os": {"kernel_modules": ["overlay", "a;b"], "sysctls": {"x y": 1}}});
        let msg = "module `kernel_module`: `a;b` is not a kernel module name";
        assert_eq!(
            refine(&root, "/os/kernel_modules".into(), msg),
            ("/os/kernel_modules/1".into(), false)
        );
        let msg = "module `sysctl`: `x y` is not a sysctl key";
        assert_eq!(
            refine(&root, "/os/sysctls".into(), msg),
            ("/os/sysctls/x y".into(), true)
        );
        assert_eq!(refine(&root, "/os".into(), "other"), ("/os".into(), false));
    }
}
