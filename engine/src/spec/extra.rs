//! `-e` variables that name spec keys (`-e '{"networking": {"pod_cidr": …}}'`) are
//! merged into the spec (mappings key by key) and validated like the spec itself, so a
//! bad override is refused at validation, naming `-e` and the key.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{checks, ClusterSpec};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::inventory::Inventory;
use crate::validate::{self, yaml, SourceMap};

/// Where diagnostics about `-e` values point.
pub const EXTRA_FILE: &str = "-e";

/// Merges the `-e` variables that are spec keys into `spec` and validates the result.
/// Returns the merged spec and the remaining `-e` variables (not spec keys).
/// With hosts in `inventory`, the cross-file checks run on the merged spec too.
pub fn merge_extra(
    spec: &ClusterSpec,
    extra: &Map<String, Value>,
    inventory: Option<&Inventory>,
) -> Result<(ClusterSpec, Map<String, Value>), Diagnostics> {
    let schema = crate::schema::spec_schema();
    let is_spec_key = |k: &str| schema["properties"].get(k).is_some();
    let (overrides, rest): (Map<String, Value>, Map<String, Value>) = extra
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .partition(|(k, _)| is_spec_key(k));
    if overrides.is_empty() {
        return Ok((spec.clone(), rest));
    }
    let mut value = serde_json::to_value(spec).map_err(|e| at_extra("", e.to_string()))?;
    merge(&mut value, &Value::Object(overrides));
    let document = yaml::Document {
        value,
        map: SourceMap::new(Path::new(EXTRA_FILE)),
    };
    let loaded = validate::check_document(document, Diagnostics::default(), &schema);
    if !loaded.diagnostics.is_empty() {
        return Err(relabel(loaded.diagnostics.0));
    }
    let mut merged: ClusterSpec =
        validate::typed(&loaded.value, &loaded.map).map_err(|d| relabel(vec![d]))?;
    // Later diagnostics (from facts) still point at the spec file's positions.
    merged.source = spec.source.clone();
    let mut problems = checks::check(&merged);
    if let Some(Err(d)) = inventory.map(|inv| validate::check(&merged, inv)) {
        problems.extend(d.0);
    }
    if !problems.is_empty() {
        return Err(relabel(problems));
    }
    Ok((merged, rest))
}

/// A value from `-e` replaces the spec's, except that mappings merge key by key.
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

fn at_extra(key: &str, message: String) -> Diagnostics {
    Diagnostics(vec![Diagnostic {
        file: PathBuf::from(EXTRA_FILE),
        line: 1,
        column: 1,
        key: key.to_string(),
        message,
        hint: None,
    }])
}

/// Diagnostics about the merged spec, pointed at `-e` (the file itself was valid).
fn relabel(problems: Vec<Diagnostic>) -> Diagnostics {
    Diagnostics(
        problems
            .into_iter()
            .map(|d| Diagnostic {
                file: PathBuf::from(EXTRA_FILE),
                line: 1,
                column: 1,
                message: format!("{} (given with -e)", d.message),
                ..d
            })
            .collect(),
    )
    .sorted()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> ClusterSpec {
        super::super::from_str(
            Path::new("cluster.yaml"),
            "kubernetes_version: \"1.30.2\"\nnetworking:\n  pod_cidr: 10.244.0.0/16\n",
        )
        .unwrap()
    }

    fn extra(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    /// The override merges key by key: the other `networking` keys keep their values.
    #[test]
    fn an_override_merges_into_the_spec() {
        let (merged, rest) = merge_extra(
            &spec(),
            &extra(json!({"networking": {"pod_cidr": "10.32.0.0/16"}, "own": 1})),
            None,
        )
        .unwrap();
        assert_eq!(merged.networking.pod_cidr.to_string(), "10.32.0.0/16");
        assert_eq!(merged.networking.service_cidr.to_string(), "10.96.0.0/12");
        assert_eq!(Value::Object(rest), json!({"own": 1}));
    }

    #[test]
    fn a_bad_override_names_e_and_the_key() {
        let err = merge_extra(
            &spec(),
            &extra(json!({"networking": {"pod_cidr": "garbage"}})),
            None,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("-e:") && text.contains("networking.pod_cidr"),
            "{text}"
        );
        let err = merge_extra(
            &spec(),
            &extra(json!({"kubernetes_version": "1.27.0"})),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("-e:") && err.contains("not supported"),
            "{err}"
        );
        let err = merge_extra(
            &spec(),
            &extra(json!({"os": {"kernel_modules": "overlay"}})),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("os.kernel_modules"), "{err}");
    }
}
