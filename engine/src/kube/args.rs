//! Arguments of `kube_apply`.

use schemars::JsonSchema;
use serde::Deserialize;

/// The module name as written in playbooks.
pub const MODULE: &str = "kube_apply";

/// `kube_apply` arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Manifest files, or directories whose `*.yaml`, `*.yml` and `*.json` files are
    /// applied in name order, on the host.
    pub manifests: Vec<String>,
    /// Kubeconfig on the host with the credentials to use.
    #[serde(default = "default_kubeconfig")]
    pub kubeconfig: String,
    /// Field manager of the server-side apply.
    #[serde(default = "default_field_manager")]
    pub field_manager: String,
    /// Seconds to wait for each answer of the API server.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

fn default_kubeconfig() -> String {
    "/etc/kubernetes/admin.conf".into()
}

fn default_field_manager() -> String {
    "kprov".into()
}

fn default_timeout() -> u64 {
    10
}

impl Args {
    /// Parses rendered task arguments; the error names the field and the fix.
    pub fn parse(value: serde_json::Value) -> Result<Args, String> {
        let args: Args =
            serde_json::from_value(value).map_err(|e| format!("{MODULE}: bad arguments: {e}"))?;
        for path in args.manifests.iter().chain([&args.kubeconfig]) {
            if !path.starts_with('/') || path.contains(['\n', '\t']) {
                return Err(format!(
                    "{MODULE}: `{}` must be an absolute path on the host without tabs or newlines",
                    path.escape_debug()
                ));
            }
        }
        if args.manifests.is_empty() {
            return Err(format!("{MODULE}: `manifests` lists no file or directory"));
        }
        if args.field_manager.is_empty() || args.timeout == 0 {
            return Err(format!(
                "{MODULE}: `field_manager` must not be empty and `timeout` must be at least 1"
            ));
        }
        Ok(args)
    }

    /// JSON schema of the arguments (for `kprov schema` and editors).
    pub fn schema() -> schemars::Schema {
        schemars::schema_for!(Args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_checks() {
        let a = Args::parse(json!({"manifests": ["/etc/kubernetes/addons"]})).unwrap();
        assert_eq!(a.kubeconfig, "/etc/kubernetes/admin.conf");
        assert_eq!(a.field_manager, "kprov");
        for bad in [
            json!({"manifests": []}),
            json!({"manifests": ["relative.yaml"]}),
            json!({"manifests": ["/a\nb"]}),
            json!({"manifests": ["/a"], "timeout": 0}),
            json!({"manifests": ["/a"], "typo": 1}),
        ] {
            assert!(Args::parse(bad.clone()).is_err(), "{bad}");
        }
    }
}
