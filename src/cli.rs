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

/// Flags every command takes, plus the scope flags of the chosen command (`--limit`,
/// `--output`: offered only where they mean something, see [`Cli::hoist_scope`]).
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The command's `--limit`, when it has one.
    #[arg(skip)]
    pub limit: Option<String>,
    /// The command's `--output` (human for commands without one).
    #[arg(skip = OutputFormat::Human)]
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

/// `--limit`, for commands that work on hosts of an inventory.
#[derive(Debug, Args)]
pub struct LimitArg {
    /// Only these hosts or groups (comma-separated names), e.g. `--limit node1,masters`.
    #[arg(long, value_name = "HOSTS|GROUPS")]
    pub limit: Option<String>,
}

/// `--output`, for commands with a machine-readable form.
#[derive(Debug, Args)]
pub struct OutputArg {
    /// Output format: `human` for people, `json` for CI and scripts (on stdout).
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

impl Cli {
    /// Copies the chosen command's `--limit` and `--output` into [`GlobalArgs`], where
    /// the commands read them.
    pub fn hoist_scope(&mut self) {
        let (limit, output) = match &self.command {
            Command::Apply(a) => (Some(&a.limit), Some(&a.output)),
            Command::Plan(p) => (Some(&p.run.limit), Some(&p.run.output)),
            Command::Reset(r) => (Some(&r.limit), Some(&r.output)),
            Command::Validate(v) => (Some(&v.limit), Some(&v.output)),
            Command::Facts(f) => (Some(&f.limit), Some(&f.output)),
            Command::Modules(m) => (None, Some(&m.output)),
            Command::Lab(
                LabCommand::Up { output, .. }
                | LabCommand::Down { output, .. }
                | LabCommand::Status { output, .. },
            ) => (None, Some(output)),
            Command::Lab(LabCommand::Ssh { .. })
            | Command::Inventory(_)
            | Command::Schema { .. }
            | Command::Completions { .. } => (None, None),
        };
        self.global.limit = limit.and_then(|l| l.limit.clone());
        self.global.output = output.map_or(OutputFormat::Human, |o| o.output);
    }
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
    /// List every module a task may use with what it does, or show one module's arguments
    /// (type, required or default, allowed values, description), like `ansible-doc`.
    Modules(ModulesArgs),
    /// Gather and show facts about every host (OS, addresses, memory, cgroups, runtime …).
    Facts(FactsArgs),
    /// Show the inventory as kprov resolved it, like `ansible-inventory`: `--list` (JSON,
    /// the default), `--graph`, or `--host H` (one host's variables). Secrets are hidden.
    Inventory(InventoryShowArgs),
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

/// `facts` flags.
#[derive(Debug, Args)]
pub struct FactsArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub limit: LimitArg,
    #[command(flatten)]
    pub output: OutputArg,
}

/// `modules` flags.
#[derive(Debug, Args)]
pub struct ModulesArgs {
    /// A module, e.g. `file`: its arguments. Without it, every module in one line each.
    #[arg(value_name = "MODULE")]
    pub name: Option<String>,
    #[command(flatten)]
    pub output: OutputArg,
}

/// `inventory` flags.
#[derive(Debug, Args)]
pub struct InventoryShowArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Every group and host with its variables, as JSON (the default).
    #[arg(long, conflicts_with_all = ["graph", "host"])]
    pub list: bool,
    /// The groups and their hosts as a tree.
    #[arg(long, conflicts_with = "host")]
    pub graph: bool,
    /// One host's variables and connection settings, as JSON.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
}

/// `validate` flags: a cluster spec, an inventory, or both (then the playbook's tasks too).
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).multiple(true).args(["spec", "inventory"])))]
pub struct ValidateArgs {
    /// Cluster spec (cluster.yaml).
    #[arg(value_name = "SPEC")]
    pub spec: Option<PathBuf>,
    /// Inventory (as `apply -i` takes it).
    #[arg(short, long, value_name = "INVENTORY")]
    pub inventory: Option<PathBuf>,
    #[command(flatten)]
    pub limit: LimitArg,
    #[command(flatten)]
    pub output: OutputArg,
    /// Playbook whose tasks are checked with the spec and inventory (default: kprov's
    /// playbooks/cluster.yaml when it is found; needs both).
    #[arg(
        long,
        value_name = "PLAYBOOK",
        requires = "spec",
        requires = "inventory"
    )]
    pub playbook: Option<PathBuf>,
    /// Extra variables, as `apply -e` takes them; checked like the spec (needs both).
    #[arg(
        short = 'e',
        long = "extra-vars",
        value_name = "VARS",
        requires = "spec",
        requires = "inventory"
    )]
    pub extra_vars: Vec<String>,
}

