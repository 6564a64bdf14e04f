//! kprov's engine: everything between the command line and the hosts.
//!
//! - [`spec`]: the cluster spec (`cluster.yaml`) types.
//! - [`inventory`]: the host inventory (`hosts.yaml`), kprov's own and Ansible's shape.
//! - [`validate`]: structural and semantic validation with file:line:column diagnostics.
//! - [`transport`]: multiplexed SSH to hosts, with quoting and classified errors.
//! - [`facts`]: one round trip per host to learn what it is.

pub mod diagnostic;
pub mod facts;
pub mod inventory;
pub mod schema;
pub mod spec;
pub mod transport;
pub mod validate;
