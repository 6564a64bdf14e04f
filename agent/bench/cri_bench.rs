//! `cri-bench`: drives any CRI runtime over its unix socket and measures what
//! the kprov-agent issue asks for, so the agent and containerd are measured by
//! the same client. Used by `bench/bench.sh`; prints one JSON object.
//! With pods running it also times exec in the first pod's container: ExecSync,
//! and the streaming Exec over WebSocket (`v4.channel.k8s.io`, which both the
//! agent's and kubelet's streaming library serve) and over SPDY/3.1.
//!
//! cri-bench push REGISTRY                       push test/busybox:1 (busybox-static) to REGISTRY
//! cri-bench pull SOCKET IMAGE
//! cri-bench run SOCKET IMAGE CGROUP DAEMON_PID HELPER_PATTERN [PODS...]

#[path = "../tests/common/images.rs"]
#[allow(dead_code)]
mod images;
#[path = "../tests/common/stream_client.rs"]
#[allow(dead_code)]
mod stream_client;

use futures_util::StreamExt;
use kprov_agent::api;
use kprov_agent::api::image_service_client::ImageServiceClient;
use kprov_agent::api::runtime_service_client::RuntimeServiceClient;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tonic::transport::Channel;

/// Runs per exec measurement.
const EXEC_RUNS: usize = 50;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// (daemon RSS, helpers' RSS, helper count) in KiB.
fn memory(daemon: u32, helper_pattern: &str) -> (u64, u64, usize) {
    let mut helpers = 0;
    let mut count = 0;
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(helper_pattern) {
            helpers += rss_kib(pid);
            count += 1;
        }
    }
    (rss_kib(daemon), helpers, count)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

async fn channel(socket: &str) -> Channel {
    let path = socket.to_string();
    tonic::transport::Endpoint::try_from("http://[::]:50051")
        .unwrap()
        .timeout(Duration::from_secs(240))
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
        .expect("connect")
}

async fn list_latency_ms(rt: &mut RuntimeServiceClient<Channel>) -> f64 {
    let mut v = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        rt.list_containers(api::ListContainersRequest::default())
            .await
            .unwrap();
        rt.list_pod_sandbox(api::ListPodSandboxRequest::default())
            .await
            .unwrap();
        v.push(t.elapsed().as_secs_f64() * 1000.0 / 2.0);
    }
    median(&mut v)
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Median ExecSync of `true` in container `c`, in ms.
async fn exec_sync_ms(rt: &mut RuntimeServiceClient<Channel>, c: &str) -> f64 {
    let mut v = Vec::new();
    for _ in 0..EXEC_RUNS {
        let t = Instant::now();
        let r = rt
            .exec_sync(api::ExecSyncRequest {
                container_id: c.into(),
                cmd: vec!["true".into()],
                timeout: 10,
            })
            .await
            .expect("exec_sync")
            .into_inner();
        v.push(ms_since(t));
        assert_eq!(r.exit_code, 0, "exec_sync true: {r:?}");
    }
    median(&mut v)
}

/// The URL of a non-tty streaming `echo hi` in container `c`.
async fn exec_url(rt: &mut RuntimeServiceClient<Channel>, c: &str) -> String {
    rt.exec(api::ExecRequest {
        container_id: c.into(),
        cmd: vec!["echo".into(), "hi".into()],
        tty: false,
        stdin: false,
        stdout: true,
        stderr: true,
    })
    .await
    .expect("exec")
    .into_inner()
    .url
}

