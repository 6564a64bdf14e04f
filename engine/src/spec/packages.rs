//! Package sources (`packages:`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::values::KubernetesVersion;

/// Where hosts get their packages from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Packages {
    /// apt mirror replacing the distribution's default (Debian/Ubuntu hosts), e.g.
    /// `http://mirror.example.com/debian`.
    #[serde(default)]
    #[schemars(extend("format" = "repository-url"))]
    pub apt_mirror: Option<String>,
    /// yum/dnf mirror replacing the distribution's default (RHEL-family hosts).
    #[serde(default)]
    #[schemars(extend("format" = "repository-url"))]
    pub yum_mirror: Option<String>,
    /// Kubernetes package repository; default `https://pkgs.k8s.io/core:/stable:/v<minor>/deb/`
    /// (or `/rpm/`).
    #[serde(default)]
    #[schemars(extend("format" = "repository-url"))]
    pub kubernetes_repository: Option<String>,
    /// Signing key of `kubernetes_repository` (default: the repository's `Release.key`).
    #[serde(default)]
    #[schemars(extend("format" = "repository-url"))]
    pub kubernetes_repository_key: Option<String>,
    /// One local repository serving every package (offline installs); replaces all of the above.
    #[serde(default)]
    #[schemars(extend("format" = "repository-url"))]
    pub offline_repository: Option<String>,
}

/// Package format of a host's distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageFormat {
    /// Debian, Ubuntu.
    Deb,
    /// RHEL, CentOS, Rocky, Fedora.
    Rpm,
}

impl Packages {
    /// The Kubernetes repository for `version` and `format` (the configured one or pkgs.k8s.io).
    pub fn kubernetes_repository_for(
        &self,
        version: KubernetesVersion,
        format: PackageFormat,
    ) -> String {
        if let Some(url) = &self.kubernetes_repository {
            return url.clone();
        }
        let kind = match format {
            PackageFormat::Deb => "deb",
            PackageFormat::Rpm => "rpm",
        };
        format!(
            "https://pkgs.k8s.io/core:/stable:/v{}.{}/{kind}/",
            version.major, version.minor
        )
    }
}
