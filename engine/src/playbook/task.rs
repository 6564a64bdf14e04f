//! One task: a module with its arguments plus keywords (`when`, `notify`, `register` …).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::validate::SourceMap;

/// Keywords a task may carry besides its one module.
pub const KEYWORDS: &[&str] = &[
    "name",
    "when",
    "notify",
    "tags",
    "register",
    "retries",
    "delay",
    "until",
    "timeout",
    "become",
    "loop",
    "with_items",
];

/// A task as written (templates in `args`, `when`, `until` are rendered per host later).
#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    /// Module name, e.g. `file`, `sysctl`.
    pub module: String,
    /// Module arguments, still containing `{{ … }}` templates.
    pub args: Value,
    pub when: Option<String>,
    pub notify: Vec<String>,
    pub tags: Vec<String>,
    pub register: Option<String>,
    pub retries: u32,
    pub delay: Duration,
    pub until: Option<String>,
    pub timeout: Option<Duration>,
    /// `loop:` (or `with_items:`): a list, or an expression giving one. The task runs once
    /// per item, with `item` bound, rendered per host.
    pub loop_items: Option<Value>,
    /// The role's directory when the task comes from a role (for `templates/`, `files/`).
    pub role_dir: Option<PathBuf>,
    /// `file:line` where the task starts, for messages.
    pub origin: String,
}

impl Task {
    /// Every string inside `value` (templates of arguments or of a loop).
    pub fn strings_of(value: &Value) -> Vec<&str> {
        fn strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
            match value {
                Value::String(s) => out.push(s),
                Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
                Value::Object(map) => map.values().for_each(|v| strings(v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        strings(value, &mut out);
        out
    }

    /// Every template or expression the task holds: strings of its arguments, `when`
    /// and `until` (what decides which variables it reads).
    pub fn texts(&self) -> Vec<&str> {
        let mut out = Task::strings_of(&self.args);
        if let Some(items) = &self.loop_items {
            out.extend(Task::strings_of(items));
        }
        out.extend(self.when.as_deref());
        out.extend(self.until.as_deref());
        out
    }
}

/// Parses the task list at `at` (absent means empty).
pub(crate) fn list(
    value: Option<&Value>,
    at: &str,
    map: &SourceMap,
    role_dir: Option<&PathBuf>,
) -> Result<Vec<Task>, Diagnostics> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(map.at_value(at, "expected a list of tasks", None).into()),
    };
    let mut problems = Vec::new();
    let mut tasks = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match one(item, &format!("{at}/{i}"), map, role_dir) {
            Ok(t) => tasks.push(t),
            Err(d) => problems.extend(d.0),
        }
    }
    if problems.is_empty() {
        Ok(tasks)
    } else {
        Err(Diagnostics(problems))
    }
}

