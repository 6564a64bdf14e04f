//! `service`: a systemd unit — unit file and drop-ins written atomically, `daemon-reload`
//! only when one changed, enabled or not, started/stopped/restarted/reloaded.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::facts::unit::{Enablement, UnitFact};
use crate::facts::Fact;
use crate::script::quote;
use crate::util::args;
use crate::util::managed::{fold, ManagedFile};
use crate::{Diff, Module, ModuleError, Plan, State};

/// Desired run state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RunState {
    Started,
    Stopped,
    /// Always restarts (handlers).
    Restarted,
    /// Always reloads.
    Reloaded,
}

/// Arguments of `service`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Unit name; `.service` is added when it has no suffix.
    name: String,
    /// Start at boot.
    enabled: Option<bool>,
    state: Option<RunState>,
    /// Content of <systemd_dir>/<unit>.
    unit: Option<String>,
    /// Drop-ins: file name (`.conf` added when missing) → content, in <unit>.d/.
    #[serde(default)]
    dropins: BTreeMap<String, String>,
    /// Where unit files go (default /etc/systemd/system).
    #[serde(default = "default_dir")]
    systemd_dir: String,
}

fn default_dir() -> String {
    "/etc/systemd/system".to_string()
}

/// A built `service` task.
#[derive(Debug)]
pub(crate) struct Service {
    unit: String,
    enabled: Option<bool>,
    state: Option<RunState>,
    files: Vec<ManagedFile>,
}

const NAME: &str = "service";
/// systemctl only talks to a running systemd.
const SYSTEMD_UP: &str = "[ -d /run/systemd/system ]";

impl Service {
    pub fn build(args: serde_json::Value) -> Result<Service, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        args::file_name(NAME, "name", &a.name)?;
        args::path(NAME, "systemd_dir", &a.systemd_dir)?;
        let unit = if a.name.contains('.') {
            a.name.clone()
        } else {
            format!("{}.service", a.name)
        };
        let dir = a.systemd_dir.trim_end_matches('/');
        let mut files = Vec::new();
        if let Some(content) = a.unit {
            files.push(ManagedFile::new(format!("{dir}/{unit}"), content));
        }
        for (name, content) in a.dropins {
            args::file_name(NAME, "dropins", &name)?;
            let file = if name.ends_with(".conf") {
                name
            } else {
                format!("{name}.conf")
            };
            files.push(ManagedFile::new(format!("{dir}/{unit}.d/{file}"), content));
        }
        for f in files.iter_mut() {
            f.mode = Some("644".to_string());
        }
        Ok(Service {
            unit,
            enabled: a.enabled,
            state: a.state,
            files,
        })
    }
}

impl Module for Service {
    fn name(&self) -> &'static str {
        NAME
    }

    fn gather(&self) -> String {
        let mut out = String::new();
        for (i, f) in self.files.iter().enumerate() {
            out.push_str(&f.gather(&format!("f{i}.")));
        }
        out.push_str(&self.unit_fact().gather());
        out
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        Ok(Plan::new(
            self.planned_diff(state)?,
            self.planned_script(state),
        ))
    }
}

impl Service {
    /// The unit's state as far as the task needs it: `enabled` and `active` (the fields
    /// registered results show).
    fn unit_fact(&self) -> UnitFact {
        let mut fact = UnitFact::new("", &self.unit);
        if self.enabled.is_some() {
            fact = fact.enabled();
        }
        if self.state.is_some() {
            fact = fact.active();
        }
        fact
    }

    /// What would change.
    fn planned_diff(&self, state: &State) -> Result<Diff, ModuleError> {
        let mut changes = Vec::new();
        for (i, f) in self.files.iter().enumerate() {
            changes.extend(f.change(NAME, state, &format!("f{i}."))?);
        }
        let mut extra = Vec::new();
        if !changes.is_empty() {
            extra.push("systemctl daemon-reload".to_string());
        }
        let unit = self.unit_fact().parse(NAME, state)?;
        let enabled_now = unit
            .enabled
            .as_ref()
            .is_some_and(Enablement::needs_no_enable);
        match self.enabled {
            Some(true) if !enabled_now => extra.push(format!("enable {}", self.unit)),
            Some(false) if unit.is_enabled_exactly() => {
                extra.push(format!("disable {}", self.unit))
            }
            _ => {}
        }
        let active = unit.is_active();
        match self.state {
            Some(RunState::Started) if !active => extra.push(format!("start {}", self.unit)),
            Some(RunState::Stopped) if active => extra.push(format!("stop {}", self.unit)),
            Some(RunState::Restarted) => extra.push(format!("restart {}", self.unit)),
            Some(RunState::Reloaded) => extra.push(format!("reload {}", self.unit)),
            _ => {}
        }
        Ok(fold(changes, extra))
    }

