//! Pod sandboxes without a pause process: the pod's network, IPC and UTS
//! namespaces are pinned by bind mounts, a shared PID namespace (pid mode POD) is
//! held by a tiny pod init, and the pod's resolv.conf, hostname, hosts and
//! /dev/shm live in the sandbox directory.

mod files;
mod namespaces;
pub mod pod_init;

pub use files::{write_hosts, write_pod_files, Dns};
pub use namespaces::{pin_namespaces, unpin, PinnedNamespaces};
