//! What kubeadm puts on Node objects (upload-config and mark-control-plane).

use std::collections::BTreeMap;

/// A taint as kubeadm sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    /// Taint key.
    pub key: String,
    /// Always `NoSchedule` here.
    pub effect: String,
}

impl Taint {
    /// The control-plane taint kubeadm puts on masters.
    pub fn control_plane() -> Taint {
        Taint {
            key: "node-role.kubernetes.io/control-plane".into(),
            effect: "NoSchedule".into(),
        }
    }

    /// `key:effect`, as kubelet's `--register-with-taints` takes it.
    pub fn flag(&self) -> String {
        format!("{}:{}", self.key, self.effect)
    }
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
/// `control-plane` and `exclude-from-external-load-balancers` labels and, unless
/// `schedulable`, the `node-role.kubernetes.io/control-plane:NoSchedule` taint.
pub fn node_marks(cri_socket: &str, control_plane: bool, schedulable: bool) -> NodeMarks {
    let mut marks = NodeMarks {
        labels: BTreeMap::new(),
        annotations: BTreeMap::from([(
            "kubeadm.alpha.kubernetes.io/cri-socket".to_string(),
            cri_socket.to_string(),
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
        if !schedulable {
            marks.taints.push(Taint::control_plane());
        }
    }
    marks
}
