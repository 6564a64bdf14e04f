//! Control-plane artifacts kubeadm would write, computed without kubeadm
//! (see `docs/controlplane.md`), for Kubernetes 1.28–1.31.
//!
//! Pure functions: no SSH, no engine. Callers write the returned [`Artifact`]s
//! atomically with their modes and never print contents marked `secret`.
//!
//! ```
//! use kprov_controlplane::*;
//! use std::time::SystemTime;
//!
//! let p = ClusterParams::new("1.31.2".parse()?, "192.0.2.10".parse()?);
//! let master = NodeParams::new("master-1", "192.0.2.10".parse()?);
//! let now = SystemTime::now();
//! let files = init_files(&p, &master, &Existing::empty(), now)?;
//! // Feeding back what is on the host changes nothing.
//! assert_eq!(init_files(&p, &master, &Existing::from_artifacts(&files), now)?, files);
//!
//! let ca = &files.iter().find(|a| a.path == "/etc/kubernetes/pki/ca.crt").unwrap().content;
//! let token = new_token(&p, now);
//! let hash = discovery_hash(ca)?; // --discovery-token-ca-cert-hash
//! assert!(hash.starts_with("sha256:"));
//! let worker = NodeParams::new("worker-1", "192.0.2.11".parse()?);
//! let join = join_files(&p, &worker, &token, ca)?;
//! let objects = cluster_objects(&p, &token, ca)?; // YAML documents for server-side apply
//! # assert!(!join.is_empty() && !objects.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod artifact;
mod error;
mod kubeconfig;
mod kubelet;
mod manifests;
mod node;
mod objects;
mod params;
mod pki;
mod reset;
mod token;
pub mod yaml;

pub use artifact::{Artifact, Existing};
pub use error::Error;
pub use kubeconfig::KUBELET_CLIENT_CURRENT;
pub use kubelet::unit as kubelet_unit;
pub use node::{node_marks, NodeMarks, Taint};
pub use params::{CgroupDriver, ClusterParams, KeyAlgorithm, NodeParams, ProxyMode, Version};
pub use pki::PKI_DIR;
pub use reset::{reset_paths, ResetPaths};
pub use token::{discovery_hash, BootstrapToken};

use std::time::{Duration, SystemTime};

/// Every file of `kubeadm init` phases certs, kubeconfig, etcd, control-plane and
/// kubelet-start for the first master, in the order they must be written
/// (PKI, kubeconfigs, then manifests, then kubelet files).
///
/// Existing valid certificates and keys (right CA, subject and usages, SANs still
/// covering what is needed, not expiring within `p.renew_window`) and kubeconfigs
/// built on them are kept byte for byte, so feeding the output back as `existing`
/// returns identical artifacts.
pub fn init_files(
    p: &ClusterParams,
    node: &NodeParams,
    existing: &Existing,
    now: SystemTime,
) -> Result<Vec<Artifact>, Error> {
    p.validate()?;
    node.validate()?;
    let pki = pki::ensure(p, node, existing, now, false)?;
    let external_ca = pki.ca.key.is_none();
    let mut out = pki.artifacts;
    out.extend(kubeconfig::ensure(p, node, &pki.ca, existing, now, false)?);
    out.extend(manifests::all(p, node, external_ca, &[]));
    out.extend(kubelet::files(p, node));
    Ok(out)
}

