//! A local OpenID Connect provider for the tests: discovery, JWKS, the authorization-code flow
//! with PKCE (a sign-in page with a button per user), the device flow, and tokens minted with
//! keys generated here (Ed25519 and P-256). Everything it signs goes through `jsonwebtoken`.
#![allow(dead_code)]

use axum::extract::{Form, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct Key {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Jwk,
}

fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap();
    b
}

/// A fresh Ed25519 key (PKCS#8 v1: the fixed 16-byte prefix, then the seed).
pub fn ed25519_key(kid: &str) -> Key {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&random32());
    let encoding = EncodingKey::from_ed_der(&der);
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::EdDSA).unwrap();
    jwk.common.key_id = Some(kid.to_string());
    Key {
        kid: kid.into(),
        alg: Algorithm::EdDSA,
        encoding,
        jwk,
    }
}

/// The operating system's randomness as the RNG RSA key generation takes.
struct Os;

impl rand_core::TryRng for Os {
    type Error = getrandom::Error;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        getrandom::fill(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        getrandom::fill(dst)
    }
}

impl rand_core::TryCryptoRng for Os {}

/// A fresh 2048-bit RSA key for RS256 (what most providers sign with).
pub fn rsa_key(kid: &str) -> Key {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let private = rsa::PrivateKey::new(&mut Os, 2048).unwrap();
    let der = private.to_pkcs1_der().unwrap();
    let encoding = EncodingKey::from_rsa_der(der.as_bytes());
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some(kid.to_string());
    Key {
        kid: kid.into(),
        alg: Algorithm::RS256,
        encoding,
        jwk,
    }
}

/// A fresh P-256 key for ES256.
pub fn p256_key(kid: &str) -> Key {
    use p256::pkcs8::EncodePrivateKey;
    let secret = loop {
        if let Ok(k) = p256::SecretKey::from_slice(&random32()) {
            break k;
        }
    };
    let der = secret.to_pkcs8_der().unwrap();
    let encoding = EncodingKey::from_ec_der(der.as_bytes());
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some(kid.to_string());
    Key {
        kid: kid.into(),
        alg: Algorithm::ES256,
        encoding,
        jwk,
    }
}

#[derive(Default)]
struct Stub {
    issuer: String,
    client_id: String,
    published: Vec<Jwk>,
    /// user → groups
    users: HashMap<String, Vec<String>>,
    /// code → (user, nonce, code_challenge)
    codes: HashMap<String, (String, Option<String>, Option<String>)>,
    /// device_code → approved user
    devices: HashMap<String, Option<String>>,
    /// refresh token → user
    refresh: HashMap<String, String>,
    signing: Option<Arc<Key>>,
}

#[derive(Clone)]
pub struct Provider {
    pub issuer: String,
    pub client_id: String,
    pub key: Arc<Key>,
    state: Arc<Mutex<Stub>>,
}

pub fn now() -> i64 {
    hpl_server::now()
}

impl Provider {
    /// Starts the provider on a loopback port of the current tokio runtime.
    pub async fn start(client_id: &str) -> Provider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let key = Arc::new(ed25519_key("k1"));
        let state = Arc::new(Mutex::new(Stub {
            issuer: issuer.clone(),
            client_id: client_id.to_string(),
            published: vec![key.jwk.clone()],
            signing: Some(key.clone()),
            ..Stub::default()
        }));
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/signin", post(signin))
            .route("/token", post(token))
            .route("/device", post(device))
            .with_state(state.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Provider {
            issuer,
            client_id: client_id.to_string(),
            key,
            state,
        }
    }

    /// A user of the provider and the groups its tokens list.
    pub fn user(&self, name: &str, groups: &[&str]) {
        self.state.lock().unwrap().users.insert(
            name.to_string(),
            groups.iter().map(|g| g.to_string()).collect(),
        );
    }

    /// The claims of a good token for `sub` with `groups`.
    pub fn claims(&self, sub: &str, groups: &[&str]) -> serde_json::Value {
        serde_json::json!({
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": sub,
            "email": format!("{sub}@example.com"),
            "groups": groups,
            "iat": now(),
            "exp": now() + 3600,
        })
    }

    /// `claims` signed with `key` (its `kid` in the header).
    pub fn sign(&self, claims: &serde_json::Value, key: &Key) -> String {
        let mut header = Header::new(key.alg);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
    }

    /// A good token for `sub` with `groups`.
    pub fn token(&self, sub: &str, groups: &[&str]) -> String {
        self.sign(&self.claims(sub, groups), &self.key)
    }

    /// Publishes another key (a rotation) and returns it.
    pub fn rotate(&self, kid: &str) -> Arc<Key> {
        self.publish(ed25519_key(kid))
    }

    /// Publishes `key` in the JWKS.
    pub fn publish(&self, key: Key) -> Arc<Key> {
        let key = Arc::new(key);
        let mut s = self.state.lock().unwrap();
        s.published.push(key.jwk.clone());
        key
    }

    /// Approves a pending device sign-in as `user` (what the person does in the browser).
    pub fn approve_device(&self, user: &str) {
        let mut s = self.state.lock().unwrap();
        for v in s.devices.values_mut() {
            if v.is_none() {
                *v = Some(user.to_string());
            }
        }
    }
}

