//! `kube_reset`: what `kubeadm reset` cleans on a node (paths from
//! `kprov_controlplane::reset_paths`), plus kprov's own `/etc/kubernetes/kprov`
//! (bootstrap token, discovery hash). Stops the kubelet, unmounts everything under
//! `/var/lib/kubelet`, empties the etcd data dir when this node ran etcd, empties the
//! directories and removes the files. Each step checks first, so it works from any
//! partial state and a second run changes nothing.

use kprov_controlplane::reset_paths;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::facts::unit::UnitFact;
use crate::facts::Fact;
use crate::script::quote;
use crate::util::args;
use crate::{Diff, Module, ModuleError, Plan, State};

const NAME: &str = "kube_reset";
const KPROV_DIR: &str = "/etc/kubernetes/kprov";
const ETCD_MANIFEST: &str = "/etc/kubernetes/manifests/etcd.yaml";

/// Arguments of `kube_reset` (none).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {}

/// A built `kube_reset` task.
#[derive(Debug)]
pub(crate) struct KubeReset {
    dirs: Vec<String>,
    files: Vec<String>,
    etcd_dir: String,
}

impl KubeReset {
    pub fn build(args: serde_json::Value) -> Result<KubeReset, ModuleError> {
        let _: Args = args::parse(NAME, args)?;
        let r = reset_paths();
        let mut dirs: Vec<String> = r.emptied_dirs.iter().map(|s| s.to_string()).collect();
        dirs.push(KPROV_DIR.to_string());
        Ok(KubeReset {
            dirs,
            files: r.removed_files.iter().map(|s| s.to_string()).collect(),
            etcd_dir: r.etcd_data_dir.to_string(),
        })
    }

    fn words(items: &[String]) -> String {
        items.iter().map(|s| quote(s)).collect::<Vec<_>>().join(" ")
    }
}

/// Whether the kubelet runs.
fn kubelet() -> UnitFact {
    UnitFact::new("kubelet.", "kubelet.service").active()
}

/// Shell: `kp_mounts` = mount points at or under /var/lib/kubelet (resolved), deepest first.
const MOUNTS: &str = r#"kp_kd=$(readlink -f /var/lib/kubelet 2>/dev/null || echo /var/lib/kubelet)
kp_mounts=$(awk -v d="$kp_kd" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts 2>/dev/null | sort -r)
"#;

impl Module for KubeReset {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Reports what is left: `kubelet.active`, `mounts`, `nonempty` dirs, `files`,
    /// `etcd` (etcd.yaml present and the data dir not empty).
    fn gather(&self) -> String {
        format!(
            "{MOUNTS}\
             {kubelet}\
             kp_field mounts \"$kp_mounts\"\n\
             kp_l=\n\
             for kp_d in {dirs}; do [ -d \"$kp_d\" ] && [ -n \"$(ls -A \"$kp_d\" 2>/dev/null)\" ] && kp_l=\"$kp_l$kp_d$kp_nl\"; done\n\
             kp_field nonempty \"$kp_l\"\n\
             kp_l=\n\
             for kp_f in {files}; do [ -e \"$kp_f\" ] && kp_l=\"$kp_l$kp_f$kp_nl\"; done\n\
             kp_field files \"$kp_l\"\n\
             kp_e=0\n\
             [ -f {manifest} ] && [ -n \"$(ls -A {etcd} 2>/dev/null)\" ] && kp_e=1\n\
             kp_word etcd \"$kp_e\"\n",
            kubelet = kubelet().gather(),
            dirs = Self::words(&self.dirs),
            files = Self::words(&self.files),
            manifest = quote(ETCD_MANIFEST),
            etcd = quote(&self.etcd_dir),
        )
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        Ok(Plan::new(
            self.planned_diff(state)?,
            self.planned_script(state),
        ))
    }
}

