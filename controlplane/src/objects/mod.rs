//! Cluster objects kubeadm creates through the API, as
//! YAML documents ready for server-side apply.

mod bootstrap;
mod config;
mod coredns;
mod kube_proxy;

use crate::token::DEFAULT_TOKEN_GROUP;
use crate::{yaml, BootstrapToken, ClusterParams, Error};
use serde_json::{json, Value};

/// Every object, in an order that applies cleanly (namespaced config, RBAC, addons).
pub(crate) fn all(
    p: &ClusterParams,
    token: &BootstrapToken,
    ca_pem: &[u8],
) -> Result<Vec<String>, Error> {
    let mut objects = Vec::new();
    objects.extend(config::objects(p));
    objects.extend(bootstrap::objects(p, token, ca_pem)?);
    objects.extend(coredns::objects(p));
    objects.extend(kube_proxy::objects(p));
    Ok(objects.iter().map(yaml::to_yaml).collect())
}

fn meta(name: &str, namespace: Option<&str>) -> Value {
    match namespace {
        Some(ns) => json!({"name": name, "namespace": ns}),
        None => json!({"name": name}),
    }
}

fn config_map(name: &str, namespace: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(name, Some(namespace)), "data": data})
}

fn group(name: &str) -> Value {
    json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": name})
}

fn service_account(name: &str, namespace: &str) -> Value {
    json!({"kind": "ServiceAccount", "name": name, "namespace": namespace})
}

fn rule(api_group: &str, resources: &[&str], verbs: &[&str], names: &[&str]) -> Value {
    let mut r = json!({"apiGroups": [api_group], "resources": resources, "verbs": verbs});
    if !names.is_empty() {
        r["resourceNames"] = json!(names);
    }
    r
}

fn role(name: &str, namespace: &str, rules: Vec<Value>) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta(name, Some(namespace)), "rules": rules})
}

fn role_binding(name: &str, namespace: &str, role: &str, subjects: Vec<Value>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta(name, Some(namespace)),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": subjects,
    })
}

fn cluster_role(name: &str, rules: Vec<Value>) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta(name, None), "rules": rules})
}

fn cluster_role_binding(name: &str, cluster_role: &str, subjects: Vec<Value>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": meta(name, None),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
        "subjects": subjects,
    })
}

/// Groups that may read kubeadm's ConfigMaps while joining.
fn joiners() -> Vec<Value> {
    vec![group("system:nodes"), group(DEFAULT_TOKEN_GROUP)]
}
