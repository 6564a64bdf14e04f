//! Image references moved to a private registry or mirror (offline clusters).

/// `image` pulled from `registry` instead: the source registry host is replaced and the
/// repository path and tag are kept (`docker.io/calico/node:v3.28.0` with
/// `harbor.local/k8s` → `harbor.local/k8s/calico/node:v3.28.0`). An empty `registry`
/// keeps the image.
pub(crate) fn mirror(image: &str, registry: &str) -> String {
    let registry = registry.trim_end_matches('/');
    if registry.is_empty() {
        return image.to_string();
    }
    let path = match image.split_once('/') {
        // The first part names a registry when it has a dot or port, or is localhost.
        Some((host, rest)) if host.contains(['.', ':']) || host == "localhost" => rest,
        _ => image,
    };
    format!("{registry}/{path}")
}

/// Rewrites every `image` of the containers and init containers of a pod template
/// (`spec.template.spec`) or pod (`spec`) in a Kubernetes object.
pub(crate) fn rewrite_object(object: &mut serde_json::Value, registry: &str) {
    if registry.is_empty() {
        return;
    }
    let pod_spec = if object.pointer("/spec/template/spec").is_some() {
        object.pointer_mut("/spec/template/spec")
    } else if object.pointer("/spec/containers").is_some() {
        object.pointer_mut("/spec")
    } else {
        None
    };
    let Some(pod_spec) = pod_spec else { return };
    for list in ["initContainers", "containers"] {
        if let Some(containers) = pod_spec.get_mut(list).and_then(|c| c.as_array_mut()) {
            for c in containers {
                if let Some(image) = c.get("image").and_then(|i| i.as_str()) {
                    let moved = mirror(image, registry);
                    c["image"] = serde_json::Value::String(moved);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_host_replaced_path_kept() {
        assert_eq!(
            mirror("docker.io/calico/node:v3.28.0", "harbor.local/k8s"),
            "harbor.local/k8s/calico/node:v3.28.0"
        );
        assert_eq!(
            mirror("calico/cni:v3.28.0", "harbor.local:5000/"),
            "harbor.local:5000/calico/cni:v3.28.0"
        );
        assert_eq!(mirror("busybox", "r.example"), "r.example/busybox");
        assert_eq!(mirror("localhost/x:1", "r.example"), "r.example/x:1");
        assert_eq!(mirror("quay.io/a/b@sha256:00", ""), "quay.io/a/b@sha256:00");
    }
}
