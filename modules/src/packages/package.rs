//! `package`: distribution packages present (optionally at exact versions, held) or absent,
//! with apt-get (dpkg) or dnf/yum (rpm) as the host's facts say.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::facts::file::{FileFact, Read};
use crate::facts::Fact;
use crate::script::quote;
use crate::util::args::{self, Presence};
use crate::{Diff, HostContext, Module, ModuleError, Plan, State};

/// Arguments of `package`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Package names, optionally with an exact version: `containerd=1.6.20~ds1-1+b1`
    /// (a trailing `*` matches a version prefix: `kubelet=1.28.2*`).
    names: Vec<String>,
    #[serde(default)]
    state: Presence,
    /// Hold the packages at their version (apt-mark hold / dnf versionlock), or release them.
    hold: Option<bool>,
    /// Refresh package lists first when something must be installed (apt-get update;
    /// dnf/yum --refresh).
    #[serde(default)]
    update_cache: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Manager {
    Apt,
    Dnf,
    Yum,
    Unknown,
}

/// One requested package.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    name: String,
    version: Option<String>,
}

impl Spec {
    fn matches(&self, installed: &str, rpm: bool) -> bool {
        match &self.version {
            None => true,
            Some(v) => match v.strip_suffix('*') {
                Some(prefix) => installed.starts_with(prefix),
                None => installed == v || (rpm && installed.starts_with(&format!("{v}-"))),
            },
        }
    }

    /// Shell `case` pattern for `installed VERSION` output.
    fn pattern(&self, rpm: bool) -> String {
        match &self.version {
            None => "installed\\ *".to_string(),
            Some(v) => match v.strip_suffix('*') {
                Some(prefix) => format!("{}*", quote(&format!("installed {prefix}"))),
                None if rpm => {
                    let q = quote(&format!("installed {v}"));
                    format!("{q} | {q}-*")
                }
                None => quote(&format!("installed {v}")),
            },
        }
    }

    fn install_arg(&self, manager: Manager) -> String {
        match (&self.version, manager) {
            (None, _) => self.name.clone(),
            (Some(v), Manager::Apt) => format!("{}={v}", self.name),
            (Some(v), _) => format!("{}-{v}", self.name),
        }
    }

    fn display(&self) -> String {
        match &self.version {
            Some(v) => format!("{}={v}", self.name),
            None => self.name.clone(),
        }
    }
}

/// A built `package` task.
#[derive(Debug)]
pub(crate) struct Package {
    specs: Vec<Spec>,
    state: Presence,
    hold: Option<bool>,
    update_cache: bool,
    manager: Manager,
}

const NAME: &str = "package";
const DNF_LOCKS: &str = "/etc/dnf/plugins/versionlock.list";
const YUM_LOCKS: &str = "/etc/yum/pluginconf.d/versionlock.list";

