//! Pods end to end through the CRI: sandboxes with bridge CNI, containers run
//! by runc, exec, logs, stats, pod-to-pod traffic, agent restart, idempotent
//! stop/remove, half-way failures, and no leaks afterwards.

mod common;

use common::leaks::assert_no_leaks;
use common::pods::*;
use kprov_agent::api;
use std::collections::HashMap;
use std::time::Duration;

#[tokio::test]
async fn pod_lifecycle_end_to_end() {
    let (_reg, a, image) = setup(5).await;
    let mut rt = a.runtime().await;

    let pa_cfg = sandbox_config(&a, "pod-a");
    let pa = run_pod(&mut rt, &pa_cfg).await;
    // The same name again (kubelet's retry after a timeout) gets the same sandbox.
    assert_eq!(run_pod(&mut rt, &pa_cfg).await, pa);
    let ip_a = pod_ip(&mut rt, &pa).await;
    assert!(ip_a.starts_with("10.99.5."), "pod IP {ip_a}");

    let web = start_container(
        &mut rt,
        &pa,
        &pa_cfg,
        container_config(
            &image,
            "web",
            &[
                "/bin/sh",
                "-c",
                "echo hello; echo oops >&2; exec httpd -f -p 8080 -h /www",
            ],
        ),
    )
    .await;
    let st = status(&mut rt, &web).await;
    let s = st.status.clone().unwrap();
    assert_eq!(s.state, api::ContainerState::ContainerRunning as i32);
    assert!(s.started_at > 0 && s.created_at > 0);
    assert!(
        s.message.contains("clamped"),
        "oom_score_adj clamp is reported: {:?}",
        s.message
    );
    let log_path = std::path::PathBuf::from(&s.log_path);
    assert_eq!(log_path, a.path().join("logs/pod-a/web/0.log"));

    // Logs in CRI format.
    let text = wait_log(&log_path, "oops").await;
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.splitn(4, ' ').collect()).collect();
    assert!(
        lines.iter().any(|l| l[1..] == ["stdout", "F", "hello"]),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l[1..] == ["stderr", "F", "oops"]),
        "{text}"
    );
    assert!(lines
        .iter()
        .all(|l| chrono::DateTime::parse_from_rfc3339(l[0]).is_ok()));

    // ExecSync: output, exit codes, timeout, and the pod's hostname and files.
    assert_eq!(
        exec(&mut rt, &web, &["cat", "/etc/hostname"]).await,
        ("pod-a\n".into(), 0)
    );
    assert_eq!(exec(&mut rt, &web, &["hostname"]).await.0, "pod-a\n");
    assert_eq!(exec(&mut rt, &web, &["sh", "-c", "exit 3"]).await.1, 3);
    assert_eq!(exec(&mut rt, &web, &["id", "-u"]).await.0, "0\n");
    let e = rt
        .exec_sync(api::ExecSyncRequest {
            container_id: web.clone(),
            cmd: vec!["sleep".into(), "30".into()],
            timeout: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::DeadlineExceeded);
    // Resources reached the cgroup.
    let (mem, _) = exec(
        &mut rt,
        &web,
        &["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"],
    )
    .await;
    let cg_limit: u64 = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory{}/kprov-{web}/memory.limit_in_bytes",
        a.cgroup_parent
    ))
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    assert_eq!(
        cg_limit,
        128 << 20,
        "container cgroup under the pod's cgroup_parent (in-container view {mem:?})"
    );

    // UpdateContainerResources reaches the cgroup and the status.
    rt.update_container_resources(api::UpdateContainerResourcesRequest {
        container_id: web.clone(),
        linux: Some(api::LinuxContainerResources {
            memory_limit_in_bytes: 96 << 20,
            cpu_shares: 512,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let cg = |f: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{f}"))
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(
        cg(&format!(
            "memory{}/kprov-{web}/memory.limit_in_bytes",
            a.cgroup_parent
        )),
        96 << 20
    );
    assert_eq!(
        cg(&format!("cpu{}/kprov-{web}/cpu.shares", a.cgroup_parent)),
        512
    );
    let res = status(&mut rt, &web)
        .await
        .status
        .unwrap()
        .resources
        .unwrap()
        .linux
        .unwrap();
    assert_eq!(res.memory_limit_in_bytes, 96 << 20);

    // Log rotation: rename, reopen, new output lands in the new file.
    let rotated = log_path.with_extension("log.1");
    std::fs::rename(&log_path, &rotated).unwrap();
    rt.reopen_container_log(api::ReopenContainerLogRequest {
        container_id: web.clone(),
    })
    .await
    .unwrap();
    exec(
        &mut rt,
        &web,
        &["sh", "-c", "echo after-rotate > /proc/1/fd/1"],
    )
    .await;
    wait_log(&log_path, "stdout F after-rotate").await;
    assert!(!std::fs::read_to_string(&rotated)
        .unwrap()
        .contains("after-rotate"));

    // A second container in the pod reaches the first over localhost.
    let side = start_container(
        &mut rt,
        &pa,
        &pa_cfg,
        container_config(&image, "side", &["sleep", "1000"]),
    )
    .await;
    assert_eq!(
        exec(&mut rt, &side, &["wget", "-qO-", "http://127.0.0.1:8080/"])
            .await
            .0,
        "pong\n"
    );
    assert_eq!(exec(&mut rt, &side, &["hostname"]).await.0, "pod-a\n");

    // Another pod reaches pod A by IP through the bridge.
    let pb_cfg = sandbox_config(&a, "pod-b");
    let pb = run_pod(&mut rt, &pb_cfg).await;
    let ip_b = pod_ip(&mut rt, &pb).await;
    assert_ne!(ip_a, ip_b);
    let client = start_container(
        &mut rt,
        &pb,
        &pb_cfg,
        container_config(&image, "client", &["sleep", "1000"]),
    )
    .await;
    assert_eq!(
        exec(
            &mut rt,
            &client,
            &["wget", "-qO-", &format!("http://{ip_a}:8080/")]
        )
        .await
        .0,
        "pong\n"
    );

    // Stats from cgroups.
    let cs = rt
        .container_stats(api::ContainerStatsRequest {
            container_id: web.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    assert!(cs.memory.unwrap().working_set_bytes.unwrap().value > 0);
    assert!(cs.cpu.unwrap().usage_core_nano_seconds.unwrap().value > 0);
    let all = rt
        .list_container_stats(api::ListContainerStatsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(all.len(), 3);
    let only_a = rt
        .list_container_stats(api::ListContainerStatsRequest {
            filter: Some(api::ContainerStatsFilter {
                pod_sandbox_id: pa.clone(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(only_a.len(), 2);

    let ps = rt
        .pod_sandbox_stats(api::PodSandboxStatsRequest {
            pod_sandbox_id: pa.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    let lx = ps.linux.unwrap();
    assert_eq!(lx.containers.len(), 2);
    assert!(lx.memory.unwrap().working_set_bytes.unwrap().value > 0);
    assert!(
        lx.network
            .unwrap()
            .default_interface
            .unwrap()
            .rx_bytes
            .unwrap()
            .value
            > 0,
        "pod A received HTTP requests"
    );
    let all_pods = rt
        .list_pod_sandbox_stats(api::ListPodSandboxStatsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(all_pods.len(), 2);

    // List filters.
    let by_label = rt
        .list_pod_sandbox(api::ListPodSandboxRequest {
            filter: Some(api::PodSandboxFilter {
                label_selector: HashMap::from([("app".into(), "pod-b".into())]),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(by_label.len(), 1);
    assert_eq!(by_label[0].id, pb);
    let in_a = rt
        .list_containers(api::ListContainersRequest {
            filter: Some(api::ContainerFilter {
                pod_sandbox_id: pa.clone(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert_eq!(in_a.len(), 2);

    // A container that ends by itself: Completed, exit 0.
    let once = start_container(
        &mut rt,
        &pb,
        &pb_cfg,
        container_config(&image, "once", &["sh", "-c", "echo bye"]),
    )
    .await;
    let s = wait_exited(&mut rt, &once).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (0, "Completed"));
    assert!(s.finished_at >= s.started_at);
    let failing = start_container(
        &mut rt,
        &pb,
        &pb_cfg,
        container_config(&image, "failing", &["sh", "-c", "exit 7"]),
    )
    .await;
    let s = wait_exited(&mut rt, &failing).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (7, "Error"));

    // Stop with a grace period: a process that handles SIGTERM ends by itself ...
    let graceful = start_container(
        &mut rt,
        &pb,
        &pb_cfg,
        container_config(
            &image,
            "graceful",
            &[
                "sh",
                "-c",
                "trap 'exit 42' TERM; while true; do sleep 0.05; done",
            ],
        ),
    )
    .await;
    let t0 = std::time::Instant::now();
    rt.stop_container(api::StopContainerRequest {
        container_id: graceful.clone(),
        timeout: 10,
    })
    .await
    .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(
        status(&mut rt, &graceful).await.status.unwrap().exit_code,
        42
    );
    // ... and one that ignores it (httpd as PID 1 has no handler) is killed after the grace period.
    let t0 = std::time::Instant::now();
    rt.stop_container(api::StopContainerRequest {
        container_id: web.clone(),
        timeout: 1,
    })
    .await
    .unwrap();
    assert!(t0.elapsed() >= Duration::from_secs(1));
    let s = status(&mut rt, &web).await.status.unwrap();
    assert_eq!(s.state, api::ContainerState::ContainerExited as i32);
    assert_eq!((s.exit_code, s.reason.as_str()), (137, "Error"));
    rt.stop_container(api::StopContainerRequest {
        container_id: web.clone(),
        timeout: 5,
    })
    .await
    .unwrap();

    // Stop and remove the pods, twice each.
    for pod in [&pa, &pb] {
        rt.stop_pod_sandbox(api::StopPodSandboxRequest {
            pod_sandbox_id: pod.to_string(),
        })
        .await
        .unwrap();
        rt.stop_pod_sandbox(api::StopPodSandboxRequest {
            pod_sandbox_id: pod.to_string(),
        })
        .await
        .unwrap();
    }
    let ps = rt
        .pod_sandbox_status(api::PodSandboxStatusRequest {
            pod_sandbox_id: pa.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        ps.status.unwrap().state,
        api::PodSandboxState::SandboxNotready as i32
    );
    let running = rt
        .list_containers(api::ListContainersRequest {
            filter: Some(api::ContainerFilter {
                state: Some(api::ContainerStateValue {
                    state: api::ContainerState::ContainerRunning as i32,
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert!(running.is_empty(), "StopPodSandbox stops every container");
    for pod in [&pa, &pb] {
        rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
            pod_sandbox_id: pod.to_string(),
        })
        .await
        .unwrap();
        rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
            pod_sandbox_id: pod.to_string(),
        })
        .await
        .unwrap();
    }
    assert!(rt
        .list_pod_sandbox(api::ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items
        .is_empty());
    assert!(rt
        .list_containers(api::ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .containers
        .is_empty());
    assert_no_leaks(&a);
}

#[tokio::test]
async fn agent_restart_keeps_running_pods() {
    let (_reg, mut a, image) = setup(6).await;
    let mut rt = a.runtime().await;
    let cfg = sandbox_config(&a, "pod-r");
    let pod = run_pod(&mut rt, &cfg).await;
    let ip = pod_ip(&mut rt, &pod).await;
    let ticker = start_container(
        &mut rt,
        &pod,
        &cfg,
        container_config(
            &image,
            "ticker",
            &[
                "sh",
                "-c",
                "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
            ],
        ),
    )
    .await;
    let victim = start_container(
        &mut rt,
        &pod,
        &cfg,
        container_config(&image, "victim", &["sleep", "1000"]),
    )
    .await;
    let log = std::path::PathBuf::from(status(&mut rt, &ticker).await.status.unwrap().log_path);
    wait_log(&log, "tick 2").await;
    let info: serde_json::Value =
        serde_json::from_str(&status(&mut rt, &victim).await.info["info"]).unwrap();
    let victim_pid = info["pid"].as_i64().unwrap() as i32;

    // Hard kill of the agent; the containers and their log monitors keep going.
    drop(rt);
    a.stop(true);
    let size_down = std::fs::metadata(&log).unwrap().len();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        std::fs::metadata(&log).unwrap().len() > size_down,
        "logging continues while the agent is down"
    );
    // An exit while the agent is down.
    // SAFETY: killing the test container's process.
    unsafe { libc::kill(victim_pid, libc::SIGKILL) };
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.restart(false);
    let mut rt = a.runtime().await;

    assert_eq!(pod_ip(&mut rt, &pod).await, ip, "the pod keeps its IP");
    let s = status(&mut rt, &ticker).await.status.unwrap();
    assert_eq!(s.state, api::ContainerState::ContainerRunning as i32);
    assert_eq!(std::path::PathBuf::from(&s.log_path), log);
    assert_eq!(
        exec(&mut rt, &ticker, &["echo", "still here"]).await.0,
        "still here\n"
    );
    let s = wait_exited(&mut rt, &victim).await;
    assert_eq!(
        s.exit_code, 137,
        "the exit while the agent was down is noticed"
    );

    // After restart, stop still works (exits are watched for recovered containers).
    rt.stop_container(api::StopContainerRequest {
        container_id: ticker.clone(),
        timeout: 1,
    })
    .await
    .unwrap();
    let s = status(&mut rt, &ticker).await.status.unwrap();
    assert_eq!(s.state, api::ContainerState::ContainerExited as i32);
    rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    assert_no_leaks(&a);
}

#[tokio::test]
async fn failures_half_way_leave_nothing_behind() {
    let (_reg, a, image) = setup(7).await;
    let mut rt = a.runtime().await;
    let cfg = sandbox_config(&a, "pod-f");
    let pod = run_pod(&mut rt, &cfg).await;

    // Image not present.
    let e = rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(container_config("127.0.0.1:1/none:1", "x", &["true"])),
            sandbox_config: Some(cfg.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    // A mount whose host path is missing fails after the rootfs was mounted.
    let mut bad = container_config(&image, "bad-mount", &["true"]);
    bad.mounts.push(api::Mount {
        container_path: "/data".into(),
        host_path: "/nonexistent/kprov".into(),
        ..Default::default()
    });
    let e = rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(bad),
            sandbox_config: Some(cfg.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
    // runc itself refuses: a command that does not exist in the image.
    let r = rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(container_config(&image, "no-binary", &["/no/such/binary"])),
            sandbox_config: Some(cfg.clone()),
        })
        .await;
    if let Ok(r) = r {
        // runc 1.1 reports a missing binary at start; then start fails and remove cleans up.
        let id = r.into_inner().container_id;
        assert!(rt
            .start_container(api::StartContainerRequest {
                container_id: id.clone()
            })
            .await
            .is_err());
        rt.remove_container(api::RemoveContainerRequest { container_id: id })
            .await
            .unwrap();
    }
    let listed = rt
        .list_containers(api::ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert!(listed.is_empty(), "{listed:?}");
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();

    // A CNI chain whose second plugin fails: the first plugin's IP is released.
    let conf = serde_json::json!({
        "cniVersion": "1.0.0", "name": "broken",
        "plugins": [
            {"type": "bridge", "bridge": a.bridge, "ipam": {"type": "host-local", "ranges": [[{"subnet": a.subnet}]], "dataDir": a.ipam_dir()}},
            {"type": "no-such-plugin"}
        ]
    });
    std::fs::write(a.path().join("net.d/10-kpt.conflist"), conf.to_string()).unwrap();
    let e = rt
        .run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(sandbox_config(&a, "pod-g")),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert!(e.message().contains("no-such-plugin"), "{e}");
    assert!(rt
        .list_pod_sandbox(api::ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items
        .is_empty());
    assert_no_leaks(&a);
}

#[tokio::test]
async fn create_that_outlives_the_deadline_is_handed_to_the_retry() {
    let (_reg, a, image) = setup(8).await;
    // A CNI plugin that takes 500 ms to ADD makes every sandbox create outlive a 100 ms deadline.
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(a.cni_bin_dir()).unwrap();
    let slow = a.cni_bin_dir().join("slow");
    std::fs::write(
        &slow,
        "#!/bin/sh\ncat >/dev/null\nif [ \"$CNI_COMMAND\" = ADD ]; then sleep 0.5; echo '{\"cniVersion\":\"1.0.0\"}'; fi\n",
    )
    .unwrap();
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf_path = a.path().join("net.d/10-kpt.conflist");
    let mut conf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&conf_path).unwrap()).unwrap();
    conf["plugins"]
        .as_array_mut()
        .unwrap()
        .insert(0, serde_json::json!({"type": "slow"}));
    std::fs::write(&conf_path, conf.to_string()).unwrap();

    let mut rt = a.runtime().await;
    let cfg = sandbox_config(&a, "pod-slow");
    let mut req = tonic::Request::new(api::RunPodSandboxRequest {
        config: Some(cfg.clone()),
        runtime_handler: String::new(),
    });
    req.set_timeout(Duration::from_millis(100));
    let e = rt.run_pod_sandbox(req).await.unwrap_err();
    assert!(
        matches!(
            e.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        ),
        "{e}"
    );
    // The create goes on without the caller ...
    let mut listed = Vec::new();
    for _ in 0..100 {
        listed = rt
            .list_pod_sandbox(api::ListPodSandboxRequest::default())
            .await
            .unwrap()
            .into_inner()
            .items;
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listed.len(), 1, "the timed-out create finished");
    // ... and kubelet's retry with the same name gets that sandbox, not "name is reserved".
    let pod = run_pod(&mut rt, &cfg).await;
    assert_eq!(pod, listed[0].id);

    let cc = container_config(&image, "slow", &["sleep", "1000"]);
    let mut req = tonic::Request::new(api::CreateContainerRequest {
        pod_sandbox_id: pod.clone(),
        config: Some(cc.clone()),
        sandbox_config: Some(cfg.clone()),
    });
    req.set_timeout(Duration::from_millis(15));
    // runc create takes longer than 15 ms; should it ever not, the retry must still get the same id.
    let first = rt.create_container(req).await;
    let id = rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(cc),
            sandbox_config: Some(cfg.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .container_id;
    let all = rt
        .list_containers(api::ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].id, id);
    if let Ok(r) = first {
        assert_eq!(r.into_inner().container_id, id);
    }
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();
    assert_no_leaks(&a);
}
