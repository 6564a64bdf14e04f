//! Persisted sandbox and container records.
//!
//! A record is written before each side effect (netns, CNI ADD, runc create) so
//! that a restarted agent can find and release, or keep serving, what exists.

mod records;
mod store;

pub use records::{
    ContainerRecord, ContainerState, ExitInfo, PortMap, SandboxRecord, SandboxState,
};
pub use store::RecordStore;
