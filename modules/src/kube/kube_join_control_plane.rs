//! `kube_join_control_plane`: the files an additional control-plane node writes
//! (`kubeadm join --control-plane`, with kprov's simplification): the first
//! master's CAs, their keys and the service-account keys copied byte for byte (kubeadm's
//! modes), this node's own leaves, admin/controller-manager/scheduler kubeconfigs, the
//! four static pods (etcd joining the existing members), `bootstrap-kubelet.conf` and the
//! kubelet files. Valid files already on the node are kept, so a second run changes
//! nothing. Once the kubelet bootstrapped (`kubelet.conf` exists) the bootstrap
//! kubeconfig is left alone, as after `kubeadm join`.
//!
//! The shared keys arrive in `shared`, the value `kube_join_info` with
//! `control_plane: true` registers on the first master; they stay in memory and are
//! never put into errors, diffs or `Debug` output.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use kprov_controlplane::{
    control_plane_join_files, discovery_hash, kubelet_unit, Artifact, BootstrapToken,
    ClusterParams, Existing, KeyAlgorithm, NodeParams, PKI_DIR,
};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::kube::kube_cluster::ClusterArgs;
use crate::kube::kube_files::{self, Action};
use crate::kube::kube_join_info::SHARED;
use crate::util::args;
use crate::{Module, ModuleError, Plan, State};

const NAME: &str = "kube_join_control_plane";
const BOOTSTRAP: &str = "/etc/kubernetes/bootstrap-kubelet.conf";
const KUBELET_CONF: &str = "/etc/kubernetes/kubelet.conf";

/// Arguments of `kube_join_control_plane`: the cluster values of `kube_init` plus what
/// the first master registered. Only its schema is used: `build` reads the map itself,
/// so secrets never reach a serde error message.
#[derive(Deserialize, JsonSchema)]
#[allow(dead_code)]
pub(crate) struct Args {
    #[serde(flatten)]
    cluster: ClusterArgs,
    /// What `kube_join_info` with `control_plane: true` registered on the first master,
    /// e.g. `{{ hostvars[groups.masters[0]].cluster_control_plane }}`: the shared CA
    /// certificates and keys, `sa_key`/`sa_pub`, `token` and `discovery_hash`.
    shared: serde_json::Map<String, serde_json::Value>,
    /// The etcd members this node's etcd joins, as `name=address` items (a list, or one
    /// string separated by commas), in join order. Members listed after this node are
    /// left out: they join later.
    etcd_members: serde_json::Value,
}

/// A built `kube_join_control_plane` task. `Debug` shows no key or token.
pub(crate) struct KubeJoinControlPlane {
    params: ClusterParams,
    node: NodeParams,
    shared: Existing,
    token: BootstrapToken,
    hash: String,
    members: Vec<NodeParams>,
    kubelet_unit: bool,
    paths: Vec<String>,
    /// Journal of the file set's commit.
    journal: String,
}

impl std::fmt::Debug for KubeJoinControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let members: Vec<&str> = self.members.iter().map(|m| m.name.as_str()).collect();
        f.debug_struct("KubeJoinControlPlane")
            .field("node", &self.node.name)
            .field("ca_cert_hash", &self.hash)
            .field("etcd_members", &members)
            .finish_non_exhaustive()
    }
}

/// A string field of `shared`, or an error naming it (never its value).
fn shared_text<'a>(
    shared: &'a serde_json::Map<String, serde_json::Value>,
    field: &str,
) -> Result<&'a str, ModuleError> {
    match shared.get(field) {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(serde_json::Value::String(_)) | None => Err(ModuleError::args(
            NAME,
            format!(
                "shared.{field} is missing: pass what `kube_join_info: {{control_plane: true}}` \
                 registered on the first master (after kube_init ran there)"
            ),
        )),
        Some(_) => Err(ModuleError::args(
            NAME,
            format!("shared.{field} must be a string"),
        )),
    }
}

/// `name=address` items from a list or a comma/space-separated string.
fn parse_members(value: &serde_json::Value) -> Result<Vec<NodeParams>, ModuleError> {
    let items: Vec<String> = match value {
        serde_json::Value::String(s) => s
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        serde_json::Value::Array(list) => list
            .iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s.trim().to_string()),
                _ => Err(ModuleError::args(
                    NAME,
                    "etcd_members items must be `name=address` strings",
                )),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(ModuleError::args(
                NAME,
                "etcd_members must be a list of `name=address` or one string of them separated by commas",
            ))
        }
    };
    items
        .iter()
        .map(|item| {
            let (name, address) = item.split_once('=').ok_or_else(|| {
                ModuleError::args(
                    NAME,
                    format!("etcd_members item `{item}` is not `name=address`"),
                )
            })?;
            let address: IpAddr = address.trim().parse().map_err(|_| {
                ModuleError::args(
                    NAME,
                    format!("etcd_members item `{item}`: `{address}` is not an IP address"),
                )
            })?;
            let member = NodeParams::new(name.trim(), address);
            member
                .validate()
                .map_err(|e| ModuleError::args(NAME, format!("etcd_members: {e}")))?;
            Ok(member)
        })
        .collect()
}

