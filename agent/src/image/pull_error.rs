//! Turning registry client errors into a [`PullFailure`] kind and a message
//! that names the registry, the real cause (TLS, credentials, missing image)
//! and the agent setting that fixes it. Credentials never appear in it.

use oci_client::errors::{OciDistributionError, OciErrorCode};
use serde::{Deserialize, Serialize};

/// Why a pull failed, as far as the gRPC caller should know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullFailure {
    /// Anything not listed below.
    #[default]
    Other,
    /// The registry (or its token service) wants credentials, or refused them.
    Unauthenticated,
    /// The credentials are valid but grant no pull access.
    PermissionDenied,
    /// The repository, tag or digest does not exist.
    NotFound,
    /// The TLS connection failed (untrusted certificate, or not TLS at all).
    Tls,
}

/// What was offered to the registry, for the message (never the secret itself).
pub enum Offered<'a> {
    Nothing,
    User(&'a str),
    Token,
}

/// Kind and message for an error talking to registry `host`.
pub fn classify(e: &OciDistributionError, host: &str, offered: &Offered) -> (PullFailure, String) {
    let creds = match offered {
        Offered::Nothing => "no credentials were given".to_string(),
        Offered::User(u) => format!("the credentials of user {u:?} were refused"),
        Offered::Token => "the bearer token was refused".to_string(),
    };
    let auth_hint = format!(
        "{creds}; pass them with the PullImage auth (imagePullSecrets) or set username/password under [registry.hosts.\"{host}\"] in the agent config"
    );
    match e {
        OciDistributionError::AuthenticationFailure(reason) => (
            PullFailure::Unauthenticated,
            format!(
                "registry {host}: its token service refused access ({}): {auth_hint}",
                reason.trim()
            ),
        ),
        OciDistributionError::UnauthorizedError { .. } => (
            PullFailure::Unauthenticated,
            format!("registry {host} answered 401 Unauthorized: {auth_hint}"),
        ),
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            let text = envelope
                .errors
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            if codes.contains(&&OciErrorCode::Unauthorized) {
                (
                    PullFailure::Unauthenticated,
                    format!("registry {host}: {text}: {auth_hint}"),
                )
            } else if codes.contains(&&OciErrorCode::Denied) {
                (
                    PullFailure::PermissionDenied,
                    format!("registry {host} denied access: {text}"),
                )
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                        | OciErrorCode::BlobUnknown
                )
            }) {
                (
                    PullFailure::NotFound,
                    format!("registry {host}: not found: {text}"),
                )
            } else {
                (PullFailure::Other, format!("registry {host}: {text}"))
            }
        }
        OciDistributionError::ServerError { code, message, .. } => {
            let http_to_https = message.contains("HTTP request to an HTTPS server");
            let kind = match code {
                _ if http_to_https => PullFailure::Tls,
                401 => PullFailure::Unauthenticated,
                403 => PullFailure::PermissionDenied,
                404 => PullFailure::NotFound,
                _ => PullFailure::Other,
            };
            let mut msg = format!(
                "registry {host} answered HTTP {code}: {}",
                message.trim().trim_end_matches('.')
            );
            if kind == PullFailure::Unauthenticated {
                msg.push_str(&format!(": {auth_hint}"));
            }
            if http_to_https {
                msg.push_str(&format!(
                    ": it speaks TLS; remove plain_http from [registry.hosts.\"{host}\"]"
                ));
            }
            (kind, msg)
        }
        OciDistributionError::ImageManifestNotFoundError(m) => (
            PullFailure::NotFound,
            format!("registry {host}: manifest not found: {m}"),
        ),
        OciDistributionError::RequestError(re) => classify_transport(re, host),
        other => (PullFailure::Other, format!("registry {host}: {other}")),
    }
}

/// Connection-level failures: the whole cause chain (reqwest's own message
/// hides it), with a hint when it is a TLS problem.
fn classify_transport(e: &(dyn std::error::Error + 'static), host: &str) -> (PullFailure, String) {
    let mut parts = vec![e.to_string()];
    let mut tls: Option<&rustls::Error> = None;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            tls = tls.or(Some(t));
        }
        // io::Error::source() skips the error it wraps: look inside explicitly.
        let next = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|i| i as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
        if let Some(n) = next {
            let s = n.to_string();
            if !parts.iter().any(|p| p.contains(&s)) {
                parts.push(s);
            }
        }
        cur = next;
    }
    let chain = parts.join(": ");
    match tls {
        Some(rustls::Error::InvalidCertificate(_)) => (
            PullFailure::Tls,
            format!(
                "registry {host}: TLS certificate not trusted: {chain}; set ca_file = \"/path/to/ca.pem\" (or insecure_skip_verify = true) under [registry.hosts.\"{host}\"] in the agent config"
            ),
        ),
        Some(rustls::Error::InvalidMessage(_)) => (
            PullFailure::Tls,
            format!(
                "registry {host}: TLS handshake failed, the registry does not seem to speak TLS: {chain}; if it serves plain HTTP, set plain_http = true under [registry.hosts.\"{host}\"] in the agent config"
            ),
        ),
        Some(_) => (
            PullFailure::Tls,
            format!("registry {host}: TLS failed: {chain}"),
        ),
        None => (PullFailure::Other, format!("registry {host}: {chain}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthorized_names_the_registry_and_the_fix_but_no_secret() {
        let e = OciDistributionError::UnauthorizedError {
            url: "https://r:5000/v2/".into(),
        };
        let (kind, msg) = classify(&e, "r:5000", &Offered::User("puller"));
        assert_eq!(kind, PullFailure::Unauthenticated);
        assert!(
            msg.contains("r:5000") && msg.contains("\"puller\""),
            "{msg}"
        );
        assert!(msg.contains("[registry.hosts.\"r:5000\"]"), "{msg}");
    }

    #[test]
    fn status_codes_map_to_kinds() {
        let e = |code| OciDistributionError::ServerError {
            code,
            url: String::new(),
            message: String::new(),
        };
        let k = |code| classify(&e(code), "r", &Offered::Nothing).0;
        assert_eq!(k(401), PullFailure::Unauthenticated);
        assert_eq!(k(403), PullFailure::PermissionDenied);
        assert_eq!(k(404), PullFailure::NotFound);
        assert_eq!(k(500), PullFailure::Other);
    }

    #[test]
    fn tls_cause_is_found_inside_io_errors() {
        let inner = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let outer = std::io::Error::other(inner);
        let (kind, msg) = classify_transport(&outer, "r:1");
        assert_eq!(kind, PullFailure::Tls);
        assert!(
            msg.contains("ca_file") && msg.contains("not trusted"),
            "{msg}"
        );
    }
}
