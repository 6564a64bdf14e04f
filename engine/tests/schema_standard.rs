//! The JSON Schemas `kprov schema` prints refuse, in a standard validator (Python's
//! `jsonschema`, with format checking on), what `kprov validate` refuses: unsupported or
//! made-up Kubernetes versions, impossible CIDRs, broken IP addresses. And they accept the
//! repository's examples. Skipped, saying so, when python3 or its `jsonschema` package is
//! missing (tests/run installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

/// Formats kprov's schemas may use: the standard ones of JSON Schema 2020-12.
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

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// The validator's verdict on each instance, `None` when Python's `jsonschema` cannot run.
fn python_verdicts(schema: &Value, instances: &[Value]) -> Option<Vec<bool>> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.json");
    std::fs::write(
        &input,
        serde_json::to_string(&json!({ "schema": schema, "instances": instances })).unwrap(),
    )
    .unwrap();
    let program = r#"
import json, sys
try:
    import jsonschema
except ImportError:
    sys.exit(77)
data = json.load(open(sys.argv[1]))
cls = jsonschema.validators.validator_for(data["schema"])
cls.check_schema(data["schema"])
validator = cls(data["schema"], format_checker=cls.FORMAT_CHECKER)
print(json.dumps([validator.is_valid(i) for i in data["instances"]]))
"#;
    let out = match Command::new("python3")
        .arg("-c")
        .arg(program)
        .arg(&input)
        .output()
    {
        Ok(out) => out,
        Err(err) => {
            eprintln!("SKIPPED: python3 cannot run ({err}); install python3 and jsonschema");
            return None;
        }
    };
    if out.status.code() == Some(77) {
        eprintln!("SKIPPED: Python's jsonschema is missing: python3 -m pip install jsonschema");
        return None;
    }
    assert!(
        out.status.success(),
        "the validator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("a JSON list of verdicts"))
}

/// Every `format` in `schema`.
fn formats(schema: &Value, found: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(f)) = map.get("format") {
                found.push(f.clone());
            }
            map.values().for_each(|v| formats(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| formats(v, found)),
        _ => {}
    }
}

/// `base` with the value at `pointer` (`/a/b`) set to `value`.
fn with(base: &Value, pointer: &str, value: Value) -> Value {
    let mut out = base.clone();
    let mut at = &mut out;
    for key in pointer.trim_start_matches('/').split('/') {
        let object = at.as_object_mut().expect("an object on the way");
        at = object.entry(key).or_insert_with(|| json!({}));
    }
    *at = value;
    out
}

fn yaml(relative: &str) -> Value {
    kprov_engine::validate::yaml_value(&repo(relative))
        .unwrap_or_else(|d| panic!("{relative}: {d}"))
}

/// Checks good and bad instances; for each bad one also that `kprov validate`'s loader
/// refuses it (so the schema refuses no more and no less than that, on these values).
fn check(
    schema: &Value,
    good: &[(String, Value)],
    bad: &[(String, Value)],
    load: fn(&Path) -> bool,
) {
    let mut found = Vec::new();
    formats(schema, &mut found);
    for f in &found {
        assert!(
            STANDARD_FORMATS.contains(&f.as_str()),
            "non-standard format {f:?} in the schema"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, instance) in bad {
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, serde_json::to_string(instance).unwrap()).unwrap();
        assert!(!load(&path), "kprov validate accepts {name}");
    }
    for (name, instance) in good {
        let path = dir.path().join("good.yaml");
        std::fs::write(&path, serde_json::to_string(instance).unwrap()).unwrap();
        assert!(load(&path), "kprov validate refuses {name}");
    }
    let instances: Vec<Value> = good.iter().chain(bad).map(|(_, v)| v.clone()).collect();
    let Some(verdicts) = python_verdicts(schema, &instances) else {
        return;
    };
    for ((name, _), valid) in good.iter().chain(bad).zip(&verdicts) {
        let expected = good.iter().any(|(n, _)| n == name);
        assert_eq!(*valid, expected, "the standard validator on {name}");
    }
}

