//! Malformed `cni:` sections: calico without its manifest, a manifest that cannot be read,
//! a manifest that is not a path (file:line:column, key, message, hint).

mod common;

use common::{assert_diagnostics, fixture};

fn rejected(name: &str) -> (std::path::PathBuf, kprov_engine::diagnostic::Diagnostics) {
    let path = fixture(&format!("spec/{name}.yaml"));
    let diagnostics = kprov_engine::spec::load(&path).expect_err("the spec must be rejected");
    (path, diagnostics)
}

#[test]
fn calico_without_manifest() {
    let (path, d) = rejected("cni_calico_without_manifest");
    assert_diagnostics(
        &d,
        &path,
        &[(
            3,
            11,
            "cni.plugin",
            "cni.plugin is `calico` but cni.calico.manifest is not set",
            Some(
                "download calico.yaml for your Calico version and set \
                 `cni: {calico: {manifest: /path/to/calico.yaml}}`",
            ),
        )],
    );
}

#[test]
fn calico_manifest_missing() {
    let (path, d) = rejected("cni_calico_manifest_missing");
    assert_diagnostics(
        &d,
        &path,
        &[(
            5,
            15,
            "cni.calico.manifest",
            "cannot read the calico manifest `/nonexistent/kprov/calico.yaml`: No such file or directory (os error 2)",
            Some("give the path of calico.yaml on this machine (relative paths start where kprov runs)"),
        )],
    );
}

#[test]
fn calico_manifest_not_text() {
    let (path, d) = rejected("cni_calico_manifest_not_text");
    assert_diagnostics(
        &d,
        &path,
        &[(
            5,
            15,
            "cni.calico.manifest",
            "expected a string, found a list",
            None,
        )],
    );
}
