//! `kube_join`: the files a worker join writes: `bootstrap-kubelet.conf`
//! with the bootstrap token, `pki/ca.crt`, and the kubelet's config, flags and
//! drop-in, from the CA and token the first master registered (`kube_join_info`).
//! Once the kubelet bootstrapped (`kubelet.conf` exists) the bootstrap kubeconfig is
//! left alone, as after `kubeadm join`.

use std::time::UNIX_EPOCH;

use kprov_controlplane::{discovery_hash, join_files, Artifact, BootstrapToken};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::kube::kube_cluster::ClusterArgs;
use crate::kube::kube_files::{self, Action};
use crate::util::args;
use crate::{Module, ModuleError, Plan, State};

const NAME: &str = "kube_join";
const BOOTSTRAP: &str = "/etc/kubernetes/bootstrap-kubelet.conf";
const KUBELET_CONF: &str = "/etc/kubernetes/kubelet.conf";

/// Arguments of `kube_join`: the cluster values of `kube_init` plus what the master
/// registered. Only its schema is used: `build` reads the map itself, so the
/// cluster fields keep `deny_unknown_fields` (serde cannot combine it with `flatten`).
#[derive(Deserialize, JsonSchema)]
#[allow(dead_code)]
pub(crate) struct Args {
    #[serde(flatten)]
    cluster: ClusterArgs,
    /// The cluster CA certificate (PEM), e.g. `{{ hostvars[m].cluster_join.ca_crt }}`.
    ca_crt: String,
    /// The bootstrap token `id.secret` (never printed).
    token: String,
    /// `sha256:<hex>` pin of the CA (`--discovery-token-ca-cert-hash`); checked when given.
    ca_cert_hash: Option<String>,
}

/// A built `kube_join` task. `Debug` shows no token.
pub(crate) struct KubeJoin {
    node: String,
    hash: String,
    artifacts: Vec<Artifact>,
    /// Journal of the file set's commit.
    journal: String,
}

impl std::fmt::Debug for KubeJoin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeJoin")
            .field("node", &self.node)
            .field("ca_cert_hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl KubeJoin {
    pub fn build(args: serde_json::Value) -> Result<KubeJoin, ModuleError> {
        let mut map = match args {
            serde_json::Value::Object(map) => map,
            _ => return Err(ModuleError::args(NAME, "expected a mapping of arguments")),
        };
        let mut take = |key: &str| -> Result<Option<String>, ModuleError> {
            match map.remove(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(ModuleError::args(NAME, format!("{key} must be a string"))),
            }
        };
        let ca = take("ca_crt")?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                ModuleError::args(
                    NAME,
                    "ca_crt is required: the CA the first master registered",
                )
            })?;
        let token = take("token")?.ok_or_else(|| {
            ModuleError::args(
                NAME,
                "token is required: the bootstrap token the first master registered",
            )
        })?;
        let pin = take("ca_cert_hash")?.filter(|s| !s.trim().is_empty());
        let cluster: ClusterArgs = args::parse(NAME, serde_json::Value::Object(map))?;
        let (p, node) = cluster.params(NAME)?;
        let token = BootstrapToken::parse(token.trim(), UNIX_EPOCH)
            .map_err(|e| ModuleError::args(NAME, e.to_string()))?;
        let hash = discovery_hash(ca.as_bytes())
            .map_err(|e| ModuleError::args(NAME, format!("ca_crt: {e}")))?;
        if let Some(pin) = pin {
            if pin.trim() != hash {
                return Err(ModuleError::args(
                    NAME,
                    format!(
                        "the CA from the master does not match ca_cert_hash {} (it hashes to {hash}); \
                         refusing to trust it",
                        pin.trim()
                    ),
                ));
            }
        }
        let mut artifacts = join_files(&p, &node, &token, ca.as_bytes())
            .map_err(|e| ModuleError::args(NAME, e.to_string()))?;
        if cluster.kubelet_unit {
            artifacts.push(kprov_controlplane::kubelet_unit());
        }
        Ok(KubeJoin {
            node: node.name,
            hash,
            artifacts,
            journal: kube_files::journal_for(NAME),
        })
    }

    fn paths(&self) -> Vec<String> {
        self.artifacts.iter().map(|a| a.path.clone()).collect()
    }

    /// What to fix, from what the host holds now (crash leftovers settled first).
    fn actions(&self, state: &State) -> Result<Vec<Action>, ModuleError> {
        let joined = kube_files::present(NAME, state, KUBELET_CONF);
        let wanted: Vec<Artifact> = self
            .artifacts
            .iter()
            .filter(|a| !(joined && a.path == BOOTSTRAP))
            .cloned()
            .collect();
        let (state, mut actions) = kube_files::settle(NAME, state, &self.paths(), &self.journal)?;
        actions.extend(kube_files::actions(NAME, &state, &wanted)?);
        Ok(actions)
    }
}

