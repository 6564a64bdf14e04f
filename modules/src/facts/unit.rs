//! A systemd unit's state, as `systemctl is-enabled` and `systemctl is-active` print it.
//! Fields: `PREFIXenabled` (when the host has systemctl) and `PREFIXactive` (when systemd
//! runs), each only when asked for.

use super::{Fact, Prefix};
use crate::script::quote;
use crate::{ModuleError, State};

/// Where unit files are installed, for [`UnitFact::if_installed`].
const UNIT_DIRS: &str =
    "/etc/systemd/system /run/systemd/system /usr/lib/systemd/system /lib/systemd/system";

/// One unit's enablement and run state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnitFact {
    prefix: Prefix,
    unit: String,
    enabled: bool,
    active: bool,
    installed_only: bool,
}

/// What `systemctl is-enabled` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Enablement {
    Enabled,
    EnabledRuntime,
    Static,
    Alias,
    Indirect,
    Generated,
    Disabled,
    Masked,
    /// Anything else: `linked`, `transient`, `not-found`, nothing…
    Other(String),
}

/// What `systemctl is-active` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Activity {
    Active,
    Activating,
    Reloading,
    Deactivating,
    Inactive,
    Failed,
    /// Anything else.
    Other(String),
}

/// A gathered [`UnitFact`]; `None` for what was not asked for or could not be asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UnitState {
    pub enabled: Option<Enablement>,
    pub active: Option<Activity>,
}

impl UnitFact {
    /// A fact of `unit` (a full unit name, e.g. `kubelet.service`) that asks nothing yet.
    pub(crate) fn new(prefix: impl Into<String>, unit: impl Into<String>) -> UnitFact {
        UnitFact {
            prefix: Prefix::new(prefix),
            unit: unit.into(),
            enabled: false,
            active: false,
            installed_only: false,
        }
    }

    /// Also asks `systemctl is-enabled`.
    pub(crate) fn enabled(mut self) -> UnitFact {
        self.enabled = true;
        self
    }

    /// Also asks `systemctl is-active`.
    pub(crate) fn active(mut self) -> UnitFact {
        self.active = true;
        self
    }

    /// Asks only when the unit has a unit file in the usual directories (each question
    /// costs a process).
    pub(crate) fn if_installed(mut self) -> UnitFact {
        self.installed_only = true;
        self
    }
}

impl Fact for UnitFact {
    type Value = UnitState;

    fn gather(&self) -> String {
        let u = quote(&self.unit);
        let mut ask = String::new();
        if self.enabled {
            ask.push_str(&format!(
                "if command -v systemctl >/dev/null 2>&1; then kp_word {} \"$(systemctl is-enabled {u} 2>/dev/null)\"; fi\n",
                self.prefix.field("enabled")
            ));
        }
        if self.active {
            // systemctl only talks to a running systemd.
            ask.push_str(&format!(
                "if [ -d /run/systemd/system ]; then kp_word {} \"$(systemctl is-active {u} 2>/dev/null)\"; fi\n",
                self.prefix.field("active")
            ));
        }
        if !self.installed_only || ask.is_empty() {
            return ask;
        }
        let ask: String = ask.lines().map(|l| format!("    {l}\n")).collect();
        format!(
            "for kp_d in {UNIT_DIRS}; do\n  if [ -e \"$kp_d\"/{u} ]; then\n{ask}    break\n  fi\ndone\n"
        )
    }

    fn parse(&self, _module: &str, state: &State) -> Result<UnitState, ModuleError> {
        let word = |name: &str| {
            state
                .text(&self.prefix.field(name))
                .map(|t| t.trim().to_string())
        };
        Ok(UnitState {
            enabled: word("enabled").map(|w| Enablement::from_word(&w)),
            active: word("active").map(|w| Activity::from_word(&w)),
        })
    }
}

impl Enablement {
    fn from_word(word: &str) -> Enablement {
        match word {
            "enabled" => Enablement::Enabled,
            "enabled-runtime" => Enablement::EnabledRuntime,
            "static" => Enablement::Static,
            "alias" => Enablement::Alias,
            "indirect" => Enablement::Indirect,
            "generated" => Enablement::Generated,
            "disabled" => Enablement::Disabled,
            "masked" => Enablement::Masked,
            other => Enablement::Other(other.to_string()),
        }
    }

