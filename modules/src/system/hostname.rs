//! `hostname`: the host's name in /etc/hostname and live (kernel.hostname).

use schemars::JsonSchema;
use serde::Deserialize;

use crate::script::quote;
use crate::util::args;
use crate::util::managed::{fold, ManagedFile};
use crate::{Diff, Module, ModuleError, Plan, State};

/// Arguments of `hostname`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// The host name, e.g. node1 (letters, digits, `-` and `.`).
    name: String,
    /// Default /etc/hostname (tests point elsewhere).
    #[serde(default = "default_file")]
    file: String,
    /// The live name (default /proc/sys/kernel/hostname; tests point elsewhere).
    #[serde(default = "default_live")]
    live: String,
}

fn default_file() -> String {
    "/etc/hostname".to_string()
}
fn default_live() -> String {
    "/proc/sys/kernel/hostname".to_string()
}

/// A built `hostname` task.
#[derive(Debug)]
pub(crate) struct Hostname {
    name: String,
    file: ManagedFile,
    live: String,
}

const NAME: &str = "hostname";

impl Hostname {
    pub fn build(args: serde_json::Value) -> Result<Hostname, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        args::path(NAME, "file", &a.file)?;
        args::path(NAME, "live", &a.live)?;
        let ok = !a.name.is_empty()
            && a.name.len() <= 64
            && !a.name.starts_with(['-', '.'])
            && a.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !ok {
            return Err(ModuleError::args(
                NAME,
                format!(
                    "`{}` is not a host name (up to 64 letters, digits, - and .)",
                    a.name
                ),
            ));
        }
        let mut file = ManagedFile::new(a.file, format!("{}\n", a.name));
        file.mode = Some("644".to_string());
        Ok(Hostname {
            name: a.name,
            file,
            live: a.live,
        })
    }
}

impl Module for Hostname {
    fn name(&self) -> &'static str {
        NAME
    }

    fn gather(&self) -> String {
        let l = quote(&self.live);
        format!(
            "{}kp_v=\nif [ -r {l} ]; then IFS= read -r kp_v <{l} || :; fi\nkp_word live \"$kp_v\"\n",
            self.file.gather("f.")
        )
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        Ok(Plan::new(
            self.planned_diff(state)?,
            self.planned_script(state),
        ))
    }
}

impl Hostname {
    /// What would change.
    fn planned_diff(&self, state: &State) -> Result<Diff, ModuleError> {
        let file = self.file.change(NAME, state, "f.")?;
        let live = state.require(NAME, "live")?;
        let now = (live != self.name).then(|| format!("set hostname {} (now {live})", self.name));
        Ok(fold(file.into_iter().collect(), now.into_iter().collect()))
    }

    /// The script that makes it so.
    fn planned_script(&self, _state: &State) -> String {
        let (l, n) = (quote(&self.live), quote(&self.name));
        format!(
            "{}kp_v=\nif [ -r {l} ]; then IFS= read -r kp_v <{l} || :; fi\n\
             if [ \"$kp_v\" != {n} ]; then\n  \
             printf '%s\\n' {n} >{l} || {{ kp_fail 'cannot set the hostname to '{n}; return; }}\n  \
             kp_changed\nfi\n",
            self.file.apply()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::Planned as _;
    use crate::util::testutil::{fields, run_cycle};
    use serde_json::json;

    #[test]
    fn diff_and_validation() {
        let m = Hostname::build(json!({"name": "node1"})).unwrap();
        let sha = m.file.sha.clone();
        let stat = "regular file|644|0|0|root|root|6";
        let d = m
            .diff(&fields(&[
                ("f.stat", stat),
                ("f.sha", &sha),
                ("live", "localhost"),
            ]))
            .unwrap();
        assert_eq!(d, Diff::change("set hostname node1 (now localhost)"));
        assert_eq!(
            m.diff(&fields(&[
                ("f.stat", stat),
                ("f.sha", &sha),
                ("live", "node1")
            ]))
            .unwrap(),
            Diff::Unchanged
        );
        for bad in ["", "a b", "-x", "$(id)", "node_1"] {
            assert!(Hostname::build(json!({"name": bad})).is_err(), "{bad}");
        }
    }

    #[test]
    fn real_cycle_with_fake_live_name() {
        let dir = tempfile::tempdir().unwrap();
        let (file, live) = (dir.path().join("hostname"), dir.path().join("live"));
        std::fs::write(&live, "old\n").unwrap();
        run_cycle(&Hostname::build(json!({"name": "master", "file": file, "live": live})).unwrap());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "master\n");
        assert_eq!(std::fs::read_to_string(&live).unwrap(), "master\n");
    }
}
