//! `kube_apply` on a real lab master: skipped with a clear message while no API server
//! answers; with a TLS server on the API port it connects through the master's SSH
//! connection, verifies the server against the cluster CA under the API server's name and
//! authenticates with admin.conf's client certificate (seen by the server). No secret
//! reaches the output.

mod common;

use common::{kprov, Lab};
use serde_json::Value;

const LAB: &str = "kt-kapply";
const SPEC: &str = "examples/lab.yaml";
const PLAYBOOK: &str = "playbooks/cluster.yaml";
const TASK: &str = "Cluster objects and addons through the API server (server-side apply)";

fn run(lab: &Lab, mode: &str) -> (Option<i32>, Vec<Value>, String) {
    let out = kprov(&[
        mode,
        PLAYBOOK,
        "-i",
        lab.inventory_str(),
        "--spec",
        SPEC,
        "-e",
        "kubelet_install=false",
        "--tags",
        "control-plane",
        "--output",
        "json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stdout.contains("PRIVATE KEY") && !stderr.contains("PRIVATE KEY"),
        "a key was printed"
    );
    let events = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (out.status.code(), events, stdout + &stderr)
}

fn task<'a>(events: &'a [Value], name: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == "task" && e["task"] == name)
        .unwrap_or_else(|| panic!("no event for task `{name}`"))
}

#[test]
fn kube_apply_waits_for_an_api_server_and_reaches_it_through_ssh() {
    let lab = Lab::up(LAB, 1);
    let address = lab.address("master");

    // Plan on a fresh host: the files are written by an earlier task.
    let (code, events, text) = run(&lab, "plan");
    assert!(matches!(code, Some(0 | 2)), "{text}");
    let planned = task(&events, TASK);
    assert_eq!(planned["status"], "unknown", "{planned}");

    // Apply: nothing listens on 6443, so the objects wait for a later run.
    let (code, events, text) = run(&lab, "apply");
    assert_eq!(code, Some(0), "{text}");
    let skipped = task(&events, TASK);
    assert_eq!(skipped["status"], "skipped", "{skipped}");
    let summary = skipped["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with(&format!(
            "no API server answers at https://{address}:6443 yet: "
        )) && summary.contains("/etc/kubernetes/kprov/cluster-objects.yaml"),
        "{summary}"
    );
    let out = lab.ssh(
        "master",
        "stat -c %a /etc/kubernetes/kprov/cluster-objects.yaml && grep -c '^kind: ' /etc/kubernetes/kprov/cluster-objects.yaml",
    );
    let stat = String::from_utf8_lossy(&out.stdout);
    let mut lines = stat.lines();
    assert_eq!(lines.next(), Some("600"), "{stat}");
    let kinds: usize = lines.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(kinds >= 15, "cluster objects: {stat}");

    // A TLS server with the API server's certificate that demands a client certificate
    // from the cluster CA: kprov gets through TLS both ways, then finds no Kubernetes API.
    let start = lab.ssh(
        "master",
        "p=/etc/kubernetes/pki && systemd-run --unit kt-tls-server \
         openssl s_server -accept 6443 -cert $p/apiserver.crt -key $p/apiserver.key \
         -CAfile $p/ca.crt -Verify 1 -verify_return_error -www && sleep 0.5",
    );
    assert!(start.status.success(), "{start:?}");
    let (code, events, text) = run(&lab, "apply");
    assert_eq!(code, Some(1), "{text}");
    let failed = task(&events, TASK);
    assert_eq!(failed["status"], "failed", "{failed}");
    let message = failed["error"]["message"].as_str().unwrap_or_default();
    // The server's answer (an HTML page) is not logged: kube_client's logs are off.
    assert!(!text.contains("<HTML>"), "{text}");
    assert!(
        message.starts_with(&format!(
            "the API server at https://{address}:6443 answered, but not as expected: "
        )),
        "{message}"
    );
    let log = lab.ssh("master", "journalctl -u kt-tls-server --no-pager");
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(
        log.contains("CN = kubernetes-admin") || log.contains("CN=kubernetes-admin"),
        "the server did not see admin.conf's client certificate:\n{log}"
    );
}
