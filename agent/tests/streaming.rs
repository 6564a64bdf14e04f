//! The streaming server end to end: Exec and PortForward URLs driven by real
//! third-party clients (npm's spdy-transport for SPDY/3.1, PyPI's websockets
//! for the WebSocket protocols) against containers run by runc, plus our own
//! SPDY client for the edge cases (reused and expired tokens, a container that
//! exits mid-stream, dropped clients, idle timeouts, 20 concurrent streams and
//! the concurrency limit).

mod common;

use common::clients;
use common::pods::*;
use common::stream_client::{self, Exec};
use kprov_agent::api;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn exec_url(rt: &mut Rt, id: &str, cmd: &[&str], stdin: bool, tty: bool) -> String {
    rt.exec(api::ExecRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty,
        stdin,
        stdout: true,
        stderr: !tty,
    })
    .await
    .expect("Exec")
    .into_inner()
    .url
}

async fn pf_url(rt: &mut Rt, pod: &str) -> String {
    rt.port_forward(api::PortForwardRequest {
        pod_sandbox_id: pod.into(),
        port: vec![],
    })
    .await
    .expect("PortForward")
    .into_inner()
    .url
}

fn status(v: &Value, field: &str) -> Value {
    let text = v[field].as_str().unwrap_or_default();
    serde_json::from_str(text).unwrap_or_else(|e| panic!("status JSON {text:?}: {e} in {v}"))
}

