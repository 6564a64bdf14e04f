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
    /// repository of `kubernetes_version`'s minor. Unset: none is added, and the host's
    /// own configured package sources must provide kubelet, kubectl and cri-tools. Not
    /// used when `offline_repository` is set.
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
    /// Repository to add (`None`: the host's configured sources or the offline repository
    /// serve them).
    pub repository: Option<String>,
    /// URL of the repository's signing key.
    pub key: Option<String>,
    /// `name=version` for the `package` module: kubelet and kubectl at the spec's exact
    /// release, cri-tools at the newest patch of the same minor.
    pub names: Vec<String>,
}

impl Packages {
    /// Repository, key and pinned package names for `version` on hosts of `format`.
    ///
    /// Sources: `kubernetes_repository` (with its key) when set; otherwise none is added and
    /// the packages come from the sources the host already has configured (or from
    /// `offline_repository`, added by os-prep). kprov knows no repository of its own.
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
        let repository = match (&self.offline_repository, &self.kubernetes_repository) {
            (None, Some(url)) if url.ends_with('/') => url.clone(),
            (None, Some(url)) => format!("{url}/"),
            _ => {
                return KubernetesPackages {
                    repository: None,
                    key: None,
                    names,
                }
            }
        };
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
    fn no_repository_is_added_unless_one_is_configured() {
        let p = Packages::default();
        let deb = p.kubernetes_packages(version("1.31.2"), PackageFormat::Deb);
        assert_eq!((deb.repository, deb.key), (None, None));
        assert_eq!(
            deb.names,
            ["kubelet=1.31.2-*", "kubectl=1.31.2-*", "cri-tools=1.31.*"]
        );
        let rpm = p.kubernetes_packages(version("1.28.0"), PackageFormat::Rpm);
        assert_eq!((rpm.repository, rpm.key), (None, None));
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
