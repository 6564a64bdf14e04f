//! The operator's upstream `calico.yaml`, adapted: the calico-node container's pool CIDR,
//! encapsulation and address autodetection env vars; the `calico-config` backend for VXLAN
//! (BIRD's probes dropped with it); every image moved to the spec's registry.

use serde_json::{json, Value};

use super::images;

/// The choices kprov makes in the upstream manifest.
#[derive(Debug, Clone)]
pub(crate) struct Calico<'a> {
    pub pod_cidr: &'a str,
    /// `ipip`, `vxlan` or `none`.
    pub encapsulation: &'a str,
    pub ip_autodetection_method: Option<&'a str>,
    /// Empty: upstream images.
    pub image_registry: &'a str,
}

fn is(doc: &Value, kind: &str, name: &str) -> bool {
    doc["kind"] == kind && doc["metadata"]["name"] == name
}

/// Sets `name` in a container's env list (replacing a `value`/`valueFrom` entry).
fn set_env(container: &mut Value, name: &str, value: &str) {
    if !container["env"].is_array() {
        container["env"] = json!([]);
    }
    let Some(env) = container["env"].as_array_mut() else {
        return;
    };
    let entry = json!({"name": name, "value": value});
    match env.iter_mut().find(|e| e["name"] == name) {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// Adapts the documents in place; an error says what the manifest lacks.
pub(crate) fn adapt(docs: &mut [Value], c: &Calico<'_>) -> Result<(), String> {
    let (ipip, vxlan) = match c.encapsulation {
        "vxlan" => ("Never", "Always"),
        "none" => ("Never", "Never"),
        _ => ("Always", "Never"),
    };
    let mut found = false;
    for doc in docs.iter_mut() {
        if is(doc, "DaemonSet", "calico-node") {
            let Some(containers) = doc
                .pointer_mut("/spec/template/spec/containers")
                .and_then(Value::as_array_mut)
            else {
                return Err("the calico-node DaemonSet has no containers".into());
            };
            let Some(node) = containers.iter_mut().find(|c| c["name"] == "calico-node") else {
                return Err("the calico-node DaemonSet has no calico-node container".into());
            };
            set_env(node, "CALICO_IPV4POOL_CIDR", c.pod_cidr);
            set_env(node, "CALICO_IPV4POOL_IPIP", ipip);
            set_env(node, "CALICO_IPV4POOL_VXLAN", vxlan);
            if let Some(method) = c.ip_autodetection_method {
                set_env(node, "IP_AUTODETECTION_METHOD", method);
            }
            if c.encapsulation == "vxlan" {
                // Without BIRD there is nothing for its liveness/readiness checks to ask.
                for probe in ["livenessProbe", "readinessProbe"] {
                    if let Some(cmd) = node
                        .pointer_mut(&format!("/{probe}/exec/command"))
                        .and_then(Value::as_array_mut)
                    {
                        cmd.retain(|a| a != "-bird-live" && a != "-bird-ready");
                    }
                }
            }
            found = true;
        }
        if c.encapsulation == "vxlan" && is(doc, "ConfigMap", "calico-config") {
            doc["data"]["calico_backend"] = json!("vxlan");
        }
        images::rewrite_object(doc, c.image_registry);
    }
    if found {
        Ok(())
    } else {
        Err("no DaemonSet calico-node: is this calico.yaml from the Calico release?".into())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kprov_controlplane::yaml::parse_docs;

    /// Shaped like the upstream manifest: calico-config, calico-node with its env and
    /// probes (the pool CIDR commented out, as upstream ships it), kube-controllers.
    pub(crate) const FIXTURE: &str = include_str!("calico-fixture.yaml");

    fn env(ds: &DaemonSet, name: &str) -> Option<String> {
        let pod = ds.spec.as_ref()?.template.spec.as_ref()?;
        let node = pod.containers.iter().find(|c| c.name == "calico-node")?;
        node.env
            .as_ref()?
            .iter()
            .find(|e| e.name == name)?
            .value
            .clone()
    }

    #[test]
    fn vxlan_pool_autodetection_and_mirror() {
        let mut docs = parse_docs(FIXTURE).unwrap();
        let c = Calico {
            pod_cidr: "10.32.0.0/16",
            encapsulation: "vxlan",
            ip_autodetection_method: Some("interface=eth0"),
            image_registry: "harbor.local/k8s",
        };
        adapt(&mut docs, &c).unwrap();
        let cm: ConfigMap = serde_json::from_value(docs[0].clone()).unwrap();
        assert_eq!(cm.data.unwrap()["calico_backend"], "vxlan");
        let ds: DaemonSet = serde_json::from_value(docs[1].clone()).unwrap();
        assert_eq!(
            env(&ds, "CALICO_IPV4POOL_CIDR").as_deref(),
            Some("10.32.0.0/16")
        );
        assert_eq!(env(&ds, "CALICO_IPV4POOL_IPIP").as_deref(), Some("Never"));
        assert_eq!(env(&ds, "CALICO_IPV4POOL_VXLAN").as_deref(), Some("Always"));
        assert_eq!(
            env(&ds, "IP_AUTODETECTION_METHOD").as_deref(),
            Some("interface=eth0")
        );
        // Untouched entries stay.
        assert_eq!(
            env(&ds, "CALICO_DISABLE_FILE_LOGGING").as_deref(),
            Some("true")
        );
        let pod = ds.spec.unwrap().template.spec.unwrap();
        let node = &pod.containers[0];
        let live = node.liveness_probe.as_ref().unwrap().exec.as_ref().unwrap();
        assert_eq!(
            live.command.as_ref().unwrap(),
            &["/bin/calico-node", "-felix-live"]
        );
        assert_eq!(
            node.image.as_deref(),
            Some("harbor.local/k8s/calico/node:v3.28.0")
        );
        let init = pod.init_containers.unwrap();
        assert_eq!(
            init[0].image.as_deref(),
            Some("harbor.local/k8s/calico/cni:v3.28.0")
        );
        let dep: Deployment = serde_json::from_value(docs[2].clone()).unwrap();
        let image = dep.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .clone();
        assert_eq!(
            image.as_deref(),
            Some("harbor.local/k8s/calico/kube-controllers:v3.28.0")
        );
    }

    #[test]
    fn ipip_by_default_and_upstream_images() {
        let mut docs = parse_docs(FIXTURE).unwrap();
        let c = Calico {
            pod_cidr: "10.244.0.0/16",
            encapsulation: "ipip",
            ip_autodetection_method: None,
            image_registry: "",
        };
        adapt(&mut docs, &c).unwrap();
        let ds: DaemonSet = serde_json::from_value(docs[1].clone()).unwrap();
        assert_eq!(env(&ds, "CALICO_IPV4POOL_IPIP").as_deref(), Some("Always"));
        assert_eq!(env(&ds, "CALICO_IPV4POOL_VXLAN").as_deref(), Some("Never"));
        assert_eq!(env(&ds, "IP_AUTODETECTION_METHOD"), None);
        let node = &ds.spec.unwrap().template.spec.unwrap().containers[0];
        assert_eq!(node.image.as_deref(), Some("docker.io/calico/node:v3.28.0"));
        let cm: ConfigMap = serde_json::from_value(docs[0].clone()).unwrap();
        assert_eq!(cm.data.unwrap()["calico_backend"], "bird");

        let mut other = parse_docs("kind: ConfigMap\nmetadata: {name: x}\n").unwrap();
        assert!(adapt(&mut other, &c).unwrap_err().contains("calico-node"));
    }
}