impl Module for KubeJoin {
    fn name(&self) -> &'static str {
        NAME
    }

    fn gather(&self) -> String {
        // kubelet.conf holds a client key: only whether it exists matters.
        let mut script = kube_files::gather(&self.paths(), &self.journal);
        script.push_str(&kube_files::gather_presence(KUBELET_CONF));
        script
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        Ok(kube_files::plan(
            &self.actions(state)?,
            &self.journal,
            Some(format!("CA pinned by {}", self.hash)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::Planned as _;
    use crate::Diff;
    use serde_json::json;

    fn ca_pem() -> Vec<u8> {
        let p = kprov_controlplane::ClusterParams::new(
            "1.28.2".parse().unwrap(),
            "10.1.0.10".parse().unwrap(),
        );
        let mut fast = p.clone();
        fast.key_algorithm = kprov_controlplane::KeyAlgorithm::EcdsaP256;
        let n = kprov_controlplane::NodeParams::new("master", "10.1.0.10".parse().unwrap());
        kprov_controlplane::init_files(
            &fast,
            &n,
            &kprov_controlplane::Existing::empty(),
            std::time::SystemTime::now(),
        )
        .unwrap()
        .into_iter()
        .find(|a| a.path == "/etc/kubernetes/pki/ca.crt")
        .unwrap()
        .content
    }

    fn args(ca: &[u8], pin: Option<&str>) -> serde_json::Value {
        json!({
            "kubernetes_version": "1.28.2",
            "advertise_address": "10.1.0.10",
            "node_name": "node1",
            "node_address": "10.1.0.11",
            "ca_crt": String::from_utf8_lossy(ca),
            "token": "abcdef.0123456789abcdef",
            "ca_cert_hash": pin,
            "kubelet_unit": true,
        })
    }

    #[test]
    fn writes_the_join_files_and_hides_the_token() {
        let ca = ca_pem();
        let m = KubeJoin::build(args(&ca, None)).unwrap();
        let paths = m.paths();
        for p in [
            BOOTSTRAP,
            "/etc/kubernetes/pki/ca.crt",
            "/var/lib/kubelet/config.yaml",
        ] {
            assert!(paths.iter().any(|x| x == p), "{p}");
        }
        assert!(!format!("{m:?}").contains("0123456789abcdef"));
        let mut state = kube_files::nothing_there(&paths, &m.journal);
        state
            .fields
            .insert(format!("{KUBELET_CONF}:stat"), b"absent".to_vec());
        let Diff::Change {
            summary,
            before,
            after,
        } = m.diff(&state).unwrap()
        else {
            panic!()
        };
        assert!(before.is_none() && after.is_none());
        assert!(summary.contains("create /etc/kubernetes/bootstrap-kubelet.conf"));
        assert!(summary.contains(&m.hash) && !summary.contains("0123456789abcdef"));
        // Joined already: the bootstrap kubeconfig is not written again.
        state.fields.insert(
            format!("{KUBELET_CONF}:stat"),
            b"regular file|600|0|0|root|root|9".to_vec(),
        );
        assert!(!m.diff(&state).unwrap().unwrap_summary().contains(BOOTSTRAP));
    }

    trait Summary {
        fn unwrap_summary(self) -> String;
    }
    impl Summary for Diff {
        fn unwrap_summary(self) -> String {
            match self {
                Diff::Change { summary, .. } => summary,
                _ => String::new(),
            }
        }
    }

    #[test]
    fn pin_mismatch_and_bad_token_are_refused_without_the_secret() {
        let ca = ca_pem();
        let right = discovery_hash(&ca).unwrap();
        assert!(KubeJoin::build(args(&ca, Some(&right))).is_ok());
        let e = KubeJoin::build(args(&ca, Some("sha256:00")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not match"), "{e}");
        let mut bad = args(&ca, None);
        bad["token"] = json!("abcdef.SECRETSECRETSECR");
        let e = KubeJoin::build(bad).unwrap_err().to_string();
        assert!(!e.contains("SECRET"), "{e}");
        let mut no_ca = args(&ca, None);
        no_ca["ca_crt"] = json!("");
        assert!(KubeJoin::build(no_ca)
            .unwrap_err()
            .to_string()
            .contains("ca_crt is required"));
    }

    #[test]
    fn real_cycle_in_a_temp_root() {
        let ca = ca_pem();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_string_lossy().into_owned();
        let mut m = KubeJoin::build(args(&ca, None)).unwrap();
        for a in &mut m.artifacts {
            a.path = format!("{root}{}", a.path);
        }
        // kubelet.conf probe stays at the real path: absent on this machine in CI.
        if std::path::Path::new(KUBELET_CONF).exists() {
            return;
        }
        crate::util::testutil::run_cycle(&m);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| {
            std::fs::metadata(format!("{root}{p}"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(BOOTSTRAP), 0o600);
        assert_eq!(mode("/etc/kubernetes/pki/ca.crt"), 0o644);
        assert_eq!(
            std::fs::read(format!("{root}/etc/kubernetes/pki/ca.crt")).unwrap(),
            ca
        );
    }
}
