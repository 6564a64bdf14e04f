//! CRI clients over the agent's unix socket, for tests and tools that drive a
//! running agent (kubelet and crictl bring their own).

use crate::api::image_service_client::ImageServiceClient;
use crate::api::runtime_service_client::RuntimeServiceClient;
use std::path::Path;
use tonic::transport::{Channel, Endpoint, Uri};

/// A gRPC channel to the CRI endpoint listening on the unix socket `socket`.
pub async fn connect(socket: &Path) -> Result<Channel, tonic::transport::Error> {
    let path = socket.to_path_buf();
    // The URI is required by tonic but unused: the connector dials the socket.
    Endpoint::from_static("http://[::]:50051")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
}

/// A `RuntimeService` client on `socket`.
pub async fn runtime(
    socket: &Path,
) -> Result<RuntimeServiceClient<Channel>, tonic::transport::Error> {
    Ok(RuntimeServiceClient::new(connect(socket).await?))
}

/// An `ImageService` client on `socket`.
pub async fn images(socket: &Path) -> Result<ImageServiceClient<Channel>, tonic::transport::Error> {
    Ok(ImageServiceClient::new(connect(socket).await?))
}
