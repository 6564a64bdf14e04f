//! `kube_join_info`: reads back what joining nodes need from the first master, for
//! `register`: `ca_crt` (public PEM), `token` (`id.secret`: the engine never prints
//! registered values) and `discovery_hash`. Nothing else, so no private key is ever
//! registered. Run it after `kube_init`.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::kube_init::{HASH_PATH, TOKEN_PATH};
use crate::script::quote;
use crate::{args, Diff, Module, ModuleError, State};

const NAME: &str = "kube_join_info";
const CA_PATH: &str = "/etc/kubernetes/pki/ca.crt";

/// Arguments of `kube_join_info` (none).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {}

/// A built `kube_join_info` task.
#[derive(Debug)]
pub(crate) struct KubeJoinInfo;

impl KubeJoinInfo {
    pub fn build(args: serde_json::Value) -> Result<KubeJoinInfo, ModuleError> {
        let _: Args = args::parse(NAME, args)?;
        Ok(KubeJoinInfo)
    }
}

/// Prints the three fields when all files exist; `missing` says which does not.
fn read_fragment(fail_when_missing: bool) -> String {
    let (ca, token, hash) = (quote(CA_PATH), quote(TOKEN_PATH), quote(HASH_PATH));
    let missing = if fail_when_missing {
        "kp_fail \"$kp_p is missing: kube_init must run on this host first\"; return"
    } else {
        "return 0"
    };
    format!(
        "for kp_p in {ca} {token} {hash}; do [ -f \"$kp_p\" ] || {{ {missing}; }}; done\n\
         kp_field_file ca_crt {ca}\n\
         kp_t=$(head -n 1 {token}) || {{ kp_fail 'cannot read the bootstrap token'; return; }}\n\
         kp_field token \"$kp_t\"\n\
         kp_t=$(head -n 1 {hash}) || {{ kp_fail 'cannot read the discovery hash'; return; }}\n\
         kp_word discovery_hash \"$kp_t\"\n"
    )
}

impl Module for KubeJoinInfo {
    fn name(&self) -> &'static str {
        NAME
    }

    fn gather(&self) -> String {
        read_fragment(false)
    }

    /// Unchanged when the files were there; else they are read at apply, after
    /// `kube_init` wrote them (plan shows the registered value as known after apply).
    fn diff(&self, state: &State) -> Result<Diff, ModuleError> {
        let complete = ["ca_crt", "token", "discovery_hash"]
            .iter()
            .all(|f| state.bytes(f).is_some_and(|b| !b.is_empty()));
        Ok(if complete {
            Diff::Unchanged
        } else {
            Diff::change("read the CA, bootstrap token and discovery hash kube_init writes")
        })
    }

    fn apply(&self, _state: &State) -> String {
        read_fragment(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{apply, fields, gather};

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
}
