//! CNI: runs the standard plugin binaries (protocol: env + stdin JSON) for a
//! pod's network namespace; ADD on sandbox start, DEL on stop.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// Interface name inside the pod.
pub const POD_IFNAME: &str = "eth0";

/// A CNI failure.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("no CNI network config in {0}")]
    NoConfig(String),
    #[error("CNI config {path}: {message}")]
    BadConfig { path: String, message: String },
    #[error("CNI plugin {plugin} {command}: {message}")]
    Plugin {
        plugin: String,
        command: String,
        message: String,
    },
}

/// A loaded network configuration list.
#[derive(Debug, Clone)]
pub struct NetworkList {
    pub name: String,
    pub cni_version: String,
    pub plugins: Vec<Value>,
}

/// The pod a CNI call is for.
#[derive(Debug, Clone)]
pub struct PodRef<'a> {
    pub sandbox_id: &'a str,
    pub netns: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
    pub uid: &'a str,
}

/// Executes CNI plugins from `bin_dirs` with configs from `conf_dir`.
#[derive(Debug, Clone)]
pub struct Cni {
    pub bin_dirs: Vec<PathBuf>,
    pub conf_dir: PathBuf,
}

impl Cni {
    /// The first network config (by file name) in the config dir, if any.
    pub fn load(&self) -> Result<NetworkList, CniError> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.conf_dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        matches!(
                            p.extension().and_then(|e| e.to_str()),
                            Some("conf" | "conflist" | "json")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        let path = files
            .first()
            .ok_or_else(|| CniError::NoConfig(self.conf_dir.display().to_string()))?;
        let bad = |message: String| CniError::BadConfig {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| bad(format!("line {} column {}: {e}", e.line(), e.column())))?;
        let name = v["name"].as_str().unwrap_or("default").to_string();
        let cni_version = v["cniVersion"].as_str().unwrap_or("0.4.0").to_string();
        let plugins = match v.get("plugins").and_then(Value::as_array) {
            Some(p) => p.clone(),
            None if v.get("type").is_some() => vec![v.clone()],
            None => return Err(bad("neither \"plugins\" nor \"type\" is set".into())),
        };
        if plugins.iter().any(|p| p["type"].as_str().is_none()) {
            return Err(bad("a plugin has no \"type\"".into()));
        }
        Ok(NetworkList {
            name,
            cni_version,
            plugins,
        })
    }

    /// True when a network config exists (drives NetworkReady).
    pub fn ready(&self) -> bool {
        self.load().is_ok()
    }

    /// Runs ADD through the whole list; returns the final result.
    pub async fn add(
        &self,
        net: &NetworkList,
        pod: &PodRef<'_>,
        port_mappings: &[Value],
    ) -> Result<Value, CniError> {
        let mut prev: Option<Value> = None;
        for p in net.plugins.iter().filter(|p| needed(p, port_mappings)) {
            let conf = plugin_conf(net, p, prev.as_ref(), port_mappings);
            let ty = p["type"].as_str().unwrap_or_default();
            prev = Some(self.exec(ty, "ADD", pod, POD_IFNAME, &conf).await?);
        }
        Ok(prev.unwrap_or(Value::Null))
    }

