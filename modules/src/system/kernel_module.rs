//! `kernel_module`: kernel modules loaded now (`modprobe`) and at boot (modules-load.d).

use schemars::JsonSchema;
use serde::Deserialize;

use crate::script::quote;
use crate::util::args;
use crate::util::managed::{fold, ManagedFile};
use crate::{Diff, Module, ModuleError, Plan, State};

/// Arguments of `kernel_module`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Module names, e.g. [overlay, br_netfilter].
    names: Vec<String>,
    /// Name of the boot-time list: /etc/modules-load.d/<file>.conf (default k8s).
    #[serde(default = "default_file")]
    file: String,
    /// Directory of boot-time lists (default /etc/modules-load.d).
    #[serde(default = "default_dir")]
    modules_load_dir: String,
    /// Where loaded modules show up (default /sys/module; tests point elsewhere).
    #[serde(default = "default_sys")]
    sys_module: String,
    /// List of modules built into the kernel (default
    /// /lib/modules/<running kernel>/modules.builtin; tests point elsewhere).
    modules_builtin: Option<String>,
}

fn default_file() -> String {
    "k8s".to_string()
}
fn default_dir() -> String {
    "/etc/modules-load.d".to_string()
}
fn default_sys() -> String {
    "/sys/module".to_string()
}

/// A built `kernel_module` task.
#[derive(Debug)]
pub(crate) struct KernelModule {
    names: Vec<String>,
    file: ManagedFile,
    sys_module: String,
    modules_builtin: Option<String>,
}

const NAME: &str = "kernel_module";

impl KernelModule {
    pub fn build(args: serde_json::Value) -> Result<KernelModule, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        args::file_name(NAME, "file", &a.file)?;
        args::path(NAME, "modules_load_dir", &a.modules_load_dir)?;
        args::path(NAME, "sys_module", &a.sys_module)?;
        if let Some(p) = &a.modules_builtin {
            args::path(NAME, "modules_builtin", p)?;
        }
        if a.names.is_empty() {
            return Err(ModuleError::args(NAME, "names is empty"));
        }
        for name in &a.names {
            let ok = !name.is_empty()
                && !name.starts_with('-')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok {
                return Err(ModuleError::args(
                    NAME,
                    format!("`{name}` is not a kernel module name"),
                ));
            }
        }
        let content: String = a.names.iter().map(|n| format!("{n}\n")).collect();
        let path = format!(
            "{}/{}.conf",
            a.modules_load_dir.trim_end_matches('/'),
            a.file
        );
        Ok(KernelModule {
            names: a.names,
            file: ManagedFile::new(path, content),
            sys_module: a.sys_module.trim_end_matches('/').to_string(),
            modules_builtin: a.modules_builtin,
        })
    }

    /// Shell condition: the module is loaded (a directory in /sys/module, where `-` is
    /// written `_`), built into the kernel (listed in modules.builtin; only read when the
    /// first check fails), or its function is visible (see [`marker`]) — a host without
    /// /lib/modules (containers, lab hosts, minimal images) still has built-in modules.
    fn loaded(&self, name: &str) -> String {
        let sys = quote(&format!("{}/{}", self.sys_module, name.replace('-', "_")));
        let builtin = match &self.modules_builtin {
            Some(p) => quote(p),
            None => "\"/lib/modules/$kp_rel/modules.builtin\"".to_string(),
        };
        let pattern = quote(&format!(
            "/({}|{})\\.ko(\\.[a-z]+)?$",
            name.replace('-', "_"),
            name.replace('_', "-")
        ));
        let marker = match (marker(name), &self.modules_builtin) {
            // Tests point at fake trees; the real /proc would leak into them.
            (Some(path), None) => format!(" || [ -e {} ]", quote(path)),
            _ => String::new(),
        };
        format!(
            "{{ [ -d {sys} ] || {{ kp_rel=; read -r kp_rel </proc/sys/kernel/osrelease || :; \
             grep -qsE {pattern} {builtin}; }}{marker}; }}"
        )
    }
}

