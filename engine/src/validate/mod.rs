//! Validation of `cluster.yaml` and `hosts.yaml`: YAML with positions, the JSON Schema check
//! (every violation, with friendly messages), and the cross-file checks in [`check`].

mod cross;
pub(crate) mod formats;
pub(crate) mod net;
mod origin;
pub(crate) mod patterns;
mod read;
mod slices;
pub mod source_map;
mod structural;
mod suggest;
mod tasks;
pub(crate) mod yaml;

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;

pub use cross::check;
pub(crate) use read::read;
pub use read::MAX_INPUT_BYTES;
pub use source_map::{Position, SourceMap};
pub(crate) use suggest::closest;
pub use tasks::{check_tasks, TaskInputs};

use crate::diagnostic::{Diagnostic, Diagnostics};

/// A parsed file with its schema violations (possibly none).
pub(crate) struct Loaded {
    pub(crate) value: Value,
    pub(crate) map: SourceMap,
    pub(crate) diagnostics: Diagnostics,
    /// `value` without the values the schema rejected, so semantic checks can still run
    /// and report their problems in the same run.
    pub(crate) pruned: Value,
}

/// Checks a parsed document against `schema`; `diagnostics` holds the parser's findings.
pub(crate) fn check_document(
    document: yaml::Document,
    mut diagnostics: Diagnostics,
    schema: &Value,
) -> Loaded {
    let (problems, offending) = structural::check(schema, &document.value, &document.map);
    diagnostics.0.extend(problems);
    let mut pruned = document.value.clone();
    for pointer in &offending {
        prune(&mut pruned, pointer);
    }
    Loaded {
        value: document.value,
        map: document.map,
        diagnostics,
        pruned,
    }
}

/// Reads a YAML file as a JSON value (positions dropped), reporting syntax errors and
/// duplicate keys like the loaders do.
pub fn yaml_value(path: &Path) -> Result<Value, Diagnostics> {
    let text = read(path)?;
    let (document, duplicates) = yaml::parse(path, &text)?;
    duplicates.into_result(document.value)
}

/// Removes the value at `pointer`; an item of a list takes the whole list with it.
fn prune(root: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    match root.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(&last.replace("~1", "/").replace("~0", "~"));
        }
        Some(Value::Array(_)) => prune(root, parent),
        _ => {}
    }
}

/// Deserializes a schema-checked value into its typed model.
pub(crate) fn typed<T: DeserializeOwned>(value: &Value, map: &SourceMap) -> Result<T, Diagnostic> {
    T::deserialize(value).map_err(|error| map.at_value("", error.to_string(), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_removes_keys_and_whole_lists() {
        let mut value = serde_json::json!({"a": {"b": 1, "c": [1, 2]}, "d": 2});
        prune(&mut value, "/a/b");
        prune(&mut value, "/a/c/1");
        prune(&mut value, "/missing/x");
        assert_eq!(value, serde_json::json!({"a": {}, "d": 2}));
    }
}
