//! TTY containers end to end: a shell run by runc on a pty its monitor holds,
//! driven through Attach (and Exec) by the third-party stream clients (npm's
//! spdy-transport, PyPI's websockets) as a person types: echo, resize then
//! `stty size`, detach, `exit 7`; the CRI log of the terminal's output; exec
//! with a tty following resizes; an agent restart; stdin_once hanging the
//! terminal up; nothing left once it is removed.

mod common;

use common::clients;
use common::leaks::assert_no_leaks;
use common::pods::*;
use kprov_agent::api;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn tty_config(image: &str, name: &str, once: bool) -> api::ContainerConfig {
    let mut c = container_config(image, name, &["sh"]);
    c.tty = true;
    c.stdin = true;
    c.stdin_once = once;
    c
}

async fn attach_url(rt: &mut Rt, id: &str, tty: bool) -> String {
    rt.attach(api::AttachRequest {
        container_id: id.into(),
        stdin: true,
        tty,
        stdout: true,
        stderr: !tty,
    })
    .await
    .expect("Attach")
    .into_inner()
    .url
}

async fn exec_tty_url(rt: &mut Rt, id: &str, cmd: &[&str]) -> String {
    rt.exec(api::ExecRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty: true,
        stdin: true,
        stdout: true,
        stderr: false,
    })
    .await
    .expect("Exec")
    .into_inner()
    .url
}

fn status_of(v: &Value) -> Value {
    let text = v["error"].as_str().unwrap_or_default();
    serde_json::from_str(text).unwrap_or_else(|e| panic!("status JSON {text:?}: {e} in {v}"))
}

fn exit_code(v: &Value) -> String {
    let st = status_of(v);
    assert_eq!(st["reason"], "NonZeroExitCode", "{v}");
    st["details"]["causes"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The monitor process of container `id`: (pid, open descriptors).
fn monitor_of(id: &str) -> Option<(u32, usize)> {
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.contains("__monitor") && cmd.contains(id) {
            let pid = p.file_name().to_string_lossy().parse().ok()?;
            let fds = std::fs::read_dir(p.path().join("fd")).ok()?.count();
            return Some((pid, fds));
        }
    }
    None
}

/// Pty masters the process holds (`/dev/ptmx` or a devpts `ptmx` link).
fn ptmx_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .map(|l| l.to_string_lossy().ends_with("ptmx"))
                        .unwrap_or(false)
                })
                .count()
        })
        .unwrap_or(0)
}

async fn running(rt: &mut Rt, id: &str) -> bool {
    status(rt, id).await.status.unwrap().state == api::ContainerState::ContainerRunning as i32
}

