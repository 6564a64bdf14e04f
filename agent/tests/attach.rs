//! Attach end to end: real runc containers, their monitor's attach socket, and
//! the third-party stream clients (npm's spdy-transport, PyPI's websockets):
//! output from the moment a client attaches, stdin into the container, the
//! exit code at the end, detaching without harm, and the refusals (a stopped
//! container, a tty).

mod common;

use common::clients;
use common::pods::*;
use common::stream_client::Exec;
use kprov_agent::api;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const TICKS: &str = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done";

async fn attach_url(rt: &mut Rt, id: &str, stdin: bool) -> String {
    rt.attach(api::AttachRequest {
        container_id: id.into(),
        stdin,
        tty: false,
        stdout: true,
        stderr: true,
    })
    .await
    .expect("Attach")
    .into_inner()
    .url
}

fn outcome(v: &Value) -> Value {
    let text = v["error"].as_str().unwrap_or_default();
    serde_json::from_str(text).unwrap_or_else(|e| panic!("status JSON {text:?}: {e} in {v}"))
}

fn exit_code(v: &Value) -> String {
    let st = outcome(v);
    assert_eq!(st["reason"], "NonZeroExitCode", "{v}");
    st["details"]["causes"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn ticks(log: &std::path::Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches(" stdout F tick ")
        .count()
}

/// Open descriptors of the monitor of container `id`.
fn monitor_fds(id: &str) -> usize {
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.contains("__monitor") && cmd.contains(id) {
            return std::fs::read_dir(p.path().join("fd")).unwrap().count();
        }
    }
    panic!("no monitor for {id}");
}

fn stdin_config(image: &str, name: &str, cmd: &[&str], once: bool) -> api::ContainerConfig {
    let mut c = container_config(image, name, cmd);
    c.stdin = true;
    c.stdin_once = once;
    c
}

#[tokio::test]
async fn attach_output_detach_and_refusals() {
    let (_reg, a, image) = setup(33).await;
    let mut rt = a.runtime().await;
    let pod_cfg = sandbox_config(&a, "attach-pod");
    let pod = run_pod(&mut rt, &pod_cfg).await;
    let c = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        container_config(&image, "main", &["sh", "-c", TICKS]),
    )
    .await;
    let log = a.path().join("logs/attach-pod/main/0.log");
    wait_log(&log, "tick 1").await;
    let fds_before = monitor_fds(&c);

    // Two clients at once, SPDY and WebSocket: each sees the output, then leaves.
    let spdy_url = attach_url(&mut rt, &c, false).await;
    let ws_url = attach_url(&mut rt, &c, false).await;
    let (s, w) = tokio::join!(
        clients::spdy(
            &spdy_url,
            "v4.channel.k8s.io",
            json!({"stderr": true, "exitAfter": "\n"})
        ),
        clients::ws(&ws_url, "v5.channel.k8s.io", json!({"exitAfter": "\n"})),
    );
    assert_eq!(s["left"], true, "{s}");
    assert!(s["stdout"].as_str().unwrap().contains("tick "), "{s}");
    assert_eq!(w["left"], true, "{w}");
    assert_eq!(w["protocol"], "v5.channel.k8s.io", "{w}");
    assert!(w["stdout"].as_str().unwrap().contains("tick "), "{w}");
    // Output starts at the attach, not at the container's start.
    assert!(!s["stdout"].as_str().unwrap().contains("tick 0\n"), "{s}");

    // Detached: the container runs on and its log keeps growing.
    let n = ticks(&log);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(ticks(&log) > n, "the log stopped after the detach");
    let st = status(&mut rt, &c).await.status.unwrap();
    assert_eq!(st.state, api::ContainerState::ContainerRunning as i32);

    // Attach and detach a few times: the monitor keeps no descriptor of them.
    for _ in 0..3 {
        let url = attach_url(&mut rt, &c, false).await;
        let r = clients::spdy(
            &url,
            "v4.channel.k8s.io",
            json!({"stderr": true, "exitAfter": "\n"}),
        )
        .await;
        assert_eq!(r["left"], true, "{r}");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while monitor_fds(&c) != fds_before {
        assert!(
            Instant::now() < deadline,
            "monitor descriptors: {} before, {} now",
            fds_before,
            monitor_fds(&c)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A tty is refused by the CRI call, with the reason.
    let e = rt
        .attach(api::AttachRequest {
            container_id: c.clone(),
            tty: true,
            stdout: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e}");
    assert!(e.message().contains("without a terminal"), "{e}");

    // A client that never reads is dropped by the monitor: the container's
    // output (20 MB) still reaches the log, as fast as ever.
    let flood = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        container_config(
            &image,
            "flood",
            &[
                "sh",
                "-c",
                "sleep 2; i=0; while [ $i -lt 200 ]; do head -c 100000 /dev/zero | tr '\\0' x; echo; i=$((i+1)); done; echo finished; sleep 3600",
            ],
        ),
    )
    .await;
    let flood_fds = monitor_fds(&flood);
    let url = attach_url(&mut rt, &flood, false).await;
    let stuck = Exec::open(&url, false).await;
    assert!(stuck.http.contains(" 101 "), "{}", stuck.http);
    let deadline = Instant::now() + Duration::from_secs(2);
    while monitor_fds(&flood) != flood_fds + 1 {
        assert!(
            Instant::now() < deadline,
            "the client never reached the monitor"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_log(&a.path().join("logs/attach-pod/flood/0.log"), "finished").await;
    let st = status(&mut rt, &flood).await.status.unwrap();
    assert_eq!(st.state, api::ContainerState::ContainerRunning as i32);
    // The monitor let go of it (while the client is still connected).
    let deadline = Instant::now() + Duration::from_secs(5);
    while monitor_fds(&flood) != flood_fds {
        assert!(Instant::now() < deadline, "the stuck client was kept");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(stuck);

    // A client attached while the container is stopped gets its exit code.
    let url = attach_url(&mut rt, &c, false).await;
    let late_url = attach_url(&mut rt, &c, false).await;
    let client = tokio::spawn(async move {
        clients::spdy(&url, "v4.channel.k8s.io", json!({"stderr": true})).await
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    rt.stop_container(api::StopContainerRequest {
        container_id: c.clone(),
        timeout: 0,
    })
    .await
    .expect("StopContainer");
    let r = client.await.unwrap();
    assert!(r["stdout"].as_str().unwrap().contains("tick "), "{r}");
    let code = exit_code(&r);
    assert!(code == "137" || code == "143", "killed: {r}");

    // A stopped container: Attach is refused, and so is a URL handed out before.
    let e = rt
        .attach(api::AttachRequest {
            container_id: c.clone(),
            stdout: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e}");
    let r = Exec::open(&late_url, false).await.finish().await;
    assert!(r.http.contains(" 101 "), "{r:?}");
    let st: Value = serde_json::from_str(&r.error).expect("status JSON");
    assert_eq!(st["status"], "Failure", "{r:?}");
    assert!(
        st["message"].as_str().unwrap().contains("not running"),
        "{r:?}"
    );
}

#[tokio::test]
async fn attach_stdin_and_exit_codes() {
    let (_reg, mut a, image) = setup(34).await;
    let mut rt = a.runtime().await;
    let pod_cfg = sandbox_config(&a, "attach-in");
    let pod = run_pod(&mut rt, &pod_cfg).await;

    // SPDY: a line typed reaches the container, its answer and exit code come back.
    let c = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        stdin_config(
            &image,
            "reader",
            &["sh", "-c", "read x; echo got:$x; echo err >&2; exit 3"],
            false,
        ),
    )
    .await;
    let url = attach_url(&mut rt, &c, true).await;
    let r = clients::spdy(
        &url,
        "v4.channel.k8s.io",
        json!({"stdin": "hello\n", "stderr": true}),
    )
    .await;
    assert_eq!(r["stdout"], "got:hello\n", "{r}");
    assert_eq!(r["stderr"], "err\n", "{r}");
    assert_eq!(exit_code(&r), "3", "{r}");
    let st = wait_exited(&mut rt, &c).await;
    assert_eq!(st.exit_code, 3);
    wait_log(&a.path().join("logs/attach-in/reader/0.log"), "got:hello").await;

    // WebSocket with stdin_once: closing the client's stdin closes the
    // container's, so `cat` ends and the exit code arrives.
    let c = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        stdin_config(&image, "cat", &["sh", "-c", "cat; echo done; exit 5"], true),
    )
    .await;
    let url = attach_url(&mut rt, &c, true).await;
    let r = clients::ws(
        &url,
        "v5.channel.k8s.io",
        json!({"stdin": "ws line\n", "closeStdin": true}),
    )
    .await;
    assert_eq!(r["stdout"], "ws line\ndone\n", "{r}");
    assert_eq!(exit_code(&r), "5", "{r}");

    // Without stdin_once a client's stdin ending leaves the container's open:
    // a second client still talks to it.
    let c = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        stdin_config(
            &image,
            "twice",
            &[
                "sh",
                "-c",
                "read a; echo one:$a; read b; echo two:$b; exit 0",
            ],
            false,
        ),
    )
    .await;
    let url = attach_url(&mut rt, &c, true).await;
    let r = clients::spdy(
        &url,
        "v4.channel.k8s.io",
        json!({"stdin": "x\n", "stderr": true, "exitAfter": "one:x"}),
    )
    .await;
    assert_eq!(r["left"], true, "{r}");
    let url = attach_url(&mut rt, &c, true).await;
    let r = clients::ws(&url, "v5.channel.k8s.io", json!({"stdin": "y\n"})).await;
    assert_eq!(r["stdout"], "two:y\n", "{r}");
    assert_eq!(outcome(&r)["status"], "Success", "{r}");

    // The monitor outlives an agent restart, and so does attaching to it.
    let c = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        stdin_config(
            &image,
            "survivor",
            &["sh", "-c", "read x; echo still:$x; exit 7"],
            false,
        ),
    )
    .await;
    drop(rt);
    a.restart(true);
    let mut rt = a.runtime().await;
    let url = attach_url(&mut rt, &c, true).await;
    let r = clients::ws(&url, "v5.channel.k8s.io", json!({"stdin": "here\n"})).await;
    assert_eq!(r["stdout"], "still:here\n", "{r}");
    assert_eq!(exit_code(&r), "7", "{r}");
}
