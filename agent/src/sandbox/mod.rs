//! Pod sandboxes without a pause process: the pod's network, IPC and UTS
//! namespaces are pinned by bind mounts, and the pod's resolv.conf, hostname,
//! hosts and /dev/shm live in the sandbox directory.

mod files;
mod namespaces;

pub use files::{write_hosts, write_pod_files, Dns};
pub use namespaces::{pin_namespaces, unpin, PinnedNamespaces};
