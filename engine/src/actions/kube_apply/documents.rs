//! Kubernetes objects from manifest text: every YAML (or JSON) document of a file,
//! `List` kinds expanded, empty documents dropped.

use kprov_controlplane::yaml::parse_docs;
use serde_json::{Map, Value};

/// The objects of one manifest file, in file order. The error says which document
/// is wrong and why; `file` only names it.
pub(crate) fn objects(file: &str, text: &str) -> Result<Vec<Value>, String> {
    let docs = parse_docs(text).map_err(|e| format!("{file}: not valid YAML: {e}"))?;
    let mut out = Vec::new();
    for (index, value) in docs.into_iter().enumerate() {
        let at = || format!("{file}: document {}", index + 1);
        match value {
            Value::Object(map) => expand(map, &at, &mut out)?,
            _ => return Err(format!("{}: not a Kubernetes object (a mapping)", at())),
        }
    }
    Ok(out)
}

fn expand(
    map: Map<String, Value>,
    at: &dyn Fn() -> String,
    out: &mut Vec<Value>,
) -> Result<(), String> {
    let text = |key: &str| map.get(key).and_then(Value::as_str).unwrap_or_default();
    if text("kind").ends_with("List") && map.contains_key("items") {
        let items = match map.get("items") {
            Some(Value::Array(items)) => items.clone(),
            _ => return Err(format!("{}: `items` of a List must be a list", at())),
        };
        for item in items {
            match item {
                Value::Object(m) => expand(m, at, out)?,
                _ => return Err(format!("{}: an item of the List is not an object", at())),
            }
        }
        return Ok(());
    }
    for key in ["apiVersion", "kind"] {
        if text(key).is_empty() {
            return Err(format!("{}: `{key}` is missing", at()));
        }
    }
    let name = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name.is_empty() {
        return Err(format!(
            "{}: {} has no metadata.name (generateName cannot be applied)",
            at(),
            text("kind")
        ));
    }
    out.push(Value::Object(map));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_lists_and_empty_documents() {
        let text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n\
                    data: {on: 'yes', n: '1'}\n---\n# only a comment\n---\n\
                    apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: b}}\n";
        let objs = objects("f.yaml", text).unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0]["data"]["n"], "1");
        assert_eq!(objs[1]["kind"], "Namespace");
    }

    #[test]
    fn errors_name_the_file_and_document() {
        let e = objects("f.yaml", "---\nkind: A\n").unwrap_err();
        assert_eq!(e, "f.yaml: document 1: `apiVersion` is missing");
        let e = objects(
            "f.yaml",
            "apiVersion: v1\nkind: A\nmetadata: {}\n---\n- 1\n",
        )
        .unwrap_err();
        assert_eq!(
            e,
            "f.yaml: document 1: A has no metadata.name (generateName cannot be applied)"
        );
        assert!(objects("f.yaml", "a: [")
            .unwrap_err()
            .starts_with("f.yaml: not valid YAML"));
    }
}
