//! A small registry token service (the Docker token protocol) run by the test:
//! `GET /token?service=…&scope=repository:NAME:ACTIONS` with HTTP basic auth
//! answers an ES256 JWT signed by a key whose certificate (sent as `x5c`) is
//! the registry's `rootcertbundle`. Wrong or missing credentials get 401.

use super::registry::TokenAuth;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const SERVICE: &str = "kprov-test-registry";
const ISSUER: &str = "kprov-test-token-issuer";

struct Inner {
    user: String,
    password: String,
    key: EcdsaKeyPair,
    cert_der: Vec<u8>,
    /// One line per request: `user scope granted|refused`.
    requests: Mutex<Vec<String>>,
}

pub struct TokenServer {
    pub realm: String,
    inner: Arc<Inner>,
    bundle: std::path::PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TokenServer {
    /// Starts the service on a free loopback port; `user`/`password` get tokens.
    pub fn start(user: &str, password: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key_pair = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kprov test token signer");
        let cert = params.self_signed(&key_pair).unwrap();
        let bundle = dir.path().join("token-signer.pem");
        std::fs::write(&bundle, cert.pem()).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key_pair.serialize_der(),
            &SystemRandom::new(),
        )
        .unwrap();
        let inner = Arc::new(Inner {
            user: user.into(),
            password: password.into(),
            key,
            cert_der: cert.der().to_vec(),
            requests: Mutex::new(Vec::new()),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/token", get(token))
            .with_state(inner.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(l, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Self {
            realm,
            inner,
            bundle,
            shutdown: Some(tx),
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// The registry's `auth: token:` settings for this service.
    pub fn registry_auth(&self) -> TokenAuth {
        TokenAuth {
            realm: self.realm.clone(),
            service: SERVICE.into(),
            issuer: ISSUER.into(),
            root_cert_bundle: self.bundle.clone(),
        }
    }

    /// Requests seen so far: `user scope granted|refused`.
    pub fn requests(&self) -> Vec<String> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// A token granting `actions` on repository `name`, minted directly.
    pub fn mint(&self, name: &str, actions: &[&str]) -> String {
        sign(&self.inner, &self.inner.user, name, actions)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn token(
    State(s): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let scope = q.get("scope").cloned().unwrap_or_default();
    let user = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|up| {
            let (u, p) = up.split_once(':')?;
            (u == s.user && p == s.password).then(|| u.to_string())
        });
    let ok = user.is_some() && q.get("service").map(String::as_str) == Some(SERVICE);
    s.requests.lock().unwrap().push(format!(
        "{} {scope} {}",
        user.as_deref().unwrap_or("anonymous"),
        if ok { "granted" } else { "refused" }
    ));
    let Some(user) = user.filter(|_| ok) else {
        return Err((
            StatusCode::UNAUTHORIZED,
            Json(json!({"details": "valid credentials required"})),
        ));
    };
    // scope = repository:NAME:pull[,push]
    let (name, actions) = scope
        .strip_prefix("repository:")
        .and_then(|r| r.rsplit_once(':'))
        .unwrap_or(("", ""));
    let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
    let t = sign(&s, &user, name, &actions);
    Ok(Json(
        json!({"token": t, "access_token": t, "expires_in": 300}),
    ))
}

/// An ES256 JWT in the form the distribution registry verifies.
fn sign(s: &Inner, user: &str, name: &str, actions: &[&str]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [STANDARD.encode(&s.cert_der)]});
    let access = if name.is_empty() {
        json!([])
    } else {
        json!([{"type": "repository", "name": name, "actions": actions}])
    };
    let claims = json!({
        "iss": ISSUER, "sub": user, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", std::process::id()),
        "access": access,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = s.key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}
