//! kprov's template filters. Every user value that reaches a generated TOML file goes
//! through `toml` (a value) or `toml_key` (a key), written by a serializer (toml_edit),
//! never pasted as text; `tojson` does the same for JSON and YAML; `quote` single-quotes a
//! value for a shell script. `dict2items`, `urlsplit` and `quote` behave as Ansible's do.

use minijinja::{Environment, Error, ErrorKind, Value as JValue};
use serde_json::Value;

/// Adds kprov's filters to `env`.
pub(super) fn register(env: &mut Environment<'static>) {
    env.add_filter("toml", toml);
    env.add_filter("toml_key", toml_key);
    env.add_filter("dict2items", dict2items);
    env.add_filter("urlsplit", urlsplit);
    env.add_filter("quote", |s: String| kprov_modules::quote(&s));
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

fn data(value: &JValue) -> Result<Value, Error> {
    if value.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    serde_json::to_value(value).map_err(|e| invalid(format!("not data: {e}")))
}

/// `value` as a TOML value: strings quoted and escaped, lists as arrays, mappings as
/// inline tables. `none` has no TOML spelling and is an error.
pub fn toml_value(value: &Value) -> Result<toml_edit::Value, String> {
    Ok(match value {
        Value::Null => return Err("none has no TOML spelling; leave the key out".into()),
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.into(),
            (None, Some(f)) => f.into(),
            _ => return Err(format!("{n} does not fit a TOML number")),
        },
        Value::String(s) => s.as_str().into(),
        Value::Array(items) => {
            let mut array = toml_edit::Array::new();
            for item in items {
                array.push(toml_value(item)?);
            }
            toml_edit::Value::Array(array)
        }
        Value::Object(map) => {
            let mut table = toml_edit::InlineTable::new();
            for (k, v) in map {
                table.insert(k, toml_value(v)?);
            }
            toml_edit::Value::InlineTable(table)
        }
    })
}

fn toml(value: JValue) -> Result<String, Error> {
    let mut v = toml_value(&data(&value)?).map_err(invalid)?;
    v.decor_mut().clear();
    Ok(v.to_string())
}

/// A TOML key: bare when it can be, quoted and escaped otherwise.
fn toml_key(value: JValue) -> Result<String, Error> {
    let key = match data(&value)? {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        other => return Err(invalid(format!("a TOML key is a string, not {other}"))),
    };
    Ok(toml_edit::Key::new(key).display_repr().into_owned())
}

/// `{a: 1}` → `[{key: a, value: 1}]`, in key order.
fn dict2items(value: JValue) -> Result<JValue, Error> {
    match data(&value)? {
        Value::Object(map) => {
            let mut items: Vec<(String, Value)> = map.into_iter().collect();
            items.sort_by(|a, b| a.0.cmp(&b.0));
            let items: Vec<Value> = items
                .into_iter()
                .map(|(key, value)| serde_json::json!({"key": key, "value": value}))
                .collect();
            Ok(JValue::from(minijinja::value::Serde(Value::Array(items))))
        }
        other => Err(invalid(format!(
            "dict2items expects a mapping, not {other}"
        ))),
    }
}

/// `https://h:5000/p` | urlsplit('scheme'|'netloc'|'hostname'|'port'|'path').
fn urlsplit(url: String, part: String) -> Result<JValue, Error> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url.as_str()));
    let (netloc, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (hostname, port) = match netloc.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, Some(p)),
        _ => (netloc, None),
    };
    Ok(match part.as_str() {
        "scheme" => JValue::from(scheme),
        "netloc" => JValue::from(netloc),
        "hostname" => JValue::from(hostname.trim_start_matches('[').trim_end_matches(']')),
        "port" => port.map_or(JValue::from(()), JValue::from),
        "path" => JValue::from(path),
        other => {
            return Err(invalid(format!(
                "urlsplit: unknown part `{other}` (scheme, netloc, hostname, port, path)"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::template::Renderer;
    use serde_json::json;

    /// Strings that would add keys or sections if pasted into TOML as text.
    pub(crate) const HOSTILE: &[&str] = &[
        "a\"b",
        "x\"]\n[evil]\nk = \"v",
        "line1\nline2",
        "k = v",
        "]",
        "[section]",
        "# comment",
        "back\\slash",
        "'single'",
        "tab\there",
        "\"\"\"",
        "'''",
    ];

    #[test]
    fn toml_values_and_keys_parse_back_to_exactly_the_input() {
        let r = Renderer::new();
        for s in HOSTILE {
            let ctx = json!({"v": s, "list": [s, s], "map": {*s: s}});
            let text = r
                .render_str(
                    "{{ v | toml_key }} = {{ v | toml }}\nlist = {{ list | toml }}\nmap = {{ map | toml }}\n",
                    "t",
                    &ctx,
                )
                .unwrap();
            let doc: toml_edit::DocumentMut =
                text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            let keys: Vec<&str> = doc.iter().map(|(k, _)| k).collect();
            assert_eq!(keys.len(), 3, "{text}");
            assert_eq!(doc[*s].as_str(), Some(*s), "{text}");
            assert_eq!(doc["list"].as_array().unwrap().len(), 2, "{text}");
            assert_eq!(doc["list"][1].as_str(), Some(*s));
            assert_eq!(doc["map"][*s].as_str(), Some(*s));
        }
    }

    #[test]
    fn toml_refuses_none_and_spells_scalars() {
        let r = Renderer::new();
        let ctx = json!({"n": null, "b": true, "i": -3, "f": 1.5});
        assert!(r.render_str("{{ n | toml }}", "t", &ctx).is_err());
        let text = r
            .render_str("{{ b | toml }} {{ i | toml }} {{ f | toml }}", "t", &ctx)
            .unwrap();
        assert_eq!(text, "true -3 1.5");
        assert_eq!(
            r.render_str("{{ 'plain_key' | toml_key }}", "t", &ctx)
                .unwrap(),
            "plain_key"
        );
    }

    #[test]
    fn dict2items_and_urlsplit_as_in_ansible() {
        let r = Renderer::new();
        let ctx = json!({"d": {"b": 2, "a": {"x": 1}}, "u": "http://10.0.0.1:5000/v2/x"});
        let v = r.eval("d | dict2items", "t", &ctx).unwrap();
        assert_eq!(
            v,
            json!([{"key": "a", "value": {"x": 1}}, {"key": "b", "value": 2}])
        );
        for (part, want) in [
            ("scheme", json!("http")),
            ("netloc", json!("10.0.0.1:5000")),
            ("hostname", json!("10.0.0.1")),
            ("port", json!("5000")),
            ("path", json!("/v2/x")),
        ] {
            assert_eq!(
                r.eval(&format!("u | urlsplit('{part}')"), "t", &ctx)
                    .unwrap(),
                want
            );
        }
        assert!(r.eval("u | urlsplit('query')", "t", &ctx).is_err());
        let q = r
            .render_str("{{ s | quote }}", "t", &json!({"s": "a'b $(x)"}))
            .unwrap();
        assert_eq!(q, kprov_modules::quote("a'b $(x)"));
        assert!(q.starts_with('\''), "{q}");
        assert!(r.eval("u | dict2items", "t", &ctx).is_err());
    }
}
