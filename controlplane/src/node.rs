//! What kubeadm puts on Node objects (upload-config and mark-control-plane).

use crate::ClusterParams;
use std::collections::BTreeMap;

/// A taint as kubeadm sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    /// Taint key.
    pub key: String,
    /// Always `NoSchedule` here.
    pub effect: String,
}

/// Labels, annotations and taints a node must carry once it registered. Taints
/// must be added to the node's existing list (get + patch), not replace it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeMarks {
    /// Labels to set.
    pub labels: BTreeMap<String, String>,
    /// Annotations to set.
    pub annotations: BTreeMap<String, String>,
    /// Taints to add if missing.
    pub taints: Vec<Taint>,
}

/// The CRI-socket annotation for every node; for control-plane nodes also the
/// `control-plane` and `exclude-from-external-load-balancers` labels and the
/// `node-role.kubernetes.io/control-plane:NoSchedule` taint.
pub fn node_marks(p: &ClusterParams, control_plane: bool) -> NodeMarks {
    let mut marks = NodeMarks {
        labels: BTreeMap::new(),
        annotations: BTreeMap::from([(
            "kubeadm.alpha.kubernetes.io/cri-socket".to_string(),
            p.cri_socket.clone(),
        )]),
        taints: Vec::new(),
    };
    if control_plane {
        marks.labels.insert(
            "node-role.kubernetes.io/control-plane".into(),
            String::new(),
        );
        marks.labels.insert(
            "node.kubernetes.io/exclude-from-external-load-balancers".into(),
            String::new(),
        );
        marks.taints.push(Taint {
            key: "node-role.kubernetes.io/control-plane".into(),
            effect: "NoSchedule".into(),
        });
    }
    marks
}
