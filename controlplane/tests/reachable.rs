//! Every public item of this crate has a caller outside tests: a module, the engine or
//! the CLI. Code that only a unit test calls was the way four real-host paths went
//! unwired once; this check makes such an item fail CI until it is wired or deleted.

use std::collections::BTreeSet;
use std::path::Path;

/// Names `lib.rs` exports: `pub use a::{b, c as d}`, `pub fn`, `pub const`, `pub mod`.
fn exported(lib: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut in_use = false;
    let mut buffer = String::new();
    for line in lib.lines() {
        let line = line.trim();
        if line.starts_with("pub use ") {
            in_use = true;
            buffer.clear();
        }
        if in_use {
            buffer.push_str(line);
            buffer.push(' ');
            if line.ends_with(';') {
                in_use = false;
                let list = buffer
                    .trim_start_matches("pub use ")
                    .trim_end_matches([';', ' ']);
                let list = match list.split_once('{') {
                    Some((_, rest)) => rest.trim_end_matches('}').to_string(),
                    None => list.rsplit("::").next().unwrap_or_default().to_string(),
                };
                for item in list.split(',') {
                    let item = item.trim();
                    let name = item.rsplit(" as ").next().unwrap_or(item).trim();
                    if !name.is_empty() {
                        names.insert(name.to_string());
                    }
                }
            }
            continue;
        }
        for prefix in ["pub fn ", "pub const ", "pub mod "] {
            if let Some(rest) = line.strip_prefix(prefix) {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                names.insert(name);
            }
        }
    }
    names
}

/// Non-test Rust source under `dir`: files under `tests/` and everything after a
/// `#[cfg(test)]` line are left out.
fn production_source(dir: &Path, out: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "tests") {
                production_source(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "testutil.rs")
        {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let cut = text.find("#[cfg(test)]").unwrap_or(text.len());
            out.push_str(&text[..cut]);
            out.push('\n');
        }
    }
}

fn is_word_in(name: &str, text: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !word(before) && !word(after)
    })
}

#[test]
fn every_public_item_has_a_caller_outside_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let lib = std::fs::read_to_string(root.join("controlplane/src/lib.rs")).unwrap();
    let names = exported(&lib);
    assert!(names.len() > 20, "parsed too few exports: {names:?}");
    let mut callers = String::new();
    for dir in ["modules/src", "engine/src", "src", "agent/src", "lab/src"] {
        production_source(&root.join(dir), &mut callers);
    }
    // Types and errors are reached through the functions that return them.
    let reached_through_values = [
        "Error",
        "Artifact",
        "Existing",
        "NodeMarks",
        "ResetPaths",
        "yaml",
    ];
    let dead: Vec<&String> = names
        .iter()
        .filter(|n| !reached_through_values.contains(&n.as_str()))
        .filter(|n| !is_word_in(n, &callers))
        .collect();
    assert!(
        dead.is_empty(),
        "public items of kprov-controlplane that nothing outside tests calls: {dead:?}. \
         Wire them into a module (and a playbook) or delete them."
    );
}
