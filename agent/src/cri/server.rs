//! Serving both CRI services on the unix socket.

use super::{ImageHandler, RuntimeHandler};
use crate::api::image_service_server::ImageServiceServer;
use crate::api::runtime_service_server::RuntimeServiceServer;
use crate::service::Agent;
use std::sync::Arc;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;

/// Largest message accepted or sent (kubelet uses 16 MiB).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// Serves until `shutdown` resolves; replaces a stale socket file.
pub async fn serve(
    agent: Arc<Agent>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let path = agent.cfg.socket_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    let listener = UnixListener::bind(&path)
        .map_err(|e| anyhow::anyhow!("binding {}: {e}", path.display()))?;
    let streams = crate::stream::StreamServer::start(&agent).await?;
    tracing::info!(socket = %path.display(), "serving CRI");
    tonic::transport::Server::builder()
        .add_service(
            RuntimeServiceServer::new(RuntimeHandler::new(agent.clone(), streams))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            ImageServiceServer::new(ImageHandler::new(agent.clone()))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await?;
    let _ = std::fs::remove_file(&path);
    Ok(())
}
