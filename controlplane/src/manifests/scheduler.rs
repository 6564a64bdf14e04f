//! kube-scheduler static pod.

use super::{add_volume, flags, probe, static_pod, Volumes, LIVENESS, STARTUP};
use crate::{ClusterParams, NodeParams};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub(super) fn pod(p: &ClusterParams, _node: &NodeParams) -> (&'static str, Value) {
    let kubeconfig = "/etc/kubernetes/scheduler.conf";
    let args = BTreeMap::from([
        ("authentication-kubeconfig", kubeconfig.to_string()),
        ("authorization-kubeconfig", kubeconfig.into()),
        ("bind-address", "127.0.0.1".into()),
        ("kubeconfig", kubeconfig.into()),
        ("leader-elect", "true".into()),
    ]);
    let mut volumes = Volumes::new();
    add_volume(&mut volumes, "kubeconfig", kubeconfig, "FileOrCreate", true);
    let container = json!({
        "command": flags("kube-scheduler", args),
        "image": p.component_image("kube-scheduler"),
        "livenessProbe": probe("127.0.0.1", 10259, "/healthz", "HTTPS", LIVENESS),
        "startupProbe": probe("127.0.0.1", 10259, "/healthz", "HTTPS", STARTUP),
        "resources": {"requests": {"cpu": "100m"}},
    });
    (
        "kube-scheduler",
        static_pod("kube-scheduler", None, &p.proxy_env, container, &volumes),
    )
}
