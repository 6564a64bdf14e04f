//! Containers: the OCI runtime spec built from a CRI request, the overlayfs
//! rootfs, and cgroup statistics.

mod caps;
mod devices;
mod propagation;
mod rootfs;
mod seccomp;
mod spec;
mod stats;
mod user;

pub use caps::held_by_self as held_capabilities;
pub use rootfs::{mount_rootfs, unmount_rootfs};
pub use spec::{build_spec, cgroups_path, linux_resources_json, SpecInput};
pub use stats::{read_cgroup_stats, CgroupStats};
pub use user::resolve_user;
