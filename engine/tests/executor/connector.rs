//! The local connector itself, and the run lock on local hosts.

use std::sync::Arc;
use std::time::Duration;

use kprov_engine::events::Mode;
use kprov_engine::transport::{
    ConnectionKind, Connector, LocalConnection, Target, TransportErrorKind,
};

use crate::harness::{Hosts, Opts};

fn local(dir: &std::path::Path) -> Arc<dyn Connector> {
    let mut target = Target::new("here", "127.0.0.1");
    target.kind = ConnectionKind::Local;
    target.state_dir = Some(dir.join("state"));
    Arc::new(LocalConnection::open(target, Duration::from_secs(30)).unwrap())
}

#[tokio::test]
async fn scripts_run_on_stdin_with_their_exit_code_and_both_streams() {
    let dir = tempfile::tempdir().unwrap();
    let conn = local(dir.path());
    let out = conn
        .run(
            "echo out; echo err >&2; printf '%s' \"$KPROV_STATE_DIR\"; exit 7",
            None,
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, Some(7));
    let state = dir.path().join("state");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("out\n{}", state.display())
    );
    assert_eq!(out.stderr, b"err\n");
    assert!(state.is_dir());
}

#[tokio::test]
async fn the_watcher_sees_each_line() {
    let dir = tempfile::tempdir().unwrap();
    let conn = local(dir.path());
    let seen = std::sync::Mutex::new(Vec::new());
    let watch = |line: &[u8]| seen.lock().unwrap().push(line.to_vec());
    conn.run_watching("echo one; echo two; printf three", None, &watch)
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [b"one\n".to_vec(), b"two\n".to_vec(), b"three".to_vec()]
    );
}

#[tokio::test]
async fn a_timeout_ends_the_script_and_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let conn = local(dir.path());
    let pid_file = dir.path().join("pid");
    let script = format!("sleep 30 & echo $! > '{}'; wait", pid_file.display());
    let started = std::time::Instant::now();
    let err = conn
        .run(&script, Some(Duration::from_millis(500)))
        .await
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let alive = std::path::Path::new(&format!("/proc/{}", pid.trim())).exists()
        && !std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
            .unwrap_or_default()
            .contains(") Z ");
    assert!(!alive, "the background sleep {pid} survived the timeout");
}

#[tokio::test]
async fn a_forward_connects_directly() {
    let dir = tempfile::tempdir().unwrap();
    let conn = local(dir.path());
    let server = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let port = server.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut s, _) = server.accept().await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        s.write_all(&buf.map(|b| b.to_ascii_uppercase()))
            .await
            .unwrap();
    });
    let forward = conn.forward_tcp("127.0.0.1", port).await.unwrap();
    assert_ne!(forward.local, port);
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut client = tokio::net::TcpStream::connect(("127.0.0.1", forward.local))
        .await
        .unwrap();
    client.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    client.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"PING");
    forward.close().await;
}

#[tokio::test]
async fn apply_takes_the_lock_in_the_state_directory_and_names_the_holder() {
    let hosts = Hosts::new(&["h1"]);
    let ran = hosts
        .run(
            Mode::Apply,
            "- name: x\n  hosts: all\n  tasks:\n    - { name: t, copy: { path: \"{{ root }}/t\", content: \"t\\n\" } }\n",
        )
        .await;
    assert_eq!(ran.summary.failed, 0, "{}", ran.dump());
    let record = std::fs::read_to_string(hosts.dir.path().join("h1.state/apply.lock")).unwrap();
    assert!(
        record.contains(&format!("pid={}", std::process::id())),
        "{record}"
    );
    assert!(record.contains("run=test"), "{record}");
}

