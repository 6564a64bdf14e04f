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
    #[schemars(schema_with = "crate::validate::patterns::optional_repository_url")]
    pub apt_mirror: Option<String>,
    /// yum/dnf mirror replacing the distribution's default (RHEL-family hosts).
    #[serde(default)]
    #[schemars(schema_with = "crate::validate::patterns::optional_repository_url")]
    pub yum_mirror: Option<String>,
    /// Kubernetes package repository the `kubelet` role adds (with its key in a keyring and
    /// `signed-by` on apt, `gpgkey` on yum/dnf), laid out like the upstream one: a flat
    /// repository per minor version. Default
    /// `https://pkgs.k8s.io/core:/stable:/v<major>.<minor>/deb/` (or `/rpm/`). Not used
    /// when `offline_repository` is set.
    #[serde(default)]
    #[schemars(schema_with = "crate::validate::patterns::optional_repository_url")]
    pub kubernetes_repository: Option<String>,
    /// Signing key of `kubernetes_repository` (ASCII-armored), fetched by each host.
    /// Default: the repository's `Release.key` (apt) or `repodata/repomd.xml.key` (yum/dnf).
    #[serde(default)]
    #[schemars(schema_with = "crate::validate::patterns::optional_repository_url")]
    pub kubernetes_repository_key: Option<String>,
    /// One local repository serving every package (offline installs); replaces all of the above.
    #[serde(default)]
    #[schemars(schema_with = "crate::validate::patterns::optional_repository_url")]
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

/// Where the Kubernetes packages of one package format come from and which versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KubernetesPackages {
    /// Repository to add (`None`: the offline repository serves them).
    pub repository: Option<String>,
    /// URL of the repository's signing key.
    pub key: Option<String>,
    /// `name=version` for the `package` module: kubelet and kubectl at the spec's exact
    /// release, cri-tools at the newest patch of the same minor.
    pub names: Vec<String>,
}

impl Packages {
    /// The Kubernetes repository for `version` and `format`: the configured one or the
    /// upstream layout (one path per minor), always ending in `/`.
    pub fn kubernetes_repository_for(
        &self,
        version: KubernetesVersion,
        format: PackageFormat,
    ) -> String {
        let kind = match format {
            PackageFormat::Deb => "deb",
            PackageFormat::Rpm => "rpm",
        };
        let url = match &self.kubernetes_repository {
            Some(url) => url.clone(),
            None => format!(
                "https://pkgs.k8s.io/core:/stable:/v{}.{}/{kind}/",
                version.major, version.minor
            ),
        };
        if url.ends_with('/') {
            url
        } else {
            url + "/"
        }
    }

    /// Repository, key and pinned package names for `version` on hosts of `format`.
    ///
    /// Versions: upstream debs are `1.31.2-1.1` and rpms `1.31.2-150500.1.1`, so kubelet
    /// and kubectl are pinned to `1.31.2-*` (apt) or `1.31.2` (rpm: any release of it);
    /// cri-tools is released per minor with its own patch numbers, so it is pinned to
    /// `1.31.*` (the newest patch of the minor when installed; a patch bump of the spec
    /// leaves it alone, a minor bump moves it).
    pub fn kubernetes_packages(
        &self,
        version: KubernetesVersion,
        format: PackageFormat,
    ) -> KubernetesPackages {
        let exact = match format {
            PackageFormat::Deb => format!("{version}-*"),
            PackageFormat::Rpm => version.to_string(),
        };
        let minor = format!("{}.{}.*", version.major, version.minor);
        let names = vec![
            format!("kubelet={exact}"),
            format!("kubectl={exact}"),
            format!("cri-tools={minor}"),
        ];
        if self.offline_repository.is_some() {
            return KubernetesPackages {
                repository: None,
                key: None,
                names,
            };
        }
        let repository = self.kubernetes_repository_for(version, format);
        let key = self.kubernetes_repository_key.clone().unwrap_or_else(|| {
            let file = match format {
                PackageFormat::Deb => "Release.key",
                PackageFormat::Rpm => "repodata/repomd.xml.key",
            };
            format!("{repository}{file}")
        });
        KubernetesPackages {
            repository: Some(repository),
            key: Some(key),
            names,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(s: &str) -> KubernetesVersion {
        s.parse().unwrap()
    }

    #[test]
    fn upstream_layout_per_minor_by_default() {
        let p = Packages::default();
        let deb = p.kubernetes_packages(version("1.31.2"), PackageFormat::Deb);
        assert_eq!(
            deb.repository.as_deref(),
            Some("https://pkgs.k8s.io/core:/stable:/v1.31/deb/")
        );
        assert_eq!(
            deb.key.as_deref(),
            Some("https://pkgs.k8s.io/core:/stable:/v1.31/deb/Release.key")
        );
        assert_eq!(
            deb.names,
            ["kubelet=1.31.2-*", "kubectl=1.31.2-*", "cri-tools=1.31.*"]
        );
        let rpm = p.kubernetes_packages(version("1.28.0"), PackageFormat::Rpm);
        assert_eq!(
            rpm.key.as_deref(),
            Some("https://pkgs.k8s.io/core:/stable:/v1.28/rpm/repodata/repomd.xml.key")
        );
        assert_eq!(
            rpm.names,
            ["kubelet=1.28.0", "kubectl=1.28.0", "cri-tools=1.28.*"]
        );
    }

    #[test]
    fn configured_repository_and_offline() {
        let p = Packages {
            kubernetes_repository: Some("http://10.0.0.1/k8s/v1.31/deb".into()),
            ..Packages::default()
        };
        let deb = p.kubernetes_packages(version("1.31.2"), PackageFormat::Deb);
        assert_eq!(
            deb.repository.as_deref(),
            Some("http://10.0.0.1/k8s/v1.31/deb/")
        );
        assert_eq!(
            deb.key.as_deref(),
            Some("http://10.0.0.1/k8s/v1.31/deb/Release.key")
        );
        let p = Packages {
            kubernetes_repository_key: Some("http://keys/k.asc".into()),
            ..p
        };
        assert_eq!(
            p.kubernetes_packages(version("1.31.2"), PackageFormat::Deb)
                .key
                .as_deref(),
            Some("http://keys/k.asc")
        );
        let offline = Packages {
            offline_repository: Some("http://10.0.0.1/repo".into()),
            ..Packages::default()
        };
        let deb = offline.kubernetes_packages(version("1.31.2"), PackageFormat::Deb);
        assert_eq!((deb.repository, deb.key), (None, None));
        assert_eq!(deb.names[0], "kubelet=1.31.2-*");
    }
}
