//! `cri-bench`: drives any CRI runtime over its unix socket and measures what
//! the kprov-agent issue asks for, so the agent and containerd are measured by
//! the same client. Used by `bench/bench.sh`; prints one JSON object.
//!
//! cri-bench push REGISTRY                       push test/busybox:1 (busybox-static) to REGISTRY
//! cri-bench pull SOCKET IMAGE
//! cri-bench run SOCKET IMAGE CGROUP DAEMON_PID HELPER_PATTERN [PODS...]

#[path = "../tests/common/images.rs"]
#[allow(dead_code)]
mod images;

use kprov_agent::api;
use kprov_agent::api::image_service_client::ImageServiceClient;
use kprov_agent::api::runtime_service_client::RuntimeServiceClient;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

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
    out.insert("idle_helpers".into(), n.into());
    out.insert("list_ms_0".into(), list_latency_ms(&mut rt).await.into());
    let mut starts = Vec::new();
    let (mut t_run, mut t_create, mut t_start): (Vec<f64>, Vec<f64>, Vec<f64>) =
        (Vec::new(), Vec::new(), Vec::new());
    let mut pods = Vec::new();
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
            rt.start_container(api::StartContainerRequest { container_id: c })
                .await
                .expect("start");
            t_start.push(t2.elapsed().as_secs_f64() * 1000.0);
            starts.push(t.elapsed().as_secs_f64() * 1000.0);
            pods.push(pod);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (d, h, n) = memory(daemon, pattern);
        out.insert(format!("rss_kib_{target}"), (d + h).into());
        out.insert(format!("daemon_rss_kib_{target}"), d.into());
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
