//! A module's arguments as people read them (`kprov modules NAME`), from its JSON schema:
//! name, type, required or default, allowed values, description.

use serde::Serialize;
use serde_json::{Map, Value};

/// One argument of a module.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Argument {
    /// As written in YAML.
    pub name: String,
    /// E.g. `string`, `list of string`, `map of string`, `string or integer`.
    pub kind: String,
    /// The task must give it.
    pub required: bool,
    /// The value used when it is not given, when the schema says.
    pub default: Option<Value>,
    /// The only values allowed, when it is an enumeration.
    pub choices: Vec<Value>,
    /// What it means (the doc comment; lines joined).
    pub description: String,
}

/// The top-level arguments of `schema` (a module's argument schema), sorted by name.
pub fn arguments(schema: &Value) -> Vec<Argument> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let shape = shape(property, schema, 0);
            Argument {
                name: name.clone(),
                kind: shape.kind,
                required: required.contains(&name.as_str()),
                default: property.get("default").cloned(),
                choices: shape.choices,
                description: one_line(
                    property
                        .get("description")
                        .and_then(Value::as_str)
                        .or(shape.description.as_deref())
                        .unwrap_or_default(),
                ),
            }
        })
        .collect()
}

/// What a (sub)schema accepts.
#[derive(Debug, Default)]
struct Shape {
    kind: String,
    choices: Vec<Value>,
    /// The description of a referenced definition, for properties without their own.
    description: Option<String>,
}

/// References deeper than this are not followed (recursive types).
const MAX_DEPTH: usize = 8;

fn shape(schema: &Value, root: &Value, depth: usize) -> Shape {
    let Some(map) = schema.as_object() else {
        return Shape {
            kind: "any".into(),
            ..Shape::default()
        };
    };
    if depth > MAX_DEPTH {
        return Shape {
            kind: "object".into(),
            ..Shape::default()
        };
    }
    if let Some(target) = map
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| resolve(r, root))
    {
        let mut shape = shape(target, root, depth + 1);
        shape.description = shape.description.or_else(|| text(target, "description"));
        return shape;
    }
    if let Some(value) = map.get("const") {
        return Shape {
            kind: json_kind(value).into(),
            choices: vec![value.clone()],
            description: None,
        };
    }
    if let Some(values) = map.get("enum").and_then(Value::as_array) {
        return Shape {
            kind: types(map).unwrap_or_else(|| "string".into()),
            choices: values.iter().filter(|v| !v.is_null()).cloned().collect(),
            description: None,
        };
    }
    if let Some(branches) = map
        .get("anyOf")
        .or_else(|| map.get("oneOf"))
        .and_then(Value::as_array)
    {
        return alternatives(branches, root, depth);
    }
    let kind = match map.get("type") {
        Some(_) => types(map).unwrap_or_else(|| "null".into()),
        None => "any".into(),
    };
    Shape {
        kind,
        ..Shape::default()
    }
    .with_container(map, root, depth)
}

impl Shape {
    /// `list of …` and `map of …` for arrays and objects whose items are described.
    fn with_container(mut self, map: &Map<String, Value>, root: &Value, depth: usize) -> Shape {
        if self.kind == "array" {
            if let Some(items) = map.get("items") {
                self.kind = format!("list of {}", shape(items, root, depth + 1).kind);
            }
        } else if self.kind == "object" {
            if let Some(values) = map.get("additionalProperties").filter(|v| v.is_object()) {
                self.kind = format!("map of {}", shape(values, root, depth + 1).kind);
            }
        }
        self
    }
}

/// `anyOf`/`oneOf`: an enumeration when every branch lists values, else `a or b`
/// (`null`, which only says the argument may be left out, is dropped).
fn alternatives(branches: &[Value], root: &Value, depth: usize) -> Shape {
    let shapes: Vec<Shape> = branches
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) != Some("null"))
        .map(|b| shape(b, root, depth + 1))
        .collect();
    let description = shapes.iter().find_map(|s| s.description.clone());
    if !shapes.is_empty() && shapes.iter().all(|s| !s.choices.is_empty()) {
        let mut kinds: Vec<String> = shapes.iter().map(|s| s.kind.clone()).collect();
        kinds.dedup();
        return Shape {
            kind: kinds.join(" or "),
            choices: shapes.into_iter().flat_map(|s| s.choices).collect(),
            description,
        };
    }
    let mut kinds: Vec<String> = Vec::new();
    for s in &shapes {
        if !kinds.contains(&s.kind) {
            kinds.push(s.kind.clone());
        }
    }
    Shape {
        kind: if kinds.is_empty() {
            "any".into()
        } else {
            kinds.join(" or ")
        },
        choices: Vec::new(),
        description,
    }
}

/// `type` without `null`: `string`, or `string or integer`.
fn types(map: &Map<String, Value>) -> Option<String> {
    let names: Vec<&str> = match map.get("type")? {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return None,
    };
    let names: Vec<&str> = names.into_iter().filter(|t| *t != "null").collect();
    (!names.is_empty()).then(|| names.join(" or "))
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A local reference, `#/$defs/Name`.
fn resolve<'v>(reference: &str, root: &'v Value) -> Option<&'v Value> {
    root.pointer(reference.strip_prefix('#')?)
}

fn text(schema: &Value, key: &str) -> Option<String> {
    schema.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Doc comments keep their line breaks; shown as one paragraph.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn by_name(module: &str) -> Vec<Argument> {
        let entry = crate::catalog::find(module).unwrap();
        arguments(&crate::catalog::schema(entry))
    }

    fn arg(args: &[Argument], name: &str) -> Argument {
        args.iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("{name} in {args:?}"))
            .clone()
    }

    #[test]
    fn file_arguments() {
        let args = by_name("file");
        let path = arg(&args, "path");
        assert!(path.required);
        assert_eq!(path.kind, "string");
        assert_eq!(path.description, "Absolute path of the file.");
        let mode = arg(&args, "mode");
        assert!(!mode.required);
        assert_eq!(mode.kind, "string or integer");
        assert!(mode.description.starts_with("Octal mode"), "{mode:?}");
        let state = arg(&args, "state");
        assert_eq!(state.choices, vec![json!("present"), json!("absent")]);
        assert_eq!(state.description, "`present` (default) or `absent`.");
        assert_eq!(arg(&args, "sensitive").default, Some(json!(false)));
    }

    #[test]
    fn lists_maps_and_mixed_enumerations() {
        let service = by_name("service");
        assert_eq!(arg(&service, "dropins").kind, "map of string");
        assert_eq!(
            arg(&service, "state").choices,
            vec![
                json!("started"),
                json!("stopped"),
                json!("restarted"),
                json!("reloaded")
            ]
        );
        assert_eq!(arg(&by_name("route"), "routes").kind, "list of object");
        assert_eq!(arg(&by_name("command"), "argv").kind, "list of string");
        assert!(arg(&by_name("kube_apply"), "manifests").required);
    }

    #[test]
    fn every_module_has_described_arguments() {
        for entry in crate::catalog::all() {
            for a in arguments(&crate::catalog::schema(entry)) {
                assert!(!a.kind.is_empty(), "{}: {a:?}", entry.name);
            }
        }
    }

    #[test]
    fn odd_schemas_do_not_panic() {
        assert!(arguments(&json!(true)).is_empty());
        assert!(arguments(&json!({"properties": 3})).is_empty());
        let loops = json!({
            "properties": {"a": {"$ref": "#/$defs/A"}},
            "$defs": {"A": {"$ref": "#/$defs/A"}}
        });
        assert_eq!(arguments(&loops)[0].kind, "object");
    }
}
