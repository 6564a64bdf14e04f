//! `cni_manifest`: the flannel or calico manifest in the addons directory of the first
//! master (`/etc/kubernetes/addons/<plugin>.yaml`, 0644), for kprov to apply when the API
//! server answers. flannel's is written by kprov; calico's is the operator's upstream
//! `calico.yaml` (read on the control machine) with kprov's choices set in it.

mod calico;
mod flannel;
mod images;
use kprov_controlplane::yaml;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::util::args;
use crate::util::managed::ManagedFile;
use crate::{Module, ModuleError, Plan, State};

/// Which manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Plugin {
    Flannel,
    Calico,
}

/// flannel choices (the spec's `cni.flannel`).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FlannelArgs {
    /// `vxlan` (default) or `host-gw`.
    #[serde(default)]
    backend: Option<String>,
    /// Interface between hosts (`--iface`).
    #[serde(default)]
    iface: Option<String>,
}

/// calico choices (the spec's `cni.calico`).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CalicoArgs {
    /// `ipip` (default), `vxlan` or `none`.
    #[serde(default)]
    encapsulation: Option<String>,
    /// IP_AUTODETECTION_METHOD, e.g. `interface=eth0`.
    #[serde(default)]
    ip_autodetection_method: Option<String>,
    /// Path of the upstream calico.yaml on the machine running kprov.
    #[serde(default)]
    manifest: Option<String>,
}

/// Arguments of `cni_manifest`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    plugin: Plugin,
    /// The cluster's pod network.
    pod_cidr: String,
    /// Registry (and path) images are pulled from instead of their upstream registries;
    /// empty: upstream.
    #[serde(default)]
    image_registry: String,
    #[serde(default)]
    flannel: FlannelArgs,
    #[serde(default)]
    calico: CalicoArgs,
    /// flannel image (default: the release kprov's manifest is written for).
    flannel_image: Option<String>,
    /// flannel CNI plugin image.
    flannel_cni_plugin_image: Option<String>,
    /// Directory of the manifest (default /etc/kubernetes/addons).
    #[serde(default = "default_dir")]
    dir: String,
}

fn default_dir() -> String {
    "/etc/kubernetes/addons".into()
}

const NAME: &str = "cni_manifest";

/// A built `cni_manifest` task.
#[derive(Debug)]
pub(crate) struct CniManifest {
    file: ManagedFile,
}

fn word(field: &str, value: &str, allowed: &[&str]) -> Result<(), ModuleError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(ModuleError::args(
            NAME,
            format!("{field} `{value}` is not one of {}", allowed.join(", ")),
        ))
    }
}

