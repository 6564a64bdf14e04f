//! Generated configuration files stay exactly what kprov means, whatever the user's
//! strings hold: roles/kprov-agent's agent.toml rendered with hostile registry names,
//! endpoints and credentials parses (with the agent's own parser), has exactly the
//! intended tables and keys, and gives back every value verbatim.

use std::collections::BTreeSet;

use kprov_engine::template::Renderer;
use serde_json::json;

/// Strings that add keys, tables or comments when pasted into TOML as text.
const HOSTILE: &[&str] = &[
    "q\"uote",
    "x\"]\n[evil]\nk = \"v",
    "new\nline",
    "k = v",
    "]",
    "[section]",
    "# comment",
    "back\\slash",
    "'''",
    "\"\"\"",
];

fn render(runtime: serde_json::Value) -> String {
    let vars = json!({
        "runtime": runtime,
        "kprov_agent_socket": "unix:///run/kprov/agent.sock",
        "kprov_agent_certs_dir": "/etc/kprov/registries",
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("roles/kprov-agent/templates/agent.toml.j2");
    Renderer::new()
        .render_file(&path, &vars)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn agent_toml_carries_hostile_strings_as_values_only() {
    for (i, s) in HOSTILE.iter().enumerate() {
        let registry = format!("reg{i}{s}");
        let mirror_host = format!("mirror{i}{s}");
        let runtime = json!({
            "cgroup_driver": "systemd",
            "registry_mirrors": {
                registry.clone(): [format!("http://{mirror_host}"), "https://m2.lab:5000"],
            },
            "registries": {
                registry.clone(): {
                    "insecure_skip_verify": true, "plain_http": false, "ca_file": "/ctl/ca.pem",
                    "cert_file": null, "key_file": null,
                    "auth": {"username": s, "password": format!("pw{s}")},
                },
            },
        });
        let text = render(runtime);
        let doc: toml_edit::DocumentMut = text
            .parse()
            .unwrap_or_else(|e| panic!("{s:?}: {e}\n{text}"));
        let top: BTreeSet<&str> = doc.iter().map(|(k, _)| k).collect();
        let want: BTreeSet<&str> = [
            "socket",
            "state_dir",
            "root_dir",
            "run_dir",
            "cgroup_driver",
            "runtime",
            "cni",
            "sandbox",
            "logs",
            "registry",
        ]
        .into();
        assert_eq!(top, want, "{s:?}:\n{text}");
        let reg = doc["registry"].as_table().unwrap();
        let sections: BTreeSet<&str> = reg.iter().map(|(k, _)| k).collect();
        assert_eq!(sections, ["hosts", "mirrors"].into(), "{text}");
        let mirrors = reg["mirrors"].as_table().unwrap();
        assert_eq!(mirrors.len(), 1, "{text}");
        let list = mirrors[registry.as_str()].as_array().unwrap();
        let list: Vec<&str> = list.iter().filter_map(|v| v.as_str()).collect();
        assert_eq!(list, [mirror_host.as_str(), "m2.lab:5000"], "{text}");
        let hosts = reg["hosts"].as_table().unwrap();
        let names: BTreeSet<&str> = hosts.iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            [registry.as_str(), mirror_host.as_str()].into(),
            "{text}"
        );
        let h = hosts[registry.as_str()].as_table().unwrap();
        let keys: BTreeSet<&str> = h.iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            ["ca_file", "insecure_skip_verify", "password", "username"].into(),
            "{text}"
        );
        assert_eq!(h["username"].as_str(), Some(*s));
        assert_eq!(h["password"].as_str(), Some(format!("pw{s}").as_str()));
        assert_eq!(
            h["ca_file"].as_str(),
            Some(format!("/etc/kprov/registries/{registry}/ca.crt").as_str())
        );
        let m = hosts[mirror_host.as_str()].as_table().unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m["plain_http"].as_bool(), Some(true), "{text}");
        // The agent itself reads it back to the same settings.
        let cfg = kprov_agent::config::Config::parse(&text, "agent.toml")
            .unwrap_or_else(|e| panic!("{s:?}: agent refused: {e}\n{text}"));
        assert_eq!(cfg.registry.hosts[&registry].username.as_deref(), Some(*s));
        assert!(cfg.registry.hosts[&mirror_host].plain_http);
    }
}

#[test]
fn agent_toml_without_registries_is_the_plain_config() {
    let text =
        render(json!({"cgroup_driver": "cgroupfs", "registry_mirrors": {}, "registries": {}}));
    let cfg = kprov_agent::config::Config::parse(&text, "agent.toml").unwrap();
    assert!(cfg.registry.hosts.is_empty() && cfg.registry.mirrors.is_empty());
    let doc: toml_edit::DocumentMut = text.parse().unwrap();
    assert!(doc.get("registry").is_none(), "{text}");
    assert_eq!(doc["cgroup_driver"].as_str(), Some("cgroupfs"));
}
