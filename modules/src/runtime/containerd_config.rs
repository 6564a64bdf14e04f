//! `containerd_config`: structured edit of containerd's config.toml with `toml_edit`, keeping
//! everything else (comments, order, other plugins) as it is: the CRI plugin enabled,
//! `SystemdCgroup`, `sandbox_image`, `oom_score`, and registries through `config_path`
//! (mirrors and TLS live in `hosts.toml` files there, written by `containerd_hosts`).
//!
//! Registry credentials have no place in hosts.toml: containerd 1.6/1.7 and 2.x read
//! static ones only from the CRI `registry.configs."<host>".auth` table (deprecated, with a
//! warning in containerd's log, but still the only one). kprov writes exactly the given
//! credentials there and nothing else: the deprecated `registry.mirrors` table and
//! `configs.<host>.tls` (both refused by containerd next to `config_path`) are removed.
//! The current file is gathered; the new text is computed here.

use std::collections::BTreeMap;

use regex::Regex;
use schemars::JsonSchema;
use serde::Deserialize;
use toml_edit::{DocumentMut, Item, Table, TableLike, Value};

use crate::util::args;
use crate::util::edit::{self};
use crate::{Diff, Module, ModuleError, Plan, State};

/// Credentials for one registry host. The TLS keys of the cluster spec's registry entry
/// are accepted and left to `containerd_hosts` (hosts.toml).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the TLS keys are accepted here and used by containerd_hosts
pub(crate) struct Registry {
    insecure_skip_verify: Option<bool>,
    plain_http: Option<bool>,
    ca_file: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    username: Option<String>,
    /// Secret: masked in diffs; the file is written 0600.
    password: Option<String>,
    /// The same credentials nested, as the cluster spec writes them.
    auth: Option<Auth>,
}

/// Registry credentials (`auth: {username, password}`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Auth {
    username: Option<String>,
    /// Secret: masked in diffs.
    password: Option<String>,
}

/// Arguments of `containerd_config`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    #[serde(default = "default_path")]
    path: String,
    /// Make sure the CRI plugin is not in disabled_plugins (default true).
    #[serde(default = "yes")]
    cri_enabled: bool,
    /// runc's SystemdCgroup (must match the kubelet's cgroupDriver).
    systemd_cgroup: Option<bool>,
    /// Pause image, e.g. registry.k8s.io/pause:3.9 or a mirror.
    sandbox_image: Option<String>,
    /// Directory of the registries' hosts.toml files (containerd's `config_path`).
    #[serde(default = "default_config_path")]
    config_path: String,
    /// Registry host (host:port) → credentials (`auth: {username, password}`).
    #[serde(default)]
    registries: BTreeMap<String, Registry>,
    /// containerd daemon's OOM score adjustment, e.g. -999.
    oom_score: Option<i64>,
}

fn default_path() -> String {
    "/etc/containerd/config.toml".to_string()
}
fn default_config_path() -> String {
    "/etc/containerd/certs.d".to_string()
}
fn yes() -> bool {
    true
}

/// A built `containerd_config` task.
#[derive(Debug)]
pub(crate) struct ContainerdConfig {
    a: Args,
    secret: bool,
}

const NAME: &str = "containerd_config";
const CRI_V2: &str = "io.containerd.grpc.v1.cri";
const CRI_V3_RUNTIME: &str = "io.containerd.cri.v1.runtime";
const CRI_V3_IMAGES: &str = "io.containerd.cri.v1.images";

fn conflict(message: impl Into<String>) -> ModuleError {
    ModuleError::conflict(NAME, message)
}

/// The child table `key` of `parent`, created (implicit) when missing.
fn child<'a>(
    parent: &'a mut dyn TableLike,
    key: &str,
    path: &str,
) -> Result<&'a mut dyn TableLike, ModuleError> {
    if parent.get(key).is_none() {
        let mut t = Table::new();
        t.set_implicit(true);
        parent.insert(key, Item::Table(t));
    }
    parent
        .get_mut(key)
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| conflict(format!("{path}.{key} is not a table; fix or remove it")))
}