fn exit_cause(st: &Value) -> String {
    assert_eq!(st["status"], "Failure", "{st}");
    assert_eq!(st["reason"], "NonZeroExitCode", "{st}");
    assert_eq!(st["details"]["causes"][0]["reason"], "ExitCode", "{st}");
    st["details"]["causes"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Processes in the container whose command line contains `needle`.
async fn procs(rt: &mut Rt, id: &str, needle: &str) -> usize {
    let (ps, _) = exec(rt, id, &["ps", "-o", "args"]).await;
    ps.lines()
        .filter(|l| l.contains(needle) && !l.contains("ps -o"))
        .count()
}

#[tokio::test]
async fn exec_with_spdy_and_websocket_clients() {
    let (_reg, a, image) = setup(30).await;
    let mut rt = a.runtime().await;
    let pod_cfg = sandbox_config(&a, "exec-pod");
    let pod = run_pod(&mut rt, &pod_cfg).await;
    let c = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        container_config(&image, "main", &["sleep", "3600"]),
    )
    .await;
    let url = exec_url(&mut rt, &c, &["true"], false, false).await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    // SPDY v4 without a tty: stdin echo, stderr apart, the exit code in the status.
    let url = exec_url(
        &mut rt,
        &c,
        &["sh", "-c", "cat; echo err >&2; exit 3"],
        true,
        false,
    )
    .await;
    let r = clients::spdy(
        &url,
        "v4.channel.k8s.io,v3.channel.k8s.io",
        json!({"stdin": "hello stdin\n", "stderr": true}),
    )
    .await;
    assert!(
        r["http"]
            .as_str()
            .unwrap()
            .contains("X-Stream-Protocol-Version: v4.channel.k8s.io"),
        "{r}"
    );
    assert_eq!(r["stdout"], "hello stdin\n", "{r}");
    assert_eq!(r["stderr"], "err\n", "{r}");
    assert_eq!(exit_cause(&status(&r, "error")), "3");

    // Success is a Success status.
    let url = exec_url(
        &mut rt,
        &c,
        &["sh", "-c", "echo ok; cat /etc/hostname"],
        false,
        false,
    )
    .await;
    let r = clients::spdy(&url, "v4.channel.k8s.io", json!({"stderr": true})).await;
    assert_eq!(r["stdout"], "ok\nexec-pod\n", "{r}");
    assert_eq!(status(&r, "error")["status"], "Success", "{r}");

    // Older protocols: the error stream carries plain text.
    for proto in ["v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"] {
        let url = exec_url(&mut rt, &c, &["sh", "-c", "echo old; exit 5"], false, false).await;
        let r = clients::spdy(&url, proto, json!({"stderr": true})).await;
        assert!(r["http"].as_str().unwrap().contains(proto), "{r}");
        assert_eq!(r["stdout"], "old\n", "{proto}: {r}");
        let e = r["error"].as_str().unwrap();
        assert!(
            e.contains("non-zero exit code") && e.contains('5'),
            "{proto}: {r}"
        );
    }

    // An unknown protocol is refused with the ones the server has.
    let url = exec_url(&mut rt, &c, &["true"], false, false).await;
    let r = clients::spdy(&url, "v9.channel.k8s.io", json!({})).await;
    let http = r["http"].as_str().unwrap();
    assert!(http.starts_with("HTTP/1.1 403"), "{r}");
    assert!(http.contains("X-Accepted-Stream-Protocol-Versions"), "{r}");

    // SPDY with a tty: the resize reaches the process' terminal, stdin is read
    // through it, and the exit code still arrives.
    let url = exec_url(
        &mut rt,
        &c,
        &["sh", "-c", "read x; stty size; echo got:$x; exit 4"],
        true,
        true,
    )
    .await;
    let r = clients::spdy(
        &url,
        "v4.channel.k8s.io",
        json!({"tty": true, "resize": [{"Width": 123, "Height": 45}], "stdin": "abc\n", "keepStdin": true}),
    )
    .await;
    let out = r["stdout"].as_str().unwrap();
    assert!(out.contains("45 123"), "terminal size: {r}");
    assert!(out.contains("got:abc"), "{r}");
    assert!(out.contains("\r\n"), "a terminal's line endings: {r}");
    assert_eq!(exit_cause(&status(&r, "error")), "4");

    // WebSocket v5: stdin echo, the close channel, the exit code.
    let url = exec_url(
        &mut rt,
        &c,
        &["sh", "-c", "cat; echo e2 >&2; exit 7"],
        true,
        false,
    )
    .await;
    let r = clients::ws(
        &url,
        "v5.channel.k8s.io",
        json!({"stdin": "ws hello\n", "closeStdin": true}),
    )
    .await;
    assert_eq!(r["protocol"], "v5.channel.k8s.io", "{r}");
    assert_eq!(
        r["first"],
        json!([1, 0]),
        "first an empty stdout message: {r}"
    );
    assert_eq!(r["stdout"], "ws hello\n", "{r}");
    assert_eq!(r["stderr"], "e2\n", "{r}");
    assert_eq!(exit_cause(&status(&r, "error")), "7");
    let closed: Vec<u64> = r["closed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert!(closed.contains(&1) && closed.contains(&3), "{r}");

    // WebSocket v4 over base64 text, and with a tty and a resize.
    let url = exec_url(&mut rt, &c, &["echo", "b64 ok"], false, false).await;
    let r = clients::ws(&url, "base64.channel.k8s.io", json!({})).await;
    assert_eq!(r["protocol"], "base64.channel.k8s.io", "{r}");
    assert_eq!(r["stdout"], "b64 ok\n", "{r}");
    assert_eq!(r["error"], "", "no error text on success before v4: {r}");
    let url = exec_url(&mut rt, &c, &["sh", "-c", "read x; stty size"], true, true).await;
    let r = clients::ws(
        &url,
        "v4.channel.k8s.io",
        json!({"resize": [{"Width": 99, "Height": 33}], "stdin": "go\n", "delayMs": 300}),
    )
    .await;
    let out = r["stdout"].as_str().unwrap();
    assert!(out.contains("33 99"), "{r}");
    assert_eq!(
        out.matches("go").count(),
        1,
        "input echoed once, by the container's terminal: {r}"
    );
    assert_eq!(status(&r, "error")["status"], "Success", "{r}");

    // Bad requests are refused by the CRI call itself.
    let e = rt
        .exec(api::ExecRequest {
            container_id: c.clone(),
            cmd: vec!["true".into()],
            tty: true,
            stderr: true,
            stdout: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
    let e = rt
        .exec(api::ExecRequest {
            container_id: "nope".into(),
            cmd: vec!["true".into()],
            stdout: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e}");
    assert_eq!(procs(&mut rt, &c, "cat").await, 0, "no exec left behind");
}

#[tokio::test]
async fn port_forward_into_pod_and_host_network_pod() {
    let (_reg, a, image) = setup(31).await;
    let mut rt = a.runtime().await;
    let pod_cfg = sandbox_config(&a, "pf-pod");
    let pod = run_pod(&mut rt, &pod_cfg).await;
    start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        container_config(
            &image,
            "web",
            &[
                "sh",
                "-c",
                "echo in-the-pod > /www/index.html; exec httpd -f -p 127.0.0.1:8080 -h /www",
            ],
        ),
    )
    .await;
    // A host-network pod serving on a free loopback port of the host.
    let host_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut host_cfg = sandbox_config(&a, "pf-host");
    host_cfg
        .linux
        .as_mut()
        .unwrap()
        .security_context
        .get_or_insert_with(Default::default)
        .namespace_options = Some(api::NamespaceOption {
        network: api::NamespaceMode::Node as i32,
        ..Default::default()
    });
    let host_pod = run_pod(&mut rt, &host_cfg).await;
    let serve = format!(
        "mkdir -p /tmp/h; echo on-the-host > /tmp/h/index.html; exec httpd -f -p 127.0.0.1:{host_port} -h /tmp/h"
    );
    start_container(
        &mut rt,
        &host_pod,
        &host_cfg,
        container_config(&image, "web", &["sh", "-c", &serve]),
    )
    .await;
    // Wait for both servers (the pod's through ExecSync, the host's directly).
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", host_port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "host-network httpd did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let get = "GET /index.html HTTP/1.0\r\n\r\n";

    // SPDY: the pod's loopback is not the host's.
    let url = pf_url(&mut rt, &pod).await;
    let r = clients::spdy(
        &url,
        "portforward.k8s.io",
        json!({"mode": "portforward", "port": 8080, "request": get}),
    )
    .await;
    let data = r["data"].as_str().unwrap();
    assert!(data.starts_with("HTTP/1.1 200 OK"), "{r}");
    assert!(data.contains("in-the-pod"), "{r}");
    assert_eq!(r["error"], "", "{r}");
    // One URL serves several connections (kubectl keeps it open).
    let url = pf_url(&mut rt, &host_pod).await;
    let r = clients::spdy(
        &url,
        "portforward.k8s.io",
        json!({"mode": "portforward", "port": host_port, "request": get, "requestID": "7"}),
    )
    .await;
    assert!(r["data"].as_str().unwrap().contains("on-the-host"), "{r}");

    // A port nothing listens on: the error stream says so.
    let url = pf_url(&mut rt, &pod).await;
    let r = clients::spdy(
        &url,
        "portforward.k8s.io",
        json!({"mode": "portforward", "port": 8181, "request": get}),
    )
    .await;
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("error forwarding port 8181"),
        "{r}"
    );

    // WebSocket port-forward: ports from the query, the port first on each channel.
    let url = format!("{}?port=8080", pf_url(&mut rt, &pod).await);
    let r = clients::ws(
        &url,
        "v4.channel.k8s.io",
        json!({"portforward": true, "request": get}),
    )
    .await;
    assert_eq!(r["ports"], json!({"0": 8080, "1": 8080}), "{r}");
    assert!(r["data"].as_str().unwrap().contains("in-the-pod"), "{r}");

    // PortForward for a missing sandbox is refused by the CRI call.
    let e = rt
        .port_forward(api::PortForwardRequest {
            pod_sandbox_id: "nope".into(),
            port: vec![80],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e}");
}

#[tokio::test]
async fn stream_edge_cases_with_our_own_client() {
    let extra = "[stream]\ntoken_ttl_secs = 2\nidle_timeout_secs = 5\nmax_concurrent = 20\n";
    let (_reg, a, image) = setup_with(32, extra).await;
    let mut rt = a.runtime().await;
    let pod_cfg = sandbox_config(&a, "edge-pod");
    let pod = run_pod(&mut rt, &pod_cfg).await;
    let c = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        container_config(&image, "main", &["sleep", "3600"]),
    )
    .await;

    // A token works once.
    let url = exec_url(&mut rt, &c, &["echo", "once"], false, false).await;
    let r = Exec::open(&url, false).await.finish().await;
    assert_eq!(r.stdout, "once\n", "{r:?}");
    assert!(r.error.contains("Success"), "{r:?}");
    let (_, http) = stream_client::upgrade(&url, "v4.channel.k8s.io").await;
    assert!(http.starts_with("HTTP/1.1 404"), "{http}");

    // An expired token is refused.
    let url = exec_url(&mut rt, &c, &["echo", "late"], false, false).await;
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let (_, http) = stream_client::upgrade(&url, "v4.channel.k8s.io").await;
    assert!(http.starts_with("HTTP/1.1 404"), "{http}");

    // A client that goes away takes its process with it.
    let url = exec_url(&mut rt, &c, &["sleep", "1001"], true, false).await;
    let e = Exec::open(&url, true).await;
    assert!(e.http.contains(" 101 "), "{}", e.http);
    let deadline = Instant::now() + Duration::from_secs(10);
    while procs(&mut rt, &c, "sleep 1001").await == 0 {
        assert!(Instant::now() < deadline, "exec never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(e);
    let deadline = Instant::now() + Duration::from_secs(10);
    while procs(&mut rt, &c, "sleep 1001").await > 0 {
        assert!(Instant::now() < deadline, "exec outlived its client");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An idle stream is closed after idle_timeout_secs and its process killed.
    let url = exec_url(&mut rt, &c, &["sleep", "1002"], false, false).await;
    let started = Instant::now();
    let r = Exec::open(&url, false).await.finish().await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(20),
        "{took:?}"
    );
    assert!(r.error.contains("Failure"), "{r:?}");
    assert_eq!(procs(&mut rt, &c, "sleep 1002").await, 0);

    // 20 streams at once, each with its own output; the 21st is refused.
    let mut held = Vec::new();
    for i in 0..20 {
        let url = exec_url(
            &mut rt,
            &c,
            &["sh", "-c", &format!("read x; echo stream-{i}:$x")],
            true,
            false,
        )
        .await;
        held.push(Exec::open(&url, true).await);
    }
    let url = exec_url(&mut rt, &c, &["true"], false, false).await;
    let (_, http) = stream_client::upgrade(&url, "v4.channel.k8s.io").await;
    assert!(http.starts_with("HTTP/1.1 429"), "{http}");
    for e in held.iter_mut() {
        e.send_stdin(b"x\n").await;
    }
    let results = futures_util::future::join_all(held.into_iter().map(Exec::finish)).await;
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.stdout, format!("stream-{i}:x\n"), "{r:?}");
        assert!(r.error.contains("Success"), "{r:?}");
    }

    // A container that exits mid-stream ends the stream with an exit status.
    let url = exec_url(&mut rt, &c, &["sleep", "1003"], false, false).await;
    let e = Exec::open(&url, false).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while procs(&mut rt, &c, "sleep 1003").await == 0 {
        assert!(Instant::now() < deadline, "exec never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stop = rt.stop_container(api::StopContainerRequest {
        container_id: c.clone(),
        timeout: 0,
    });
    let (r, stopped) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(15), e.finish()),
        stop
    );
    stopped.expect("StopContainer");
    let r = r.expect("the stream ended with the container");
    assert!(r.error.contains("NonZeroExitCode"), "{r:?}");
    // Exec into the stopped container is refused.
    let e = rt
        .exec(api::ExecRequest {
            container_id: c.clone(),
            cmd: vec!["true".into()],
            stdout: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e}");
}
