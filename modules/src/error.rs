//! The one error type of this crate.

/// Why a module could not be built, could not judge a host's state, or why a script's output
/// could not be read. Messages say what is wrong and how to fix it; the engine adds the file,
/// line and host.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// No module has this name.
    #[error("unknown module `{name}`{hint}")]
    UnknownModule { name: String, hint: String },
    /// The YAML arguments do not fit the module.
    #[error("module `{module}`: {message}")]
    InvalidArgs { module: String, message: String },
    /// The gathered state lacks a field the module needs (a bug or a truncated output).
    #[error("module `{module}`: gathered state lacks field `{field}`")]
    MissingField { module: String, field: String },
    /// The host is in a state the module cannot reconcile (e.g. a directory where a file
    /// should be, an unparsable config file).
    #[error("module `{module}`: {message}")]
    Conflict { module: String, message: String },
    /// The output of a gather/apply script is not in kprov's framing.
    #[error("malformed script output line {line}: {message}")]
    Output { line: usize, message: String },
}

impl ModuleError {
    /// Shorthand for [`ModuleError::InvalidArgs`].
    pub fn args(module: &str, message: impl Into<String>) -> Self {
        ModuleError::InvalidArgs {
            module: module.to_string(),
            message: message.into(),
        }
    }

    /// Shorthand for [`ModuleError::Conflict`].
    pub fn conflict(module: &str, message: impl Into<String>) -> Self {
        ModuleError::Conflict {
            module: module.to_string(),
            message: message.into(),
        }
    }

    /// Shorthand for [`ModuleError::MissingField`].
    pub fn missing(module: &str, field: &str) -> Self {
        ModuleError::MissingField {
            module: module.to_string(),
            field: field.to_string(),
        }
    }
}
