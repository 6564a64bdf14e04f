//! Networking: static routes and pod networks (bridge CNI, CNI manifests).

pub(crate) mod cni_bridge;
pub(crate) mod cni_manifest;
pub(crate) mod route;
