//! `/etc/kubernetes/*.conf`: kubeconfigs with embedded CA and client
//! certificates signed by the cluster CA.

use crate::pki::{Ca, CertInfo, Key, Subject, Usage};
use crate::{yaml, Artifact, ClusterParams, Error, Existing, KeyAlgorithm, NodeParams};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use std::time::SystemTime;

/// Where the kubelet keeps its rotated client certificate (kubeadm's kubelet-finalize).
pub const KUBELET_CLIENT_CURRENT: &str = "/var/lib/kubelet/pki/kubelet-client-current.pem";

/// One kubeconfig kubeadm writes for the first master.
struct Spec {
    file: &'static str,
    subject: Subject,
    server: String,
}

/// admin, super-admin (1.29+, first master only), kubelet (first master only; a
/// joining node gets its kubelet.conf from TLS bootstrap), controller-manager and
/// scheduler kubeconfigs.
pub(crate) fn ensure(
    p: &ClusterParams,
    node: &NodeParams,
    ca: &Ca,
    existing: &Existing,
    now: SystemTime,
    joining: bool,
) -> Result<Vec<Artifact>, Error> {
    let v = p.kubernetes_version;
    let admin_org = if v.has_super_admin() {
        "kubeadm:cluster-admins"
    } else {
        "system:masters"
    };
    let mut specs = vec![Spec {
        file: "admin.conf",
        subject: Subject::new("kubernetes-admin", &[admin_org], Usage::Client),
        server: p.server_url(),
    }];
    if v.has_super_admin() && !joining {
        specs.push(Spec {
            file: "super-admin.conf",
            subject: Subject::new("kubernetes-super-admin", &["system:masters"], Usage::Client),
            server: p.server_url(),
        });
    }
    if !joining {
        specs.push(Spec {
            file: "kubelet.conf",
            subject: Subject::new(
                format!("system:node:{}", node.name.to_lowercase()),
                &["system:nodes"],
                Usage::Client,
            ),
            server: p.server_url(),
        });
    }
    specs.push(Spec {
        file: "controller-manager.conf",
        subject: Subject::new("system:kube-controller-manager", &[], Usage::Client),
        server: p.local_server_url(),
    });
    specs.push(Spec {
        file: "scheduler.conf",
        subject: Subject::new("system:kube-scheduler", &[], Usage::Client),
        server: p.local_server_url(),
    });
    // kubeadm kept RSA keys in kubeconfigs until 1.31 (kubeadm#3072).
    let alg = if v.is_131_or_later() {
        p.key_algorithm
    } else {
        KeyAlgorithm::Rsa2048
    };

    let mut out = Vec::new();
    for spec in specs {
        let path = format!("/etc/kubernetes/{}", spec.file);
        // kubelet-finalize: once the kubelet has rotated its client certificate,
        // kubelet.conf points at the rotated file instead of embedding one.
        if spec.file == "kubelet.conf" && existing.get(KUBELET_CLIENT_CURRENT).is_some() {
            let user = &spec.subject.common_name;
            let text = document(
                p,
                &spec.server,
                &ca.cert_pem,
                user,
                json!({"client-certificate": KUBELET_CLIENT_CURRENT, "client-key": KUBELET_CLIENT_CURRENT}),
            );
            out.push(Artifact::secret(&path, text));
            continue;
        }
        if let Some(bytes) = existing.get(&path) {
            if keeps(bytes, &spec, ca, p, now) {
                out.push(Artifact::secret(&path, bytes));
                continue;
            }
        }
        let (key, cert_pem) = ca.issue(&spec.subject, alg, p, now, &path)?;
        let text = with_client_cert(
            p,
            &spec.server,
            &ca.cert_pem,
            &spec.subject.common_name,
            &cert_pem,
            &key.pem,
        );
        out.push(Artifact::secret(&path, text));
    }
    Ok(out)
}

/// A kubeconfig with one cluster (`clusterName`), one user named `user` holding
/// embedded client certificate and key, and context `<user>@<cluster>`.
pub(crate) fn with_client_cert(
    p: &ClusterParams,
    server: &str,
    ca_pem: &[u8],
    user: &str,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> String {
    document(
        p,
        server,
        ca_pem,
        user,
        json!({"client-certificate-data": B64.encode(cert_pem), "client-key-data": B64.encode(key_pem)}),
    )
}

/// A kubeconfig whose user authenticates with a bearer token.
pub(crate) fn with_token(
    p: &ClusterParams,
    server: &str,
    ca_pem: &[u8],
    user: &str,
    token: &str,
) -> String {
    document(p, server, ca_pem, user, json!({"token": token}))
}

fn document(
    p: &ClusterParams,
    server: &str,
    ca_pem: &[u8],
    user: &str,
    credentials: Value,
) -> String {
    let cluster = &p.cluster_name;
    let context = format!("{user}@{cluster}");
    yaml::to_yaml(&json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"certificate-authority-data": B64.encode(ca_pem), "server": server}}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
        "preferences": {},
        "users": [{"name": user, "user": credentials}],
    }))
}

/// Keep an existing kubeconfig if it trusts the current CA, points at the right
/// server and its client certificate is still right (or, for kubelet.conf, it
/// already uses the kubelet's rotated certificate).
fn keeps(bytes: &[u8], spec: &Spec, ca: &Ca, p: &ClusterParams, now: SystemTime) -> bool {
    let Some(doc) = std::str::from_utf8(bytes).ok().and_then(yaml::parse) else {
        return false;
    };
    let cluster = &doc["clusters"][0]["cluster"];
    let ca_ok = cluster["certificate-authority-data"]
        .as_str()
        .and_then(|d| B64.decode(d).ok())
        .as_deref()
        == Some(&ca.cert_pem[..]);
    if !ca_ok || cluster["server"].as_str() != Some(spec.server.as_str()) {
        return false;
    }
    let user = &doc["users"][0]["user"];
    if spec.file == "kubelet.conf"
        && user["client-certificate"].as_str() == Some(KUBELET_CLIENT_CURRENT)
    {
        return true;
    }
    let decode = |field: &str| user[field].as_str().and_then(|d| B64.decode(d).ok());
    let (Some(cert_pem), Some(key_pem)) =
        (decode("client-certificate-data"), decode("client-key-data"))
    else {
        return false;
    };
    match (CertInfo::from_pem(&cert_pem), Key::load(&key_pem)) {
        (Ok(info), Some(key)) => ca.accepts(&info, &key, &spec.subject, p, now),
        _ => false,
    }
}

/// Client certificates embedded in a kubeconfig (for expiry reports).
pub(crate) fn embedded_client_cert(bytes: &[u8]) -> Option<Vec<u8>> {
    let doc = yaml::parse(std::str::from_utf8(bytes).ok()?)?;
    B64.decode(doc["users"][0]["user"]["client-certificate-data"].as_str()?)
        .ok()
}
