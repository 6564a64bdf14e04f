//! Ansible's connection variables: the ones kprov honours become connection settings, the
//! `ansible_*` ones it does not honour get one warning each.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::file::AnsiblePort;
use super::resolve::Overrides;
use super::words;
use crate::diagnostic::Diagnostic;
use crate::validate::source_map::pointer_join;
use crate::validate::SourceMap;

/// `ansible_*` variables kprov turns into connection settings (the pre-2.0 `ansible_ssh_*`
/// spellings included).
const HONOURED: [&str; 15] = [
    "ansible_host",
    "ansible_port",
    "ansible_user",
    "ansible_ssh_private_key_file",
    "ansible_become",
    "ansible_host_key_checking",
    "ansible_ssh_timeout",
    "ansible_ssh_host",
    "ansible_ssh_port",
    "ansible_ssh_user",
    "ansible_ssh_host_key_checking",
    "ansible_ssh_common_args",
    "ansible_ssh_extra_args",
    "ansible_timeout",
    "ansible_become_method",
];

/// Why an `ansible_*` variable has no effect, or `None` when kprov honours it (or it asks
/// for what kprov does anyway).
fn ignored(key: &str, value: &Value) -> Option<String> {
    let text = value.as_str().unwrap_or_default();
    match key {
        k if HONOURED.contains(&k) && k != "ansible_become_method" => None,
        "ansible_become_method" if text == "sudo" => None,
        "ansible_become_method" => Some("kprov becomes root with `sudo -n` only".into()),
        "ansible_become_user" if text == "root" => None,
        "ansible_become_user" => Some("kprov becomes root, never another user".into()),
        "ansible_connection" if matches!(text, "ssh" | "smart" | "paramiko" | "local") => None,
        "ansible_connection" => Some(format!(
            "kprov connects over ssh or locally (`{text}` connections are not supported)"
        )),
        "ansible_python_interpreter" => Some("kprov runs no Python on the hosts".into()),
        "ansible_password" | "ansible_ssh_pass" | "ansible_become_password"
        | "ansible_become_pass" | "ansible_sudo_pass" => Some(
            "kprov logs in with keys only (ssh-agent or ansible_ssh_private_key_file) and needs passwordless sudo".into(),
        ),
        k if k.starts_with("ansible_") => Some("kprov does not use this variable".into()),
        _ => None,
    }
}

/// One warning per ignored `ansible_*` variable (named once per inventory, at its first
/// appearance in `vars`, a mapping at `pointer` in the file `source` describes).
pub(super) fn warn_ignored(
    vars: &Map<String, Value>,
    pointer: &str,
    source: &SourceMap,
    warned: &mut BTreeSet<String>,
    out: &mut Vec<Diagnostic>,
) {
    for (key, value) in vars {
        let Some(why) = ignored(key, value) else {
            continue;
        };
        if warned.insert(key.clone()) {
            out.push(source.at_key(
                &pointer_join(pointer, key),
                format!("`{key}` is ignored: {why}"),
                Some("remove it, or keep it for Ansible; kprov goes on without it".into()),
            ));
        }
    }
}

/// What kprov can pass on from `ansible_ssh_common_args`.
const SSH_ARGS_HINT: &str = "kprov passes `-o Option=value` and `-J [user@]host[:port]` to \
    ssh; write the command out without templates";

/// Problems of `ansible_ssh_common_args`/`ansible_ssh_extra_args` in `vars` (at `pointer`):
/// arguments kprov cannot pass on, and `-o StrictHostKeyChecking=…` other than `yes`
/// (kprov verifies every host's key).
pub(super) fn check_ssh_args(
    vars: &Map<String, Value>,
    pointer: &str,
    source: &SourceMap,
    out: &mut Vec<Diagnostic>,
) {
    for key in ["ansible_ssh_common_args", "ansible_ssh_extra_args"] {
        let Some(Value::String(args)) = vars.get(key) else {
            continue;
        };
        let at = pointer_join(pointer, key);
        let options = match parse_ssh_args(args) {
            Ok(options) => options,
            Err(problem) => {
                out.push(source.at_value(&at, problem, Some(SSH_ARGS_HINT.into())));
                continue;
            }
        };
        for (option, value) in options {
            if option.eq_ignore_ascii_case("StrictHostKeyChecking")
                && !value.eq_ignore_ascii_case("yes")
            {
                out.push(source.at_value(
                    &at,
                    format!(
                        "`-o StrictHostKeyChecking={value}` would connect without verifying \
                         host keys"
                    ),
                    Some(UNVERIFIED_HOST_KEY_HINT.into()),
                ));
            }
        }
    }
}

/// The fix kprov suggests for a setting that would connect without verifying host keys.
pub const UNVERIFIED_HOST_KEY_HINT: &str = "remove it (kprov always checks host keys, as \
    `strict`) and record each host's key first: `ssh-keyscan -t ed25519 ADDRESS` prints it; \
    add the line to ~/.ssh/known_hosts or to the inventory's known-hosts file once its \
    fingerprint (`ssh-keygen -lf -`) matches what the host shows on its console \
    (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`); `kprov lab` inventories come \
    with their hosts' keys";

