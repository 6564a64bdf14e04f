//! Every manifest parses as a Kubernetes Pod (k8s-openapi), every kubeconfig as a
//! kubeconfig (kube-client), every cluster object as its k8s-openapi type; the
//! version differences between minors show up where they should.

mod common;

use common::*;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kprov_controlplane::{
    cluster_objects, init_files, join_files, new_token, Artifact, Existing, NodeParams,
};
use kube_client::config::Kubeconfig;
use serde_json::Value;
use std::collections::BTreeMap;

/// Deserializes into `T` and checks that serializing again gives the same JSON,
/// so no field was misspelled or misplaced (k8s-openapi ignores unknown fields).
fn roundtrip<T: serde::de::DeserializeOwned + serde::Serialize>(json: &Value, what: &str) -> T {
    let typed: T =
        serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{what}: {e}\n{json:#}"));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        strip_nulls(json.clone()),
        back,
        "{what}: fields lost in the typed round trip"
    );
    typed
}

fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

fn pod(artifacts: &[Artifact], name: &str) -> Pod {
    let path = format!("/etc/kubernetes/manifests/{name}.yaml");
    assert_eq!(find(artifacts, &path).mode, 0o600);
    roundtrip(&yaml_to_json(&text(artifacts, &path)), &path)
}