impl Package {
    pub fn build(args: serde_json::Value, ctx: &HostContext) -> Result<Package, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        if a.names.is_empty() {
            return Err(ModuleError::args(NAME, "names is empty"));
        }
        let mut specs = Vec::new();
        for raw in &a.names {
            let (name, version) = match raw.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (raw.clone(), None),
            };
            let name_ok = !name.is_empty()
                && name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_' | ':'));
            let version_ok = version.as_deref().is_none_or(|v| {
                !v.is_empty()
                    && v.chars().all(|c| {
                        c.is_ascii_alphanumeric()
                            || matches!(c, '.' | '+' | '-' | '~' | ':' | '_' | '*')
                    })
            });
            if !name_ok || !version_ok {
                return Err(ModuleError::args(
                    NAME,
                    format!("`{raw}` is not a package name (optionally `name=version`)"),
                ));
            }
            if a.state == Presence::Absent && version.is_some() {
                return Err(ModuleError::args(
                    NAME,
                    format!("`{raw}`: no version with state: absent"),
                ));
            }
            specs.push(Spec { name, version });
        }
        let manager = match (ctx.package_manager.as_str(), ctx.os_family.as_str()) {
            ("apt-get" | "apt", _) => Manager::Apt,
            ("dnf", _) => Manager::Dnf,
            ("yum", _) => Manager::Yum,
            ("", "debian") => Manager::Apt,
            ("", "rhel") => Manager::Dnf,
            _ => Manager::Unknown,
        };
        Ok(Package {
            specs,
            state: a.state,
            hold: a.hold,
            update_cache: a.update_cache,
            manager,
        })
    }

    fn rpm(&self) -> bool {
        matches!(self.manager, Manager::Dnf | Manager::Yum)
    }

    /// The versionlock list, gathered with its content (rpm only).
    fn locks(&self) -> FileFact {
        FileFact::new("l.", self.lock_file(), Read::Content)
    }

    fn lock_file(&self) -> &'static str {
        if self.manager == Manager::Yum {
            YUM_LOCKS
        } else {
            DNF_LOCKS
        }
    }

    fn tool(&self) -> &'static str {
        match self.manager {
            Manager::Apt => "apt-get",
            Manager::Yum => "yum",
            _ => "dnf",
        }
    }

    /// Shell that releases the hold of `spec` (a change), kp_held then 0.
    fn unhold(&self, spec: &Spec) -> String {
        let n = quote(&spec.name);
        let tool = self.tool();
        let run = if self.rpm() {
            format!("kp_run 'versionlock delete '{n} {tool} versionlock delete {n}")
        } else {
            format!("kp_run 'apt-mark unhold '{n} apt-mark unhold {n}")
        };
        format!("{{ {run} && kp_changed && kp_held=0; }}")
    }

    /// Shell that sets kp_v to `installed VERSION` (or something else) and kp_held to 1/0.
    fn query(&self, spec: &Spec) -> String {
        let n = quote(&spec.name);
        if self.rpm() {
            format!(
                "kp_v=$(rpm -q --qf 'installed %{{VERSION}}-%{{RELEASE}}' -- {n} 2>/dev/null) || kp_v=\n\
                 kp_held=0\n[ -r {lock} ] && grep -Eq \"^[^#]*\"{re} {lock} && kp_held=1\n",
                lock = self.lock_file(),
                re = quote(&format!("{}-[0-9]", regex::escape(&spec.name)))
            )
        } else {
            format!(
                "kp_q=$(dpkg-query -W -f='${{db:Status-Status}} ${{Version}} ${{db:Status-Want}}' -- {n} 2>/dev/null) || kp_q=\n\
                 kp_v=${{kp_q% *}}\nkp_held=0\ncase $kp_q in *' hold') kp_held=1 ;; esac\n"
            )
        }
    }
}

/// Installed version (when installed) and hold state per package name, from the one
/// query gather makes: rows of `name<TAB>installed VERSION<TAB>WANT` (apt: WANT is `hold`
/// for held packages; rpm: holds come from the versionlock list, `locks`).
fn installed(
    state: &State,
    locks: Option<&FileFact>,
) -> Result<BTreeMap<String, (Option<String>, bool)>, ModuleError> {
    let rows = state.require(NAME, "q")?;
    let mut out: BTreeMap<String, (Option<String>, bool)> = BTreeMap::new();
    for row in rows.lines() {
        let mut cols = row.split('\t');
        let (Some(name), Some(status)) = (cols.next(), cols.next()) else {
            continue;
        };
        let want = cols.next().unwrap_or_default();
        let entry = out.entry(name.to_string()).or_default();
        if let Some(version) = status.strip_prefix("installed ") {
            entry.0 = Some(version.to_string());
        }
        entry.1 |= want == "hold";
    }
    if let Some(locks) = locks {
        let locks = state.text(&locks.field("content")).unwrap_or_default();
        for (name, entry) in out.iter_mut() {
            entry.1 = locks.lines().any(|l| {
                let l = l.trim().trim_start_matches('!');
                l.strip_prefix(name.as_str())
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            });
        }
    }
    Ok(out)
}

