//! The container runtime: containerd's config and registry hosts, crictl, registry names.

pub(crate) mod containerd_config;
pub(crate) mod containerd_hosts;
pub(crate) mod crictl_config;
pub mod registry_name;
