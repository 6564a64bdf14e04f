//! Private keys: generation, the PEM encodings kubeadm writes (PKCS#1 for RSA,
//! SEC1 for ECDSA), loading existing keys.

use crate::{Error, KeyAlgorithm};
use pkcs8::der::{Decode, Encode};
use rcgen::{KeyPair, PublicKeyData, RsaKeySize, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256};

/// OID of the P-256 curve (prime256v1).
const P256_OID: pkcs8::ObjectIdentifier =
    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// A private key with the exact bytes of its key file.
pub(crate) struct Key {
    pub(crate) pair: KeyPair,
    /// PEM as written to disk (`RSA PRIVATE KEY` / `EC PRIVATE KEY`, or the existing file).
    pub(crate) pem: Vec<u8>,
}

impl Key {
    /// A fresh key of `alg`.
    pub(crate) fn generate(alg: KeyAlgorithm) -> Result<Key, Error> {
        let pair = match alg {
            KeyAlgorithm::Rsa2048 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048),
            KeyAlgorithm::EcdsaP256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256),
        }
        .map_err(|e| Error::crypto("generating a private key", e))?;
        let pem = legacy_pem(&pair, alg)?;
        Ok(Key {
            pair,
            pem: pem.into_bytes(),
        })
    }

    /// Loads an existing key file (PKCS#1, SEC1 or PKCS#8 PEM); `None` if unreadable.
    pub(crate) fn load(bytes: &[u8]) -> Option<Key> {
        let text = std::str::from_utf8(bytes).ok()?;
        let pair = KeyPair::from_pem(text).ok()?;
        Some(Key {
            pair,
            pem: bytes.to_vec(),
        })
    }

    /// DER SubjectPublicKeyInfo of the key.
    pub(crate) fn spki_der(&self) -> Vec<u8> {
        self.pair.subject_public_key_info()
    }

    /// PKIX `PUBLIC KEY` PEM (what kubeadm writes to `sa.pub`).
    pub(crate) fn public_pem(&self) -> Vec<u8> {
        pem_lf("PUBLIC KEY", self.spki_der()).into_bytes()
    }

    /// The algorithm of this key.
    #[cfg(test)]
    pub(crate) fn algorithm(&self) -> KeyAlgorithm {
        if self.pair.algorithm() == &PKCS_ECDSA_P256_SHA256 {
            KeyAlgorithm::EcdsaP256
        } else {
            KeyAlgorithm::Rsa2048
        }
    }
}

/// Re-encodes rcgen's PKCS#8 as PKCS#1 (RSA) or SEC1 with curve parameters (ECDSA),
/// like Go's `keyutil.MarshalPrivateKeyToPEM`.
fn legacy_pem(pair: &KeyPair, alg: KeyAlgorithm) -> Result<String, Error> {
    let pkcs8_der = pair.serialize_der();
    let info = pkcs8::PrivateKeyInfo::from_der(&pkcs8_der)
        .map_err(|e| Error::crypto("re-encoding a private key", e))?;
    let (label, der) = match alg {
        KeyAlgorithm::Rsa2048 => ("RSA PRIVATE KEY", info.private_key.to_vec()),
        KeyAlgorithm::EcdsaP256 => {
            let inner = sec1::EcPrivateKey::from_der(info.private_key)
                .map_err(|e| Error::crypto("re-encoding an EC key", e))?;
            let public = pair.public_key_raw().to_vec();
            let full = sec1::EcPrivateKey {
                private_key: inner.private_key,
                parameters: Some(sec1::EcParameters::NamedCurve(P256_OID)),
                public_key: Some(inner.public_key.unwrap_or(&public)),
            };
            (
                "EC PRIVATE KEY",
                full.to_der()
                    .map_err(|e| Error::crypto("re-encoding an EC key", e))?,
            )
        }
    };
    Ok(pem_lf(label, der))
}

/// PEM with `\n` line endings and 64-column lines, as Go's encoding/pem writes.
pub(crate) fn pem_lf(label: &str, der: Vec<u8>) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new(label, der), config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_use_kubeadm_pem_labels_and_reload() {
        for (alg, label) in [
            (KeyAlgorithm::Rsa2048, "RSA PRIVATE KEY"),
            (KeyAlgorithm::EcdsaP256, "EC PRIVATE KEY"),
        ] {
            let key = Key::generate(alg).unwrap();
            let text = String::from_utf8(key.pem.clone()).unwrap();
            assert!(
                text.starts_with(&format!("-----BEGIN {label}-----")),
                "{text}"
            );
            let again = Key::load(&key.pem).unwrap();
            assert_eq!(again.spki_der(), key.spki_der());
            assert_eq!(again.algorithm(), alg);
        }
    }
}
