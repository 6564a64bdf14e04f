//! Talking to the API server: a client through the host's SSH connection, then a
//! server-side apply (or its dry run) of each object.

use std::collections::HashMap;
use std::time::Duration;

use kube_client::api::{Api, DynamicObject, Patch, PatchParams};
use kube_client::config::{KubeConfigOptions, Kubeconfig};
use kube_client::core::{ApiResource, GroupVersionKind};
use kube_client::discovery::{pinned_kind, ApiCapabilities, Scope};
use kube_client::{Client, Config};
use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::Args;
use crate::transport::Connector;

/// What an apply (or its dry run) did.
#[derive(Debug)]
pub(crate) enum Applied {
    /// Nothing answers at the kubeconfig's server address, as seen from the host.
    NotAnswering { server: String },
    /// Every object was applied (or dry-run applied).
    Done {
        server: String,
        total: usize,
        /// `create Kind namespace/name` or `update …`, for the objects that change.
        changes: Vec<String>,
        /// Nodes to mark that have not registered yet.
        waiting_nodes: Vec<String>,
    },
}

/// The credentials `kube_apply` read from the host (each holds a private key).
pub(crate) struct Credentials<'a> {
    pub kubeconfig: &'a [u8],
    pub bootstrap: Option<&'a [u8]>,
}

/// How long an SSH-forwarded connection may stay silent before we call it answered:
/// a refused forward is closed by ssh within milliseconds; a TLS server waits for us.
const SILENCE: Duration = Duration::from_millis(700);

/// A kubeconfig parsed for the client, with the name of its user.
struct Loaded {
    config: Config,
    user: String,
}

async fn load(bytes: &[u8], path: &str) -> Result<Loaded, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| format!("{path} is not UTF-8 text"))?;
    let parsed = Kubeconfig::from_yaml(text)
        .map_err(|e| format!("{path} is not a valid kubeconfig: {e}"))?;
    let user = parsed
        .auth_infos
        .first()
        .map(|a| a.name.clone())
        .unwrap_or_else(|| path.to_string());
    let config = Config::from_custom_kubeconfig(parsed, &KubeConfigOptions::default())
        .await
        .map_err(|e| format!("{path} cannot be used: {e}"))?;
    Ok(Loaded { config, user })
}

/// A client for `config` that reaches the API server at the forwarded local port.
fn client_through(
    mut config: Config,
    local: u16,
    host: &str,
    args: &Args,
) -> Result<Client, String> {
    config.cluster_url = format!("https://127.0.0.1:{local}")
        .parse()
        .map_err(|e| format!("local forward address: {e}"))?;
    if config.tls_server_name.is_none() {
        config.tls_server_name = Some(host.to_string());
    }
    let timeout = Duration::from_secs(args.timeout);
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    Client::try_from(config).map_err(|e| format!("API client: {e}"))
}

/// Applies `objects` (each with the file it came from) through the API server of the
/// kubeconfig, reached through `conn`, then marks `args.nodes`. `dry_run` changes
/// nothing on the server.
pub(crate) async fn apply(
    conn: &dyn Connector,
    creds: Credentials<'_>,
    objects: &[(String, Value)],
    args: &Args,
    dry_run: bool,
) -> Result<Applied, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let admin = load(creds.kubeconfig, &args.kubeconfig).await?;
    let bootstrap = match (creds.bootstrap, &args.bootstrap_kubeconfig) {
        (Some(bytes), Some(path)) => Some(load(bytes, path).await?),
        _ => None,
    };
    let server = admin
        .config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_string();
    let host = admin
        .config
        .cluster_url
        .host()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
        .ok_or_else(|| format!("the server {server} of {} has no host", args.kubeconfig))?;
    let port = admin.config.cluster_url.port_u16().unwrap_or(443);
    let forward = conn
        .forward_tcp(&host, port)
        .await
        .map_err(|e| e.to_string())?;
    let local = forward.local;
    let result = async {
        if !answers(local).await {
            return Ok(Applied::NotAnswering {
                server: server.clone(),
            });
        }
        let client = client_through(admin.config, local, &host, args)?;
        client.apiserver_version().await.map_err(|e| {
            format!("the API server at {server} answered, but not as expected: {e}")
        })?;
        let bootstrap = match bootstrap {
            Some(b) => Some(super::rights::Identity {
                client: client_through(b.config, local, &host, args)?,
                user: b.user,
            }),
            None => None,
        };
        let admin = super::rights::Identity {
            client,
            user: admin.user,
        };
        let mut changes = Vec::new();
        let acting =
            super::rights::ensure(admin, bootstrap, objects, args, dry_run, &mut changes).await?;
        let mut session = Session::new(acting.client.clone(), args, dry_run);
        for (file, object) in objects {
            if let Some(change) = session
                .apply_one(object)
                .await
                .map_err(|e| format!("{file}: {e}"))?
            {
                changes.push(change);
            }
        }
        let marked = super::nodes::mark(&acting.client, &args.node_marks(), dry_run).await?;
        changes.extend(marked.changes);
        Ok(Applied::Done {
            server: server.clone(),
            total: objects.len(),
            changes,
            waiting_nodes: marked.waiting,
        })
    }
    .await;
    forward.close().await;
    result
}