    /// The script that makes it so.
    fn planned_script(&self, _state: &State) -> String {
        let u = quote(&self.unit);
        let mut out = String::new();
        for f in &self.files {
            out.push_str(&f.apply());
        }
        if !self.files.is_empty() {
            out.push_str(&format!(
                "if [ \"$kp_did\" = 1 ] && {SYSTEMD_UP}; then kp_run 'systemctl daemon-reload' systemctl daemon-reload || return; fi\n"
            ));
        }
        match self.enabled {
            Some(true) => out.push_str(&format!(
                "case $(systemctl is-enabled {u} 2>/dev/null) in\n  enabled | enabled-runtime | static | alias | indirect | generated) ;;\n  \
                 *) kp_run 'systemctl enable '{u} systemctl enable {u} || return; kp_changed ;;\nesac\n"
            )),
            Some(false) => out.push_str(&format!(
                "if [ \"$(systemctl is-enabled {u} 2>/dev/null)\" = enabled ]; then\n  \
                 kp_run 'systemctl disable '{u} systemctl disable {u} || return\n  kp_changed\nfi\n"
            )),
            None => {}
        }
        if self.state.is_some() {
            out.push_str(&format!(
                "{SYSTEMD_UP} || {{ kp_fail 'systemd is not running on this host, so '{u}' cannot be started or stopped'; return; }}\n"
            ));
        }
        let is_active = format!("[ \"$(systemctl is-active {u} 2>/dev/null)\" = active ]");
        match self.state {
            Some(RunState::Started) => out.push_str(&format!(
                "if ! {is_active}; then\n  kp_run 'systemctl start '{u} systemctl start {u} || return\n  kp_changed\nfi\n"
            )),
            Some(RunState::Stopped) => out.push_str(&format!(
                "if {is_active}; then\n  kp_run 'systemctl stop '{u} systemctl stop {u} || return\n  kp_changed\nfi\n"
            )),
            Some(RunState::Restarted) => out.push_str(&format!(
                "kp_run 'systemctl restart '{u} systemctl restart {u} || return\nkp_changed\n"
            )),
            Some(RunState::Reloaded) => out.push_str(&format!(
                "kp_run 'systemctl reload '{u} systemctl reload {u} || return\nkp_changed\n"
            )),
            None => {}
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
        let m = Service::build(json!({"name": "containerd", "enabled": true, "state": "started"}))
            .unwrap();
        let d = m
            .diff(&fields(&[("enabled", "disabled"), ("active", "inactive")]))
            .unwrap();
        assert_eq!(
            d,
            Diff::change("enable containerd.service; start containerd.service")
        );
        let d = m
            .diff(&fields(&[("enabled", "enabled"), ("active", "active")]))
            .unwrap();
        assert_eq!(d, Diff::Unchanged);
        let r = Service::build(json!({"name": "containerd", "state": "restarted"})).unwrap();
        assert_eq!(
            r.diff(&fields(&[("active", "active")])).unwrap(),
            Diff::change("restart containerd.service")
        );
    }

    #[test]
    fn unit_change_needs_daemon_reload() {
        let m =
            Service::build(json!({"name": "kubelet", "dropins": {"10-kubeadm": "[Service]\n"}}))
                .unwrap();
        assert_eq!(
            m.files[0].path,
            "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
        );
        let Diff::Change { summary, .. } = m.diff(&fields(&[("f0.stat", "absent")])).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            summary,
            "create /etc/systemd/system/kubelet.service.d/10-kubeadm.conf; systemctl daemon-reload"
        );
        assert!(Service::build(json!({"name": "x", "dropins": {"../evil": ""}})).is_err());
    }

    #[test]
    fn starting_fails_clearly() {
        // Not found either way: without systemd (this machine) the module says so; with
        // systemd, starting a unit that does not exist fails and changes nothing.
        let m =
            Service::build(json!({"name": "kprov-test-nonexistent", "state": "started"})).unwrap();
        let state = crate::util::testutil::gather(&m).state();
        assert!(m.diff(&state).unwrap().needs_apply());
        let r = crate::util::testutil::apply(&m, &state);
        let failed = r.failed.expect("start must fail");
        if std::path::Path::new("/run/systemd/system").is_dir() {
            assert!(failed.contains("kprov-test-nonexistent"), "{failed}");
        } else {
            assert!(failed.contains("systemd is not running"), "{failed}");
        }
        assert!(!r.changed);
    }

    #[test]
    fn real_cycle_unit_files() {
        // No systemd on this machine: only the files (daemon-reload is skipped without it).
        let dir = tempfile::tempdir().unwrap();
        let m = Service::build(json!({
            "name": "containerd",
            "unit": "[Service]\nExecStart=/usr/bin/containerd\nDelegate=yes\nKillMode=process\n",
            "dropins": {"10-kprov": "[Service]\nOOMScoreAdjust=-999\nLimitNOFILE=1048576\n"},
            "systemd_dir": dir.path(),
        }))
        .unwrap();
        run_cycle(&m);
        let dropin = dir.path().join("containerd.service.d/10-kprov.conf");
        assert!(std::fs::read_to_string(dropin)
            .unwrap()
            .contains("OOMScoreAdjust=-999"));
    }
}
