//! `/etc/kubernetes/pki`: the three CAs, their leaves and the
//! service-account key pair. Valid existing files are kept byte for byte.

mod cert;
mod inspect;
mod keys;

pub(crate) use cert::{signed_leaf, Subject, Usage};
pub(crate) use inspect::CertInfo;
pub(crate) use keys::Key;

use crate::{Artifact, ClusterParams, Error, Existing, NodeParams};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::SystemTime;

/// Directory of the cluster PKI.
pub const PKI_DIR: &str = "/etc/kubernetes/pki";

/// kprov's record of the CAs whose keys it created or holds on the first master, one
/// base name (`ca`, `front-proxy-ca`, `etcd/ca`) per line. Written in the same set as
/// the keys, it tells a key deleted from a running cluster (an error) from a real
/// external CA (a certificate without key from the start).
pub(crate) const CA_KEYS_RECORD: &str = "/etc/kubernetes/kprov/ca-keys";

/// The CAs of a control-plane node and the leaves each one signs.
const CAS: [(&str, &[&str]); 3] = [
    ("ca", &["apiserver", "apiserver-kubelet-client"]),
    ("front-proxy-ca", &["front-proxy-client"]),
    (
        "etcd/ca",
        &[
            "etcd/server",
            "etcd/peer",
            "etcd/healthcheck-client",
            "apiserver-etcd-client",
        ],
    ),
];

/// A CA ready to sign (or, in external-CA mode, only to verify).
pub(crate) struct Ca {
    pub(crate) cert_pem: Vec<u8>,
    pub(crate) info: CertInfo,
    /// `None` when `ca.crt` exists without `ca.key` (external CA).
    pub(crate) key: Option<Key>,
    /// Path of the key, for error messages.
    pub(crate) key_path: String,
}

impl Ca {
    /// Signs `subject` with a fresh key; errors in external-CA mode.
    pub(crate) fn issue(
        &self,
        subject: &Subject,
        alg: crate::KeyAlgorithm,
        p: &ClusterParams,
        now: SystemTime,
        for_path: &str,
    ) -> Result<(Key, Vec<u8>), Error> {
        let ca_key = self.key.as_ref().ok_or_else(|| Error::ExternalCa {
            path: for_path.to_string(),
            ca_key: self.key_path.clone(),
        })?;
        let key = Key::generate(alg)?;
        let pem = signed_leaf(
            subject,
            &key,
            &self.info.der,
            self.info.not_before,
            ca_key,
            p.kubernetes_version,
            now,
        )?;
        Ok((key, pem))
    }

    /// True if `cert` (with key `key`) can be kept: signed by this CA, right
    /// subject and usage, SANs covering `subject`'s, valid through the renew window.
    pub(crate) fn accepts(
        &self,
        cert: &CertInfo,
        key: &Key,
        subject: &Subject,
        p: &ClusterParams,
        now: SystemTime,
    ) -> bool {
        let (server, client) = match subject.usage {
            Usage::Ca => (false, false),
            Usage::Server => (true, false),
            Usage::Client => (false, true),
            Usage::ServerClient => (true, true),
        };
        !cert.is_ca
            && cert.common_name == subject.common_name
            && cert.organizations == subject.organizations.iter().cloned().collect()
            && cert.server_auth == server
            && cert.client_auth == client
            && subject.dns_names.iter().all(|d| cert.dns_names.contains(d))
            && subject.ips.iter().all(|ip| cert.ips.contains(ip))
            && cert.valid_through(now, p.renew_window)
            && key.spki_der() == cert.spki
            && cert.signed_by(&self.info)
    }
}

/// The cluster PKI after `ensure`.
pub(crate) struct Pki {
    pub(crate) ca: Ca,
    pub(crate) artifacts: Vec<Artifact>,
}

