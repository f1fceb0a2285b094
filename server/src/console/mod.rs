//! The admin console: server-rendered pages (maud), usable without JavaScript, under
//! `/console`. People sign in through their tenant's identity provider with the
//! authorization-code flow and PKCE ([`login`]); a session is a random cookie (`HttpOnly`,
//! `SameSite=Lax`, `Secure` when the public URL is https) whose sha256 the database keeps.
//!
//! Every page declares the permission it needs in [`PAGES`], and one guard applies it with the
//! same [`rbac::authorize`] as the API; every POST must carry the session's CSRF token as the
//! form field `csrf`, checked by the guard too. Answers carry a content security policy that
//! allows nothing but this server's own stylesheet and images.

mod login;
mod pages;

use crate::http::App;
use crate::rbac::{self, Permission};
use crate::{approvals, auth, Db, Principal, ServerError};
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Path, Query, RawPathParams, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;

/// The session cookie's name.
pub const COOKIE: &str = "hpl_session";
/// How long a session lasts at most (less when the ID token expires sooner).
pub const SESSION_LIFETIME: i64 = 8 * 3600;
/// The largest form the console reads.
const MAX_FORM: usize = 16 * 1024;

/// Where the console is reached from browsers (the OIDC redirect goes back there).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `https://hpl.example.com` (no trailing slash).
    pub public_url: String,
}

impl Settings {
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    pub fn redirect_uri(&self) -> String {
        format!("{}/console/callback", self.public_url.trim_end_matches('/'))
    }
}

/// One console route and what it needs (`None`: anyone — sign-in and the stylesheet).
pub struct Page {
    pub method: Method,
    pub path: &'static str,
    pub needs: Option<Permission>,
}

const fn page(method: Method, path: &'static str, needs: Option<Permission>) -> Page {
    Page {
        method,
        path,
        needs,
    }
}

use Permission as P;

/// Every console route: the guard reads this and nothing else.
pub const PAGES: &[Page] = &[
    page(Method::GET, "/console/static/console.css", None),
    page(Method::GET, "/console/{tenant}/login", None),
    page(Method::GET, "/console/callback", None),
    page(
        Method::POST,
        "/console/{tenant}/logout",
        Some(P::ViewRollout),
    ),
    page(Method::GET, "/console/{tenant}", Some(P::ViewRollout)),
    page(
        Method::GET,
        "/console/{tenant}/approvals",
        Some(P::ViewRollout),
    ),
    page(
        Method::POST,
        "/console/{tenant}/approvals/{id}/approve",
        Some(P::Approve),
    ),
    page(
        Method::POST,
        "/console/{tenant}/approvals/{id}/reject",
        Some(P::Approve),
    ),
    page(
        Method::GET,
        "/console/{tenant}/devices",
        Some(P::ViewDevices),
    ),
    page(Method::GET, "/console/{tenant}/audit", Some(P::ViewAudit)),
    page(Method::GET, "/console/{tenant}/access", Some(P::ViewAccess)),
];

/// The signed-in person on a page, and the CSRF token their forms carry.
#[derive(Debug, Clone)]
pub struct Session {
    pub who: Principal,
    pub csrf: String,
}

fn cookie_value(request: &Request) -> Option<String> {
    let header = request.headers().get(header::COOKIE)?.to_str().ok()?;
    header.split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == COOKIE).then(|| v.to_string())
    })
}

async fn session(db: &Db, cookie: &str, now: i64) -> Result<Option<Session>, ServerError> {
    let row = sqlx::query(
        "SELECT principal_json, csrf FROM console_sessions WHERE id_sha256 = $1 AND expires_at > $2",
    )
    .bind(auth::digest(cookie))
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let text: String = crate::db::get(&row, "principal_json")?;
    let who: Principal = serde_json::from_str(&text)
        .map_err(|e| ServerError::Invalid(format!("a stored session is corrupt: {e}")))?;
    Ok(Some(Session {
        who,
        csrf: crate::db::get(&row, "csrf")?,
    }))
}

/// Headers every console answer carries.
fn harden(mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    response
}

fn refused(status: StatusCode, why: &str) -> Response {
    (status, Html(pages::refusal(why).into_string())).into_response()
}

/// The one check in front of every console route: [`PAGES`] says what it needs; the session
/// cookie says who asks; a POST must carry the session's CSRF token.
async fn guard(
    State(app): State<App>,
    matched: MatchedPath,
    params: RawPathParams,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let Some(entry) = PAGES
        .iter()
        .find(|p| p.method == method && p.path == matched.as_str())
    else {
        return harden(refused(
            StatusCode::FORBIDDEN,
            "this page declares no permission",
        ));
    };
    let Some(needed) = entry.needs else {
        return harden(next.run(request).await);
    };
    let tenant = crate::http::path_tenant(&params).unwrap_or_default();
    let now = crate::now();
    let found = match cookie_value(&request) {
        Some(c) => session(&app.db, &c, now).await,
        None => Ok(None),
    };
    let s = match found {
        Ok(Some(s)) => s,
        Ok(None) if method == Method::GET => {
            return harden(Redirect::to(&format!("/console/{tenant}/login")).into_response())
        }
        Ok(None) => return harden(refused(StatusCode::FORBIDDEN, "not signed in")),
        Err(e) => return harden(e.into_response()),
    };
    if let Err(e) = rbac::authorize(&s.who, Some(&tenant), needed) {
        return harden(refused(StatusCode::FORBIDDEN, &e.to_string()));
    }
    let mut request = request;
    if method == Method::POST {
        // The form is small: read it here, check the token, hand the bytes on.
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
            return harden(refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the form is too large",
            ));
        };
        let token = url::form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned());
        if token.as_deref() != Some(s.csrf.as_str()) {
            return harden(refused(
                StatusCode::FORBIDDEN,
                "the form's CSRF token is missing or not this session's",
            ));
        }
        request = Request::from_parts(parts, Body::from(bytes));
    }
    request.extensions_mut().insert(s);
    harden(next.run(request).await)
}

