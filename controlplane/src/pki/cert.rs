//! Issuing certificates with kubeadm's profile: random serial in [1, 2^63−1],
//! KeyUsage DigitalSignature|KeyEncipherment (+CertSign for CAs), BasicConstraints,
//! SAN `DNS:<CN>` on CAs, backdated validity.

use super::keys::{pem_lf, Key};
use crate::{Error, Version};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyUsagePurpose, SanType, SerialNumber,
};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};
use time::OffsetDateTime;

/// kubeadm's `CertificateBackdate`.
pub(crate) const BACKDATE: Duration = Duration::from_secs(5 * 60);
/// `CACertificateValidityPeriod` (10 years, 87600h).
pub(crate) const CA_VALIDITY: Duration = Duration::from_secs(87_600 * 3600);
/// `CertificateValidityPeriod` (1 year, 8760h).
pub(crate) const LEAF_VALIDITY: Duration = Duration::from_secs(8_760 * 3600);

/// Extended key usage of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Usage {
    /// A CA: no EKU.
    Ca,
    /// serverAuth.
    Server,
    /// clientAuth.
    Client,
    /// serverAuth + clientAuth (etcd server and peer).
    ServerClient,
}

/// Subject and SANs of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subject {
    pub(crate) common_name: String,
    pub(crate) organizations: Vec<String>,
    pub(crate) usage: Usage,
    /// Sorted, unique (as kubeadm's `RemoveDuplicateAltNames`).
    pub(crate) dns_names: Vec<String>,
    /// Unique, in first-seen order.
    pub(crate) ips: Vec<IpAddr>,
}

impl Subject {
    pub(crate) fn new(
        common_name: impl Into<String>,
        organizations: &[&str],
        usage: Usage,
    ) -> Subject {
        Subject {
            common_name: common_name.into(),
            organizations: organizations.iter().map(|o| o.to_string()).collect(),
            usage,
            dns_names: Vec::new(),
            ips: Vec::new(),
        }
    }

    /// Adds SAN strings: IPs become IP SANs, the rest DNS SANs; then dedups.
    pub(crate) fn with_sans<S: AsRef<str>>(mut self, sans: impl IntoIterator<Item = S>) -> Subject {
        for san in sans {
            let san = san.as_ref();
            match san.parse::<IpAddr>() {
                Ok(ip) if !self.ips.contains(&ip) => self.ips.push(ip),
                Ok(_) => {}
                Err(_) => self.dns_names.push(san.to_string()),
            }
        }
        self.dns_names.sort();
        self.dns_names.dedup();
        self
    }
}

/// A self-signed CA certificate (PEM), valid from `now − 5 min` for 10 years.
pub(crate) fn self_signed_ca(
    subject: &Subject,
    key: &Key,
    now: SystemTime,
) -> Result<Vec<u8>, Error> {
    let not_before = now - BACKDATE;
    let mut params = base_params(subject, not_before, not_before + CA_VALIDITY)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages.push(KeyUsagePurpose::KeyCertSign);
    params.subject_alt_names = vec![dns_san(&subject.common_name)?];
    let cert = params
        .self_signed(&key.pair)
        .map_err(|e| Error::crypto(format!("signing CA {}", subject.common_name), e))?;
    Ok(pem_lf("CERTIFICATE", cert.der().to_vec()).into_bytes())
}

/// A leaf certificate (PEM) for `key`, signed by the CA (`ca_der`, `ca_key`).
/// 1.28–1.30: NotBefore = the CA's NotBefore; 1.31: `now − 5 min`. NotAfter = now + 1 year.
pub(crate) fn signed_leaf(
    subject: &Subject,
    key: &Key,
    ca_der: &[u8],
    ca_not_before: SystemTime,
    ca_key: &Key,
    version: Version,
    now: SystemTime,
) -> Result<Vec<u8>, Error> {
    let not_before = if version.is_131_or_later() {
        now - BACKDATE
    } else {
        ca_not_before
    };
    let mut params = base_params(subject, not_before, now + LEAF_VALIDITY)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    params.extended_key_usages = match subject.usage {
        Usage::Ca => Vec::new(),
        Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
        Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        Usage::ServerClient => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    };
    for dns in &subject.dns_names {
        params.subject_alt_names.push(dns_san(dns)?);
    }
    params
        .subject_alt_names
        .extend(subject.ips.iter().map(|ip| SanType::IpAddress(*ip)));
    let issuer = Issuer::from_ca_cert_der(&ca_der.to_vec().into(), &ca_key.pair)
        .map_err(|e| Error::crypto("reading the CA certificate", e))?;
    let cert = params
        .signed_by(&key.pair, &issuer)
        .map_err(|e| Error::crypto(format!("signing {}", subject.common_name), e))?;
    Ok(pem_lf("CERTIFICATE", cert.der().to_vec()).into_bytes())
}

fn base_params(
    subject: &Subject,
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    for org in &subject.organizations {
        dn.push(DnType::OrganizationName, org.as_str());
    }
    dn.push(DnType::CommonName, subject.common_name.as_str());
    params.distinguished_name = dn;
    params.not_before = OffsetDateTime::from(not_before);
    params.not_after = OffsetDateTime::from(not_after);
    params.serial_number = Some(random_serial());
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    Ok(params)
}

/// Uniform in [1, 2^63 − 1], as kubeadm's `cryptorand.Int(MaxInt64−1) + 1`.
fn random_serial() -> SerialNumber {
    let n = rand::random_range(1..=i64::MAX as u64);
    SerialNumber::from_slice(&n.to_be_bytes())
}

fn dns_san(name: &str) -> Result<SanType, Error> {
    let ia5 = name.to_string().try_into().map_err(|_| {
        Error::param(
            "cert_sans",
            name,
            "SANs must be IP addresses or ASCII DNS names",
        )
    })?;
    Ok(SanType::DnsName(ia5))
}
