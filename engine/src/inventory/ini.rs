//! Ansible's INI inventory (`inventory.ini`, kubespray's sample shape) to the same JSON value
//! as its YAML inventory (`all: {hosts, vars, children}`), with a [`SourceMap`] pointing at
//! the INI lines, so one schema check and one resolver serve both.
//!
//! Understood: hosts before any section (ungrouped), `[group]` with `host k=v …` lines,
//! `host:port`, host ranges (`node[01:10]`, `[a:f]`, `[1:9:2]`), `[group:vars]`,
//! `[group:children]` (children named but not defined become empty groups, as in Ansible),
//! `#`/`;` comments. Inline host values are typed like Python literals (`22` is a number,
//! `True` a boolean); `:vars` values stay strings, as Ansible reads them.

use std::path::Path;

use serde_json::{Map, Number, Value};

use super::words;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::validate::source_map::{join_dotted, pointer_join, Entry, Position, SourceMap};

/// The YAML-shaped value of an INI inventory and where each value sits in the INI text.
pub(crate) fn parse(path: &Path, text: &str) -> Result<(Value, SourceMap), Diagnostics> {
    let mut parser = Parser {
        path,
        root: Map::new(),
        map: SourceMap::new(path),
        problems: Vec::new(),
    };
    parser.ensure("/all", Position { line: 1, column: 1 });
    let mut section = Section::Hosts("all".to_string());
    for (index, raw_line) in text.lines().enumerate() {
        let line_no = index + 1;
        let trimmed = raw_line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indent = raw_line.len() - raw_line.trim_start().len();
        let at = |byte: usize| Position {
            line: line_no,
            column: raw_line[..byte.min(raw_line.len())].chars().count() + 1,
        };
        if trimmed.starts_with('[') {
            match header(trimmed) {
                Ok(next) => {
                    let group = next.group().to_string();
                    let pointer = group_pointer(&group);
                    parser.ensure(&pointer, at(indent + 1));
                    section = next;
                }
                Err(message) => parser.problem(
                    at(indent),
                    message,
                    Some(
                        "write a section as `[group]`, `[group:vars]` or `[group:children]`".into(),
                    ),
                ),
            }
            continue;
        }
        match &section {
            Section::Hosts(group) => parser.host_line(group, raw_line, line_no),
            Section::Vars(group) => {
                let Some((key, value)) = trimmed.split_once('=') else {
                    parser.problem(
                        at(indent),
                        format!("expected `name=value` in `[{group}:vars]`, found `{trimmed}`"),
                        Some("write one variable per line, e.g. `ansible_user=ubuntu`".into()),
                    );
                    continue;
                };
                let key = key.trim();
                let value_start = indent + trimmed.find('=').unwrap_or(0) + 1;
                let value_text = value.trim();
                let value_at = at(value_start + (value.len() - value.trim_start().len()));
                let vars = format!("{}/vars", group_pointer(group));
                parser.ensure(&vars, at(indent));
                parser.set(
                    &vars,
                    key,
                    Value::String(unquote(value_text).to_string()),
                    at(indent),
                    value_at,
                    value_text,
                );
            }
            Section::Children(group) => {
                let child = trimmed.split_whitespace().next().unwrap_or(trimmed);
                let children = format!("{}/children", group_pointer(group));
                parser.ensure(&children, at(indent));
                parser.set(&children, child, Value::Null, at(indent), at(indent), child);
                // A child named but never defined is an empty group, as in Ansible.
                parser.ensure(&group_pointer(child), at(indent));
            }
        }
    }
    if !parser.problems.is_empty() {
        return Err(Diagnostics(parser.problems));
    }
    Ok((Value::Object(parser.root), parser.map))
}

enum Section {
    Hosts(String),
    Vars(String),
    Children(String),
}

impl Section {
    fn group(&self) -> &str {
        match self {
            Section::Hosts(g) | Section::Vars(g) | Section::Children(g) => g,
        }
    }
}