impl KubeReset {
    /// What would change.
    fn planned_diff(&self, state: &State) -> Result<Diff, ModuleError> {
        let mut parts = Vec::new();
        if kubelet().parse(NAME, state)?.is_active() {
            parts.push("stop kubelet".to_string());
        }
        let list = |name: &str| -> Vec<String> {
            state
                .text(name)
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        };
        for m in list("mounts") {
            parts.push(format!("unmount {m}"));
        }
        if state.flag("etcd") {
            parts.push(format!("empty {}", self.etcd_dir));
        }
        for d in list("nonempty") {
            parts.push(format!("empty {d}"));
        }
        for f in list("files") {
            parts.push(format!("remove {f}"));
        }
        Ok(if parts.is_empty() {
            Diff::Unchanged
        } else {
            Diff::change(parts.join("; "))
        })
    }

    /// The script that makes it so.
    fn planned_script(&self, _state: &State) -> String {
        format!(
            "if [ \"$(systemctl is-active kubelet 2>/dev/null)\" = active ]; then\n\
             kp_run 'systemctl stop kubelet' systemctl stop kubelet || return\n\
             kp_changed\n\
             fi\n\
             {MOUNTS}\
             for kp_m in $kp_mounts; do\n\
             kp_run \"umount $kp_m\" umount -- \"$kp_m\" || return\n\
             kp_changed\n\
             done\n\
             if [ -f {manifest} ] && [ -n \"$(ls -A {etcd} 2>/dev/null)\" ]; then\n\
             find {etcd} -mindepth 1 -maxdepth 1 -exec rm -rf -- {{}} + || {{ kp_fail 'cannot empty {etcd_raw}'; return; }}\n\
             kp_changed\n\
             fi\n\
             for kp_d in {dirs}; do\n\
             if [ -d \"$kp_d\" ] && [ -n \"$(ls -A \"$kp_d\" 2>/dev/null)\" ]; then\n\
             find \"$kp_d\" -xdev -mindepth 1 -maxdepth 1 -exec rm -rf -- {{}} + || {{ kp_fail \"cannot empty $kp_d\"; return; }}\n\
             kp_changed\n\
             fi\n\
             done\n\
             for kp_f in {files}; do kp_rm \"$kp_f\" || return; done\n",
            manifest = quote(ETCD_MANIFEST),
            etcd = quote(&self.etcd_dir),
            etcd_raw = self.etcd_dir,
            dirs = Self::words(&self.dirs),
            files = Self::words(&self.files),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::fields;
    use crate::util::testutil::Planned as _;

    #[test]
    fn diff_lists_what_is_left() {
        let m = KubeReset::build(serde_json::Value::Null).unwrap();
        assert!(m.dirs.iter().any(|d| d == "/etc/kubernetes/pki"));
        assert!(m.files.iter().any(|f| f == "/etc/kubernetes/admin.conf"));
        let clean = fields(&[
            ("kubelet.active", "inactive"),
            ("mounts", ""),
            ("nonempty", ""),
            ("files", ""),
            ("etcd", "0"),
        ]);
        assert_eq!(m.diff(&clean).unwrap(), Diff::Unchanged);
        let dirty = fields(&[
            ("kubelet.active", "active"),
            ("mounts", "/var/lib/kubelet/pods/x\n"),
            ("nonempty", "/etc/kubernetes/pki\n"),
            ("files", "/etc/kubernetes/admin.conf\n"),
            ("etcd", "1"),
        ]);
        let Diff::Change { summary, .. } = m.diff(&dirty).unwrap() else {
            panic!()
        };
        assert_eq!(
            summary,
            "stop kubelet; unmount /var/lib/kubelet/pods/x; empty /var/lib/etcd; \
             empty /etc/kubernetes/pki; remove /etc/kubernetes/admin.conf"
        );
    }

    /// The generated shell runs (gather and apply) with `sh -n` syntax-clean.
    #[test]
    fn scripts_parse() {
        let m = KubeReset::build(serde_json::Value::Null).unwrap();
        for script in [
            crate::gather_script(&[(7, &m)]),
            crate::apply_script(&[(7, &m.apply(&State::default()))]),
        ] {
            let out = crate::util::testutil::run_stdin(&["sh", "-n"], &script);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
