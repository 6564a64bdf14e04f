//! Images: registry pulls into a content-addressed store, layer unpacking into
//! snapshot directories, and the image index that ListImages/ImageStatus serve.

mod hashing_writer;
mod pull;
mod pull_error;
mod pull_process;
mod reference;
mod store;
mod unpack;

pub use pull::{install_crypto_provider, PullAuth, Puller};
pub use pull_error::PullFailure;
pub use pull_process::{pull_in_child, run_pull_process, PullRequest, PULL_ARG};
pub use reference::{normalize, ImageRef};
pub use store::{ImageRecord, ImageRuntimeConfig, ImageStore};
pub use unpack::unpack_layer;

/// Errors from the image service.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("invalid image reference {0:?}: {1}")]
    BadReference(String, String),
    #[error("pulling {reference}: {message}")]
    Pull {
        reference: String,
        kind: PullFailure,
        message: String,
    },
    #[error("digest mismatch for {digest}: got {actual}")]
    Digest { digest: String, actual: String },
    #[error("unpacking layer {digest}: {message}")]
    Unpack { digest: String, message: String },
    #[error("image store: {0}")]
    Io(#[from] std::io::Error),
}
