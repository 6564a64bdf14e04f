//! `kube_apply`: server-side apply of Kubernetes manifests that live on a host (the
//! first master's cluster objects, the CNI addon) through that host's API server.
//!
//! It runs on the control machine, not on the host: one round trip reads the kubeconfig
//! and the manifests, the API server is reached through the host's SSH connection (a
//! local port forward, so nothing but SSH has to be open to the control machine), and
//! every object is applied with the `kube` client (`fieldManager: kprov`, forced, the way
//! `kubectl apply --server-side --force-conflicts` does). `plan` asks the server for a
//! dry run and lists the objects that would change. When no API server answers (the
//! kubelet has not started the static pods yet, or a lab without kubelet) the task is
//! skipped with a message saying so, and a later run applies.
//!
//! On 1.29+ the first apply authenticates as super-admin (`bootstrap_kubeconfig`) for the
//! one binding that gives admin.conf its rights, then as admin ([`rights`]); registered
//! nodes get kubeadm's labels, annotation and taint ([`nodes`]).
//!
//! The kubeconfig holds a private key: it stays in memory, is never registered, logged
//! or printed; summaries name objects (`kind namespace/name`), never their content.

mod args;
mod documents;
mod gather;
mod nodes;
mod rights;
mod server;

pub use args::{Args, MODULE};
pub(crate) use documents::objects;
pub(crate) use gather::{gather_script, parse_gathered};
pub(crate) use server::{apply, Applied, Credentials};
