//! `kprov modules` lists every module with its one-line doc, `kprov modules NAME` shows a
//! module's arguments, an unknown name is a usage error with a suggestion; and the
//! README's module table is exactly what `kprov modules` prints. No lab needed.

mod common;

use std::collections::BTreeMap;

use common::{kprov, kprov_ok};
use serde_json::Value;

/// `(name, doc)` of every module, as `kprov modules --output json` gives them.
fn listed() -> Vec<(String, String)> {
    let out = kprov_ok(&["modules", "--output", "json"]);
    let value: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().expect("name").to_string(),
                m["doc"].as_str().expect("doc").to_string(),
            )
        })
        .collect()
}

/// The rows of the README's `| module | does |` table, name → doc.
fn readme_rows() -> BTreeMap<String, String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let mut lines = readme
        .lines()
        .skip_while(|l| l.trim() != "| module | does |");
    assert!(
        lines.next().is_some(),
        "README.md has no `| module | does |` table"
    );
    let mut rows = BTreeMap::new();
    for line in lines.skip(1).take_while(|l| l.starts_with('|')) {
        let cells = line
            .strip_prefix("| `")
            .and_then(|l| l.strip_suffix(" |"))
            .and_then(|l| l.split_once("` | "))
            .unwrap_or_else(|| panic!("README module row not `| `name` | doc |`: {line}"));
        let previous = rows.insert(cells.0.to_string(), cells.1.to_string());
        assert!(previous.is_none(), "README lists `{}` twice", cells.0);
    }
    rows
}

#[test]
fn lists_every_module_in_aligned_columns() {
    let listed = listed();
    let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
    for name in [
        "file",
        "copy",
        "command",
        "shell",
        "template",
        "kube_apply",
        "sysctl",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "not sorted: {names:?}"
    );

    let human = kprov_ok(&["modules"]);
    let column = names.iter().map(|n| n.len()).max().unwrap() + 2;
    let lines: Vec<&str> = human.lines().collect();
    assert_eq!(lines.len(), listed.len(), "{human}");
    for (line, (name, doc)) in lines.iter().zip(&listed) {
        assert_eq!(line[..column].trim_end(), name, "{line}");
        assert_eq!(&line[column..], doc, "{line}");
    }
}

#[test]
fn readme_module_table_is_the_listing() {
    let listed: BTreeMap<String, String> = listed().into_iter().collect();
    let readme = readme_rows();
    let mut problems = Vec::new();
    for (name, doc) in &listed {
        match readme.get(name) {
            None => problems.push(format!("`{name}` is a module but not in README.md's table")),
            Some(text) if text != doc => problems.push(format!(
                "`{name}`: README.md says `{text}`, `kprov modules` says `{doc}`"
            )),
            Some(_) => {}
        }
    }
    for name in readme.keys().filter(|n| !listed.contains_key(*n)) {
        problems.push(format!(
            "README.md's table lists `{name}`, which is no module"
        ));
    }
    assert!(
        problems.is_empty(),
        "README.md's module table must be `kprov modules`' rows:\n{}",
        problems.join("\n")
    );
}

#[test]
fn one_module_shows_its_arguments() {
    let out = kprov_ok(&["modules", "file"]);
    assert!(out.starts_with("> FILE\n"), "{out}");
    for expected in [
        "exact content",
        "= path\n",
        "Absolute path of the file.",
        "- mode\n",
        "type: string or integer",
        "- state\n",
        "choices: present, absent",
        "- sensitive\n",
        "default: false",
    ] {
        assert!(out.contains(expected), "`{expected}` missing:\n{out}");
    }
    // Aliases and engine modules have their own arguments.
    assert!(kprov_ok(&["modules", "shell"]).contains("= script\n"));
    assert!(kprov_ok(&["modules", "command"]).contains("= argv\n"));
    let template = kprov_ok(&["modules", "template"]);
    assert!(template.contains("= src\n") && template.contains("- dest\n"));
    assert!(!template.contains("- content"), "{template}");
    assert!(kprov_ok(&["modules", "kube_apply"]).contains("= manifests\n"));
}

#[test]
fn one_module_as_json() {
    let out = kprov_ok(&["modules", "service", "--output", "json"]);
    let value: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(value["name"], "service");
    assert!(value["doc"].as_str().unwrap().contains("unit file"));
    assert_eq!(value["schema"]["type"], "object");
    let args = value["arguments"].as_array().unwrap();
    let name = args.iter().find(|a| a["name"] == "name").unwrap();
    assert_eq!(name["required"], true);
    let state = args.iter().find(|a| a["name"] == "state").unwrap();
    assert!(state["choices"]
        .as_array()
        .unwrap()
        .contains(&Value::from("restarted")));
}

#[test]
fn unknown_module_is_a_usage_error_with_a_suggestion() {
    let out = kprov(&["modules", "nosuch"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(stderr.contains("no module `nosuch`"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one clear error: {stderr}");

    let out = kprov(&["modules", "sysctll"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("(did you mean `sysctl`?)"), "{stderr}");
}
