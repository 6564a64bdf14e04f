//! The executor driven for real without a lab: every inventory host is `connection:
//! local`, with its own temporary directory (`{{ root }}`) and state directory, so the
//! runs need neither root nor ssh, and touch nothing outside their temporary directory.

#[path = "executor/harness.rs"]
mod harness;

#[path = "executor/basics.rs"]
mod basics;
#[path = "executor/conditions.rs"]
mod conditions;
#[path = "executor/connector.rs"]
mod connector;
#[path = "executor/failures.rs"]
mod failures;
#[path = "executor/graph.rs"]
mod graph;
#[path = "executor/handlers.rs"]
mod handlers;
#[path = "executor/saved.rs"]
mod saved;