/// Walks/creates `keys` below the document root.
fn tables<'a>(
    doc: &'a mut DocumentMut,
    keys: &[&str],
) -> Result<&'a mut dyn TableLike, ModuleError> {
    let mut cur: &mut dyn TableLike = doc.as_table_mut();
    let mut path = String::new();
    for key in keys {
        cur = child(cur, key, &path)?;
        path = if path.is_empty() {
            (*key).to_string()
        } else {
            format!("{path}.{key}")
        };
    }
    Ok(cur)
}

/// Sets `key` to `new` unless it already has that value (keeps comments around it).
fn set(table: &mut dyn TableLike, key: &str, new: Value) {
    if let Some(Item::Value(old)) = table.get_mut(key) {
        if old.to_string().trim() == new.to_string().trim() {
            return;
        }
        let decor = old.decor().clone();
        *old = new;
        *old.decor_mut() = decor;
        return;
    }
    table.insert(key, Item::Value(new));
}

/// Credentials per host: (username, password).
type Credentials<'a> = BTreeMap<String, (Option<&'a str>, Option<&'a str>)>;

/// The credentials a `configs` table holds, or `None` when it holds anything else too
/// (then kprov rewrites it).
fn credentials_in(item: &Item) -> Option<Credentials<'_>> {
    let mut out = BTreeMap::new();
    for (host, entry) in item.as_table_like()?.iter() {
        let entry = entry.as_table_like()?;
        if entry.len() != 1 {
            return None;
        }
        let auth = entry.get("auth")?.as_table_like()?;
        let mut user = None;
        let mut password = None;
        for (k, v) in auth.iter() {
            match k {
                "username" => user = Some(v.as_str()?),
                "password" => password = Some(v.as_str()?),
                _ => return None,
            }
        }
        out.insert(host.to_string(), (user, password));
    }
    Some(out)
}

