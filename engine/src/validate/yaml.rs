//! YAML text to a JSON value plus a [`SourceMap`], reporting syntax errors and duplicate keys
//! with their positions.

use std::collections::HashMap;
use std::path::Path;

use saphyr::Scalar;
use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Value};

use super::source_map::{join_dotted, pointer_join, Entry, Position, SourceMap};
use crate::diagnostic::{Diagnostic, Diagnostics};

/// Deeper nesting than this is refused (protects the recursive builder).
const MAX_DEPTH: usize = 128;
/// More nodes than this (counting alias expansions) is refused.
const MAX_NODES: usize = 200_000;

/// A parsed YAML file.
#[derive(Debug)]
pub(crate) struct Document {
    pub(crate) value: Value,
    pub(crate) map: SourceMap,
}

/// Parses `text` (the contents of `path`). Syntax errors are fatal (`Err`); duplicate keys
/// are reported in the returned diagnostics while the first occurrence is kept.
pub(crate) fn parse(path: &Path, text: &str) -> Result<(Document, Diagnostics), Diagnostics> {
    let fatal = |at: Position, message: String, hint: Option<String>| {
        Diagnostics::from(Diagnostic {
            file: path.to_path_buf(),
            line: at.line,
            column: at.column,
            key: String::new(),
            message,
            hint,
        })
    };
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        nodes: 0,
    };
    let documents = builder
        .documents()
        .map_err(|e| fatal(e.at, e.message, e.hint))?;
    let mut documents = documents.into_iter();
    let root = match (documents.next(), documents.next()) {
        (None, _) => {
            return Err(fatal(
                Position { line: 1, column: 1 },
                "the file is empty".into(),
                Some("see the example files shipped with kprov for the expected layout".into()),
            ))
        }
        (Some(root), None) => root,
        (Some(_), Some(second)) => {
            return Err(fatal(
                second.at,
                "more than one YAML document in this file".into(),
                Some("keep a single document (remove the `---` separator and what follows)".into()),
            ))
        }
    };
    let mut map = SourceMap::new(path);
    let mut diagnostics = Vec::new();
    let value = convert(&root, "", "", None, &mut map, &mut diagnostics);
    Ok((Document { value, map }, Diagnostics(diagnostics)))
}

#[derive(Debug, Clone)]
enum Tree {
    Scalar { value: Value, raw: Option<String> },
    Sequence(Vec<Node>),
    Mapping(Vec<(Node, Node)>),
}

#[derive(Debug, Clone)]
struct Node {
    tree: Tree,
    at: Position,
}

struct BuildError {
    at: Position,
    message: String,
    hint: Option<String>,
}

struct Builder<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
}

fn position(span: &Span) -> Position {
    Position {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<Option<(Event<'a>, Span)>, BuildError> {
        match self.parser.next() {
            None => Ok(None),
            Some(Ok(event)) => Ok(Some(event)),
            Some(Err(e)) => Err(BuildError {
                at: Position {
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                },
                message: format!("invalid YAML: {}", e.info()),
                hint: Some(
                    "check the indentation and quoting on this line and the one before".into(),
                ),
            }),
        }
    }

    fn documents(&mut self) -> Result<Vec<Node>, BuildError> {
        let mut documents = Vec::new();
        while let Some((event, _)) = self.next()? {
            match event {
                Event::DocumentStart(_) => {
                    let Some((event, span)) = self.next()? else {
                        break;
                    };
                    if matches!(event, Event::DocumentEnd) {
                        continue;
                    }
                    documents.push(self.node(event, span, 0)?);
                }
                Event::StreamEnd => break,
                _ => {}
            }
        }
        Ok(documents)
    }

    fn error(at: Position, message: &str) -> BuildError {
        BuildError {
            at,
            message: message.to_string(),
            hint: None,
        }
    }

    fn count(&mut self, at: Position, n: usize) -> Result<(), BuildError> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(Self::error(
                at,
                "the document is too large (too many nodes or alias expansions)",
            ));
        }
        Ok(())
    }

    fn node(&mut self, event: Event<'a>, span: Span, depth: usize) -> Result<Node, BuildError> {
        let at = position(&span);
        if depth > MAX_DEPTH {
            return Err(Self::error(at, "the document is nested too deeply"));
        }
        self.count(at, 1)?;
        let (node, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let raw = (style == ScalarStyle::Plain).then(|| text.to_string());
                let scalar = Scalar::parse_from_cow_and_metadata(text.clone(), style, tag.as_ref())
                    .unwrap_or(Scalar::String(text));
                let value = scalar_to_json(scalar);
                (
                    Node {
                        tree: Tree::Scalar { value, raw },
                        at,
                    },
                    anchor,
                )
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.expect(at)?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(event, span, depth + 1)?);
                }
                (
                    Node {
                        tree: Tree::Sequence(items),
                        at,
                    },
                    anchor,
                )
            }
            Event::MappingStart(anchor, _) => {
                let mut entries = Vec::new();
                loop {
                    let (event, span) = self.expect(at)?;
                    if matches!(event, Event::MappingEnd) {
                        break;
                    }
                    let key = self.node(event, span, depth + 1)?;
                    let (event, span) = self.expect(at)?;
                    let value = self.node(event, span, depth + 1)?;
                    entries.push((key, value));
                }
                (
                    Node {
                        tree: Tree::Mapping(entries),
                        at,
                    },
                    anchor,
                )
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id).cloned() else {
                    return Err(Self::error(at, "alias to an unknown anchor"));
                };
                self.count(at, size(&target))?;
                (target, 0)
            }
            _ => return Err(Self::error(at, "unexpected YAML event")),
        };
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    fn expect(&mut self, at: Position) -> Result<(Event<'a>, Span), BuildError> {
        self.next()?
            .ok_or_else(|| Self::error(at, "unexpected end of the document"))
    }
}

