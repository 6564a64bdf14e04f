//! The playbook's tasks checked before any host is touched: every task is rendered for
//! every host it runs on (without facts) and its module built with the module's own
//! argument checks, so what `apply` would refuse on a host is refused at validation.
//! Tasks that read facts or registered results are checked by the run itself.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::origin::{self, Layers};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::inventory::Inventory;
use crate::playbook::{Playbook, Task};
use crate::run::prepare::{prepare_all, Inputs, Prepared};
use crate::run::TagFilter;
use crate::spec::ClusterSpec;
use crate::template::Renderer;

/// What the task check reads: the same inputs `plan`/`apply` get.
pub struct TaskInputs<'a> {
    pub playbook: &'a Playbook,
    pub inventory: &'a Inventory,
    /// `--limit`.
    pub limit: Option<&'a str>,
    pub tags: &'a TagFilter,
    /// The cluster spec (for positions of its values), when one was given.
    pub spec: Option<&'a ClusterSpec>,
    /// The spec as variables ([`ClusterSpec::template_vars`]).
    pub spec_vars: &'a Map<String, Value>,
    /// `-e` variables (not spec keys).
    pub extra: &'a Map<String, Value>,
    /// Every `-e` variable as given, spec keys included (to say a value came from `-e`).
    pub given_extra: &'a Map<String, Value>,
}

/// Renders and builds every task of `input.playbook` for every host it targets; one
/// diagnostic per failing task and problem, naming the hosts and where the value came
/// from (`-e`, the spec's `file:line:column`, the inventory or the task).
pub fn check_tasks(input: &TaskInputs<'_>) -> Result<(), Diagnostics> {
    let selected: HashSet<&str> = match input.inventory.select(input.limit) {
        Ok(hosts) => hosts.into_iter().map(|h| h.name.as_str()).collect(),
        Err(_) => return Ok(()), // reported by the `--limit` check
    };
    let renderer = Renderer::new();
    let unknown = unknown_names(input.playbook);
    let common = common_vars(input.inventory);
    let playbook_dir = input
        .playbook
        .path
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| PathBuf::from("."));
    // (task origin, message) → the task, the hosts and the variable layers of the first.
    let mut failures: BTreeMap<(String, String), (Diagnostic, Vec<String>)> = BTreeMap::new();
    for play in &input.playbook.plays {
        let Ok(members) = input.inventory.select_pattern(&play.hosts) else {
            continue; // reported by the run with the play's position
        };
        for host in members
            .into_iter()
            .filter(|h| selected.contains(h.name.as_str()))
        {
            let layers = Layers {
                play,
                host,
                spec_vars: input.spec_vars,
                extra: input.extra,
            };
            let (vars, unrendered) = host_vars(&renderer, &layers, &common);
            // Playbook variables built from facts or results are known only in the run.
            let unknown: HashSet<String> = unknown.union(&unrendered).cloned().collect();
            let tasks = play
                .tasks
                .iter()
                .filter(|t| input.tags.selects(&t.tags))
                .chain(play.handlers.iter());
            for task in tasks.filter(|t| t.module != crate::actions::kube_apply::MODULE) {
                let task = without_local_files(task);
                let inputs = Inputs {
                    renderer: &renderer,
                    vars: &vars,
                    host: &kprov_modules::HostContext::default(),
                    unknown: &unknown,
                    playbook_dir: &playbook_dir,
                };
                for (_, prepared) in prepare_all(&task, &inputs) {
                    let Prepared::Fail(failure) = prepared else {
                        continue;
                    };
                    let entry = failures
                        .entry((task.origin.clone(), failure.message.clone()))
                        .or_insert_with(|| {
                            let at =
                                origin::locate(&renderer, &task, &layers, input, &failure.message);
                            (at, Vec::new())
                        });
                    if !entry.1.contains(&host.name) {
                        entry.1.push(host.name.clone());
                    }
                }
            }
        }
    }
    let out = failures
        .into_iter()
        .map(|((_, message), (mut at, hosts))| {
            at.message = format!("{message} (on {})", host_list(&hosts));
            at
        })
        .collect();
    Diagnostics(out).into_result(())
}

fn host_list(hosts: &[String]) -> String {
    let names: Vec<String> = hosts.iter().map(|h| format!("`{h}`")).collect();
    format!(
        "host{} {}",
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    )
}

/// Names known only once a host was reached: its facts and every registered result.
fn unknown_names(playbook: &Playbook) -> HashSet<String> {
    let mut names: HashSet<String> = ["facts".to_string()].into();
    for play in &playbook.plays {
        for task in play.tasks.iter().chain(play.handlers.iter()) {
            names.extend(task.register.clone());
        }
    }
    names
}