fn header(line: &str) -> Result<Section, String> {
    let inner = line
        .strip_prefix('[')
        .and_then(|l| l.split_once(']'))
        .filter(|(_, rest)| {
            let rest = rest.trim();
            rest.is_empty() || rest.starts_with('#') || rest.starts_with(';')
        })
        .map(|(inner, _)| inner.trim())
        .ok_or_else(|| format!("malformed section header `{line}`"))?;
    if inner.is_empty() || inner.contains(char::is_whitespace) {
        return Err(format!("malformed section header `{line}`"));
    }
    Ok(match inner.split_once(':') {
        None => Section::Hosts(inner.to_string()),
        Some((group, "vars")) => Section::Vars(group.to_string()),
        Some((group, "children")) => Section::Children(group.to_string()),
        Some((_, kind)) => {
            return Err(format!(
                "unknown section kind `:{kind}` in `{line}` (only `:vars` and `:children`)"
            ))
        }
    })
}

/// The pointer of group `name` in the YAML shape.
fn group_pointer(name: &str) -> String {
    if name == "all" {
        "/all".to_string()
    } else {
        pointer_join("/all/children", name)
    }
}

struct Parser<'a> {
    path: &'a Path,
    root: Map<String, Value>,
    map: SourceMap,
    problems: Vec<Diagnostic>,
}

impl Parser<'_> {
    fn problem(&mut self, at: Position, message: String, hint: Option<String>) {
        self.problems.push(Diagnostic {
            file: self.path.to_path_buf(),
            line: at.line,
            column: at.column,
            key: String::new(),
            message,
            hint,
        });
    }

    /// Makes sure a mapping exists at `pointer` (creating parents), recording `at` for it.
    fn ensure(&mut self, pointer: &str, at: Position) {
        let mut current = String::new();
        let mut node = &mut self.root;
        for segment in pointer.split('/').skip(1) {
            let key = segment.replace("~1", "/").replace("~0", "~");
            current = format!("{current}/{segment}");
            if !self.map.contains(&current) {
                self.map
                    .insert(current.clone(), entry(&current, at, at, None));
            }
            let child = node.entry(key).or_insert_with(|| Value::Object(Map::new()));
            if !child.is_object() {
                *child = Value::Object(Map::new());
            }
            node = match child {
                Value::Object(m) => m,
                _ => unreachable!("just made an object"),
            };
        }
    }

    /// Sets `key` in the mapping at `parent` (later definitions win, as in Ansible).
    fn set(
        &mut self,
        parent: &str,
        key: &str,
        value: Value,
        key_at: Position,
        value_at: Position,
        raw: &str,
    ) {
        let pointer = pointer_join(parent, key);
        let target = self.root_at(parent);
        if let Some(target) = target {
            if value.is_null() && target.get(key).is_some_and(|v| !v.is_null()) {
                return;
            }
            target.insert(key.to_string(), value);
        }
        let first = self.map.contains(&pointer);
        if !first {
            self.map.insert(
                pointer.clone(),
                entry(&pointer, key_at, value_at, Some(raw.to_string())),
            );
        }
    }

    fn root_at(&mut self, pointer: &str) -> Option<&mut Map<String, Value>> {
        let mut node = &mut self.root;
        for segment in pointer.split('/').skip(1) {
            let key = segment.replace("~1", "/").replace("~0", "~");
            node = match node.get_mut(&key) {
                Some(Value::Object(m)) => m,
                _ => return None,
            };
        }
        Some(node)
    }

    /// `host[:port] [name=value …]` in group `group`.
    fn host_line(&mut self, group: &str, line: &str, line_no: usize) {
        let at = |byte: usize| Position {
            line: line_no,
            column: line[..byte.min(line.len())].chars().count() + 1,
        };
        let words = match words::split(line) {
            Ok(words) => words,
            Err(open) => {
                self.problem(
                    at(open),
                    "this quote is never closed".into(),
                    Some("close the quote, or escape it with a backslash".into()),
                );
                return;
            }
        };
        // `#` starts a comment, as with shlex(comments=True).
        let words: Vec<_> = words
            .into_iter()
            .take_while(|w| !w.text.starts_with('#'))
            .collect();
        let Some((first, rest)) = words.split_first() else {
            return;
        };
        let (pattern, port) = split_port(&first.text);
        let names = match expand(pattern) {
            Ok(names) => names,
            Err(message) => {
                self.problem(
                    at(first.start),
                    message,
                    Some("write a range as `node[01:10]` or `[a:f]`, optionally with a step `[1:9:2]`".into()),
                );
                return;
            }
        };
        let hosts = format!("{}/hosts", group_pointer(group));
        self.ensure(&hosts, at(first.start));
        let mut vars = Vec::new();
        if let Some(port) = port {
            vars.push((
                "ansible_port".to_string(),
                literal(port),
                at(first.start),
                at(first.start + pattern.len() + 1),
                port.to_string(),
            ));
        }
        for word in rest {
            let Some((key, value)) = word.text.split_once('=') else {
                self.problem(
                    at(word.start),
                    format!(
                        "expected `name=value` after the host name, found `{}`",
                        word.text
                    ),
                    Some(
                        "host variables are written `name=value`, e.g. `ansible_host=10.0.0.1`"
                            .into(),
                    ),
                );
                continue;
            };
            let value_at = at(line[word.start..]
                .find('=')
                .map_or(word.start, |i| word.start + i + 1));
            vars.push((
                key.to_string(),
                literal(value),
                at(word.start),
                value_at,
                value.to_string(),
            ));
        }
        for name in names {
            let host = pointer_join(&hosts, &name);
            let has_vars = !vars.is_empty();
            let current = self
                .root_at(&hosts)
                .and_then(|h| h.get(&name))
                .is_some_and(|v| !v.is_null());
            if !current {
                let initial = if has_vars {
                    Value::Object(Map::new())
                } else {
                    Value::Null
                };
                self.set(
                    &hosts,
                    &name,
                    initial,
                    at(first.start),
                    at(first.start),
                    &name,
                );
            }
            if has_vars {
                self.ensure(&host, at(first.start));
            }
            for (key, value, key_at, value_at, raw) in &vars {
                self.set(&host, key, value.clone(), *key_at, *value_at, raw);
            }
        }
    }
}