#[tokio::test]
async fn a_held_lock_makes_the_run_wait_then_give_up_on_that_host() {
    let hosts = Hosts::new(&["h1", "h2"]);
    let state = hosts.dir.path().join("h1.state");
    std::fs::create_dir_all(&state).unwrap();
    let lock = state.join("apply.lock");
    std::fs::write(
        &lock,
        "pid=1\nhost=elsewhere\nuser=other\nrun=r\nsince=then\n",
    )
    .unwrap();
    // Another holder: flock on the file for longer than the run waits.
    let mut holder = std::process::Command::new("sh")
        .arg("-c")
        .arg("exec 9>>\"$1\"; flock 9; echo held; sleep 20")
        .arg("sh")
        .arg(&lock)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(holder.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "held\n");
    }
    let opts = Opts {
        lock_wait: Some(Duration::from_secs(1)),
        ..Default::default()
    };
    let ran = hosts
        .run_with(
            Mode::Apply,
            "- name: x\n  hosts: all\n  tasks:\n    - { name: t, copy: { path: \"{{ root }}/t\", content: \"t\\n\" } }\n",
            opts,
        )
        .await;
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(ran.summary.locked, 1, "{}", ran.dump());
    let failed = ran.tasks("h1");
    assert_eq!(failed[0]["task"], "run lock", "{}", ran.dump());
    let message = failed[0]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("locked by kprov pid 1 on elsewhere"),
        "{message}"
    );
    assert!(!hosts.path("h1", "t").exists());
    // The other host has a lock of its own.
    assert!(hosts.path("h2", "t").exists());
}

#[tokio::test]
async fn an_ansible_inventory_with_ansible_connection_local() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("n1");
    std::fs::create_dir_all(&root).unwrap();
    let inv = dir.path().join("hosts.yaml");
    std::fs::write(
        &inv,
        format!(
            "all:\n  hosts:\n    n1:\n      ansible_host: 127.0.0.1\n      ansible_connection: local\n      root: '{}'\n      kprov_state_dir: '{}'\n  children:\n    kube_control_plane:\n      hosts:\n        n1:\n",
            root.display(),
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let inventory = kprov_engine::inventory::load(&inv).unwrap();
    assert!(inventory.warnings.is_empty(), "{:?}", inventory.warnings);
    assert!(inventory.hosts[0].local);
    let book = dir.path().join("book.yaml");
    std::fs::write(
        &book,
        "- name: x\n  hosts: all\n  tasks:\n    - { name: t, copy: { path: \"{{ root }}/t\", content: \"ansible\\n\" } }\n",
    )
    .unwrap();
    let (sink, _rx) = tokio::sync::mpsc::unbounded_channel();
    let summary = kprov_engine::run::run(kprov_engine::run::RunRequest {
        mode: Mode::Apply,
        playbook: kprov_engine::playbook::load(&book).unwrap(),
        inventory,
        limit: None,
        spec: Default::default(),
        extra: Default::default(),
        tags: Default::default(),
        fail_fast: false,
        pool: Default::default(),
        lock_wait: Duration::from_secs(5),
        sink,
        run_id: "t".into(),
        plans: Default::default(),
    })
    .await
    .unwrap();
    assert_eq!(summary.changed, 1);
    assert_eq!(
        std::fs::read_to_string(root.join("t")).unwrap(),
        "ansible\n"
    );
}

#[tokio::test]
async fn facts_are_gathered_from_this_machine() {
    let dir = tempfile::tempdir().unwrap();
    let conn = local(dir.path());
    let facts = kprov_engine::facts::Facts::gather(&*conn).await.unwrap();
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(facts.hostname, hostname.trim());
    assert!(!facts.kernel.is_empty());
}

#[test]
fn the_example_local_inventory_loads_as_a_local_host() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../inventories/local.yaml");
    let inventory = kprov_engine::inventory::load(&path).unwrap();
    let here = &inventory.hosts[0];
    assert!(here.local);
    assert_eq!(
        here.state_dir.as_deref(),
        Some(std::path::Path::new("/tmp/kprov-here"))
    );
    let target = Target::for_host(here);
    assert_eq!(target.kind, ConnectionKind::Local);
}

#[tokio::test]
async fn without_a_state_dir_root_keeps_the_usual_places_and_others_get_one_per_host() {
    let mut target = Target::new("elsewhere", "127.0.0.1");
    target.kind = ConnectionKind::Local;
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if !root {
        // Not run as root: the default directory would be created; nothing to compare.
        return;
    }
    let conn: Arc<dyn Connector> =
        Arc::new(LocalConnection::open(target, Duration::from_secs(10)).unwrap());
    let out = conn
        .run(
            "printf '%s %s' \"${KPROV_RUN_DIR:-unset}\" \"${KPROV_STATE_DIR:-unset}\"",
            None,
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, b"unset unset");
}
