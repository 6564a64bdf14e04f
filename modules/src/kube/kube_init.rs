//! `kube_init`: the first master's control-plane files (`kubeadm init` phases certs,
//! kubeconfig, etcd, control-plane, kubelet-start) computed by `kprov-controlplane`
//! from what is on the host, plus kprov's bootstrap token and discovery hash under
//! `/etc/kubernetes/kprov`. Keys are generated here, pushed, and kept on the master:
//! every run reads them back, so valid certificates stay byte for byte.
//!
//! The gathered state holds private keys: never `register` this task. The
//! `kube_join_info` task reads back only the CA, the token and the hash.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kprov_controlplane::{
    cluster_objects, discovery_hash, expiring, init_files, kubelet_unit, new_token, Artifact,
    BootstrapToken, ClusterParams, Existing, KeyAlgorithm, NodeParams, KUBELET_CLIENT_CURRENT,
    PKI_DIR,
};

use crate::kube::kube_cluster::ClusterArgs;
use crate::kube::kube_files::{self, Action};
use crate::util::args;
use crate::{Module, ModuleError, Plan, State};

/// Arguments of `kube_init`.
pub(crate) type Args = ClusterArgs;

const NAME: &str = "kube_init";
/// The bootstrap token (`id.secret`, then its expiry in Unix seconds), mode 0600.
pub(crate) const TOKEN_PATH: &str = "/etc/kubernetes/kprov/bootstrap-token";
/// `sha256:<hex>` of the CA's public key (`--discovery-token-ca-cert-hash`), mode 0644.
pub(crate) const HASH_PATH: &str = "/etc/kubernetes/kprov/discovery-hash";
/// The cluster objects of `kubeadm init` (configs, token Secret, RBAC, cluster-info,
/// CoreDNS, kube-proxy) for `kube_apply`, mode 0600 (the Secret holds the token).
pub(crate) const OBJECTS_PATH: &str = "/etc/kubernetes/kprov/cluster-objects.yaml";
/// A token expiring within this window is replaced.
const TOKEN_MIN_LIFE: Duration = Duration::from_secs(3600);
/// Certificates expiring within this window are reported (and leaves renewed).
const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 3600);

/// A built `kube_init` task.
pub(crate) struct KubeInit {
    params: ClusterParams,
    kubelet_unit: bool,
    node: NodeParams,
    paths: Vec<String>,
    /// Journal of the file set's commit.
    journal: String,
}

impl std::fmt::Debug for KubeInit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeInit")
            .field("node", &self.node.name)
            .field("version", &self.params.kubernetes_version)
            .finish_non_exhaustive()
    }
}

impl KubeInit {
    pub fn build(args: serde_json::Value) -> Result<KubeInit, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        let (params, node) = a.params(NAME)?;
        // Every path init_files may write: computed once with fast throw-away keys.
        let mut probe = params.clone();
        probe.key_algorithm = KeyAlgorithm::EcdsaP256;
        let mut paths: Vec<String> =
            init_files(&probe, &node, &Existing::empty(), SystemTime::now())
                .map_err(|e| ModuleError::args(NAME, e.to_string()))?
                .into_iter()
                .map(|a| a.path)
                .collect();
        paths.extend([TOKEN_PATH, HASH_PATH, OBJECTS_PATH].map(String::from));
        // Read, never written: its presence makes kubelet.conf point at it (kubelet-finalize).
        paths.push(KUBELET_CLIENT_CURRENT.to_string());
        if a.kubelet_unit {
            paths.push(kubelet_unit().path);
        }
        Ok(KubeInit {
            params,
            kubelet_unit: a.kubelet_unit,
            node,
            paths,
            journal: kube_files::journal_for(NAME),
        })
    }

    /// Every file this node must hold, from what it holds now.
    fn artifacts(
        &self,
        existing: &Existing,
        now: SystemTime,
    ) -> Result<Vec<Artifact>, ModuleError> {
        let mut files = init_files(&self.params, &self.node, existing, now)
            .map_err(|e| ModuleError::conflict(NAME, e.to_string()))?;
        let ca_path = format!("{PKI_DIR}/ca.crt");
        let ca = files
            .iter()
            .find(|a| a.path == ca_path)
            .map(|a| a.content.clone())
            .ok_or_else(|| ModuleError::conflict(NAME, "no CA certificate was computed"))?;
        let hash = discovery_hash(&ca).map_err(|e| ModuleError::conflict(NAME, e.to_string()))?;
        let token = token_artifact(&self.params, existing.get(TOKEN_PATH), now);
        files.push(objects_artifact(&self.params, &token.content, &ca)?);
        files.push(token);
        files.push(Artifact {
            path: HASH_PATH.into(),
            content: format!("{hash}\n").into_bytes(),
            mode: 0o644,
            secret: false,
        });
        if self.kubelet_unit {
            files.push(kubelet_unit());
        }
        Ok(files)
    }

    /// What to fix, from what the host holds now (crash leftovers settled first), and
    /// the certificates close to expiry.
    fn actions(&self, state: &State) -> Result<(Vec<Action>, Vec<String>), ModuleError> {
        let (state, mut actions) = kube_files::settle(NAME, state, &self.paths, &self.journal)?;
        let existing = kube_files::existing(NAME, &state, &self.paths)?;
        let now = SystemTime::now();
        let artifacts = self.artifacts(&existing, now)?;
        actions.extend(kube_files::actions(NAME, &state, &artifacts)?);
        Ok((actions, expiry_warnings(&existing, now)))
    }
}

