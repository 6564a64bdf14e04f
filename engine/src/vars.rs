//! Variables a task sees, layered by precedence (lowest first):
//! role defaults < inventory vars (all < group < host) < play vars < cluster spec < `-e`.
//! On top: `facts`, `inventory_hostname`, `groups`, registered results, `hostvars`.

use serde_json::{Map, Value};

/// The fixed layers of one host in one play (everything but run-time results).
#[derive(Debug, Clone, Default)]
pub struct Layers<'a> {
    pub role_defaults: Option<&'a Map<String, Value>>,
    pub inventory: Option<&'a Map<String, Value>>,
    pub play: Option<&'a Map<String, Value>>,
    pub spec: Option<&'a Map<String, Value>>,
    pub extra: Option<&'a Map<String, Value>>,
}

impl Layers<'_> {
    /// Merges the layers: a higher layer replaces a lower one's value of the same name.
    pub fn merge(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for layer in [
            self.role_defaults,
            self.inventory,
            self.play,
            self.spec,
            self.extra,
        ]
        .into_iter()
        .flatten()
        {
            for (k, v) in layer {
                out.insert(k.clone(), v.clone());
            }
        }
        out
    }
}

/// Parses `-e name=value` (the value as YAML-ish scalar: numbers and booleans typed,
/// anything else a string) or `-e '{"json": "object"}'`.
pub fn parse_extra(items: &[String]) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for item in items {
        let trimmed = item.trim();
        if trimmed.starts_with('{') {
            match serde_json::from_str::<Value>(trimmed) {
                Ok(Value::Object(m)) => out.extend(m),
                _ => return Err(format!("`-e {item}`: not a JSON object")),
            }
            continue;
        }
        let Some((name, value)) = item.split_once('=') else {
            return Err(format!("`-e {item}`: expected name=value or a JSON object"));
        };
        let name = name.trim();
        if !crate::playbook::is_identifier(name) {
            return Err(format!("`-e {item}`: `{name}` is not a variable name"));
        }
        let typed = match value {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            v => v
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(v.to_string())),
        };
        out.insert(name.to_string(), typed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn precedence() {
        let obj = |v: Value| v.as_object().cloned().unwrap();
        let (d, i, p, s, e) = (
            obj(
                json!({"a": "default", "b": "default", "c": "default", "d": "default", "e": "default"}),
            ),
            obj(json!({"b": "inventory", "c": "inventory", "d": "inventory", "e": "inventory"})),
            obj(json!({"c": "play", "d": "play", "e": "play"})),
            obj(json!({"d": "spec", "e": "spec"})),
            obj(json!({"e": "extra"})),
        );
        let merged = Layers {
            role_defaults: Some(&d),
            inventory: Some(&i),
            play: Some(&p),
            spec: Some(&s),
            extra: Some(&e),
        }
        .merge();
        assert_eq!(
            Value::Object(merged),
            json!({"a": "default", "b": "inventory", "c": "play", "d": "spec", "e": "extra"})
        );
    }

    #[test]
    fn extra_vars() {
        let m = parse_extra(&[
            "n=3".into(),
            "flag=true".into(),
            "s=a=b".into(),
            r#"{"o": [1]}"#.into(),
        ])
        .unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"n": 3, "flag": true, "s": "a=b", "o": [1]})
        );
        assert!(parse_extra(&["9x=1".into()]).is_err());
        assert!(parse_extra(&["novalue".into()]).is_err());
    }
}
