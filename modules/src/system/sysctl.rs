//! `sysctl`: kernel parameters in a sysctl.d file and live in /proc/sys.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::script::quote;
use crate::util::args;
use crate::util::managed::{fold, ManagedFile};
use crate::{Diff, Module, ModuleError, Plan, State};

/// A sysctl value as written in YAML.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum Value {
    Number(i64),
    Bool(bool),
    Text(String),
}

/// Arguments of `sysctl`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Settings, e.g. {net.ipv4.ip_forward: 1}.
    settings: BTreeMap<String, Value>,
    /// The file kprov owns (default /etc/sysctl.d/99-kubernetes-cri.conf).
    #[serde(default = "default_file")]
    file: String,
    /// Where live values are read and written (default /proc/sys; tests point elsewhere).
    #[serde(default = "default_proc")]
    proc_sys: String,
}

fn default_file() -> String {
    "/etc/sysctl.d/99-kubernetes-cri.conf".to_string()
}

fn default_proc() -> String {
    "/proc/sys".to_string()
}

/// A built `sysctl` task.
#[derive(Debug)]
pub(crate) struct Sysctl {
    file: ManagedFile,
    /// (key, live path, normalized value)
    settings: Vec<(String, String, String)>,
}

const NAME: &str = "sysctl";

/// Collapses runs of blanks, as the kernel prints multi-number values with tabs.
fn normalize(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Sysctl {
    pub fn build(args: serde_json::Value) -> Result<Sysctl, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        args::path(NAME, "file", &a.file)?;
        args::path(NAME, "proc_sys", &a.proc_sys)?;
        if a.settings.is_empty() {
            return Err(ModuleError::args(NAME, "settings is empty"));
        }
        let mut content = String::from("# Managed by kprov; changes here are overwritten.\n");
        let mut settings = Vec::new();
        for (key, value) in &a.settings {
            let ok = !key.is_empty()
                && !key.starts_with('.')
                && !key.contains("..")
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !ok {
                return Err(ModuleError::args(
                    NAME,
                    format!("`{key}` is not a sysctl key like net.ipv4.ip_forward"),
                ));
            }
            let value = match value {
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => u8::from(*b).to_string(),
                Value::Text(t) => normalize(t),
            };
            if value.is_empty() {
                return Err(ModuleError::args(NAME, format!("{key}: value is empty")));
            }
            content.push_str(&format!("{key} = {value}\n"));
            let live = format!(
                "{}/{}",
                a.proc_sys.trim_end_matches('/'),
                key.replace('.', "/")
            );
            settings.push((key.clone(), live, value));
        }
        Ok(Sysctl {
            file: ManagedFile::new(a.file, content),
            settings,
        })
    }
}

impl Module for Sysctl {
    fn name(&self) -> &'static str {
        NAME
    }

    fn gather(&self) -> String {
        let mut out = self.file.gather("f.");
        for (i, (_, live, _)) in self.settings.iter().enumerate() {
            let p = quote(live);
            out.push_str(&format!(
                "if [ -r {p} ]; then IFS= read -r kp_v <{p} || :; kp_word v.{i} \"$kp_v\"; fi\n"
            ));
        }
        out
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        Ok(Plan::new(
            self.planned_diff(state)?,
            self.planned_script(state),
        ))
    }
}

impl Sysctl {
    /// What would change.
    fn planned_diff(&self, state: &State) -> Result<Diff, ModuleError> {
        let file = self.file.change(NAME, state, "f.")?;
        let mut live = Vec::new();
        for (i, (key, _, value)) in self.settings.iter().enumerate() {
            match state.text(&format!("v.{i}")) {
                None => live.push(format!("set {key} = {value} (not available yet)")),
                Some(now) if normalize(&now) != *value => {
                    live.push(format!("set {key} = {value} (now {})", normalize(&now)))
                }
                Some(_) => {}
            }
        }
        Ok(fold(file.into_iter().collect(), live))
    }

