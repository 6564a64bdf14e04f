//! addon/kube-proxy: ServiceAccount, RBAC, ConfigMap and DaemonSet.

use super::{cluster_role_binding, group, role, role_binding, rule, service_account};
use crate::token::DEFAULT_TOKEN_GROUP;
use crate::{yaml, ClusterParams};
use serde_json::{json, Value};

pub(super) fn objects(p: &ClusterParams) -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "kube-proxy", "namespace": "kube-system"}}),
        cluster_role_binding(
            "kubeadm:node-proxier",
            "system:node-proxier",
            vec![service_account("kube-proxy", "kube-system")],
        ),
        role(
            "kube-proxy",
            "kube-system",
            vec![rule("", &["configmaps"], &["get"], &["kube-proxy"])],
        ),
        role_binding(
            "kube-proxy",
            "kube-system",
            "kube-proxy",
            vec![group(DEFAULT_TOKEN_GROUP)],
        ),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": {"app": "kube-proxy"}},
            "data": {"config.conf": proxy_configuration(p), "kubeconfig.conf": proxy_kubeconfig(p)},
        }),
        daemon_set(p),
    ]
}

/// KubeProxyConfiguration as kubeadm writes it (mode "" = iptables).
fn proxy_configuration(p: &ClusterParams) -> String {
    let mut config = json!({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "bindAddress": if p.advertise_address.is_ipv6() { "::" } else { "0.0.0.0" },
        "clientConnection": {"kubeconfig": "/var/lib/kube-proxy/kubeconfig.conf"},
        "mode": p.kube_proxy_mode.as_str(),
    });
    if let Some(pod) = &p.pod_cidr {
        config["clusterCIDR"] = json!(pod.to_string());
    }
    yaml::to_yaml(&config)
}

/// kube-proxy's in-pod kubeconfig: service-account token against the endpoint.
fn proxy_kubeconfig(p: &ClusterParams) -> String {
    yaml::to_yaml(&json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "default", "cluster": {
            "certificate-authority": "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
            "server": p.server_url(),
        }}],
        "contexts": [{"name": "default", "context": {"cluster": "default", "namespace": "default", "user": "default"}}],
        "current-context": "default",
        "users": [{"name": "default", "user": {"tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"}}],
    }))
}

fn daemon_set(p: &ClusterParams) -> Value {
    let labels = json!({"k8s-app": "kube-proxy"});
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{
                        "name": "kube-proxy",
                        "image": p.component_image("kube-proxy"),
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf", "--hostname-override=$(NODE_NAME)"],
                        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                        "securityContext": {"privileged": true},
                        "volumeMounts": [
                            {"mountPath": "/var/lib/kube-proxy", "name": "kube-proxy"},
                            {"mountPath": "/run/xtables.lock", "name": "xtables-lock"},
                            {"mountPath": "/lib/modules", "name": "lib-modules", "readOnly": true},
                        ],
                    }],
                    "hostNetwork": true,
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "priorityClassName": "system-node-critical",
                    "serviceAccountName": "kube-proxy",
                    "tolerations": [{"operator": "Exists"}],
                    "volumes": [
                        {"name": "kube-proxy", "configMap": {"name": "kube-proxy"}},
                        {"name": "xtables-lock", "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}},
                        {"name": "lib-modules", "hostPath": {"path": "/lib/modules"}},
                    ],
                },
            },
        },
    })
}
