//! `playbooks/cluster.yaml` on a 2-host lab for the oldest and newest supported minor
//! (1.28 and 1.31), up to the API server boundary.
//!
//! No kube-apiserver binary can run here, so the API side is
//! `tests/fixtures/apiserver_standin.py`: a TLS server on the master's address and port
//! (in the master's network namespace) with the master's own apiserver certificate, that
//! authenticates client certificates against the cluster CA and authorizes as the real
//! server does for the two groups that matter (`system:masters` always,
//! `kubeadm:cluster-admins` only once its ClusterRoleBinding exists). It logs who made
//! each request. Everything on the hosts is real: sshd, systemd, files kprov wrote.
//!
//! Asserted per minor: version-specific files (super-admin.conf on 1.29+, etcd probes,
//! admin.conf's group, the stored config API), host-dependent settings (resolvConf where
//! systemd-resolved runs, CA-trust mounts where /etc/pki exists), the pending recap while
//! nothing answers, which identity applies which object, kubeadm's node marks (and
//! `control_plane.schedulable`), and that a further apply changes nothing.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{events, kprov, sh, Lab};
use serde_json::Value;

const TASK: &str = "Cluster objects and addons through the API server (server-side apply)";

/// The stand-in API server, stopped when dropped.
struct StandIn {
    child: Child,
    log: std::path::PathBuf,
    state: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl StandIn {
    fn start(lab: &Lab, minor: u32, nodes: &[&str]) -> StandIn {
        let dir = tempfile::tempdir().unwrap();
        for file in ["apiserver.crt", "apiserver.key", "ca.crt"] {
            let pem = sh(lab, "master", &format!("cat /etc/kubernetes/pki/{file}"));
            std::fs::write(dir.path().join(file), pem).unwrap();
        }
        let log = dir.path().join("requests.jsonl");
        let state = dir.path().join("state.json");
        let address = lab.address("master");
        let netns = format!("kprov-{}-master", lab.name);
        let mut child = Command::new("ip")
            .args(["netns", "exec", &netns, "python3"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/apiserver_standin.py"))
            .args([&address, "6443"])
            .arg(dir.path().join("apiserver.crt"))
            .arg(dir.path().join("apiserver.key"))
            .arg(dir.path().join("ca.crt"))
            .arg(&log)
            .arg(&state)
            .arg(minor.to_string())
            .arg(serde_json::to_string(nodes).unwrap())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the stand-in");
        use std::io::BufRead;
        let mut ready = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready");
        StandIn {
            child,
            log,
            state,
            _dir: dir,
        }
    }

    /// Requests logged so far (user, groups, verb, path, status).
    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn object(&self, key: &str) -> Value {
        let state: Value =
            serde_json::from_str(&std::fs::read_to_string(&self.state).unwrap()).unwrap();
        state[key].clone()
    }
}

fn spec(dir: &Path, version: &str, schedulable: bool) -> String {
    let path = dir.join(format!("spec-{version}-{schedulable}.yaml"));
    std::fs::write(
        &path,
        format!(
            "kubernetes_version: \"{version}\"\nruntime:\n  kind: containerd\n  cgroup_driver: systemd\n\
             cni:\n  plugin: bridge\ncontrol_plane:\n  schedulable: {schedulable}\n"
        ),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

/// `kprov apply playbooks/cluster.yaml` with JSON events: (exit code, events, stderr).
fn apply(lab: &Lab, spec: &str) -> (Option<i32>, Vec<Value>, String) {
    let out = kprov(&[
        "apply",
        "playbooks/cluster.yaml",
        "-i",
        lab.inventory_str(),
        "--spec",
        spec,
        "-e",
        "kubelet_install=false",
        "--output",
        "json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("PRIVATE KEY") && !stderr.contains("PRIVATE KEY"),
        "a key was printed"
    );
    (out.status.code(), events(&out.stdout), stderr)
}

fn task<'a>(events: &'a [Value], name: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == "task" && e["task"] == name && e["host"] == "master")
        .unwrap_or_else(|| panic!("no event for `{name}`"))
}

fn run_done(events: &[Value]) -> &Value {
    events.iter().find(|e| e["event"] == "run_done").unwrap()
}

fn cluster(version: &str, minor: u32) {
    let lab = Lab::up(&format!("kt-v{minor}"), 2);
    let dir = tempfile::tempdir().unwrap();
    // The master looks like an Ubuntu host with systemd-resolved and a RHEL-style trust
    // store; node1 has neither.
    sh(
        &lab,
        "master",
        "printf '[Service]\\nExecStart=/bin/sleep infinity\\n' > /etc/systemd/system/systemd-resolved.service \
         && systemctl daemon-reload && systemctl start systemd-resolved \
         && mkdir -p /etc/pki/ca-trust /etc/pki/tls/certs",
    );

    // First apply: every file is written; nothing answers on 6443 yet.
    let (code, ev, stderr) = apply(&lab, &spec(dir.path(), version, false));
    assert_eq!(code, Some(0), "{stderr}");
    let objects = task(&ev, TASK);
    assert_eq!(objects["status"], "skipped", "{objects}");
    assert_eq!(objects["pending"], true, "{objects}");
    assert_eq!(run_done(&ev)["pending"], 1);
    assert!(
        stderr.contains("Pending (a later run does these):")
            && stderr.contains("run apply again once the kubelet has started the control plane")
            && stderr.contains(", 1 pending in "),
        "{stderr}"
    );

    // Version-specific files.
    let super_admin = lab.ssh("master", "test -f /etc/kubernetes/super-admin.conf");
    assert_eq!(
        super_admin.status.success(),
        minor >= 29,
        "super-admin.conf"
    );
    let admin_org = sh(
        &lab,
        "master",
        "grep client-certificate-data /etc/kubernetes/admin.conf | awk '{print $2}' | base64 -d \
         | openssl x509 -noout -subject",
    );
    let group = if minor >= 29 {
        "kubeadm:cluster-admins"
    } else {
        "system:masters"
    };
    assert!(admin_org.contains(group), "{admin_org}");
    let etcd = sh(&lab, "master", "cat /etc/kubernetes/manifests/etcd.yaml");
    if minor >= 31 {
        assert!(
            etcd.contains("path: /livez") && etcd.contains("path: /readyz"),
            "{etcd}"
        );
    } else {
        assert!(
            etcd.contains("path: /health?exclude=NOSPACE&serializable=true")
                && etcd.contains("path: /health?serializable=false"),
            "{etcd}"
        );
    }
    let objects_file = sh(
        &lab,
        "master",
        "cat /etc/kubernetes/kprov/cluster-objects.yaml",
    );
    let api = if minor >= 31 { "v1beta4" } else { "v1beta3" };
    assert!(objects_file.contains(&format!("kubeadm.k8s.io/{api}")));
    assert!(objects_file.contains("authorization-mode"));

    // Host-dependent settings.
    let kubelet = sh(&lab, "master", "cat /var/lib/kubelet/config.yaml");
    assert!(
        kubelet.contains("resolvConf: /run/systemd/resolve/resolv.conf"),
        "{kubelet}"
    );
    let worker_kubelet = sh(&lab, "node1", "cat /var/lib/kubelet/config.yaml");
    assert!(!worker_kubelet.contains("resolvConf"), "{worker_kubelet}");
    let apiserver = sh(
        &lab,
        "master",
        "cat /etc/kubernetes/manifests/kube-apiserver.yaml",
    );
    let pki = if minor >= 31 {
        "/etc/pki/ca-trust"
    } else {
        "/etc/pki"
    };
    assert!(apiserver.contains(&format!("path: {pki}\n")), "{apiserver}");
    let flags = sh(&lab, "master", "cat /var/lib/kubelet/kubeadm-flags.env");
    assert!(
        flags.contains("--register-with-taints=node-role.kubernetes.io/control-plane:NoSchedule"),
        "{flags}"
    );
    let worker_flags = sh(&lab, "node1", "cat /var/lib/kubelet/kubeadm-flags.env");
    assert!(
        !worker_flags.contains("register-with-taints"),
        "{worker_flags}"
    );

    // An API server answers: the objects land, applied by the right identity.
    let server = StandIn::start(&lab, minor, &["master", "node1"]);
    let (code, ev, stderr) = apply(&lab, &spec(dir.path(), version, false));
    assert_eq!(code, Some(0), "{stderr}");
    let applied = task(&ev, TASK);
    assert_eq!(applied["status"], "changed", "{applied}");
    assert!(applied.get("pending").is_none(), "{applied}");
    let requests = server.requests();
    let writes: Vec<&Value> = requests.iter().filter(|r| r["verb"] == "PATCH").collect();
    let by = |user: &str| writes.iter().filter(|r| r["user"] == user).count();
    let super_writes: Vec<&&Value> = writes
        .iter()
        .filter(|r| r["user"] == "kubernetes-super-admin")
        .collect();
    if minor >= 29 {
        // admin.conf is refused first, super-admin creates the one binding, admin the rest.
        assert!(
            requests
                .iter()
                .any(|r| r["user"] == "kubernetes-admin" && r["status"] == 403),
            "{requests:?}"
        );
        assert_eq!(super_writes.len(), 1, "{super_writes:?}");
        assert!(super_writes[0]["path"].as_str().unwrap().starts_with(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/kubeadm:cluster-admins?"
        ));
        assert!(
            applied["diff"]
                .as_str()
                .unwrap()
                .contains("ClusterRoleBinding kubeadm:cluster-admins (as kubernetes-super-admin)"),
            "{applied}"
        );
    } else {
        assert!(
            requests.iter().all(|r| r["user"] == "kubernetes-admin"),
            "{requests:?}"
        );
    }
    assert!(by("kubernetes-admin") >= 15, "{writes:?}");
    // The bootstrap token Secret landed: workers can join.
    let state = std::fs::read_to_string(&server.state).unwrap();
    assert!(
        state.contains("\"/secrets/kube-system/bootstrap-token-"),
        "no token Secret"
    );

    // kubeadm's node marks: the master labelled and tainted, node1 annotated only.
    let master = server.object("/nodes//master");
    let cri = "unix:///run/containerd/containerd.sock";
    assert_eq!(
        master["metadata"]["labels"]["node-role.kubernetes.io/control-plane"],
        ""
    );
    assert_eq!(
        master["metadata"]["labels"]["node.kubernetes.io/exclude-from-external-load-balancers"],
        ""
    );
    assert_eq!(
        master["metadata"]["annotations"]["kubeadm.alpha.kubernetes.io/cri-socket"],
        cri
    );
    assert_eq!(
        master["spec"]["taints"],
        serde_json::json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}])
    );
    let node1 = server.object("/nodes//node1");
    assert_eq!(
        node1["metadata"]["annotations"]["kubeadm.alpha.kubernetes.io/cri-socket"],
        cri
    );
    assert!(node1["metadata"]["labels"]
        .get("node-role.kubernetes.io/control-plane")
        .is_none());
    assert!(node1["spec"].get("taints").is_none(), "{node1}");

    // Converged: server-side apply of the same objects changes nothing on the server
    // (no resourceVersion moves), and the marked nodes are not patched again.
    let before = server.requests().len();
    let state_before = std::fs::read_to_string(&server.state).unwrap();
    let (code, ev, stderr) = apply(&lab, &spec(dir.path(), version, false));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(run_done(&ev)["changed"], 0, "{stderr}");
    assert_eq!(task(&ev, TASK)["status"], "ok");
    assert_eq!(
        std::fs::read_to_string(&server.state).unwrap(),
        state_before
    );
    let node_writes: Vec<String> = server.requests()[before..]
        .iter()
        .filter(|r| r["verb"] != "GET" && r["path"].as_str().unwrap().contains("/nodes/"))
        .map(|r| r["path"].to_string())
        .collect();
    assert!(node_writes.is_empty(), "{node_writes:?}");

    // kubelet-finalize: once the kubelet has rotated its client certificate (a file it
    // writes; here put in place by the test), kubelet.conf points at it.
    sh(
        &lab,
        "master",
        "mkdir -p /var/lib/kubelet/pki && cat /etc/kubernetes/pki/apiserver-kubelet-client.crt \
         /etc/kubernetes/pki/apiserver-kubelet-client.key > /var/lib/kubelet/pki/kubelet-client-current.pem",
    );

    // A single-host style control plane: the taint goes, the labels stay.
    let (code, _, stderr) = apply(&lab, &spec(dir.path(), version, true));
    assert_eq!(code, Some(0), "{stderr}");
    let master = server.object("/nodes//master");
    assert_eq!(master["spec"]["taints"], serde_json::json!([]), "{master}");
    assert_eq!(
        master["metadata"]["labels"]["node-role.kubernetes.io/control-plane"],
        ""
    );
    let flags = sh(&lab, "master", "cat /var/lib/kubelet/kubeadm-flags.env");
    assert!(!flags.contains("register-with-taints"), "{flags}");
    let kubelet_conf = sh(&lab, "master", "cat /etc/kubernetes/kubelet.conf");
    assert!(
        kubelet_conf
            .contains("client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem")
            && kubelet_conf.contains("client-key: /var/lib/kubelet/pki/kubelet-client-current.pem")
            && !kubelet_conf.contains("client-key-data"),
        "kubelet.conf not finalized"
    );
}

#[test]
fn kubernetes_1_28_cluster_up_to_the_api_server() {
    cluster("1.28.9", 28);
}

#[test]
fn kubernetes_1_31_cluster_up_to_the_api_server() {
    cluster("1.31.2", 31);
}