/// The cluster objects for the token in `token_file` (`id.secret`, expiry seconds).
fn objects_artifact(
    p: &ClusterParams,
    token_file: &[u8],
    ca: &[u8],
) -> Result<Artifact, ModuleError> {
    let text = String::from_utf8_lossy(token_file);
    let mut lines = text.lines();
    let (token, expires) = (lines.next().unwrap_or_default(), lines.next());
    let secs = expires
        .and_then(|e| e.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let token = BootstrapToken::parse(token.trim(), UNIX_EPOCH + Duration::from_secs(secs))
        .map_err(|_| ModuleError::conflict(NAME, "the bootstrap token file does not parse"))?;
    let docs =
        cluster_objects(p, &token, ca).map_err(|e| ModuleError::conflict(NAME, e.to_string()))?;
    let mut content = String::new();
    for doc in docs {
        content.push_str("---\n");
        content.push_str(&doc);
    }
    Ok(Artifact {
        path: OBJECTS_PATH.into(),
        content: content.into_bytes(),
        mode: 0o600,
        secret: true,
    })
}

/// The token file: the existing one while it parses and lives at least another hour,
/// else a new token.
fn token_artifact(p: &ClusterParams, current: Option<&[u8]>, now: SystemTime) -> Artifact {
    let keep = current.filter(|bytes| {
        let text = String::from_utf8_lossy(bytes);
        let mut lines = text.lines();
        let (Some(token), Some(expires)) = (lines.next(), lines.next()) else {
            return false;
        };
        let Ok(secs) = expires.trim().parse::<u64>() else {
            return false;
        };
        let expires = UNIX_EPOCH + Duration::from_secs(secs);
        BootstrapToken::parse(token.trim(), expires).is_ok()
            && now.checked_add(TOKEN_MIN_LIFE).is_some_and(|t| expires > t)
    });
    let content = match keep {
        Some(bytes) => bytes.to_vec(),
        None => {
            let token = new_token(p, now);
            let secs = token
                .expires
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            format!("{}\n{secs}\n", token.expose()).into_bytes()
        }
    };
    Artifact {
        path: TOKEN_PATH.into(),
        content,
        mode: 0o600,
        secret: true,
    }
}

impl Module for KubeInit {
    fn name(&self) -> &'static str {
        NAME
    }

    fn gather(&self) -> String {
        kube_files::gather(&self.paths, &self.journal)
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        let (actions, warnings) = self.actions(state)?;
        Ok(kube_files::plan(&actions, &self.journal, None).with_warnings(warnings))
    }
}

