//! kprov's idempotent modules, pyinfra-style: **gather → diff → apply**.
//!
//! A run reaches each host with at most two remote shell invocations per batch of tasks:
//!
//! 1. **Gather**: [`gather_script`] joins the [`Module::gather`] fragments of a batch behind
//!    [`PRELUDE`] into one POSIX sh script. It changes nothing (this is all `kprov plan`
//!    runs). [`parse_output`] turns its stdout into one [`TaskReport`] per task; its
//!    [`TaskReport::state`] is the task's [`State`].
//! 2. **Plan** (local, pure, once): [`Module::plan`] returns a [`Plan`]: its [`Diff`] says
//!    [`Diff::Unchanged`], [`Diff::Change`] (with text for a unified diff) or [`Diff::Run`]
//!    (a command that runs but reports no change), and its script makes it so.
//! 3. **Apply**: [`apply_script`] joins the planned scripts of the tasks that must
//!    change into one script that stops at the first failure. Each fragment re-checks and is
//!    idempotent on its own; it records `changed` only when it changed something, `fail`
//!    with a message, or `stale` when the host no longer matches the state its content was
//!    computed from (modules that edit a file in Rust: `line`, `block`, `hosts`, `swap`,
//!    `selinux`, `containerd_config`). On `stale` the engine gathers that task again and
//!    retries from it.
//!
//! Wire format, one record per line on stdout:
//! `KP<TAB>task-id<TAB>kind<TAB>name<TAB>value` where kind is `begin`, `field` (value is
//! base64), `word` (raw value without tab/newline), `changed`, `fail`/`stale` (base64
//! message), `end` (value is the fragment's exit status), or — once per gather script —
//! `blob` (task id `-`, name `task field size,…`, value base64): the contents of all files
//! the batch asked for, read by one `cat | base64`. Gather scripts answer every file probe
//! at the end (`kp_flush`) with one `stat` and one `sha256sum`, so a 30-task gather costs a
//! handful of processes. Commands' own output goes to stderr and their stdin is /dev/null
//! (the script itself may be arriving on the shell's stdin). Every value from YAML reaches
//! the script single-quoted ([`quote`]) or base64-encoded.
//!
//! Modules are built from YAML arguments with [`build`]; [`arg_schema`] publishes their
//! JSON schema; [`names`] lists them. All three read one table, [`catalog`]; `kprov
//! modules` lists every module with what it does (`kprov modules NAME`: its arguments).

pub mod catalog;
mod error;
pub mod registry_name;
mod report;
mod script;

mod args;
mod edit;
mod managed;

mod apt_repo;
mod block;
mod cni_bridge;
mod cni_manifest;
mod command;
mod containerd_config;
mod containerd_hosts;
mod crictl_config;
mod directory;
mod etcd_member;
mod file;
mod firewall;
mod hostname;
mod hosts;
mod kernel_module;
mod kube_cluster;
mod kube_files;
mod kube_init;
mod kube_join;
mod kube_join_control_plane;
mod kube_join_info;
mod kube_reset;
mod line;
mod package;
mod route;
mod selinux;
mod service;
mod swap;
mod sysctl;
mod yum_repo;

#[cfg(test)]
mod testutil;

use std::collections::BTreeMap;

pub use args::suggest;
pub use cni_bridge::check_slices;
pub use edit::predict_file;
pub use error::ModuleError;
pub use report::{parse_output, TaskReport};
pub use script::{apply_script, apply_script_with, gather_script, quote, AfterTask, PRELUDE};

/// Host facts a module may need; the engine fills it from its facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostContext {
    /// `debian`, `rhel`, `suse` or `other`.
    pub os_family: String,
    /// `apt-get`, `dnf`, `yum`, … or empty when none was found.
    pub package_manager: String,
    /// Name of PID 1, e.g. `systemd`.
    pub init: String,
}

/// One task's module, built and validated from its YAML arguments.
pub trait Module: Send + Sync + std::fmt::Debug {
    /// Module name as written in YAML, e.g. `file`.
    fn name(&self) -> &'static str;
    /// POSIX sh fragment (a function body run in the script's own shell under `set -u`; it
    /// must not `exit`) that inspects the host and prints fields with the prelude's
    /// `kp_field`/`kp_word`/`kp_stat_file`. Changes nothing.
    fn gather(&self) -> String;
    /// Decides from the gathered fields, once: what would change and the script that makes
    /// it so. Pure; apply runs exactly the returned [`Plan::script`].
    fn plan(&self, state: &State) -> Result<Plan, ModuleError>;
    /// For modules that compute a file's new content from its current content (`line`,
    /// `block`, `hosts`, …): the file and the prefix of its gathered fields. The engine then
    /// chains several edits of one file in one apply, each planned from the content the
    /// previous one writes ([`Plan::writes`], [`predict_file`]), instead of a re-gather per
    /// edit.
    fn edited_file(&self) -> Option<(&str, &'static str)> {
        None
    }
}

