//! `yum_repo`: `/etc/yum.repos.d/NAME.repo`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::util::args;
use crate::util::managed::ManagedFile;
use crate::{Module, ModuleError, Plan, State};

/// One URL or several.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum Urls {
    One(String),
    Many(Vec<String>),
}

impl Urls {
    fn list(&self) -> Vec<String> {
        match self {
            Urls::One(u) => vec![u.clone()],
            Urls::Many(v) => v.clone(),
        }
    }
}

/// Arguments of `yum_repo`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Repository id and file name.
    name: String,
    /// Human name (default: the id).
    description: Option<String>,
    baseurl: Option<Urls>,
    mirrorlist: Option<String>,
    #[serde(default = "yes")]
    gpgcheck: bool,
    /// Key URL(s), e.g. https://repo.example.com/kubernetes/v1.28/rpm/repodata/repomd.xml.key
    gpgkey: Option<Urls>,
    #[serde(default = "yes")]
    enabled: bool,
    repo_gpgcheck: Option<bool>,
    /// More `key=value` settings (e.g. exclude, module_hotfixes).
    #[serde(default)]
    options: BTreeMap<String, String>,
    #[serde(default = "default_dir")]
    repos_dir: String,
}

fn yes() -> bool {
    true
}
fn default_dir() -> String {
    "/etc/yum.repos.d".to_string()
}

/// A built `yum_repo` task.
#[derive(Debug)]
pub(crate) struct YumRepo {
    file: ManagedFile,
}

const NAME: &str = "yum_repo";

fn one_line(field: &str, value: &str) -> Result<(), ModuleError> {
    if value.contains('\n') || value.contains('\r') {
        return Err(ModuleError::args(NAME, format!("{field} must be one line")));
    }
    Ok(())
}

impl YumRepo {
    pub fn build(args: serde_json::Value) -> Result<YumRepo, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        args::file_name(NAME, "name", &a.name)?;
        args::path(NAME, "repos_dir", &a.repos_dir)?;
        if a.baseurl.is_none() && a.mirrorlist.is_none() {
            return Err(ModuleError::args(NAME, "give baseurl or mirrorlist"));
        }
        let flag = |b: bool| if b { "1" } else { "0" };
        let mut text = format!("# Managed by kprov\n[{}]\n", a.name);
        let description = a.description.unwrap_or_else(|| a.name.clone());
        one_line("description", &description)?;
        text.push_str(&format!("name={description}\n"));
        if let Some(urls) = &a.baseurl {
            let urls = urls.list();
            for u in &urls {
                one_line("baseurl", u)?;
            }
            text.push_str(&format!("baseurl={}\n", urls.join("\n        ")));
        }
        if let Some(m) = &a.mirrorlist {
            one_line("mirrorlist", m)?;
            text.push_str(&format!("mirrorlist={m}\n"));
        }
        text.push_str(&format!(
            "enabled={}\ngpgcheck={}\n",
            flag(a.enabled),
            flag(a.gpgcheck)
        ));
        if let Some(r) = a.repo_gpgcheck {
            text.push_str(&format!("repo_gpgcheck={}\n", flag(r)));
        }
        if let Some(keys) = &a.gpgkey {
            let keys = keys.list();
            for k in &keys {
                one_line("gpgkey", k)?;
            }
            text.push_str(&format!("gpgkey={}\n", keys.join("\n       ")));
        } else if a.gpgcheck {
            return Err(ModuleError::args(
                NAME,
                "gpgcheck is on but gpgkey is missing",
            ));
        }
        for (k, v) in &a.options {
            let ok = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(ModuleError::args(
                    NAME,
                    format!("option name `{k}` is invalid"),
                ));
            }
            one_line(k, v)?;
            text.push_str(&format!("{k}={v}\n"));
        }
        let mut file = ManagedFile::new(
            format!("{}/{}.repo", a.repos_dir.trim_end_matches('/'), a.name),
            text,
        );
        file.mode = Some("644".to_string());
        Ok(YumRepo { file })
    }
}

impl Module for YumRepo {
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
    fn repo_file() {
        let m = YumRepo::build(json!({
            "name": "kubernetes", "baseurl": "https://repo.example.com/kubernetes/v1.28/rpm/",
            "gpgkey": "https://repo.example.com/kubernetes/v1.28/rpm/repodata/repomd.xml.key",
            "options": {"exclude": "kubelet kubeadm kubectl"},
        }))
        .unwrap();
        assert_eq!(
            String::from_utf8(m.file.content.clone()).unwrap(),
            "# Managed by kprov\n[kubernetes]\nname=kubernetes\nbaseurl=https://repo.example.com/kubernetes/v1.28/rpm/\n\
             enabled=1\ngpgcheck=1\ngpgkey=https://repo.example.com/kubernetes/v1.28/rpm/repodata/repomd.xml.key\n\
             exclude=kubelet kubeadm kubectl\n"
        );
        assert!(YumRepo::build(json!({"name": "x", "baseurl": "http://x"})).is_err());
        assert!(YumRepo::build(
            json!({"name": "x", "baseurl": "http://x\n[evil]", "gpgcheck": false})
        )
        .is_err());
    }

    /// What roles/kubelet writes on RHEL-family hosts: the per-minor repository with its
    /// key as `gpgkey` and repomd.xml signatures checked.
    #[test]
    fn kubernetes_repository_of_the_kubelet_role() {
        let dir = tempfile::tempdir().unwrap();
        let m = YumRepo::build(json!({
            "name": "kubernetes", "description": "Kubernetes",
            "baseurl": "http://10.0.0.1/core:/stable:/v1.31/rpm/",
            "gpgkey": "http://10.0.0.1/core:/stable:/v1.31/rpm/repodata/repomd.xml.key",
            "repo_gpgcheck": true, "repos_dir": dir.path(),
        }))
        .unwrap();
        run_cycle(&m);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("kubernetes.repo")).unwrap(),
            "# Managed by kprov\n[kubernetes]\nname=Kubernetes\nbaseurl=http://10.0.0.1/core:/stable:/v1.31/rpm/\n\
             enabled=1\ngpgcheck=1\nrepo_gpgcheck=1\ngpgkey=http://10.0.0.1/core:/stable:/v1.31/rpm/repodata/repomd.xml.key\n"
        );
    }

    #[test]
    fn real_cycle() {
        let dir = tempfile::tempdir().unwrap();
        run_cycle(
            &YumRepo::build(json!({"name": "lab", "baseurl": "http://10.0.0.1/repo", "gpgcheck": false, "repos_dir": dir.path()}))
                .unwrap(),
        );
        assert!(dir.path().join("lab.repo").exists());
    }
}
