//! Arguments of `kube_apply`.

use schemars::JsonSchema;
use serde::Deserialize;

/// The module name as written in playbooks.
pub const MODULE: &str = "kube_apply";

/// `kube_apply` arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Manifest files, or directories whose `*.yaml`, `*.yml` and `*.json` files are
    /// applied in name order, on the host.
    pub manifests: Vec<String>,
    /// Kubeconfig on the host with the credentials to use.
    #[serde(default = "default_kubeconfig")]
    pub kubeconfig: String,
    /// Field manager of the server-side apply.
    #[serde(default = "default_field_manager")]
    pub field_manager: String,
    /// Seconds to wait for each answer of the API server.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Kubeconfig that creates the `kubeadm:cluster-admins` ClusterRoleBinding while
    /// `kubeconfig`'s identity has no rights yet (kubeadm 1.29+: super-admin.conf). Used
    /// for that one object only, and only when the file exists.
    #[serde(default)]
    pub bootstrap_kubeconfig: Option<String>,
    /// Nodes to label, annotate and taint once they have registered (kubeadm's
    /// upload-config CRI-socket annotation and mark-control-plane).
    #[serde(default)]
    pub mark_nodes: Option<MarkNodes>,
}

/// The cluster's nodes and how kubeadm marks them.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkNodes {
    /// The nodes' CRI endpoint (`kubeadm.alpha.kubernetes.io/cri-socket`).
    pub cri_socket: String,
    /// Masters: control-plane labels and, unless `schedulable`, the NoSchedule taint.
    #[serde(default)]
    pub control_plane: Vec<String>,
    /// Workers: the annotation only.
    #[serde(default)]
    pub workers: Vec<String>,
    /// Masters run ordinary workloads: the control-plane taint is removed.
    #[serde(default)]
    pub schedulable: bool,
}

/// One node's marks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeMark {
    pub name: String,
    pub cri_socket: String,
    pub control_plane: bool,
    pub schedulable: bool,
}

impl Args {
    /// Every node to mark, masters first (a host in both lists is a master).
    pub fn node_marks(&self) -> Vec<NodeMark> {
        let Some(m) = &self.mark_nodes else {
            return Vec::new();
        };
        let mark = |name: &String, control_plane: bool| NodeMark {
            name: name.clone(),
            cri_socket: m.cri_socket.clone(),
            control_plane,
            schedulable: m.schedulable,
        };
        let mut out: Vec<NodeMark> = m.control_plane.iter().map(|n| mark(n, true)).collect();
        for w in &m.workers {
            if !m.control_plane.contains(w) {
                out.push(mark(w, false));
            }
        }
        out
    }
}

fn default_kubeconfig() -> String {
    "/etc/kubernetes/admin.conf".into()
}

fn default_field_manager() -> String {
    "kprov".into()
}

fn default_timeout() -> u64 {
    10
}

impl Args {
    /// Parses rendered task arguments; the error names the field and the fix.
    pub fn parse(value: serde_json::Value) -> Result<Args, String> {
        let args: Args =
            serde_json::from_value(value).map_err(|e| format!("{MODULE}: bad arguments: {e}"))?;
        for path in args
            .manifests
            .iter()
            .chain([&args.kubeconfig])
            .chain(args.bootstrap_kubeconfig.as_ref())
        {
            if !path.starts_with('/') || path.contains(['\n', '\t']) {
                return Err(format!(
                    "{MODULE}: `{}` must be an absolute path on the host without tabs or newlines",
                    path.escape_debug()
                ));
            }
        }
        if args.manifests.is_empty() {
            return Err(format!("{MODULE}: `manifests` lists no file or directory"));
        }
        for node in args.node_marks() {
            let name_ok = !node.name.is_empty()
                && node.name.len() <= 253
                && node
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
            if !name_ok || node.cri_socket.is_empty() {
                return Err(format!(
                    "{MODULE}: node `{}` needs a lower-case DNS name and a cri_socket",
                    node.name.escape_debug()
                ));
            }
        }
        if args.field_manager.is_empty() || args.timeout == 0 {
            return Err(format!(
                "{MODULE}: `field_manager` must not be empty and `timeout` must be at least 1"
            ));
        }
        Ok(args)
    }

    /// JSON schema of the arguments (for `kprov schema` and editors).
    pub fn schema() -> schemars::Schema {
        schemars::schema_for!(Args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_checks() {
        let a = Args::parse(json!({"manifests": ["/etc/kubernetes/addons"]})).unwrap();
        assert_eq!(a.kubeconfig, "/etc/kubernetes/admin.conf");
        assert_eq!(a.field_manager, "kprov");
        for bad in [
            json!({"manifests": []}),
            json!({"manifests": ["relative.yaml"]}),
            json!({"manifests": ["/a\nb"]}),
            json!({"manifests": ["/a"], "timeout": 0}),
            json!({"manifests": ["/a"], "typo": 1}),
            json!({"manifests": ["/a"], "bootstrap_kubeconfig": "super-admin.conf"}),
            json!({"manifests": ["/a"], "mark_nodes": {"cri_socket": "unix:///x", "workers": ["Bad Name"]}}),
            json!({"manifests": ["/a"], "mark_nodes": {"cri_socket": "", "workers": ["n1"]}}),
        ] {
            assert!(Args::parse(bad.clone()).is_err(), "{bad}");
        }
        let a = Args::parse(json!({"manifests": ["/a"], "mark_nodes": {
            "cri_socket": "unix:///run/kprov/agent.sock",
            "control_plane": ["m1"], "workers": ["m1", "n1"]}}))
        .unwrap();
        let marks = a.node_marks();
        assert_eq!(marks.len(), 2);
        assert!(marks[0].control_plane && !marks[1].control_plane);
    }
}
