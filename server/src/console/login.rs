//! Sign-in for the console: the OIDC authorization-code flow with PKCE (S256). `start` keeps a
//! random `state`, `nonce` and code verifier for ten minutes and sends the browser to the
//! provider; `callback` takes them back once (a replayed or forged `state` finds nothing),
//! exchanges the code with the verifier, verifies the ID token — signature, issuer, audience,
//! expiry and the nonce — and opens a session.

use super::{pages, refused, Session, Settings, COOKIE, SESSION_LIFETIME};
use crate::audit::{self, Action};
use crate::db::get;
use crate::http::App;
use crate::{auth, oidc, Db, ServerError};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Extension;
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// How long a sign-in may take at the provider.
const LOGIN_LIFETIME: i64 = 600;

fn random() -> Result<String, ServerError> {
    auth::secret("")
}

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub(super) async fn start(State(app): State<App>, Path(tenant): Path<String>) -> Response {
    match begin(&app, &tenant).await {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => refused(e.status(), &e.to_string()),
    }
}

async fn begin(app: &App, tenant: &str) -> Result<String, ServerError> {
    let sso = oidc::sso(&app.db, tenant)
        .await?
        .ok_or_else(|| ServerError::NotFound(format!("tenant `{tenant}` has no SSO")))?;
    let discovery = app.verifier.discovery(&sso.issuer).await?;
    let (state, nonce, verifier) = (random()?, random()?, random()?);
    let now = crate::now();
    sqlx::query("DELETE FROM console_logins WHERE created_at < $1")
        .bind(now - LOGIN_LIFETIME)
        .execute(&app.db.pool)
        .await?;
    sqlx::query(
        "INSERT INTO console_logins (state, tenant, nonce, verifier, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&state)
    .bind(tenant)
    .bind(&nonce)
    .bind(&verifier)
    .bind(now)
    .execute(&app.db.pool)
    .await?;
    let url = url::Url::parse_with_params(
        &discovery.authorization_endpoint,
        &[
            ("response_type", "code"),
            ("client_id", sso.client_id.as_str()),
            ("redirect_uri", app.console.redirect_uri().as_str()),
            ("scope", "openid email profile"),
            ("state", state.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", challenge(&verifier).as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .map_err(|e| ServerError::Invalid(format!("the provider's authorization endpoint: {e}")))?;
    Ok(url.to_string())
}

#[derive(Deserialize)]
pub(super) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

pub(super) async fn callback(State(app): State<App>, Query(q): Query<Callback>) -> Response {
    match finish(&app, q).await {
        Ok((tenant, cookie, max_age)) => {
            let mut c = format!(
                "{COOKIE}={cookie}; Path=/console; HttpOnly; SameSite=Lax; Max-Age={max_age}"
            );
            if app.console.secure_cookies() {
                c.push_str("; Secure");
            }
            let mut r = Redirect::to(&format!("/console/{tenant}")).into_response();
            if let Ok(v) = c.parse() {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => refused(
            if e.status() == StatusCode::INTERNAL_SERVER_ERROR {
                e.status()
            } else {
                StatusCode::FORBIDDEN
            },
            &format!("sign-in failed: {e}"),
        ),
    }
}

/// The code exchange (blocking; on a blocking thread).
fn exchange(
    endpoint: &str,
    form: Vec<(&'static str, String)>,
) -> Result<serde_json::Value, ServerError> {
    let failed = |e: &dyn std::fmt::Display| {
        ServerError::Unauthorized(format!("the provider's token endpoint: {e}"))
    };
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = crate::outbound::post_form(endpoint, &pairs).map_err(|e| failed(&e))?;
    let (status, body) = (answer.status, answer.body);
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| failed(&e))?;
    if status != 200 {
        return Err(failed(&format!("{status} {}", v["error"])));
    }
    Ok(v)
}

async fn finish(app: &App, q: Callback) -> Result<(String, String, i64), ServerError> {
    if let Some(e) = q.error {
        return Err(ServerError::Unauthorized(format!(
            "the provider says `{e}`"
        )));
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return Err(ServerError::Unauthorized("no code or state".into()));
    };
    let now = crate::now();
    // Taken once: a second callback with the same state finds nothing.
    let row = sqlx::query(
        "DELETE FROM console_logins WHERE state = $1 RETURNING tenant, nonce, verifier, created_at",
    )
    .bind(&state)
    .fetch_optional(&app.db.pool)
    .await?
    .ok_or_else(|| ServerError::Unauthorized("an unknown or used sign-in".into()))?;
    if get::<i64>(&row, "created_at")? < now - LOGIN_LIFETIME {
        return Err(ServerError::Unauthorized(
            "the sign-in took too long".into(),
        ));
    }
    let tenant: String = get(&row, "tenant")?;
    let nonce: String = get(&row, "nonce")?;
    let verifier: String = get(&row, "verifier")?;
    let sso = oidc::sso(&app.db, &tenant)
        .await?
        .ok_or_else(|| ServerError::NotFound(format!("tenant `{tenant}` has no SSO")))?;
    let discovery = app.verifier.discovery(&sso.issuer).await?;
    let mut form = vec![
        ("grant_type", "authorization_code".to_string()),
        ("code", code),
        ("redirect_uri", app.console.redirect_uri()),
        ("client_id", sso.client_id.clone()),
        ("code_verifier", verifier),
    ];
    if let Some(secret) = &sso.client_secret {
        form.push(("client_secret", secret.clone()));
    }
    let endpoint = discovery.token_endpoint.clone();
    let answer = tokio::task::spawn_blocking(move || exchange(&endpoint, form))
        .await
        .map_err(|e| ServerError::Unauthorized(format!("the code exchange: {e}")))??;
    let id_token = answer["id_token"]
        .as_str()
        .ok_or_else(|| ServerError::Unauthorized("the provider sent no ID token".into()))?;
    let identity = app.verifier.verify(&app.db, id_token, Some(&nonce)).await?;
    if identity.tenant != tenant {
        return Err(ServerError::Forbidden(format!(
            "the token is tenant `{}`'s, not `{tenant}`'s",
            identity.tenant
        )));
    }
    oidc::seen(&app.db, &identity, now).await?;
    let who = identity.principal();
    let cookie = random()?;
    let csrf = random()?;
    let expires = identity.expires_at.min(now + SESSION_LIFETIME);
    let mut tx = app.db.pool.begin().await?;
    // Expired sessions go as new ones come (they are refused anyway).
    sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO console_sessions (id_sha256, tenant, principal_json, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(auth::digest(&cookie))
    .bind(&tenant)
    .bind(serde_json::to_string(&who).unwrap_or_default())
    .bind(&csrf)
    .bind(now)
    .bind(expires)
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        now,
        audit::Record {
            actor: &who,
            tenant: Some(&tenant),
            action: Action::OperatorSignIn,
            subject: "console",
            before: None,
            after: Some(serde_json::json!({ "roles": who.roles, "display": who.display })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((tenant, cookie, (expires - now).max(0)))
}

pub(super) async fn logout(
    State(db): State<Db>,
    Extension(s): Extension<Session>,
    Path(tenant): Path<String>,
) -> Response {
    let _ = sqlx::query("DELETE FROM console_sessions WHERE csrf = $1")
        .bind(&s.csrf)
        .execute(&db.pool)
        .await;
    let mut r = (
        StatusCode::OK,
        Html(pages::signed_out(&tenant).into_string()),
    )
        .into_response();
    if let Ok(v) = format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Lax; Max-Age=0").parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            public_url: format!("http://127.0.0.1:{}", crate::http::DEFAULT_PORT),
        }
    }
}
