//! Static pod manifests in `/etc/kubernetes/manifests`.

mod apiserver;
mod controller_manager;
mod etcd;
mod scheduler;

use crate::{yaml, Artifact, ClusterParams, NodeParams};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Directory the kubelet watches for static pods.
pub const MANIFESTS_DIR: &str = "/etc/kubernetes/manifests";

/// The four control-plane manifests, mode 0600. With an external CA (no `ca.key`)
/// the controller-manager gets empty cluster-signing flags, as kubeadm does.
/// `etcd_peers` are the members a joining control-plane node's etcd joins.
pub(crate) fn all(
    p: &ClusterParams,
    node: &NodeParams,
    external_ca: bool,
    etcd_peers: &[NodeParams],
) -> Vec<Artifact> {
    [
        etcd::pod(p, node, etcd_peers),
        apiserver::pod(p, node),
        controller_manager::pod(p, node, external_ca),
        scheduler::pod(p, node),
    ]
    .into_iter()
    .map(|(name, pod)| {
        Artifact::public(
            format!("{MANIFESTS_DIR}/{name}.yaml"),
            yaml::to_yaml(&pod),
            0o600,
        )
    })
    .collect()
}

/// An HTTP(S) GET probe. `timing` = (initialDelay, timeout, failureThreshold, period).
fn probe(host: &str, port: u16, path: &str, scheme: &str, timing: (u32, u32, u32, u32)) -> Value {
    let mut v = json!({
        "httpGet": {"host": host, "path": path, "port": port, "scheme": scheme},
        "timeoutSeconds": timing.1,
        "failureThreshold": timing.2,
        "periodSeconds": timing.3,
    });
    if timing.0 > 0 {
        v["initialDelaySeconds"] = json!(timing.0);
    }
    v
}

/// Liveness timing (10/15/8/10).
const LIVENESS: (u32, u32, u32, u32) = (10, 15, 8, 10);
/// Readiness timing (0/15/3/1).
const READINESS: (u32, u32, u32, u32) = (0, 15, 3, 1);
/// Startup timing (10/15/24/10): 240 s / 10 s.
const STARTUP: (u32, u32, u32, u32) = (10, 15, 24, 10);

/// hostPath volumes keyed by name: (host path, type, read-only).
type Volumes = BTreeMap<String, (String, &'static str, bool)>;

fn add_volume(volumes: &mut Volumes, name: &str, path: &str, kind: &'static str, read_only: bool) {
    volumes.insert(name.to_string(), (path.to_string(), kind, read_only));
}

/// `/etc/ssl/certs` plus the CA-trust directories present on the node.
fn ca_volumes(p: &ClusterParams, node: &NodeParams) -> Volumes {
    let mut volumes = Volumes::new();
    add_volume(
        &mut volumes,
        "ca-certs",
        "/etc/ssl/certs",
        "DirectoryOrCreate",
        true,
    );
    let candidates: &[&str] = if p.kubernetes_version.is_131_or_later() {
        &[
            "/etc/ca-certificates",
            "/usr/share/ca-certificates",
            "/usr/local/share/ca-certificates",
            "/etc/pki/ca-trust",
            "/etc/pki/tls/certs",
        ]
    } else {
        &[
            "/etc/ca-certificates",
            "/usr/share/ca-certificates",
            "/usr/local/share/ca-certificates",
            "/etc/pki",
        ]
    };
    for dir in candidates
        .iter()
        .filter(|d| node.ca_trust_dirs.iter().any(|n| n == *d))
    {
        let name = dir.trim_start_matches('/').replace('/', "-");
        add_volume(&mut volumes, &name, dir, "DirectoryOrCreate", true);
    }
    volumes
}

/// Flags as `--name=value`, in alphabetical order (as kubeadm emits them).
fn flags(command: &str, args: BTreeMap<&str, String>) -> Value {
    let mut list = vec![Value::from(command)];
    list.extend(
        args.into_iter()
            .map(|(k, v)| Value::from(format!("--{k}={v}"))),
    );
    Value::Array(list)
}

/// Loopback address of the same family as `ip`.
fn loopback_for(ip: IpAddr) -> &'static str {
    if ip.is_ipv6() {
        "::1"
    } else {
        "127.0.0.1"
    }
}

/// The kubeadm static pod skeleton around one container.
/// `proxy_env` becomes the container's `env` (empty for etcd).
fn static_pod(
    name: &str,
    annotations: Option<(&str, String)>,
    proxy_env: &std::collections::BTreeMap<String, String>,
    container: Value,
    volumes: &Volumes,
) -> Value {
    let mut container = match container {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    container.insert("name".into(), name.into());
    if !proxy_env.is_empty() {
        let env: Vec<Value> = proxy_env
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        container.insert("env".into(), env.into());
    }
    container.insert("imagePullPolicy".into(), "IfNotPresent".into());
    container.insert(
        "volumeMounts".into(),
        volumes
            .iter()
            .map(|(vol, (path, _, ro))| {
                let mut m = json!({"mountPath": path, "name": vol});
                if *ro {
                    m["readOnly"] = true.into();
                }
                m
            })
            .collect(),
    );
    let mut metadata = json!({
        "creationTimestamp": null,
        "labels": {"component": name, "tier": "control-plane"},
        "name": name,
        "namespace": "kube-system",
    });
    if let Some((key, value)) = annotations {
        metadata["annotations"] = json!({ key: value });
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "containers": [Value::Object(container)],
            "hostNetwork": true,
            "priority": 2000001000,
            "priorityClassName": "system-node-critical",
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": volumes.iter().map(|(vol, (path, kind, _))| json!({"hostPath": {"path": path, "type": kind}, "name": vol})).collect::<Vec<_>>(),
        },
        "status": {},
    })
}
