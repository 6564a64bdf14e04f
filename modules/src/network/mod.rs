//! Networking: static routes and pod networks (bridge CNI, CNI manifests).

pub(crate) mod cni_bridge;
pub(crate) mod cni_manifest;
pub(crate) mod pod_rules;
pub(crate) mod pod_slices;
pub(crate) mod route;
pub(crate) mod route_spec;

#[cfg(test)]
mod netns;
