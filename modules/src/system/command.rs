//! `command` (an argv, no shell) and `shell` (a sh script), with `creates`/`removes`/
//! `unless` guards and a `changed` override; stdout, stderr and rc are captured as fields
//! (`stdout`, `stderr`, `rc`) for `register`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::script::{b64, quote};
use crate::util::args;
use crate::{Diff, Module, ModuleError, Plan, State};

/// Guards and options shared by `command` and `shell`.
#[derive(Debug, Default)]
pub(crate) struct Common {
    creates: Option<String>,
    removes: Option<String>,
    unless: Option<String>,
    chdir: Option<String>,
    env: BTreeMap<String, String>,
    stdin: Option<String>,
    changed: Option<bool>,
}

/// Declares an argument struct with the shared guard fields (serde's `flatten` cannot be
/// combined with `deny_unknown_fields`).
macro_rules! with_guards {
    ($(#[$meta:meta])* $name:ident { $(#[$fmeta:meta])* $main:ident: $ty:ty }) => {
        $(#[$meta])*
        #[derive(Debug, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct $name {
            $(#[$fmeta])*
            $main: $ty,
            /// Skip when this path exists.
            creates: Option<String>,
            /// Skip when this path does not exist.
            removes: Option<String>,
            /// Skip when this sh command succeeds (it runs in plan too: keep it read-only).
            unless: Option<String>,
            /// Working directory.
            chdir: Option<String>,
            /// Environment variables.
            #[serde(default)]
            env: BTreeMap<String, String>,
            /// Text fed to standard input.
            stdin: Option<String>,
            /// Override whether a run counts as a change (the engine evaluates `changed_when`).
            changed: Option<bool>,
        }

        impl $name {
            fn split(self) -> ($ty, Common) {
                (
                    self.$main,
                    Common {
                        creates: self.creates,
                        removes: self.removes,
                        unless: self.unless,
                        chdir: self.chdir,
                        env: self.env,
                        stdin: self.stdin,
                        changed: self.changed,
                    },
                )
            }
        }
    };
}

with_guards!(
    /// Arguments of `command`.
    CommandArgs {
        /// Program and arguments, passed without a shell.
        argv: Vec<String>
    }
);

with_guards!(
    /// Arguments of `shell`.
    ShellArgs {
        /// A POSIX sh script.
        script: String
    }
);

/// A built `command`/`shell` task.
#[derive(Debug)]
pub(crate) struct Command {
    name: &'static str,
    /// The shell words that run it.
    run: String,
    display: String,
    common: Common,
}

impl Command {
    pub fn build(name: &str, args: serde_json::Value) -> Result<Command, ModuleError> {
        if name == "shell" {
            let a: ShellArgs = args::parse("shell", args)?;
            let (script, common) = a.split();
            let display = script
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(80)
                .collect();
            Command::new(
                "shell",
                format!("sh -c {}", quote(&script)),
                display,
                common,
            )
        } else {
            let a: CommandArgs = args::parse("command", args)?;
            let (argv, common) = a.split();
            if argv.is_empty() || argv[0].is_empty() {
                return Err(ModuleError::args("command", "argv is empty"));
            }
            let run = argv.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ");
            let display = argv
                .iter()
                .map(|w| {
                    if !w.is_empty()
                        && w.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
                    {
                        w.clone()
                    } else {
                        quote(w)
                    }
                })
                .collect::<Vec<_>>()
                .join(" ");
            Command::new("command", run, display, common)
        }
    }

    fn new(
        name: &'static str,
        run: String,
        display: String,
        common: Common,
    ) -> Result<Command, ModuleError> {
        for (field, p) in [
            ("creates", &common.creates),
            ("removes", &common.removes),
            ("chdir", &common.chdir),
        ] {
            if let Some(p) = p {
                args::path(name, field, p)?;
            }
        }
        for key in common.env.keys() {
            let ok = key
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(ModuleError::args(
                    name,
                    format!("env name `{key}` is not a variable name"),
                ));
            }
        }
        Ok(Command {
            name,
            run,
            display,
            common,
        })
    }

    /// Shell that sets kp_skip to why the command must not run (empty: run it).
    fn guards(&self) -> String {
        let mut out = String::from("kp_skip=\n");
        if let Some(p) = &self.common.creates {
            let q = quote(p);
            out.push_str(&format!(
                "[ -e {q} ] && kp_skip={}\n",
                quote(&format!("{p} exists"))
            ));
        }
        if let Some(p) = &self.common.removes {
            let q = quote(p);
            out.push_str(&format!(
                "[ -z \"$kp_skip\" ] && [ ! -e {q} ] && kp_skip={}\n",
                quote(&format!("{p} does not exist"))
            ));
        }
        if let Some(u) = &self.common.unless {
            out.push_str(&format!(
                "[ -z \"$kp_skip\" ] && sh -c {} >/dev/null 2>&1 </dev/null 3>&- && kp_skip='unless succeeded'\n",
                quote(u)
            ));
        }
        out
    }
}

impl Module for Command {
    fn name(&self) -> &'static str {
        self.name
    }

    fn gather(&self) -> String {
        format!("{}kp_word skip \"$kp_skip\"\n", self.guards())
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        Ok(Plan::new(
            self.planned_diff(state)?,
            self.planned_script(state),
        ))
    }
}

impl Command {
    /// What would change.
    fn planned_diff(&self, state: &State) -> Result<Diff, ModuleError> {
        if !state.require(self.name, "skip")?.is_empty() {
            return Ok(Diff::Unchanged);
        }
        let summary = format!("run {}", self.display);
        Ok(match self.common.changed {
            Some(false) => Diff::Run { summary },
            _ => Diff::change(summary),
        })
    }