fn entry(pointer: &str, key: Position, value: Position, raw: Option<String>) -> Entry {
    let dotted = pointer
        .split('/')
        .skip(1)
        .fold(String::new(), |dotted, segment| {
            join_dotted(
                &dotted,
                &segment.replace("~1", "/").replace("~0", "~"),
                false,
            )
        });
    Entry {
        key: Some(key),
        value,
        dotted,
        raw,
    }
}

/// `host:port` → (`host`, `port`); a colon inside a range (`node[1:3]`) is not a port.
fn split_port(word: &str) -> (&str, Option<&str>) {
    match word.rsplit_once(':') {
        Some((host, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && !port.contains(']')
                && host.matches('[').count() == host.matches(']').count()
                && !host.contains(':') =>
        {
            (host, Some(port))
        }
        _ => (word, None),
    }
}

/// A value written inline on a host line, typed like a Python literal.
fn literal(text: &str) -> Value {
    match text {
        "True" | "true" => return Value::Bool(true),
        "False" | "false" => return Value::Bool(false),
        _ => {}
    }
    let integer = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if integer {
        if let Ok(n) = text.parse::<u64>() {
            return Value::Number(Number::from(n));
        }
    }
    Value::String(text.to_string())
}

/// A `:vars` value without one pair of surrounding quotes.
fn unquote(text: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(quote).and_then(|t| t.strip_suffix(quote)) {
            return inner;
        }
    }
    text
}

/// Expands Ansible host ranges: `node[01:03]` → node01, node02, node03; `[a:c]`; `[1:9:4]`.
pub(crate) fn expand(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('[') else {
        if pattern.contains(']') {
            return Err(format!("unbalanced `]` in host `{pattern}`"));
        }
        return Ok(vec![pattern.to_string()]);
    };
    let close = pattern[open..]
        .find(']')
        .map(|i| open + i)
        .ok_or_else(|| format!("unclosed `[` in host range `{pattern}`"))?;
    let (head, inner, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let parts: Vec<&str> = inner.split(':').collect();
    let (start, end, step) = match parts.as_slice() {
        [start, end] => (*start, *end, 1usize),
        [start, end, step] => (
            *start,
            *end,
            step.parse::<usize>()
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| format!("bad step `{step}` in host range `{pattern}`"))?,
        ),
        _ => return Err(format!("bad host range `[{inner}]` in `{pattern}`")),
    };
    let mut middles = Vec::new();
    if let (Ok(a), Ok(b)) = (start.parse::<usize>(), end.parse::<usize>()) {
        if a > b {
            return Err(format!(
                "host range `[{inner}]` in `{pattern}` runs backwards"
            ));
        }
        if (b - a) / step > 10_000 {
            return Err(format!(
                "host range `[{inner}]` in `{pattern}` is too large"
            ));
        }
        let width = if start.len() > 1 && start.starts_with('0') {
            start.len()
        } else {
            0
        };
        middles.extend((a..=b).step_by(step).map(|n| format!("{n:0width$}")));
    } else {
        let (a, b) = match (single_letter(start), single_letter(end)) {
            (Some(a), Some(b)) if a <= b => (a, b),
            _ => return Err(format!("bad host range `[{inner}]` in `{pattern}`")),
        };
        middles.extend((a..=b).step_by(step).map(|c| (c as char).to_string()));
    }
    let rests = expand(tail)?;
    let mut out = Vec::new();
    for middle in &middles {
        for rest in &rests {
            out.push(format!("{head}{middle}{rest}"));
        }
    }
    Ok(out)
}

fn single_letter(text: &str) -> Option<u8> {
    match text.as_bytes() {
        [c] if c.is_ascii_alphabetic() => Some(*c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_ranges() {
        assert_eq!(
            expand("node[01:03]").unwrap(),
            ["node01", "node02", "node03"]
        );
        assert_eq!(expand("n[1:5:2]x").unwrap(), ["n1x", "n3x", "n5x"]);
        assert_eq!(expand("[a:c]-db").unwrap(), ["a-db", "b-db", "c-db"]);
        assert_eq!(expand("plain").unwrap(), ["plain"]);
        assert!(expand("node[3:1]").is_err());
        assert!(expand("node[1:").is_err());
    }

    #[test]
    fn types_inline_values_like_python_literals() {
        assert_eq!(literal("22"), Value::from(22));
        assert_eq!(literal("True"), Value::Bool(true));
        assert_eq!(literal("010"), Value::from("010"));
        assert_eq!(literal("10.0.0.1"), Value::from("10.0.0.1"));
    }

    #[test]
    fn splits_ports_but_not_ranges() {
        assert_eq!(split_port("db:2222"), ("db", Some("2222")));
        assert_eq!(split_port("node[1:3]"), ("node[1:3]", None));
    }

    #[test]
    fn parses_sections_into_the_yaml_shape() {
        let text = "\
lonely ansible_host=10.0.0.9
[all]
node1 ansible_host=10.0.0.1 ip=10.1.0.1 ansible_port=2222
[kube_control_plane]
node1
[kube_node]
node[2:3]
[k8s_cluster:children]
kube_control_plane
kube_node
calico_rr
[all:vars]
ansible_user = \"ubuntu\"
";
        let (value, map) = parse(Path::new("inventory.ini"), text).unwrap();
        assert_eq!(value["all"]["hosts"]["node1"]["ansible_port"], 2222);
        assert_eq!(value["all"]["hosts"]["node1"]["ip"], "10.1.0.1");
        assert!(value["all"]["hosts"]["lonely"].is_object());
        assert_eq!(value["all"]["vars"]["ansible_user"], "ubuntu");
        let children = &value["all"]["children"];
        assert!(children["kube_node"]["hosts"]["node2"].is_null());
        assert!(children["kube_node"]["hosts"]
            .as_object()
            .unwrap()
            .contains_key("node3"));
        assert!(children["calico_rr"].is_object());
        assert_eq!(
            map.value_position("/all/hosts/node1/ip"),
            Position {
                line: 3,
                column: 32
            }
        );
        assert_eq!(
            map.key_position("/all/children/kube_node/hosts/node3"),
            Position { line: 7, column: 1 }
        );
    }

    #[test]
    fn reports_bad_lines_with_positions() {
        let text = "[kube_node]\nnode1 oops\n[x:weird]\n";
        let problems = parse(Path::new("i.ini"), text).unwrap_err();
        let at: Vec<(usize, usize)> = problems.iter().map(|d| (d.line, d.column)).collect();
        assert_eq!(at, [(2, 7), (3, 1)]);
    }
}
