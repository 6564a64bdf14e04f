//! The published JSON Schemas: valid schemas, useful to editors (descriptions, defaults,
//! allowed values), and accepting the shipped examples.

mod common;

use common::repo_file;
#[test]
fn spec_schema_describes_keys_defaults_and_allowed_values() {
    let schema = kprov_engine::schema::spec_schema();
    assert!(jsonschema::meta::is_valid(&schema), "a valid JSON Schema");
    let props = &schema["properties"];
    let version = props["kubernetes_version"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(version.contains("1.28.2"), "{version}");
    assert_eq!(
        schema["required"],
        serde_json::json!(["kubernetes_version"])
    );
    assert_eq!(props["image_repository"]["default"], "registry.k8s.io");
    assert_eq!(props["networking"]["default"]["pod_cidr"], "10.244.0.0/16");
    assert_eq!(
        props["networking"]["default"]["service_cidr"],
        "10.96.0.0/12"
    );
    assert_eq!(props["control_plane"]["default"]["bind_port"], 6443);
    let text = schema.to_string();
    for value in [
        "kprov-agent",
        "containerd",
        "cri-o",
        "systemd",
        "cgroupfs",
        "flannel",
        "calico",
        "bridge",
    ] {
        assert!(text.contains(&format!("\"{value}\"")), "{value} is listed");
    }
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown keys are rejected"
    );
}

#[test]
fn inventory_schema_covers_both_shapes() {
    let schema = kprov_engine::schema::inventory_schema();
    assert!(jsonschema::meta::is_valid(&schema), "a valid JSON Schema");
    let text = schema.to_string();
    for key in [
        "host_key_checking",
        "accept-new",
        "identity_file",
        "ansible_host",
        "children",
        "lab",
    ] {
        assert!(text.contains(key), "{key} is described");
    }
}

#[test]
fn shipped_examples_are_valid_under_the_published_schemas() {
    let spec = kprov_engine::schema::spec_schema();
    let inventory = kprov_engine::schema::inventory_schema();
    for (schema, file) in [
        (&spec, "examples/cluster.yaml"),
        (&spec, "examples/minimal.yaml"),
        (&inventory, "inventories/hosts.yaml"),
        (&inventory, "inventories/kubespray.yaml"),
        (&inventory, "inventories/lab-request.yaml"),
    ] {
        let path = repo_file(file);
        let value = kprov_engine::validate::yaml_value(&path).unwrap_or_else(|e| panic!("{e}"));
        let validator = jsonschema::validator_for(schema).unwrap_or_else(|e| panic!("{e}"));
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{file}: {errors:?}");
    }
}