    /// The script that makes it so.
    fn planned_script(&self, _state: &State) -> String {
        let mut body = String::new();
        if let Some(dir) = &self.common.chdir {
            body.push_str(&format!("cd {} || exit 125\n", quote(dir)));
        }
        for (k, v) in &self.common.env {
            body.push_str(&format!("{k}={}\nexport {k}\n", quote(v)));
        }
        let stdin = match &self.common.stdin {
            Some(text) => format!(
                "printf '%s' {} | base64 -d | ",
                quote(&b64(text.as_bytes()))
            ),
            None => String::new(),
        };
        let redirect_in = if self.common.stdin.is_some() {
            ""
        } else {
            " </dev/null"
        };
        let changed = if self.common.changed == Some(false) {
            ""
        } else {
            "kp_changed\n"
        };
        format!(
            "{guards}if [ -n \"$kp_skip\" ]; then return 0; fi\n\
             kp_o=$(mktemp \"${{TMPDIR:-/tmp}}/kprov.XXXXXX\") && kp_e=$(mktemp \"${{TMPDIR:-/tmp}}/kprov.XXXXXX\") \
             || {{ kp_fail 'cannot create temporary files'; return; }}\n\
             (\n{body}{stdin}exec {run}{redirect_in} 3>&-\n) >\"$kp_o\" 2>\"$kp_e\"\n\
             kp_rc=$?\n\
             kp_field_file stdout \"$kp_o\"\nkp_field_file stderr \"$kp_e\"\nkp_word rc \"$kp_rc\"\n\
             kp_tail=$(tail -n 8 \"$kp_e\")\nrm -f \"$kp_o\" \"$kp_e\"\n\
             if [ \"$kp_rc\" -ne 0 ]; then kp_fail \"{what} failed (exit $kp_rc): $kp_tail\"; return; fi\n\
             {changed}",
            guards = self.guards(),
            run = self.run,
            what = self.name,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::Planned as _;
    use crate::util::testutil::{apply, fields, gather};
    use serde_json::json;

    #[test]
    fn diff_logic() {
        let m = Command::build(
            "command",
            json!({"argv": ["kubeadm", "init", "--config", "/etc/k 1.yaml"]}),
        )
        .unwrap();
        assert_eq!(
            m.diff(&fields(&[("skip", "")])).unwrap(),
            Diff::change("run kubeadm init --config '/etc/k 1.yaml'")
        );
        assert_eq!(
            m.diff(&fields(&[("skip", "/x exists")])).unwrap(),
            Diff::Unchanged
        );
        let q = Command::build(
            "shell",
            json!({"script": "kubeadm token list\nexit 0", "changed": false}),
        )
        .unwrap();
        assert_eq!(
            q.diff(&fields(&[("skip", "")])).unwrap(),
            Diff::Run {
                summary: "run kubeadm token list".into()
            }
        );
        assert!(Command::build("command", json!({"argv": []})).is_err());
        assert!(Command::build("shell", json!({"script": "x", "env": {"A B": "1"}})).is_err());
        assert!(Command::build("shell", json!({"script": "x", "creates": "rel"})).is_err());
    }

    #[test]
    fn real_guards_capture_and_hostile_args() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("made");
        for hostile in crate::util::testutil::HOSTILE {
            let m = Command::build(
                "command",
                json!({"argv": ["printf", "%s", hostile], "creates": marker}),
            )
            .unwrap();
            let state = gather(&m).state();
            assert!(m.diff(&state).unwrap().needs_apply());
            let r = apply(&m, &state);
            assert!(r.ok() && r.changed, "{r:?}");
            assert_eq!(r.fields["stdout"], hostile.as_bytes());
            assert_eq!(r.fields["rc"], b"0");
        }
        // creates: once the path exists, nothing runs.
        let m = Command::build(
            "shell",
            json!({"script": "echo made > \"$TARGET\"; echo to-stderr >&2", "env": {"TARGET": marker}, "creates": marker}),
        )
        .unwrap();
        let state = gather(&m).state();
        let r = apply(&m, &state);
        assert!(
            r.ok() && r.changed && r.fields["stderr"] == b"to-stderr\n",
            "{r:?}"
        );
        assert_eq!(m.diff(&gather(&m).state()).unwrap(), Diff::Unchanged);
        assert!(!apply(&m, &state).changed);
        // removes + unless.
        let gone = dir.path().join("gone");
        let m = Command::build("command", json!({"argv": ["true"], "removes": gone})).unwrap();
        assert_eq!(m.diff(&gather(&m).state()).unwrap(), Diff::Unchanged);
        let m = Command::build(
            "command",
            json!({"argv": ["true"], "unless": "test -e '/'"}),
        )
        .unwrap();
        assert_eq!(m.diff(&gather(&m).state()).unwrap(), Diff::Unchanged);
    }

    #[test]
    fn real_failure_stdin_chdir_and_changed_override() {
        let m = Command::build("shell", json!({"script": "echo oops >&2; exit 3"})).unwrap();
        let r = apply(&m, &gather(&m).state());
        assert_eq!(r.failed.as_deref(), Some("shell failed (exit 3): oops"));
        assert_eq!(r.fields["rc"], b"3");
        let dir = tempfile::tempdir().unwrap();
        let m = Command::build(
            "shell",
            json!({"script": "cat; pwd", "stdin": "in'put $(x)\n", "chdir": dir.path(), "changed": false}),
        )
        .unwrap();
        let r = apply(&m, &gather(&m).state());
        assert!(r.ok() && !r.changed, "{r:?}");
        assert_eq!(
            String::from_utf8(r.fields["stdout"].clone()).unwrap(),
            format!("in'put $(x)\n{}\n", dir.path().display())
        );
    }
}
