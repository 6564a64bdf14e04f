//! Service errors and their gRPC status codes.

use tonic::{Code, Status};

/// An error from the runtime service, mapped to a gRPC code.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    DeadlineExceeded(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Internal(String),
}

impl AgentError {
    /// An internal error with context.
    pub fn internal(context: &str, e: impl std::fmt::Display) -> Self {
        AgentError::Internal(format!("{context}: {e}"))
    }
}

impl From<AgentError> for Status {
    fn from(e: AgentError) -> Self {
        let code = match e {
            AgentError::NotFound(_) => Code::NotFound,
            AgentError::InvalidArgument(_) => Code::InvalidArgument,
            AgentError::FailedPrecondition(_) => Code::FailedPrecondition,
            AgentError::DeadlineExceeded(_) => Code::DeadlineExceeded,
            AgentError::Unauthenticated(_) => Code::Unauthenticated,
            AgentError::PermissionDenied(_) => Code::PermissionDenied,
            AgentError::Internal(_) => Code::Internal,
        };
        Status::new(code, e.to_string())
    }
}

impl From<std::io::Error> for AgentError {
    fn from(e: std::io::Error) -> Self {
        AgentError::Internal(e.to_string())
    }
}

impl From<crate::image::ImageError> for AgentError {
    fn from(e: crate::image::ImageError) -> Self {
        use crate::image::{ImageError, PullFailure};
        let text = e.to_string();
        match e {
            ImageError::BadReference(..) => AgentError::InvalidArgument(text),
            ImageError::Pull { kind, .. } => match kind {
                PullFailure::Unauthenticated => AgentError::Unauthenticated(text),
                PullFailure::PermissionDenied => AgentError::PermissionDenied(text),
                PullFailure::NotFound => AgentError::NotFound(text),
                // Trust is configuration: retrying cannot help until it changes.
                PullFailure::Tls => AgentError::FailedPrecondition(text),
                PullFailure::Other => AgentError::Internal(text),
            },
            _ => AgentError::Internal(text),
        }
    }
}

/// Result alias for the service.
pub type AgentResult<T> = Result<T, AgentError>;