impl CniManifest {
    pub fn build(args: serde_json::Value) -> Result<CniManifest, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        args::path(NAME, "dir", &a.dir)?;
        let pod = crate::network::route_spec::destination(NAME, &a.pod_cidr)?;
        let pod_cidr = pod.to_string();
        let registry = a.image_registry.trim();
        if registry.contains("://") || registry.contains(char::is_whitespace) {
            return Err(ModuleError::args(
                NAME,
                format!("image_registry `{registry}` is not a registry like harbor.local/k8s"),
            ));
        }
        let (name, docs) = match a.plugin {
            Plugin::Flannel => {
                let backend = a.flannel.backend.as_deref().unwrap_or("vxlan");
                word("flannel.backend", backend, &["vxlan", "host-gw"])?;
                if let Some(iface) = &a.flannel.iface {
                    crate::network::route_spec::interface(NAME, "flannel.iface", iface)?;
                }
                let image = a.flannel_image.as_deref().unwrap_or(flannel::FLANNEL_IMAGE);
                let cni = a
                    .flannel_cni_plugin_image
                    .as_deref()
                    .unwrap_or(flannel::CNI_PLUGIN_IMAGE);
                let mut docs = flannel::objects(&flannel::Flannel {
                    pod_cidr: &pod_cidr,
                    backend,
                    iface: a.flannel.iface.as_deref(),
                    image,
                    cni_plugin_image: cni,
                });
                for doc in &mut docs {
                    images::rewrite_object(doc, registry);
                }
                ("flannel", docs)
            }
            Plugin::Calico => {
                let encapsulation = a.calico.encapsulation.as_deref().unwrap_or("ipip");
                word(
                    "calico.encapsulation",
                    encapsulation,
                    &["ipip", "vxlan", "none"],
                )?;
                let Some(path) = a.calico.manifest.as_deref() else {
                    return Err(ModuleError::args(
                        NAME,
                        "calico needs its upstream manifest: set cni.calico.manifest in the \
                         cluster spec to the path of calico.yaml",
                    ));
                };
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ModuleError::args(NAME, format!("cannot read the calico manifest {path}: {e}"))
                })?;
                let mut docs = yaml::parse_docs(&text)
                    .map_err(|e| ModuleError::args(NAME, format!("calico manifest {path}:{e}")))?;
                calico::adapt(
                    &mut docs,
                    &calico::Calico {
                        pod_cidr: &pod_cidr,
                        encapsulation,
                        ip_autodetection_method: a.calico.ip_autodetection_method.as_deref(),
                        image_registry: registry,
                    },
                )
                .map_err(|e| ModuleError::args(NAME, format!("calico manifest {path}: {e}")))?;
                ("calico", docs)
            }
        };
        let mut content = format!(
            "# Managed by kprov ({name} for pod network {pod_cidr}); changes here are overwritten.\n"
        );
        content.push_str(&yaml::emit_docs(&docs));
        let mut file = ManagedFile::new(
            format!("{}/{name}.yaml", a.dir.trim_end_matches('/')),
            content,
        );
        file.mode = Some("644".into());
        Ok(CniManifest { file })
    }
}

impl Module for CniManifest {
    fn name(&self) -> &'static str {
        NAME
    }

    fn gather(&self) -> String {
        self.file.gather("")
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        self.file.plan(NAME, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::run_cycle;
    use serde_json::json;

    #[test]
    fn flannel_file_with_mirror_images() {
        let dir = tempfile::tempdir().unwrap();
        let m = CniManifest::build(json!({
            "plugin": "flannel",
            "pod_cidr": "10.244.0.0/16",
            "image_registry": "harbor.local/k8s",
            "flannel": {"backend": "vxlan", "iface": null},
            "dir": dir.path(),
        }))
        .unwrap();
        run_cycle(&m);
        let path = dir.path().join("flannel.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let docs = yaml::parse_docs(&text).unwrap();
        let net: serde_json::Value =
            serde_json::from_str(docs[4]["data"]["net-conf.json"].as_str().unwrap()).unwrap();
        assert_eq!(net["Network"], "10.244.0.0/16");
        assert!(
            text.contains("harbor.local/k8s/flannel/flannel:v0.26.1"),
            "{text}"
        );
        assert!(!text.contains("docker.io"), "{text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }

    #[test]
    fn calico_from_the_control_machine() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("calico.yaml");
        std::fs::write(&src, calico::tests::FIXTURE).unwrap();
        let m = CniManifest::build(json!({
            "plugin": "calico",
            "pod_cidr": "10.32.0.0/16",
            "calico": {"encapsulation": "ipip", "manifest": src},
            "dir": dir.path(),
        }))
        .unwrap();
        run_cycle(&m);
        let text = std::fs::read_to_string(dir.path().join("calico.yaml")).unwrap();
        assert!(text.contains("10.32.0.0/16"), "{text}");

        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "kind: DaemonSet\nmetadata: {name: [\n").unwrap();
        let err = CniManifest::build(json!({
            "plugin": "calico", "pod_cidr": "10.32.0.0/16",
            "calico": {"manifest": bad}, "dir": dir.path(),
        }))
        .unwrap_err()
        .to_string();
        assert!(err.contains(&format!("{}:", bad.display())), "{err}");
        let err = CniManifest::build(json!({
            "plugin": "calico", "pod_cidr": "10.32.0.0/16", "dir": dir.path(),
        }))
        .unwrap_err()
        .to_string();
        assert!(err.contains("cni.calico.manifest"), "{err}");
        assert!(CniManifest::build(json!({
            "plugin": "flannel", "pod_cidr": "10.32.0.0/16", "flannel": {"backend": "udp"},
        }))
        .is_err());
    }
}