    /// Enabled, permanently or for this boot.
    pub(crate) fn is_enabled(&self) -> bool {
        matches!(self, Enablement::Enabled | Enablement::EnabledRuntime)
    }

    /// `systemctl enable` would have nothing to do: enabled, or a unit that is not
    /// enabled itself (static, an alias, pulled in by another, generated).
    pub(crate) fn needs_no_enable(&self) -> bool {
        self.is_enabled()
            || matches!(
                self,
                Enablement::Static
                    | Enablement::Alias
                    | Enablement::Indirect
                    | Enablement::Generated
            )
    }
}

impl Activity {
    fn from_word(word: &str) -> Activity {
        match word {
            "active" => Activity::Active,
            "activating" => Activity::Activating,
            "reloading" => Activity::Reloading,
            "deactivating" => Activity::Deactivating,
            "inactive" => Activity::Inactive,
            "failed" => Activity::Failed,
            other => Activity::Other(other.to_string()),
        }
    }

    /// Running or about to be.
    pub(crate) fn is_running(&self) -> bool {
        matches!(
            self,
            Activity::Active | Activity::Activating | Activity::Reloading
        )
    }
}

impl UnitState {
    /// `is-enabled` said exactly `enabled`.
    pub(crate) fn is_enabled_exactly(&self) -> bool {
        self.enabled == Some(Enablement::Enabled)
    }

    /// `is-active` said exactly `active`.
    pub(crate) fn is_active(&self) -> bool {
        self.active == Some(Activity::Active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::fields;

    #[test]
    fn words_of_systemctl() {
        let fact = UnitFact::new("ufw.", "ufw.service").enabled().active();
        let s = fields(&[
            ("ufw.enabled", "enabled-runtime"),
            ("ufw.active", "reloading\n"),
        ]);
        let got = fact.parse("t", &s).unwrap();
        assert!(got.enabled.as_ref().is_some_and(Enablement::is_enabled));
        assert!(!got.is_enabled_exactly() && !got.is_active());
        assert!(got.active.as_ref().is_some_and(Activity::is_running));
        let s = fields(&[("ufw.enabled", "static"), ("ufw.active", "inactive")]);
        let got = fact.parse("t", &s).unwrap();
        assert!(got
            .enabled
            .as_ref()
            .is_some_and(|e| e.needs_no_enable() && !e.is_enabled()));
        assert_eq!(got.active, Some(Activity::Inactive));
        assert_eq!(
            fact.parse("t", &fields(&[("ufw.enabled", "")])).unwrap(),
            UnitState {
                enabled: Some(Enablement::Other(String::new())),
                active: None
            }
        );
        assert_eq!(
            UnitFact::new("", "x.service").parse("t", &s).unwrap(),
            UnitState::default()
        );
    }

    #[test]
    fn gathers_what_was_asked_under_its_prefix() {
        let both = UnitFact::new("unit.", "kubelet.service").enabled().active();
        let sh = both.gather();
        assert!(sh.contains("kp_word unit.enabled \"$(systemctl is-enabled 'kubelet.service' "));
        assert!(sh.contains("kp_word unit.active \"$(systemctl is-active 'kubelet.service' "));
        assert!(!UnitFact::new("", "x")
            .active()
            .gather()
            .contains("is-enabled"));
        assert_eq!(UnitFact::new("", "x").if_installed().gather(), "");
        let fw = UnitFact::new("ufw.", "ufw.service")
            .enabled()
            .if_installed()
            .gather();
        assert!(fw.starts_with("for kp_d in /etc/systemd/system "), "{fw}");
        assert!(
            fw.contains("if [ -e \"$kp_d\"/'ufw.service' ]; then\n"),
            "{fw}"
        );
        // No such unit here: nothing is printed, and the fragment still succeeds.
        let out = crate::util::testutil::run_fragment(
            &UnitFact::new("n.", "kprov-test-none.service")
                .enabled()
                .active()
                .if_installed()
                .gather(),
        );
        assert!(out.ok() && out.fields.is_empty(), "{out:?}");
    }
}