impl ContainerdConfig {
    pub fn build(args: serde_json::Value) -> Result<ContainerdConfig, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        args::path(NAME, "path", &a.path)?;
        args::path(NAME, "config_path", &a.config_path)?;
        let mut a = a;
        for (host, r) in a.registries.iter_mut() {
            crate::runtime::registry_name::check_host(host)
                .map_err(|e| ModuleError::args(NAME, format!("registries.`{host}`: {e}")))?;
            if let Some(auth) = r.auth.take() {
                if r.username.is_some() || r.password.is_some() {
                    return Err(ModuleError::args(
                        NAME,
                        format!("registries.{host}: give username/password or auth, not both"),
                    ));
                }
                r.username = auth.username;
                r.password = auth.password;
            }
        }
        let secret = a.registries.values().any(|r| r.password.is_some());
        Ok(ContainerdConfig { a, secret })
    }

    /// The new config text for the current one.
    fn edit(&self, current: Option<&[u8]>) -> Result<Option<Vec<u8>>, ModuleError> {
        let path = &self.a.path;
        let text = match current {
            None => "version = 2\n".to_string(),
            Some(bytes) => String::from_utf8(bytes.to_vec())
                .map_err(|_| conflict(format!("{path} is not UTF-8 text")))?,
        };
        let mut doc: DocumentMut = text
            .parse()
            .map_err(|e| conflict(format!("{path} is not valid TOML: {e}")))?;
        let version = match doc.get("version").map(|v| v.as_integer()) {
            Some(Some(v)) => v,
            Some(None) => return Err(conflict(format!("{path}: version is not an integer"))),
            None if doc.get("plugins").is_some_and(|p| p.get("cri").is_some()) => {
                return Err(conflict(format!(
                    "{path} is a version 1 config; convert it with `containerd config migrate` or \
                     replace it with `containerd config default`"
                )))
            }
            None => {
                doc.insert("version", toml_edit::value(2));
                2
            }
        };
        let (disabled, runtime, images): (&[&str], &[&str], &[&str]) = match version {
            2 => (&["cri", CRI_V2], &["plugins", CRI_V2], &["plugins", CRI_V2]),
            3 => (
                &["cri", CRI_V2, CRI_V3_RUNTIME, CRI_V3_IMAGES],
                &["plugins", CRI_V3_RUNTIME],
                &["plugins", CRI_V3_IMAGES],
            ),
            v => {
                return Err(conflict(format!(
                    "{path}: config version {v} is not supported (2 or 3)"
                )))
            }
        };

        if self.a.cri_enabled {
            if let Some(item) = doc.get_mut("disabled_plugins") {
                let array = item
                    .as_array_mut()
                    .ok_or_else(|| conflict(format!("{path}: disabled_plugins is not a list")))?;
                let before = array.len();
                array.retain(|v| !v.as_str().is_some_and(|s| disabled.contains(&s)));
                if array.len() != before {
                    array.fmt();
                }
            }
        }
        if let Some(score) = self.a.oom_score {
            set(doc.as_table_mut(), "oom_score", Value::from(score));
        }
        if let Some(systemd) = self.a.systemd_cgroup {
            let runc = {
                let mut keys = runtime.to_vec();
                keys.extend(["containerd", "runtimes", "runc"]);
                tables(&mut doc, &keys)?
            };
            if runc.get("runtime_type").is_none() {
                runc.insert("runtime_type", toml_edit::value("io.containerd.runc.v2"));
            }
            let options = child(runc, "options", "runc")?;
            set(options, "SystemdCgroup", Value::from(systemd));
        }
        if let Some(image) = &self.a.sandbox_image {
            if version == 2 {
                set(
                    tables(&mut doc, images)?,
                    "sandbox_image",
                    Value::from(image.as_str()),
                );
            } else {
                let mut keys = images.to_vec();
                keys.push("pinned_images");
                set(
                    tables(&mut doc, &keys)?,
                    "sandbox",
                    Value::from(image.as_str()),
                );
            }
        }
        let mut keys = images.to_vec();
        keys.push("registry");
        let registry = tables(&mut doc, &keys)?;
        set(
            registry,
            "config_path",
            Value::from(self.a.config_path.as_str()),
        );
        // Next to config_path containerd refuses `mirrors` and `configs.*.tls`; kprov owns
        // `configs`: exactly the credentials given.
        registry.remove("mirrors");
        let credentials: Credentials<'_> = self
            .a
            .registries
            .iter()
            .filter(|(_, r)| r.username.is_some() || r.password.is_some())
            .map(|(h, r)| (h.clone(), (r.username.as_deref(), r.password.as_deref())))
            .collect();
        if credentials.is_empty() {
            registry.remove("configs");
        } else if registry.get("configs").and_then(credentials_in) != Some(credentials.clone()) {
            let mut configs = Table::new();
            configs.set_implicit(true);
            for (host, (user, password)) in &credentials {
                let mut auth = Table::new();
                if let Some(u) = user {
                    auth.insert("username", toml_edit::value(*u));
                }
                if let Some(p) = password {
                    auth.insert("password", toml_edit::value(*p));
                }
                let mut entry = Table::new();
                entry.set_implicit(true);
                entry.insert("auth", Item::Table(auth));
                configs.insert(host, Item::Table(entry));
            }
            registry.insert("configs", Item::Table(configs));
        }
        let new = doc.to_string();
        if current.is_some_and(|c| c == new.as_bytes()) {
            return Ok(current.map(<[u8]>::to_vec));
        }
        Ok(Some(new.into_bytes()))
    }
}

