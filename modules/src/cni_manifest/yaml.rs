//! Multi-document YAML to and from `serde_json` values (Kubernetes manifests hold nothing
//! JSON cannot), parsed and emitted with `saphyr`.

use std::borrow::Cow;

use saphyr::{LoadableYamlNode, Scalar, Yaml, YamlEmitter};
use serde_json::Value;

/// Every document of `text` (empty documents are dropped). The error says
/// `line:column: what`.
pub(crate) fn parse_docs(text: &str) -> Result<Vec<Value>, String> {
    let docs = Yaml::load_from_str(text).map_err(|e| {
        let m = e.marker();
        format!("{}:{}: {}", m.line(), m.col() + 1, e.info())
    })?;
    docs.iter()
        .filter(|d| !matches!(d, Yaml::Value(Scalar::Null)))
        .enumerate()
        .map(|(i, d)| {
            to_json(d).ok_or_else(|| {
                format!(
                    "document {}: holds a value JSON cannot (a non-string key, an alias or a tag)",
                    i + 1
                )
            })
        })
        .collect()
}

/// Documents joined with `---` lines, each ending with a newline.
pub(crate) fn emit_docs(docs: &[Value]) -> String {
    let mut out = String::new();
    for doc in docs {
        out.push_str("---\n");
        out.push_str(&emit(doc));
    }
    out
}

fn emit(value: &Value) -> String {
    let node = from_json(value);
    let mut out = String::new();
    let mut emitter = YamlEmitter::new(&mut out);
    emitter.multiline(true);
    if emitter.dump(&node).is_err() {
        return serde_json::to_string_pretty(value).unwrap_or_default() + "\n";
    }
    let body = out
        .strip_prefix("---\n")
        .or_else(|| out.strip_prefix("---"))
        .unwrap_or(&out);
    let mut body = body.trim_start_matches(' ').to_string();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    body
}

fn to_json(node: &Yaml) -> Option<Value> {
    Some(match node {
        Yaml::Value(Scalar::Null) => Value::Null,
        Yaml::Value(Scalar::Boolean(b)) => Value::Bool(*b),
        Yaml::Value(Scalar::Integer(i)) => Value::from(*i),
        Yaml::Value(Scalar::FloatingPoint(f)) => Value::from(f.into_inner()),
        Yaml::Value(Scalar::String(s)) => Value::String(s.to_string()),
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect::<Option<_>>()?),
        Yaml::Mapping(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Some((k.as_str()?.to_string(), to_json(v)?)))
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}

fn from_json(value: &Value) -> Yaml<'static> {
    match value {
        Value::Null => Yaml::Value(Scalar::Null),
        Value::Bool(b) => Yaml::Value(Scalar::Boolean(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Value(Scalar::Integer(i)),
            None => Yaml::Value(Scalar::FloatingPoint(n.as_f64().unwrap_or(0.0).into())),
        },
        Value::String(s) => Yaml::Value(Scalar::String(Cow::Owned(s.clone()))),
        Value::Array(items) => Yaml::Sequence(items.iter().map(from_json).collect()),
        Value::Object(map) => Yaml::Mapping(
            map.iter()
                .map(|(k, v)| {
                    (
                        Yaml::Value(Scalar::String(Cow::Owned(k.clone()))),
                        from_json(v),
                    )
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_keeps_values() {
        let docs = vec![
            json!({"a": "true", "b": 1, "c": ["x: y", "*"], "d": "multi\nline\n", "e": null}),
            json!({"kind": "ConfigMap", "data": {"net-conf.json": "{\n  \"Network\": \"10.244.0.0/16\"\n}\n"}}),
        ];
        let text = emit_docs(&docs);
        assert_eq!(parse_docs(&text).unwrap(), docs);
        let err = parse_docs("a: [1\nb: 2\n").unwrap_err();
        assert!(err.starts_with("2:") || err.starts_with("3:"), "{err}");
    }
}
