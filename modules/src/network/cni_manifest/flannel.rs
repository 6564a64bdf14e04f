//! The flannel manifest, written by kprov from flannel's public documentation: namespace,
//! service account and RBAC, the `kube-flannel-cfg` ConfigMap (CNI conflist and
//! `net-conf.json` with the pod CIDR and backend) and the DaemonSet whose init containers
//! install the flannel CNI binary and conflist on every node.

use serde_json::{json, Value};

/// Upstream images of the flannel release kprov writes the manifest for.
pub(crate) const FLANNEL_IMAGE: &str = "docker.io/flannel/flannel:v0.26.1";
/// The matching image with the `flannel` CNI plugin binary.
pub(crate) const CNI_PLUGIN_IMAGE: &str = "docker.io/flannel/flannel-cni-plugin:v1.5.1-flannel2";

/// What the flannel manifest depends on.
#[derive(Debug, Clone)]
pub(crate) struct Flannel<'a> {
    pub pod_cidr: &'a str,
    /// `vxlan` or `host-gw`.
    pub backend: &'a str,
    /// Interface flannel uses between hosts (`--iface`).
    pub iface: Option<&'a str>,
    pub image: &'a str,
    pub cni_plugin_image: &'a str,
}

const NS: &str = "kube-flannel";

/// The manifest's objects, in apply order.
pub(crate) fn objects(f: &Flannel<'_>) -> Vec<Value> {
    let net_conf = serde_json::to_string_pretty(&json!({
        "Network": f.pod_cidr,
        "EnableNFTables": false,
        "Backend": {"Type": f.backend},
    }))
    .unwrap_or_default()
        + "\n";
    let cni_conf = serde_json::to_string_pretty(&json!({
        "name": "cbr0",
        "cniVersion": "0.3.1",
        "plugins": [
            {"type": "flannel", "delegate": {"hairpinMode": true, "isDefaultGateway": true}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    }))
    .unwrap_or_default()
        + "\n";
    let labels = json!({"app": "flannel", "tier": "node", "k8s-app": "flannel"});
    let mut args = vec!["--ip-masq".to_string(), "--kube-subnet-mgr".to_string()];
    if let Some(iface) = f.iface {
        args.push(format!("--iface={iface}"));
    }
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": NS,
                "labels": {"k8s-app": "flannel", "pod-security.kubernetes.io/enforce": "privileged"},
            },
        }),
        json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "flannel", "namespace": NS, "labels": {"k8s-app": "flannel"}},
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "flannel", "labels": {"k8s-app": "flannel"}},
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]},
            ],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "flannel", "labels": {"k8s-app": "flannel"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "flannel"},
            "subjects": [{"kind": "ServiceAccount", "name": "flannel", "namespace": NS}],
        }),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "kube-flannel-cfg", "namespace": NS, "labels": labels},
            "data": {"cni-conf.json": cni_conf, "net-conf.json": net_conf},
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "kube-flannel-ds", "namespace": NS, "labels": labels},
            "spec": {
                "selector": {"matchLabels": {"app": "flannel"}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [{"matchExpressions": [
                                {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                            ]}],
                        }}},
                        "hostNetwork": true,
                        "priorityClassName": "system-node-critical",
                        "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
                        "serviceAccountName": "flannel",
                        "initContainers": [
                            {
                                "name": "install-cni-plugin",
                                "image": f.cni_plugin_image,
                                "command": ["cp"],
                                "args": ["-f", "/flannel", "/opt/cni/bin/flannel"],
                                "volumeMounts": [{"name": "cni-plugin", "mountPath": "/opt/cni/bin"}],
                            },
                            {
                                "name": "install-cni",
                                "image": f.image,
                                "command": ["cp"],
                                "args": ["-f", "/etc/kube-flannel/cni-conf.json", "/etc/cni/net.d/10-flannel.conflist"],
                                "volumeMounts": [
                                    {"name": "cni", "mountPath": "/etc/cni/net.d"},
                                    {"name": "flannel-cfg", "mountPath": "/etc/kube-flannel/"},
                                ],
                            },
                        ],
                        "containers": [{
                            "name": "kube-flannel",
                            "image": f.image,
                            "command": ["/opt/bin/flanneld"],
                            "args": args,
                            "resources": {"requests": {"cpu": "100m", "memory": "50Mi"}},
                            "securityContext": {
                                "privileged": false,
                                "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]},
                            },
                            "env": [
                                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                                {"name": "EVENT_QUEUE_DEPTH", "value": "5000"},
                            ],
                            "volumeMounts": [
                                {"name": "run", "mountPath": "/run/flannel"},
                                {"name": "flannel-cfg", "mountPath": "/etc/kube-flannel/"},
                                {"name": "xtables-lock", "mountPath": "/run/xtables.lock"},
                            ],
                        }],
                        "volumes": [
                            {"name": "run", "hostPath": {"path": "/run/flannel"}},
                            {"name": "cni-plugin", "hostPath": {"path": "/opt/cni/bin"}},
                            {"name": "cni", "hostPath": {"path": "/etc/cni/net.d"}},
                            {"name": "flannel-cfg", "configMap": {"name": "kube-flannel-cfg"}},
                            {"name": "xtables-lock", "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}},
                        ],
                    },
                },
            },
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DaemonSet;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    use kprov_controlplane::yaml::{emit_docs, parse_docs};

    #[test]
    fn manifest_parses_as_kubernetes_objects() {
        let f = Flannel {
            pod_cidr: "10.32.0.0/16",
            backend: "host-gw",
            iface: Some("eth1"),
            image: FLANNEL_IMAGE,
            cni_plugin_image: CNI_PLUGIN_IMAGE,
        };
        let text = emit_docs(&objects(&f));
        let docs = parse_docs(&text).unwrap();
        assert_eq!(docs.len(), 6);
        let ns: Namespace = serde_json::from_value(docs[0].clone()).unwrap();
        assert_eq!(ns.metadata.name.as_deref(), Some("kube-flannel"));
        let _: ServiceAccount = serde_json::from_value(docs[1].clone()).unwrap();
        let role: ClusterRole = serde_json::from_value(docs[2].clone()).unwrap();
        assert_eq!(role.rules.unwrap().len(), 3);
        let _: ClusterRoleBinding = serde_json::from_value(docs[3].clone()).unwrap();
        let cm: ConfigMap = serde_json::from_value(docs[4].clone()).unwrap();
        let data = cm.data.unwrap();
        let net: Value = serde_json::from_str(&data["net-conf.json"]).unwrap();
        assert_eq!(net["Network"], "10.32.0.0/16");
        assert_eq!(net["Backend"]["Type"], "host-gw");
        let cni: Value = serde_json::from_str(&data["cni-conf.json"]).unwrap();
        assert_eq!(cni["plugins"][0]["type"], "flannel");
        let ds: DaemonSet = serde_json::from_value(docs[5].clone()).unwrap();
        let pod = ds.spec.unwrap().template.spec.unwrap();
        let init: Vec<String> = pod
            .init_containers
            .unwrap()
            .iter()
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(init, ["install-cni-plugin", "install-cni"]);
        let main = &pod.containers[0];
        assert_eq!(main.image.as_deref(), Some(FLANNEL_IMAGE));
        assert!(main
            .args
            .as_ref()
            .unwrap()
            .contains(&"--iface=eth1".to_string()));
        assert_eq!(pod.host_network, Some(true));
    }
}
