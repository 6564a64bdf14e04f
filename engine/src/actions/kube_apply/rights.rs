//! Whose credentials apply the cluster objects. From 1.29 kubeadm's admin.conf is in
//! group `kubeadm:cluster-admins`, which has no rights until the ClusterRoleBinding of
//! that name exists; kubeadm creates that one binding with super-admin.conf
//! (`system:masters`) and uses admin.conf for everything else. kprov does the same.

use std::time::Duration;

use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube_client::api::Api;
use kube_client::Client;
use serde_json::{json, Value};

use super::server::Session;
use super::Args;

/// The binding that gives admin.conf's group `cluster-admin`.
pub(crate) const ADMINS_BINDING: &str = "kubeadm:cluster-admins";

/// A client and the kubeconfig user it authenticates as.
pub(crate) struct Identity {
    pub client: Client,
    pub user: String,
}

/// The identity that applies the objects: `admin` once it has rights. When the API
/// server refuses it (403) and a bootstrap identity exists, the bootstrap identity
/// applies the `kubeadm:cluster-admins` binding (a change line says so) and admin is
/// used once the binding takes effect. A dry run cannot create the binding, so it runs
/// as the bootstrap identity.
pub(crate) async fn ensure(
    admin: Identity,
    bootstrap: Option<Identity>,
    objects: &[(String, Value)],
    args: &Args,
    dry_run: bool,
    changes: &mut Vec<String>,
) -> Result<Identity, String> {
    if has_rights(&admin.client).await? {
        return Ok(admin);
    }
    let Some(bootstrap) = bootstrap else {
        return Err(format!(
            "the API server refuses {} (403) and no bootstrap kubeconfig{} exists to create the {ADMINS_BINDING} ClusterRoleBinding; \
             on Kubernetes 1.29+ check that /etc/kubernetes/super-admin.conf is on the first master",
            admin.user,
            args.bootstrap_kubeconfig
                .as_deref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default()
        ));
    };
    if dry_run {
        changes.push(format!(
            "create ClusterRoleBinding {ADMINS_BINDING} (as {}: {} has no rights before it exists)",
            bootstrap.user, admin.user
        ));
        return Ok(bootstrap);
    }
    let binding = objects
        .iter()
        .map(|(_, o)| o)
        .find(|o| o["kind"] == "ClusterRoleBinding" && o["metadata"]["name"] == ADMINS_BINDING)
        .cloned()
        .unwrap_or_else(default_binding);
    let mut session = Session::new(bootstrap.client.clone(), args, false);
    if let Some(change) = session
        .apply_one(&binding)
        .await
        .map_err(|e| format!("as {}: {e}", bootstrap.user))?
    {
        changes.push(format!("{change} (as {})", bootstrap.user));
    }
    // RBAC takes effect once the API server's cache sees the binding.
    let deadline = std::time::Instant::now() + Duration::from_secs(args.timeout);
    while !has_rights(&admin.client).await? {
        if std::time::Instant::now() >= deadline {
            return Err(format!(
                "{} still has no rights {}s after the {ADMINS_BINDING} ClusterRoleBinding was created",
                admin.user, args.timeout
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(admin)
}

/// Whether the API server lets `client` read the admins binding (403 means no rights).
async fn has_rights(client: &Client) -> Result<bool, String> {
    let api: Api<ClusterRoleBinding> = Api::all(client.clone());
    match api.get_opt(ADMINS_BINDING).await {
        Ok(_) => Ok(true),
        Err(kube_client::Error::Api(e)) if e.code == 403 => Ok(false),
        Err(e) => Err(format!("reading ClusterRoleBinding {ADMINS_BINDING}: {e}")),
    }
}

/// The binding as kubeadm creates it, for object files that do not carry it.
fn default_binding() -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": ADMINS_BINDING},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": ADMINS_BINDING}],
    })
}