/// One line per certificate (file or kubeconfig client certificate) that expires
/// within [`EXPIRY_WARNING`]: leaves are renewed by apply; CAs are never replaced
/// silently, since every certificate and kubeconfig hangs on them.
fn expiry_warnings(existing: &Existing, now: SystemTime) -> Vec<String> {
    let mut found = expiring(existing, EXPIRY_WARNING, now);
    found.sort();
    found
        .into_iter()
        .map(|(path, not_after)| {
            let date = time::OffsetDateTime::from(not_after).date();
            let when = match not_after.duration_since(now) {
                Ok(left) => format!("expires on {date} (in {} days)", left.as_secs() / 86_400),
                Err(_) => format!("expired on {date}"),
            };
            if path.ends_with("ca.crt") {
                format!(
                    "CA certificate {path} {when}: kprov keeps CAs; rotate it before then \
                     (every certificate and kubeconfig is re-issued from the new CA)"
                )
            } else {
                format!("certificate {path} {when}: apply renews it")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::kube_files::journal_for;
    use crate::util::testutil::gather;
    use crate::Diff;
    use serde_json::json;

    /// Rewrites every absolute path under `root` so the cycle runs in a temp dir.
    fn rooted(m: &mut KubeInit, root: &str) {
        m.paths = m.paths.iter().map(|p| format!("{root}{p}")).collect();
        m.journal = format!("{root}{}", m.journal);
    }

    fn build() -> KubeInit {
        KubeInit::build(json!({
            "kubernetes_version": "1.30.1",
            "advertise_address": "10.1.0.10",
            "cert_sans": ["k8s-api.example.com"],
            "pod_cidr": "10.244.0.0/16",
            "node_name": "master",
            "node_address": "10.1.0.10",
            "kubelet_unit": true,
        }))
        .unwrap()
    }

    #[test]
    fn paths_cover_pki_kubeconfigs_manifests_kubelet_and_token() {
        let m = build();
        for p in [
            "/etc/kubernetes/pki/ca.key",
            "/etc/kubernetes/pki/etcd/ca.crt",
            "/etc/kubernetes/super-admin.conf",
            "/etc/kubernetes/manifests/etcd.yaml",
            "/var/lib/kubelet/config.yaml",
            "/var/lib/kubelet/kubeadm-flags.env",
            "/etc/systemd/system/kubelet.service",
            TOKEN_PATH,
            HASH_PATH,
            OBJECTS_PATH,
        ] {
            assert!(m.paths.iter().any(|x| x == p), "{p} missing");
        }
    }

    #[test]
    fn diff_names_paths_never_key_bytes() {
        let m = build();
        let state = kube_files::nothing_there(&m.paths, &m.journal);
        // One plan: the keys its diff names are the keys its script writes.
        let plan = m.plan(&state).unwrap();
        let Diff::Change {
            summary,
            before,
            after,
        } = plan.diff
        else {
            panic!("expected a change")
        };
        assert!(before.is_none() && after.is_none());
        assert!(summary.contains("create /etc/kubernetes/pki/ca.key"));
        assert!(!summary.contains("PRIVATE KEY"));
        assert!(plan
            .script
            .contains("kp_stage_if '/etc/kubernetes/pki/ca.key'"));
        assert!(plan
            .script
            .contains("kp_commit '/etc/kubernetes/kprov/commit-kube_init'"));
        assert!(plan.sensitive);
        assert!(!format!("{m:?}").contains("KEY"));
    }

    #[test]
    fn certificates_close_to_expiry_are_reported() {
        let m = build();
        let now = SystemTime::now();
        let files = m.artifacts(&Existing::empty(), now).unwrap();
        let existing = Existing::from_artifacts(&files);
        assert!(expiry_warnings(&existing, now).is_empty());
        // Leaves live one year: 350 days on, each one is within the 30-day window.
        let late = now + Duration::from_secs(350 * 86_400);
        let warnings = expiry_warnings(&existing, late);
        let apiserver = warnings
            .iter()
            .find(|w| w.starts_with("certificate /etc/kubernetes/pki/apiserver.crt expires on "))
            .unwrap_or_else(|| panic!("{warnings:#?}"));
        assert!(
            apiserver.ends_with("(in 14 days): apply renews it"),
            "{apiserver}"
        );
        assert!(warnings
            .iter()
            .any(|w| w.contains("/etc/kubernetes/admin.conf")));
        assert!(
            !warnings.iter().any(|w| w.contains("ca.crt")),
            "{warnings:#?}"
        );
        // CAs live ten years and are never renewed silently.
        let end = now + Duration::from_secs(3640 * 86_400);
        let warnings = expiry_warnings(&existing, end);
        assert!(
            warnings.iter().any(|w| w
                .starts_with("CA certificate /etc/kubernetes/pki/ca.crt expires on ")
                && w.contains("rotate it")),
            "{warnings:#?}"
        );
        assert!(warnings
            .iter()
            .any(|w| w.starts_with("certificate /etc/kubernetes/pki/apiserver.crt expired on ")));
        assert!(!warnings.iter().any(|w| w.contains("PRIVATE KEY")));
    }

    #[test]
    fn token_is_kept_while_valid() {
        let p = ClusterParams::new("1.30.1".parse().unwrap(), "10.1.0.10".parse().unwrap());
        let now = SystemTime::now();
        let first = token_artifact(&p, None, now);
        assert_eq!(first.mode, 0o600);
        let again = token_artifact(&p, Some(&first.content), now);
        assert_eq!(again.content, first.content);
        let later = now + Duration::from_secs(24 * 3600);
        assert_ne!(
            token_artifact(&p, Some(&first.content), later).content,
            first.content
        );
        assert_ne!(
            token_artifact(&p, Some(b"garbage\n"), now).content,
            b"garbage\n"
        );
    }

    /// A real cycle in a temporary root: every file written with its mode, the second
    /// gather is unchanged (valid certificates and the token kept byte for byte).
    #[test]
    fn real_cycle_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_string_lossy().into_owned();
        let mut m = build();
        let original = m.paths.clone();
        rooted(&mut m, &root);
        // Compute with the real paths, write under root: map fields both ways.
        let to_real = |s: State| State {
            fields: s
                .fields
                .into_iter()
                .map(|(k, v)| (k.strip_prefix(&root).unwrap_or(&k).to_string(), v))
                .collect(),
        };
        let real_paths = original;
        let plan_for = |state: &State| {
            let m2 = KubeInit {
                params: m.params.clone(),
                kubelet_unit: m.kubelet_unit,
                node: m.node.clone(),
                paths: real_paths.clone(),
                journal: journal_for(NAME),
            };
            m2.actions(state).unwrap().0
        };
        let first = to_real(gather(&m).state());
        let actions: Vec<Action> = plan_for(&first)
            .into_iter()
            .map(|a| match a {
                Action::Write {
                    mut artifact,
                    old_sha,
                } => {
                    artifact.path = format!("{root}{}", artifact.path);
                    Action::Write { artifact, old_sha }
                }
                other => other,
            })
            .collect();
        assert!(!actions.is_empty());
        let report = crate::util::testutil::run_fragment(&kube_files::apply(&actions, &m.journal));
        assert!(report.ok() && report.changed, "{report:?}");
        let mode = |p: &str| crate::util::testutil::mode_under(&root, p);
        assert_eq!(mode("/etc/kubernetes/pki/ca.key"), 0o600);
        assert_eq!(mode("/etc/kubernetes/pki/ca.crt"), 0o644);
        assert_eq!(mode(TOKEN_PATH), 0o600);
        assert_eq!(mode(OBJECTS_PATH), 0o600);
        let objects = std::fs::read_to_string(format!("{root}{OBJECTS_PATH}")).unwrap();
        assert!(objects.contains("name: cluster-info"), "{objects}");
        let second = to_real(gather(&m).state());
        assert!(
            plan_for(&second).is_empty(),
            "second run must change nothing"
        );
        // A changed mode alone is repaired with chmod.
        std::fs::set_permissions(
            format!("{root}/etc/kubernetes/pki/ca.key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        let third = to_real(gather(&m).state());
        let fix = plan_for(&third);
        assert!(matches!(fix.as_slice(), [Action::Chmod { .. }]), "{fix:?}");
    }
}