#[test]
fn a_standard_validator_refuses_what_validate_refuses_in_a_spec() {
    let schema = kprov_engine::schema::spec_schema();
    let minimal = yaml("examples/minimal.yaml");
    let mut good: Vec<(String, Value)> = [
        "examples/cluster.yaml",
        "examples/lab.yaml",
        "examples/minimal.yaml",
    ]
    .iter()
    .map(|p| (p.to_string(), yaml(p)))
    .collect();
    for (pointer, value) in [
        ("/kubernetes_version", json!("1.28.0")),
        ("/kubernetes_version", json!("v1.31.4")),
        ("/networking/pod_cidr", json!("10.244.0.0/16")),
        ("/networking/service_cidr", json!("10.96.0.0/12")),
        ("/control_plane/advertise_address", json!("192.168.1.10")),
        ("/control_plane/advertise_address", json!("fd00::10")),
    ] {
        good.push((
            format!("{pointer} = {value}"),
            with(&minimal, pointer, value),
        ));
    }
    let mut bad = Vec::new();
    for (pointer, value) in [
        ("/kubernetes_version", json!("latest")),
        ("/kubernetes_version", json!("stable")),
        ("/kubernetes_version", json!("1.28")),
        ("/kubernetes_version", json!("1.27.9")),
        ("/kubernetes_version", json!("1.32.0")),
        ("/kubernetes_version", json!("2.28.0")),
        ("/networking/pod_cidr", json!("10.244.0.0/33")),
        ("/networking/pod_cidr", json!("300.1.1.0/24")),
        ("/networking/pod_cidr", json!("10.244.0.0")),
        ("/networking/pod_cidr", json!("fd00::/129")),
        ("/networking/service_cidr", json!("garbage")),
        ("/control_plane/advertise_address", json!("300.1.1.1")),
        ("/control_plane/advertise_address", json!("192.168.1")),
        ("/control_plane/advertise_address", json!("fd00::1::2")),
        ("/networking/dns_domain", json!("Cluster..local")),
        ("/packages/apt_mirror", json!("mirror.example.com/debian")),
    ] {
        bad.push((
            format!("{pointer} = {value}"),
            with(&minimal, pointer, value),
        ));
    }
    check(&schema, &good, &bad, |p| {
        kprov_engine::spec::load(p).is_ok()
    });
}

#[test]
fn a_standard_validator_refuses_what_validate_refuses_in_an_inventory() {
    let schema = kprov_engine::schema::inventory_schema();
    let kubespray = yaml("inventories/kubespray.yaml");
    let mut good: Vec<(String, Value)> = [
        "inventories/hosts.yaml",
        "inventories/kubespray.yaml",
        "inventories/lab.yaml",
        "inventories/lab-request.yaml",
    ]
    .iter()
    .map(|p| (p.to_string(), yaml(p)))
    .collect();
    let host = |kubespray: &Value| -> String {
        let hosts = kubespray["all"]["hosts"].as_object().expect("all.hosts");
        hosts.keys().next().expect("a host").clone()
    };
    let name = host(&kubespray);
    good.push((
        "ip = 10.1.0.1".into(),
        with(
            &kubespray,
            &format!("/all/hosts/{name}/ip"),
            json!("10.1.0.1"),
        ),
    ));
    let mut bad = Vec::new();
    for value in ["300.1.1.1", "10.0.0", "fd00::1::2"] {
        bad.push((
            format!("ip = {value}"),
            with(&kubespray, &format!("/all/hosts/{name}/ip"), json!(value)),
        ));
    }
    for value in ["300.1.1.1", "10.0.0.300", "fd00::1::2", "node_1"] {
        bad.push((
            format!("ansible_host = {value}"),
            with(
                &kubespray,
                &format!("/all/hosts/{name}/ansible_host"),
                json!(value),
            ),
        ));
    }
    good.push((
        "ansible_host = Node1.Example.com".into(),
        with(
            &kubespray,
            &format!("/all/hosts/{name}/ansible_host"),
            json!("Node1.Example.com"),
        ),
    ));
    let hosts = yaml("inventories/hosts.yaml");
    let first = hosts["hosts"]
        .as_object()
        .expect("hosts")
        .keys()
        .next()
        .expect("a host")
        .clone();
    bad.push((
        "address = 300.1.1.1".into(),
        with(
            &hosts,
            &format!("/hosts/{first}/address"),
            json!("300.1.1.1"),
        ),
    ));
    bad.push((
        "lab.name = My_Lab".into(),
        with(
            &yaml("inventories/lab-request.yaml"),
            "/lab/name",
            json!("My_Lab"),
        ),
    ));
    check(&schema, &good, &bad, |p| {
        kprov_engine::inventory::load(p).is_ok()
    });
}