/// Runs the exec behind `url` over WebSocket (`v4.channel.k8s.io`): returns
/// stdout and the status JSON of the error channel once it arrives.
async fn ws_exec(url: &str) -> (String, String) {
    use base64::Engine;
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').expect("URL path");
    let mut sock = TcpStream::connect(host).await.expect("connect");
    let _ = sock.set_nodelay(true);
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        .to_le_bytes();
    let key = base64::engine::general_purpose::STANDARD.encode(nonce);
    let req = format!(
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n"
    );
    sock.write_all(req.as_bytes())
        .await
        .expect("upgrade request");
    // Byte by byte: the first frame may follow the head in the same segment.
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            sock.read(&mut b).await.expect("upgrade answer"),
            1,
            "EOF in upgrade answer"
        );
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "no upgrade: {head}");
    let accept = kprov_agent::stream::accept_key(&key).to_lowercase();
    assert!(head.contains(&accept), "wrong Sec-WebSocket-Accept: {head}");
    assert!(
        head.contains("v4.channel.k8s.io"),
        "protocol not v4: {head}"
    );
    let mut ws = WebSocketStream::from_raw_socket(sock, Role::Client, None).await;
    let (mut stdout, mut status) = (Vec::new(), Vec::new());
    while let Some(Ok(msg)) = ws.next().await {
        match msg {
            Message::Binary(b) if b.len() > 1 => match b[0] {
                1 => stdout.extend_from_slice(&b[1..]),
                3 => {
                    status.extend_from_slice(&b[1..]);
                    break;
                }
                _ => {}
            },
            Message::Close(_) => break,
            _ => {}
        }
    }
    // Let the server end the session before the next run.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    (
        String::from_utf8_lossy(&stdout).into(),
        String::from_utf8_lossy(&status).into(),
    )
}

/// Median Exec-RPC-to-exit-status round trip of `echo hi` over WebSocket, in ms.
async fn exec_ws_ms(rt: &mut RuntimeServiceClient<Channel>, c: &str) -> f64 {
    let mut v = Vec::new();
    for _ in 0..EXEC_RUNS {
        let t = Instant::now();
        let url = exec_url(rt, c).await;
        let (out, status) = tokio::time::timeout(Duration::from_secs(20), ws_exec(&url))
            .await
            .expect("websocket exec timed out");
        v.push(ms_since(t));
        assert_eq!(out, "hi\n", "websocket exec stdout (status {status})");
        assert!(
            status.contains("Success"),
            "websocket exec status: {status}"
        );
    }
    median(&mut v)
}

