//! Discovery hash and cluster-info JWS checked against openssl.

mod common;

use common::*;
use kprov_controlplane::{discovery_hash, init_files, BootstrapToken, Existing, KeyAlgorithm};

#[test]
fn discovery_hash_equals_openssl_pipeline() {
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcdsaP256] {
        let mut p = params("1.31.0");
        p.key_algorithm = alg;
        let artifacts = init_files(&p, &node(), &Existing::empty(), now()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        write_all(dir.path(), &artifacts);
        let ca = under(dir.path(), "/etc/kubernetes/pki/ca.crt");
        let (ok, out) = sh(&format!(
            "openssl x509 -pubkey -noout -in {} | openssl pkey -pubin -outform der | sha256sum",
            ca.display()
        ));
        assert!(ok, "{out}");
        let expected = format!("sha256:{}", out.split_whitespace().next().unwrap());
        assert_eq!(
            discovery_hash(&find(&artifacts, "/etc/kubernetes/pki/ca.crt").content).unwrap(),
            expected
        );
    }
    assert!(
        discovery_hash(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err()
    );
}

#[test]
fn cluster_info_jws_equals_openssl_hmac() {
    let token = BootstrapToken::generate(now());
    let kubeconfig = "apiVersion: v1\nclusters:\n- cluster:\n    server: https://192.0.2.10:6443\n  name: \"\"\n";
    let jws = token.sign_cluster_info(kubeconfig);
    let (header, signature) = jws.split_once("..").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let payload = dir.path().join("payload");
    std::fs::write(&payload, kubeconfig).unwrap();
    // header = base64url('{"alg":"HS256","kid":"<id>"}'); signing input = header.base64url(payload).
    let (ok, out) = sh(&format!(
        "h=$(printf '%s' '{{\"alg\":\"HS256\",\"kid\":\"{id}\"}}' | basenc --base64url -w0 | tr -d =); \
         p=$(basenc --base64url -w0 < {payload} | tr -d =); \
         s=$(printf '%s.%s' \"$h\" \"$p\" | openssl dgst -sha256 -mac HMAC -macopt key:{secret} -binary | basenc --base64url -w0 | tr -d =); \
         printf '%s %s' \"$h\" \"$s\"",
        id = token.id(),
        secret = token.secret(),
        payload = payload.display()
    ));
    assert!(ok, "{out}");
    let (h, s) = out.split_once(' ').unwrap();
    assert_eq!((header, signature), (h, s));
}