impl Module for Package {
    fn name(&self) -> &'static str {
        NAME
    }

    fn gather(&self) -> String {
        if self.manager == Manager::Unknown {
            return "kp_fail 'no supported package manager (apt-get, dnf, yum) on this host'\nreturn\n"
                .to_string();
        }
        let names: Vec<String> = self.specs.iter().map(|s| quote(&s.name)).collect();
        let names = names.join(" ");
        if self.rpm() {
            format!(
                "kp_q=$(rpm -q --qf '%{{NAME}}\\tinstalled %{{VERSION}}-%{{RELEASE}}\\t\\n' -- {names} 2>/dev/null) || :\n\
                 kp_field q \"$kp_q\"\n{}",
                self.locks().gather()
            )
        } else {
            format!(
                "kp_q=$(dpkg-query -W -f='${{Package}}\\t${{db:Status-Status}} ${{Version}}\\t${{db:Status-Want}}\\n' -- {names} 2>/dev/null) || :\n\
                 kp_field q \"$kp_q\"\n"
            )
        }
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        Ok(Plan::new(
            self.planned_diff(state)?,
            self.planned_script(state),
        ))
    }
}

impl Package {
    /// What would change.
    fn planned_diff(&self, state: &State) -> Result<Diff, ModuleError> {
        let rpm = self.rpm();
        let now = installed(state, rpm.then(|| self.locks()).as_ref())?;
        let mut parts = Vec::new();
        for spec in &self.specs {
            let (version, held) = now.get(&spec.name).cloned().unwrap_or_default();
            match (self.state, version) {
                (Presence::Present, None) => parts.push(format!("install {}", spec.display())),
                (Presence::Present, Some(v)) if !spec.matches(&v, rpm) => {
                    if held && self.hold == Some(true) {
                        parts.push(format!(
                            "unhold {n}, install {} (now {v}), hold {n} again",
                            spec.display(),
                            n = spec.name
                        ));
                        continue;
                    }
                    parts.push(format!("install {} (now {v})", spec.display()))
                }
                (Presence::Absent, Some(_)) => parts.push(format!("remove {}", spec.name)),
                _ => {}
            }
            match self.hold {
                Some(true) if !held && self.state == Presence::Present => {
                    parts.push(format!("hold {}", spec.name))
                }
                Some(false) if held => parts.push(format!("unhold {}", spec.name)),
                _ => {}
            }
        }
        Ok(if parts.is_empty() {
            Diff::Unchanged
        } else {
            Diff::change(parts.join(", "))
        })
    }

