//! The one table of modules: each entry has the name written in YAML, a one-line doc, the
//! JSON schema of its arguments and how it is built. [`crate::names`], [`crate::build`]
//! and [`crate::arg_schema`] read it; the engine adds the modules it runs itself
//! (`template`, `kube_apply`) as entries of the same type, and `kprov modules` lists the
//! union. Aliases (`copy` for `file`, `shell` beside `command`) are entries of their own.
//!
//! (Container image registries are elsewhere: [`crate::registry_name`].)

use schemars::{schema_for, Schema};

use crate::files::{block, directory, file, hosts, line};
use crate::kube::{
    etcd_member, kube_init, kube_join, kube_join_control_plane, kube_join_info, kube_reset,
};
use crate::network::{cni_bridge, cni_manifest, route};
use crate::packages::{apt_repo, package, yum_repo};
use crate::runtime::{containerd_config, containerd_hosts, crictl_config};
use crate::system::{command, firewall, hostname, kernel_module, selinux, service, swap, sysctl};
use crate::{HostContext, Module, ModuleError};

/// Builds a module from its name (as written: aliases share a builder), its YAML
/// arguments (as JSON) and the host's context.
pub type Builder =
    fn(&str, serde_json::Value, &HostContext) -> Result<Box<dyn Module>, ModuleError>;

/// One module as playbooks name it.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The name written in a task, e.g. `file`.
    pub name: &'static str,
    /// What it does, in one line (Markdown: `code` in backticks, never `|`).
    pub doc: &'static str,
    /// The JSON schema of its arguments, with their descriptions.
    pub schema: fn() -> Schema,
    /// How a host module is built; `None` for modules the engine runs itself.
    pub build: Option<Builder>,
}

fn boxed<M: Module + 'static>(m: Result<M, ModuleError>) -> Result<Box<dyn Module>, ModuleError> {
    m.map(|m| Box::new(m) as Box<dyn Module>)
}

