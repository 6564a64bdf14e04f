//! What `kubeadm reset` cleans on a node.

/// Paths `kubeadm reset` cleans. Directories are emptied, not removed; the
/// kubelet must be stopped and mounts under `/var/lib/kubelet` unmounted first.
/// iptables/IPVS rules, `/etc/cni/net.d` and `$HOME/.kube` are left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetPaths {
    /// Emptied only if `/etc/kubernetes/manifests/etcd.yaml` existed (local etcd
    /// member, removed from the cluster first).
    pub etcd_data_dir: &'static str,
    /// Directories whose contents are deleted.
    pub emptied_dirs: Vec<&'static str>,
    /// Files deleted.
    pub removed_files: Vec<&'static str>,
}

/// The paths of kubeadm's reset phases remove-etcd-member and cleanup-node.
pub fn reset_paths() -> ResetPaths {
    ResetPaths {
        etcd_data_dir: "/var/lib/etcd",
        emptied_dirs: vec![
            "/var/lib/kubelet",
            "/etc/kubernetes/manifests",
            "/etc/kubernetes/pki",
        ],
        removed_files: vec![
            "/etc/kubernetes/admin.conf",
            "/etc/kubernetes/super-admin.conf",
            "/etc/kubernetes/kubelet.conf",
            "/etc/kubernetes/bootstrap-kubelet.conf",
            "/etc/kubernetes/controller-manager.conf",
            "/etc/kubernetes/scheduler.conf",
        ],
    }
}
