//! From a task as written to a ready module for one host: `when`, templates,
//! `template:`/`copy: {src}` resolved to content ([`crate::actions::template`]), arguments
//! checked by the module.

use std::collections::HashSet;
use std::path::Path;

use serde_json::{Map, Value};

use crate::actions::template::Sources;
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

/// Prepares `task` for one host: one entry, or one per item of its `loop` (named
/// `task name (item)`, with `item` bound in its templates and `when`).
pub fn prepare_all(task: &Task, input: &Inputs<'_>) -> Vec<(String, Prepared)> {
    let Some(items) = &task.loop_items else {
        return vec![(task.name.clone(), prepare(task, input))];
    };
    let whole = |p: Prepared| vec![(task.name.clone(), p)];
    // A `when` that does not look at `item` decides for the whole task, once.
    if let Some(when) = task.when.as_deref() {
        let per_item = input
            .renderer
            .references(&as_template(when))
            .iter()
            .any(|path| path.split('.').next() == Some("item"));
        if !per_item && unknown_in(std::iter::once(when), input).is_none() {
            if let Err(not_ready) = check_when(task, input) {
                return whole(not_ready);
            }
        }
    }
    let texts = crate::playbook::Task::strings_of(items);
    if let Some(name) = unknown_in(texts.into_iter(), input) {
        return whole(Prepared::Unknown(format!(
            "loops over `{name}`, known after apply"
        )));
    }
    let items = match loop_list(task, items, input) {
        Ok(items) => items,
        Err(message) => return whole(fail(message)),
    };
    if items.is_empty() {
        return whole(Prepared::Skip("loop over no items".into()));
    }
    let Value::Object(base) = input.vars else {
        return whole(fail(format!(
            "{}: no variables to bind `item` in",
            task.origin
        )));
    };
    items
        .into_iter()
        .map(|item| {
            let name = format!("{} ({})", task.name, item_label(&item));
            let mut vars = base.clone();
            vars.insert("item".into(), item);
            let vars = Value::Object(vars);
            let prepared = prepare(
                task,
                &Inputs {
                    vars: &vars,
                    ..*input
                },
            );
            (name, prepared)
        })
        .collect()
}

/// The items `loop:` gives on this host.
fn loop_list(task: &Task, items: &Value, input: &Inputs<'_>) -> Result<Vec<Value>, String> {
    let origin = format!("{} (loop)", task.origin);
    match input.renderer.render_value(items, &origin, input.vars) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(Value::Object(_)) => Err(format!(
            "{origin}: the loop gave a mapping; loop over `… | dict2items` (items with key and value)"
        )),
        Ok(other) => Err(format!("{origin}: the loop gave {other}, not a list")),
        Err(e) => Err(e.to_string()),
    }
}

/// How an item shows in task names: a string as it is, a `{key, …}` mapping by its key,
/// anything else as compact JSON.
fn item_label(item: &Value) -> String {
    match item {
        Value::String(s) => s.clone(),
        Value::Object(m) => match m.get("key").or_else(|| m.get("name")) {
            Some(Value::String(s)) => s.clone(),
            _ => item.to_string(),
        },
        other => other.to_string(),
    }
}

/// Prepares `task` for one host.
pub fn prepare(task: &Task, input: &Inputs<'_>) -> Prepared {
    let args = match render(task, input) {
        Ok(args) => args,
        Err(not_ready) => return not_ready,
    };
    let sources = Sources {
        renderer: input.renderer,
        vars: input.vars,
        playbook_dir: input.playbook_dir,
    };
    let (module, args) = match sources.resolve(task, args) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
            loop_items: None,
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

    fn looped(items: Value, when: Option<&str>) -> Task {
        Task {
            name: "dir".into(),
            module: "directory".into(),
            args: json!({"path": "/etc/x/{{ item.key }}", "mode": "0755"}),
            when: when.map(str::to_string),
            loop_items: Some(items),
            ..task("true")
        }
    }

    fn expand(task: &Task, vars: &Value, unknown: &HashSet<String>) -> Vec<(String, Prepared)> {
        let renderer = Renderer::new();
        let input = Inputs {
            renderer: &renderer,
            vars,
            host: &kprov_modules::HostContext::default(),
            unknown,
            playbook_dir: Path::new("."),
        };
        prepare_all(task, &input)
    }

    /// `loop:` gives one module per item, named by the item, with `item` bound in the
    /// arguments and in `when` (evaluated per item).
    #[test]
    fn a_loop_expands_into_one_task_per_item() {
        let vars = json!({"regs": {"b:5000": {"ca": true}, "a": {"ca": false}}});
        let t = looped(json!("{{ regs | dict2items }}"), Some("item.value.ca"));
        let out = expand(&t, &vars, &HashSet::new());
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["dir (a)", "dir (b:5000)"]);
        assert!(matches!(out[0].1, Prepared::Skip(_)), "{:?}", out[0].1);
        let Prepared::Ready(m) = &out[1].1 else {
            panic!("{:?}", out[1].1)
        };
        assert!(m.gather().contains("/etc/x/b:5000"), "{}", m.gather());

        // A literal list, each element templated; `with_items` is the same keyword.
        let t = Task {
            args: json!({"path": "/d/{{ item }}"}),
            ..looped(json!(["one", "{{ 'two' }}"]), None)
        };
        let out = expand(&t, &vars, &HashSet::new());
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["dir (one)", "dir (two)"]);
        assert!(out.iter().all(|(_, p)| matches!(p, Prepared::Ready(_))));
    }

    /// A false `when` that does not use `item` skips the task once, not once per item.
    #[test]
    fn a_when_without_item_decides_once() {
        let vars = json!({"kind": "agent", "xs": ["a", "b"]});
        let t = looped(json!("{{ xs }}"), Some("kind == 'containerd'"));
        let out = expand(&t, &vars, &HashSet::new());
        let [(name, Prepared::Skip(_))] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!(name, "dir");
    }

    #[test]
    fn loops_over_nothing_a_mapping_or_an_unknown_value() {
        let vars = json!({"empty": [], "regs": {"a": 1}, "join": {}});
        let out = expand(&looped(json!("{{ empty }}"), None), &vars, &HashSet::new());
        assert!(matches!(&out[..], [(_, Prepared::Skip(_))]), "{out:?}");
        let out = expand(&looped(json!("{{ regs }}"), None), &vars, &HashSet::new());
        let [(_, Prepared::Fail(f))] = &out[..] else {
            panic!("{out:?}")
        };
        assert!(f.message.contains("dict2items"), "{}", f.message);
        let unknown: HashSet<String> = ["join".to_string()].into();
        let out = expand(&looped(json!("{{ join.items }}"), None), &vars, &unknown);
        assert!(matches!(&out[..], [(_, Prepared::Unknown(_))]), "{out:?}");
    }
}
