//! Every certificate checked with the real openssl CLI: chain, subject, SANs,
//! key usage, EKU, basic constraints, validity and backdating, serial range,
//! key format and modes.

mod common;

use common::*;
use kprov_controlplane::{init_files, Artifact, Existing, KeyAlgorithm};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// One certificate's expected profile.
struct Expect {
    base: &'static str,
    ca: &'static str,
    cn: String,
    orgs: Vec<&'static str>,
    eku: &'static str,
    sans: Vec<String>,
}

fn expectations(version_minor: u32) -> Vec<Expect> {
    let masters = if version_minor >= 29 {
        vec!["kubeadm:cluster-admins"]
    } else {
        vec!["system:masters"]
    };
    let etcd_clients = if version_minor >= 29 {
        vec![]
    } else {
        vec!["system:masters"]
    };
    let server = "TLS Web Server Authentication";
    let client = "TLS Web Client Authentication";
    let both = "TLS Web Server Authentication, TLS Web Client Authentication";
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let etcd_sans = s(&[
        "DNS:localhost",
        "DNS:master-1",
        "IP Address:192.0.2.10",
        "IP Address:127.0.0.1",
        "IP Address:0:0:0:0:0:0:0:1",
    ]);
    vec![
        Expect {
            base: "ca",
            ca: "ca",
            cn: "kubernetes".into(),
            orgs: vec![],
            eku: "",
            sans: s(&["DNS:kubernetes"]),
        },
        Expect {
            base: "apiserver",
            ca: "ca",
            cn: "kube-apiserver".into(),
            orgs: vec![],
            eku: server,
            sans: s(&[
                "DNS:api.example.test",
                "DNS:kubernetes",
                "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc",
                "DNS:kubernetes.default.svc.cluster.local",
                "DNS:master-1",
                "IP Address:10.96.0.1",
                "IP Address:192.0.2.10",
                "IP Address:198.51.100.7",
            ]),
        },
        Expect {
            base: "apiserver-kubelet-client",
            ca: "ca",
            cn: "kube-apiserver-kubelet-client".into(),
            orgs: masters,
            eku: client,
            sans: vec![],
        },
        Expect {
            base: "front-proxy-ca",
            ca: "front-proxy-ca",
            cn: "front-proxy-ca".into(),
            orgs: vec![],
            eku: "",
            sans: s(&["DNS:front-proxy-ca"]),
        },
        Expect {
            base: "front-proxy-client",
            ca: "front-proxy-ca",
            cn: "front-proxy-client".into(),
            orgs: vec![],
            eku: client,
            sans: vec![],
        },
        Expect {
            base: "etcd/ca",
            ca: "etcd/ca",
            cn: "etcd-ca".into(),
            orgs: vec![],
            eku: "",
            sans: s(&["DNS:etcd-ca"]),
        },
        Expect {
            base: "etcd/server",
            ca: "etcd/ca",
            cn: "master-1".into(),
            orgs: vec![],
            eku: both,
            sans: etcd_sans.clone(),
        },
        Expect {
            base: "etcd/peer",
            ca: "etcd/ca",
            cn: "master-1".into(),
            orgs: vec![],
            eku: both,
            sans: etcd_sans,
        },
        Expect {
            base: "etcd/healthcheck-client",
            ca: "etcd/ca",
            cn: "kube-etcd-healthcheck-client".into(),
            orgs: etcd_clients.clone(),
            eku: client,
            sans: vec![],
        },
        Expect {
            base: "apiserver-etcd-client",
            ca: "etcd/ca",
            cn: "kube-apiserver-etcd-client".into(),
            orgs: etcd_clients,
            eku: client,
            sans: vec![],
        },
    ]
}

/// `openssl x509 -noout ...` fields: subject, serial, dates and extensions.
struct Parsed {
    subject: String,
    serial: String,
    not_before: SystemTime,
    not_after: SystemTime,
    ext: BTreeMap<String, String>,
}

