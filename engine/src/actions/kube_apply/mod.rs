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

use crate::events::Status;
use crate::run::Outcome;
use crate::transport::Connector;

use gather::{gather_script, parse_gathered};
use server::{apply, Applied, Credentials};

/// Runs `kube_apply` for one host (one round trip reads the kubeconfig and manifests, then
/// the objects are applied through the host's API server); `plan` asks for a dry run.
pub(crate) async fn run(conn: &dyn Connector, args: &Args, plan: bool) -> Result<Outcome, String> {
    let out = conn
        .run(&gather_script(args), None)
        .await
        .map_err(|e| format!("{}: {}", e.kind, e.detail))?;
    let gathered = parse_gathered(&out.stdout)?;
    if !gathered.missing.is_empty() || gathered.kubeconfig.is_none() {
        let mut absent = gathered.missing.clone();
        if gathered.kubeconfig.is_none() {
            absent.push(args.kubeconfig.clone());
        }
        let absent = absent.join(", ");
        if plan {
            return Ok(Outcome::simple(
                Status::Unknown,
                Some(format!("{absent} not written yet: known after apply")),
            ));
        }
        return Err(format!("{absent} not found on the host"));
    }
    let mut objects = Vec::new();
    for (path, bytes) in &gathered.manifests {
        let text = String::from_utf8_lossy(bytes);
        for object in documents::objects(path, &text)? {
            objects.push((path.clone(), object));
        }
    }
    let kubeconfig = gathered.kubeconfig.unwrap_or_default();
    let creds = Credentials {
        kubeconfig: &kubeconfig,
        bootstrap: gathered.bootstrap.as_deref(),
    };
    let applied = apply(conn, creds, &objects, args, plan).await?;
    Ok(match applied {
        Applied::NotAnswering { server } => Outcome::pending(format!(
            "no API server answers at {server} yet: {} objects of {} wait for a later run; \
             run apply again once the kubelet has started the control plane",
            objects.len(),
            args.manifests.join(", ")
        )),
        Applied::Done {
            server,
            total,
            changes,
            waiting_nodes,
        } => {
            let mut summary = if changes.is_empty() {
                format!("{total} objects up to date at {server}")
            } else {
                format!(
                    "{} of {total} objects and nodes {} at {server}",
                    changes.len(),
                    if plan { "would change" } else { "changed" }
                )
            };
            if !waiting_nodes.is_empty() {
                summary.push_str(&format!(
                    "; nodes not registered yet: {} (run apply again once their kubelets have registered)",
                    waiting_nodes.join(", ")
                ));
            }
            let status = if changes.is_empty() {
                Status::Ok
            } else {
                Status::Changed
            };
            let mut outcome = Outcome::simple(status, Some(summary));
            outcome.pending = !waiting_nodes.is_empty();
            if !changes.is_empty() {
                outcome.diff = Some(changes.iter().map(|c| format!("{c}\n")).collect());
            }
            outcome
        }
    })
}