/// Replaces password/auth/token values with stars.
fn mask(text: Option<String>) -> Option<String> {
    let re = Regex::new(r#"(?m)^(\s*(?:password|auth|identitytoken)\s*=\s*).*$"#).ok()?;
    text.map(|t| re.replace_all(&t, "${1}\"********\"").into_owned())
}

impl Module for ContainerdConfig {
    fn name(&self) -> &'static str {
        NAME
    }

    fn edited_file(&self) -> Option<(&str, &'static str)> {
        Some((&self.a.path, ""))
    }

    fn gather(&self) -> String {
        edit::gather("", &self.a.path)
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        let mode = self.secret.then_some("600");
        let edited = edit::plan(NAME, state, "", &self.a.path, &|c| self.edit(c), mode)?;
        let mut plan = edited.into_plan(Vec::new(), "").secret(self.secret);
        if let Diff::Change { before, after, .. } = &mut plan.diff {
            *before = mask(before.take());
            *after = mask(after.take());
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::run_cycle;
    use crate::util::testutil::Planned as _;
    use serde_json::json;

    const DEBIAN_LIKE: &str = r#"# containerd config, edited by an admin
version = 2
disabled_plugins = ["cri", "io.containerd.internal.v1.opt"]
oom_score = 0

[plugins]
  # keep this comment
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.6"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = ""
"#;

    fn full() -> ContainerdConfig {
        ContainerdConfig::build(json!({
            "systemd_cgroup": true,
            "sandbox_image": "harbor.lab:5000/pause:3.9",
            "registries": {"harbor.lab:5000": {"insecure_skip_verify": true, "username": "admin", "password": "s3cr'et\"$(x)"}},
            "oom_score": -999,
        }))
        .unwrap()
    }

    fn edited(m: &ContainerdConfig, text: Option<&str>) -> String {
        String::from_utf8(m.edit(text.map(str::as_bytes)).unwrap().unwrap()).unwrap()
    }

    #[test]
    fn edits_keep_the_rest_and_are_stable() {
        let m = full();
        let new = edited(&m, Some(DEBIAN_LIKE));
        assert!(new.starts_with("# containerd config, edited by an admin\nversion = 2\n"));
        assert!(new.contains("# keep this comment"));
        assert!(
            new.contains(r#"disabled_plugins = ["io.containerd.internal.v1.opt"]"#),
            "{new}"
        );
        assert!(new.contains("oom_score = -999"));
        assert!(new.contains("SystemdCgroup = true"));
        assert!(new.contains(r#"sandbox_image = "harbor.lab:5000/pause:3.9""#));
        let doc: DocumentMut = new.parse().unwrap();
        let registry = &doc["plugins"][CRI_V2]["registry"];
        assert_eq!(
            registry["config_path"].as_str(),
            Some("/etc/containerd/certs.d")
        );
        assert_eq!(
            registry["configs"]["harbor.lab:5000"]["auth"]["password"].as_str(),
            Some("s3cr'et\"$(x)")
        );
        // TLS is hosts.toml's business: containerd refuses configs.*.tls next to config_path.
        assert!(
            registry["configs"]["harbor.lab:5000"].get("tls").is_none(),
            "{new}"
        );
        assert!(registry.get("mirrors").is_none(), "{new}");
        // Idempotent: editing the result changes nothing.
        assert_eq!(edited(&m, Some(&new)), new);
    }

    #[test]
    fn new_file_and_unsupported_inputs() {
        let m = ContainerdConfig::build(json!({"systemd_cgroup": true})).unwrap();
        let new = edited(&m, None);
        assert!(new.starts_with("version = 2\n"));
        assert!(new.contains("runtime_type = \"io.containerd.runc.v2\""));
        let v1 = "[plugins.cri]\nsandbox_image = \"x\"\n";
        assert!(m
            .edit(Some(v1.as_bytes()))
            .unwrap_err()
            .to_string()
            .contains("migrate"));
        assert!(m.edit(Some(b"plugins = 5\n")).is_err());
        assert!(m
            .edit(Some(b"version = 2\n[broken"))
            .unwrap_err()
            .to_string()
            .contains("not valid TOML"));
    }

    #[test]
    fn version_3_sets_runtime_and_images_plugins() {
        let m = ContainerdConfig::build(json!({"systemd_cgroup": true, "sandbox_image": "p:3.10"}))
            .unwrap();
        let new = edited(
            &m,
            Some("version = 3\ndisabled_plugins = [\"io.containerd.cri.v1.images\"]\n"),
        );
        let doc: DocumentMut = new.parse().unwrap();
        assert_eq!(doc["disabled_plugins"].as_array().unwrap().len(), 0);
        assert_eq!(
            doc["plugins"][CRI_V3_RUNTIME]["containerd"]["runtimes"]["runc"]["options"]
                ["SystemdCgroup"]
                .as_bool(),
            Some(true)
        );
        assert_eq!(
            doc["plugins"][CRI_V3_IMAGES]["pinned_images"]["sandbox"].as_str(),
            Some("p:3.10")
        );
    }

    /// A config kprov wrote before config_path (deprecated mirrors, configs with TLS) is
    /// migrated: config_path set, `mirrors` and `tls` gone, credentials kept; version 3
    /// gets config_path in the images plugin; hostile credentials stay values.
    #[test]
    fn deprecated_tables_are_replaced_by_config_path() {
        let old = r#"version = 2
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = ""
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
    endpoint = ["https://mirror.lab"]
  [plugins."io.containerd.grpc.v1.cri".registry.configs."h:5000".tls]
    insecure_skip_verify = true
  [plugins."io.containerd.grpc.v1.cri".registry.configs."h:5000".auth]
    username = "u"
"#;
        let hostile = "p\"]\n[evil]\nk = \"v#'''\\";
        let m = ContainerdConfig::build(json!({
            "registries": {"h:5000": {"insecure_skip_verify": true, "auth": {"username": "u", "password": hostile}},
                           "plain:5000": {"plain_http": true}},
        }))
        .unwrap();
        let new = edited(&m, Some(old));
        let doc: DocumentMut = new.parse().unwrap();
        let registry = doc["plugins"][CRI_V2]["registry"].as_table().unwrap();
        let keys: Vec<&str> = registry.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["config_path", "configs"], "{new}");
        assert_eq!(
            registry["config_path"].as_str(),
            Some("/etc/containerd/certs.d")
        );
        let configs = registry["configs"].as_table().unwrap();
        assert_eq!(configs.len(), 1, "only hosts with credentials: {new}");
        let auth = configs["h:5000"]["auth"].as_table().unwrap();
        assert_eq!(auth.len(), 2);
        assert_eq!(auth["password"].as_str(), Some(hostile));
        let top: Vec<&str> = doc.iter().map(|(k, _)| k).collect();
        assert_eq!(top, ["version", "plugins"], "{new}");
        assert_eq!(edited(&m, Some(&new)), new, "stable");

        let none = ContainerdConfig::build(json!({})).unwrap();
        let doc: DocumentMut = edited(&none, Some(&new)).parse().unwrap();
        assert!(doc["plugins"][CRI_V2]["registry"].get("configs").is_none());

        let v3 = edited(&m, Some("version = 3\n"));
        let doc: DocumentMut = v3.parse().unwrap();
        assert_eq!(
            doc["plugins"][CRI_V3_IMAGES]["registry"]["config_path"].as_str(),
            Some("/etc/containerd/certs.d"),
            "{v3}"
        );
        let bad = json!({"registries": {"h\"]": {"auth": {"username": "u"}}}});
        assert!(ContainerdConfig::build(bad).is_err());
    }

    #[test]
    fn nested_auth_as_in_the_cluster_spec() {
        let m = ContainerdConfig::build(json!({
            "registries": {"harbor:443": {"insecure_skip_verify": false, "auth": {"username": "u", "password": "p"}}},
        }))
        .unwrap();
        assert!(m.sensitive_for(&crate::util::testutil::fields(&[("stat", "absent")])));
        let doc: DocumentMut = edited(&m, None).parse().unwrap();
        let auth = &doc["plugins"][CRI_V2]["registry"]["configs"]["harbor:443"]["auth"];
        assert_eq!(auth["password"].as_str(), Some("p"));
        let both = json!({"registries": {"h": {"username": "u", "auth": {"username": "u"}}}});
        assert!(ContainerdConfig::build(both).is_err());
    }

    #[test]
    fn passwords_are_masked_in_diffs() {
        let m = full();
        assert!(m.sensitive_for(&crate::util::testutil::fields(&[("stat", "absent")])));
        let state = crate::util::testutil::fields(&[("stat", "absent")]);
        let Diff::Change { after, .. } = m.diff(&state).unwrap() else {
            panic!()
        };
        let after = after.unwrap();
        assert!(
            !after.contains("s3cr") && after.contains("password = \"********\""),
            "{after}"
        );
    }

    #[test]
    fn real_cycle_on_a_temp_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, DEBIAN_LIKE).unwrap();
        let mut m = full();
        m.a.path = path.to_string_lossy().into_owned();
        run_cycle(&m);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("SystemdCgroup = true") && text.contains("# keep this comment"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a config with passwords is written 0600");
    }
}