/// Variables every host sees that do not depend on the host (as the run sets them).
fn common_vars(inventory: &Inventory) -> Map<String, Value> {
    let mut vars = Map::new();
    let groups: Map<String, Value> = inventory
        .groups
        .iter()
        .map(|(g, members)| (g.clone(), Value::from(members.clone())))
        .collect();
    vars.insert("groups".into(), Value::Object(groups));
    vars.insert(
        "inventory_host_entries".into(),
        crate::inventory::host_entries(inventory),
    );
    vars.insert(
        "kprov_dir".into(),
        Value::String(
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(|d| d.display().to_string()))
                .unwrap_or_default(),
        ),
    );
    let hostvars: Map<String, Value> = inventory
        .hosts
        .iter()
        .map(|h| (h.name.clone(), Value::Object(h.vars.clone())))
        .collect();
    vars.insert("hostvars".into(), Value::Object(hostvars));
    vars
}

/// The variables `host` sees in `play` before facts: the merged layers, the common
/// variables and the playbook's own templated variables rendered against them; plus the
/// names of those that cannot be rendered yet (they read facts or results).
fn host_vars(
    renderer: &Renderer,
    layers: &Layers<'_>,
    common: &Map<String, Value>,
) -> (Value, HashSet<String>) {
    let mut vars = layers.merged();
    vars.extend(common.clone());
    vars.insert(
        "inventory_hostname".into(),
        Value::String(layers.host.name.clone()),
    );
    let play = layers.play;
    let templated: Vec<(String, Value)> = play
        .defaults
        .iter()
        .chain(play.vars.iter())
        .filter(|(k, v)| vars.get(*k) == Some(v) && mentions_template(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let context = Value::Object(vars.clone());
    let mut unrendered = HashSet::new();
    for (key, value) in templated {
        match renderer.render_value(&value, &key, &context) {
            Ok(rendered) => {
                vars.insert(key, rendered);
            }
            Err(_) => {
                unrendered.insert(key);
            }
        }
    }
    (Value::Object(vars), unrendered)
}

fn mentions_template(value: &Value) -> bool {
    Task::strings_of(value)
        .iter()
        .any(|s| s.contains("{{") || s.contains("{%"))
}

/// `copy: {src}` reads a local file only to send it; its content cannot be wrong, so the
/// check builds the module with empty content instead of reading (possibly large) files.
fn without_local_files(task: &Task) -> Task {
    let mut task = task.clone();
    if task.module != "copy" {
        return task;
    }
    if let Value::Object(map) = &mut task.args {
        if map.remove("src").is_some() {
            map.insert("content".into(), Value::String(String::new()));
            if let Some(dest) = map.remove("dest") {
                map.entry("path").or_insert(dest);
            }
        }
    }
    task
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const PLAYBOOK: &str = r#"
- name: t
  hosts: all
  vars:
    conf_dir: "{{ '/etc/a' if facts.os_family == 'rhel' else '/etc/b' }}"
  tasks:
    - name: modules
      kernel_module: { names: "{{ mods }}" }
    - name: from facts
      file: { path: "{{ facts.home }}/x", content: "" }
    - name: from a variable built from facts
      directory: { path: "{{ conf_dir }}" }
    - name: skipped
      kernel_module: { names: ["a;b"] }
      when: inventory_hostname == "nobody"
    - name: registered
      command: { argv: ["true"] }
      register: out
    - name: uses the result
      kernel_module: { names: ["{{ out.stdout }}"] }
"#;

    fn check(mods: Value, extra: Value) -> Result<(), Diagnostics> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        std::fs::write(&path, PLAYBOOK).unwrap();
        let playbook = crate::playbook::load(&path).unwrap();
        let inventory = crate::inventory::from_str(
            Path::new("h.yaml"),
            &format!(
                "hosts:\n  m: {{ address: 192.0.2.1, vars: {{ mods: {mods} }} }}\n\
                 groups:\n  masters: {{ hosts: [m] }}\n"
            ),
        )
        .unwrap();
        check_tasks(&TaskInputs {
            playbook: &playbook,
            inventory: &inventory,
            limit: None,
            tags: &TagFilter::default(),
            spec: None,
            spec_vars: &Map::new(),
            extra: extra.as_object().unwrap(),
            given_extra: extra.as_object().unwrap(),
        })
    }

    /// Only the argument known before connecting and refused by its module fails;
    /// tasks reading facts or results, and skipped ones, wait for the run.
    #[test]
    fn refuses_bad_arguments_known_before_connecting() {
        check(serde_json::json!(["overlay"]), serde_json::json!({})).unwrap();
        let err = check(serde_json::json!(["x y"]), serde_json::json!({})).unwrap_err();
        assert_eq!(err.len(), 1, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("h.yaml:2:") && text.contains("m.vars.mods"),
            "{text}"
        );
        assert!(text.contains("`x y` is not a kernel module name"), "{text}");
        let err = check(
            serde_json::json!(["overlay"]),
            serde_json::json!({"mods": ["$(reboot)"]}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("-e:1:1: mods"), "{err}");
    }
}
