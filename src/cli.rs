//! Command-line interface: what a user can type, with help they can learn from.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::color::ColorChoice;

/// Bring plain Linux hosts up as a Kubernetes cluster, over SSH, with no agent to install first.
///
/// kprov reads an inventory of hosts (`-i hosts.yaml`) and a cluster spec (`cluster.yaml`),
/// plans idempotent tasks per host and pushes them over SSH. `kprov plan` previews every
/// change with diffs; `kprov apply` makes it so; a second apply changes nothing.
///
/// Try it without machines: `kprov lab up` starts throw-away hosts on this machine.
#[derive(Debug, Parser)]
#[command(
    name = "kprov",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Only these hosts or groups (comma-separated names), e.g. `--limit node1,masters`.
    #[arg(long, global = true, value_name = "HOSTS|GROUPS")]
    pub limit: Option<String>,
    /// Output format: `human` for people, `json` for CI and scripts (on stdout).
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    /// More detail in logs (-v, -vv, -vvv); logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Colour in output and logs: `auto` only on a terminal (and not when `NO_COLOR` is
    /// set), `always` even into files and pipes, `never`.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make the hosts match a playbook (changes hosts); a second apply changes nothing.
    Apply(PlaybookArgs),
    /// Show, host by host, what `apply` would change, with diffs; changes nothing.
    Plan(PlanArgs),
    /// Undo what `kubeadm init`/`join` made (playbooks/reset.yaml): shows the plan, and
    /// resets with `--yes`. Works from any partial state; `--limit` for single hosts.
    Reset(ResetArgs),
    /// Check the cluster spec and inventory (and the tasks of a playbook rendered with
    /// them), report every problem with file:line:column.
    Validate(ValidateArgs),
    /// Print the JSON Schema of a file format, for editor completion and checks.
    Schema {
        /// Which file format.
        #[arg(value_enum)]
        kind: SchemaKind,
    },
    /// Gather and show facts about every host (OS, addresses, memory, cgroups, runtime …).
    Facts(InventoryArgs),
    /// Throw-away lab hosts on this machine: namespaces, own root filesystem, systemd, sshd.
    #[command(subcommand)]
    Lab(LabCommand),
    /// Print a shell completion script, e.g. `kprov completions bash > /etc/bash_completion.d/kprov`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// The inventory flag.
#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Inventory: hosts, groups `masters`/`nodes`, SSH settings. kprov's own hosts.yaml,
    /// an Ansible YAML or INI inventory (kubespray's group names work), or a directory
    /// holding one plus group_vars/ and host_vars/.
    #[arg(short, long, value_name = "INVENTORY")]
    pub inventory: PathBuf,
}

/// A cluster spec plus an inventory.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Cluster spec (cluster.yaml).
    #[arg(value_name = "SPEC")]
    pub spec: PathBuf,
    #[command(flatten)]
    pub inventory: InventoryArgs,
}

/// `validate` flags.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Playbook whose tasks are checked with the spec and inventory (default: kprov's
    /// playbooks/cluster.yaml when it is found).
    #[arg(long, value_name = "PLAYBOOK")]
    pub playbook: Option<PathBuf>,
    /// Extra variables, as `apply -e` takes them; checked like the spec.
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
    pub extra_vars: Vec<String>,
}

/// A playbook run (`apply`, `plan`).
#[derive(Debug, Args)]
pub struct PlaybookArgs {
    /// Playbook (a list of plays), e.g. playbooks/node-prep.yaml.
    #[arg(value_name = "PLAYBOOK")]
    pub playbook: PathBuf,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Cluster spec (cluster.yaml) whose settings the playbook's roles use.
    #[arg(long, value_name = "SPEC")]
    pub spec: Option<PathBuf>,
    /// Extra variables, highest precedence: `-e name=value` or `-e '{"json": "object"}'`.
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
    pub extra_vars: Vec<String>,
    /// Only tasks with one of these tags (comma-separated); tasks tagged `always` too.
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Leave out tasks with one of these tags (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub skip_tags: Vec<String>,
    /// Stop every host as soon as any task fails anywhere.
    #[arg(long)]
    pub fail_fast: bool,
    /// Hosts worked on at once (default: all).
    #[arg(long, value_name = "N")]
    pub forks: Option<usize>,
    /// Keep SSH connections open for this many seconds after the run so the next run
    /// starts without handshakes (like ControlPersist); 0 closes them at the end.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub persist: u64,
    /// `apply`: how long to wait for another apply's lock on a host before giving that
    /// host up (exit 5); `plan` takes no lock.
    #[arg(long, value_name = "SECONDS",
          default_value_t = kprov_engine::run::DEFAULT_LOCK_WAIT.as_secs())]
    pub lock_timeout: u64,
}

/// `reset` flags.
#[derive(Debug, Args)]
pub struct ResetArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Really reset (without it, `reset` only shows what it would remove).
    #[arg(long)]
    pub yes: bool,
    /// The cluster spec the cluster was made with (its pod network is cleaned; without
    /// it, the default 10.244.0.0/16).
    #[arg(long, value_name = "SPEC")]
    pub spec: Option<PathBuf>,
}

/// `plan` flags.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub run: PlaybookArgs,
    /// Exit 2 when there are changes, 0 when there are none (for CI drift checks).
    #[arg(long)]
    pub detailed_exitcode: bool,
}

/// File formats with a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// The cluster spec (cluster.yaml).
    Spec,
    /// The inventory (hosts.yaml).
    Inventory,
}

/// `kprov lab …`
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start lab hosts (idempotent) and print the path of their inventory.
    Up {
        /// Number of hosts: the first is `master`, the others `node1`, `node2`, ….
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=60))]
        hosts: u16,
        /// Debian mirror for the first `up` (base and lab apt repository); default: this
        /// machine's apt sources (/etc/apt/sources.list, sources.list.d/*.list, *.sources).
        #[arg(long, value_name = "URL", env = "KPROV_LAB_MIRROR")]
        mirror: Option<String>,
        #[command(flatten)]
        name: LabName,
    },
    /// Stop the lab and remove everything it made (the cached base image stays).
    Down {
        #[command(flatten)]
        name: LabName,
    },
    /// Show the lab's hosts, addresses, state and inventory path.
    Status {
        #[command(flatten)]
        name: LabName,
    },
    /// Open a shell on a lab host, or run one command there, like `vagrant ssh`.
    Ssh {
        /// Host name, e.g. `master` or `node1`.
        host: String,
        /// Command to run instead of an interactive shell: one argument is a line for the
        /// host's shell (`'a; b'`), several are a command and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
        #[command(flatten)]
        name: LabName,
    },
}

/// Which lab.
#[derive(Debug, Args)]
pub struct LabName {
    /// Lab name; several labs can run side by side.
    #[arg(long, default_value = "kprov", value_name = "NAME")]
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
