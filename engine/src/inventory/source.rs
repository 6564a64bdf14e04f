//! From a path to a resolved inventory: which file (a directory holds one), which syntax
//! (YAML or INI), which shape (kprov's or Ansible's), the variables files beside it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::resolve::{Draft, Shape};
use super::var_files::{self, VarFiles};
use super::{ansible, connection, file, ini, kprov, resolve, Inventory};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::validate::{self, yaml, SourceMap};

/// Files in an inventory directory Ansible skips (its `inventory_ignore_extensions`).
const IGNORED_EXTENSIONS: [&str; 12] = [
    ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry",
];

/// The inventory file `path` names: itself, or the one inventory file in directory `path`.
pub fn inventory_file(path: &Path) -> Result<PathBuf, Diagnostics> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let problem = |message: String, hint: &str| {
        Diagnostics::from(Diagnostic {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            key: String::new(),
            message,
            hint: Some(hint.to_string()),
        })
    };
    let entries = std::fs::read_dir(path).map_err(|e| {
        problem(
            format!("cannot read the directory: {e}"),
            "check its permissions",
        )
    })?;
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or(".");
            !name.starts_with('.') && !IGNORED_EXTENSIONS.iter().any(|ext| name.ends_with(ext))
        })
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(problem(
            "no inventory file in this directory".into(),
            "put the inventory (inventory.ini or hosts.yaml) here, beside group_vars/ and host_vars/",
        )),
        _ => Err(problem(
            format!(
                "more than one inventory file in this directory: {}",
                found
                    .iter()
                    .filter_map(|p| p.file_name().and_then(|n| n.to_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "kprov reads one inventory file per directory: pass the one you mean with -i DIR/FILE",
        )),
    }
}

/// Loads the inventory at `path` (a file or a directory), with its variables files.
pub(super) fn load(path: &Path) -> Result<Inventory, Diagnostics> {
    let file = inventory_file(path)?;
    let text = validate::read(&file)?;
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let vars = var_files::load(dir)?;
    from_parts(&file, &text, vars)
}

/// True when `text` (of `path`) is an INI inventory rather than YAML.
fn is_ini(path: &Path, text: &str) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some("ini") => return true,
        Some("yml" | "yaml" | "json") => return false,
        _ => {}
    }
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'));
    match first {
        None => false,
        Some(line) if line.starts_with("---") || line.starts_with('{') => false,
        Some(line) if line.starts_with('[') => line.ends_with(']') && !line.contains(','),
        Some(line) => !(line.ends_with(':') || line.contains(": ")),
    }
}

/// Parses inventory `text` (the contents of `path`) and applies `vars` files to it.
pub(super) fn from_parts(
    path: &Path,
    text: &str,
    vars: VarFiles,
) -> Result<Inventory, Diagnostics> {
    let (document, duplicates) = if is_ini(path, text) {
        let (value, map) = ini::parse(path, text)?;
        (yaml::Document { value, map }, Diagnostics::default())
    } else {
        yaml::parse(path, text)?
    };
    if document.value.get("kubernetes_version").is_some() {
        return Err(document
            .map
            .at_key(
                "/kubernetes_version",
                "this file is a cluster spec, not an inventory",
                Some("pass it as the spec, and the inventory (hosts.yaml) with `-i`".into()),
            )
            .into());
    }
    // Ansible's shape is recognised by its top-level `all:` group.
    let is_ansible = document.value.get("all").is_some();
    let schema = if is_ansible {
        crate::schema::ansible_inventory_schema()
    } else {
        crate::schema::kprov_inventory_schema()
    };
    let loaded = validate::check_document(document, duplicates, &schema);
    let mut diagnostics = loaded.diagnostics;
    // With structural problems, the semantic checks run on what the schema accepted.
    let draft = if is_ansible {
        ansible::draft(&loaded.pruned, &loaded.map)
    } else {
        match validate::typed::<file::KprovInventoryFile>(&loaded.pruned, &loaded.map) {
            Ok(parsed) => Ok(kprov::draft(parsed, &loaded.map)),
            Err(error) => Err(vec![error]),
        }
    };
    let mut draft = match draft {
        Ok(mut draft) => {
            draft.partial = !diagnostics.is_empty();
            draft
        }
        Err(errors) => {
            if diagnostics.is_empty() {
                diagnostics.0.extend(errors);
            }
            return Err(diagnostics.sorted());
        }
    };
    apply_files(&mut draft, &vars);
    let mut warnings = Vec::new();
    if draft.shape == Shape::Ansible {
        check_vars(
            &draft,
            &loaded.map,
            &vars,
            &mut diagnostics.0,
            &mut warnings,
        );
    }
    let (mut inventory, problems) = resolve::resolve(draft, loaded.map);
    diagnostics.0.extend(problems);
    inventory.warnings = warnings;
    diagnostics.into_result(inventory)
}

/// Gives the draft's groups and hosts the variables of their `group_vars`/`host_vars` files.
fn apply_files(draft: &mut Draft, vars: &VarFiles) {
    draft.file_vars = VarFiles::merged(&vars.groups, "all");
    for group in &mut draft.groups {
        group.file_vars = VarFiles::merged(&vars.groups, &group.written);
    }
    for host in &mut draft.hosts {
        host.file_vars = VarFiles::merged(&vars.hosts, &host.name);
    }
}

/// Every place variables are written: the inventory file's (at their pointers) and each
/// variables file's; ssh arguments and host-key settings are checked and ignored Ansible
/// variables warned once.
fn check_vars(
    draft: &Draft,
    map: &SourceMap,
    files: &VarFiles,
    problems: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) {
    let mut warned = BTreeSet::new();
    let mut places: Vec<(&serde_json::Map<String, Value>, String, &SourceMap)> = Vec::new();
    places.push((&draft.vars, "/all/vars".into(), map));
    for group in &draft.groups {
        places.push((&group.vars, format!("{}/vars", group.pointer), map));
    }
    for host in &draft.hosts {
        places.push((&host.vars, host.pointer.clone(), map));
    }
    for file in files.all() {
        places.push((&file.vars, String::new(), &file.map));
    }
    for (vars, pointer, source) in places {
        connection::check_ssh_args(vars, &pointer, source, problems);
        connection::check_host_keys(vars, &pointer, source, problems);
        connection::warn_ignored(vars, &pointer, source, &mut warned, warnings);
    }
}

#[cfg(test)]
mod tests {
    use super::is_ini;
    use std::path::Path;

    #[test]
    fn tells_ini_from_yaml() {
        let p = Path::new("hosts");
        assert!(is_ini(p, "# c\n[all]\nnode1 ansible_host=1.2.3.4\n"));
        assert!(is_ini(p, "node1\nnode2\n"));
        assert!(!is_ini(p, "all:\n  hosts:\n"));
        assert!(!is_ini(p, "---\nall:\n"));
        assert!(is_ini(Path::new("x.ini"), "all:\n"));
    }
}