/// Every file an additional control-plane node writes (with kprov's simplification:
/// the CAs are copied from the first master instead of going through the
/// `kubeadm-certs` Secret).
///
/// `shared` holds the first master's `ca`, `front-proxy-ca` and `etcd/ca`
/// certificates and keys and `sa.key` (as read from it); `existing` what is already
/// on this node (kept when valid, as in [`init_files`]); `etcd_members` the etcd
/// members this node's etcd joins (`--initial-cluster-state=existing`; the engine
/// adds the member through the etcd API first). Needs `control_plane_endpoint`.
/// Returns the shared files, this node's own leaves, admin/controller-manager/
/// scheduler kubeconfigs, the four manifests, `bootstrap-kubelet.conf` and the
/// kubelet files. The kubelet gets `kubelet.conf` through TLS bootstrap.
pub fn control_plane_join_files(
    p: &ClusterParams,
    node: &NodeParams,
    shared: &Existing,
    etcd_members: &[NodeParams],
    token: &BootstrapToken,
    existing: &Existing,
    now: SystemTime,
) -> Result<Vec<Artifact>, Error> {
    p.validate()?;
    node.validate()?;
    if p.control_plane_endpoint.is_none() {
        return Err(Error::param(
            "control_plane_endpoint",
            "",
            "more than one control-plane node needs a stable endpoint (load balancer or DNS name) as host:port",
        ));
    }
    // This node's own view: its address is the advertise address of its API server.
    let mut local = p.clone();
    local.advertise_address = node.address;
    let mut merged = existing.clone();
    for base in ["ca", "front-proxy-ca", "etcd/ca"] {
        for ext in ["crt", "key"] {
            let path = format!("{PKI_DIR}/{base}.{ext}");
            match shared.get(&path) {
                Some(bytes) => merged.0.insert(path, bytes.to_vec()),
                None => merged.0.remove(&path),
            };
        }
    }
    let sa = format!("{PKI_DIR}/sa.key");
    match shared.get(&sa) {
        Some(bytes) => merged.0.insert(sa, bytes.to_vec()),
        None => merged.0.remove(&sa),
    };
    let pki = pki::ensure(&local, node, &merged, now, true)?;
    let mut out = pki.artifacts;
    out.extend(kubeconfig::ensure(
        &local, node, &pki.ca, &merged, now, true,
    )?);
    out.extend(manifests::all(&local, node, false, etcd_members));
    out.push(bootstrap_kubeconfig(p, token, &pki.ca.cert_pem));
    out.extend(kubelet::files(&local, node));
    Ok(out)
}

fn bootstrap_kubeconfig(p: &ClusterParams, token: &BootstrapToken, ca_pem: &[u8]) -> Artifact {
    let text = kubeconfig::with_token(
        p,
        &p.server_url(),
        ca_pem,
        "tls-bootstrap-token-user",
        &token.expose(),
    );
    Artifact::secret("/etc/kubernetes/bootstrap-kubelet.conf", text)
}

/// A new random bootstrap token valid for `p.token_ttl` from `now` (kubeadm: 24h).
pub fn new_token(p: &ClusterParams, now: SystemTime) -> BootstrapToken {
    BootstrapToken::generate(now.checked_add(p.token_ttl).unwrap_or(now))
}

/// Files a worker join writes: `bootstrap-kubelet.conf` with the
/// token, `pki/ca.crt`, and the kubelet's config, flags and drop-in.
pub fn join_files(
    p: &ClusterParams,
    node: &NodeParams,
    token: &BootstrapToken,
    ca_pem: &[u8],
) -> Result<Vec<Artifact>, Error> {
    p.validate()?;
    node.validate()?;
    discovery_hash(ca_pem)?;
    let mut out = vec![
        bootstrap_kubeconfig(p, token, ca_pem),
        Artifact::public(format!("{PKI_DIR}/ca.crt"), ca_pem, 0o644),
    ];
    out.extend(kubelet::files(p, node));
    Ok(out)
}

/// The cluster objects kubeadm creates as YAML documents for server-side apply:
/// kubeadm-config and kubelet-config ConfigMaps, the token Secret, bootstrap RBAC,
/// cluster-info, CoreDNS and kube-proxy.
pub fn cluster_objects(
    p: &ClusterParams,
    token: &BootstrapToken,
    ca_pem: &[u8],
) -> Result<Vec<String>, Error> {
    p.validate()?;
    discovery_hash(ca_pem)?;
    objects::all(p, token, ca_pem)
}

/// Certificates in `existing` (`*.crt` files and client certificates embedded in
/// `*.conf` kubeconfigs) that expire within `window` of `now`, with their expiry.
pub fn expiring(
    existing: &Existing,
    window: Duration,
    now: SystemTime,
) -> Vec<(String, SystemTime)> {
    let mut found = Vec::new();
    for (path, bytes) in &existing.0 {
        let pem = if path.ends_with(".crt") || path.ends_with(".pem") {
            Some(bytes.clone())
        } else if path.ends_with(".conf") {
            kubeconfig::embedded_client_cert(bytes)
        } else {
            None
        };
        if let Some(info) = pem.and_then(|pem| pki::CertInfo::from_pem(&pem).ok()) {
            if now
                .checked_add(window)
                .is_none_or(|end| info.not_after <= end)
            {
                found.push((path.clone(), info.not_after));
            }
        }
    }
    found
}
