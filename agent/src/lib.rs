//! kprov-agent: a CRI v1 container runtime (images, pod sandboxes, containers
//! through runc, CNI networking, CRI logs, exec, stats, restart recovery).

/// The CRI `runtime.v1` messages, server traits and clients, generated from
/// the vendored `proto/api.proto`.
pub mod api {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("runtime.v1");
}

pub mod client;
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
pub mod stream;
pub mod util;

/// The registry client the agent pulls with (tests push their images with it).
pub use oci_client;
/// The gRPC crate the API is generated with (status codes, channels).
pub use tonic;