fn one(
    value: &Value,
    at: &str,
    map: &SourceMap,
    role_dir: Option<&PathBuf>,
) -> Result<Task, Diagnostics> {
    let Value::Object(obj) = value else {
        return Err(map
            .at_value(at, "a task is a mapping: `- name: …` plus one module", None)
            .into());
    };
    let mut problems: Vec<Diagnostic> = Vec::new();
    let modules: Vec<&String> = obj
        .keys()
        .filter(|k| !KEYWORDS.contains(&k.as_str()))
        .collect();
    let (module, args) = match modules.as_slice() {
        [one] => ((*one).clone(), normalize_args(one, &obj[one.as_str()])),
        [] => {
            return Err(map
                .at_value(
                    at,
                    "the task names no module",
                    Some(format!(
                        "add one module, e.g. `file: {{path: …}}`; keywords are {}",
                        KEYWORDS.join(", ")
                    )),
                )
                .into())
        }
        many => {
            let names: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
            return Err(map
                .at_key(
                    &format!("{at}/{}", many[1]),
                    format!("a task runs exactly one module, found {}", names.join(", ")),
                    Some("split it into several tasks".into()),
                )
                .into());
        }
    };
    if crate::catalog::find(&module).is_none() {
        problems.push(map.at_key(
            &format!("{at}/{module}"),
            format!(
                "unknown module `{module}`{}",
                crate::catalog::suggest(&module)
            ),
            Some(format!(
                "modules: {} (`kprov modules` says what each does)",
                crate::catalog::names().join(", ")
            )),
        ));
    }
    let text = |key: &str, problems: &mut Vec<Diagnostic>| -> Option<String> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            Some(_) => {
                problems.push(map.at_value(
                    &format!("{at}/{key}"),
                    "expected an expression (a string)",
                    None,
                ));
                None
            }
        }
    };
    let strings = |key: &str, problems: &mut Vec<Diagnostic>| -> Vec<String> {
        match obj.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(_) => {
                problems.push(map.at_value(
                    &format!("{at}/{key}"),
                    "expected a name or a list of names",
                    None,
                ));
                Vec::new()
            }
        }
    };
    let seconds = |key: &str, problems: &mut Vec<Diagnostic>| -> Option<Duration> {
        obj.get(key).and_then(|v| match v.as_f64() {
            Some(s) if (0.0..1e9).contains(&s) => Some(Duration::from_secs_f64(s)),
            _ => {
                problems.push(map.at_value(
                    &format!("{at}/{key}"),
                    "expected a number of seconds",
                    None,
                ));
                None
            }
        })
    };
    let when = text("when", &mut problems);
    let until = text("until", &mut problems);
    let notify = strings("notify", &mut problems);
    let tags = strings("tags", &mut problems);
    let register = text("register", &mut problems);
    let timeout = seconds("timeout", &mut problems);
    let delay = seconds("delay", &mut problems).unwrap_or(Duration::from_secs(1));
    let retries = match obj.get("retries") {
        None => 0,
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => n,
            None => {
                problems.push(map.at_value(
                    &format!("{at}/retries"),
                    "expected a whole number",
                    None,
                ));
                0
            }
        },
    };
    // Every task runs with the host's privileges (the inventory's `become`): `become:
    // true` says so again, `become: false` would be a promise kprov does not keep.
    match obj.get("become") {
        None | Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => problems.push(map.at_value(
            &format!("{at}/become"),
            "a task cannot drop root: kprov runs every task with the host's privileges",
            Some("remove `become: false`; the inventory's `become` (ansible_become) decides for the whole host".into()),
        )),
        Some(_) => problems.push(map.at_value(&format!("{at}/become"), "expected true or false", None)),
    }
    let loop_items = loop_items(obj, at, map, &mut problems);
    if loop_items.is_some() {
        let unsupported = [
            ("register", register.is_some()),
            ("retries", obj.contains_key("retries")),
            ("until", until.is_some()),
            (
                module.as_str(),
                module == crate::actions::kube_apply::MODULE,
            ),
        ];
        if let Some((key, _)) = unsupported.into_iter().find(|(_, set)| *set) {
            problems.push(map.at_key(
                &format!("{at}/{key}"),
                format!("`{key}` cannot be combined with `loop` yet"),
                Some("split the loop into one task per item".into()),
            ));
        }
    }
    if let Some(r) = &register {
        if !is_identifier(r) {
            problems.push(map.at_value(
                &format!("{at}/register"),
                format!("`{r}` is not a variable name"),
                Some("use letters, digits and _ (not starting with a digit)".into()),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Diagnostics(problems));
    }
    let pos = map.value_position(at);
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| module.clone());
    Ok(Task {
        name,
        module,
        args,
        when,
        notify,
        tags,
        register,
        retries,
        delay,
        until,
        timeout,
        loop_items,
        role_dir: role_dir.cloned(),
        origin: format!("{}:{}", map.file().display(), pos.line),
    })
}

