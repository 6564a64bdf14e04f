//! JSON Schemas of `cluster.yaml` and `hosts.yaml` (`kprov schema spec|inventory`), for
//! editors (completion, descriptions, defaults, allowed values) and for validation.

use serde_json::Value;

use crate::inventory::file::{
    AnsibleInventoryFile, AnsibleVars, InventoryFile, KprovInventoryFile,
};
use crate::spec::ClusterSpec;

/// The `format`s JSON Schema 2020-12 defines; any other is dropped from kprov's schemas
/// (schemars writes `uint16` and the like for Rust integers, which `minimum`/`maximum`
/// already bound), so that no validator meets a format it does not know.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// `schema` as JSON, without the `format`s JSON Schema does not define.
pub(crate) fn to_value(schema: schemars::Schema) -> Value {
    let mut value = schema.to_value();
    standard_formats_only(&mut value);
    value
}

fn standard_formats_only(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| !STANDARD_FORMATS.contains(&f))
            {
                map.remove("format");
            }
            map.values_mut().for_each(standard_formats_only);
        }
        Value::Array(items) => items.iter_mut().for_each(standard_formats_only),
        _ => {}
    }
}

/// The schema of a cluster spec (`cluster.yaml`).
pub fn spec_schema() -> Value {
    to_value(schemars::schema_for!(ClusterSpec))
}

/// The schema of an inventory in either shape (kprov's own or Ansible's YAML inventory).
pub fn inventory_schema() -> Value {
    to_value(schemars::schema_for!(InventoryFile))
}

/// The schema of kprov's own inventory shape only.
pub(crate) fn kprov_inventory_schema() -> Value {
    to_value(schemars::schema_for!(KprovInventoryFile))
}

/// The schema of Ansible's YAML inventory shape only.
pub(crate) fn ansible_inventory_schema() -> Value {
    to_value(schemars::schema_for!(AnsibleInventoryFile))
}

/// The schema of one `group_vars`/`host_vars` file (Ansible variables).
pub(crate) fn ansible_vars_schema() -> Value {
    to_value(schemars::schema_for!(AnsibleVars))
}