fn size(node: &Node) -> usize {
    match &node.tree {
        Tree::Scalar { .. } => 1,
        Tree::Sequence(items) => 1 + items.iter().map(size).sum::<usize>(),
        Tree::Mapping(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| size(k) + size(v))
                .sum::<usize>()
        }
    }
}

fn scalar_to_json(scalar: Scalar<'_>) -> Value {
    match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(b),
        Scalar::Integer(i) => Value::from(i),
        Scalar::FloatingPoint(f) => serde_json::Number::from_f64(f.0)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(f.0.to_string())),
        Scalar::String(s) => Value::String(s.into_owned()),
    }
}

/// The text a mapping key stands for (`1: x` has the key "1").
fn key_text(key: &Node) -> Option<String> {
    match &key.tree {
        Tree::Scalar {
            value: Value::String(s),
            ..
        } => Some(s.clone()),
        Tree::Scalar { raw: Some(raw), .. } => Some(raw.clone()),
        Tree::Scalar { value, .. } => Some(value.to_string()),
        _ => None,
    }
}

fn convert(
    node: &Node,
    pointer: &str,
    dotted: &str,
    key_at: Option<Position>,
    map: &mut SourceMap,
    diagnostics: &mut Vec<Diagnostic>,
) -> Value {
    let raw = match &node.tree {
        Tree::Scalar { raw, .. } => raw.clone(),
        _ => None,
    };
    map.insert(
        pointer.to_string(),
        Entry {
            key: key_at,
            value: node.at,
            dotted: dotted.to_string(),
            raw,
        },
    );
    match &node.tree {
        Tree::Scalar { value, .. } => value.clone(),
        Tree::Sequence(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let index = i.to_string();
                    convert(
                        item,
                        &pointer_join(pointer, &index),
                        &join_dotted(dotted, &index, true),
                        None,
                        map,
                        diagnostics,
                    )
                })
                .collect(),
        ),
        Tree::Mapping(entries) => {
            let mut object = Map::new();
            let mut first_seen: HashMap<String, Position> = HashMap::new();
            for (key, value) in entries {
                let child_dotted_of = |name: &str| join_dotted(dotted, name, false);
                let Some(name) = key_text(key) else {
                    diagnostics.push(Diagnostic {
                        file: map.file().to_path_buf(),
                        line: key.at.line,
                        column: key.at.column,
                        key: dotted.to_string(),
                        message: "a mapping key must be a plain value, not a list or mapping"
                            .into(),
                        hint: None,
                    });
                    continue;
                };
                if let Some(first) = first_seen.get(&name) {
                    diagnostics.push(Diagnostic {
                        file: map.file().to_path_buf(),
                        line: key.at.line,
                        column: key.at.column,
                        key: child_dotted_of(&name),
                        message: format!(
                            "duplicate key `{name}` (first defined at line {}, column {})",
                            first.line, first.column
                        ),
                        hint: Some("keep one of them; a later duplicate is ignored".into()),
                    });
                    continue;
                }
                first_seen.insert(name.clone(), key.at);
                let child = convert(
                    value,
                    &pointer_join(pointer, &name),
                    &child_dotted_of(&name),
                    Some(key.at),
                    map,
                    diagnostics,
                );
                object.insert(name, child);
            }
            Value::Object(object)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (Document, Diagnostics) {
        match parse(Path::new("t.yaml"), text) {
            Ok(parsed) => parsed,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn scalars_follow_the_core_schema() {
        let (doc, diags) = load("a: 1.28\nb: \"1.28\"\nc: true\nd:\ne: 0x10\nf: ~\n");
        assert!(diags.is_empty());
        assert_eq!(
            doc.value,
            serde_json::json!({"a": 1.28, "b": "1.28", "c": true, "d": null, "e": 16, "f": null})
        );
        assert_eq!(doc.map.raw("/a"), Some("1.28"));
        assert_eq!(doc.map.raw("/b"), None);
    }

    #[test]
    fn positions_are_one_based() {
        let (doc, _) = load("top:\n  inner: [x, y]\n");
        assert_eq!(
            doc.map.key_position("/top/inner"),
            Position { line: 2, column: 3 }
        );
        assert_eq!(
            doc.map.value_position("/top/inner/1"),
            Position {
                line: 2,
                column: 14
            }
        );
        assert_eq!(doc.map.dotted("/top/inner/1"), "top.inner[1]");
    }

    #[test]
    fn duplicate_keys_are_reported_and_first_wins() {
        let (doc, diags) = load("a: 1\nb: 2\na: 3\n");
        assert_eq!(doc.value["a"], 1);
        assert_eq!(diags.len(), 1);
        assert_eq!((diags.0[0].line, diags.0[0].column), (3, 1));
    }

    #[test]
    fn aliases_are_expanded() {
        let (doc, _) = load("a: &x {k: v}\nb: *x\n");
        assert_eq!(doc.value["b"]["k"], "v");
    }

    #[test]
    fn syntax_errors_are_fatal_with_position() {
        let err = parse(Path::new("t.yaml"), "a: [1, 2\nb: 3\n").unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(err.0[0].message.starts_with("invalid YAML"));
    }
}
