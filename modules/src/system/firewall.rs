//! `firewall`: host firewalls (firewalld, ufw) stopped and disabled when installed.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::facts::unit::{Activity, Enablement, UnitFact};
use crate::facts::Fact;
use crate::util::args;
use crate::{Diff, Module, ModuleError, Plan, State};

/// Arguments of `firewall` (none today: kprov turns host firewalls off).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// `disabled` (the only supported state).
    #[serde(default)]
    state: FirewallState,
}

/// What the firewall should be.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FirewallState {
    #[default]
    Disabled,
}

/// A built `firewall` task.
#[derive(Debug)]
pub(crate) struct Firewall;

const NAME: &str = "firewall";
const UNITS: [&str; 2] = ["firewalld", "ufw"];

/// A firewall unit's state, asked only when it is installed (a process per question).
fn unit(name: &str) -> UnitFact {
    UnitFact::new(format!("{name}."), format!("{name}.service"))
        .enabled()
        .active()
        .if_installed()
}

impl Firewall {
    pub fn build(args: serde_json::Value) -> Result<Firewall, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        match a.state {
            FirewallState::Disabled => Ok(Firewall),
        }
    }
}

impl Module for Firewall {
    fn name(&self) -> &'static str {
        NAME
    }

    fn gather(&self) -> String {
        let mut out: String = UNITS.iter().map(|u| unit(u).gather()).collect();
        out.push_str(
            "if command -v ufw >/dev/null 2>&1; then\n  \
             kp_s=$(ufw status 2>/dev/null) || kp_s=\n  \
             case $kp_s in *'Status: active'*) kp_word ufw.status active ;; esac\nfi\n:\n",
        );
        out
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        Ok(Plan::new(
            self.planned_diff(state)?,
            self.planned_script(state),
        ))
    }
}

impl Firewall {
    /// What would change.
    fn planned_diff(&self, state: &State) -> Result<Diff, ModuleError> {
        let mut parts = Vec::new();
        for name in UNITS {
            let now = unit(name).parse(NAME, state)?;
            let enabled = now.enabled.as_ref().is_some_and(Enablement::is_enabled);
            let active = now.active.as_ref().is_some_and(Activity::is_running);
            match (enabled, active) {
                (true, true) => parts.push(format!("stop and disable {name}")),
                (true, false) => parts.push(format!("disable {name}")),
                (false, true) => parts.push(format!("stop {name}")),
                (false, false) => {}
            }
        }
        if state.text("ufw.status").as_deref() == Some("active") {
            parts.push("ufw disable".to_string());
        }
        Ok(if parts.is_empty() {
            Diff::Unchanged
        } else {
            Diff::change(parts.join("; "))
        })
    }

    /// The script that makes it so.
    fn planned_script(&self, _state: &State) -> String {
        let mut out = String::from(
            "if command -v ufw >/dev/null 2>&1; then\n  kp_s=$(ufw status 2>/dev/null) || kp_s=\n  \
             case $kp_s in *'Status: active'*) kp_run 'ufw disable' ufw disable || return; kp_changed ;; esac\nfi\n\
             command -v systemctl >/dev/null 2>&1 || return 0\n",
        );
        for unit in UNITS {
            out.push_str(&format!(
                "kp_e=$(systemctl is-enabled {unit} 2>/dev/null) || :\n\
                 kp_a=$(systemctl is-active {unit} 2>/dev/null) || :\n\
                 case \"$kp_e/$kp_a\" in\n  \
                 enabled/* | enabled-runtime/* | */active | */activating | */reloading)\n    \
                 kp_run 'systemctl disable --now {unit}' systemctl disable --now {unit} || return\n    \
                 kp_changed ;;\nesac\n"
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::Planned as _;
    use crate::util::testutil::{fields, gather};
    use serde_json::json;

    #[test]
    fn diff_logic() {
        let m = Firewall::build(json!(null)).unwrap();
        assert_eq!(m.diff(&fields(&[])).unwrap(), Diff::Unchanged);
        let s = fields(&[
            ("firewalld.enabled", "enabled"),
            ("firewalld.active", "active"),
            ("ufw.enabled", "not-found"),
            ("ufw.active", "inactive"),
        ]);
        assert_eq!(
            m.diff(&s).unwrap(),
            Diff::change("stop and disable firewalld")
        );
        let s = fields(&[
            ("ufw.enabled", "enabled"),
            ("ufw.active", "inactive"),
            ("ufw.status", "active"),
        ]);
        assert_eq!(
            m.diff(&s).unwrap(),
            Diff::change("disable ufw; ufw disable")
        );
        assert!(Firewall::build(json!({"state": "enabled"})).is_err());
    }

    #[test]
    fn gather_runs_on_a_host_without_firewalls() {
        // This machine has neither firewalld nor ufw running: absent means ok.
        let m = Firewall::build(json!({})).unwrap();
        assert_eq!(m.diff(&gather(&m).state()).unwrap(), Diff::Unchanged);
    }
}