/// Every file of kubeadm's `certs` phase for a control-plane node. On the first
/// master (`joining == false`) missing CAs are created; a joining control-plane
/// node must already have the shared CAs and `sa.key` in `existing`.
pub(crate) fn ensure(
    p: &ClusterParams,
    node: &NodeParams,
    existing: &Existing,
    now: SystemTime,
    joining: bool,
) -> Result<Pki, Error> {
    if joining {
        for base in ["ca", "front-proxy-ca", "etcd/ca"] {
            let (crt, key) = paths(base);
            for path in [crt, key] {
                if existing.get(&path).is_none() {
                    return Err(Error::MissingShared { path });
                }
            }
        }
        let sa = format!("{PKI_DIR}/sa.key");
        match existing.get(&sa) {
            None => return Err(Error::MissingShared { path: sa }),
            // A new key here would make this API server reject every other one's tokens.
            Some(pem) if Key::load(pem).is_none() => {
                return Err(Error::UnreadableShared { path: sa })
            }
            Some(_) => {}
        }
    }
    let mut out = Vec::new();
    let v = p.kubernetes_version;
    let masters: &[&str] = if v.has_super_admin() {
        &["kubeadm:cluster-admins"]
    } else {
        &["system:masters"]
    };
    let etcd_clients: &[&str] = if v.has_super_admin() {
        &[]
    } else {
        &["system:masters"]
    };

    let ca = ensure_ca("ca", "kubernetes", p, existing, now, &mut out)?;
    ensure_leaf(
        "apiserver",
        &ca,
        &apiserver_subject(p, node)?,
        p,
        existing,
        now,
        &mut out,
    )?;
    let kubelet_client = Subject::new("kube-apiserver-kubelet-client", masters, Usage::Client);
    ensure_leaf(
        "apiserver-kubelet-client",
        &ca,
        &kubelet_client,
        p,
        existing,
        now,
        &mut out,
    )?;

    let fp = ensure_ca(
        "front-proxy-ca",
        "front-proxy-ca",
        p,
        existing,
        now,
        &mut out,
    )?;
    let fp_client = Subject::new("front-proxy-client", &[], Usage::Client);
    ensure_leaf(
        "front-proxy-client",
        &fp,
        &fp_client,
        p,
        existing,
        now,
        &mut out,
    )?;

    let etcd = ensure_ca("etcd/ca", "etcd-ca", p, existing, now, &mut out)?;
    let (server, peer) = etcd_subjects(p, node);
    ensure_leaf("etcd/server", &etcd, &server, p, existing, now, &mut out)?;
    ensure_leaf("etcd/peer", &etcd, &peer, p, existing, now, &mut out)?;
    let health = Subject::new("kube-etcd-healthcheck-client", etcd_clients, Usage::Client);
    ensure_leaf(
        "etcd/healthcheck-client",
        &etcd,
        &health,
        p,
        existing,
        now,
        &mut out,
    )?;
    let api_etcd = Subject::new("kube-apiserver-etcd-client", etcd_clients, Usage::Client);
    ensure_leaf(
        "apiserver-etcd-client",
        &etcd,
        &api_etcd,
        p,
        existing,
        now,
        &mut out,
    )?;

    ensure_service_account_keys(p, existing, &mut out)?;
    if !joining {
        out.push(ca_keys_record(&[&ca, &fp, &etcd]));
    }
    Ok(Pki { ca, artifacts: out })
}

