//! `kube_join_info`: reads back what joining nodes need from the first master, for
//! `register`: `ca_crt` (public PEM), `token` (`id.secret`: the engine never prints
//! registered values) and `discovery_hash`. Run it after `kube_init`.
//!
//! With `control_plane: true` it also reads the files every control-plane node shares:
//! `ca_key`, `front_proxy_ca_crt`, `front_proxy_ca_key`, `etcd_ca_crt`,
//! `etcd_ca_key`, `sa_key` and `sa_pub`. Register that task separately and only read it
//! from the additional masters (`kube_join_control_plane`), so workers never see keys.
//! The keys stay in the engine's memory: no event, diff or error carries them.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::kube::kube_init::{HASH_PATH, TOKEN_PATH};
use crate::script::quote;
use crate::util::args;
use crate::{Diff, Module, ModuleError, Plan, State};

const NAME: &str = "kube_join_info";
const CA_PATH: &str = "/etc/kubernetes/pki/ca.crt";

/// Registered field → file, for the files every control-plane node shares.
pub(crate) const SHARED: [(&str, &str); 8] = [
    ("ca_crt", "/etc/kubernetes/pki/ca.crt"),
    ("ca_key", "/etc/kubernetes/pki/ca.key"),
    (
        "front_proxy_ca_crt",
        "/etc/kubernetes/pki/front-proxy-ca.crt",
    ),
    (
        "front_proxy_ca_key",
        "/etc/kubernetes/pki/front-proxy-ca.key",
    ),
    ("etcd_ca_crt", "/etc/kubernetes/pki/etcd/ca.crt"),
    ("etcd_ca_key", "/etc/kubernetes/pki/etcd/ca.key"),
    ("sa_key", "/etc/kubernetes/pki/sa.key"),
    ("sa_pub", "/etc/kubernetes/pki/sa.pub"),
];

/// Arguments of `kube_join_info`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Also read the shared CA keys and service-account keys, for additional
    /// control-plane nodes (register it under its own name; never for workers).
    #[serde(default)]
    control_plane: bool,
}

/// A built `kube_join_info` task.
#[derive(Debug)]
pub(crate) struct KubeJoinInfo {
    control_plane: bool,
}

impl KubeJoinInfo {
    pub fn build(args: serde_json::Value) -> Result<KubeJoinInfo, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        Ok(KubeJoinInfo {
            control_plane: a.control_plane,
        })
    }

    /// Field name → file read into it (beyond the token and the hash).
    fn files(&self) -> Vec<(&'static str, &'static str)> {
        if self.control_plane {
            SHARED.to_vec()
        } else {
            vec![("ca_crt", CA_PATH)]
        }
    }

    /// Every field this task registers.
    fn field_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&str> = self.files().iter().map(|(f, _)| *f).collect();
        names.extend(["token", "discovery_hash"]);
        names
    }

    /// Prints the fields when all files exist; when one is missing, nothing (gather) or
    /// a failure naming it (apply).
    fn read_fragment(&self, fail_when_missing: bool) -> String {
        let (token, hash) = (quote(TOKEN_PATH), quote(HASH_PATH));
        let files = self.files();
        let all: Vec<String> = files
            .iter()
            .map(|(_, p)| quote(p))
            .chain([token.clone(), hash.clone()])
            .collect();
        let missing = if fail_when_missing {
            "kp_fail \"$kp_p is missing: kube_init must run on this host first\"; return"
        } else {
            "return 0"
        };
        let mut script = format!(
            "for kp_p in {}; do [ -f \"$kp_p\" ] || {{ {missing}; }}; done\n",
            all.join(" ")
        );
        for (field, path) in &files {
            script.push_str(&format!("kp_field_file {field} {}\n", quote(path)));
        }
        script.push_str(&format!(
            "kp_v=$(head -n 1 {token}) || {{ kp_fail 'cannot read the bootstrap token'; return; }}\n\
             kp_field token \"$kp_v\"\n\
             kp_v=$(head -n 1 {hash}) || {{ kp_fail 'cannot read the discovery hash'; return; }}\n\
             kp_word discovery_hash \"$kp_v\"\n"
        ));
        script
    }
}

impl Module for KubeJoinInfo {
    fn name(&self) -> &'static str {
        NAME
    }

    fn gather(&self) -> String {
        self.read_fragment(false)
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        Ok(
            Plan::new(self.planned_diff(state)?, self.planned_script(state))
                .secret(self.holds_secrets()),
        )
    }
}

impl KubeJoinInfo {
    /// Unchanged when the files were there; else they are read at apply, after
    /// `kube_init` wrote them (plan shows the registered value as known after apply).
    fn planned_diff(&self, state: &State) -> Result<Diff, ModuleError> {
        let complete = self
            .field_names()
            .iter()
            .all(|f| state.bytes(f).is_some_and(|b| !b.is_empty()));
        Ok(if complete {
            Diff::Unchanged
        } else if self.control_plane {
            Diff::change(
                "read the shared CA and service-account keys, bootstrap token and discovery hash kube_init writes",
            )
        } else {
            Diff::change("read the CA, bootstrap token and discovery hash kube_init writes")
        })
    }

    /// The script that makes it so.
    fn planned_script(&self, _state: &State) -> String {
        self.read_fragment(true)
    }

    /// Its gathered state holds private keys with `control_plane: true`.
    fn holds_secrets(&self) -> bool {
        self.control_plane
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::Planned as _;
    use crate::util::testutil::{apply, fields, gather};

    #[test]
    fn missing_files_are_read_after_kube_init() {
        let m = KubeJoinInfo::build(serde_json::Value::Null).unwrap();
        assert!(KubeJoinInfo::build(serde_json::json!({"x": 1})).is_err());
        assert!(m.diff(&fields(&[])).unwrap().needs_apply());
        let all = fields(&[("ca_crt", "PEM"), ("token", "t"), ("discovery_hash", "h")]);
        assert_eq!(m.diff(&all).unwrap(), Diff::Unchanged);
        // On this machine the files are normally absent: gather reports nothing, apply
        // fails with a message naming kube_init.
        if !std::path::Path::new(CA_PATH).exists() {
            assert!(gather(&m).fields.is_empty());
            let r = apply(&m, &State::default());
            assert!(r.failed.unwrap_or_default().contains("kube_init"));
        }
    }

    #[test]
    fn control_plane_reads_the_shared_keys_too() {
        let m = KubeJoinInfo::build(serde_json::json!({"control_plane": true})).unwrap();
        let plain = fields(&[("ca_crt", "PEM"), ("token", "t"), ("discovery_hash", "h")]);
        assert!(m.sensitive_for(&plain));
        assert!(m.diff(&plain).unwrap().needs_apply(), "keys still missing");
        let mut pairs: Vec<(&str, &str)> = SHARED.iter().map(|(f, _)| (*f, "x")).collect();
        pairs.extend([("token", "t"), ("discovery_hash", "h")]);
        assert_eq!(m.diff(&fields(&pairs)).unwrap(), Diff::Unchanged);
        let script = m.gather();
        for (field, path) in SHARED {
            assert!(
                script.contains(&format!("kp_field_file {field} '{path}'")),
                "{field}"
            );
        }
    }
}
