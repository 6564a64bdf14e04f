//! upload-config: `kubeadm-config` and `kubelet-config` ConfigMaps with their RBAC.

use super::{config_map, joiners, role, role_binding, rule};
use crate::{kubelet, yaml, ClusterParams, KeyAlgorithm};
use serde_json::{json, Value};

pub(super) fn objects(p: &ClusterParams) -> Vec<Value> {
    vec![
        config_map(
            "kubeadm-config",
            "kube-system",
            json!({"ClusterConfiguration": cluster_configuration(p)}),
        ),
        role(
            "kubeadm:nodes-kubeadm-config",
            "kube-system",
            vec![rule("", &["configmaps"], &["get"], &["kubeadm-config"])],
        ),
        role_binding(
            "kubeadm:nodes-kubeadm-config",
            "kube-system",
            "kubeadm:nodes-kubeadm-config",
            joiners(),
        ),
        config_map(
            "kubelet-config",
            "kube-system",
            json!({"kubelet": kubelet::config_yaml(p)}),
        ),
        role(
            "kubeadm:kubelet-config",
            "kube-system",
            vec![rule("", &["configmaps"], &["get"], &["kubelet-config"])],
        ),
        role_binding(
            "kubeadm:kubelet-config",
            "kube-system",
            "kubeadm:kubelet-config",
            joiners(),
        ),
    ]
}

/// The ClusterConfiguration kubeadm stores (v1beta3 up to 1.30, v1beta4 in 1.31).
pub(crate) fn cluster_configuration(p: &ClusterParams) -> String {
    let v = p.kubernetes_version;
    let mut networking =
        json!({"dnsDomain": p.dns_domain, "serviceSubnet": p.service_cidr.to_string()});
    if let Some(pod) = &p.pod_cidr {
        networking["podSubnet"] = json!(pod.to_string());
    }
    // kubeadm's defaults as stored: v1beta3 keeps extraArgs as a map and the
    // control-plane wait in the ClusterConfiguration; v1beta4 lists extraArgs as
    // name/value pairs and moved the timeout to InitConfiguration.timeouts.
    let mut api_server = if v.is_131_or_later() {
        json!({"extraArgs": [{"name": "authorization-mode", "value": "Node,RBAC"}]})
    } else {
        json!({
            "extraArgs": {"authorization-mode": "Node,RBAC"},
            "timeoutForControlPlane": "4m0s",
        })
    };
    if !p.cert_sans.is_empty() {
        api_server["certSANs"] = json!(p.cert_sans);
    }
    let mut local_etcd = json!({"dataDir": "/var/lib/etcd"});
    if !p.etcd_server_cert_sans.is_empty() {
        local_etcd["serverCertSANs"] = json!(p.etcd_server_cert_sans);
    }
    if !p.etcd_peer_cert_sans.is_empty() {
        local_etcd["peerCertSANs"] = json!(p.etcd_peer_cert_sans);
    }
    let mut config = json!({
        "apiVersion": v.kubeadm_api(),
        "kind": "ClusterConfiguration",
        "apiServer": api_server,
        "certificatesDir": "/etc/kubernetes/pki",
        "clusterName": p.cluster_name,
        "controllerManager": {},
        "dns": {},
        "etcd": {"local": local_etcd},
        "imageRepository": p.image_repository,
        "kubernetesVersion": v.to_string(),
        "networking": networking,
        "scheduler": {},
    });
    if let Some(ep) = &p.control_plane_endpoint {
        config["controlPlaneEndpoint"] = json!(ep);
    }
    if v.is_131_or_later() {
        config["encryptionAlgorithm"] = json!(match p.key_algorithm {
            KeyAlgorithm::Rsa2048 => "RSA-2048",
            KeyAlgorithm::EcdsaP256 => "ECDSA-P256",
        });
        config["certificateValidityPeriod"] = json!("8760h0m0s");
        config["caCertificateValidityPeriod"] = json!("87600h0m0s");
    } else if p.key_algorithm == KeyAlgorithm::EcdsaP256 {
        config["featureGates"] = json!({"PublicKeysECDSA": true});
    }
    yaml::to_yaml(&config)
}
