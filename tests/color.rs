//! Colour reaches a terminal only: output redirected to a pipe or a file holds no ANSI
//! escape unless `--color always` asks for it. Needs no hosts.

use std::process::{Command, Stdio};

const ESC: &str = "\x1b[";

fn repo(relative: &str) -> String {
    format!("{}/{relative}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs kprov with stdout and stderr redirected to files, `NO_COLOR` unset unless given.
fn run(args: &[&str], no_color: Option<&str>) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_kprov"));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG");
    if let Some(v) = no_color {
        command.env("NO_COLOR", v);
    }
    command.status().expect("running the kprov binary");
    (
        std::fs::read_to_string(out_path).unwrap(),
        std::fs::read_to_string(err_path).unwrap(),
    )
}

/// An inventory with a problem, so `validate` reports an error.
fn bad_inventory(dir: &std::path::Path) -> String {
    let bad = dir.join("inventory.ini");
    std::fs::write(&bad, "[kube_control_plane]\ncp1 ansible_port=abc\n").unwrap();
    bad.to_str().unwrap().to_string()
}

#[test]
fn redirected_errors_have_no_colour_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let bad = bad_inventory(dir.path());
    let spec = repo("examples/cluster.yaml");
    let (out, err) = run(&["validate", &spec, "-i", &bad], None);
    assert!(err.contains("problem"), "{err}");
    assert!(!err.contains(ESC) && !out.contains(ESC), "{err:?}");
    let (_, err) = run(&["--color", "always", "validate", &spec, "-i", &bad], None);
    assert!(err.contains(ESC), "--color always: {err:?}");
    let (_, err) = run(&["validate", &spec, "-i", &bad, "--color=never"], Some("1"));
    assert!(!err.contains(ESC), "{err:?}");
}

#[test]
fn redirected_help_has_no_colour_unless_asked() {
    let (out, _) = run(&["--help"], None);
    assert!(out.contains("Usage"), "{out}");
    assert!(!out.contains(ESC), "{out:?}");
    let (out, _) = run(&["--color", "always", "--help"], None);
    assert!(out.contains(ESC), "--color always --help: {out:?}");
    let (out, _) = run(&["--color", "always", "apply", "--help"], None);
    assert!(out.contains(ESC), "--color always apply --help: {out:?}");
    // A usage error goes to stderr, uncoloured too.
    let (_, err) = run(&["--bogus-flag"], None);
    assert!(err.contains("--bogus-flag"), "{err}");
    assert!(!err.contains(ESC), "{err:?}");
}

#[test]
fn redirected_logs_have_no_colour_unless_asked() {
    let spec = repo("examples/minimal.yaml");
    let dir = tempfile::tempdir().unwrap();
    // A host known by name: `-vv` logs the address it resolves to.
    let inv = dir.path().join("hosts.yaml");
    std::fs::write(
        &inv,
        "hosts:\n  cp1: { address: localhost }\ngroups:\n  masters: { hosts: [cp1] }\n",
    )
    .unwrap();
    let inv = inv.to_str().unwrap();
    let (_, plain) = run(&["-vv", "validate", &spec, "-i", inv], None);
    assert!(plain.contains("DEBUG"), "no log line to check: {plain}");
    assert!(!plain.contains(ESC), "{plain:?}");
    let (_, coloured) = run(
        &["-vv", "--color", "always", "validate", &spec, "-i", inv],
        None,
    );
    assert!(coloured.contains(ESC), "{coloured:?}");
}
