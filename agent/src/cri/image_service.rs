//! ImageService handlers.

use crate::api::{self, image_service_server::ImageService};
use crate::image::{ImageRecord, PullAuth};
use crate::service::{Agent, AgentError};
use crate::util::now_nanos;
use std::collections::HashSet;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Serves `runtime.v1.ImageService`.
pub struct ImageHandler {
    agent: Arc<Agent>,
}

impl ImageHandler {
    pub fn new(agent: Arc<Agent>) -> Self {
        Self { agent }
    }
}

fn to_api(i: &ImageRecord) -> api::Image {
    let (uid, username) = match i.config.user.split(':').next().unwrap_or("") {
        "" => (Some(api::Int64Value { value: 0 }), String::new()),
        u => match u.parse::<i64>() {
            Ok(n) => (Some(api::Int64Value { value: n }), String::new()),
            Err(_) => (None, u.to_string()),
        },
    };
    api::Image {
        id: i.id.clone(),
        repo_tags: i.repo_tags.clone(),
        repo_digests: i.repo_digests.clone(),
        size: i.size.max(1),
        uid,
        username,
        spec: Some(api::ImageSpec {
            image: i.id.clone(),
            ..Default::default()
        }),
        pinned: false,
        image_source: String::new(),
    }
}

fn image_name(spec: Option<api::ImageSpec>) -> Result<String, Status> {
    spec.map(|s| s.image)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Status::invalid_argument("image.image is required"))
}

/// Decodes the docker `auth` field (base64 of `user:password`).
fn decode_auth(auth: &str) -> Option<(String, String)> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

#[tonic::async_trait]
impl ImageService for ImageHandler {
    async fn list_images(
        &self,
        r: Request<api::ListImagesRequest>,
    ) -> Result<Response<api::ListImagesResponse>, Status> {
        let filter = r
            .into_inner()
            .filter
            .and_then(|f| f.image)
            .map(|s| s.image)
            .filter(|s| !s.is_empty());
        let images = match filter {
            Some(name) => self
                .agent
                .images
                .resolve(&name)
                .iter()
                .map(to_api)
                .collect(),
            None => self.agent.images.list().iter().map(to_api).collect(),
        };
        Ok(Response::new(api::ListImagesResponse { images }))
    }

    async fn image_status(
        &self,
        r: Request<api::ImageStatusRequest>,
    ) -> Result<Response<api::ImageStatusResponse>, Status> {
        let r = r.into_inner();
        let name = image_name(r.image)?;
        let rec = self.agent.images.resolve(&name);
        let mut info = std::collections::HashMap::new();
        if r.verbose {
            if let Some(i) = &rec {
                info.insert("info".into(), serde_json::json!({"layers": i.layers, "config": {"user": i.config.user, "env": i.config.env}}).to_string());
            }
        }
        Ok(Response::new(api::ImageStatusResponse {
            image: rec.as_ref().map(to_api),
            info,
        }))
    }

    async fn pull_image(
        &self,
        r: Request<api::PullImageRequest>,
    ) -> Result<Response<api::PullImageResponse>, Status> {
        let r = r.into_inner();
        let name = image_name(r.image)?;
        let mut auth = PullAuth::default();
        if let Some(a) = r.auth {
            auth.username = a.username;
            auth.password = a.password;
            if auth.username.is_empty() && !a.auth.is_empty() {
                let (u, p) = decode_auth(&a.auth).ok_or_else(|| {
                    Status::invalid_argument("auth.auth is not base64 of user:password")
                })?;
                auth.username = u;
                auth.password = p;
            }
            auth.token = if !a.registry_token.is_empty() {
                a.registry_token
            } else {
                a.identity_token
            };
        }
        let agent = self.agent.clone();
        // Detached: a caller that gives up must not leave a half-written layer behind.
        let rec = tokio::spawn(async move { agent.pull_image(&name, auth).await })
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(api::PullImageResponse { image_ref: rec.id }))
    }

    async fn remove_image(
        &self,
        r: Request<api::RemoveImageRequest>,
    ) -> Result<Response<api::RemoveImageResponse>, Status> {
        let name = image_name(r.into_inner().image)?;
        if self
            .agent
            .images
            .remove(&name)
            .map_err(AgentError::from)?
            .is_some()
        {
            let in_use: HashSet<_> = self
                .agent
                .container_list()
                .into_iter()
                .flat_map(|c| c.lowers)
                .collect();
            let images = self.agent.images.clone();
            tokio::task::spawn_blocking(move || images.gc(&in_use))
                .await
                .map_err(|e| Status::internal(e.to_string()))?
                .map_err(AgentError::from)?;
        }
        Ok(Response::new(api::RemoveImageResponse {}))
    }

    async fn image_fs_info(
        &self,
        _r: Request<api::ImageFsInfoRequest>,
    ) -> Result<Response<api::ImageFsInfoResponse>, Status> {
        let images = self.agent.images.clone();
        let (bytes, inodes) = tokio::task::spawn_blocking(move || images.usage())
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(api::ImageFsInfoResponse {
            image_filesystems: vec![api::FilesystemUsage {
                timestamp: now_nanos(),
                fs_id: Some(api::FilesystemIdentifier {
                    mountpoint: self.agent.images.root().display().to_string(),
                }),
                used_bytes: Some(api::UInt64Value { value: bytes }),
                inodes_used: Some(api::UInt64Value { value: inodes }),
            }],
            container_filesystems: vec![],
        }))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_user_password() {
        assert_eq!(
            super::decode_auth("dXNlcjpwYXNz"),
            Some(("user".into(), "pass".into()))
        );
        assert_eq!(super::decode_auth("!!"), None);
    }
}
