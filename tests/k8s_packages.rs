//! Kubernetes packages from a repository laid out like the upstream one, applied with
//! `playbooks/cluster.yaml` and WITHOUT `-e kubelet_install=false`.
//!
//! The test serves, over HTTP on the lab bridge, a flat apt repository per minor version
//! (`core:/stable:/v1.31/deb/`) whose `Release`/`InRelease` are signed with a GPG key the
//! test generates (in a temporary GNUPGHOME), with the public key served as `Release.key`.
//! It holds `kubelet`, `kubectl` and `cri-tools` in two patch versions each, built here
//! with `dpkg-deb`: their binaries are stand-ins (shell scripts that print their version;
//! the kubelet one then sleeps), and the kubelet package ships a `kubelet.service` unit
//! like the upstream one. A second copy of the repository is signed by another key.
//!
//! Asserts on the hosts: keyring file and `signed-by` source written, exact versions
//! installed (dpkg-query) and held (apt-mark showhold), the pre-check passes, the kubelet
//! unit is enabled, a second apply changes nothing, a patch bump in the spec upgrades
//! exactly kubelet and kubectl (cri-tools follows the minor) and holds them again, and the
//! wrongly signed repository fails naming the repository and the key.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{events, kprov, sh, Lab};
use serde_json::Value;

const LAB: &str = "kt-pkgs";
const MINOR_PATH: &str = "core:/stable:/v1.31/deb";
const KEYRING: &str = "/etc/apt/keyrings/kubernetes.asc";
const SOURCE: &str = "/etc/apt/sources.list.d/kubernetes.list";

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A GPG home with one signing key (ed25519, no passphrase).
struct Signer {
    home: tempfile::TempDir,
    uid: String,
}

impl Signer {
    fn new(uid: &str) -> Signer {
        let home = tempfile::tempdir().unwrap();
        let signer = Signer {
            home,
            uid: uid.to_string(),
        };
        run(signer.gpg().args([
            "--passphrase",
            "",
            "--quick-generate-key",
            uid,
            "ed25519",
            "sign",
            "never",
        ]));
        signer
    }

    fn gpg(&self) -> Command {
        let mut cmd = Command::new("gpg");
        cmd.env("GNUPGHOME", self.home.path()).args([
            "--batch",
            "--yes",
            "--pinentry-mode",
            "loopback",
        ]);
        cmd
    }

    fn public_key(&self) -> String {
        run(self.gpg().args(["--armor", "--export", &self.uid]))
    }

    /// `InRelease` (clearsigned) and `Release.gpg` (detached) next to `Release`.
    fn sign(&self, dir: &Path) {
        let release = dir.join("Release");
        for (flag, out) in [
            ("--clearsign", "InRelease"),
            ("--detach-sign", "Release.gpg"),
        ] {
            run(self
                .gpg()
                .args(["--local-user", &self.uid, "--armor", flag, "--output"])
                .arg(dir.join(out))
                .arg(&release));
        }
    }
}

/// Builds `name_version_arch.deb` in `out`: `/usr/bin/<binary>` prints the version.
fn build_deb(out: &Path, arch: &str, name: &str, binary: &str, version: &str) {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(r.join("usr/bin")).unwrap();
    std::fs::write(
        r.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: kprov tests <tests@kprov.invalid>\n\
             Section: admin\nPriority: optional\nDescription: kprov test stand-in for {name}\n"
        ),
    )
    .unwrap();
    let upstream = version.split('-').next().unwrap();
    let script = if name == "kubelet" {
        // Stays up under systemd like a kubelet waiting for its configuration.
        format!("#!/bin/sh\necho \"Kubernetes v{upstream}\"\n[ \"${{1:-}}\" = --version ] && exit 0\nexec sleep infinity\n")
    } else {
        format!("#!/bin/sh\necho \"{binary} v{upstream}\"\n")
    };
    let bin = r.join("usr/bin").join(binary);
    std::fs::write(&bin, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    if name == "kubelet" {
        let unit_dir = r.join("usr/lib/systemd/system");
        std::fs::create_dir_all(&unit_dir).unwrap();
        std::fs::write(
            unit_dir.join("kubelet.service"),
            "[Unit]\nDescription=kubelet: The Kubernetes Node Agent\nWants=network-online.target\n\
             After=network-online.target\n\n[Service]\nExecStart=/usr/bin/kubelet\nRestart=always\n\
             StartLimitInterval=0\nRestartSec=10\n\n[Install]\nWantedBy=multi-user.target\n",
        )
        .unwrap();
    }
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(r)
        .arg(out.join(format!("{name}_{version}_{arch}.deb"))));
}