fn openssl_x509(path: &Path) -> Parsed {
    let p = path.to_str().unwrap();
    let (ok, out) = run(
        "openssl",
        &[
            "x509",
            "-in",
            p,
            "-noout",
            "-subject",
            "-serial",
            "-startdate",
            "-enddate",
            "-dateopt",
            "iso_8601",
            "-ext",
            "subjectAltName,keyUsage,extendedKeyUsage,basicConstraints",
        ],
    );
    assert!(ok, "openssl x509 {p}: {out}");
    let mut fields = BTreeMap::new();
    let mut ext = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in out.lines() {
        if let Some(value) = line.strip_prefix("    ") {
            let key = current.clone().expect("extension header before value");
            ext.insert(key, value.trim().to_string());
        } else if line.starts_with("X509v3 ") {
            current = Some(
                line.split(':')
                    .next()
                    .unwrap()
                    .trim_start_matches("X509v3 ")
                    .to_string(),
            );
            if line.contains("critical") {
                ext.insert(
                    format!("{} critical", current.clone().unwrap()),
                    "yes".into(),
                );
            }
        } else if let Some((k, v)) = line.split_once('=') {
            fields.insert(k.to_string(), v.to_string());
        }
    }
    Parsed {
        subject: fields["subject"].clone(),
        serial: fields["serial"].clone(),
        not_before: iso(&fields["notBefore"]),
        not_after: iso(&fields["notAfter"]),
        ext,
    }
}

fn iso(s: &str) -> SystemTime {
    let format = time::format_description::parse_borrowed::<2>(
        "[year]-[month]-[day] [hour]:[minute]:[second]Z",
    )
    .unwrap();
    time::PrimitiveDateTime::parse(s, &format)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .assume_utc()
        .into()
}

fn expected_subject(e: &Expect) -> String {
    let mut parts: Vec<String> = e.orgs.iter().map(|o| format!("O = {o}")).collect();
    parts.push(format!("CN = {}", e.cn));
    parts.join(", ")
}

/// Checks every certificate and key of one init output against kubeadm's profile.
fn check_tree(
    minor: u32,
    artifacts: &[Artifact],
    created: SystemTime,
    leaves_created: SystemTime,
    alg: KeyAlgorithm,
) {
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), artifacts);
    let pki = |name: &str| under(dir.path(), &format!("/etc/kubernetes/pki/{name}"));
    let backdate = Duration::from_secs(300);
    let ca_not_before = created - backdate;
    for e in expectations(minor) {
        let crt = pki(&format!("{}.crt", e.base));
        let key = pki(&format!("{}.key", e.base));
        let is_ca = e.base == e.ca;
        let (ok, out) = run(
            "openssl",
            &[
                "verify",
                "-CAfile",
                pki(&format!("{}.crt", e.ca)).to_str().unwrap(),
                crt.to_str().unwrap(),
            ],
        );
        assert!(ok && out.contains(": OK"), "{}: {out}", e.base);

        let c = openssl_x509(&crt);
        assert_eq!(c.subject, expected_subject(&e), "{} subject", e.base);
        let serial = u128::from_str_radix(&c.serial, 16).unwrap();
        assert!(
            (1..=(i64::MAX as u128)).contains(&serial),
            "{} serial {serial}",
            e.base
        );
        assert_eq!(
            c.ext["Key Usage"],
            if is_ca {
                "Digital Signature, Key Encipherment, Certificate Sign"
            } else {
                "Digital Signature, Key Encipherment"
            },
            "{}",
            e.base
        );
        assert!(c.ext.contains_key("Key Usage critical"), "{}", e.base);
        assert_eq!(
            c.ext["Basic Constraints"],
            if is_ca { "CA:TRUE" } else { "CA:FALSE" },
            "{}",
            e.base
        );
        assert!(
            c.ext.contains_key("Basic Constraints critical"),
            "{}",
            e.base
        );
        assert_eq!(
            c.ext
                .get("Extended Key Usage")
                .map(String::as_str)
                .unwrap_or(""),
            e.eku,
            "{}",
            e.base
        );
        let sans: BTreeSet<String> = c
            .ext
            .get("Subject Alternative Name")
            .map(|s| s.split(", ").map(String::from).collect())
            .unwrap_or_default();
        assert_eq!(
            sans,
            e.sans.iter().cloned().collect::<BTreeSet<_>>(),
            "{} SANs",
            e.base
        );

        if is_ca {
            assert_eq!(
                c.not_before, ca_not_before,
                "{} NotBefore = now - 5 min",
                e.base
            );
            assert_eq!(
                c.not_after,
                ca_not_before + Duration::from_secs(87_600 * 3600),
                "{} 10 years",
                e.base
            );
        } else {
            let expected_nb = if minor >= 31 {
                leaves_created - backdate
            } else {
                ca_not_before
            };
            assert_eq!(
                c.not_before, expected_nb,
                "{} NotBefore (1.{minor})",
                e.base
            );
            assert_eq!(
                c.not_after,
                leaves_created + Duration::from_secs(8_760 * 3600),
                "{} NotAfter = now + 1y",
                e.base
            );
        }

        // The key is in kubeadm's format, valid, and belongs to the certificate.
        let key_text = std::fs::read_to_string(&key).unwrap();
        let label = match alg {
            KeyAlgorithm::Rsa2048 => "-----BEGIN RSA PRIVATE KEY-----",
            KeyAlgorithm::EcdsaP256 => "-----BEGIN EC PRIVATE KEY-----",
        };
        assert!(key_text.starts_with(label), "{} key label", e.base);
        let check = match alg {
            KeyAlgorithm::Rsa2048 => format!("openssl rsa -in {} -check -noout", key.display()),
            KeyAlgorithm::EcdsaP256 => format!("openssl ec -in {} -check -noout", key.display()),
        };
        let (ok, out) = sh(&check);
        assert!(ok, "{} key check: {out}", e.base);
        let (_, from_key) = sh(&format!("openssl pkey -in {} -pubout", key.display()));
        let (_, from_cert) = sh(&format!(
            "openssl x509 -in {} -noout -pubkey",
            crt.display()
        ));
        assert_eq!(from_key, from_cert, "{} key matches certificate", e.base);
        if alg == KeyAlgorithm::Rsa2048 {
            let (_, bits) = sh(&format!(
                "openssl x509 -in {} -noout -text | grep 'Public-Key'",
                crt.display()
            ));
            assert!(bits.contains("2048 bit"), "{}: {bits}", e.base);
        }
        assert_eq!(
            find(artifacts, &format!("/etc/kubernetes/pki/{}.crt", e.base)).mode,
            0o644
        );
        let key_artifact = find(artifacts, &format!("/etc/kubernetes/pki/{}.key", e.base));
        assert_eq!((key_artifact.mode, key_artifact.secret), (0o600, true));
    }
    // Service-account key pair: private key and matching PKIX public key, both 0600.
    let (_, from_key) = sh(&format!(
        "openssl pkey -in {} -pubout",
        pki("sa.key").display()
    ));
    assert_eq!(from_key, text(artifacts, "/etc/kubernetes/pki/sa.pub"));
    assert_eq!(find(artifacts, "/etc/kubernetes/pki/sa.pub").mode, 0o600);
    assert_eq!(find(artifacts, "/etc/kubernetes/pki/sa.key").mode, 0o600);
}