/// `ansible_host_key_checking: false` (or its pre-2.0 name) in `vars` (at `pointer`): an
/// error at its value, since kprov verifies every host's key (the ssh-argument spelling is
/// checked by [`check_ssh_args`]).
pub(super) fn check_host_keys(
    vars: &Map<String, Value>,
    pointer: &str,
    source: &SourceMap,
    out: &mut Vec<Diagnostic>,
) {
    for key in ["ansible_host_key_checking", "ansible_ssh_host_key_checking"] {
        if vars.get(key).and_then(as_bool) == Some(false) {
            out.push(source.at_value(
                &pointer_join(pointer, key),
                format!("`{key}: false` would connect without verifying host keys"),
                Some(UNVERIFIED_HOST_KEY_HINT.into()),
            ));
        }
    }
}

/// ssh options (`-o Key=Value`, `-J jump`) from an `ansible_ssh_common_args` string, less
/// `StrictHostKeyChecking` (kprov always sets it to `yes`; other values are refused by
/// [`check_ssh_args`]).
pub(crate) fn ssh_args(args: &str) -> Result<Vec<(String, String)>, String> {
    let mut options = parse_ssh_args(args)?;
    options.retain(|(key, _)| !key.eq_ignore_ascii_case("StrictHostKeyChecking"));
    Ok(options)
}

/// Every ssh option (`-o Key=Value`, `-J jump`) of an `ansible_ssh_common_args` string.
fn parse_ssh_args(args: &str) -> Result<Vec<(String, String)>, String> {
    if args.contains("{{") || args.contains("{%") {
        return Err("templates (`{{ … }}`) are not rendered in inventories".into());
    }
    let words = words::split(args).map_err(|_| "a quote is never closed".to_string())?;
    let mut words = words.into_iter().map(|w| w.text);
    let mut options = Vec::new();
    while let Some(word) = words.next() {
        let (flag, inline) = if word.len() > 2 && word.starts_with('-') && !word.starts_with("--") {
            (word[..2].to_string(), Some(word[2..].to_string()))
        } else {
            (word.clone(), None)
        };
        let mut argument = || {
            inline
                .clone()
                .or_else(|| words.next())
                .ok_or_else(|| format!("`{flag}` needs an argument"))
        };
        match flag.as_str() {
            "-o" => {
                let option = argument()?;
                let (key, value) = option
                    .split_once('=')
                    .or_else(|| option.trim().split_once(char::is_whitespace))
                    .ok_or_else(|| format!("`-o {option}` is not `Option=value`"))?;
                options.push((key.trim().to_string(), value.trim().to_string()));
            }
            "-J" => options.push(("ProxyJump".into(), argument()?)),
            other => {
                return Err(format!(
                    "ssh argument `{other}` is not supported in ansible_ssh_common_args"
                ))
            }
        }
    }
    Ok(options)
}

/// Whether a host's merged variables make it a local host (`connection: local`, Ansible's
/// `ansible_connection: local`), and its `kprov_state_dir` if it sets one.
pub(super) fn local(vars: &Map<String, Value>) -> (bool, Option<PathBuf>) {
    let local = ["ansible_connection", "connection"]
        .iter()
        .find_map(|k| vars.get(*k).and_then(Value::as_str))
        .is_some_and(|c| c == "local");
    let state_dir = vars
        .get("kprov_state_dir")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    (local, state_dir)
}

fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_lowercase().as_str() {
            "yes" | "true" | "on" => Some(true),
            "no" | "false" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Removes the connection variables kprov understands from `vars` and returns them as
/// connection settings plus the SSH address (`ansible_host`). kubespray's `ip`/`access_ip`
/// stay in `vars` (templates use them) and set the cluster address.
pub(super) fn take(vars: &mut Map<String, Value>) -> (Overrides, Option<String>) {
    // The current name wins over the pre-2.0 `ansible_ssh_*` alias.
    let mut take = |key: &str| {
        let legacy = key
            .strip_prefix("ansible_")
            .and_then(|rest| vars.remove(&format!("ansible_ssh_{rest}")));
        vars.remove(key).or(legacy)
    };
    let address = take("ansible_host").and_then(|v| v.as_str().map(str::to_string));
    let mut ssh_options = Vec::new();
    for key in ["ansible_ssh_common_args", "ansible_ssh_extra_args"] {
        if let Some(Value::String(args)) = take(key) {
            ssh_options.extend(ssh_args(&args).unwrap_or_default());
        }
    }
    // Checked where it is written (`check_host_keys`): only `true` gets this far.
    take("ansible_host_key_checking");
    // A known-hosts file given as an ssh option is the host's known-hosts file, so the
    // jump hop to it (a ProxyCommand of its own) and the re-verification of persisted
    // masters read it too.
    let mut known_hosts_file = None;
    ssh_options.retain(|(key, value)| {
        let lift = key.eq_ignore_ascii_case("UserKnownHostsFile");
        if lift {
            known_hosts_file = Some(PathBuf::from(value));
        }
        !lift
    });
    let timeout = take("ansible_ssh_timeout").or_else(|| take("ansible_timeout"));
    let overrides = Overrides {
        port: take("ansible_port")
            .as_ref()
            .and_then(AnsiblePort::from_value),
        user: take("ansible_user").and_then(|v| v.as_str().map(str::to_string)),
        identity_file: take("ansible_ssh_private_key_file")
            .and_then(|v| v.as_str().map(PathBuf::from)),
        become_: take("ansible_become").as_ref().and_then(as_bool),
        host_key_checking: None,
        known_hosts_file,
        connect_timeout: timeout.as_ref().and_then(as_u64),
        proxy_jump: None,
        ssh_options,
    };
    (overrides, address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_args_become_options() {
        let options =
            ssh_args(r#"-o ProxyCommand="ssh -W %h:%p -q root@10.0.0.9" -oServerAliveInterval=5 -J me@jump:2222"#)
                .unwrap();
        assert_eq!(
            options,
            [
                (
                    "ProxyCommand".into(),
                    "ssh -W %h:%p -q root@10.0.0.9".into()
                ),
                ("ServerAliveInterval".into(), "5".into()),
                ("ProxyJump".into(), "me@jump:2222".into()),
            ]
        );
        assert!(ssh_args("-x").is_err());
        assert!(ssh_args("-o").is_err());
        assert!(ssh_args("-o ProxyCommand='ssh {{ bastion }}'").is_err());
        assert_eq!(
            ssh_args("-o StrictHostKeyChecking=yes -o Compression=yes").unwrap(),
            [("Compression".to_string(), "yes".to_string())]
        );
    }

    #[test]
    fn settings_that_skip_the_host_key_check_are_refused_where_written() {
        let text = "all:\n  vars:\n    ansible_host_key_checking: false\n    \
                    ansible_ssh_common_args: -o StrictHostKeyChecking=accept-new\n";
        let (document, _) = crate::validate::yaml::parse(std::path::Path::new("h.yml"), text)
            .unwrap_or_else(|e| panic!("{e}"));
        let vars = document.value["all"]["vars"].as_object().cloned().unwrap();
        let mut out = Vec::new();
        check_host_keys(&vars, "/all/vars", &document.map, &mut out);
        check_ssh_args(&vars, "/all/vars", &document.map, &mut out);
        let found: Vec<(usize, String)> = out.iter().map(|d| (d.line, d.key.clone())).collect();
        assert_eq!(
            found,
            [
                (3, "all.vars.ansible_host_key_checking".to_string()),
                (4, "all.vars.ansible_ssh_common_args".to_string())
            ]
        );
        assert!(out
            .iter()
            .all(|d| d.hint.as_deref() == Some(UNVERIFIED_HOST_KEY_HINT)));
        let mut vars = vars;
        vars.insert("ansible_host_key_checking".into(), Value::Bool(true));
        vars.remove("ansible_ssh_common_args");
        let mut out = Vec::new();
        check_host_keys(&vars, "/all/vars", &document.map, &mut out);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn a_known_hosts_file_in_ssh_args_becomes_the_hosts_known_hosts_file() {
        let mut vars = serde_json::json!({
            "ansible_ssh_common_args": "-o UserKnownHostsFile=/etc/kprov/known -o Compression=yes",
            "ansible_host_key_checking": true,
        })
        .as_object()
        .cloned()
        .unwrap();
        let (overrides, _) = take(&mut vars);
        assert_eq!(
            overrides.known_hosts_file.as_deref(),
            Some(std::path::Path::new("/etc/kprov/known"))
        );
        assert_eq!(
            overrides.ssh_options,
            [("Compression".to_string(), "yes".to_string())]
        );
        assert!(vars.is_empty(), "{vars:?}");
    }

    #[test]
    fn local_connections_are_honoured_and_others_named() {
        let vars = |v: Value| v.as_object().cloned().unwrap();
        let (is_local, dir) = local(&vars(serde_json::json!({"connection": "local"})));
        assert!(is_local);
        assert_eq!(dir, None);
        let (is_local, dir) = local(&vars(
            serde_json::json!({"ansible_connection": "local", "kprov_state_dir": "/tmp/s"}),
        ));
        assert!(is_local);
        assert_eq!(dir, Some(PathBuf::from("/tmp/s")));
        assert!(!local(&vars(serde_json::json!({"ansible_connection": "ssh"}))).0);
        assert!(!local(&vars(serde_json::json!({}))).0);
        assert_eq!(ignored("ansible_connection", &Value::from("local")), None);
        let why = ignored("ansible_connection", &Value::from("docker")).unwrap();
        assert!(why.contains("`docker`"), "{why}");
    }

    #[test]
    fn ports_may_be_strings() {
        let mut vars = serde_json::json!({"ansible_port": "2222", "ip": "10.1.0.1"})
            .as_object()
            .cloned()
            .unwrap();
        let (overrides, _) = take(&mut vars);
        assert_eq!(overrides.port, Some(2222));
        assert!(vars.contains_key("ip"));
    }
}