/// The members this node joins: those listed before it (all when it is not listed).
fn members_before(all: Vec<NodeParams>, node: &str) -> Vec<NodeParams> {
    match all.iter().position(|m| m.name == node) {
        Some(i) => all.into_iter().take(i).collect(),
        None => all,
    }
}

impl KubeJoinControlPlane {
    pub fn build(args: serde_json::Value) -> Result<KubeJoinControlPlane, ModuleError> {
        let mut map = match args {
            serde_json::Value::Object(map) => map,
            _ => return Err(ModuleError::args(NAME, "expected a mapping of arguments")),
        };
        let shared_map = match map.remove("shared") {
            Some(serde_json::Value::Object(m)) => m,
            Some(_) | None => {
                return Err(ModuleError::args(
                    NAME,
                    "shared is required: the mapping `kube_join_info: {control_plane: true}` \
                     registers on the first master",
                ))
            }
        };
        let members = parse_members(&map.remove("etcd_members").unwrap_or_default())?;
        let cluster: ClusterArgs = args::parse(NAME, serde_json::Value::Object(map))?;
        let (params, node) = cluster.params(NAME)?;
        if params.control_plane_endpoint.is_none() {
            return Err(ModuleError::args(
                NAME,
                "more than one master needs control_plane.endpoint in the cluster spec \
                 (a load balancer or DNS name in front of the API servers, as host:port)",
            ));
        }
        let members = members_before(members, &node.name);
        if members.is_empty() {
            return Err(ModuleError::args(
                NAME,
                "etcd_members names no member to join: list the first master as `name=address`",
            ));
        }
        let mut shared = Existing::empty();
        for (field, path) in SHARED {
            shared
                .0
                .insert(path.to_string(), shared_text(&shared_map, field)?.into());
        }
        let token = BootstrapToken::parse(shared_text(&shared_map, "token")?.trim(), UNIX_EPOCH)
            .map_err(|e| ModuleError::args(NAME, format!("shared.token: {e}")))?;
        let ca = shared.get(&format!("{PKI_DIR}/ca.crt")).unwrap_or_default();
        let hash = discovery_hash(ca)
            .map_err(|e| ModuleError::args(NAME, format!("shared.ca_crt: {e}")))?;
        let pin = shared_text(&shared_map, "discovery_hash")?.trim();
        if pin != hash {
            return Err(ModuleError::args(
                NAME,
                format!(
                    "shared.ca_crt hashes to {hash}, not to the registered discovery hash {pin}; \
                     refusing to trust it"
                ),
            ));
        }
        // Every path the join may write, computed once with fast throw-away leaf keys.
        let mut probe = params.clone();
        probe.key_algorithm = KeyAlgorithm::EcdsaP256;
        let mut paths: Vec<String> = control_plane_join_files(
            &probe,
            &node,
            &shared,
            &members,
            &token,
            &Existing::empty(),
            SystemTime::now(),
        )
        .map_err(|e| ModuleError::args(NAME, e.to_string()))?
        .into_iter()
        .map(|a| a.path)
        .collect();
        if cluster.kubelet_unit {
            paths.push(kubelet_unit().path);
        }
        Ok(KubeJoinControlPlane {
            params,
            node,
            shared,
            token,
            hash,
            members,
            kubelet_unit: cluster.kubelet_unit,
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
        let mut files = control_plane_join_files(
            &self.params,
            &self.node,
            &self.shared,
            &self.members,
            &self.token,
            existing,
            now,
        )
        .map_err(|e| ModuleError::conflict(NAME, e.to_string()))?;
        if self.kubelet_unit {
            files.push(kubelet_unit());
        }
        Ok(files)
    }

    /// What to fix, from what the host holds now (crash leftovers settled first).
    fn actions(&self, state: &State) -> Result<Vec<Action>, ModuleError> {
        let (state, mut actions) = kube_files::settle(NAME, state, &self.paths, &self.journal)?;
        let state = &state;
        let existing = kube_files::existing(NAME, state, &self.paths)?;
        let joined = kube_files::present(NAME, state, KUBELET_CONF);
        let wanted: Vec<Artifact> = self
            .artifacts(&existing, SystemTime::now())?
            .into_iter()
            .filter(|a| !(joined && a.path == BOOTSTRAP))
            .collect();
        actions.extend(kube_files::actions(NAME, state, &wanted)?);
        Ok(actions)
    }
}

impl Module for KubeJoinControlPlane {
    fn name(&self) -> &'static str {
        NAME
    }

    fn gather(&self) -> String {
        // kubelet.conf holds a client key: only whether it exists matters.
        let mut script = kube_files::gather(&self.paths, &self.journal);
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
    use kprov_controlplane::init_files;
    use serde_json::json;

    /// The first master's files (fast ECDSA keys) and the `shared` value
    /// `kube_join_info: {control_plane: true}` would register from them.
    fn first_master() -> (Vec<Artifact>, serde_json::Value) {
        let mut p = ClusterParams::new("1.30.2".parse().unwrap(), "10.1.0.10".parse().unwrap());
        p.key_algorithm = KeyAlgorithm::EcdsaP256;
        p.control_plane_endpoint = Some("10.1.0.10:6443".into());
        let m1 = NodeParams::new("master", "10.1.0.10".parse().unwrap());
        let files = init_files(&p, &m1, &Existing::empty(), SystemTime::now()).unwrap();
        let text = |path: &str| {
            String::from_utf8_lossy(&files.iter().find(|a| a.path == path).unwrap().content)
                .into_owned()
        };
        let mut shared = serde_json::Map::new();
        for (field, path) in SHARED {
            shared.insert(field.into(), json!(text(path)));
        }
        let ca = text("/etc/kubernetes/pki/ca.crt");
        shared.insert("token".into(), json!("abcdef.0123456789abcdef"));
        shared.insert(
            "discovery_hash".into(),
            json!(discovery_hash(ca.as_bytes()).unwrap()),
        );
        shared.insert("changed".into(), json!(false));
        (files, serde_json::Value::Object(shared))
    }

    fn args(shared: &serde_json::Value) -> serde_json::Value {
        json!({
            "kubernetes_version": "1.30.2",
            "advertise_address": "10.1.0.10",
            "control_plane_endpoint": "10.1.0.10",
            "node_name": "master2",
            "node_address": "10.1.0.11",
            "kubelet_unit": true,
            "shared": shared,
            "etcd_members": "master=10.1.0.10,master2=10.1.0.11,master3=10.1.0.12,",
        })
    }

    #[test]
    fn members_before_this_node_are_joined() {
        let (_, shared) = first_master();
        let m = KubeJoinControlPlane::build(args(&shared)).unwrap();
        let names: Vec<&str> = m.members.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["master"]);
        for p in [
            "/etc/kubernetes/pki/ca.key",
            "/etc/kubernetes/pki/sa.pub",
            "/etc/kubernetes/pki/apiserver.crt",
            "/etc/kubernetes/manifests/etcd.yaml",
            BOOTSTRAP,
            "/etc/systemd/system/kubelet.service",
        ] {
            assert!(m.paths.iter().any(|x| x == p), "{p} missing");
        }
        assert!(!m.paths.iter().any(|x| x.ends_with("super-admin.conf")));
        let list = parse_members(&json!(["a=10.0.0.1", "b=10.0.0.2"])).unwrap();
        assert_eq!(members_before(list, "c").len(), 2);
    }

    #[test]
    fn errors_name_the_field_never_the_key() {
        let (_, shared) = first_master();
        let key = shared["ca_key"].as_str().unwrap().to_string();
        let body: String = key.lines().nth(1).unwrap().to_string();
        let mut seen: Vec<String> = Vec::new();
        let mut missing = shared.clone();
        missing.as_object_mut().unwrap().remove("etcd_ca_key");
        let e = KubeJoinControlPlane::build(args(&missing))
            .unwrap_err()
            .to_string();
        seen.push(e.clone());
        assert!(
            e.contains("shared.etcd_ca_key") && e.contains("kube_join_info"),
            "{e}"
        );
        // A key of the wrong kind where a string belongs, and a CA that does not match
        // the pin: refused, without echoing anything secret.
        let mut wrong = shared.clone();
        wrong["ca_key"] = json!(["not", "a", "string"]);
        let e = KubeJoinControlPlane::build(args(&wrong))
            .unwrap_err()
            .to_string();
        seen.push(e.clone());
        assert!(e.contains("shared.ca_key must be a string"), "{e}");
        let mut pin = shared.clone();
        pin["discovery_hash"] = json!("sha256:00");
        let e = KubeJoinControlPlane::build(args(&pin))
            .unwrap_err()
            .to_string();
        seen.push(e.clone());
        assert!(e.contains("refusing"), "{e}");
        let mut token = shared.clone();
        token["token"] = json!("abcdef.SECRETSECRETSECR");
        let e = KubeJoinControlPlane::build(args(&token))
            .unwrap_err()
            .to_string();
        seen.push(e.clone());
        assert!(!e.contains("SECRET"), "{e}");
        let mut no_endpoint = args(&shared);
        no_endpoint["control_plane_endpoint"] = json!("");
        let e = KubeJoinControlPlane::build(no_endpoint)
            .unwrap_err()
            .to_string();
        seen.push(e.clone());
        assert!(e.contains("control_plane.endpoint"), "{e}");
        let mut bad = args(&shared);
        bad["etcd_members"] = json!("master=not-an-ip");
        let e = KubeJoinControlPlane::build(bad).unwrap_err().to_string();
        seen.push(e.clone());
        assert!(e.contains("not an IP address"), "{e}");
        assert!(seen.iter().all(|e| !e.contains(&body)), "{seen:?}");
        let m = KubeJoinControlPlane::build(args(&shared)).unwrap();
        let debug = format!("{m:?}");
        assert!(
            !debug.contains("PRIVATE") && !debug.contains("0123456789abcdef"),
            "{debug}"
        );
    }

    /// A real cycle in a temporary root: the shared files byte for byte with kubeadm's
    /// modes, this node's leaves, and a second run that changes nothing.
    #[test]
    fn real_cycle_copies_the_shared_files_and_is_idempotent() {
        let (first, shared) = first_master();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_string_lossy().into_owned();
        let m = KubeJoinControlPlane::build(args(&shared)).unwrap();
        if std::path::Path::new(KUBELET_CONF).exists() {
            return; // the probe of kubelet.conf stays at the real path
        }
        // Compute for the real paths, write under root.
        let rooted = |actions: Vec<Action>| -> Vec<Action> {
            actions
                .into_iter()
                .map(|a| match a {
                    Action::Write {
                        mut artifact,
                        old_sha,
                    } => {
                        artifact.path = format!("{root}{}", artifact.path);
                        Action::Write { artifact, old_sha }
                    }
                    Action::Chmod { path, from, to } => Action::Chmod {
                        path: format!("{root}{path}"),
                        from,
                        to,
                    },
                    other => other,
                })
                .collect()
        };
        let mut under_root = KubeJoinControlPlane::build(args(&shared)).unwrap();
        under_root.paths = m.paths.iter().map(|p| format!("{root}{p}")).collect();
        under_root.journal = format!("{root}{}", m.journal);
        let to_real = |s: State| State {
            fields: s
                .fields
                .into_iter()
                .map(|(k, v)| (k.strip_prefix(&root).unwrap_or(&k).to_string(), v))
                .collect(),
        };
        let state = to_real(crate::util::testutil::gather(&under_root).state());
        let actions = rooted(m.actions(&state).unwrap());
        assert!(!actions.is_empty());
        let summary = format!("{:?}", m.diff(&state).unwrap());
        assert!(!summary.contains("PRIVATE KEY") && !summary.contains("0123456789abcdef"));
        let report =
            crate::util::testutil::run_fragment(&kube_files::apply(&actions, &under_root.journal));
        assert!(report.ok() && report.changed, "{report:?}");
        let mode = |p: &str| crate::util::testutil::mode_under(&root, p);
        for (_, path) in SHARED {
            let want = first.iter().find(|a| a.path == path).unwrap();
            assert_eq!(
                std::fs::read(format!("{root}{path}")).unwrap(),
                want.content,
                "{path}"
            );
            assert_eq!(mode(path), want.mode, "{path}");
        }
        assert_eq!(mode("/etc/kubernetes/pki/ca.key"), 0o600);
        assert_eq!(mode("/etc/kubernetes/pki/sa.pub"), 0o600);
        assert_eq!(mode("/etc/kubernetes/pki/ca.crt"), 0o644);
        assert_eq!(mode(BOOTSTRAP), 0o600);
        let again = to_real(crate::util::testutil::gather(&under_root).state());
        let fresh = KubeJoinControlPlane::build(args(&shared)).unwrap();
        assert!(
            fresh.actions(&again).unwrap().is_empty(),
            "second run must change nothing"
        );
    }
}