/// Median Exec-RPC-to-session-end round trip of `echo hi` over SPDY/3.1, in ms.
async fn exec_spdy_ms(rt: &mut RuntimeServiceClient<Channel>, c: &str) -> f64 {
    let mut v = Vec::new();
    for _ in 0..EXEC_RUNS {
        let t = Instant::now();
        let url = exec_url(rt, c).await;
        let r = tokio::time::timeout(Duration::from_secs(20), async {
            stream_client::Exec::open(&url, false).await.finish().await
        })
        .await
        .expect("spdy exec timed out");
        v.push(ms_since(t));
        assert_eq!(r.stdout, "hi\n", "spdy exec: {r:?}");
        assert!(r.error.contains("Success"), "spdy exec status: {r:?}");
    }
    median(&mut v)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("push") {
        let reg = &args[2];
        let base = images::gzip(images::busybox_tar());
        images::push(
            reg,
            "test/busybox:1",
            std::slice::from_ref(&base),
            &["/bin/sleep", "86400"],
            "amd64",
        )
        .await;
        println!("pushed {reg}/test/busybox:1");
        return;
    }
    if args.get(1).map(String::as_str) == Some("list") {
        let mut rt = RuntimeServiceClient::new(channel(&args[2]).await);
        println!("{:.3} ms", list_latency_ms(&mut rt).await);
        return;
    }
    if args.get(1).map(String::as_str) == Some("pull") {
        let mut im = ImageServiceClient::new(channel(&args[2]).await);
        let t = Instant::now();
        im.pull_image(api::PullImageRequest {
            image: Some(api::ImageSpec {
                image: args[3].clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("pull");
        println!("pulled in {:?}", t.elapsed());
        return;
    }
    let (socket, image, cgroup, daemon) = (
        &args[2],
        &args[3],
        &args[4],
        args[5].parse::<u32>().unwrap(),
    );
    let pattern = &args[6];
    let steps: Vec<usize> = args[7..].iter().map(|s| s.parse().unwrap()).collect();
    let ch = channel(socket).await;
    let mut rt = RuntimeServiceClient::new(ch.clone());
    let mut im = ImageServiceClient::new(ch);
    im.pull_image(api::PullImageRequest {
        image: Some(api::ImageSpec {
            image: image.clone(),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .expect("pull");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut out = serde_json::Map::new();
    let (d, h, n) = memory(daemon, pattern);
    out.insert("idle_rss_kib".into(), (d + h).into());
    out.insert("idle_daemon_rss_kib".into(), d.into());
    out.insert("idle_helpers".into(), n.into());
    out.insert("list_ms_0".into(), list_latency_ms(&mut rt).await.into());
    let mut starts = Vec::new();
    let (mut t_run, mut t_create, mut t_start): (Vec<f64>, Vec<f64>, Vec<f64>) =
        (Vec::new(), Vec::new(), Vec::new());
    let mut pods = Vec::new();
    let mut containers = Vec::new();
    for &target in &steps {
        while pods.len() < target {
            let i = pods.len();
            let cfg = api::PodSandboxConfig {
                metadata: Some(api::PodSandboxMetadata {
                    name: format!("bench-{i}"),
                    uid: format!("bench-uid-{i}"),
                    namespace: "bench".into(),
                    attempt: 0,
                }),
                hostname: format!("bench-{i}"),
                log_directory: format!("/tmp/cri-bench-logs/{i}"),
                linux: Some(api::LinuxPodSandboxConfig {
                    cgroup_parent: cgroup.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let t = Instant::now();
            let pod = rt
                .run_pod_sandbox(api::RunPodSandboxRequest {
                    config: Some(cfg.clone()),
                    runtime_handler: String::new(),
                })
                .await
                .expect("run sandbox")
                .into_inner()
                .pod_sandbox_id;
            t_run.push(t.elapsed().as_secs_f64() * 1000.0);
            let t1 = Instant::now();
            let c = rt
                .create_container(api::CreateContainerRequest {
                    pod_sandbox_id: pod.clone(),
                    config: Some(api::ContainerConfig {
                        metadata: Some(api::ContainerMetadata {
                            name: "sleep".into(),
                            attempt: 0,
                        }),
                        image: Some(api::ImageSpec {
                            image: image.clone(),
                            ..Default::default()
                        }),
                        command: vec!["/bin/sleep".into(), "86400".into()],
                        log_path: "sleep/0.log".into(),
                        ..Default::default()
                    }),
                    sandbox_config: Some(cfg),
                })
                .await
                .expect("create container")
                .into_inner()
                .container_id;
            t_create.push(t1.elapsed().as_secs_f64() * 1000.0);
            let t2 = Instant::now();
            rt.start_container(api::StartContainerRequest {
                container_id: c.clone(),
            })
            .await
            .expect("start");
            containers.push(c);
            t_start.push(t2.elapsed().as_secs_f64() * 1000.0);
            starts.push(t.elapsed().as_secs_f64() * 1000.0);
            pods.push(pod);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (d, h, n) = memory(daemon, pattern);
        out.insert(format!("rss_kib_{target}"), (d + h).into());
        out.insert(format!("daemon_rss_kib_{target}"), d.into());
        out.insert(format!("helpers_rss_kib_{target}"), h.into());
        out.insert(format!("helpers_{target}"), n.into());
        out.insert(
            format!("list_ms_{target}"),
            list_latency_ms(&mut rt).await.into(),
        );
    }
    out.insert(
        "pod_start_median_ms".into(),
        median(&mut starts.clone()).into(),
    );
    out.insert("run_sandbox_median_ms".into(), median(&mut t_run).into());
    out.insert("create_median_ms".into(), median(&mut t_create).into());
    out.insert("start_median_ms".into(), median(&mut t_start).into());
    out.insert(
        "pod_start_first10_median_ms".into(),
        median(&mut starts[..starts.len().min(10)].to_vec()).into(),
    );
    if let Some(c) = containers.first() {
        out.insert(
            "exec_sync_median_ms".into(),
            exec_sync_ms(&mut rt, c).await.into(),
        );
        out.insert(
            "exec_ws_median_ms".into(),
            exec_ws_ms(&mut rt, c).await.into(),
        );
        out.insert(
            "exec_spdy_median_ms".into(),
            exec_spdy_ms(&mut rt, c).await.into(),
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        out.insert(
            "daemon_rss_kib_after_exec".into(),
            memory(daemon, pattern).0.into(),
        );
    }
    for pod in &pods {
        rt.stop_pod_sandbox(api::StopPodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .expect("stop");
        rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .expect("remove");
    }
    println!("{}", serde_json::Value::Object(out));
}
