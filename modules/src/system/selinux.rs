//! `selinux`: permissive now and in /etc/selinux/config; nothing on hosts without SELinux.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::script::quote;
use crate::util::args;
use crate::util::edit::{self, lines, rejoin};
use crate::{Module, ModuleError, Plan, State};

/// Arguments of `selinux` (the defaults are what hosts need; tests point elsewhere).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    #[serde(default = "default_config")]
    config: String,
    /// The kernel's enforce switch (`1` enforcing, `0` permissive).
    #[serde(default = "default_enforce")]
    enforce: String,
}

fn default_config() -> String {
    "/etc/selinux/config".to_string()
}
fn default_enforce() -> String {
    "/sys/fs/selinux/enforce".to_string()
}

/// A built `selinux` task.
#[derive(Debug)]
pub(crate) struct Selinux {
    config: String,
    enforce: String,
}

const NAME: &str = "selinux";

/// `SELINUX=enforcing` becomes `SELINUX=permissive`; `disabled` stays (it is stricter off).
fn permissive(current: Option<&[u8]>, path: &str) -> Result<Option<Vec<u8>>, ModuleError> {
    let Some(cur) = current else { return Ok(None) };
    let mut all = lines(NAME, path, Some(cur))?;
    let mut seen = false;
    for line in all.iter_mut() {
        if let Some(value) = line.trim_start().strip_prefix("SELINUX=") {
            seen = true;
            if value.trim().trim_matches('"') == "enforcing" {
                *line = "SELINUX=permissive".to_string();
            }
        }
    }
    if !seen {
        all.push("SELINUX=permissive".to_string());
    }
    Ok(Some(rejoin(&all, Some(cur))))
}

impl Selinux {
    pub fn build(args: serde_json::Value) -> Result<Selinux, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        args::path(NAME, "config", &a.config)?;
        args::path(NAME, "enforce", &a.enforce)?;
        Ok(Selinux {
            config: a.config,
            enforce: a.enforce,
        })
    }
}

impl Module for Selinux {
    fn name(&self) -> &'static str {
        NAME
    }

    fn edited_file(&self) -> Option<(&str, &'static str)> {
        Some((&self.config, "f."))
    }

    fn gather(&self) -> String {
        let e = quote(&self.enforce);
        format!(
            "{}if [ -r {e} ]; then IFS= read -r kp_v <{e} || :; kp_word enforce \"$kp_v\"; fi\n",
            edit::gather("f.", &self.config)
        )
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        let path = &self.config;
        let file = edit::plan(NAME, state, "f.", path, &|c| permissive(c, path), None)?;
        let now = (state.text("enforce").as_deref().map(str::trim) == Some("1"))
            .then(|| "setenforce 0 (enforcing now)".to_string());
        let e = quote(&self.enforce);
        let tail = format!(
            "if [ -r {e} ]; then\n  IFS= read -r kp_v <{e} || :\n  if [ \"$kp_v\" = 1 ]; then\n    \
             printf 0 >{e} || {{ kp_fail 'cannot switch SELinux to permissive (setenforce 0)'; return; }}\n    \
             kp_changed\n  fi\nfi\n"
        );
        Ok(file.into_plan(now.into_iter().collect(), &tail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::Planned as _;
    use crate::util::testutil::{fields, gather, run_cycle};
    use crate::Diff;
    use serde_json::json;

    #[test]
    fn config_edit() {
        let new = |s: &str| {
            String::from_utf8(permissive(Some(s.as_bytes()), "/c").unwrap().unwrap()).unwrap()
        };
        assert_eq!(
            new("# x\nSELINUX=enforcing\nSELINUXTYPE=targeted\n"),
            "# x\nSELINUX=permissive\nSELINUXTYPE=targeted\n"
        );
        assert_eq!(new("SELINUX=disabled\n"), "SELINUX=disabled\n");
        assert_eq!(
            new("SELINUXTYPE=targeted\n"),
            "SELINUXTYPE=targeted\nSELINUX=permissive\n"
        );
        assert_eq!(permissive(None, "/c").unwrap(), None);
    }

    #[test]
    fn no_selinux_is_unchanged() {
        let m = Selinux::build(json!({})).unwrap();
        assert_eq!(
            m.diff(&fields(&[("f.stat", "absent")])).unwrap(),
            Diff::Unchanged
        );
        // This machine has no SELinux: the real gather agrees.
        assert_eq!(m.diff(&gather(&m).state()).unwrap(), Diff::Unchanged);
        let d = m
            .diff(&fields(&[("f.stat", "absent"), ("enforce", "1")]))
            .unwrap();
        assert_eq!(d, Diff::change("setenforce 0 (enforcing now)"));
    }

    #[test]
    fn real_cycle_with_fake_enforce_switch() {
        let dir = tempfile::tempdir().unwrap();
        let (config, enforce) = (dir.path().join("config"), dir.path().join("enforce"));
        std::fs::write(&config, "SELINUX=enforcing\n").unwrap();
        std::fs::write(&enforce, "1").unwrap();
        run_cycle(&Selinux::build(json!({"config": config, "enforce": enforce})).unwrap());
        assert_eq!(
            std::fs::read_to_string(&config).unwrap(),
            "SELINUX=permissive\n"
        );
        assert_eq!(std::fs::read_to_string(&enforce).unwrap(), "0");
    }
}