/// `loop:` or its alias `with_items:` (not both): a list or an expression (a string).
fn loop_items(
    obj: &Map<String, Value>,
    at: &str,
    map: &SourceMap,
    problems: &mut Vec<Diagnostic>,
) -> Option<Value> {
    let (key, value) = match (obj.get("loop"), obj.get("with_items")) {
        (Some(_), Some(_)) => {
            problems.push(map.at_key(
                &format!("{at}/with_items"),
                "a task has `loop` or `with_items`, not both",
                Some("`with_items` is an alias of `loop`: keep one".into()),
            ));
            return None;
        }
        (Some(v), None) => ("loop", v),
        (None, Some(v)) => ("with_items", v),
        (None, None) => return None,
    };
    match value {
        Value::Array(_) | Value::String(_) => Some(value.clone()),
        _ => {
            problems.push(map.at_value(
                &format!("{at}/{key}"),
                format!("`{key}` expects a list or an expression giving one"),
                Some(format!(
                    "e.g. `{key}: [a, b]` or `{key}: \"{{{{ runtime.registries | dict2items }}}}\"`"
                )),
            ));
            None
        }
    }
}

/// `shell: "echo hi"` is shorthand for `{script: …}`, `command: "ls -l"` for `{argv: […]}`
/// (split like a shell would, without running one).
fn normalize_args(module: &str, args: &Value) -> Value {
    match (module, args) {
        ("shell", Value::String(s)) => serde_json::json!({ "script": s }),
        ("command", Value::String(s)) => {
            let argv = shlex::split(s).unwrap_or_else(|| vec![s.clone()]);
            serde_json::json!({ "argv": argv })
        }
        (_, Value::Null) => Value::Object(Map::new()),
        _ => args.clone(),
    }
}

pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    fn load(tasks: &str) -> Result<crate::playbook::Playbook, crate::diagnostic::Diagnostics> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        std::fs::write(&path, format!("- name: p\n  hosts: all\n  tasks:\n{tasks}")).unwrap();
        crate::playbook::load(&path)
    }

    #[test]
    fn loop_and_with_items_are_parsed() {
        let p = load("    - directory: { path: \"/d/{{ item }}\" }\n      loop: [a, b]\n").unwrap();
        assert_eq!(
            p.plays[0].tasks[0].loop_items,
            Some(serde_json::json!(["a", "b"]))
        );
        let p =
            load("    - directory: { path: \"/d/{{ item }}\" }\n      with_items: \"{{ xs }}\"\n")
                .unwrap();
        let t = &p.plays[0].tasks[0];
        assert_eq!(t.loop_items, Some(serde_json::json!("{{ xs }}")));
        assert!(
            t.texts().contains(&"{{ xs }}"),
            "the loop's variables count as inputs"
        );
    }

    #[test]
    fn loop_misuse_is_refused_where_it_is_written() {
        for (tasks, line, needle) in [
            (
                "    - directory: { path: /d }\n      loop: [a]\n      with_items: [b]\n",
                6,
                "not both",
            ),
            (
                "    - directory: { path: /d }\n      loop: 5\n",
                5,
                "expects a list",
            ),
            (
                "    - directory: { path: /d }\n      loop: [a]\n      register: r\n",
                6,
                "`register` cannot be combined with `loop`",
            ),
        ] {
            let err = load(tasks).unwrap_err();
            let d = &err.0[0];
            assert!(d.message.contains(needle), "{}", d.message);
            assert_eq!(d.line, line, "{tasks}: {}", d.message);
        }
    }

    #[test]
    fn a_task_cannot_promise_to_run_without_root() {
        assert!(load("    - directory: { path: /d }\n      become: true\n").is_ok());
        let err = load("    - directory: { path: /d }\n      become: false\n").unwrap_err();
        let d = &err.0[0];
        assert!(d.message.contains("cannot drop root"), "{}", d.message);
        assert_eq!((d.line, d.column), (5, 15), "{}", d.message);
        assert!(d
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("ansible_become")));
    }
}