/// The served tree: `<root>/core:/stable:/v1.31/deb/` signed by the right key, and
/// `<root>/bad/core:/stable:/v1.31/deb/` with the same packages and `Release.key` but a
/// Release signed by another key.
struct Repo {
    _root: tempfile::TempDir,
    server: Child,
    /// `http://gateway:port/`
    base: String,
    key: String,
}

impl Repo {
    fn start(gateway: &str) -> Repo {
        let root = tempfile::tempdir().unwrap();
        let arch = run(Command::new("dpkg").arg("--print-architecture"))
            .trim()
            .to_string();
        let good = Signer::new("kprov test repository <good@kprov.invalid>");
        let other = Signer::new("someone else <other@kprov.invalid>");
        let key = good.public_key();
        let mut dirs: Vec<(PathBuf, &Signer)> = Vec::new();
        for (prefix, signer) in [("", &good), ("bad/", &other)] {
            let dir = root.path().join(format!("{prefix}{MINOR_PATH}"));
            std::fs::create_dir_all(&dir).unwrap();
            for (name, binary, versions) in [
                ("kubelet", "kubelet", ["1.31.1-1.1", "1.31.2-1.1"]),
                ("kubectl", "kubectl", ["1.31.1-1.1", "1.31.2-1.1"]),
                ("cri-tools", "crictl", ["1.31.0-1.1", "1.31.1-1.1"]),
            ] {
                for v in versions {
                    build_deb(&dir, &arch, name, binary, v);
                }
            }
            let packages = run(Command::new("apt-ftparchive")
                .args(["packages", "."])
                .current_dir(&dir));
            std::fs::write(dir.join("Packages"), packages).unwrap();
            run(Command::new("gzip")
                .args(["-9kf", "Packages"])
                .current_dir(&dir));
            let release = run(Command::new("apt-ftparchive")
                .args([
                    "-o",
                    "APT::FTPArchive::Release::Origin=kprov-test",
                    "release",
                    ".",
                ])
                .current_dir(&dir));
            std::fs::write(dir.join("Release"), release).unwrap();
            std::fs::write(dir.join("Release.key"), &key).unwrap();
            dirs.push((dir, signer));
        }
        for (dir, signer) in &dirs {
            signer.sign(dir);
        }
        let port = std::net::TcpListener::bind(format!("{gateway}:0"))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Command::new("busybox")
            .args(["httpd", "-f", "-p", &format!("{gateway}:{port}"), "-h"])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("busybox httpd (Debian package busybox-static)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((gateway, port)).is_err() {
            assert!(Instant::now() < deadline, "httpd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Repo {
            _root: root,
            server,
            base: format!("http://{gateway}:{port}/"),
            key,
        }
    }

    fn url(&self, prefix: &str) -> String {
        format!("{}{prefix}{MINOR_PATH}/", self.base)
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// The spec of examples/lab.yaml with the Kubernetes repository pointed at `repository`.
fn write_spec(dir: &Path, version: &str, repository: &str) -> PathBuf {
    let path = dir.join("cluster.yaml");
    let text = format!(
        "{}packages:\n  kubernetes_repository: {repository}\n",
        base_spec(version)
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The spec of examples/lab.yaml on containerd, without package settings.
fn base_spec(version: &str) -> String {
    format!(
        "kubernetes_version: \"{version}\"\nruntime:\n  kind: containerd\n  cgroup_driver: systemd\n\
         cni:\n  plugin: bridge\n"
    )
}

fn apply(lab: &Lab, spec: &Path) -> (Option<i32>, Vec<Value>, String) {
    let out = kprov(&[
        "apply",
        "playbooks/cluster.yaml",
        "-i",
        lab.inventory_str(),
        "--spec",
        spec.to_str().unwrap(),
        "--output",
        "json",
    ]);
    (
        out.status.code(),
        events(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn apply_ok(lab: &Lab, spec: &Path) -> Vec<Value> {
    let (code, ev, err) = apply(lab, spec);
    assert_eq!(code, Some(0), "apply failed:\n{err}");
    ev
}

fn task<'a>(events: &'a [Value], host: &str, name: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == "task" && e["host"] == host && e["task"] == name)
        .unwrap_or_else(|| panic!("no task `{name}` on {host}"))
}

fn changed(events: &[Value]) -> u64 {
    events
        .iter()
        .find(|e| e["event"] == "run_done")
        .and_then(|e| e["changed"].as_u64())
        .expect("run_done with changed")
}

fn versions(lab: &Lab, host: &str) -> String {
    sh(
        lab,
        host,
        "dpkg-query -W -f='${Package}=${Version}\\n' kubelet kubectl cri-tools",
    )
}

fn holds(lab: &Lab, host: &str) -> String {
    sh(lab, host, "apt-mark showhold | sort | tr '\\n' ' '")
}

const HOSTS: [&str; 2] = ["master", "node1"];
const REPO_TASK: &str = "Kubernetes package repository and its signing key (apt)";
const CHECK: &str = "A package source provides kubelet";
const INSTALL: &str = "kubelet, kubectl and cri-tools at the spec's version, held";

#[test]
fn kubernetes_packages_from_an_upstream_shaped_repository() {
    let lab = Lab::up(LAB, 2);
    let gateway = lab.status()["gateway"].as_str().unwrap().to_string();
    let repo = Repo::start(&gateway);
    let dir = tempfile::tempdir().unwrap();

    // Plan: the hosts fetch the key during gather, so the keyring diff is the real one.
    let spec = write_spec(dir.path(), "1.31.1", &repo.url(""));
    let started = Instant::now();
    let out = kprov(&[
        "plan",
        "playbooks/cluster.yaml",
        "-i",
        lab.inventory_str(),
        "--spec",
        spec.to_str().unwrap(),
        "--output",
        "json",
    ]);
    let plan = events(&out.stdout);
    let repo_task = task(&plan, "master", REPO_TASK);
    assert_eq!(repo_task["status"], "changed", "{repo_task}");
    let diff = repo_task["diff"].as_str().unwrap_or_default();
    assert!(
        diff.contains(KEYRING) && diff.contains(repo.key.lines().nth(2).unwrap()),
        "plan shows the fetched key: {repo_task}"
    );

    // No repository in the spec: kprov adds none and looks in the host's own sources (the
    // lab's have no kubelet), and the pre-check says so and what to set.
    let bare = dir.path().join("no-repository.yaml");
    std::fs::write(&bare, base_spec("1.31.1")).unwrap();
    let (code, ev, err) = apply(&lab, &bare);
    assert_eq!(code, Some(1), "{err}");
    for host in HOSTS {
        assert_eq!(task(&ev, host, REPO_TASK)["status"], "skipped", "{host}");
        let text = task(&ev, host, CHECK)["error"].to_string();
        assert!(
            text.contains("no configured package source provides kubelet 1.31.1")
                && text.contains("No Kubernetes repository is set in the spec")
                && text.contains("set packages.kubernetes_repository"),
            "{host}: {text}"
        );
        assert_eq!(
            sh(
                &lab,
                host,
                &format!("ls {SOURCE} {KEYRING} 2>/dev/null; echo end")
            ),
            "end\n",
            "{host}: no Kubernetes source or key was added"
        );
    }

    // First apply: repository, key, packages at 1.31.1, held; the whole cluster playbook.
    let first = apply_ok(&lab, &spec);
    eprintln!("first apply: {:?}", started.elapsed());
    for host in HOSTS {
        assert_eq!(
            sh(&lab, host, &format!("cat {KEYRING}")),
            repo.key,
            "{host}: keyring"
        );
        let source = sh(&lab, host, &format!("cat {SOURCE}"));
        assert!(
            source.contains(&format!("deb [signed-by={KEYRING}] {} /\n", repo.url(""))),
            "{host}: {source}"
        );
        assert_eq!(
            versions(&lab, host),
            "cri-tools=1.31.1-1.1\nkubectl=1.31.1-1.1\nkubelet=1.31.1-1.1\n",
            "{host}: kubelet/kubectl at the spec's release, cri-tools the newest of its minor"
        );
        assert_eq!(holds(&lab, host), "cri-tools kubectl kubelet ", "{host}");
        assert_ne!(task(&first, host, CHECK)["status"], "failed", "{host}");
        assert_eq!(task(&first, host, INSTALL)["status"], "changed", "{host}");
        assert_eq!(
            sh(&lab, host, "kubelet --version"),
            "Kubernetes v1.31.1\n",
            "{host}: the stand-in binary of the installed package"
        );
        assert_eq!(
            sh(&lab, host, "systemctl is-enabled kubelet").trim(),
            "enabled",
            "{host}"
        );
    }

    // Second apply: nothing to do; the pre-check passes without running.
    let second = apply_ok(&lab, &spec);
    assert_eq!(changed(&second), 0, "second apply changed something");
    for host in HOSTS {
        assert_eq!(task(&second, host, CHECK)["status"], "ok", "{host}");
    }

    // Patch bump: kubelet and kubectl move to 1.31.2 and are held again; cri-tools stays.
    let spec = write_spec(dir.path(), "1.31.2", &repo.url(""));
    let marks: Vec<String> = HOSTS
        .iter()
        .map(|h| sh(&lab, h, "wc -l < /var/log/dpkg.log").trim().to_string())
        .collect();
    let bumped = apply_ok(&lab, &spec);
    for (host, mark) in HOSTS.iter().zip(&marks) {
        let summary = task(&bumped, host, INSTALL)["summary"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            summary.contains(
                "unhold kubelet, install kubelet=1.31.2-* (now 1.31.1-1.1), hold kubelet again"
            ),
            "{host}: {summary}"
        );
        assert_eq!(
            versions(&lab, host),
            "cri-tools=1.31.1-1.1\nkubectl=1.31.2-1.1\nkubelet=1.31.2-1.1\n",
            "{host}"
        );
        assert_eq!(holds(&lab, host), "cri-tools kubectl kubelet ", "{host}");
        let upgraded = sh(
            &lab,
            host,
            &format!("tail -n +$(({mark} + 1)) /var/log/dpkg.log | awk '$3 == \"upgrade\" {{print $4, $5, $6}}' | sort"),
        );
        assert_eq!(
            upgraded,
            format!(
                "kubectl:{a} 1.31.1-1.1 1.31.2-1.1\nkubelet:{a} 1.31.1-1.1 1.31.2-1.1\n",
                a = sh(&lab, host, "dpkg --print-architecture").trim()
            ),
            "{host}: exactly kubelet and kubectl upgraded"
        );
    }
    assert_eq!(
        changed(&apply_ok(&lab, &spec)),
        0,
        "idempotent after the bump"
    );

    // A release the repository does not have: the pre-check stops with what to set.
    let spec = write_spec(dir.path(), "1.31.7", &repo.url(""));
    let (code, ev, err) = apply(&lab, &spec);
    assert_eq!(code, Some(1), "{err}");
    let failure = &task(&ev, "master", CHECK)["error"];
    let text = failure.to_string();
    eprintln!("missing release: {text}");
    assert!(
        text.contains("no configured package source provides kubelet 1.31.7")
            && text.contains(&repo.url(""))
            && text.contains("set packages.kubernetes_repository")
            && text.contains("kubelet_install=false"),
        "{text}"
    );
    assert_eq!(
        versions(&lab, "master"),
        "cri-tools=1.31.1-1.1\nkubectl=1.31.2-1.1\nkubelet=1.31.2-1.1\n"
    );

    // A repository whose Release is signed by another key than its Release.key.
    let bad = repo.url("bad/");
    let spec = write_spec(dir.path(), "1.31.2", &bad);
    let (code, ev, err) = apply(&lab, &spec);
    assert_eq!(
        code,
        Some(1),
        "a wrongly signed repository must fail:\n{err}"
    );
    let failure = task(&ev, "master", REPO_TASK);
    let message = failure["error"]["message"].as_str().unwrap_or_default();
    eprintln!("wrongly signed: {message}");
    assert!(
        message.contains(&bad)
            && message.contains("is not signed by its key")
            && message.contains(KEYRING)
            && message.contains(&format!("{bad}Release.key")),
        "the failure names the repository and the key: {failure}"
    );
    assert!(
        !lab.ssh("master", &format!("grep -q bad/ {SOURCE}"))
            .status
            .success(),
        "the failing source is not left behind for later apt runs"
    );
    eprintln!("whole test: {:?}", started.elapsed());
}
