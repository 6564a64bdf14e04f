//! Kubernetes nodes: init, joins, join material, reset, the files they write, etcd members.

pub(crate) mod etcd_member;
pub(crate) mod kube_cluster;
pub(crate) mod kube_files;
pub(crate) mod kube_init;
pub(crate) mod kube_join;
pub(crate) mod kube_join_control_plane;
pub(crate) mod kube_join_info;
pub(crate) mod kube_reset;
