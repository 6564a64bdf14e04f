//! The CRI gRPC handlers: thin translations between `runtime.v1` messages and
//! the [`crate::service::Agent`].

mod convert;
mod events;
mod image_service;
mod runtime_service;
mod server;

pub use image_service::ImageHandler;
pub use runtime_service::RuntimeHandler;
pub use server::serve;

/// CRI API version kubelet requires.
pub const CRI_VERSION: &str = "0.1.0";
/// Our runtime name in VersionResponse.
pub const RUNTIME_NAME: &str = "kprov-agent";
