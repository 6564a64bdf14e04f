//! JSON Schemas of `cluster.yaml` and `hosts.yaml` (`kprov schema spec|inventory`), for
//! editors (completion, descriptions, defaults, allowed values) and for validation.

use serde_json::Value;

use crate::inventory::file::{
    AnsibleInventoryFile, AnsibleVars, InventoryFile, KprovInventoryFile,
};
use crate::spec::ClusterSpec;

fn to_value(schema: schemars::Schema) -> Value {
    schema.to_value()
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
