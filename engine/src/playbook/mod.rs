//! Playbooks and roles: the YAML users write, loaded into plays of tasks.
//!
//! A playbook is a list of plays. A play targets hosts or groups (`hosts:`), brings
//! roles (`roles/NAME/{tasks,handlers,defaults}.yaml`, `templates/`, `files/`) and its
//! own `tasks`/`handlers`. A task is one module with its arguments plus the keywords in
//! [`task::KEYWORDS`]. Errors name file:line:column.

mod role;
mod task;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::validate::yaml;

pub use role::Role;
pub use task::{is_identifier, Task, KEYWORDS};

/// A loaded playbook.
#[derive(Debug, Clone)]
pub struct Playbook {
    pub path: PathBuf,
    pub plays: Vec<Play>,
}

/// One play: which hosts, which tasks, which handlers.
#[derive(Debug, Clone)]
pub struct Play {
    pub name: String,
    /// Host or group names, comma-separated (`all` for every host).
    pub hosts: String,
    /// Where `hosts:` is written, for errors about unknown names.
    pub hosts_at: Diagnostic,
    /// Play variables (above inventory variables, below the cluster spec).
    pub vars: Map<String, Value>,
    /// Role defaults of every role of the play, merged in role order (lowest precedence).
    pub defaults: Map<String, Value>,
    /// Tasks in execution order: role tasks first, then the play's own.
    pub tasks: Vec<Task>,
    pub handlers: Vec<Task>,
    /// Abort the whole run when more than this share of hosts failed.
    pub max_fail_percentage: Option<u8>,
}

const PLAY_KEYS: &[&str] = &[
    "name",
    "hosts",
    "vars",
    "roles",
    "tasks",
    "handlers",
    "max_fail_percentage",
];

/// Loads `path`; roles are looked up in `roles/` next to the playbook's directory and in
/// the playbook's own directory (`<dir>/roles`, `<dir>/../roles`).
pub fn load(path: &Path) -> Result<Playbook, Diagnostics> {
    let doc = read(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let role_dirs = [base.join("roles"), base.join("../roles")];
    let Value::Array(items) = &doc.value else {
        let hint = if doc.value.get("kubernetes_version").is_some() {
            format!(
                "this is a cluster spec: pass it with --spec and name a playbook, e.g. \
                 `kprov apply playbooks/node-prep.yaml -i INVENTORY --spec {}`",
                path.display()
            )
        } else {
            "start each play with `- name: …` and `hosts: …`".to_string()
        };
        return Err(doc
            .map
            .at_value("", "a playbook is a list of plays", Some(hint))
            .into());
    };
    let mut problems = Vec::new();
    let mut plays = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("/{i}");
        match play(item, &at, &doc.map, &role_dirs) {
            Ok(p) => plays.push(p),
            Err(d) => problems.extend(d.0),
        }
    }
    if problems.is_empty() {
        Ok(Playbook {
            path: path.to_path_buf(),
            plays,
        })
    } else {
        Err(Diagnostics(problems))
    }
}

/// Reads and parses a YAML file, turning I/O failures into a diagnostic.
pub(crate) fn read(path: &Path) -> Result<yaml::Document, Diagnostics> {
    let text = crate::validate::read(path)?;
    let (doc, dups) = yaml::parse(path, &text)?;
    if dups.is_empty() {
        Ok(doc)
    } else {
        Err(dups)
    }
}

fn play(
    value: &Value,
    at: &str,
    map: &crate::validate::SourceMap,
    role_dirs: &[PathBuf],
) -> Result<Play, Diagnostics> {
    let Value::Object(obj) = value else {
        return Err(map
            .at_value(
                at,
                "a play is a mapping with `hosts:` and `tasks:` or `roles:`",
                None,
            )
            .into());
    };
    let mut problems = Vec::new();
    for key in obj.keys() {
        if !PLAY_KEYS.contains(&key.as_str()) {
            problems.push(map.at_key(
                &format!("{at}/{key}"),
                format!("unknown play keyword `{key}`"),
                Some(format!("a play takes: {}", PLAY_KEYS.join(", "))),
            ));
        }
    }
    let hosts = match obj.get("hosts") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        _ => {
            problems.push(map.at_value(
                at,
                "the play has no `hosts:`",
                Some("e.g. `hosts: all`, `hosts: masters` or `hosts: node1,node2`".into()),
            ));
            String::new()
        }
    };
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(&hosts)
        .to_string();
    let hosts_at = map.at_value(&format!("{at}/hosts"), String::new(), None);
    let vars = object(obj.get("vars"), &format!("{at}/vars"), map, &mut problems);
    let mut defaults = Map::new();
    let mut tasks = Vec::new();
    let mut handlers = Vec::new();
    if let Some(roles) = obj.get("roles") {
        let Value::Array(roles) = roles else {
            return Err(map
                .at_value(
                    &format!("{at}/roles"),
                    "`roles` is a list of role names",
                    None,
                )
                .into());
        };
        for (i, r) in roles.iter().enumerate() {
            let rat = format!("{at}/roles/{i}");
            let Some(role_name) = r.as_str() else {
                problems.push(map.at_value(&rat, "a role is named by a string", None));
                continue;
            };
            match role::load(role_name, role_dirs) {
                Ok(Some(role)) => {
                    defaults.extend(role.defaults.clone());
                    tasks.extend(role.tasks.clone());
                    handlers.extend(role.handlers.clone());
                }
                Ok(None) => problems.push(map.at_value(
                    &rat,
                    format!("role `{role_name}` not found"),
                    Some(format!(
                            "roles live in {}",
                            role_dirs
                                .iter()
                                .map(|d| format!("{}/{role_name}/", d.display()))
                                .collect::<Vec<_>>()
                                .join(" or ")
                        )),
                )),
                Err(d) => problems.extend(d.0),
            }
        }
    }
    for (key, list) in [("tasks", &mut tasks), ("handlers", &mut handlers)] {
        match task::list(obj.get(key), &format!("{at}/{key}"), map, None) {
            Ok(more) => list.extend(more),
            Err(d) => problems.extend(d.0),
        }
    }
    let max_fail_percentage = match obj.get("max_fail_percentage") {
        None => None,
        Some(v) => match v
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .filter(|n| *n <= 100)
        {
            Some(n) => Some(n),
            None => {
                problems.push(map.at_value(
                    &format!("{at}/max_fail_percentage"),
                    "expected a whole number from 0 to 100",
                    None,
                ));
                None
            }
        },
    };
    if !problems.is_empty() {
        return Err(Diagnostics(problems));
    }
    Ok(Play {
        name,
        hosts,
        hosts_at,
        vars,
        defaults,
        tasks,
        handlers,
        max_fail_percentage,
    })
}

/// A mapping at `at`, or an empty one when absent; anything else is reported.
pub(crate) fn object(
    value: Option<&Value>,
    at: &str,
    map: &crate::validate::SourceMap,
    problems: &mut Vec<Diagnostic>,
) -> Map<String, Value> {
    match value {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            problems.push(map.at_value(at, "expected a mapping of names to values", None));
            Map::new()
        }
    }
}