/// What one task would do, computed once from its gathered state: the engine shows
/// [`Plan::diff`] and, in apply mode, runs [`Plan::script`] — never a second computation
/// that could disagree with what was shown (keys generated at plan time are the keys
/// written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// What would change, for display.
    pub diff: Diff,
    /// POSIX sh fragment (a function body, like gather's) that makes it so, idempotently:
    /// it calls `kp_changed` when it changed something and `kp_fail "message"; return` on
    /// failure; modules that computed a file's content from the gathered one guard against
    /// a file changed since with `kp_stale`. Runs even when `diff` is unchanged, as a
    /// re-check, when an earlier task of the batch changed something.
    pub script: String,
    /// The content of [`Module::edited_file`] once the script ran, when it writes it.
    pub writes: Option<Vec<u8>>,
    /// Things the operator should know about the gathered state that are not changes,
    /// e.g. certificates close to expiry. Shown in `plan` and `apply` output.
    pub warnings: Vec<String>,
    /// True when the plan holds secrets (keys, tokens, passwords): its diff texts are
    /// already masked, and it is never written out.
    pub sensitive: bool,
}

impl Plan {
    /// A plan of `diff` made so by `script`.
    pub fn new(diff: Diff, script: impl Into<String>) -> Plan {
        Plan {
            diff,
            script: script.into(),
            writes: None,
            warnings: Vec::new(),
            sensitive: false,
        }
    }

    /// The same plan, recording the content it writes to the edited file.
    pub fn writing(mut self, content: Option<Vec<u8>>) -> Plan {
        self.writes = content;
        self
    }

    /// The same plan with warnings.
    pub fn with_warnings(mut self, warnings: Vec<String>) -> Plan {
        self.warnings = warnings;
        self
    }

    /// The same plan, marked as holding secrets when `sensitive`.
    pub fn secret(mut self, sensitive: bool) -> Plan {
        self.sensitive = sensitive;
        self
    }
}

/// Fields gathered for one task, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub fields: BTreeMap<String, Vec<u8>>,
}

impl State {
    /// The raw bytes of a field.
    pub fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.fields.get(name).map(Vec::as_slice)
    }

    /// A field as text (lossy UTF-8).
    pub fn text(&self, name: &str) -> Option<String> {
        self.bytes(name)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    /// A field as text, or an error naming the missing field.
    pub fn require(&self, module: &str, name: &str) -> Result<String, ModuleError> {
        self.text(name)
            .ok_or_else(|| ModuleError::missing(module, name))
    }

    /// True when the field is present and equals `1`.
    pub fn flag(&self, name: &str) -> bool {
        self.bytes(name) == Some(b"1")
    }
}

/// What applying a task would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diff {
    /// Already as desired; apply is skipped.
    Unchanged,
    /// Apply would change the host. `summary` e.g. `create /etc/sysctl.d/k8s.conf`;
    /// `before`/`after` are texts for a unified diff (file content), `None` otherwise.
    Change {
        summary: String,
        before: Option<String>,
        after: Option<String>,
    },
    /// A command that runs at apply but reports no change (`changed: false`).
    Run { summary: String },
}

impl Diff {
    /// A change without file text.
    pub fn change(summary: impl Into<String>) -> Diff {
        Diff::Change {
            summary: summary.into(),
            before: None,
            after: None,
        }
    }

    /// True unless [`Diff::Unchanged`].
    pub fn needs_apply(&self) -> bool {
        !matches!(self, Diff::Unchanged)
    }
}

/// Every module name [`build`] accepts, sorted (the names of [`catalog::ENTRIES`]).
pub fn names() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| catalog::ENTRIES.iter().map(|e| e.name).collect())
}

/// Builds a module from its YAML arguments (as JSON; unknown fields are errors).
pub fn build(
    name: &str,
    args: serde_json::Value,
    ctx: &HostContext,
) -> Result<Box<dyn Module>, ModuleError> {
    match catalog::find(name).and_then(|e| e.build) {
        Some(build) => build(name, args, ctx),
        None => Err(ModuleError::UnknownModule {
            name: name.to_string(),
            hint: args::suggest(name, names()),
        }),
    }
}

/// JSON schema of a module's arguments (for `kprov modules NAME` and editor support).
pub fn arg_schema(name: &str) -> Option<schemars::Schema> {
    catalog::find(name).map(|e| (e.schema)())
}