/// `--flag=value` pairs of the pod's only container.
fn flags(pod: &Pod) -> BTreeMap<String, String> {
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.containers.len(), 1);
    let command = spec.containers[0].command.clone().unwrap();
    command[1..]
        .iter()
        .map(|f| {
            let (k, v) = f.trim_start_matches("--").split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn http_probe(probe: &Option<k8s_openapi::api::core::v1::Probe>) -> (String, i32, i32, i32, i32) {
    let p = probe.as_ref().expect("probe");
    let get = p.http_get.as_ref().unwrap();
    (
        get.path.clone().unwrap(),
        p.initial_delay_seconds.unwrap_or(0),
        p.timeout_seconds.unwrap(),
        p.failure_threshold.unwrap(),
        p.period_seconds.unwrap(),
    )
}

#[test]
fn manifests_are_pods_with_kubeadm_flags_probes_and_volumes() {
    for minor in [28, 29, 30, 31] {
        let p = params(&format!("1.{minor}.1"));
        let mut n = node();
        n.ca_trust_dirs.extend([
            "/etc/pki".to_string(),
            "/etc/pki/ca-trust".to_string(),
            "/etc/pki/tls/certs".to_string(),
        ]);
        let artifacts = init_files(&p, &n, &Existing::empty(), now()).unwrap();

        for name in [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
        ] {
            let pod = pod(&artifacts, name);
            let meta = &pod.metadata;
            assert_eq!(meta.name.as_deref(), Some(name));
            assert_eq!(meta.namespace.as_deref(), Some("kube-system"));
            let labels = meta.labels.clone().unwrap();
            assert_eq!(
                (labels["component"].as_str(), labels["tier"].as_str()),
                (name, "control-plane")
            );
            let spec = pod.spec.as_ref().unwrap();
            assert_eq!(spec.host_network, Some(true));
            assert_eq!(spec.priority, Some(2000001000));
            assert_eq!(
                spec.priority_class_name.as_deref(),
                Some("system-node-critical")
            );
            let seccomp = spec
                .security_context
                .as_ref()
                .unwrap()
                .seccomp_profile
                .as_ref()
                .unwrap();
            assert_eq!(seccomp.type_, "RuntimeDefault");
            let c = &spec.containers[0];
            assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
            let expected_image = if name == "etcd" {
                p.etcd_image()
            } else {
                format!("registry.k8s.io/{name}:v1.{minor}.1")
            };
            assert_eq!(c.image.as_deref(), Some(expected_image.as_str()));
            // Volumes and mounts sorted by name; every mount has its volume at the same path.
            let volumes = spec.volumes.clone().unwrap();
            let names: Vec<_> = volumes.iter().map(|v| v.name.clone()).collect();
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(names, sorted, "{name} volumes sorted");
            for m in c.volume_mounts.clone().unwrap() {
                let v = volumes.iter().find(|v| v.name == m.name).unwrap();
                assert_eq!(
                    v.host_path.as_ref().unwrap().path,
                    m.mount_path,
                    "{name} {}",
                    m.name
                );
            }
            // Liveness 10/15/8/10 and startup 10/15/24/10 everywhere.
            assert_eq!(
                http_probe(&c.liveness_probe).1..=http_probe(&c.liveness_probe).4,
                10..=10
            );
            assert_eq!(http_probe(&c.startup_probe).3, 24);
        }

        let api = pod(&artifacts, "kube-apiserver");
        let f = flags(&api);
        assert_eq!(f.len(), 27, "{f:?}");
        assert_eq!(f["advertise-address"], "192.0.2.10");
        assert_eq!(f["etcd-servers"], "https://127.0.0.1:2379");
        assert_eq!(
            f["service-account-issuer"],
            "https://kubernetes.default.svc.cluster.local"
        );
        assert_eq!(f["service-cluster-ip-range"], "10.96.0.0/12");
        let annotations = api.metadata.annotations.clone().unwrap();
        assert_eq!(
            annotations["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"],
            "192.0.2.10:6443"
        );
        let c = &api.spec.as_ref().unwrap().containers[0];
        assert_eq!(
            http_probe(&c.readiness_probe),
            ("/readyz".into(), 0, 15, 3, 1)
        );
        let ca_mounts: Vec<String> = api
            .spec
            .as_ref()
            .unwrap()
            .volumes
            .clone()
            .unwrap()
            .iter()
            .map(|v| v.name.clone())
            .collect();
        if minor >= 31 {
            assert!(
                ca_mounts.contains(&"etc-pki-ca-trust".to_string())
                    && ca_mounts.contains(&"etc-pki-tls-certs".to_string())
            );
            assert!(!ca_mounts.contains(&"etc-pki".to_string()));
        } else {
            assert!(
                ca_mounts.contains(&"etc-pki".to_string())
                    && !ca_mounts.contains(&"etc-pki-ca-trust".to_string())
            );
        }

        let kcm = flags(&pod(&artifacts, "kube-controller-manager"));
        assert_eq!(kcm["controllers"], "*,bootstrapsigner,tokencleaner");
        assert_eq!(kcm["cluster-cidr"], "10.244.0.0/16");
        assert_eq!(kcm["allocate-node-cidrs"], "true");
        let kcm_pod = pod(&artifacts, "kube-controller-manager");
        let flex = kcm_pod.spec.as_ref().unwrap().containers[0]
            .volume_mounts
            .clone()
            .unwrap();
        let flex = flex.iter().find(|m| m.name == "flexvolume-dir").unwrap();
        assert_eq!(flex.read_only, None, "flexvolume-dir is read-write");

        let sched = flags(&pod(&artifacts, "kube-scheduler"));
        assert_eq!(sched["kubeconfig"], "/etc/kubernetes/scheduler.conf");

        let etcd = pod(&artifacts, "etcd");
        let f = flags(&etcd);
        assert_eq!(f["initial-cluster"], "master-1=https://192.0.2.10:2380");
        assert_eq!(
            f["listen-client-urls"],
            "https://127.0.0.1:2379,https://192.0.2.10:2379"
        );
        let c = &etcd.spec.as_ref().unwrap().containers[0];
        if minor >= 31 {
            assert_eq!(http_probe(&c.liveness_probe).0, "/livez");
            assert_eq!(http_probe(&c.readiness_probe).0, "/readyz");
            assert_eq!(http_probe(&c.startup_probe).0, "/readyz");
        } else {
            assert_eq!(
                http_probe(&c.liveness_probe).0,
                "/health?exclude=NOSPACE&serializable=true"
            );
            assert!(c.readiness_probe.is_none());
            assert_eq!(http_probe(&c.startup_probe).0, "/health?serializable=false");
        }
    }
}

/// Parses a kubeconfig with kube-client and checks names, server and credentials;
/// returns the client certificate PEM if embedded.
fn kubeconfig(text: &str, user: &str, server: &str, cluster: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let kc = Kubeconfig::from_yaml(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(kc.clusters.len(), 1);
    assert_eq!(kc.clusters[0].name, cluster);
    let c = kc.clusters[0].cluster.as_ref().unwrap();
    assert_eq!(c.server.as_deref(), Some(server));
    assert!(c.certificate_authority_data.is_some());
    let context = format!("{user}@{cluster}");
    assert_eq!(kc.current_context.as_deref(), Some(context.as_str()));
    assert_eq!(kc.contexts[0].name, context);
    assert_eq!(kc.auth_infos[0].name, user);
    let auth = kc.auth_infos[0].auth_info.as_ref().unwrap();
    auth.client_certificate_data
        .as_ref()
        .map(|d| base64::engine::general_purpose::STANDARD.decode(d).unwrap())
}

#[test]
fn kubeconfigs_parse_and_carry_the_right_identities() {
    for minor in [28, 29, 31] {
        let p = params(&format!("1.{minor}.0"));
        let artifacts = init(&p);
        let dir = tempfile::tempdir().unwrap();
        write_all(dir.path(), &artifacts);
        let ca = under(dir.path(), "/etc/kubernetes/pki/ca.crt");
        let admin_o = if minor >= 29 {
            "kubeadm:cluster-admins"
        } else {
            "system:masters"
        };
        let mut expected = vec![
            (
                "admin.conf",
                "kubernetes-admin",
                Some(admin_o),
                "https://192.0.2.10:6443",
            ),
            (
                "kubelet.conf",
                "system:node:master-1",
                Some("system:nodes"),
                "https://192.0.2.10:6443",
            ),
            (
                "controller-manager.conf",
                "system:kube-controller-manager",
                None,
                "https://192.0.2.10:6443",
            ),
            (
                "scheduler.conf",
                "system:kube-scheduler",
                None,
                "https://192.0.2.10:6443",
            ),
        ];
        if minor >= 29 {
            expected.push((
                "super-admin.conf",
                "kubernetes-super-admin",
                Some("system:masters"),
                "https://192.0.2.10:6443",
            ));
        } else {
            assert!(
                !artifacts
                    .iter()
                    .any(|a| a.path.ends_with("super-admin.conf")),
                "no super-admin.conf in 1.28"
            );
        }
        for (file, cn, org, server) in expected {
            let path = format!("/etc/kubernetes/{file}");
            let a = find(&artifacts, &path);
            assert_eq!((a.mode, a.secret), (0o600, true));
            let cert = kubeconfig(&text(&artifacts, &path), cn, server, "kubernetes")
                .expect("embedded client cert");
            let cert_path = dir.path().join(format!("{file}.crt"));
            std::fs::write(&cert_path, &cert).unwrap();
            let (ok, out) = run(
                "openssl",
                &[
                    "verify",
                    "-CAfile",
                    ca.to_str().unwrap(),
                    cert_path.to_str().unwrap(),
                ],
            );
            assert!(ok, "{file}: {out}");
            let (_, subject) = run(
                "openssl",
                &[
                    "x509",
                    "-in",
                    cert_path.to_str().unwrap(),
                    "-noout",
                    "-subject",
                    "-ext",
                    "extendedKeyUsage",
                ],
            );
            let expected_subject = match org {
                Some(o) => format!("subject=O = {o}, CN = {cn}"),
                None => format!("subject=CN = {cn}"),
            };
            assert!(subject.contains(&expected_subject), "{file}: {subject}");
            assert!(
                subject.contains("TLS Web Client Authentication") && !subject.contains("Server"),
                "{file}: {subject}"
            );
        }
    }
}

#[test]
fn control_plane_endpoint_is_used_by_clients_but_not_by_local_components() {
    let mut p = params("1.30.0");
    p.control_plane_endpoint = Some("lb.example.test:8443".into());
    let artifacts = init(&p);
    kubeconfig(
        &text(&artifacts, "/etc/kubernetes/admin.conf"),
        "kubernetes-admin",
        "https://lb.example.test:8443",
        "kubernetes",
    );
    kubeconfig(
        &text(&artifacts, "/etc/kubernetes/kubelet.conf"),
        "system:node:master-1",
        "https://lb.example.test:8443",
        "kubernetes",
    );
    kubeconfig(
        &text(&artifacts, "/etc/kubernetes/scheduler.conf"),
        "system:kube-scheduler",
        "https://192.0.2.10:6443",
        "kubernetes",
    );
    let (_, sans) = {
        let dir = tempfile::tempdir().unwrap();
        write_all(dir.path(), &artifacts);
        run(
            "openssl",
            &[
                "x509",
                "-in",
                under(dir.path(), "/etc/kubernetes/pki/apiserver.crt")
                    .to_str()
                    .unwrap(),
                "-noout",
                "-ext",
                "subjectAltName",
            ],
        )
    };
    assert!(sans.contains("DNS:lb.example.test"), "{sans}");
}

#[test]
fn join_files_hold_the_token_ca_and_kubelet_wiring() {
    let p = params("1.31.0");
    let master = init(&p);
    let ca = find(&master, "/etc/kubernetes/pki/ca.crt").content.clone();
    let token = new_token(&p, now());
    let worker = NodeParams::new("worker-1", "192.0.2.11".parse().unwrap());
    let files = join_files(&p, &worker, &token, &ca).unwrap();
    let paths: Vec<&str> = files.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/etc/kubernetes/bootstrap-kubelet.conf",
            "/etc/kubernetes/pki/ca.crt",
            "/var/lib/kubelet/config.yaml",
            "/var/lib/kubelet/kubeadm-flags.env",
            "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
        ]
    );
    let bootstrap = text(&files, "/etc/kubernetes/bootstrap-kubelet.conf");
    assert!(kubeconfig(
        &bootstrap,
        "tls-bootstrap-token-user",
        "https://192.0.2.10:6443",
        "kubernetes"
    )
    .is_none());
    assert!(bootstrap.contains(&format!("token: {}", token.expose())));
    assert!(find(&files, "/etc/kubernetes/bootstrap-kubelet.conf").secret);
    assert_eq!(find(&files, "/etc/kubernetes/pki/ca.crt").content, ca);
    // Same kubelet config as the master's (it comes from one ConfigMap).
    assert_eq!(
        text(&files, "/var/lib/kubelet/config.yaml"),
        text(&master, "/var/lib/kubelet/config.yaml")
    );
    let kubelet = yaml_to_json(&text(&files, "/var/lib/kubelet/config.yaml"));
    assert_eq!(kubelet["clusterDNS"][0], "10.96.0.10");
    assert_eq!(kubelet["cgroupDriver"], "systemd");
    assert_eq!(
        kubelet["authentication"]["x509"]["clientCAFile"],
        "/etc/kubernetes/pki/ca.crt"
    );
    assert_eq!(
        text(&files, "/var/lib/kubelet/kubeadm-flags.env"),
        "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.10\"\n"
    );
    // A broken CA is refused instead of written.
    assert!(join_files(&p, &worker, &token, b"not a certificate").is_err());
}

#[test]
fn cluster_objects_are_valid_kubernetes_objects() {
    for minor in [28, 29, 31] {
        let p = params(&format!("1.{minor}.0"));
        let artifacts = init(&p);
        let ca = find(&artifacts, "/etc/kubernetes/pki/ca.crt")
            .content
            .clone();
        let token = new_token(&p, now());
        let docs = cluster_objects(&p, &token, &ca).unwrap();
        let mut seen = BTreeMap::new();
        for doc in &docs {
            let json = yaml_to_json(doc);
            let kind = json["kind"].as_str().unwrap().to_string();
            let name = json["metadata"]["name"].as_str().unwrap().to_string();
            let what = format!("{kind} {name}");
            match kind.as_str() {
                "ConfigMap" => drop(roundtrip::<ConfigMap>(&json, &what)),
                "Secret" => drop(roundtrip::<Secret>(&json, &what)),
                "ServiceAccount" => drop(roundtrip::<ServiceAccount>(&json, &what)),
                "Service" => drop(roundtrip::<Service>(&json, &what)),
                "Deployment" => drop(roundtrip::<Deployment>(&json, &what)),
                "DaemonSet" => drop(roundtrip::<DaemonSet>(&json, &what)),
                "Role" => drop(roundtrip::<Role>(&json, &what)),
                "RoleBinding" => drop(roundtrip::<RoleBinding>(&json, &what)),
                "ClusterRole" => drop(roundtrip::<ClusterRole>(&json, &what)),
                "ClusterRoleBinding" => drop(roundtrip::<ClusterRoleBinding>(&json, &what)),
                other => panic!("unexpected kind {other}"),
            }
            seen.insert(what, json);
        }
        // kubeadm-config holds the ClusterConfiguration of this release's API.
        let cc = yaml_to_json(
            seen["ConfigMap kubeadm-config"]["data"]["ClusterConfiguration"]
                .as_str()
                .unwrap(),
        );
        let api = if minor >= 31 {
            "kubeadm.k8s.io/v1beta4"
        } else {
            "kubeadm.k8s.io/v1beta3"
        };
        assert_eq!(cc["apiVersion"], api);
        assert_eq!(cc["networking"]["podSubnet"], "10.244.0.0/16");
        assert_eq!(cc["kubernetesVersion"], format!("v1.{minor}.0"));
        // kubelet-config carries the same KubeletConfiguration the nodes get.
        assert_eq!(
            seen["ConfigMap kubelet-config"]["data"]["kubelet"]
                .as_str()
                .unwrap(),
            text(&artifacts, "/var/lib/kubelet/config.yaml")
        );
        // Token Secret content.
        let secret: Secret = roundtrip(
            &seen[&format!("Secret bootstrap-token-{}", token.id())],
            "token",
        );
        assert_eq!(
            secret.type_.as_deref(),
            Some("bootstrap.kubernetes.io/token")
        );
        let data: BTreeMap<String, String> = secret
            .data
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
            .collect();
        assert_eq!(data["token-id"], token.id());
        assert_eq!(data["token-secret"], token.secret());
        assert_eq!(
            data["auth-extra-groups"],
            "system:bootstrappers:kubeadm:default-node-token"
        );
        assert_eq!(
            (
                data["usage-bootstrap-authentication"].as_str(),
                data["usage-bootstrap-signing"].as_str()
            ),
            ("true", "true")
        );
        let expiration = time::OffsetDateTime::parse(
            &data["expiration"],
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let in_24h = time::OffsetDateTime::from(now() + std::time::Duration::from_secs(24 * 3600));
        assert!(
            (expiration - in_24h).whole_seconds().abs() <= 1 && data["expiration"].ends_with('Z'),
            "{}",
            data["expiration"]
        );
        // cluster-info: one unnamed cluster with server and CA, nothing else.
        let ci = Kubeconfig::from_yaml(
            seen["ConfigMap cluster-info"]["data"]["kubeconfig"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(ci.clusters[0].name, "");
        assert!(ci.auth_infos.is_empty() && ci.contexts.is_empty());
        assert_eq!(
            seen["ConfigMap cluster-info"]["metadata"]["namespace"],
            "kube-public"
        );
        // kube-proxy's in-pod kubeconfig parses too.
        Kubeconfig::from_yaml(
            seen["ConfigMap kube-proxy"]["data"]["kubeconfig.conf"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        let proxy = yaml_to_json(
            seen["ConfigMap kube-proxy"]["data"]["config.conf"]
                .as_str()
                .unwrap(),
        );
        assert_eq!(proxy["clusterCIDR"], "10.244.0.0/16");
        assert_eq!(seen["Service kube-dns"]["spec"]["clusterIP"], "10.96.0.10");
        assert_eq!(
            seen.contains_key("ClusterRoleBinding kubeadm:cluster-admins"),
            minor >= 29
        );
        for required in [
            "ClusterRoleBinding kubeadm:kubelet-bootstrap",
            "ClusterRoleBinding kubeadm:node-autoapprove-bootstrap",
            "ClusterRoleBinding kubeadm:node-autoapprove-certificate-rotation",
            "ClusterRoleBinding kubeadm:get-nodes",
            "RoleBinding kubeadm:bootstrap-signer-clusterinfo",
            "RoleBinding kubeadm:nodes-kubeadm-config",
            "RoleBinding kubeadm:kubelet-config",
            "Deployment coredns",
            "DaemonSet kube-proxy",
            "ClusterRoleBinding kubeadm:node-proxier",
        ] {
            assert!(seen.contains_key(required), "missing {required}");
        }
        // The secret never shows up outside the token Secret and its Debug form hides it.
        let elsewhere = docs
            .iter()
            .filter(|d| d.contains(token.secret()) || d.contains(&base64_of(token.secret())))
            .count();
        assert_eq!(elsewhere, 1);
        assert!(!format!("{token:?}").contains(token.secret()));
    }
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn ipv6_single_stack_uses_bracketed_urls_and_v6_loopback() {
    let mut p = kprov_controlplane::ClusterParams::new(
        "1.31.0".parse().unwrap(),
        "fd00::10".parse().unwrap(),
    );
    p.service_cidr = "fd00:10:96::/112".parse().unwrap();
    p.pod_cidr = Some("fd00:10:244::/56".parse().unwrap());
    let n = NodeParams::new("master-1", "fd00::10".parse().unwrap());
    let artifacts = init_files(&p, &n, &Existing::empty(), now()).unwrap();
    let api = flags(&pod(&artifacts, "kube-apiserver"));
    assert_eq!(api["etcd-servers"], "https://[::1]:2379");
    assert_eq!(api["advertise-address"], "fd00::10");
    let etcd = flags(&pod(&artifacts, "etcd"));
    assert_eq!(
        etcd["listen-client-urls"],
        "https://[::1]:2379,https://[fd00::10]:2379"
    );
    assert_eq!(etcd["listen-metrics-urls"], "http://[::1]:2381");
    kubeconfig(
        &text(&artifacts, "/etc/kubernetes/admin.conf"),
        "kubernetes-admin",
        "https://[fd00::10]:6443",
        "kubernetes",
    );
    let kubelet = yaml_to_json(&text(&artifacts, "/var/lib/kubelet/config.yaml"));
    assert_eq!(kubelet["clusterDNS"][0], "fd00:10:96::a");
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), &artifacts);
    let (_, sans) = run(
        "openssl",
        &[
            "x509",
            "-in",
            under(dir.path(), "/etc/kubernetes/pki/apiserver.crt")
                .to_str()
                .unwrap(),
            "-noout",
            "-ext",
            "subjectAltName",
        ],
    );
    assert!(
        sans.contains("IP Address:FD00:10:96:0:0:0:0:1")
            && sans.contains("IP Address:FD00:0:0:0:0:0:0:10"),
        "{sans}"
    );
}

#[test]
fn proxy_env_extra_kubelet_args_and_image_list() {
    let mut p = params("1.29.2");
    p.image_repository = "harbor.lab.test/k8s".into();
    p.proxy_env
        .insert("HTTPS_PROXY".into(), "http://proxy.lab.test:3128".into());
    p.proxy_env.insert(
        "NO_PROXY".into(),
        "10.96.0.0/12,10.244.0.0/16,192.0.2.0/24".into(),
    );
    let mut n = node();
    n.kubelet_extra_args
        .insert("node-ip".into(), "192.0.2.10".into());
    n.hostname = Some("master-1.lab.test".into());
    let artifacts = init_files(&p, &n, &Existing::empty(), now()).unwrap();
    for name in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        let pod = pod(&artifacts, name);
        let env = pod.spec.unwrap().containers[0].env.clone().unwrap();
        let pairs: Vec<(String, String)> = env
            .into_iter()
            .map(|e| (e.name, e.value.unwrap()))
            .collect();
        assert_eq!(pairs.len(), 2, "{name}");
        assert_eq!(
            pairs[0],
            (
                "HTTPS_PROXY".to_string(),
                "http://proxy.lab.test:3128".to_string()
            )
        );
        assert!(pod.metadata.name.is_some());
    }
    assert!(pod(&artifacts, "etcd").spec.unwrap().containers[0]
        .env
        .is_none());
    assert_eq!(
        text(&artifacts, "/var/lib/kubelet/kubeadm-flags.env"),
        "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock --hostname-override=master-1 \
         --node-ip=192.0.2.10 --pod-infra-container-image=harbor.lab.test/k8s/pause:3.9\"\n"
    );
    assert_eq!(
        p.images(),
        [
            "harbor.lab.test/k8s/kube-apiserver:v1.29.2",
            "harbor.lab.test/k8s/kube-controller-manager:v1.29.2",
            "harbor.lab.test/k8s/kube-scheduler:v1.29.2",
            "harbor.lab.test/k8s/kube-proxy:v1.29.2",
            "harbor.lab.test/k8s/coredns:v1.11.1",
            "harbor.lab.test/k8s/pause:3.9",
            "harbor.lab.test/k8s/etcd:3.5.10-0",
        ]
    );
    // Every manifest uses the mirror.
    for a in artifacts
        .iter()
        .filter(|a| a.path.starts_with("/etc/kubernetes/manifests/"))
    {
        let image = yaml_to_json(&String::from_utf8_lossy(&a.content))["spec"]["containers"][0]
            ["image"]
            .clone();
        assert!(
            image.as_str().unwrap().starts_with("harbor.lab.test/k8s/"),
            "{}: {image}",
            a.path
        );
    }
    // Values that would break the env file's quoting are refused.
    n.kubelet_extra_args
        .insert("node-labels".into(), "a=b c".into());
    let e = init_files(&p, &n, &Existing::empty(), now())
        .unwrap_err()
        .to_string();
    assert!(e.contains("kubelet_extra_args"), "{e}");
}
