//! Pulling an image: manifest (index resolved for this platform) and config via
//! `oci-client`, layers streamed concurrently into the content store with
//! digest verification, then unpacked into snapshot directories.

use super::hashing_writer::HashingWriter;
use super::pull_error::{classify, Offered, PullFailure};
use super::store::{ImageRecord, ImageRuntimeConfig, ImageStore};
use super::{unpack_layer, ImageError};
use crate::config::RegistryConfig;
use futures_util::TryStreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;

/// How many layers are fetched at once.
const LAYER_CONCURRENCY: usize = 3;

/// Credentials given with a pull request.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct PullAuth {
    pub username: String,
    pub password: String,
    /// A bearer token (CRI `registry_token` or `identity_token`).
    pub token: String,
}

/// Pulls images into an [`ImageStore`].
pub struct Puller {
    registry: RegistryConfig,
    store: Arc<ImageStore>,
    /// One lock per layer digest so concurrent pulls fetch a layer once.
    layer_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Puller {
    pub fn new(registry: RegistryConfig, store: Arc<ImageStore>) -> Self {
        install_crypto_provider();
        Self {
            registry,
            store,
            layer_locks: Mutex::new(HashMap::new()),
        }
    }

    /// Fetches `image` into the content store and snapshots, trying the
    /// configured mirrors first; returns the record for the image index (the
    /// caller inserts it).
    pub async fn fetch(&self, image: &str, auth: &PullAuth) -> Result<ImageRecord, ImageError> {
        let reference: Reference = image.parse().map_err(|e: oci_client::ParseError| {
            ImageError::BadReference(image.to_string(), e.to_string())
        })?;
        let mut last_err = None;
        for host in self.endpoints(reference.registry()) {
            let target = match reference.digest() {
                Some(d) => Reference::with_digest(
                    host.clone(),
                    reference.repository().to_string(),
                    d.to_string(),
                ),
                None => Reference::with_tag(
                    host.clone(),
                    reference.repository().to_string(),
                    reference.tag().unwrap_or("latest").to_string(),
                ),
            };
            match self.pull_from(&reference, &target, &host, auth).await {
                Ok(rec) => return Ok(rec),
                Err(e) => {
                    tracing::warn!(image, host, error = %e, "pull attempt failed");
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| ImageError::Pull {
            reference: image.to_string(),
            kind: PullFailure::Other,
            message: "no registry endpoint".into(),
        }))
    }

    /// Mirrors for `registry`, then the registry itself.
    fn endpoints(&self, registry: &str) -> Vec<String> {
        let mut v = self
            .registry
            .mirrors
            .get(registry)
            .cloned()
            .unwrap_or_default();
        v.push(registry.to_string());
        v
    }

    /// A registry client for `host` with its TLS settings; a CA file that
    /// cannot be read is a TLS failure naming the file.
    fn client_for(&self, host: &str, reference: &Reference) -> Result<Client, ImageError> {
        let h = self.registry.hosts.get(host).cloned().unwrap_or_default();
        let mut extra_root_certificates = Vec::new();
        if let Some(ca) = &h.ca_file {
            let data = std::fs::read(ca).map_err(|e| ImageError::Pull {
                reference: reference.whole(),
                kind: PullFailure::Tls,
                message: format!("registry {host}: cannot read ca_file {}: {e}", ca.display()),
            })?;
            extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        Ok(Client::new(ClientConfig {
            protocol: if h.plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            accept_invalid_certificates: h.insecure_skip_verify,
            extra_root_certificates,
            max_concurrent_download: LAYER_CONCURRENCY,
            ..Default::default()
        }))
    }

    fn auth_for(&self, host: &str, auth: &PullAuth) -> RegistryAuth {
        if !auth.token.is_empty() {
            return RegistryAuth::Bearer(auth.token.clone());
        }
        if !auth.username.is_empty() {
            return RegistryAuth::Basic(auth.username.clone(), auth.password.clone());
        }
        let h = self.registry.hosts.get(host).cloned().unwrap_or_default();
        match (h.token, h.username, h.password) {
            (Some(t), _, _) => RegistryAuth::Bearer(t),
            (None, Some(u), p) => RegistryAuth::Basic(u, p.unwrap_or_default()),
            _ => RegistryAuth::Anonymous,
        }
    }

    async fn pull_from(
        &self,
        original: &Reference,
        target: &Reference,
        host: &str,
        auth: &PullAuth,
    ) -> Result<ImageRecord, ImageError> {
        let client = self.client_for(host, target)?;
        let registry_auth = self.auth_for(host, auth);
        let (manifest, digest, config, list_digest) = client
            .pull_manifest_and_config_and_list_digest(target, &registry_auth)
            .await
            .map_err(|e| {
                let (kind, message) = classify(&e, host, &offered(&registry_auth));
                ImageError::Pull {
                    reference: target.whole(),
                    kind,
                    message,
                }
            })?;
        let config_digest = format!("sha256:{}", hex::encode(Sha256::digest(config.as_bytes())));
        if config_digest != manifest.config.digest {
            return Err(ImageError::Digest {
                digest: manifest.config.digest.clone(),
                actual: config_digest,
            });
        }
        let cfg_path = self.store.blob_path(&config_digest);
        if !cfg_path.exists() {
            crate::util::write_atomic(&cfg_path, config.as_bytes())?;
        }
        futures_util::stream::iter(manifest.layers.iter().map(Ok::<_, ImageError>))
            .try_for_each_concurrent(LAYER_CONCURRENCY, |layer| {
                self.fetch_layer(&client, target, layer)
            })
            .await?;
        let size = manifest
            .layers
            .iter()
            .map(|l| l.size.max(0) as u64)
            .sum::<u64>()
            + config.len() as u64;
        let top_digest = list_digest.unwrap_or(digest);
        let repo = format!("{}/{}", original.registry(), original.repository());
        let repo_tags = match (original.digest(), original.tag()) {
            (None, Some(t)) => vec![format!("{repo}:{t}")],
            _ => Vec::new(),
        };
        let rec = ImageRecord {
            id: config_digest,
            repo_tags,
            repo_digests: vec![format!("{repo}@{top_digest}")],
            size,
            layers: manifest.layers.iter().map(|l| l.digest.clone()).collect(),
            config: runtime_config(&config),
        };
        Ok(rec)
    }

    /// Downloads (unless present) and unpacks (unless present) one layer.
    async fn fetch_layer(
        &self,
        client: &Client,
        target: &Reference,
        layer: &OciDescriptor,
    ) -> Result<(), ImageError> {
        let lock = {
            let mut g = self
                .layer_locks
                .lock()
                .map_err(|_| std::io::Error::other("layer lock poisoned"))?;
            g.entry(layer.digest.clone()).or_default().clone()
        };
        let _held = lock.lock().await;
        let snapshot = self.store.snapshot_path(&layer.digest);
        if snapshot.exists() {
            return Ok(());
        }
        let blob = self.store.blob_path(&layer.digest);
        if !blob.exists() {
            let tmp = self.store.tmp_dir().join(format!(
                "{}.{}.part",
                super::store::hex_of(&layer.digest),
                unique()
            ));
            let file = tokio::fs::File::create(&tmp).await?;
            let mut w = HashingWriter::new(file);
            let res = client.pull_blob(target, layer, &mut w).await;
            if let Err(e) = res {
                let _ = tokio::fs::remove_file(&tmp).await;
                let (kind, message) = classify(&e, target.registry(), &Offered::Nothing);
                return Err(ImageError::Pull {
                    reference: target.whole(),
                    kind,
                    message: format!("layer {}: {message}", layer.digest),
                });
            }
            w.flush().await?;
            let actual = w.digest();
            let file = w.into_file();
            file.sync_all().await?;
            drop(file);
            if actual != layer.digest {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(ImageError::Digest {
                    digest: layer.digest.clone(),
                    actual,
                });
            }
            tokio::fs::rename(&tmp, &blob).await?;
        }
        let work = self
            .store
            .tmp_dir()
            .join(format!("{}.unpack", super::store::hex_of(&layer.digest)));
        let digest = layer.digest.clone();
        let (b, w, s) = (blob.clone(), work.clone(), snapshot.clone());
        tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_dir_all(&w);
            unpack_layer(&b, &w, &digest)?;
            if let Err(e) = std::fs::rename(&w, &s) {
                // Another pull finished the same layer first: keep theirs.
                let _ = std::fs::remove_dir_all(&w);
                if !s.exists() {
                    return Err(e.into());
                }
            }
            Ok::<_, ImageError>(())
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
        Ok(())
    }
}

/// What `auth` offers the registry, for error messages.
fn offered(auth: &RegistryAuth) -> Offered<'_> {
    match auth {
        RegistryAuth::Anonymous => Offered::Nothing,
        RegistryAuth::Basic(user, _) => Offered::User(user),
        RegistryAuth::Bearer(_) => Offered::Token,
    }
}

/// A per-process, per-call suffix for temp names.
fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Selects ring as rustls' crypto provider (idempotent); registry clients need one.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Extracts entrypoint, cmd, env, working dir and user from an image config.
fn runtime_config(config: &str) -> ImageRuntimeConfig {
    let v: serde_json::Value = serde_json::from_str(config).unwrap_or_default();
    let c = &v["config"];
    let strings = |k: &str| -> Vec<String> {
        c[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    ImageRuntimeConfig {
        entrypoint: strings("Entrypoint"),
        cmd: strings("Cmd"),
        env: strings("Env"),
        working_dir: c["WorkingDir"].as_str().unwrap_or_default().to_string(),
        user: c["User"].as_str().unwrap_or_default().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_config_reads_docker_keys() {
        let c = runtime_config(
            r#"{"config":{"Entrypoint":["/bin/sh"],"Cmd":["-c","x"],"Env":["A=1"],"WorkingDir":"/w","User":"5:6"}}"#,
        );
        assert_eq!(c.entrypoint, vec!["/bin/sh"]);
        assert_eq!(c.cmd, vec!["-c", "x"]);
        assert_eq!(c.env, vec!["A=1"]);
        assert_eq!(c.working_dir, "/w");
        assert_eq!(c.user, "5:6");
    }
}
