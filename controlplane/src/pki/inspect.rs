//! Reading existing certificates: subject, SANs, usages, validity, issuer check.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// What kprov needs to know about a certificate (owned, parsed once).
#[derive(Debug, Clone)]
pub(crate) struct CertInfo {
    /// DER of the certificate.
    pub(crate) der: Vec<u8>,
    pub(crate) common_name: String,
    pub(crate) organizations: BTreeSet<String>,
    pub(crate) not_before: SystemTime,
    pub(crate) not_after: SystemTime,
    pub(crate) dns_names: BTreeSet<String>,
    pub(crate) ips: BTreeSet<IpAddr>,
    pub(crate) server_auth: bool,
    pub(crate) client_auth: bool,
    pub(crate) is_ca: bool,
    /// DER SubjectPublicKeyInfo.
    pub(crate) spki: Vec<u8>,
}

impl CertInfo {
    /// Parses the first certificate of a PEM file.
    pub(crate) fn from_pem(bytes: &[u8]) -> Result<CertInfo, String> {
        let block = pem::parse_many(bytes)
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or("no CERTIFICATE block")?;
        CertInfo::from_der(block.contents())
    }

    /// Parses a DER certificate.
    pub(crate) fn from_der(der: &[u8]) -> Result<CertInfo, String> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        let mut dns_names = BTreeSet::new();
        let mut ips = BTreeSet::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(d) => {
                        dns_names.insert(d.to_string());
                    }
                    GeneralName::IPAddress(raw) => {
                        if let Some(ip) = ip_from_bytes(raw) {
                            ips.insert(ip);
                        }
                    }
                    _ => {}
                }
            }
        }
        let (server_auth, client_auth) = match cert.extended_key_usage() {
            Ok(Some(eku)) => (eku.value.server_auth, eku.value.client_auth),
            _ => (false, false),
        };
        let subject = cert.subject();
        let common_name: Vec<String> = subject
            .iter_common_name()
            .filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect();
        let organizations: BTreeSet<String> = subject
            .iter_organization()
            .filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect();
        Ok(CertInfo {
            der: der.to_vec(),
            common_name: common_name.join(","),
            organizations,
            not_before: to_system_time(cert.validity().not_before.timestamp()),
            not_after: to_system_time(cert.validity().not_after.timestamp()),
            dns_names,
            ips,
            server_auth,
            client_auth,
            is_ca: cert.is_ca(),
            spki: cert.public_key().raw.to_vec(),
        })
    }

    /// Valid at `now` and still valid `window` later.
    pub(crate) fn valid_through(&self, now: SystemTime, window: Duration) -> bool {
        self.not_before <= now
            && now
                .checked_add(window)
                .is_some_and(|end| end < self.not_after)
    }

    /// True if `issuer`'s key signed this certificate.
    pub(crate) fn signed_by(&self, issuer: &CertInfo) -> bool {
        let (Ok((_, cert)), Ok((_, ca))) = (
            X509Certificate::from_der(&self.der),
            X509Certificate::from_der(&issuer.der),
        ) else {
            return false;
        };
        cert.issuer() == ca.subject() && cert.verify_signature(Some(ca.public_key())).is_ok()
    }
}

fn ip_from_bytes(raw: &[u8]) -> Option<IpAddr> {
    match raw.len() {
        4 => <[u8; 4]>::try_from(raw).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(raw).ok().map(IpAddr::from),
        _ => None,
    }
}

fn to_system_time(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}
