//! The crate's error type.

/// Why artifacts could not be computed. Messages name the offending parameter or
/// file and say how to fix it; they never contain key material or tokens.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A cluster or node parameter is invalid.
    #[error("invalid {field} {value:?}: {reason}")]
    Param {
        /// Parameter name as written in the cluster spec.
        field: &'static str,
        /// The rejected value (never secret).
        value: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A CA certificate exists without its key and a certificate it must sign is
    /// missing or invalid (kubeadm's "external CA" mode).
    #[error("{path} is missing or invalid and cannot be signed: {ca_key} is absent (external CA mode); provide a valid {path} or the CA key")]
    ExternalCa {
        /// The certificate or kubeconfig that would need signing.
        path: String,
        /// The missing CA key.
        ca_key: String,
    },
    /// A CA key kprov created (it is in its record) is gone: never a silent switch to
    /// external-CA mode.
    #[error("{key_path} is gone, but kprov created it for this cluster ({record} lists it): someone or something deleted the cluster's CA key. Restore {key_path} from a backup or from another control-plane node; to run with an external CA on purpose, remove its line from {record}; `kprov reset` starts a new cluster")]
    CaKeyLost {
        /// The missing CA key.
        key_path: String,
        /// kprov's record of the CA keys it holds.
        record: String,
    },
    /// An existing CA cannot be used; kprov never replaces a CA on its own.
    #[error("CA {path} cannot be used: {reason}; restore the right files, or remove {path} and {key_path} to create a new CA (every certificate and kubeconfig it signed is then re-issued and nodes must re-join)")]
    Ca {
        /// The CA certificate.
        path: String,
        /// What is wrong with it.
        reason: String,
        /// Its key.
        key_path: String,
    },
    /// A joining control-plane node lacks a file shared by all control-plane nodes.
    #[error("{path} is missing: a joining control-plane node needs the cluster CAs and service-account key of the first control-plane node; copy them from there")]
    MissingShared {
        /// The missing file.
        path: String,
    },
    /// A file shared by all control-plane nodes is there but cannot be used.
    #[error("{path} from the first control-plane node is not a readable private key; copy it again from there")]
    UnreadableShared {
        /// The unusable file.
        path: String,
    },
    /// An input certificate could not be read.
    #[error("cannot read certificate {what}: {reason}")]
    Certificate {
        /// Which certificate (path or role).
        what: String,
        /// Parser message.
        reason: String,
    },
    /// Key generation or signing failed inside the crypto library.
    #[error("crypto failure while {doing}: {reason}")]
    Crypto {
        /// The operation that failed.
        doing: String,
        /// Library message.
        reason: String,
    },
}

impl Error {
    pub(crate) fn param(
        field: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Param {
            field,
            value: value.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn crypto(doing: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Crypto {
            doing: doing.into(),
            reason: reason.to_string(),
        }
    }
}
