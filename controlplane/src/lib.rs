//! Control-plane artifacts (see ../shared/specs/kubeadm-equivalent.md).
