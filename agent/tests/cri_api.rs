//! The gRPC surface: Version, Status conditions, UNIMPLEMENTED RPCs, and
//! malformed or unknown requests getting proper errors while the agent keeps serving.

mod common;

use common::agent::TestAgent;
use kprov_agent::api;
use tonic::Code;

#[tokio::test]
async fn version_status_and_unimplemented() {
    let a = TestAgent::start(None, 1, false);
    let mut rt = a.runtime().await;
    let v = rt
        .version(api::VersionRequest {
            version: "v1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.version, "0.1.0");
    assert_eq!(v.runtime_name, "kprov-agent");
    assert_eq!(v.runtime_api_version, "v1");

    let cond = |s: &api::StatusResponse, t: &str| {
        s.status
            .as_ref()
            .unwrap()
            .conditions
            .iter()
            .find(|c| c.r#type == t)
            .cloned()
            .unwrap()
    };
    let s = rt
        .status(api::StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner();
    assert!(cond(&s, "RuntimeReady").status);
    let net = cond(&s, "NetworkReady");
    assert!(!net.status);
    assert_eq!(net.reason, "NetworkPluginNotReady");
    assert_eq!(net.message, "cni plugin not initialized");

    // Once a CNI config appears, NetworkReady turns true (re-checked in the background).
    a.write_cni();
    let mut ready = false;
    for _ in 0..50 {
        let s = rt
            .status(api::StatusRequest { verbose: false })
            .await
            .unwrap()
            .into_inner();
        if cond(&s, "NetworkReady").status {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "NetworkReady never became true");

    let rc = rt
        .runtime_config(api::RuntimeConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        rc.linux.unwrap().cgroup_driver,
        api::CgroupDriver::Cgroupfs as i32
    );

    // Streaming RPCs check their request before handing out a URL.
    let e = rt.exec(api::ExecRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = rt.attach(api::AttachRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = rt
        .exec(api::ExecRequest {
            container_id: "no-such-container".into(),
            cmd: vec!["true".into()],
            stdout: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = rt
        .port_forward(api::PortForwardRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    // What is not built answers UNIMPLEMENTED, never UNKNOWN.
    let e = rt
        .checkpoint_container(api::CheckpointContainerRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    // The metrics calls answer empty lists (kubelet keeps to the stats calls).
    let d = rt
        .list_metric_descriptors(api::ListMetricDescriptorsRequest {})
        .await
        .expect("ListMetricDescriptors")
        .into_inner();
    assert!(d.descriptors.is_empty(), "{d:?}");
    let m = rt
        .list_pod_sandbox_metrics(api::ListPodSandboxMetricsRequest {})
        .await
        .expect("ListPodSandboxMetrics")
        .into_inner();
    assert!(m.pod_metrics.is_empty(), "{m:?}");
}

/// A codec that sends raw bytes, to put garbage on the wire.
#[derive(Clone, Default)]
struct RawCodec;
struct RawEnc;
struct RawDec;

impl tonic::codec::Encoder for RawEnc {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Self::Error> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawDec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, Self::Error> {
        use bytes::Buf;
        let mut v = vec![0; src.remaining()];
        src.copy_to_slice(&mut v);
        Ok(Some(v))
    }
}

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEnc;
    type Decoder = RawDec;
    fn encoder(&mut self) -> RawEnc {
        RawEnc
    }
    fn decoder(&mut self) -> RawDec {
        RawDec
    }
}

async fn raw_call(
    ch: tonic::transport::Channel,
    path: &'static str,
    body: Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(ch);
    grpc.ready().await.unwrap();
    grpc.unary(
        tonic::Request::new(body),
        tonic::codegen::http::uri::PathAndQuery::from_static(path),
        RawCodec,
    )
    .await
    .map(|r| r.into_inner())
}

#[tokio::test]
async fn malformed_and_unknown_requests_get_grpc_errors() {
    let a = TestAgent::start(None, 2, false);
    let ch = a.channel().await;

    let e = raw_call(
        ch.clone(),
        "/runtime.v1.RuntimeService/Version",
        vec![0xff, 0xff, 0xff, 0x07],
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::Internal, "{e}");
    let e = raw_call(ch.clone(), "/runtime.v1.RuntimeService/NoSuchCall", vec![])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented, "{e}");
    let e = raw_call(ch.clone(), "/runtime.v1.NoSuchService/Version", vec![])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented, "{e}");

    let mut rt = a.runtime().await;
    let e = rt
        .run_pod_sandbox(api::RunPodSandboxRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = rt
        .run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(api::PodSandboxConfig::default()),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    let e = rt
        .run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(api::PodSandboxConfig {
                metadata: Some(api::PodSandboxMetadata {
                    name: "p".into(),
                    uid: "u".into(),
                    namespace: "n".into(),
                    attempt: 0,
                }),
                ..Default::default()
            }),
            runtime_handler: "kata".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    let e = rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = rt
        .container_status(api::ContainerStatusRequest {
            container_id: "nope".into(),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = rt
        .pod_sandbox_status(api::PodSandboxStatusRequest {
            pod_sandbox_id: "nope".into(),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = rt
        .exec_sync(api::ExecSyncRequest {
            container_id: "nope".into(),
            cmd: vec!["true".into()],
            timeout: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // Stop/Remove of unknown objects are idempotent successes.
    rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: "gone".into(),
    })
    .await
    .unwrap();
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: "gone".into(),
    })
    .await
    .unwrap();
    rt.stop_container(api::StopContainerRequest {
        container_id: "gone".into(),
        timeout: 0,
    })
    .await
    .unwrap();
    rt.remove_container(api::RemoveContainerRequest {
        container_id: "gone".into(),
    })
    .await
    .unwrap();

    let mut im = a.images().await;
    let e = im
        .pull_image(api::PullImageRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = im
        .pull_image(api::PullImageRequest {
            image: Some(api::ImageSpec {
                image: "Not A Ref!!".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    let st = im
        .image_status(api::ImageStatusRequest {
            image: Some(api::ImageSpec {
                image: "absent:1".into(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(st.image.is_none(), "absent image must give image: null");
    im.remove_image(api::RemoveImageRequest {
        image: Some(api::ImageSpec {
            image: "absent:1".into(),
            ..Default::default()
        }),
    })
    .await
    .unwrap();

    // Still serving.
    let v = rt
        .version(api::VersionRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.version, "0.1.0");
}

#[test]
fn bad_config_file_names_line_and_column() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("agent.toml");
    std::fs::write(
        &p,
        "socket = \"unix:///tmp/x.sock\"\ncgroup_driver = \"upstart\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kprov-agent"))
        .arg("--config")
        .arg(&p)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:2:17", p.display())), "{err}");
}