/// Every host module, sorted by name.
pub static ENTRIES: &[Entry] = &[
    Entry {
        name: "apt_repo",
        doc: "key (given, or `key_url` fetched by the host) in /etc/apt/keyrings, `signed-by` \
              source, `apt-get update` of it when changed, failing when the Release does not \
              verify",
        schema: || schema_for!(apt_repo::Args),
        build: Some(|_, a, _| boxed(apt_repo::AptRepo::build(a))),
    },
    Entry {
        name: "block",
        doc: "`# BEGIN/END KPROV MANAGED BLOCK NAME` block in a text file",
        schema: || schema_for!(block::Args),
        build: Some(|_, a, _| boxed(block::Block::build(a))),
    },
    Entry {
        name: "cni_bridge",
        doc: "bridge CNI: this host's slice of the pod CIDR in a conflist, routes to the other \
              hosts' slices (live and at boot), FORWARD accepted",
        schema: || schema_for!(cni_bridge::Args),
        build: Some(|_, a, _| boxed(cni_bridge::CniBridge::build(a))),
    },
    Entry {
        name: "cni_manifest",
        doc: "flannel manifest written by kprov, or the operator's calico.yaml adapted (pool \
              CIDR, encapsulation, autodetection, images), in /etc/kubernetes/addons",
        schema: || schema_for!(cni_manifest::Args),
        build: Some(|_, a, _| boxed(cni_manifest::CniManifest::build(a))),
    },
    Entry {
        name: "command",
        doc: "argv run without a shell, with creates/removes/unless; stdout, stderr and rc \
              captured",
        schema: || schema_for!(command::CommandArgs),
        build: Some(|n, a, _| boxed(command::Command::build(n, a))),
    },
    Entry {
        name: "containerd_config",
        doc: "toml_edit of config.toml: CRI on, SystemdCgroup, sandbox image, `config_path`, \
              registry credentials, oom_score",
        schema: || schema_for!(containerd_config::Args),
        build: Some(|_, a, _| boxed(containerd_config::ContainerdConfig::build(a))),
    },
    Entry {
        name: "containerd_hosts",
        doc: "one registry's `certs.d/<host>/hosts.toml`: server, plain HTTP, CA, skip_verify, \
              client cert, mirrors",
        schema: || schema_for!(containerd_hosts::Args),
        build: Some(|_, a, _| boxed(containerd_hosts::ContainerdHosts::build(a))),
    },
    Entry {
        name: "copy",
        doc: "`file` by its Ansible name; `src` reads the role's `files/SRC`, `dest` is `path`",
        schema: || schema_for!(file::Args),
        build: Some(|n, a, _| boxed(file::FileModule::build(n, a))),
    },
    Entry {
        name: "crictl_config",
        doc: "/etc/crictl.yaml endpoints, timeout, debug",
        schema: || schema_for!(crictl_config::Args),
        build: Some(|_, a, _| boxed(crictl_config::CrictlConfig::build(a))),
    },
    Entry {
        name: "directory",
        doc: "directory with mode, owner, group; or absent (recursive)",
        schema: || schema_for!(directory::Args),
        build: Some(|_, a, _| boxed(directory::Directory::build(a))),
    },
    Entry {
        name: "etcd_member",
        doc: "adds a member to a running etcd cluster (etcdctl), or says why it cannot yet",
        schema: || schema_for!(etcd_member::Args),
        build: Some(|_, a, _| boxed(etcd_member::EtcdMember::build(a))),
    },
    Entry {
        name: "file",
        doc: "exact content (text or `content_base64`), mode, owner, group; or absent",
        schema: || schema_for!(file::Args),
        build: Some(|n, a, _| boxed(file::FileModule::build(n, a))),
    },
    Entry {
        name: "firewall",
        doc: "firewalld/ufw stopped and disabled when present",
        schema: || schema_for!(firewall::Args),
        build: Some(|_, a, _| boxed(firewall::Firewall::build(a))),
    },
    Entry {
        name: "hostname",
        doc: "/etc/hostname and the live host name",
        schema: || schema_for!(hostname::Args),
        build: Some(|_, a, _| boxed(hostname::Hostname::build(a))),
    },
    Entry {
        name: "hosts",
        doc: "managed block of `address names…` in /etc/hosts",
        schema: || schema_for!(hosts::Args),
        build: Some(|_, a, _| boxed(hosts::Hosts::build(a))),
    },
    Entry {
        name: "kernel_module",
        doc: "`modprobe` when not loaded or built in + modules-load.d list",
        schema: || schema_for!(kernel_module::Args),
        build: Some(|_, a, _| boxed(kernel_module::KernelModule::build(a))),
    },
    Entry {
        name: "kube_init",
        doc: "first master's PKI, kubeconfigs, static pods, kubelet files, bootstrap token \
              (never register it)",
        schema: || schema_for!(kube_init::Args),
        build: Some(|_, a, _| boxed(kube_init::KubeInit::build(a))),
    },
    Entry {
        name: "kube_join",
        doc: "worker files of a join: bootstrap-kubelet.conf, pki/ca.crt, kubelet files",
        schema: || schema_for!(kube_join::Args),
        build: Some(|_, a, _| boxed(kube_join::KubeJoin::build(a))),
    },
    Entry {
        name: "kube_join_control_plane",
        doc: "an additional master: shared CAs and keys, its own leaves, kubeconfigs, static \
              pods, kubelet files",
        schema: || schema_for!(kube_join_control_plane::Args),
        build: Some(|_, a, _| boxed(kube_join_control_plane::KubeJoinControlPlane::build(a))),
    },
    Entry {
        name: "kube_join_info",
        doc: "reads the master's CA, token and discovery hash back (with `control_plane: true` \
              also the shared keys), for `register`",
        schema: || schema_for!(kube_join_info::Args),
        build: Some(|_, a, _| boxed(kube_join_info::KubeJoinInfo::build(a))),
    },
    Entry {
        name: "kube_reset",
        doc: "what `kubeadm reset` cleans, idempotent from any partial state",
        schema: || schema_for!(kube_reset::Args),
        build: Some(|_, a, _| boxed(kube_reset::KubeReset::build(a))),
    },
    Entry {
        name: "line",
        doc: "replace the last line a regexp matches, or append; or remove matching lines",
        schema: || schema_for!(line::Args),
        build: Some(|_, a, _| boxed(line::Line::build(a))),
    },
    Entry {
        name: "package",
        doc: "apt-get/dnf/yum install/remove, exact versions, hold/versionlock",
        schema: || schema_for!(package::Args),
        build: Some(|_, a, ctx| boxed(package::Package::build(a, ctx))),
    },
    Entry {
        name: "route",
        doc: "static routes live (`ip route replace`/`del`) and replayed at boot by an enabled \
              oneshot unit",
        schema: || schema_for!(route::Args),
        build: Some(|_, a, _| boxed(route::RouteSet::build(a))),
    },
    Entry {
        name: "selinux",
        doc: "`setenforce 0` when enforcing; `SELINUX=permissive` when the config exists",
        schema: || schema_for!(selinux::Args),
        build: Some(|_, a, _| boxed(selinux::Selinux::build(a))),
    },
    Entry {
        name: "service",
        doc: "unit file + drop-ins, daemon-reload when they changed, enabled, run state",
        schema: || schema_for!(service::Args),
        build: Some(|_, a, _| boxed(service::Service::build(a))),
    },
    Entry {
        name: "shell",
        doc: "sh script, with creates/removes/unless; stdout, stderr and rc captured",
        schema: || schema_for!(command::ShellArgs),
        build: Some(|n, a, _| boxed(command::Command::build(n, a))),
    },
    Entry {
        name: "swap",
        doc: "`swapoff -a` when swap is active; swap lines in fstab commented",
        schema: || schema_for!(swap::Args),
        build: Some(|_, a, _| boxed(swap::Swap::build(a))),
    },
    Entry {
        name: "sysctl",
        doc: "sysctl.d file + live values in /proc/sys, written only when they differ",
        schema: || schema_for!(sysctl::Args),
        build: Some(|_, a, _| boxed(sysctl::Sysctl::build(a))),
    },
    Entry {
        name: "yum_repo",
        doc: "`/etc/yum.repos.d/NAME.repo`",
        schema: || schema_for!(yum_repo::Args),
        build: Some(|_, a, _| boxed(yum_repo::YumRepo::build(a))),
    },
];

/// The entry of a host module.
pub fn find(name: &str) -> Option<&'static Entry> {
    ENTRIES.iter().find(|e| e.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_and_documented_in_one_line() {
        for pair in ENTRIES.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} then {}",
                pair[0].name,
                pair[1].name
            );
        }
        for e in ENTRIES {
            assert!(e.build.is_some(), "{} has no builder", e.name);
            assert!(!e.doc.is_empty(), "{} has no doc", e.name);
            assert!(
                !e.doc.contains(['|', '\n']) && !e.doc.contains("  "),
                "{}: the doc must be one Markdown table cell: {}",
                e.name,
                e.doc
            );
            assert!((e.schema)().as_value().is_object(), "{}", e.name);
        }
    }

    #[test]
    fn aliases_have_their_own_schema() {
        let props = |name: &str| (find(name).unwrap().schema)().as_value()["properties"].clone();
        assert!(props("shell").get("script").is_some());
        assert!(props("command").get("argv").is_some());
        assert!(props("command").get("script").is_none());
        assert_eq!(props("copy"), props("file"));
    }
}
