//! kprov's engine: everything between the command line and the hosts.
//!
//! - [`catalog`]: every module a task may name (host modules and the engine's own).
//! - [`spec`]: the cluster spec (`cluster.yaml`) types.
//! - [`inventory`]: the host inventory (`hosts.yaml`), kprov's own and Ansible's shape.
//! - [`validate`]: structural and semantic validation with file:line:column diagnostics.
//! - [`transport`]: multiplexed SSH to hosts, with quoting and classified errors.
//! - [`facts`]: one round trip per host to learn what it is.
//! - [`playbook`]: playbooks and roles as users write them.
//! - [`template`] and [`vars`]: Jinja2 templates with strict undefined, variable precedence.
//! - [`run`]: the task graph and the batched plan/apply executor.
//! - [`events`]: what a run reports, for people and for CI.

pub mod actions;
pub mod catalog;
pub mod diagnostic;
pub mod events;
pub mod facts;
pub mod inventory;
pub mod playbook;
pub mod run;
pub mod schema;
pub mod spec;
pub mod template;
pub mod transport;
pub mod validate;
pub mod vars;