    /// Runs DEL through the list in reverse; every plugin runs even if one fails.
    pub async fn del(
        &self,
        net: &NetworkList,
        pod: &PodRef<'_>,
        prev_result: Option<&Value>,
        port_mappings: &[Value],
    ) -> Result<(), CniError> {
        let mut first_err = None;
        for p in net
            .plugins
            .iter()
            .rev()
            .filter(|p| needed(p, port_mappings))
        {
            let conf = plugin_conf(net, p, prev_result, port_mappings);
            let ty = p["type"].as_str().unwrap_or_default();
            if let Err(e) = self.exec(ty, "DEL", pod, POD_IFNAME, &conf).await {
                tracing::warn!(error = %e, "CNI DEL failed");
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn find_plugin(&self, ty: &str) -> Option<PathBuf> {
        if ty.contains('/') {
            return None;
        }
        self.bin_dirs
            .iter()
            .map(|d| d.join(ty))
            .find(|p| p.is_file())
    }

    async fn exec(
        &self,
        ty: &str,
        command: &str,
        pod: &PodRef<'_>,
        ifname: &str,
        conf: &Value,
    ) -> Result<Value, CniError> {
        let err = |message: String| CniError::Plugin {
            plugin: ty.to_string(),
            command: command.to_string(),
            message,
        };
        let bin = self.find_plugin(ty).ok_or_else(|| {
            err(format!(
                "binary not found in {}",
                join_paths(&self.bin_dirs)
            ))
        })?;
        let args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
            pod.namespace, pod.name, pod.sandbox_id, pod.uid
        );
        let mut child = Command::new(&bin)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", pod.sandbox_id)
            .env("CNI_NETNS", pod.netns)
            .env("CNI_IFNAME", ifname)
            .env("CNI_ARGS", args)
            .env("CNI_PATH", join_paths(&self.bin_dirs))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| err(format!("cannot run {}: {e}", bin.display())))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(conf.to_string().as_bytes())
                .await
                .map_err(|e| err(e.to_string()))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| err(e.to_string()))?;
        if !out.status.success() {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            let msg = match v["msg"].as_str() {
                Some(m) => format!("{m} {}", v["details"].as_str().unwrap_or_default()),
                None => format!(
                    "{} {}",
                    String::from_utf8_lossy(&out.stdout).trim(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            };
            return Err(err(msg.trim().to_string()));
        }
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&out.stdout).map_err(|e| err(format!("bad result: {e}")))
    }
}

/// A plugin that only serves port mappings (portmap) has nothing to do for a
/// pod without any: skipping it saves a plugin run on ADD and DEL alike.
fn needed(plugin: &Value, port_mappings: &[Value]) -> bool {
    let caps = plugin["capabilities"].as_object();
    let only_ports = caps
        .map(|c| c.len() == 1 && c.get("portMappings").and_then(Value::as_bool) == Some(true))
        .unwrap_or(false);
    !(only_ports && port_mappings.is_empty())
}

fn join_paths(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// One plugin's stdin config: the plugin entry plus name, version, prevResult and runtimeConfig.
fn plugin_conf(
    net: &NetworkList,
    plugin: &Value,
    prev: Option<&Value>,
    port_mappings: &[Value],
) -> Value {
    let mut c = plugin.clone();
    c["name"] = json!(net.name);
    c["cniVersion"] = json!(net.cni_version);
    if let Some(p) = prev.filter(|p| !p.is_null()) {
        c["prevResult"] = p.clone();
    }
    if plugin["capabilities"]["portMappings"].as_bool() == Some(true) {
        c["runtimeConfig"] = json!({"portMappings": port_mappings});
    }
    c
}

/// The first IP address (without prefix length) of a CNI result.
pub fn result_ip(result: &Value) -> Option<String> {
    result["ips"]
        .as_array()?
        .iter()
        .filter_map(|ip| ip["address"].as_str())
        .map(|a| a.split('/').next().unwrap_or(a).to_string())
        .next()
}

/// True when `path` names an existing network namespace pin.
pub fn netns_exists(path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflist_and_ip() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("10-kpt.conflist"),
            r#"{"cniVersion":"1.0.0","name":"kpt","plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]}"#,
        )
        .unwrap();
        let cni = Cni {
            bin_dirs: vec![],
            conf_dir: d.path().into(),
        };
        let net = cni.load().unwrap();
        assert_eq!(net.plugins.len(), 2);
        let pm = vec![json!({"hostPort": 8080, "containerPort": 80, "protocol": "tcp"})];
        let c = plugin_conf(&net, &net.plugins[1], Some(&json!({"x": 1})), &pm);
        assert_eq!(c["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
        assert_eq!(c["prevResult"]["x"], 1);
        assert_eq!(
            result_ip(&json!({"ips":[{"address":"10.99.0.7/16"}]})).as_deref(),
            Some("10.99.0.7")
        );
    }

    #[test]
    fn port_only_plugins_are_skipped_without_mappings() {
        let pm = json!({"type": "portmap", "capabilities": {"portMappings": true}});
        let bridge = json!({"type": "bridge"});
        assert!(!needed(&pm, &[]));
        assert!(needed(&pm, &[json!({"hostPort": 80})]));
        assert!(needed(&bridge, &[]));
    }

    #[test]
    fn missing_and_broken_configs() {
        let d = tempfile::tempdir().unwrap();
        let cni = Cni {
            bin_dirs: vec![],
            conf_dir: d.path().into(),
        };
        assert!(!cni.ready());
        std::fs::write(d.path().join("a.conf"), "{\n  \"name\": x}").unwrap();
        let e = cni.load().unwrap_err().to_string();
        assert!(e.contains("a.conf") && e.contains("line 2"), "{e}");
    }
}
