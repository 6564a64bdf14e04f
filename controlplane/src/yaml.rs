//! YAML to and from `serde_json` values (Kubernetes objects hold nothing JSON cannot),
//! with `saphyr`: emitted the way kubeadm writes it (keys sorted, as sigs.k8s.io/yaml
//! does), and parsed from single or multi-document text. kprov's one YAML ↔ JSON bridge
//! (also used by the CNI manifests and `kube_apply`).

use saphyr::{LoadableYamlNode, Scalar, Yaml, YamlEmitter};
use serde_json::Value;
use std::borrow::Cow;

/// One YAML document (no leading `---`), ending with a newline.
pub fn to_yaml(value: &Value) -> String {
    let node = convert(value);
    let mut out = String::new();
    let mut emitter = YamlEmitter::new(&mut out);
    emitter.multiline(true);
    // Writing into a String cannot fail; an error would only come from the fmt sink.
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

/// Parses one YAML document into a JSON value (None if it is not valid YAML or
/// uses features JSON cannot hold).
pub fn parse(text: &str) -> Option<Value> {
    let docs = Yaml::load_from_str(text).ok()?;
    back(docs.first()?)
}

/// Every document of `text`, empty documents dropped. The error says
/// `line:column: what`, or which document holds what JSON cannot.
pub fn parse_docs(text: &str) -> Result<Vec<Value>, String> {
    let docs = Yaml::load_from_str(text).map_err(|e| {
        let m = e.marker();
        format!("{}:{}: {}", m.line(), m.col() + 1, e.info())
    })?;
    docs.iter()
        .filter(|d| !matches!(d, Yaml::Value(Scalar::Null)))
        .enumerate()
        .map(|(i, d)| {
            back(d).ok_or_else(|| {
                format!(
                    "document {}: holds a value JSON cannot (a complex key, an alias or a tag)",
                    i + 1
                )
            })
        })
        .collect()
}

/// Documents each after a `---` line, each ending with a newline.
pub fn emit_docs(docs: &[Value]) -> String {
    let mut out = String::new();
    for doc in docs {
        out.push_str("---\n");
        out.push_str(&to_yaml(doc));
    }
    out
}

fn back(node: &Yaml) -> Option<Value> {
    Some(match node {
        Yaml::Value(Scalar::Null) => Value::Null,
        Yaml::Value(Scalar::Boolean(b)) => Value::Bool(*b),
        Yaml::Value(Scalar::Integer(i)) => Value::from(*i),
        Yaml::Value(Scalar::FloatingPoint(f)) => Value::from(f.into_inner()),
        Yaml::Value(Scalar::String(s)) => Value::String(s.to_string()),
        Yaml::Sequence(items) => Value::Array(items.iter().map(back).collect::<Option<_>>()?),
        Yaml::Mapping(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Some((key(k)?, back(v)?)))
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}

/// A mapping key as text: strings, and the integers and booleans YAML reads unquoted.
fn key(node: &Yaml) -> Option<String> {
    match node {
        Yaml::Value(Scalar::String(s)) => Some(s.to_string()),
        Yaml::Value(Scalar::Integer(i)) => Some(i.to_string()),
        Yaml::Value(Scalar::Boolean(b)) => Some(b.to_string()),
        _ => None,
    }
}

fn convert(value: &Value) -> Yaml<'static> {
    match value {
        Value::Null => Yaml::Value(Scalar::Null),
        Value::Bool(b) => Yaml::Value(Scalar::Boolean(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Value(Scalar::Integer(i)),
            None => Yaml::Value(Scalar::FloatingPoint(n.as_f64().unwrap_or(0.0).into())),
        },
        Value::String(s) => Yaml::Value(Scalar::String(Cow::Owned(s.clone()))),
        Value::Array(items) => Yaml::Sequence(items.iter().map(convert).collect()),
        Value::Object(map) => Yaml::Mapping(
            map.iter()
                .map(|(k, v)| {
                    (
                        Yaml::Value(Scalar::String(Cow::Owned(k.clone()))),
                        convert(v),
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
    fn quotes_ambiguous_strings_and_sorts_keys() {
        let text = to_yaml(
            &json!({"b": "true", "a": "10.96.0.10", "c": ["x: y", "*"], "d": "multi\nline\n"}),
        );
        assert!(text.starts_with("a: "), "{text}");
        assert!(text.contains("b: \"true\""), "{text}");
        assert!(text.contains("d: |"), "{text}");
    }

    #[test]
    fn documents_round_trip() {
        let docs = vec![
            json!({"a": "true", "b": 1, "c": ["x: y", "*"], "d": "multi\nline\n", "e": null}),
            json!({"kind": "ConfigMap", "data": {"net-conf.json": "{\n  \"Network\": \"10.244.0.0/16\"\n}\n"}}),
        ];
        let text = emit_docs(&docs);
        assert_eq!(parse_docs(&text).unwrap(), docs);
        assert_eq!(
            parse_docs("---\n# only a comment\n---\n80: http\n").unwrap(),
            [json!({"80": "http"})]
        );
        let err = parse_docs("a: [1\nb: 2\n").unwrap_err();
        assert!(err.starts_with("2:") || err.starts_with("3:"), "{err}");
    }
}