#[test]
fn every_certificate_matches_kubeadm_profile_for_each_release() {
    for minor in [28, 29, 30, 31] {
        let p = params(&format!("1.{minor}.3"));
        let t = now();
        let artifacts = init_files(&p, &node(), &Existing::empty(), t).unwrap();
        check_tree(minor, &artifacts, t, t, KeyAlgorithm::Rsa2048);
    }
}

#[test]
fn ecdsa_keys_when_selected() {
    let mut p = params("1.31.0");
    p.key_algorithm = KeyAlgorithm::EcdsaP256;
    let t = now();
    let artifacts = init_files(&p, &node(), &Existing::empty(), t).unwrap();
    check_tree(31, &artifacts, t, t, KeyAlgorithm::EcdsaP256);
}

/// Leaves re-issued under an older CA: 1.28–1.30 copy the CA's NotBefore, 1.31
/// backdates from now.
#[test]
fn leaf_not_before_follows_release() {
    for minor in [30, 31] {
        let p = params(&format!("1.{minor}.0"));
        let earlier = now() - Duration::from_secs(10 * 24 * 3600);
        let first = init_files(&p, &node(), &Existing::empty(), earlier).unwrap();
        // Keep only the CAs: every leaf is issued again "now".
        let cas: Vec<Artifact> = first
            .iter()
            .filter(|a| {
                ["ca.", "front-proxy-ca.", "etcd/ca."]
                    .iter()
                    .any(|c| a.path.starts_with(&format!("/etc/kubernetes/pki/{c}")))
            })
            .cloned()
            .collect();
        assert_eq!(cas.len(), 6);
        let t = now();
        let second = init_files(&p, &node(), &Existing::from_artifacts(&cas), t).unwrap();
        check_tree(minor, &second, earlier, t, KeyAlgorithm::Rsa2048);
    }
}
