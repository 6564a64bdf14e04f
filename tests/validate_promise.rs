//! "`validate` is a promise" (issue 10, items 6 and 8): what apply would refuse on a host
//! is refused at validation, exit 3, naming `file:line:column` (or `-e`, or the host and
//! setting) with a fix — and nothing changes on any host.
//!
//! The hosts of the CLI tests are in TEST-NET-1 (192.0.2.0/24, never routed): a run that
//! got past validation would try to connect and end unreachable (exit 4), not exit 3.

mod common;

use std::path::{Path, PathBuf};

use common::{kprov, sh, Lab};

const INVENTORY: &str = "\
hosts:
  master: { address: 192.0.2.10 }
  node1:  { address: 192.0.2.11 }
  node2:  { address: 192.0.2.12 }
groups:
  masters: { hosts: [master] }
  nodes: { hosts: [node1, node2] }
";

fn repo(relative: &str) -> String {
    format!("{}/{relative}", env!("CARGO_MANIFEST_DIR"))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// Exit code and stderr.
fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = kprov(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_invalid(args: &[&str], wants: &[&str]) -> String {
    let (code, err) = run(args);
    assert_eq!(code, Some(3), "kprov {args:?}: {err}");
    for want in wants {
        assert!(err.contains(want), "kprov {args:?}: no `{want}` in:\n{err}");
    }
    assert!(err.contains("nothing was changed on any host"), "{err}");
    err
}

const BAD_MODULE_SPEC: &str = "\
kubernetes_version: \"1.30.2\"
os:
  kernel_modules: [overlay, \"br_netfilter;touch /tmp/kprov-pwned\"]
";

/// Kernel module names and sysctl keys from the spec are checked by the modules' own
/// argument checks at validation, each pointing at its item in the spec.
#[test]
fn module_arguments_from_the_spec_are_checked_by_validate_and_plan() {
    let dir = tempfile::tempdir().unwrap();
    let inv = write(dir.path(), "hosts.yaml", INVENTORY);
    let spec = write(dir.path(), "bad.yaml", BAD_MODULE_SPEC);
    assert_invalid(
        &["validate", &spec, "-i", &inv],
        &[
            "bad.yaml:3:29: os.kernel_modules[1]",
            "is not a kernel module name",
            "hosts `master`, `node1`, `node2`",
            "hint: correct `os.kernel_modules[1]`",
        ],
    );
    let playbook = repo("playbooks/node-prep.yaml");
    assert_invalid(
        &["plan", &playbook, "-i", &inv, "--spec", &spec],
        &["bad.yaml:3:29", "is not a kernel module name"],
    );
    let sysctl = write(
        dir.path(),
        "sysctl.yaml",
        "kubernetes_version: \"1.30.2\"\nos:\n  sysctls:\n    \"net.ipv4.ip_forward\\nkernel.x\": 1\n    \"vm.a = b\": 1\n",
    );
    let err = assert_invalid(
        &["validate", &sysctl, "-i", &inv],
        &["sysctl.yaml:4:5", "is not a sysctl key"],
    );
    assert!(!err.contains("are valid"), "{err}");
}

/// `-e` overrides of spec keys are merged into the spec and validated like it: the
/// error names `-e` and the key, at validate and before plan connects anywhere.
#[test]
fn extra_vars_are_validated_like_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let inv = write(dir.path(), "hosts.yaml", INVENTORY);
    let spec = write(dir.path(), "ok.yaml", "kubernetes_version: \"1.30.2\"\n");
    let garbage = r#"{"networking":{"pod_cidr":"garbage"}}"#;
    for args in [
        &["validate", &spec, "-i", &inv, "-e", garbage][..],
        &[
            "plan",
            &repo("playbooks/cluster.yaml"),
            "-i",
            &inv,
            "--spec",
            &spec,
            "-e",
            garbage,
        ],
    ] {
        let err = assert_invalid(args, &["-e:", "networking.pod_cidr", "`garbage`"]);
        assert!(!err.contains("undefined"), "{err}");
    }
    assert_invalid(
        &[
            "validate",
            &spec,
            "-i",
            &inv,
            "-e",
            r#"{"os":{"kernel_modules":["a b"]}}"#,
        ],
        &["-e:", "os.kernel_modules", "is not a kernel module name"],
    );
    assert_invalid(
        &[
            "validate",
            &spec,
            "-i",
            &inv,
            "-e",
            "kubernetes_version=1.27.0",
        ],
        &["-e:", "kubernetes_version", "not supported"],
    );
    // A valid override passes, and the other `networking` keys keep their values.
    let (code, err) = run(&[
        "validate",
        &spec,
        "-i",
        &inv,
        "-e",
        r#"{"networking":{"pod_cidr":"10.32.0.0/16"}}"#,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_invalid(&["validate", &spec, "-i", &inv, "-e", "{not json"], &["-e"]);
}

/// A host var `pod_cidr` outside the pod network, not a CIDR, or on another host's slice.
#[test]
fn host_pod_cidr_collisions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "ok.yaml", "kubernetes_version: \"1.30.2\"\n");
    for (value, want) in [
        ("10.244.0.0/24", "would share pod addresses"),
        (
            "10.99.0.0/24",
            "is not inside the pod network 10.244.0.0/16",
        ),
        ("garbage", "is not a CIDR"),
    ] {
        let inv = write(
            dir.path(),
            "hosts.yaml",
            &INVENTORY.replace(
                "node1:  { address: 192.0.2.11 }",
                &format!("node1:  {{ address: 192.0.2.11, vars: {{ pod_cidr: {value} }} }}"),
            ),
        );
        assert_invalid(
            &["validate", &spec, "-i", &inv],
            &["hosts.yaml:3:", "node1.vars.pod_cidr", want],
        );
    }
    let inv = write(
        dir.path(),
        "hosts.yaml",
        &INVENTORY.replace(
            "node1:  { address: 192.0.2.11 }",
            "node1:  { address: 192.0.2.11, vars: { pod_cidr: 10.244.9.0/24 } }",
        ),
    );
    let (code, err) = run(&["validate", &spec, "-i", &inv]);
    assert_eq!(code, Some(0), "{err}");
}

/// `/dev/zero`, a FIFO and a directory are refused with their path, quickly.
#[test]
fn input_files_are_read_bounded_and_only_when_regular() {
    let dir = tempfile::tempdir().unwrap();
    let inv = write(dir.path(), "hosts.yaml", INVENTORY);
    let spec = write(dir.path(), "ok.yaml", "kubernetes_version: \"1.30.2\"\n");
    let fifo = dir.path().join("fifo.yaml");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let fifo = fifo.to_str().unwrap();
    let started = std::time::Instant::now();
    assert_invalid(
        &["validate", "/dev/zero", "-i", &inv],
        &["/dev/zero", "character device"],
    );
    assert_invalid(&["validate", fifo, "-i", &inv], &[fifo, "FIFO"]);
    assert_invalid(&["validate", &spec, "-i", fifo], &[fifo, "FIFO"]);
    assert_invalid(
        &[
            "plan",
            &repo("playbooks/cluster.yaml"),
            "-i",
            &inv,
            "--spec",
            fifo,
        ],
        &[fifo, "FIFO"],
    );
    let big = dir.path().join("big.yaml");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(17 * 1024 * 1024).unwrap();
    assert_invalid(
        &["validate", big.to_str().unwrap(), "-i", &inv],
        &["big.yaml", "larger than 16 MiB"],
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

/// Hints for unsupported releases suggest only supported ones.
#[test]
fn version_hints_suggest_supported_versions() {
    let dir = tempfile::tempdir().unwrap();
    let inv = write(dir.path(), "hosts.yaml", INVENTORY);
    for (version, hint) in [
        ("1.27", "\"1.28.0\""),
        ("1.32", "\"1.31.0\""),
        ("1.30", "\"1.30.0\""),
    ] {
        let spec = write(
            dir.path(),
            "v.yaml",
            &format!("kubernetes_version: \"{version}\"\n"),
        );
        let err = assert_invalid(&["validate", &spec, "-i", &inv], &[hint]);
        assert!(!err.contains("1.27.0") && !err.contains("1.32.0"), "{err}");
    }
}

/// A missing identity file names the host and the path; a host in both `masters` and
/// `nodes` is an error.
#[test]
fn missing_identity_file_and_master_in_nodes_are_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "ok.yaml", "kubernetes_version: \"1.30.2\"\n");
    let key: PathBuf = dir.path().join("no-such-key");
    let inv = write(
        dir.path(),
        "hosts.yaml",
        &INVENTORY.replace(
            "node2:  { address: 192.0.2.12 }",
            &format!(
                "node2:  {{ address: 192.0.2.12, identity_file: {} }}",
                key.display()
            ),
        ),
    );
    let key = key.display().to_string();
    assert_invalid(
        &["validate", &spec, "-i", &inv],
        &["host `node2`", &key, "does not exist", "ssh-keygen"],
    );
    assert_invalid(
        &[
            "plan",
            &repo("playbooks/cluster.yaml"),
            "-i",
            &inv,
            "--spec",
            &spec,
        ],
        &["host `node2`", &key],
    );
    let inv = write(
        dir.path(),
        "both.yaml",
        &INVENTORY.replace("hosts: [node1, node2]", "hosts: [node1, node2, master]"),
    );
    assert_invalid(
        &["validate", &spec, "-i", &inv],
        &[
            "both.yaml:7:",
            "host `master` is in both `masters` and `nodes`",
            "control_plane.schedulable",
        ],
    );
}

/// On a real host: apply with a bad spec value or a bad `-e` exits 3 and changes
/// nothing (a marker file keeps its content and mtime, no module list is written, no
/// command of the value ran).
#[test]
fn refused_input_changes_nothing_on_the_host() {
    let lab = Lab::up("kt-valid-promise", 1);
    let inv = lab.inventory_str();
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "bad.yaml", BAD_MODULE_SPEC);
    let ok = write(dir.path(), "ok.yaml", "kubernetes_version: \"1.30.2\"\n");
    sh(
        &lab,
        "master",
        "rm -f /tmp/kprov-pwned; mkdir -p /etc/modules-load.d; echo before > /etc/kprov-marker",
    );
    let before = sh(
        &lab,
        "master",
        "stat -c %Y /etc/kprov-marker; ls /etc/modules-load.d",
    );
    let playbook = repo("playbooks/node-prep.yaml");
    assert_invalid(
        &["apply", &playbook, "-i", inv, "--spec", &spec],
        &["bad.yaml:3:29", "is not a kernel module name"],
    );
    assert_invalid(
        &[
            "apply",
            &playbook,
            "-i",
            inv,
            "--spec",
            &ok,
            "-e",
            r#"{"networking":{"pod_cidr":"garbage"}}"#,
        ],
        &["-e:", "networking.pod_cidr"],
    );
    let after = sh(
        &lab,
        "master",
        "stat -c %Y /etc/kprov-marker; ls /etc/modules-load.d",
    );
    assert_eq!(before, after);
    assert_eq!(sh(&lab, "master", "cat /etc/kprov-marker"), "before\n");
    assert_eq!(
        sh(
            &lab,
            "master",
            "test -e /tmp/kprov-pwned && echo yes || echo no"
        ),
        "no\n"
    );
}
