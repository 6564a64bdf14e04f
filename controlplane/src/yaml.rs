//! YAML text from `serde_json` values, the way kubeadm writes it (keys sorted, as
//! sigs.k8s.io/yaml does), emitted with `saphyr`.

use saphyr::{Scalar, Yaml, YamlEmitter};
use serde_json::Value;
use std::borrow::Cow;

/// One YAML document (no leading `---`), ending with a newline.
pub(crate) fn to_yaml(value: &Value) -> String {
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
pub(crate) fn parse(text: &str) -> Option<Value> {
    use saphyr::LoadableYamlNode;
    let docs = Yaml::load_from_str(text).ok()?;
    back(docs.first()?)
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
                .map(|(k, v)| Some((k.as_str()?.to_string(), back(v)?)))
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
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
}
