//! Registry access the agent must get right: bearer-token auth through a real
//! token service, TLS with a CA from the config, unverified TLS, plain HTTP only
//! when configured, and gRPC errors that name the registry and the fix.

mod common;

use common::agent::TestAgent;
use common::registry::{Registry, RegistryOptions};
use common::token_server::TokenServer;
use kprov_agent::api;
use oci_client::secrets::RegistryAuth;

fn pull_req(image: &str, auth: Option<api::AuthConfig>) -> api::PullImageRequest {
    api::PullImageRequest {
        image: Some(api::ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        auth,
        ..Default::default()
    }
}

/// Pulls `image` (optionally with `auth`) through a fresh client.
async fn pull(
    a: &TestAgent,
    image: &str,
    auth: Option<api::AuthConfig>,
) -> Result<String, tonic::Status> {
    a.images()
        .await
        .pull_image(pull_req(image, auth))
        .await
        .map(|r| r.into_inner().image_ref)
}

async fn remove(a: &TestAgent, image: &str) {
    a.images()
        .await
        .remove_image(api::RemoveImageRequest {
            image: Some(api::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
}

/// Replaces the `[registry…]` part of the agent's config and restarts it.
fn reconfigure(a: &mut TestAgent, registry_toml: &str) {
    let cfg = std::fs::read_to_string(&a.config).unwrap();
    let base = cfg.split("[registry").next().unwrap().to_string();
    std::fs::write(&a.config, format!("{base}{registry_toml}")).unwrap();
    a.restart(false);
}

#[tokio::test]
async fn bearer_token_auth_through_a_token_service() {
    let password = "t0ken-Pw-9";
    let ts = TokenServer::start("tokenuser", password);
    let reg = Registry::start_with(RegistryOptions {
        token: Some(ts.registry_auth()),
        ..Default::default()
    });
    let (_, id) = common::images::push_as(
        &reg.host,
        "private/busybox:1",
        &[common::images::gzip(common::images::busybox_tar())],
        &["/bin/sh"],
        "amd64",
        &RegistryAuth::Basic("tokenuser".into(), password.into()),
    )
    .await;
    assert!(
        ts.requests()
            .iter()
            .any(|r| r == "tokenuser repository:private/busybox:pull,push granted"),
        "the push went through the token service: {:?}",
        ts.requests()
    );
    let image = format!("{}/private/busybox:1", reg.host);
    let plain = format!("[registry.hosts.\"{}\"]\nplain_http = true\n", reg.host);
    let mut a = TestAgent::start_with(&plain, 10, false);

    // No credentials: Unauthenticated, naming the registry and where credentials go.
    let e = pull(&a, &image, None).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    assert!(e.message().contains(&reg.host), "{}", e.message());
    assert!(e.message().contains("no credentials"), "{}", e.message());
    assert!(
        e.message()
            .contains(&format!("[registry.hosts.\"{}\"]", reg.host)),
        "{}",
        e.message()
    );
    assert!(ts
        .requests()
        .iter()
        .any(|r| r == "anonymous repository:private/busybox:pull refused"));

    // Wrong password: Unauthenticated, the user named, the password not.
    let e = pull(
        &a,
        &image,
        Some(api::AuthConfig {
            username: "tokenuser".into(),
            password: "wrong-Pw-1".into(),
            ..Default::default()
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    assert!(e.message().contains("\"tokenuser\""), "{}", e.message());
    assert!(!e.message().contains("wrong-Pw-1"), "{}", e.message());

    // Credentials in the request: the agent fetches a token and pulls.
    let r = pull(
        &a,
        &image,
        Some(api::AuthConfig {
            username: "tokenuser".into(),
            password: password.into(),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    assert_eq!(r, id);
    assert!(ts
        .requests()
        .iter()
        .any(|r| r == "tokenuser repository:private/busybox:pull granted"));
    remove(&a, &image).await;

    // A registry token in the request (CRI registry_token) is used as is.
    let before = ts.requests().len();
    let token = ts.mint("private/busybox", &["pull"]);
    let r = pull(
        &a,
        &image,
        Some(api::AuthConfig {
            registry_token: token,
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    assert_eq!(r, id);
    assert_eq!(
        ts.requests().len(),
        before,
        "no token request for a given token"
    );
    remove(&a, &image).await;
    // A token for another repository is refused by the registry.
    let e = pull(
        &a,
        &image,
        Some(api::AuthConfig {
            registry_token: ts.mint("other/repo", &["pull"]),
            ..Default::default()
        }),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            e.code(),
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
        ),
        "{e:?}"
    );
    assert!(e.message().contains("bearer token"), "{}", e.message());

    // Per-registry credentials from agent.toml (left 0644 on purpose, see below).
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&a.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    reconfigure(
        &mut a,
        &format!("{plain}username = \"tokenuser\"\npassword = \"{password}\"\n"),
    );
    assert_eq!(pull(&a, &image, None).await.unwrap(), id);
    let st = a
        .images()
        .await
        .image_status(api::ImageStatusRequest {
            image: Some(api::ImageSpec {
                image: image.clone(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.image.unwrap().id, id);
    assert!(
        !a.log().contains(password),
        "the password never reaches the log"
    );
    assert!(!a.log().contains("wrong-Pw-1"));
    // The config holds a password and is 0644 here: the agent says to chmod it.
    assert!(
        a.log()
            .contains("holds registry credentials but has mode 0644"),
        "{}",
        a.log()
    );
}

#[tokio::test]
async fn tls_registry_needs_its_ca_or_unverified_tls() {
    let certs = tempfile::tempdir().unwrap();
    let pki = common::tls::server_pki(certs.path(), "127.0.0.1");
    let reg = Registry::start_with(RegistryOptions {
        tls: Some((pki.cert_pem.clone(), pki.key_pem.clone())),
        ..Default::default()
    });
    let (_, id) = common::images::push_with(
        &common::images::tls_client(&pki.ca_pem),
        &reg.host,
        "test/busybox:1",
        &[common::images::gzip(common::images::busybox_tar())],
        &["/bin/sh"],
        "amd64",
        &RegistryAuth::Anonymous,
    )
    .await;
    let image = format!("{}/test/busybox:1", reg.host);

    // (b) Nothing configured: the system roots do not know the test CA.
    let mut a = TestAgent::start_with("", 11, false);
    let e = pull(&a, &image, None).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    for want in [
        reg.host.as_str(),
        "certificate not trusted",
        "ca_file",
        "UnknownIssuer",
    ] {
        assert!(e.message().contains(want), "{want}: {}", e.message());
    }

    // plain_http against a TLS registry fails and says so.
    reconfigure(
        &mut a,
        &format!("[registry.hosts.\"{}\"]\nplain_http = true\n", reg.host),
    );
    let e = pull(&a, &image, None).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("remove plain_http"), "{}", e.message());

    // (a) The CA from the config: verified TLS works.
    reconfigure(
        &mut a,
        &format!(
            "[registry.hosts.\"{}\"]\nca_file = \"{}\"\n",
            reg.host,
            pki.ca_pem.display()
        ),
    );
    assert_eq!(pull(&a, &image, None).await.unwrap(), id);
    remove(&a, &image).await;

    // A CA file that cannot be read is named.
    reconfigure(
        &mut a,
        &format!(
            "[registry.hosts.\"{}\"]\nca_file = \"/nonexistent/ca.pem\"\n",
            reg.host
        ),
    );
    let e = pull(&a, &image, None).await.unwrap_err();
    assert!(
        e.message().contains("/nonexistent/ca.pem"),
        "{}",
        e.message()
    );

    // A CA that did not sign the registry's certificate is not enough.
    let other = tempfile::tempdir().unwrap();
    let other_pki = common::tls::server_pki(other.path(), "127.0.0.1");
    reconfigure(
        &mut a,
        &format!(
            "[registry.hosts.\"{}\"]\nca_file = \"{}\"\n",
            reg.host,
            other_pki.ca_pem.display()
        ),
    );
    let e = pull(&a, &image, None).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");

    // (c) Unverified TLS when configured.
    reconfigure(
        &mut a,
        &format!(
            "[registry.hosts.\"{}\"]\ninsecure_skip_verify = true\n",
            reg.host
        ),
    );
    assert_eq!(pull(&a, &image, None).await.unwrap(), id);
}

#[tokio::test]
async fn plain_http_only_when_configured() {
    let reg = Registry::start();
    let (busybox_id, _, _) = common::images::push_standard(&reg.host).await;
    let image = format!("{}/test/busybox:1", reg.host);
    // (d) Not configured: the agent speaks TLS and does not fall back to HTTP.
    let mut a = TestAgent::start_with("", 12, false);
    let e = pull(&a, &image, None).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    for want in [
        reg.host.as_str(),
        "does not seem to speak TLS",
        "plain_http = true",
    ] {
        assert!(e.message().contains(want), "{want}: {}", e.message());
    }
    // Unverified TLS is still TLS.
    reconfigure(
        &mut a,
        &format!(
            "[registry.hosts.\"{}\"]\ninsecure_skip_verify = true\n",
            reg.host
        ),
    );
    assert!(pull(&a, &image, None).await.is_err());
    // Configured: plain HTTP works.
    reconfigure(
        &mut a,
        &format!("[registry.hosts.\"{}\"]\nplain_http = true\n", reg.host),
    );
    assert_eq!(pull(&a, &image, None).await.unwrap(), busybox_id);
    // A missing image is NotFound.
    let e = pull(&a, &format!("{}/test/absent:1", reg.host), None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
}
