//! `crictl_config`: /etc/crictl.yaml pointing crictl at the runtime's socket.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::util::args;
use crate::util::managed::ManagedFile;
use crate::{Module, ModuleError, Plan, State};

/// Arguments of `crictl_config`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// e.g. unix:///run/containerd/containerd.sock
    runtime_endpoint: String,
    /// Default: the runtime endpoint.
    image_endpoint: Option<String>,
    /// Seconds (default 10).
    #[serde(default = "default_timeout")]
    timeout: u32,
    #[serde(default)]
    debug: bool,
    pull_image_on_create: Option<bool>,
    #[serde(default = "default_path")]
    path: String,
}

fn default_timeout() -> u32 {
    10
}
fn default_path() -> String {
    "/etc/crictl.yaml".to_string()
}

/// A built `crictl_config` task.
#[derive(Debug)]
pub(crate) struct CrictlConfig {
    file: ManagedFile,
}

const NAME: &str = "crictl_config";

fn endpoint(field: &str, value: &str) -> Result<String, ModuleError> {
    let ok = ["unix://", "tcp://", "npipe://"]
        .iter()
        .any(|p| value.starts_with(p));
    if !ok || value.chars().any(char::is_control) {
        return Err(ModuleError::args(
            NAME,
            format!("{field} `{value}` must look like unix:///run/containerd/containerd.sock"),
        ));
    }
    // A JSON string is a valid YAML double-quoted scalar.
    Ok(serde_json::Value::String(value.to_string()).to_string())
}

impl CrictlConfig {
    pub fn build(args: serde_json::Value) -> Result<CrictlConfig, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        args::path(NAME, "path", &a.path)?;
        let runtime = endpoint("runtime_endpoint", &a.runtime_endpoint)?;
        let image = match &a.image_endpoint {
            Some(i) => endpoint("image_endpoint", i)?,
            None => runtime.clone(),
        };
        let mut text = format!(
            "# Managed by kprov\nruntime-endpoint: {runtime}\nimage-endpoint: {image}\ntimeout: {}\ndebug: {}\n",
            a.timeout, a.debug
        );
        if let Some(p) = a.pull_image_on_create {
            text.push_str(&format!("pull-image-on-create: {p}\n"));
        }
        let mut file = ManagedFile::new(a.path, text);
        file.mode = Some("644".to_string());
        Ok(CrictlConfig { file })
    }
}

impl Module for CrictlConfig {
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
    fn content() {
        let m = CrictlConfig::build(json!({"runtime_endpoint": "unix:///run/kprov/agent.sock"}))
            .unwrap();
        assert_eq!(
            String::from_utf8(m.file.content.clone()).unwrap(),
            "# Managed by kprov\nruntime-endpoint: \"unix:///run/kprov/agent.sock\"\nimage-endpoint: \"unix:///run/kprov/agent.sock\"\ntimeout: 10\ndebug: false\n"
        );
        assert!(CrictlConfig::build(json!({"runtime_endpoint": "/run/x.sock"})).is_err());
    }

    #[test]
    fn real_cycle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crictl.yaml");
        run_cycle(
            &CrictlConfig::build(
                json!({"runtime_endpoint": "unix:///run/containerd/containerd.sock", "path": path}),
            )
            .unwrap(),
        );
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("containerd.sock"));
    }
}