    /// The script that makes it so.
    fn planned_script(&self, _state: &State) -> String {
        let mut out = self.file.apply();
        for (key, live, value) in &self.settings {
            let (p, v) = (quote(live), quote(value));
            let hint = if key.starts_with("net.bridge.") {
                " (load the br_netfilter kernel module first)"
            } else {
                ""
            };
            let missing = quote(&format!("sysctl {key} does not exist{hint}"));
            out.push_str(&format!(
                "[ -e {p} ] || {{ kp_fail {missing}; return; }}\n\
                 kp_v=\n\
                 IFS= read -r kp_v <{p} || [ -n \"$kp_v\" ] || {{ kp_fail 'cannot read '{p}; return; }}\n\
                 set -f\nset -- $kp_v\nkp_v=\"$*\"\nset +f\n\
                 if [ \"$kp_v\" != {v} ]; then\n  \
                 printf '%s\\n' {v} >{p} || {{ kp_fail 'cannot set '{key_q}; return; }}\n  \
                 kp_changed\nfi\n",
                key_q = quote(key)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::Planned as _;
    use crate::util::testutil::{fields, run_cycle};
    use serde_json::json;

    #[test]
    fn file_content_and_live_diff() {
        let m = Sysctl::build(json!({"settings": {"net.ipv4.ip_forward": 1, "net.ipv4.tcp_rmem": "4096  131072 6291456"}}))
            .unwrap();
        assert_eq!(
            String::from_utf8(m.file.content.clone()).unwrap(),
            "# Managed by kprov; changes here are overwritten.\nnet.ipv4.ip_forward = 1\nnet.ipv4.tcp_rmem = 4096 131072 6291456\n"
        );
        let sha = m.file.sha.clone();
        let stat = "regular file|644|0|0|root|root|9";
        let ok = fields(&[
            ("f.stat", stat),
            ("f.sha", &sha),
            ("v.0", "1"),
            ("v.1", "4096\t131072\t6291456"),
        ]);
        assert_eq!(m.diff(&ok).unwrap(), Diff::Unchanged);
        let off = fields(&[
            ("f.stat", stat),
            ("f.sha", &sha),
            ("v.0", "0"),
            ("v.1", "4096 131072 6291456"),
        ]);
        assert_eq!(
            m.diff(&off).unwrap(),
            Diff::change("set net.ipv4.ip_forward = 1 (now 0)")
        );
    }

    #[test]
    fn bad_keys_and_values() {
        assert!(Sysctl::build(json!({"settings": {"../../etc/passwd": 1}})).is_err());
        assert!(Sysctl::build(json!({"settings": {"a.b": "$(x)"}})).is_ok());
        assert!(Sysctl::build(json!({"settings": {}})).is_err());
    }

    #[test]
    fn real_cycle_against_a_fake_proc_sys() {
        let dir = tempfile::tempdir().unwrap();
        let proc_sys = dir.path().join("proc");
        std::fs::create_dir_all(proc_sys.join("net/ipv4")).unwrap();
        std::fs::write(proc_sys.join("net/ipv4/ip_forward"), "0\n").unwrap();
        let file = dir.path().join("sysctl.d/99-kubernetes-cri.conf");
        let m = Sysctl::build(json!({
            "settings": {"net.ipv4.ip_forward": 1},
            "file": file, "proc_sys": proc_sys,
        }))
        .unwrap();
        run_cycle(&m);
        assert_eq!(
            std::fs::read_to_string(proc_sys.join("net/ipv4/ip_forward")).unwrap(),
            "1\n"
        );
        assert!(std::fs::read_to_string(&file)
            .unwrap()
            .contains("net.ipv4.ip_forward = 1\n"));

        // A missing key fails with a hint, naming the key.
        let m = Sysctl::build(json!({
            "settings": {"net.bridge.bridge-nf-call-iptables": 1},
            "file": file, "proc_sys": proc_sys,
        }))
        .unwrap();
        let state = crate::util::testutil::gather(&m).state();
        assert!(m.diff(&state).unwrap().needs_apply());
        let r = crate::util::testutil::apply(&m, &state);
        assert!(r.failed.unwrap().contains("br_netfilter"));
    }
}
