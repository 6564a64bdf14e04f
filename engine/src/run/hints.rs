//! Known failures and how to fix them (the manual procedure's failure table).

/// (text to look for in the error or stderr, hint).
const HINTS: &[(&str, &str)] = &[
    ("bridge-nf-call-iptables", "load `br_netfilter` now and at boot (kernel_module task) before setting the bridge sysctls"),
    ("ip_forward", "set net.ipv4.ip_forward = 1 in /etc/sysctl.d and apply it (sysctl task)"),
    ("unknown service runtime.v1.RuntimeService", "containerd's `cri` plugin is disabled: remove it from disabled_plugins in /etc/containerd/config.toml (containerd_config task) and restart containerd"),
    ("dockershim.sock", "write /etc/crictl.yaml with runtime-endpoint and image-endpoint (crictl_config task)"),
    ("failed to pull image", "the image is unreachable from the host: set registry mirrors / sandbox_image in the cluster spec to a registry the host can reach"),
    ("kubelet.conf already exists", "an earlier join failed half-way: run `kprov reset --limit <host>` and apply again"),
    ("localhost:8080", "no kubeconfig for this user: install the admin kubeconfig (`kprov kubeconfig`)"),
    ("cni plugin not initialized", "no CNI is applied: set `cni` in the cluster spec and apply"),
    ("cgroup driver", "the runtime's and the kubelet's cgroup drivers differ: both come from `runtime.cgroup_driver` in the cluster spec"),
    ("running with swap on", "turn swap off now and in /etc/fstab (swap task)"),
    ("not found in directory /lib/modules", "the host has no module tree for its kernel (a container or minimal image?): build the module into the kernel, install the kernel's modules package, or drop the module from `os.kernel_modules`"),
    ("Could not get lock", "another package manager run holds the lock (unattended-upgrades?): wait for it, or stop it, then apply again"),
    ("Unable to locate package", "the package sources do not offer this package: check the repository settings in the cluster spec (or the lab's apt repository)"),
    ("a password is required", "`become: true` needs passwordless sudo for this user (NOPASSWD in sudoers), or connect as root"),
    ("Read-only file system", "the target path is on a read-only filesystem"),
    ("No space left on device", "the host's disk is full"),
];

/// The first hint whose pattern appears in any of `texts`.
pub fn for_texts<'a>(texts: impl IntoIterator<Item = &'a str> + Clone) -> Option<String> {
    HINTS.iter().find_map(|(pattern, hint)| {
        texts
            .clone()
            .into_iter()
            .any(|t| t.contains(pattern))
            .then(|| (*hint).to_string())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_manual_procedures_failures() {
        let h = super::for_texts([
            "sysctl: cannot stat /proc/sys/net/bridge/bridge-nf-call-iptables: No such file",
        ]);
        assert!(h.unwrap().contains("br_netfilter"));
        assert!(super::for_texts(["all fine"]).is_none());
    }
}