    /// The script that makes it so.
    fn planned_script(&self, _state: &State) -> String {
        if self.manager == Manager::Unknown {
            return self.gather();
        }
        let rpm = self.rpm();
        let tool = self.tool();
        let mut out = String::from("export DEBIAN_FRONTEND=noninteractive\nset --\n");
        // Hold changes come first when releasing, so a held package can move.
        for spec in &self.specs {
            out.push_str(&self.query(spec));
            let n = quote(&spec.name);
            if self.hold == Some(false) {
                out.push_str(&format!(
                    "if [ \"$kp_held\" = 1 ]; then {} || return; fi\n",
                    self.unhold(spec)
                ));
            }
            // A held package at another version is released first (dnf's versionlock would
            // refuse the new version) and held again below, at the version installed.
            let release = if self.hold == Some(true) {
                format!(
                    "if [ \"$kp_held\" = 1 ]; then {} || return; fi; ",
                    self.unhold(spec)
                )
            } else {
                String::new()
            };
            match self.state {
                Presence::Present => out.push_str(&format!(
                    "case $kp_v in {}) ;; *) {release}set -- \"$@\" {} ;; esac\n",
                    spec.pattern(rpm),
                    quote(&spec.install_arg(self.manager))
                )),
                Presence::Absent => out.push_str(&format!(
                    "case $kp_v in installed\\ *) set -- \"$@\" {n} ;; esac\n"
                )),
            }
        }
        let (verb, extra) = match (self.state, rpm) {
            (Presence::Present, false) => (
                "install",
                "-y -q --allow-downgrades --allow-change-held-packages \
                 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold",
            ),
            (Presence::Absent, false) => ("remove", "-y -q --allow-change-held-packages"),
            (Presence::Present, true) => ("install", "-y --allowerasing"),
            (Presence::Absent, true) => ("remove", "-y"),
        };
        let extra = if self.manager == Manager::Yum {
            extra.replace(" --allowerasing", "")
        } else {
            extra.to_string()
        };
        let (refresh, extra) = match (self.update_cache && self.state == Presence::Present, rpm) {
            (true, false) => (
                "kp_run 'apt-get update' apt-get update -q || return\n  ",
                extra,
            ),
            (true, true) => ("", format!("--refresh {extra}")),
            (false, _) => ("", extra),
        };
        out.push_str(&format!(
            "if [ $# -gt 0 ]; then\n  {refresh}kp_run \"{tool} {verb} $*\" {tool} {verb} {extra} \"$@\" || return\n  kp_changed\nfi\n"
        ));
        if self.hold == Some(true) && self.state == Presence::Present {
            for spec in &self.specs {
                out.push_str(&self.query(spec));
                let n = quote(&spec.name);
                let hold = if rpm {
                    format!(
                        "{{ command -v {tool} >/dev/null && {tool} versionlock --help >/dev/null 2>&1 || \
                         {{ kp_fail 'hold needs the versionlock plugin (python3-dnf-plugin-versionlock / yum-plugin-versionlock)'; return; }}; }}\n  \
                         kp_run 'versionlock add '{n} {tool} versionlock add {n}"
                    )
                } else {
                    format!("kp_run 'apt-mark hold '{n} apt-mark hold {n}")
                };
                out.push_str(&format!(
                    "if [ \"$kp_held\" != 1 ]; then\n  {hold} || return\n  kp_changed\nfi\n"
                ));
            }
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

    fn apt() -> HostContext {
        HostContext {
            package_manager: "apt-get".into(),
            ..Default::default()
        }
    }

    #[test]
    fn diff_versions_and_holds() {
        let m = Package::build(
            json!({"names": ["containerd=1.6.20~ds1-1+b1", "kubelet=1.28.2*"], "hold": true}),
            &apt(),
        )
        .unwrap();
        let s = fields(&[(
            "q",
            "containerd\tinstalled 1.6.20~ds1-1+b1\thold\nkubelet\tinstalled 1.28.1-1.1\tinstall",
        )]);
        assert_eq!(
            m.diff(&s).unwrap(),
            Diff::change("install kubelet=1.28.2* (now 1.28.1-1.1), hold kubelet")
        );
        let s = fields(&[(
            "q",
            "containerd\tinstalled 1.6.20~ds1-1+b1\thold\nkubelet\tinstalled 1.28.2-1.1\thold\n",
        )]);
        assert_eq!(m.diff(&s).unwrap(), Diff::Unchanged);
        let rm =
            Package::build(json!({"names": ["docker.io"], "state": "absent"}), &apt()).unwrap();
        assert_eq!(
            rm.diff(&fields(&[("q", "docker.io\tinstalled 20.10\tinstall")]))
                .unwrap(),
            Diff::change("remove docker.io")
        );
        assert_eq!(
            rm.diff(&fields(&[(
                "q",
                "docker.io\tconfig-files 20.10\tdeinstall"
            )]))
            .unwrap(),
            Diff::Unchanged
        );
    }

    #[test]
    fn rpm_versions_match_without_release() {
        let ctx = HostContext {
            package_manager: "dnf".into(),
            ..Default::default()
        };
        let m = Package::build(json!({"names": ["kubelet=1.28.2"]}), &ctx).unwrap();
        let s = fields(&[("q", "kubelet\tinstalled 1.28.2-150500.1.1\t\n")]);
        assert_eq!(m.diff(&s).unwrap(), Diff::Unchanged);
        let hold = Package::build(json!({"names": ["kubelet"], "hold": true}), &ctx).unwrap();
        assert_eq!(hold.diff(&s).unwrap(), Diff::change("hold kubelet"));
        let locked = fields(&[
            ("q", "kubelet\tinstalled 1.28.2-150500.1.1\t\n"),
            (
                "l.content",
                "# versionlock\nkubelet-0:1.28.2-150500.1.1.*\n",
            ),
        ]);
        assert_eq!(hold.diff(&locked).unwrap(), Diff::Unchanged);
        assert!(m.apply(&s).contains("dnf install -y --allowerasing"));
    }

    /// A version change of a held package: released, upgraded, held again — in that
    /// order in the script (dnf's versionlock refuses a new version while locked).
    #[test]
    fn held_upgrade_unholds_installs_and_holds_again() {
        for (manager, unhold, install, hold, installed) in [
            (
                "apt-get",
                "apt-mark unhold 'kubelet'",
                "apt-get install",
                "apt-mark hold 'kubelet'",
                "kubelet\tinstalled 1.31.1-1.1\thold\n",
            ),
            (
                "dnf",
                "dnf versionlock delete 'kubelet'",
                "dnf install",
                "dnf versionlock add 'kubelet'",
                "kubelet\tinstalled 1.31.1-150500.1.1\t\n",
            ),
        ] {
            let ctx = HostContext {
                package_manager: manager.into(),
                ..Default::default()
            };
            let version = if manager == "dnf" {
                "1.31.2"
            } else {
                "1.31.2-*"
            };
            let m = Package::build(
                json!({"names": [format!("kubelet={version}")], "hold": true}),
                &ctx,
            )
            .unwrap();
            let state = fields(&[
                ("q", installed),
                ("l.content", "kubelet-0:1.31.1-150500.1.1.*\n"),
            ]);
            assert_eq!(
                m.diff(&state).unwrap(),
                Diff::change(format!(
                    "unhold kubelet, install kubelet={version} (now {}), hold kubelet again",
                    installed
                        .split('\t')
                        .nth(1)
                        .unwrap()
                        .trim_start_matches("installed ")
                ))
            );
            let script = m.apply(&state);
            let at = |needle: &str| {
                script
                    .find(needle)
                    .unwrap_or_else(|| panic!("{needle} missing in:\n{script}"))
            };
            assert!(
                at(unhold) < at(install) && at(install) < at(hold),
                "{script}"
            );
            let arg = if manager == "dnf" {
                "'kubelet-1.31.2'"
            } else {
                "'kubelet=1.31.2-*'"
            };
            assert!(script.contains(arg), "{script}");
            // Installed at the version and held: nothing to do.
            let done = fields(&[
                ("q", &installed.replace("1.31.1", "1.31.2")),
                ("l.content", "kubelet-0:1.31.2-150500.1.1.*\n"),
            ]);
            assert_eq!(m.diff(&done).unwrap(), Diff::Unchanged);
        }
    }

    /// The kubelet role's rpm pins: exact release for kubelet, the minor for cri-tools.
    #[test]
    fn rpm_minor_pin_for_cri_tools() {
        let ctx = HostContext {
            package_manager: "dnf".into(),
            ..Default::default()
        };
        let m = Package::build(
            json!({"names": ["kubelet=1.31.2", "cri-tools=1.31.*"], "hold": true}),
            &ctx,
        )
        .unwrap();
        let s = fields(&[
            (
                "q",
                "kubelet\tinstalled 1.31.2-150500.1.1\t\ncri-tools\tinstalled 1.31.1-150500.1.1\t\n",
            ),
            (
                "l.content",
                "kubelet-0:1.31.2-150500.1.1.*\ncri-tools-0:1.31.1-150500.1.1.*\n",
            ),
        ]);
        assert_eq!(m.diff(&s).unwrap(), Diff::Unchanged);
        let none = fields(&[("q", ""), ("l.content", "")]);
        let script = m.apply(&none);
        assert!(
            script.contains("'kubelet-1.31.2'") && script.contains("'cri-tools-1.31.*'"),
            "{script}"
        );
        assert!(
            script.contains("dnf versionlock add 'cri-tools'"),
            "{script}"
        );
    }

    #[test]
    fn rejects_hostile_names() {
        for bad in ["-y", "a b", "$(id)", "x=1;reboot", ""] {
            assert!(
                Package::build(json!({"names": [bad]}), &apt()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn real_dpkg_query_on_this_machine() {
        let m = Package::build(
            json!({"names": ["coreutils", "kprov-no-such-package"]}),
            &apt(),
        )
        .unwrap();
        let state = gather(&m).state();
        assert_eq!(
            m.diff(&state).unwrap(),
            Diff::change("install kprov-no-such-package")
        );
        let installed = Package::build(json!({"names": ["coreutils", "dash"]}), &apt()).unwrap();
        assert_eq!(
            installed.diff(&gather(&installed).state()).unwrap(),
            Diff::Unchanged
        );
    }
}