/// The console's routes (merged into the API's router).
pub fn routes(app: App) -> Router<App> {
    Router::new()
        .route(
            "/console/static/console.css",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/css"),
                        (header::CACHE_CONTROL, "max-age=3600"),
                    ],
                    pages::STYLE,
                )
            }),
        )
        .route("/console/{tenant}/login", get(login::start))
        .route("/console/callback", get(login::callback))
        .route("/console/{tenant}/logout", post(login::logout))
        .route("/console/{tenant}", get(overview))
        .route("/console/{tenant}/approvals", get(approvals_page))
        .route("/console/{tenant}/approvals/{id}/approve", post(approve))
        .route("/console/{tenant}/approvals/{id}/reject", post(reject))
        .route("/console/{tenant}/devices", get(devices_page))
        .route("/console/{tenant}/audit", get(audit_page))
        .route("/console/{tenant}/access", get(access_page))
        .route_layer(middleware::from_fn_with_state(app, guard))
}

fn html(result: Result<maud::Markup, ServerError>) -> Response {
    match result {
        Ok(markup) => Html(markup.into_string()).into_response(),
        Err(e) => {
            let status = e.status();
            (status, Html(pages::refusal(&e.to_string()).into_string())).into_response()
        }
    }
}

async fn overview(
    State(db): State<Db>,
    Extension(s): Extension<Session>,
    Path(tenant): Path<String>,
) -> Response {
    html(pages::overview(&db, &s, &tenant).await)
}

#[derive(Deserialize, Default)]
struct Flash {
    done: Option<String>,
    error: Option<String>,
}

async fn approvals_page(
    State(db): State<Db>,
    Extension(s): Extension<Session>,
    Path(tenant): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    html(
        pages::approvals(
            &db,
            &s,
            &tenant,
            flash.done.as_deref(),
            flash.error.as_deref(),
        )
        .await,
    )
}

async fn decide(
    db: &Db,
    s: &Session,
    tenant: &str,
    id: i64,
    decision: approvals::Decision,
    body: &Bytes,
) -> Response {
    let comment = comment(body);
    let back = format!("/console/{tenant}/approvals");
    match approvals::decide(
        db,
        &s.who,
        tenant,
        id,
        decision,
        comment.as_deref(),
        crate::now(),
    )
    .await
    {
        Ok(r) => Redirect::to(&format!(
            "{back}?done={}",
            url::form_urlencoded::byte_serialize(
                format!("request {} is {}", r.id, r.state.as_str()).as_bytes()
            )
            .collect::<String>()
        ))
        .into_response(),
        Err(e) => Redirect::to(&format!(
            "{back}?error={}",
            url::form_urlencoded::byte_serialize(e.to_string().as_bytes()).collect::<String>()
        ))
        .into_response(),
    }
}

/// The form's optional comment (its CSRF token was the guard's).
fn comment(body: &Bytes) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "comment")
        .map(|(_, v)| v.into_owned())
        .filter(|c| !c.trim().is_empty())
}

async fn approve(
    State(db): State<Db>,
    Extension(s): Extension<Session>,
    Path((tenant, id)): Path<(String, i64)>,
    body: Bytes,
) -> Response {
    decide(&db, &s, &tenant, id, approvals::Decision::Approve, &body).await
}

async fn reject(
    State(db): State<Db>,
    Extension(s): Extension<Session>,
    Path((tenant, id)): Path<(String, i64)>,
    body: Bytes,
) -> Response {
    decide(&db, &s, &tenant, id, approvals::Decision::Reject, &body).await
}

async fn devices_page(
    State(db): State<Db>,
    Extension(s): Extension<Session>,
    Path(tenant): Path<String>,
) -> Response {
    html(pages::devices(&db, &s, &tenant).await)
}

async fn audit_page(
    State(db): State<Db>,
    Extension(s): Extension<Session>,
    Path(tenant): Path<String>,
    Query(filter): Query<pages::AuditQuery>,
) -> Response {
    html(pages::audit(&db, &s, &tenant, &filter).await)
}

async fn access_page(
    State(db): State<Db>,
    Extension(s): Extension<Session>,
    Path(tenant): Path<String>,
) -> Response {
    html(pages::access(&db, &s, &tenant).await)
}