/// True when something accepts the forwarded connection and waits for us to speak.
async fn answers(local: u16) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", local)).await else {
        return false;
    };
    let mut byte = [0u8; 1];
    match tokio::time::timeout(SILENCE, stream.read(&mut byte)).await {
        Err(_) => true,      // silent: a server waiting for a TLS client hello
        Ok(Ok(n)) => n > 0,  // EOF: ssh could not connect on the far side
        Ok(Err(_)) => false, // reset
    }
}

/// One apply pass: the client and the API resources already discovered.
pub(super) struct Session<'a> {
    client: Client,
    args: &'a Args,
    dry_run: bool,
    kinds: HashMap<(String, String, String), (ApiResource, ApiCapabilities)>,
}

impl<'a> Session<'a> {
    pub(super) fn new(client: Client, args: &'a Args, dry_run: bool) -> Self {
        Session {
            client,
            args,
            dry_run,
            kinds: HashMap::new(),
        }
    }
}

impl Session<'_> {
    /// Applies one object; `Some("create …" | "update …")` when it changes.
    pub(super) async fn apply_one(&mut self, object: &Value) -> Result<Option<String>, String> {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let api_version = text(&object["apiVersion"]);
        let kind = text(&object["kind"]);
        let name = text(&object["metadata"]["name"]);
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.clone()),
        };
        let Some((resource, caps)) = self.kind(&group, &version, &kind).await? else {
            // Plan: a kind whose CRD an earlier object of this run creates.
            return Ok(Some(format!(
                "create {kind} {name} (its kind is created by this run)"
            )));
        };
        let namespaced = caps.scope == Scope::Namespaced;
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let label = if namespaced {
            format!("{kind} {namespace}/{name}")
        } else {
            format!("{kind} {name}")
        };
        let api: Api<DynamicObject> = if namespaced {
            Api::namespaced_with(self.client.clone(), &namespace, &resource)
        } else {
            Api::all_with(self.client.clone(), &resource)
        };
        let secret = kind == "Secret";
        let describe = |e: kube_client::Error| describe(e, &label, secret);
        let before = api.get_opt(&name).await.map_err(describe)?;
        let mut params = PatchParams::apply(&self.args.field_manager).force();
        if self.dry_run {
            params = params.dry_run();
        }
        let after = match api.patch(&name, &params, &Patch::Apply(object)).await {
            Ok(after) => after,
            // Plan: its namespace is created by an earlier object of this run.
            Err(kube_client::Error::Api(e))
                if self.dry_run && before.is_none() && e.code == 404 =>
            {
                return Ok(Some(format!("create {label}")));
            }
            Err(e) => return Err(describe(e)),
        };
        Ok(match before {
            None => Some(format!("create {label}")),
            Some(before) if self.dry_run => {
                (comparable(&before) != comparable(&after)).then(|| format!("update {label}"))
            }
            Some(before) => (before.metadata.resource_version != after.metadata.resource_version)
                .then(|| format!("update {label}")),
        })
    }

    /// The API resource of a kind, discovered once per run. A kind not served yet is
    /// waited for (its CRD was just applied), except in a dry run, where it is `None`.
    async fn kind(
        &mut self,
        group: &str,
        version: &str,
        kind: &str,
    ) -> Result<Option<(ApiResource, ApiCapabilities)>, String> {
        let key = (group.to_string(), version.to_string(), kind.to_string());
        if let Some(found) = self.kinds.get(&key) {
            return Ok(Some(found.clone()));
        }
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let mut waited = 0;
        loop {
            match pinned_kind(&self.client, &gvk).await {
                Ok(found) => {
                    self.kinds.insert(key, found.clone());
                    return Ok(Some(found));
                }
                Err(_) if self.dry_run => return Ok(None),
                Err(e) if waited >= self.args.timeout => {
                    let api_version = if group.is_empty() {
                        version.to_string()
                    } else {
                        format!("{group}/{version}")
                    };
                    return Err(format!(
                        "the API server does not serve {kind} ({api_version}): {e}; is its CustomResourceDefinition applied before it?"
                    ));
                }
                Err(_) => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    waited += 1;
                }
            }
        }
    }
}

/// An object without what the server changes on every write.
fn comparable(object: &DynamicObject) -> Value {
    let mut v = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "resourceVersion",
            "managedFields",
            "generation",
            "creationTimestamp",
            "uid",
        ] {
            meta.remove(key);
        }
    }
    if let Some(map) = v.as_object_mut() {
        map.remove("status");
    }
    v
}

/// An API error for people; for Secrets only the reason, since messages may quote values.
fn describe(e: kube_client::Error, label: &str, secret: bool) -> String {
    match e {
        kube_client::Error::Api(r) if secret => {
            format!(
                "{label}: the API server refused it ({} {})",
                r.code, r.reason
            )
        }
        kube_client::Error::Api(r) => format!("{label}: {} ({} {})", r.message, r.code, r.reason),
        other => format!("{label}: {other}"),
    }
}
