//! kprov-agent: a CRI v1 container runtime (images, pod sandboxes, containers
//! through runc, CNI networking, CRI logs, exec, stats, restart recovery).

/// The CRI `runtime.v1` messages, server traits and clients, generated from
/// the vendored `proto/api.proto`.
pub mod api {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("runtime.v1");
}

pub mod cni;
pub mod config;
pub mod container;
pub mod cri;
pub mod image;
pub mod logs;
pub mod monitor;
pub mod runc;
pub mod sandbox;
pub mod service;
pub mod state;
pub mod util;
