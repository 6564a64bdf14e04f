//! kprov-agent with the systemd cgroup driver on a lab host (systemd 252 as PID 1):
//! node-prep installs the agent (binaries pushed from beside `kprov`, runc and CNI
//! plugins from the lab's apt repository, `cgroup_driver = "systemd"`); the test pulls
//! an image from a registry on the lab bridge, runs a pod and a container through the
//! agent's socket forwarded over SSH, and checks with systemctl and /sys/fs/cgroup that
//! the container runs in a transient scope under the pod's slice — and that the scope
//! is gone after stop/remove, and that an agent restart leaves the container running.
//! A privileged container starts there although the agent lacks CAP_SYS_RESOURCE,
//! with exactly the agent's capabilities, in the pod's shared PID namespace.

mod common;

use common::agent_lab::{
    agent_binaries_beside_kprov, agent_pulls_from, push_busybox, sh, BridgeRegistry, SocketForward,
    WAIT_FOR_SOCKET,
};
use common::{kprov, Lab};
use kprov_agent::api;
use std::collections::HashMap;
use std::time::Duration;

const LAB: &str = "kt-agent";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_cgroup_driver_on_a_lab_host() {
    agent_binaries_beside_kprov();
    let lab = Lab::up(LAB, 1);
    let status = lab.status();
    let host = status["hosts"][0]["name"].as_str().unwrap().to_string();
    let address = lab.address(&host);
    let gateway = status["gateway"].as_str().unwrap().to_string();

    // node-prep with the defaults: kprov-agent as the runtime, systemd cgroup driver.
    let out = kprov(&[
        "apply",
        "playbooks/node-prep.yaml",
        "-i",
        lab.inventory_str(),
        "--output",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "node-prep: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let config = sh(&lab, &host, "cat /etc/kprov/agent.toml");
    assert!(config.contains("cgroup_driver = \"systemd\""), "{config}");
    sh(
        &lab,
        &host,
        "test -x /usr/sbin/runc && test -x /usr/lib/cni/bridge",
    );

    // A registry on the lab bridge; the agent talks plain HTTP to it (the role has no
    // per-registry plain-HTTP setting, so the helper adds it as an operator would).
    let registry = BridgeRegistry::start(&gateway);
    let image_id = push_busybox(&registry.host).await;
    agent_pulls_from(&lab, &host, &registry.host);

    let fwd = SocketForward::open(&lab, &address);
    let (mut rt, mut im) = fwd.clients().await;
    let cfg = rt
        .runtime_config(api::RuntimeConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        cfg.linux.unwrap().cgroup_driver,
        api::CgroupDriver::Systemd as i32,
        "the agent reports the systemd driver"
    );
    let image = format!("{}/test/busybox:1", registry.host);
    let pulled = im
        .pull_image(api::PullImageRequest {
            image: Some(api::ImageSpec {
                image: image.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("pull inside the lab host")
        .into_inner();
    assert_eq!(pulled.image_ref, image_id);

    // A pod the way kubelet's systemd driver names it (host network: no CNI needed).
    let uid = "6f1c0a52_9d3e_4b7e_8a11_2c9e5b7d0f42";
    let slice = format!("kubepods-besteffort-pod{uid}.slice");
    let pod_cfg = api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: "sd".into(),
            uid: uid.replace('_', "-"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "sd".into(),
        log_directory: "/var/log/pods/default_sd".into(),
        linux: Some(api::LinuxPodSandboxConfig {
            cgroup_parent: slice.clone(),
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(api::NamespaceOption {
                    network: api::NamespaceMode::Node as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        labels: HashMap::new(),
        ..Default::default()
    };
    let pod = rt
        .run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(pod_cfg.clone()),
            runtime_handler: String::new(),
        })
        .await
        .expect("RunPodSandbox")
        .into_inner()
        .pod_sandbox_id;
    let memory_limit: i64 = 96 << 20;
    let container = rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(api::ContainerConfig {
                metadata: Some(api::ContainerMetadata {
                    name: "sleeper".into(),
                    attempt: 0,
                }),
                image: Some(api::ImageSpec {
                    image: image.clone(),
                    ..Default::default()
                }),
                command: vec!["/bin/busybox".into(), "sleep".into(), "3600".into()],
                log_path: "sleeper/0.log".into(),
                linux: Some(api::LinuxContainerConfig {
                    resources: Some(api::LinuxContainerResources {
                        memory_limit_in_bytes: memory_limit,
                        cpu_shares: 512,
                        ..Default::default()
                    }),
                    security_context: None,
                }),
                ..Default::default()
            }),
            sandbox_config: Some(pod_cfg.clone()),
        })
        .await
        .expect("CreateContainer")
        .into_inner()
        .container_id;
    rt.start_container(api::StartContainerRequest {
        container_id: container.clone(),
    })
    .await
    .expect("StartContainer");
    let st = rt
        .container_status(api::ContainerStatusRequest {
            container_id: container.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!(st.state, api::ContainerState::ContainerRunning as i32);

    // systemd knows the container as a running scope in the pod's slice …
    let scope = format!("kprov-{container}.scope");
    let show = sh(
        &lab,
        &host,
        &format!("systemctl show -p ActiveState -p Slice -p ControlGroup {scope}"),
    );
    assert!(show.contains("ActiveState=active"), "{show}");
    assert!(show.contains(&format!("Slice={slice}")), "{show}");
    let cgroup = format!("/kubepods.slice/kubepods-besteffort.slice/{slice}/{scope}");
    assert!(show.contains(&format!("ControlGroup={cgroup}")), "{show}");
    let status_text = sh(
        &lab,
        &host,
        &format!("systemctl status --no-pager {scope} || true"),
    );
    assert!(status_text.contains("sleep 3600"), "{status_text}");
    // … and the kernel agrees: the sleeper's cgroup, its limits, its process list.
    let procs = sh(
        &lab,
        &host,
        &format!("cat /sys/fs/cgroup/systemd{cgroup}/cgroup.procs"),
    );
    let pid = procs
        .split_whitespace()
        .next()
        .expect("a process in the scope");
    let comm = sh(
        &lab,
        &host,
        &format!("cat /proc/{pid}/cmdline | tr '\\0' ' '"),
    );
    assert!(comm.contains("sleep 3600"), "{comm}");
    let own = sh(&lab, &host, &format!("cat /proc/{pid}/cgroup"));
    assert!(
        own.lines()
            .any(|l| l.ends_with(&cgroup) && l.contains("memory")),
        "{own}"
    );
    let limit = sh(
        &lab,
        &host,
        &format!("cat /sys/fs/cgroup/memory{cgroup}/memory.limit_in_bytes"),
    );
    assert_eq!(limit.trim(), memory_limit.to_string());
    let shares = sh(
        &lab,
        &host,
        &format!("cat /sys/fs/cgroup/cpu{cgroup}/cpu.shares"),
    );
    assert_eq!(shares.trim(), "512");
    // Stats come from that cgroup.
    let stats = rt
        .container_stats(api::ContainerStatsRequest {
            container_id: container.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    assert!(
        stats.memory.unwrap().working_set_bytes.unwrap().value > 0,
        "memory stats read from the scope"
    );

    // A privileged container on a host whose agent lacks capabilities (lab hosts have
    // no CAP_SYS_RESOURCE): it gets exactly what the agent holds, and shares the pod's
    // PID namespace (pid mode POD, the CRI default) with the sleeper.
    let agent_status = sh(
        &lab,
        &host,
        "cat /proc/$(systemctl show -p MainPID --value kprov-agent)/status",
    );
    let mask = |text: &str, field: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(field))
            .map(|v| u64::from_str_radix(v.trim_start_matches(':').trim(), 16).unwrap())
            .unwrap_or_else(|| panic!("no {field} in {text}"))
    };
    let held = mask(&agent_status, "CapBnd") & mask(&agent_status, "CapEff");
    let privileged = rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(api::ContainerConfig {
                metadata: Some(api::ContainerMetadata {
                    name: "privileged".into(),
                    attempt: 0,
                }),
                image: Some(api::ImageSpec {
                    image: image.clone(),
                    ..Default::default()
                }),
                command: vec!["/bin/busybox".into(), "sleep".into(), "3601".into()],
                linux: Some(api::LinuxContainerConfig {
                    resources: None,
                    security_context: Some(api::LinuxContainerSecurityContext {
                        privileged: true,
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }),
            sandbox_config: Some(pod_cfg.clone()),
        })
        .await
        .expect("CreateContainer privileged")
        .into_inner()
        .container_id;
    rt.start_container(api::StartContainerRequest {
        container_id: privileged.clone(),
    })
    .await
    .expect("StartContainer privileged");
    let exec = |cmd: &[&str]| api::ExecSyncRequest {
        container_id: privileged.clone(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        timeout: 10,
    };
    let out = rt
        .exec_sync(exec(&["/bin/busybox", "cat", "/proc/self/status"]))
        .await
        .unwrap()
        .into_inner();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        mask(&text, "CapEff"),
        held,
        "privileged = the agent's capabilities"
    );
    let out = rt
        .exec_sync(exec(&["/bin/busybox", "ps", "-o", "args"]))
        .await
        .unwrap()
        .into_inner();
    let ps = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        ps.contains("sleep 3600"),
        "the pod's PID namespace is shared: {ps}"
    );
    rt.remove_container(api::RemoveContainerRequest {
        container_id: privileged,
    })
    .await
    .unwrap();

    // Restarting the agent (KillMode=process) leaves the container and its scope alone.
    sh(
        &lab,
        &host,
        &format!("systemctl restart kprov-agent && {WAIT_FOR_SOCKET}"),
    );
    let mut rt = kprov_agent::client::runtime(&fwd.local).await.unwrap();
    let mut running = false;
    for _ in 0..50 {
        match rt
            .container_status(api::ContainerStatusRequest {
                container_id: container.clone(),
                verbose: false,
            })
            .await
        {
            Ok(r) => {
                running = r.into_inner().status.unwrap().state
                    == api::ContainerState::ContainerRunning as i32;
                break;
            }
            // The forwarded socket may answer before the new agent listens.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(running, "the container runs on after an agent restart");
    let procs_after = sh(
        &lab,
        &host,
        &format!("cat /sys/fs/cgroup/systemd{cgroup}/cgroup.procs"),
    );
    assert_eq!(procs_after.split_whitespace().next(), Some(pid));

    // Stop and remove: the scope and its cgroups are gone.
    rt.stop_container(api::StopContainerRequest {
        container_id: container.clone(),
        timeout: 5,
    })
    .await
    .unwrap();
    rt.remove_container(api::RemoveContainerRequest {
        container_id: container.clone(),
    })
    .await
    .unwrap();
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
    let gone = lab.ssh(&host, &format!("systemctl is-active {scope}"));
    assert!(
        !gone.status.success(),
        "{scope} still active: {}",
        String::from_utf8_lossy(&gone.stdout)
    );
    let units = sh(
        &lab,
        &host,
        "systemctl list-units --all --no-legend --plain 'kprov-*.scope' | cat",
    );
    assert!(units.trim().is_empty(), "scopes left: {units}");
    let left = sh(
        &lab,
        &host,
        &format!(
            "for h in systemd memory cpu pids; do test -e /sys/fs/cgroup/$h{cgroup} && echo $h; done; true"
        ),
    );
    assert!(left.trim().is_empty(), "cgroups left in: {left}");
    let runc = sh(&lab, &host, "ps -eo args | grep -c '[s]leep 3600' || true");
    assert_eq!(runc.trim(), "0", "the container process is gone");
}