type Shared = State<Arc<Mutex<Stub>>>;

async fn discovery(State(s): Shared) -> Response {
    let issuer = s.lock().unwrap().issuer.clone();
    Json(serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "device_authorization_endpoint": format!("{issuer}/device"),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
    }))
    .into_response()
}

async fn jwks(State(s): Shared) -> Response {
    Json(JwkSet {
        keys: s.lock().unwrap().published.clone(),
    })
    .into_response()
}

/// The sign-in page: a button per user, posting back with the request's parameters.
async fn authorize(State(s): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
    let s = s.lock().unwrap();
    if q.get("client_id") != Some(&s.client_id)
        || q.get("response_type").map(String::as_str) != Some("code")
        || q.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            "bad authorization request",
        )
            .into_response();
    }
    let hidden: String = ["redirect_uri", "state", "nonce", "code_challenge"]
        .iter()
        .map(|k| {
            format!(
                "<input type=hidden name={k} value=\"{}\">",
                q.get(*k).cloned().unwrap_or_default()
            )
        })
        .collect();
    let mut users: Vec<_> = s.users.keys().cloned().collect();
    users.sort();
    let buttons: String = users
        .iter()
        .map(|u| format!("<button name=user value=\"{u}\" id=\"as-{u}\">Sign in as {u}</button>"))
        .collect();
    Html(format!(
        "<!doctype html><title>Test IdP</title><form method=post action=/signin>{hidden}{buttons}</form>"
    ))
    .into_response()
}

async fn signin(State(s): Shared, Form(f): Form<HashMap<String, String>>) -> Response {
    let code = hpl_runtime::load::hex(&random32());
    let mut st = s.lock().unwrap();
    st.codes.insert(
        code.clone(),
        (
            f.get("user").cloned().unwrap_or_default(),
            f.get("nonce").cloned(),
            f.get("code_challenge").cloned(),
        ),
    );
    let redirect = format!(
        "{}?code={code}&state={}",
        f.get("redirect_uri").cloned().unwrap_or_default(),
        f.get("state").cloned().unwrap_or_default()
    );
    Redirect::to(&redirect).into_response()
}

fn id_token(st: &Stub, user: &str, nonce: Option<String>) -> String {
    let groups = st.users.get(user).cloned().unwrap_or_default();
    let mut claims = serde_json::json!({
        "iss": st.issuer,
        "aud": st.client_id,
        "sub": user,
        "email": format!("{user}@example.com"),
        "groups": groups,
        "iat": now(),
        "exp": now() + 3600,
    });
    if let Some(n) = nonce {
        claims["nonce"] = n.into();
    }
    let key = st.signing.as_ref().unwrap();
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
}

async fn token(State(s): Shared, Form(f): Form<HashMap<String, String>>) -> Response {
    let mut st = s.lock().unwrap();
    let bad = |why: &str| {
        (
            axum::http::StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": why })),
        )
            .into_response()
    };
    match f.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some((user, nonce, challenge)) = f.get("code").and_then(|c| st.codes.remove(c))
            else {
                return bad("invalid_grant");
            };
            // PKCE: the verifier must hash to the challenge the authorization carried.
            use sha2::Digest;
            let verifier = f.get("code_verifier").cloned().unwrap_or_default();
            let digest = sha2::Sha256::digest(verifier.as_bytes());
            use base64::Engine;
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
            if challenge.as_deref() != Some(computed.as_str()) {
                return bad("invalid_grant");
            }
            let t = id_token(&st, &user, nonce);
            Json(serde_json::json!({ "id_token": t, "access_token": "opaque", "token_type": "Bearer", "expires_in": 3600 })).into_response()
        }
        Some("urn:ietf:params:oauth:grant-type:device_code") => {
            let code = f.get("device_code").cloned().unwrap_or_default();
            match st.devices.get(&code).cloned() {
                None => bad("invalid_grant"),
                Some(None) => bad("authorization_pending"),
                Some(Some(user)) => {
                    st.devices.remove(&code);
                    let t = id_token(&st, &user, None);
                    let refresh = hpl_runtime::load::hex(&random32());
                    st.refresh.insert(refresh.clone(), user);
                    Json(serde_json::json!({ "id_token": t, "refresh_token": refresh, "access_token": "opaque", "token_type": "Bearer", "expires_in": 3600 })).into_response()
                }
            }
        }
        Some("refresh_token") => {
            let Some(user) = f
                .get("refresh_token")
                .and_then(|r| st.refresh.get(r))
                .cloned()
            else {
                return bad("invalid_grant");
            };
            let t = id_token(&st, &user, None);
            Json(serde_json::json!({ "id_token": t, "access_token": "opaque", "token_type": "Bearer", "expires_in": 3600 })).into_response()
        }
        _ => bad("unsupported_grant_type"),
    }
}

async fn device(State(s): Shared) -> Response {
    let code = hpl_runtime::load::hex(&random32());
    let mut st = s.lock().unwrap();
    st.devices.insert(code.clone(), None);
    let issuer = st.issuer.clone();
    Json(serde_json::json!({
        "device_code": code,
        "user_code": "HPL-TEST",
        "verification_uri": format!("{issuer}/activate"),
        "expires_in": 600,
        "interval": 1,
    }))
    .into_response()
}