#[tokio::test]
async fn tty_attach_echo_resize_detach_exit_and_log() {
    let (_reg, a, image) = setup(35).await;
    let mut rt = a.runtime().await;
    let pod_cfg = sandbox_config(&a, "tty-pod");
    let pod = run_pod(&mut rt, &pod_cfg).await;
    let c = start_container(&mut rt, &pod, &pod_cfg, tty_config(&image, "shell", false)).await;
    let (mpid, fds_before) = monitor_of(&c).expect("a monitor");
    assert_eq!(
        ptmx_fds(mpid),
        3,
        "the monitor holds the master (output, stdin, resize)"
    );
    let console_dirs = || {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("kprov-console-{}", &c[..16]))
            })
            .count()
    };
    assert_eq!(console_dirs(), 0, "the console socket is gone after create");

    // SPDY v4, as kubectl attach -it: the shell echoes what is typed, a
    // resize reaches its terminal, and leaving only detaches.
    let url = attach_url(&mut rt, &c, true).await;
    let r = clients::spdy(
        &url,
        "v4.channel.k8s.io",
        json!({"tty": true, "stdin": "", "keepStdin": true, "steps": [
            {"resize": {"Width": 101, "Height": 33}},
            {"send": "echo hi-$((40+2))-spdy\n"},
            {"waitFor": "hi-42-spdy"},
            {"send": "stty size\n"},
            {"waitFor": "33 101"},
            {"leave": true},
        ]}),
    )
    .await;
    assert_eq!(r["left"], true, "{r}");
    let out = r["stdout"].as_str().unwrap();
    // The typed line is echoed by the terminal, its result printed apart.
    assert!(out.contains("echo hi-$((40+2))-spdy"), "{r}");
    assert!(out.contains("hi-42-spdy\r\n"), "{r}");
    assert!(out.contains("33 101\r\n"), "{r}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        running(&mut rt, &c).await,
        "detaching stopped the container"
    );

    // As containerd: a tty=false attach still reaches the terminal, its
    // output comes as stdout and nothing as stderr.
    let url = attach_url(&mut rt, &c, false).await;
    let r = clients::spdy(
        &url,
        "v4.channel.k8s.io",
        json!({"stderr": true, "stdin": "", "keepStdin": true, "steps": [
            {"send": "echo plain-$((1+1))\n"},
            {"waitFor": "plain-2\r\n"},
            {"leave": true},
        ]}),
    )
    .await;
    assert_eq!(r["left"], true, "{r}");
    assert_eq!(r["stderr"], "", "{r}");
    assert!(running(&mut rt, &c).await);

    // Attach and detach leave the monitor with the descriptors it had.
    let deadline = Instant::now() + Duration::from_secs(5);
    while monitor_of(&c).map(|m| m.1) != Some(fds_before) {
        assert!(
            Instant::now() < deadline,
            "monitor descriptors: {fds_before} before, {:?} now",
            monitor_of(&c)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // WebSocket v5: another size, then `exit 7` ends the session with 7.
    let url = attach_url(&mut rt, &c, true).await;
    let r = clients::ws(
        &url,
        "v5.channel.k8s.io",
        json!({"steps": [
            {"resize": {"Width": 120, "Height": 40}},
            {"send": "echo ws-$((6*7))\n"},
            {"waitFor": "ws-42\r\n"},
            {"send": "stty size\n"},
            {"waitFor": "40 120\r\n"},
            {"send": "exit 7\n"},
        ]}),
    )
    .await;
    assert!(r["stdout"].as_str().unwrap().contains("40 120"), "{r}");
    assert_eq!(exit_code(&r), "7", "{r}");
    let st = wait_exited(&mut rt, &c).await;
    assert_eq!(st.exit_code, 7);

    // The log has the terminal's output, all of it as stdout.
    let log = a.path().join("logs/tty-pod/shell/0.log");
    let text = wait_log(&log, "40 120").await;
    // Whole lines, without the terminal's "\r\n" (as containerd writes them).
    for needle in ["hi-42-spdy", "33 101", "plain-2", "ws-42"] {
        assert!(
            text.lines()
                .any(|l| l.ends_with(&format!(" stdout F {needle}"))),
            "{needle} in {text:?}"
        );
    }
    assert!(!text.contains(" stderr "), "{text}");

    // The monitor is gone with the container, and its pty with it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{mpid}")).exists() {
        assert!(Instant::now() < deadline, "the monitor outlived the shell");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rt.remove_container(api::RemoveContainerRequest {
        container_id: c.clone(),
    })
    .await
    .expect("RemoveContainer");
    assert!(monitor_of(&c).is_none());
    assert_eq!(console_dirs(), 0);
    rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("StopPodSandbox");
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .expect("RemovePodSandbox");
    assert_no_leaks(&a);
}

#[tokio::test]
async fn tty_exec_resizes_and_stdin_once_hangs_up() {
    let (_reg, mut a, image) = setup(36).await;
    let mut rt = a.runtime().await;
    let pod_cfg = sandbox_config(&a, "tty-once");
    let pod = run_pod(&mut rt, &pod_cfg).await;
    let c = start_container(&mut rt, &pod, &pod_cfg, tty_config(&image, "once", true)).await;
    let (mpid, _) = monitor_of(&c).expect("a monitor");

    // Exec with a tty follows resizes made during the session, not only the first.
    let url = exec_tty_url(&mut rt, &c, &["sh"]).await;
    let r = clients::ws(
        &url,
        "v5.channel.k8s.io",
        json!({"steps": [
            {"resize": {"Width": 50, "Height": 20}},
            {"sleepMs": 300},
            {"send": "stty size\n"},
            {"waitFor": "20 50\r\n"},
            {"resize": {"Width": 77, "Height": 11}},
            {"sleepMs": 300},
            {"send": "stty size\n"},
            {"waitFor": "11 77\r\n"},
            {"send": "exit 3\n"},
        ]}),
    )
    .await;
    assert!(r["stdout"].as_str().unwrap().contains("11 77"), "{r}");
    assert_eq!(exit_code(&r), "3", "{r}");
    assert!(running(&mut rt, &c).await);

    // The monitor, and the terminal it holds, outlive an agent restart.
    drop(rt);
    a.restart(true);
    let mut rt = a.runtime().await;
    assert_eq!(monitor_of(&c).map(|m| m.0), Some(mpid));

    // stdin_once: the first attach client leaving closes the terminal (as
    // containerd's shim closes the console), so the shell gets a hangup.
    let url = attach_url(&mut rt, &c, true).await;
    let r = clients::spdy(
        &url,
        "v4.channel.k8s.io",
        json!({"tty": true, "stdin": "", "keepStdin": true, "steps": [
            {"send": "echo once-$((2+3))\n"},
            {"waitFor": "once-5\r\n"},
            {"leave": true},
        ]}),
    )
    .await;
    assert_eq!(r["left"], true, "{r}");
    // Busybox's interactive sh ends on the hangup's EOF (0) or by SIGHUP (129).
    let st = wait_exited(&mut rt, &c).await;
    assert!(matches!(st.exit_code, 0 | 129), "{st:?}");
    let text = wait_log(&a.path().join("logs/tty-once/once/0.log"), "once-5").await;
    assert!(!text.contains(" stderr "), "{text}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{mpid}")).exists() {
        assert!(Instant::now() < deadline, "the monitor outlived the shell");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A terminal asked of a container created without one is refused.
    let plain = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        container_config(&image, "plain", &["sleep", "3600"]),
    )
    .await;
    let e = rt
        .attach(api::AttachRequest {
            container_id: plain.clone(),
            tty: true,
            stdin: true,
            stdout: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e}");
    assert!(e.message().contains("created without a terminal"), "{e}");

    // A tty container whose command is missing fails, and leaves nothing.
    let mut bad = tty_config(&image, "missing", false);
    bad.command = vec!["/no/such/binary".into()];
    let e = rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(bad),
            sandbox_config: Some(pod_cfg.clone()),
        })
        .await
        .unwrap_err();
    assert!(e.message().contains("no such file"), "{e}");
    // No console directory stays (one of a create under way goes in a moment).
    let consoles = || {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("kprov-console-")
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while consoles() != 0 {
        assert!(Instant::now() < deadline, "a console directory was left");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("StopPodSandbox");
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .expect("RemovePodSandbox");
    assert_no_leaks(&a);
}
