//! kubeadm's marks on Node objects: the CRI-socket annotation on every node
//! (upload-config), the control-plane labels and taint on masters
//! (mark-control-plane). A node that has not registered yet is reported as waiting;
//! a node already marked is not written to.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Taint};
use kprov_controlplane::node_marks;
use kube_client::api::{Api, Patch, PatchParams};
use kube_client::Client;
use serde_json::{json, Map, Value};

use super::args::NodeMark;

/// What marking the nodes did.
#[derive(Debug, Default)]
pub(crate) struct Marked {
    /// `mark Node NAME (…)` per node patched (or that a dry run would patch).
    pub changes: Vec<String>,
    /// Nodes not registered yet.
    pub waiting: Vec<String>,
}

/// Labels, annotates and taints every node of `marks` that exists.
pub(crate) async fn mark(
    client: &Client,
    marks: &[NodeMark],
    dry_run: bool,
) -> Result<Marked, String> {
    let api: Api<Node> = Api::all(client.clone());
    let mut out = Marked::default();
    for m in marks {
        let node = api
            .get_opt(&m.name)
            .await
            .map_err(|e| format!("reading Node {}: {e}", m.name))?;
        let Some(node) = node else {
            out.waiting.push(m.name.clone());
            continue;
        };
        let Some((patch, what)) = patch_for(&node, m) else {
            continue;
        };
        let mut params = PatchParams::default();
        if dry_run {
            params = params.dry_run();
        }
        api.patch(&m.name, &params, &Patch::Merge(&patch))
            .await
            .map_err(|e| format!("marking Node {}: {e}", m.name))?;
        out.changes
            .push(format!("mark Node {} ({})", m.name, what.join(", ")));
    }
    Ok(out)
}

/// The merge patch that gives `node` the marks it lacks, and what it does; `None`
/// when it has them all. The taint list is sent whole (a merge patch replaces lists).
pub(crate) fn patch_for(node: &Node, m: &NodeMark) -> Option<(Value, Vec<String>)> {
    let want = node_marks(&m.cri_socket, m.control_plane, m.schedulable);
    let mut what = Vec::new();
    let mut metadata = Map::new();
    for (field, wanted, have) in [
        ("labels", &want.labels, node.metadata.labels.as_ref()),
        (
            "annotations",
            &want.annotations,
            node.metadata.annotations.as_ref(),
        ),
    ] {
        let empty = BTreeMap::new();
        let have = have.unwrap_or(&empty);
        let missing: Map<String, Value> = wanted
            .iter()
            .filter(|(k, v)| have.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        if !missing.is_empty() {
            what.push(format!(
                "{field} {}",
                missing.keys().cloned().collect::<Vec<_>>().join(" ")
            ));
            metadata.insert(field.into(), Value::Object(missing));
        }
    }
    let current: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let is_cp = |t: &Taint| {
        t.key == kprov_controlplane::Taint::control_plane().key && t.effect == "NoSchedule"
    };
    let mut taints = current.clone();
    if m.control_plane && m.schedulable {
        taints.retain(|t| !is_cp(t));
    }
    for t in &want.taints {
        if !taints
            .iter()
            .any(|c| c.key == t.key && c.effect == t.effect)
        {
            taints.push(Taint {
                key: t.key.clone(),
                effect: t.effect.clone(),
                ..Taint::default()
            });
        }
    }
    let mut patch = Map::new();
    if taints != current {
        what.push(if taints.len() > current.len() {
            "taint node-role.kubernetes.io/control-plane:NoSchedule".to_string()
        } else {
            "untaint node-role.kubernetes.io/control-plane:NoSchedule".to_string()
        });
        patch.insert("spec".into(), json!({ "taints": taints }));
    }
    if !metadata.is_empty() {
        patch.insert("metadata".into(), Value::Object(metadata));
    }
    (!patch.is_empty()).then_some((Value::Object(patch), what))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(control_plane: bool, schedulable: bool) -> NodeMark {
        NodeMark {
            name: "m1".into(),
            cri_socket: "unix:///run/kprov/agent.sock".into(),
            control_plane,
            schedulable,
        }
    }

    fn node(patch: Option<&Value>) -> Node {
        let mut v = json!({"metadata": {"name": "m1", "labels": {"kubernetes.io/hostname": "m1"}},
            "spec": {"taints": [{"key": "other", "effect": "NoExecute"}]}});
        if let Some(p) = patch {
            merge(&mut v, p);
        }
        serde_json::from_value(v).unwrap()
    }

    /// RFC 7386 merge, as the API server applies a merge patch.
    fn merge(target: &mut Value, patch: &Value) {
        match (target, patch) {
            (Value::Object(t), Value::Object(p)) => {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
            (t, p) => *t = p.clone(),
        }
    }

    #[test]
    fn a_master_gets_labels_annotation_and_taint_once() {
        let (patch, what) = patch_for(&node(None), &mark(true, false)).unwrap();
        assert_eq!(
            patch["metadata"]["labels"]["node-role.kubernetes.io/control-plane"],
            ""
        );
        assert_eq!(
            patch["metadata"]["annotations"]["kubeadm.alpha.kubernetes.io/cri-socket"],
            "unix:///run/kprov/agent.sock"
        );
        // The node's own taint stays, the control-plane taint is added.
        let taints = patch["spec"]["taints"].as_array().unwrap();
        assert_eq!(taints.len(), 2);
        assert!(what.iter().any(|w| w.starts_with("taint ")), "{what:?}");
        // Applied, nothing is left to do.
        let marked = node(Some(&patch));
        assert!(patch_for(&marked, &mark(true, false)).is_none());
        // schedulable: the control-plane taint goes, the other stays.
        let (patch, what) = patch_for(&marked, &mark(true, true)).unwrap();
        assert_eq!(
            patch["spec"]["taints"],
            json!([{"key": "other", "effect": "NoExecute"}])
        );
        assert!(what.iter().any(|w| w.starts_with("untaint ")), "{what:?}");
        assert!(patch.get("metadata").is_none());
    }

    #[test]
    fn a_worker_gets_only_the_cri_socket_annotation() {
        let (patch, _) = patch_for(&node(None), &mark(false, false)).unwrap();
        assert!(patch.get("spec").is_none());
        assert!(patch["metadata"].get("labels").is_none());
        assert!(patch["metadata"]["annotations"]
            .get("kubeadm.alpha.kubernetes.io/cri-socket")
            .is_some());
    }
}