/// The inventory of a playbook run; a saved plan file names its own.
#[derive(Debug, Args)]
pub struct RunInventoryArgs {
    /// Inventory: hosts, groups `masters`/`nodes`, SSH settings. kprov's own hosts.yaml,
    /// an Ansible YAML or INI inventory (kubespray's group names work), or a directory
    /// holding one plus group_vars/ and host_vars/. Not given with a plan file.
    #[arg(short, long, value_name = "INVENTORY")]
    pub inventory: Option<PathBuf>,
}

/// A playbook run (`apply`, `plan`).
#[derive(Debug, Args)]
pub struct PlaybookArgs {
    /// Playbook (a list of plays), e.g. playbooks/node-prep.yaml; for `apply`, or a plan
    /// file written by `kprov plan --out`, applied exactly as planned.
    #[arg(value_name = "PLAYBOOK")]
    pub playbook: PathBuf,
    #[command(flatten)]
    pub inventory: RunInventoryArgs,
    #[command(flatten)]
    pub limit: LimitArg,
    #[command(flatten)]
    pub output: OutputArg,
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
    /// `apply PLAN_FILE`: plan again, and apply, the hosts whose state changed since the
    /// plan was made, instead of refusing them (exit 6).
    #[arg(long)]
    pub allow_drift: bool,
}

/// `reset` flags.
#[derive(Debug, Args)]
pub struct ResetArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub limit: LimitArg,
    #[command(flatten)]
    pub output: OutputArg,
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
    /// Also write the plan to FILE (mode 0600, no secrets) for `kprov apply FILE` to
    /// apply exactly, refusing hosts that changed in between.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
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
        #[command(flatten)]
        output: OutputArg,
    },
    /// Stop the lab and remove everything it made (the cached base image stays).
    Down {
        #[command(flatten)]
        name: LabName,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Show the lab's hosts, addresses, state and inventory path.
    Status {
        #[command(flatten)]
        name: LabName,
        #[command(flatten)]
        output: OutputArg,
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
    use clap::{CommandFactory, Parser};

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let mut cli = Cli::try_parse_from(args)?;
        cli.hoist_scope();
        Ok(cli)
    }

    /// `--limit` and `--output` exist only where they mean something.
    #[test]
    fn scope_flags_only_where_they_mean_something() {
        let cli = parse(&[
            "kprov", "plan", "p.yaml", "-i", "i", "--limit", "m", "--output", "json",
        ])
        .unwrap();
        assert_eq!(cli.global.limit.as_deref(), Some("m"));
        assert_eq!(cli.global.output, super::OutputFormat::Json);
        let cli = parse(&["kprov", "lab", "status", "--output", "json"]).unwrap();
        assert_eq!(cli.global.output, super::OutputFormat::Json);
        let cli = parse(&["kprov", "modules", "file", "--output", "json"]).unwrap();
        assert_eq!(cli.global.output, super::OutputFormat::Json);
        for args in [
            &["kprov", "lab", "status", "--limit", "x"][..],
            &["kprov", "schema", "spec", "--output", "json"],
            &["kprov", "completions", "bash", "--limit", "x"],
            &["kprov", "modules", "--limit", "x"],
            &["kprov", "lab", "ssh", "--output", "json", "master"],
            &["kprov", "--limit", "x", "facts", "-i", "i"],
        ] {
            assert!(parse(args).is_err(), "{args:?} must be refused");
        }
        // -v, -q and --color stay global.
        assert!(parse(&["kprov", "schema", "spec", "-q", "--color", "never"]).is_ok());
    }

    /// `validate` takes a spec, an inventory, or both; not neither.
    #[test]
    fn validate_takes_a_spec_an_inventory_or_both() {
        assert!(parse(&["kprov", "validate", "s.yaml"]).is_ok());
        assert!(parse(&["kprov", "validate", "-i", "i.yaml"]).is_ok());
        assert!(parse(&["kprov", "validate", "s.yaml", "-i", "i.yaml"]).is_ok());
        assert!(parse(&["kprov", "validate"]).is_err());
        // The tasks and -e values are checked with both files.
        assert!(parse(&["kprov", "validate", "s.yaml", "-e", "a=b"]).is_err());
        assert!(parse(&["kprov", "validate", "-i", "i", "--playbook", "p"]).is_err());
        assert!(parse(&["kprov", "validate", "s.yaml", "-i", "i", "-e", "a=b"]).is_ok());
    }
}
