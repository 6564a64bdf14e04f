//! `kprov modules [MODULE] [--output json]`: every module a task may use, one line each
//! (name and what it does); with a name, that module's arguments, like `ansible-doc`.

use serde_json::{json, Value};

use kprov_engine::catalog::{self, Argument, Entry};

use crate::cli::{GlobalArgs, ModulesArgs, OutputFormat};
use crate::exit::{Exit, Usage};

use super::inventory::show;

/// Width descriptions are wrapped to.
const WIDTH: usize = 88;

pub fn run(args: &ModulesArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let json = global.output == OutputFormat::Json;
    let text = match &args.name {
        None if json => pretty(&json!(catalog::all()
            .iter()
            .map(|e| json!({"name": e.name, "doc": e.doc}))
            .collect::<Vec<_>>()))?,
        None => list(catalog::all()),
        Some(name) => {
            let entry = catalog::find(name).ok_or_else(|| {
                Usage(format!(
                    "no module `{name}`{}; `kprov modules` lists them",
                    catalog::suggest(name)
                ))
            })?;
            let schema = catalog::schema(entry);
            let arguments = catalog::arguments(&schema);
            if json {
                pretty(&json!({
                    "name": entry.name,
                    "doc": entry.doc,
                    "arguments": arguments,
                    "schema": schema,
                }))?
            } else {
                describe(entry, &arguments)
            }
        }
    };
    show(&text)?;
    Ok(Exit::OK)
}

fn pretty(value: &Value) -> anyhow::Result<String> {
    Ok(format!("{}\n", serde_json::to_string_pretty(value)?))
}

/// One line per module: its name, padded, then its doc.
fn list(entries: &[Entry]) -> String {
    let width = entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
    entries
        .iter()
        .map(|e| format!("{:width$}  {}\n", e.name, e.doc))
        .collect()
}

/// A module's doc and its arguments, `=` marking the required ones.
fn describe(entry: &Entry, arguments: &[Argument]) -> String {
    let mut out = format!("> {}\n\n", entry.name.to_uppercase());
    out.push_str(&wrap(entry.doc, 2));
    if arguments.is_empty() {
        out.push_str("\nNo arguments.\n");
        return out;
    }
    out.push_str("\nARGUMENTS (= is required)\n");
    for a in arguments {
        out.push_str(&format!(
            "\n{} {}\n",
            if a.required { '=' } else { '-' },
            a.name
        ));
        if !a.description.is_empty() {
            out.push_str(&wrap(&a.description, 4));
        }
        out.push_str(&format!("    type: {}\n", a.kind));
        if !a.choices.is_empty() {
            let choices: Vec<String> = a.choices.iter().map(plain).collect();
            out.push_str(&format!("    choices: {}\n", choices.join(", ")));
        }
        if let Some(default) = &a.default {
            out.push_str(&format!("    default: {}\n", plain(default)));
        }
    }
    out
}

/// A value as YAML would show it: strings bare, anything else as JSON.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `text` in lines of at most [`WIDTH`] columns (longer words stay whole), indented.
fn wrap(text: &str, indent: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent + line.len() + 1 + word.len() > WIDTH {
            out.push_str(&format!("{:indent$}{line}\n", ""));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&format!("{:indent$}{line}\n", ""));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_the_width_keeping_long_words() {
        let text = "word ".repeat(40);
        let wrapped = wrap(&text, 4);
        assert!(wrapped
            .lines()
            .all(|l| l.len() <= WIDTH && l.starts_with("    word")));
        assert_eq!(wrapped.split_whitespace().count(), 40);
        let long = "x".repeat(WIDTH + 5);
        assert_eq!(wrap(&long, 2), format!("  {long}\n"));
        assert_eq!(wrap("", 2), "");
    }

    #[test]
    fn aligned_list() {
        let entries = catalog::all();
        let column = entries.iter().map(|e| e.name.len()).max().unwrap() + 2;
        let out = list(entries);
        assert_eq!(out.lines().count(), entries.len());
        for (line, e) in out.lines().zip(entries) {
            assert_eq!(line[..column].trim_end(), e.name, "{line}");
            assert_eq!(&line[column..], e.doc, "{line}");
        }
    }
}
