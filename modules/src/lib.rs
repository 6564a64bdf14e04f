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
//!
//! Layout: the framework at the top ([`Module`], [`Plan`], [`State`] in `module.rs`; the
//! scripts, the prelude and the wire format in `script.rs` and `report.rs`; [`catalog`]),
//! the modules grouped by domain (`files`, `system`, `packages`, `runtime`, `network`,
//! `kube`), the typed facts their gather fragments read and their plans parse back (file
//! stat, routes, iptables rules, systemd units) in `facts`, and the other helpers they are
//! written with in `util`.

pub mod catalog;
mod error;
mod module;
mod report;
mod script;

mod facts;
mod util;

mod files;
mod kube;
mod network;
mod packages;
mod runtime;
mod system;

pub use error::ModuleError;
pub use facts::file::predict_file;
pub use module::{Diff, HostContext, Module, Plan, State};
pub use network::pod_slices::check_slices;
pub use report::{parse_output, TaskReport};
pub use runtime::registry_name;
pub use script::{apply_script, apply_script_with, gather_script, quote, AfterTask, PRELUDE};
pub use util::args::suggest;

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
            hint: suggest(name, names()),
        }),
    }
}

/// JSON schema of a module's arguments (for `kprov modules NAME` and editor support).
pub fn arg_schema(name: &str) -> Option<schemars::Schema> {
    catalog::find(name).map(|e| (e.schema)())
}