/// A path that exists only while the module's function is in the kernel, for modules that
/// are often built in: what kubeadm's preflight looks at for br_netfilter.
fn marker(name: &str) -> Option<&'static str> {
    match name.replace('-', "_").as_str() {
        "br_netfilter" => Some("/proc/sys/net/bridge/bridge-nf-call-iptables"),
        "ip_vs" => Some("/proc/net/ip_vs"),
        "nf_conntrack" => Some("/proc/sys/net/netfilter/nf_conntrack_max"),
        _ => None,
    }
}

impl Module for KernelModule {
    fn name(&self) -> &'static str {
        NAME
    }

    fn gather(&self) -> String {
        let mut out = self.file.gather("f.");
        for (i, name) in self.names.iter().enumerate() {
            out.push_str(&format!("{} && kp_word m.{i} 1\n", self.loaded(name)));
        }
        out.push_str(":\n");
        out
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        Ok(Plan::new(
            self.planned_diff(state)?,
            self.planned_script(state),
        ))
    }
}

impl KernelModule {
    /// What would change.
    fn planned_diff(&self, state: &State) -> Result<Diff, ModuleError> {
        let file = self.file.change(NAME, state, "f.")?;
        let load: Vec<String> = self
            .names
            .iter()
            .enumerate()
            .filter(|(i, _)| !state.flag(&format!("m.{i}")))
            .map(|(_, n)| format!("load module {n}"))
            .collect();
        Ok(fold(file.into_iter().collect(), load))
    }

    /// The script that makes it so.
    fn planned_script(&self, _state: &State) -> String {
        let mut out = self.file.apply();
        for name in &self.names {
            let n = quote(name);
            out.push_str(&format!(
                "if ! {}; then\n  kp_run 'modprobe '{n} modprobe -- {n} || return\n  kp_changed\nfi\n",
                self.loaded(name)
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
    fn diff_logic() {
        let m = KernelModule::build(json!({"names": ["overlay", "br_netfilter"]})).unwrap();
        let sha = m.file.sha.clone();
        let stat = "regular file|644|0|0|root|root|9";
        let d = m
            .diff(&fields(&[("f.stat", stat), ("f.sha", &sha), ("m.0", "1")]))
            .unwrap();
        assert_eq!(d, Diff::change("load module br_netfilter"));
        let d = m
            .diff(&fields(&[
                ("f.stat", stat),
                ("f.sha", &sha),
                ("m.0", "1"),
                ("m.1", "1"),
            ]))
            .unwrap();
        assert_eq!(d, Diff::Unchanged);
        assert_eq!(m.file.path, "/etc/modules-load.d/k8s.conf");
        assert!(KernelModule::build(json!({"names": ["-r"]})).is_err());
        assert!(KernelModule::build(json!({"names": ["x"], "file": "../x"})).is_err());
    }

    #[test]
    fn real_cycle_boot_list_with_loaded_modules() {
        // Modules already "loaded" (a fake /sys/module): only the boot-time list changes,
        // nothing is modprobed on this machine.
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path().join("sys");
        std::fs::create_dir_all(sys.join("br_netfilter")).unwrap();
        // overlay is built into this fake kernel: listed in modules.builtin only.
        let builtin = dir.path().join("modules.builtin");
        std::fs::write(
            &builtin,
            "kernel/fs/ext4/ext4.ko\nkernel/fs/overlayfs/overlay.ko\n",
        )
        .unwrap();
        let m = KernelModule::build(json!({
            "names": ["overlay", "br-netfilter"],
            "modules_load_dir": dir.path().join("modules-load.d"),
            "sys_module": sys,
            "modules_builtin": builtin,
        }))
        .unwrap();
        run_cycle(&m);
        let text = std::fs::read_to_string(dir.path().join("modules-load.d/k8s.conf")).unwrap();
        assert_eq!(text, "overlay\nbr-netfilter\n");
        // A module neither loaded nor built in must be loaded (not run here: no modprobe in
        // tests on this machine).
        let m = KernelModule::build(json!({
            "names": ["kprov_not_loaded"],
            "modules_load_dir": dir.path().join("modules-load.d"),
            "file": "other",
            "sys_module": sys,
            "modules_builtin": builtin,
        }))
        .unwrap();
        let d = m.diff(&crate::util::testutil::gather(&m).state()).unwrap();
        let Diff::Change { summary, .. } = d else {
            panic!()
        };
        assert!(
            summary.ends_with("load module kprov_not_loaded"),
            "{summary}"
        );
    }
}