/// SANs of the API server certificate (kubeadm's `GetAPIServerAltNames`).
fn apiserver_subject(p: &ClusterParams, node: &NodeParams) -> Result<Subject, Error> {
    let mut sans = vec![
        node.name.clone(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        format!("kubernetes.default.svc.{}", p.dns_domain),
        p.api_service_ip().to_string(),
        p.advertise_address.to_string(),
    ];
    if let Some(ep) = &p.control_plane_endpoint {
        sans.push(crate::params::split_host_port(ep)?.0);
    }
    sans.extend(p.cert_sans.iter().cloned());
    Ok(Subject::new("kube-apiserver", &[], Usage::Server).with_sans(sans))
}

/// etcd server and peer subjects (CN = node name; node name, localhost, advertise
/// address and loopbacks, plus the configured extra SANs).
fn etcd_subjects(p: &ClusterParams, node: &NodeParams) -> (Subject, Subject) {
    let base = [
        node.name.clone(),
        "localhost".into(),
        p.advertise_address.to_string(),
        IpAddr::V4(Ipv4Addr::LOCALHOST).to_string(),
        IpAddr::V6(Ipv6Addr::LOCALHOST).to_string(),
    ];
    let server = Subject::new(node.name.clone(), &[], Usage::ServerClient).with_sans(
        base.iter()
            .cloned()
            .chain(p.etcd_server_cert_sans.iter().cloned()),
    );
    let peer = Subject::new(node.name.clone(), &[], Usage::ServerClient).with_sans(
        base.iter()
            .cloned()
            .chain(p.etcd_peer_cert_sans.iter().cloned()),
    );
    (server, peer)
}

fn paths(base: &str) -> (String, String) {
    (
        format!("{PKI_DIR}/{base}.crt"),
        format!("{PKI_DIR}/{base}.key"),
    )
}

/// Keeps an existing CA that is valid now (expiry inside the renew window is only
/// reported by [`crate::expiring`]: replacing a CA would break every node's trust),
/// or its certificate alone (external CA). A CA that is unreadable, expired or
/// whose key does not match is an error, never silently replaced. With no
/// certificate at all a new CA (and key) is made.
fn ensure_ca(
    base: &str,
    common_name: &str,
    p: &ClusterParams,
    existing: &Existing,
    now: SystemTime,
    out: &mut Vec<Artifact>,
) -> Result<Ca, Error> {
    let (cert_path, key_path) = paths(base);
    let cert = existing
        .get(&cert_path)
        .filter(|pem| !interrupted_init(base, pem, existing));
    if let Some(cert_pem) = cert {
        let bad = |reason: String| Error::Ca {
            path: cert_path.clone(),
            reason,
            key_path: key_path.clone(),
        };
        let info = CertInfo::from_pem(cert_pem)
            .map_err(|e| bad(format!("not a readable certificate ({e})")))?;
        if !info.is_ca {
            return Err(bad("not a CA certificate".into()));
        }
        if !info.valid_through(now, std::time::Duration::ZERO) {
            return Err(bad(
                "outside its validity period (expired or not yet valid)".into(),
            ));
        }
        let key = match existing.get(&key_path) {
            None if recorded(existing, base) => {
                return Err(Error::CaKeyLost {
                    key_path,
                    record: CA_KEYS_RECORD.into(),
                })
            }
            None => None,
            Some(key_pem) => {
                let key = Key::load(key_pem)
                    .ok_or_else(|| bad(format!("{key_path} is not a readable private key")))?;
                if key.spki_der() != info.spki {
                    return Err(bad(format!("{key_path} does not belong to it")));
                }
                out.push(Artifact::public(&cert_path, cert_pem, 0o644));
                out.push(Artifact::secret(&key_path, key_pem));
                Some(key)
            }
        };
        if key.is_none() {
            out.push(Artifact::public(&cert_path, cert_pem, 0o644));
        }
        return Ok(Ca {
            cert_pem: cert_pem.to_vec(),
            info,
            key,
            key_path,
        });
    }
    let key = Key::generate(p.key_algorithm)?;
    let subject = Subject::new(common_name, &[], Usage::Ca);
    let cert_pem = cert::self_signed_ca(&subject, &key, now)?;
    let info = CertInfo::from_pem(&cert_pem).map_err(|reason| Error::Certificate {
        what: cert_path.clone(),
        reason,
    })?;
    out.push(Artifact::public(&cert_path, cert_pem.clone(), 0o644));
    out.push(Artifact::secret(&key_path, key.pem.clone()));
    Ok(Ca {
        cert_pem,
        info,
        key: Some(key),
        key_path,
    })
}

/// True when `base`'s key is in kprov's record: kprov created or held it here.
fn recorded(existing: &Existing, base: &str) -> bool {
    existing.get(CA_KEYS_RECORD).is_some_and(|text| {
        String::from_utf8_lossy(text)
            .lines()
            .any(|l| l.trim() == base)
    })
}

/// A CA certificate without its key that nothing is signed by and that kprov never
/// recorded: what an init interrupted between writing the two leaves (kprov before its
/// files were written as one set). The init is completed with a new CA. A certificate
/// that signed any leaf on the host is a real external CA and kept.
fn interrupted_init(base: &str, cert_pem: &[u8], existing: &Existing) -> bool {
    let (_, key_path) = paths(base);
    if existing.get(&key_path).is_some() || recorded(existing, base) {
        return false;
    }
    let Ok(ca) = CertInfo::from_pem(cert_pem) else {
        return false; // reported as unreadable by the caller
    };
    let leaves = CAS
        .iter()
        .find(|(b, _)| *b == base)
        .map(|(_, leaves)| *leaves)
        .unwrap_or_default();
    !leaves.iter().any(|leaf| {
        existing
            .get(&paths(leaf).0)
            .and_then(|pem| CertInfo::from_pem(pem).ok())
            .is_some_and(|info| info.signed_by(&ca))
    })
}

/// The record of the CAs whose keys are on this host.
fn ca_keys_record(cas: &[&Ca]) -> Artifact {
    let mut text = String::new();
    for (ca, (base, _)) in cas.iter().zip(CAS) {
        if ca.key.is_some() {
            text.push_str(base);
            text.push('\n');
        }
    }
    Artifact::public(CA_KEYS_RECORD, text.into_bytes(), 0o644)
}

/// Keeps a valid existing leaf signed by `ca`, else issues a new key and certificate.
fn ensure_leaf(
    base: &str,
    ca: &Ca,
    subject: &Subject,
    p: &ClusterParams,
    existing: &Existing,
    now: SystemTime,
    out: &mut Vec<Artifact>,
) -> Result<(), Error> {
    let (cert_path, key_path) = paths(base);
    if let (Some(cert_pem), Some(key_pem)) = (existing.get(&cert_path), existing.get(&key_path)) {
        if let (Ok(info), Some(key)) = (CertInfo::from_pem(cert_pem), Key::load(key_pem)) {
            if ca.accepts(&info, &key, subject, p, now) {
                out.push(Artifact::public(&cert_path, cert_pem, 0o644));
                out.push(Artifact::secret(&key_path, key_pem));
                return Ok(());
            }
        }
    }
    let (key, cert_pem) = ca.issue(subject, p.key_algorithm, p, now, &cert_path)?;
    out.push(Artifact::public(&cert_path, cert_pem, 0o644));
    out.push(Artifact::secret(&key_path, key.pem));
    Ok(())
}

/// `sa.key` (kept if readable) and `sa.pub` (PKIX, mode 0600, derived from the key).
fn ensure_service_account_keys(
    p: &ClusterParams,
    existing: &Existing,
    out: &mut Vec<Artifact>,
) -> Result<(), Error> {
    let key_path = format!("{PKI_DIR}/sa.key");
    let key = match existing.get(&key_path).and_then(Key::load) {
        Some(key) => key,
        None => Key::generate(p.key_algorithm)?,
    };
    out.push(Artifact::secret(&key_path, key.pem.clone()));
    out.push(Artifact {
        path: format!("{PKI_DIR}/sa.pub"),
        content: key.public_pem(),
        mode: 0o600,
        secret: false,
    });
    Ok(())
}
