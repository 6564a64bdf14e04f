//! Certificates close to expiry on a real lab master: `plan` warns about each one
//! (JSON events and human output), `apply` renews the leaf, and the warning is gone.

mod common;

use common::{kprov, Lab};
use serde_json::Value;

const LAB: &str = "kt-expiry";
const SPEC: &str = "examples/lab.yaml";
const CERT: &str = "/etc/kubernetes/pki/apiserver.crt";

/// `kprov MODE playbooks/cluster.yaml` limited to the control-plane tasks.
fn run(lab: &Lab, mode: &str, json: bool) -> (Option<i32>, String, String) {
    let mut args = vec![
        mode,
        "playbooks/cluster.yaml",
        "-i",
        lab.inventory_str(),
        "--spec",
        SPEC,
        "-e",
        "kubelet_install=false",
        "--tags",
        "control-plane",
    ];
    if json {
        args.extend(["--output", "json"]);
    }
    let out = kprov(&args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every warning of every task event in NDJSON output.
fn warnings(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "task")
        .flat_map(|e| {
            e["warnings"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|w| w.as_str().map(str::to_string))
        })
        .collect()
}

fn sh(lab: &Lab, cmd: &str) -> (bool, String) {
    let out = lab.ssh("master", cmd);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn plan_warns_about_certificates_expiring_within_30_days() {
    let lab = Lab::up(LAB, 1);
    let (code, out, err) = run(&lab, "apply", true);
    assert_eq!(code, Some(0), "first apply failed:\n{out}\n{err}");
    assert!(warnings(&out).is_empty(), "fresh PKI: {:?}", warnings(&out));

    // Re-issue the API server certificate from the cluster CA for ten days only.
    let (ok, text) = sh(
        &lab,
        &format!(
            "cd /etc/kubernetes/pki && openssl req -new -key apiserver.key -subj /CN=kube-apiserver \
             | openssl x509 -req -CA ca.crt -CAkey ca.key -days 10 -out {CERT}.new 2>&1 \
             && mv {CERT}.new {CERT}"
        ),
    );
    assert!(ok, "re-issuing the certificate failed: {text}");

    let (code, out, err) = run(&lab, "plan", true);
    assert!(matches!(code, Some(0 | 2)), "plan failed:\n{out}\n{err}");
    let found = warnings(&out);
    let line = found
        .iter()
        .find(|w| w.starts_with(&format!("certificate {CERT} expires on ")))
        .unwrap_or_else(|| panic!("no warning for {CERT}: {found:?}"));
    assert!(
        line.contains("(in 9 days)") || line.contains("(in 10 days)"),
        "{line}"
    );
    assert!(line.ends_with("apply renews it"), "{line}");
    assert_eq!(found.len(), 1, "only the re-issued certificate: {found:?}");
    assert!(!out.contains("PRIVATE KEY") && !err.contains("PRIVATE KEY"));

    // People see it under the task, and counted in the plan's last line.
    let (_, human, _) = run(&lab, "plan", false);
    assert!(
        human.contains(&format!("warning: certificate {CERT} expires on ")),
        "{human}"
    );
    assert!(human.contains(", 1 warnings"), "{human}");

    // Apply renews the leaf for a full year; the warning is gone.
    let (code, out, err) = run(&lab, "apply", true);
    assert_eq!(code, Some(0), "apply failed:\n{out}\n{err}");
    let (ok, text) = sh(
        &lab,
        &format!("openssl x509 -in {CERT} -noout -checkend {}", 300 * 86_400),
    );
    assert!(ok, "{CERT} was not renewed: {text}");
    let (code, out, _) = run(&lab, "plan", true);
    assert_eq!(code, Some(0), "{out}");
    assert!(warnings(&out).is_empty(), "{:?}", warnings(&out));
}
