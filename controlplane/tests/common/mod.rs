//! Helpers shared by the integration tests: parameters, writing artifacts under a
//! temporary root, running openssl.
#![allow(dead_code)]

use kprov_controlplane::{init_files, Artifact, ClusterParams, Existing, NodeParams};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Cluster parameters for `version` with a pod network and an extra SAN.
pub fn params(version: &str) -> ClusterParams {
    let mut p = ClusterParams::new(
        version.parse().expect("version"),
        "192.0.2.10".parse().expect("ip"),
    );
    p.pod_cidr = Some("10.244.0.0/16".parse().expect("cidr"));
    p.cert_sans = vec!["api.example.test".into(), "198.51.100.7".into()];
    p
}

pub fn node() -> NodeParams {
    NodeParams::new("master-1", "192.0.2.10".parse().expect("ip"))
}

/// A fixed, whole-second "now" so expected dates are exact.
pub fn now() -> SystemTime {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    UNIX_EPOCH + Duration::from_secs(secs)
}

pub fn init(p: &ClusterParams) -> Vec<Artifact> {
    init_files(p, &node(), &Existing::empty(), now()).expect("init_files")
}

/// Writes artifacts under `root` (path `/x/y` becomes `root/x/y`) with their modes.
pub fn write_all(root: &Path, artifacts: &[Artifact]) {
    for a in artifacts {
        let path = under(root, &a.path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, &a.content).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(a.mode)).expect("chmod");
    }
}

pub fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

pub fn find<'a>(artifacts: &'a [Artifact], path: &str) -> &'a Artifact {
    artifacts
        .iter()
        .find(|a| a.path == path)
        .unwrap_or_else(|| panic!("no artifact {path}"))
}

pub fn text(artifacts: &[Artifact], path: &str) -> String {
    String::from_utf8(find(artifacts, path).content.clone()).expect("utf8")
}

/// Runs a command; returns (success, stdout + stderr).
pub fn run(cmd: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    let mut s = String::from_utf8_lossy(&out.stdout).to_string();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), s)
}

/// Runs a shell pipeline.
pub fn sh(script: &str) -> (bool, String) {
    run("sh", &["-c", script])
}

/// Parses a YAML document into JSON (for k8s-openapi and assertions).
pub fn yaml_to_json(text: &str) -> serde_json::Value {
    use saphyr::{LoadableYamlNode, Scalar, Yaml};
    fn conv(y: &Yaml) -> serde_json::Value {
        match y {
            Yaml::Value(Scalar::Null) => serde_json::Value::Null,
            Yaml::Value(Scalar::Boolean(b)) => (*b).into(),
            Yaml::Value(Scalar::Integer(i)) => (*i).into(),
            Yaml::Value(Scalar::FloatingPoint(f)) => f.into_inner().into(),
            Yaml::Value(Scalar::String(s)) => s.to_string().into(),
            Yaml::Sequence(v) => v.iter().map(conv).collect(),
            Yaml::Mapping(m) => m
                .iter()
                .map(|(k, v)| (k.as_str().expect("string key").to_string(), conv(v)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
            other => panic!("unexpected YAML node {other:?}"),
        }
    }
    let docs = Yaml::load_from_str(text).unwrap_or_else(|e| panic!("bad YAML: {e}\n{text}"));
    assert_eq!(docs.len(), 1, "one document expected:\n{text}");
    conv(&docs[0])
}
