//! The HTTP API (axum). Operators send a bearer token (an OIDC token of their tenant's
//! provider, a tenant API credential, or the bootstrap owner's); every endpoint declares what
//! it needs in [`ENDPOINTS`] and one guard enforces it ([`rbac`]). Devices enroll with their
//! tenant's enrollment token and sign every later request with their key
//! ([`hpl_runtime::protocol`]). Errors are `{"error": code, "message": …}` with the status the
//! code implies (docs/openapi.json).

use crate::devices::{self, Batch, Device, Enrollment, Signed};
use crate::health::Thresholds;
use crate::membership::Members;
use crate::oidc::{self, Verifier};
use crate::rbac::{self, Permission};
use crate::{approvals, audit, auth, export, metrics, rings, Db, Principal, ServerError};
use axum::body::{Body, Bytes};
use axum::extract::{
    DefaultBodyLimit, FromRef, MatchedPath, Path, Query, RawPathParams, Request, State,
};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Extension, Json, Router};
use hpl_runtime::protocol;
use serde::Deserialize;
use std::sync::Arc;

/// The port `hpl-server serve` listens on by default (on 127.0.0.1).
pub const DEFAULT_PORT: u16 = 8470;

impl ServerError {
    /// The HTTP status the error's code implies.
    pub fn status(&self) -> StatusCode {
        match self {
            ServerError::NotFound(_) => StatusCode::NOT_FOUND,
            ServerError::Conflict(_) => StatusCode::CONFLICT,
            ServerError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServerError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ServerError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ServerError::Unhealthy(_) => StatusCode::CONFLICT,
            ServerError::Db(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Database errors are not shown to clients (they may name tables or values).
        let message = match &self {
            ServerError::Db(e) => {
                eprintln!("hpl-server: database error: {e}");
                "internal error".to_string()
            }
            other => other.to_string(),
        };
        let mut body = serde_json::json!({ "error": self.code(), "message": message });
        if let ServerError::Unhealthy(figures) = &self {
            body["figures"] = serde_json::to_value(figures).unwrap_or_default();
        }
        (status, Json(body)).into_response()
    }
}

/// 201 for something new, 200 for what existed (publishing and enrolling are idempotent).
fn created_or_ok(new: bool, body: &impl serde::Serialize) -> Response {
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, Json(body)).into_response()
}

fn bearer(headers: &HeaderMap) -> Result<&str, ServerError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ServerError::Unauthorized("an `Authorization: Bearer <token>` header is needed".into())
        })
}

use crate::now;

/// What the server shares between requests: the database and the token verifier (its JWKS
/// cache). Replicas share nothing else.
#[derive(Clone)]
pub struct App {
    pub db: Db,
    pub verifier: Arc<Verifier>,
    /// Where browsers reach the console (its sign-in redirect comes back there).
    pub console: Arc<crate::console::Settings>,
}

impl App {
    pub fn new(db: Db) -> App {
        App {
            db,
            verifier: Arc::new(Verifier::default()),
            console: Arc::new(crate::console::Settings::default()),
        }
    }
}

impl FromRef<App> for Db {
    fn from_ref(app: &App) -> Db {
        app.db.clone()
    }
}

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health check, the tenant's sign-in parameters).
    Public,
    /// An enrolled device's signed request, or an enrollment token (checked by the handler).
    Device,
    /// Any signed-in operator or credential (who am I).
    Authenticated,
    /// An operator whose role in the path's `{tenant}` grants the permission.
    Operator(Permission),
}

/// One endpoint and what it needs.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

const fn ep(method: Method, path: &'static str, access: Access) -> Endpoint {
    Endpoint {
        method,
        path,
        access,
    }
}

use Permission as P;

/// Every endpoint of the API and what it needs: the guard reads this table and nothing else,
/// docs/rbac.md lists it, and a test walks it with every role.
pub const ENDPOINTS: &[Endpoint] = &[
    ep(Method::GET, "/healthz", Access::Public),
    ep(Method::GET, "/v1/tenants/{tenant}/login", Access::Public),
    ep(Method::POST, "/v1/enroll", Access::Device),
    ep(Method::GET, "/v1/device/manifest", Access::Device),
    ep(Method::GET, "/v1/device/bundles/{version}", Access::Device),
    ep(Method::POST, "/v1/device/reports", Access::Device),
    ep(Method::GET, "/v1/whoami", Access::Authenticated),
    ep(Method::GET, "/v1/audit", Access::Operator(P::ServerAdmin)),
    ep(
        Method::GET,
        "/v1/tenants/{tenant}/releases",
        Access::Operator(P::ViewRollout),
    ),
    ep(
        Method::POST,
        "/v1/tenants/{tenant}/releases",
        Access::Operator(P::Publish),
    ),
    ep(
        Method::GET,
        "/v1/tenants/{tenant}/rings",
        Access::Operator(P::ViewRollout),
    ),
    ep(
        Method::POST,
        "/v1/tenants/{tenant}/rings/{ring}/promote",
        Access::Operator(P::RequestPromotion),
    ),
    ep(
        Method::POST,
        "/v1/tenants/{tenant}/rings/{ring}/pause",
        Access::Operator(P::Emergency),
    ),
    ep(
        Method::POST,
        "/v1/tenants/{tenant}/rings/{ring}/resume",
        Access::Operator(P::Emergency),
    ),
    ep(
        Method::POST,
        "/v1/tenants/{tenant}/rings/{ring}/rollback",
        Access::Operator(P::Emergency),
    ),
    ep(
        Method::PUT,
        "/v1/tenants/{tenant}/rings/{ring}/members",
        Access::Operator(P::Configure),
    ),
    ep(
        Method::GET,
        "/v1/tenants/{tenant}/rings/{ring}/health",
        Access::Operator(P::ViewRollout),
    ),
    ep(
        Method::GET,
        "/v1/tenants/{tenant}/health",
        Access::Operator(P::ViewRollout),
    ),
    ep(
        Method::PUT,
        "/v1/tenants/{tenant}/health",
        Access::Operator(P::Configure),
    ),
    ep(
        Method::GET,
        "/v1/tenants/{tenant}/metrics",
        Access::Operator(P::ViewRollout),
    ),
    ep(
        Method::GET,
        "/v1/tenants/{tenant}/devices",
        Access::Operator(P::ViewDevices),
    ),
    ep(
        Method::GET,
        "/v1/tenants/{tenant}/approvals",
        Access::Operator(P::ViewRollout),
    ),
    ep(
        Method::POST,
        "/v1/tenants/{tenant}/approvals/{id}/approve",
        Access::Operator(P::Approve),
    ),
    ep(
        Method::POST,
        "/v1/tenants/{tenant}/approvals/{id}/reject",
        Access::Operator(P::Approve),
    ),
    ep(
        Method::GET,
        "/v1/tenants/{tenant}/settings/approvals",
        Access::Operator(P::ViewRollout),
    ),
    ep(
        Method::PUT,
        "/v1/tenants/{tenant}/settings/approvals",
        Access::Operator(P::ManageAccess),
    ),
    ep(
        Method::GET,
        "/v1/tenants/{tenant}/audit",
        Access::Operator(P::ViewAudit),
    ),
    ep(
        Method::GET,
        "/v1/tenants/{tenant}/audit/export",
        Access::Operator(P::ViewAudit),
    ),
    ep(
        Method::GET,
        "/v1/tenants/{tenant}/access",
        Access::Operator(P::ViewAccess),
    ),
    ep(
        Method::PUT,
        "/v1/tenants/{tenant}/sso",
        Access::Operator(P::ManageAccess),
    ),
    ep(
        Method::POST,
        "/v1/tenants/{tenant}/credentials",
        Access::Operator(P::ManageAccess),
    ),
    ep(
        Method::DELETE,
        "/v1/tenants/{tenant}/credentials/{id}",
        Access::Operator(P::ManageAccess),
    ),
];

/// The endpoint a matched route is (`None`: a route the table forgot, which the guard refuses).
pub fn endpoint(method: &Method, path: &str) -> Option<&'static Endpoint> {
    ENDPOINTS
        .iter()
        .find(|e| e.method == *method && e.path == path)
}

/// The one place requests are authorized: the route's entry in [`ENDPOINTS`] says what it
/// needs; an operator endpoint gets the [`Principal`] as a request extension, or the request
/// ends here with 401 (no or a bad token) or 403 (the role or tenant does not allow it).
async fn guard(
    State(app): State<App>,
    matched: MatchedPath,
    params: RawPathParams,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(endpoint) = endpoint(request.method(), matched.as_str()) else {
        // Fail closed: a route without a declared permission serves nobody.
        return ServerError::Forbidden(format!(
            "{} {} declares no permission",
            request.method(),
            matched.as_str()
        ))
        .into_response();
    };
    let needed = match endpoint.access {
        Access::Public | Access::Device => return next.run(request).await,
        Access::Authenticated => None,
        Access::Operator(p) => Some(p),
    };
    let tenant = path_tenant(&params);
    // Owned: the request body is not `Sync`, so nothing borrowed from it may cross an await.
    let token = bearer(request.headers()).map(str::to_string);
    let who = async {
        let who = auth::operator(&app.db, &app.verifier, &token?, now()).await?;
        if let Some(p) = needed {
            rbac::authorize(&who, tenant.as_deref(), p)?;
        }
        Ok::<_, ServerError>(who)
    }
    .await;
    match who {
        Ok(who) => {
            request.extensions_mut().insert(who);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

/// The route's `{tenant}`, which the guards authorize against.
pub(crate) fn path_tenant(params: &RawPathParams) -> Option<String> {
    params
        .iter()
        .find(|(k, _)| *k == "tenant")
        .map(|(_, v)| v.to_string())
}

/// Serves the API on `listener` until `shutdown` completes (then lets requests in flight end).
pub async fn serve(
    listener: tokio::net::TcpListener,
    db: Db,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_app(listener, App::new(db), shutdown).await
}

/// [`serve`] with a configured [`App`].
pub async fn serve_app(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router_for(app))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The API over `db` with a default verifier.
pub fn router(db: Db) -> Router {
    router_for(App::new(db))
}

/// The API.
pub fn router_for(app: App) -> Router {
    let bundle_limit = DefaultBodyLimit::max(hpl_runtime::store::MAX_BUNDLE_BYTES as usize);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/tenants/{tenant}/login", get(login_parameters))
        .route("/v1/enroll", post(enroll))
        .route("/v1/device/manifest", get(manifest))
        .route("/v1/device/bundles/{version}", get(bundle))
        .route(
            "/v1/device/reports",
            post(reports).layer(DefaultBodyLimit::max(devices::MAX_BATCH_BYTES)),
        )
        .route("/v1/whoami", get(whoami))
        .route("/v1/audit", get(server_audit))
        .route(
            "/v1/tenants/{tenant}/releases",
            get(releases).post(publish).layer(bundle_limit),
        )
        .route("/v1/tenants/{tenant}/rings", get(ring_status))
        .route("/v1/tenants/{tenant}/rings/{ring}/promote", post(promote))
        .route("/v1/tenants/{tenant}/rings/{ring}/pause", post(pause))
        .route("/v1/tenants/{tenant}/rings/{ring}/resume", post(resume))
        .route("/v1/tenants/{tenant}/rings/{ring}/rollback", post(rollback))
        .route("/v1/tenants/{tenant}/rings/{ring}/members", put(members))
        .route("/v1/tenants/{tenant}/rings/{ring}/health", get(ring_health))
        .route(
            "/v1/tenants/{tenant}/health",
            get(thresholds).put(set_thresholds),
        )
        .route("/v1/tenants/{tenant}/metrics", get(tenant_metrics))
        .route("/v1/tenants/{tenant}/devices", get(device_list))
        .route("/v1/tenants/{tenant}/approvals", get(approval_list))
        .route("/v1/tenants/{tenant}/approvals/{id}/approve", post(approve))
        .route("/v1/tenants/{tenant}/approvals/{id}/reject", post(reject))
        .route(
            "/v1/tenants/{tenant}/settings/approvals",
            get(approvals_required).put(set_approvals_required),
        )
        .route("/v1/tenants/{tenant}/audit", get(tenant_audit))
        .route("/v1/tenants/{tenant}/audit/export", get(audit_export))
        .route("/v1/tenants/{tenant}/access", get(access))
        .route("/v1/tenants/{tenant}/sso", put(set_sso))
        .route("/v1/tenants/{tenant}/credentials", post(issue_credential))
        .route(
            "/v1/tenants/{tenant}/credentials/{id}",
            delete(revoke_credential),
        )
        .route_layer(middleware::from_fn_with_state(app.clone(), guard))
        .merge(crate::console::routes(app.clone()))
        .with_state(app)
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ServerError> {
    serde_json::from_slice(body).map_err(|e| ServerError::Invalid(format!("not {what}: {e}")))
}

/// What `hpl login` needs to sign in to a tenant: its provider and client id (no secret).
async fn login_parameters(
    State(db): State<Db>,
    Path(tenant): Path<String>,
) -> Result<Response, ServerError> {
    let sso = oidc::sso(&db, &tenant)
        .await?
        .ok_or_else(|| ServerError::NotFound(format!("tenant `{tenant}` has no SSO")))?;
    Ok(Json(serde_json::json!({
        "tenant": tenant,
        "issuer": sso.issuer,
        "client_id": sso.client_id,
    }))
    .into_response())
}

async fn whoami(Extension(who): Extension<Principal>) -> Response {
    Json(serde_json::json!({
        "id": who.id,
        "tenant": who.tenant,
        "roles": who.roles,
        "display": who.display,
    }))
    .into_response()
}

async fn publish(
    State(db): State<Db>,
    Extension(who): Extension<Principal>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Result<Response, ServerError> {
    let r = rings::publish(&db, &who, &tenant, &body, now()).await?;
    Ok(created_or_ok(r.new, &r))
}

async fn releases(
    State(db): State<Db>,
    Path(tenant): Path<String>,
) -> Result<Response, ServerError> {
    Ok(Json(rings::releases(&db, &tenant).await?).into_response())
}

async fn ring_status(
    State(db): State<Db>,
    Path(tenant): Path<String>,
) -> Result<Response, ServerError> {
    Ok(Json(rings::rings(&db, &tenant).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseBody {
    release: u64,
}

/// A promotion is a request for approval: 202 with the request.
async fn promote(
    State(db): State<Db>,
    Extension(who): Extension<Principal>,
    Path((tenant, ring)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ServerError> {
    let b: ReleaseBody = json_body(&body, "{\"release\": N}")?;
    let r = approvals::request_promotion(&db, &who, &tenant, &ring, b.release, now()).await?;
    Ok((StatusCode::ACCEPTED, Json(r)).into_response())
}

async fn pause(
    State(db): State<Db>,
    Extension(who): Extension<Principal>,
    Path((tenant, ring)): Path<(String, String)>,
) -> Result<Response, ServerError> {
    Ok(Json(rings::set_paused(&db, &who, &tenant, &ring, true, now()).await?).into_response())
}

async fn resume(
    State(db): State<Db>,
    Extension(who): Extension<Principal>,
    Path((tenant, ring)): Path<(String, String)>,
) -> Result<Response, ServerError> {
    Ok(Json(rings::set_paused(&db, &who, &tenant, &ring, false, now()).await?).into_response())
}

async fn rollback(
    State(db): State<Db>,
    Extension(who): Extension<Principal>,
    Path((tenant, ring)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ServerError> {
    let b: ReleaseBody = json_body(&body, "{\"release\": N}")?;
    Ok(Json(rings::rollback(&db, &who, &tenant, &ring, b.release, now()).await?).into_response())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ServerError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ServerError::Unauthorized(format!("a signed request needs `{name}`")))
}

/// The enrolled device that signed this request.
async fn device(
    db: &Db,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Device, ServerError> {
    let signed = Signed {
        device: header(headers, protocol::DEVICE_HEADER)?,
        time: header(headers, protocol::TIME_HEADER)?,
        nonce: header(headers, protocol::NONCE_HEADER)?,
        signature: header(headers, protocol::SIGNATURE_HEADER)?,
    };
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    devices::authenticate(db, &signed, method.as_str(), path, body, now()).await
}

/// `bytes` with `etag`, or a 304 when the request already has that version.
fn conditional(
    headers: &HeaderMap,
    etag: String,
    content_type: &'static str,
    bytes: Vec<u8>,
) -> Response {
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    if fresh {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        StatusCode::OK,
        [
            (header::ETAG, etag),
            (header::CONTENT_TYPE, content_type.to_string()),
        ],
        Body::from(bytes),
    )
        .into_response()
}

/// Enrollment: the tenant's enrollment token as the bearer, the request signed by the key
/// it enrolls (time and nonce as on every signed request).
async fn enroll(
    State(db): State<Db>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ServerError> {
    let token = bearer(&headers)?;
    let now = now();
    let time = devices::request_time(header(&headers, protocol::TIME_HEADER)?, now)?;
    let nonce = header(&headers, protocol::NONCE_HEADER)?;
    let signature = header(&headers, protocol::SIGNATURE_HEADER)?;
    let request: Enrollment = serde_json::from_slice(&body)
        .map_err(|e| ServerError::Invalid(format!("not an enrollment: {e}")))?;
    let digest = protocol::request_digest(method.as_str(), uri.path(), time, nonce, &body);
    let enrolled = devices::enroll(&db, token, &request, &digest, signature, now).await?;
    Ok(created_or_ok(enrolled.new, &enrolled))
}

/// The manifest of the device's ring. `ETag` is the ring and manifest version: a device that
/// is up to date gets a 304 and nothing else.
async fn manifest(
    State(db): State<Db>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ServerError> {
    let d = device(&db, &method, &uri, &headers, b"").await?;
    let (version, bytes) = rings::current_manifest(&db, &d.tenant, &d.ring).await?;
    Ok(conditional(
        &headers,
        format!("\"{}-m{version}\"", d.ring),
        "application/vnd.hpl.manifest",
        bytes,
    ))
}

/// A bundle a manifest names, for the devices of its tenant. `ETag` is its hash: a device
/// that has it gets a 304.
async fn bundle(
    State(db): State<Db>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(version): Path<u64>,
) -> Result<Response, ServerError> {
    let d = device(&db, &method, &uri, &headers, b"").await?;
    let (hash, bytes) = rings::release_bundle(&db, &d.tenant, version).await?;
    Ok(conditional(
        &headers,
        format!("\"{hash}\""),
        "application/vnd.hpl.bundle",
        bytes,
    ))
}

/// A batch of records and events; the answer (after the commit) says what became of each.
async fn reports(
    State(db): State<Db>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ServerError> {
    let d = device(&db, &method, &uri, &headers, &body).await?;
    let batch: Batch = serde_json::from_slice(&body)
        .map_err(|e| ServerError::Invalid(format!("not a batch: {e}")))?;
    let now = now();
    let (acks, look) = devices::ingest(&db, &d, &batch, now).await?;
    if look {
        // The upload is stored and acknowledged whatever the gate finds.
        if let Err(e) = devices::watch_health(&db, &d.tenant, &acks.ring, now).await {
            eprintln!("hpl-server: health gate of {}/{}: {e}", d.tenant, acks.ring);
        }
    }
    Ok(Json(acks).into_response())
}

async fn members(
    State(db): State<Db>,
    Extension(who): Extension<Principal>,
    Path((tenant, ring)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ServerError> {
    let rule: Members = json_body(&body, "a membership rule")?;
    Ok(Json(rings::set_members(&db, &who, &tenant, &ring, rule, now()).await?).into_response())
}

async fn ring_health(
    State(db): State<Db>,
    Path((tenant, ring)): Path<(String, String)>,
) -> Result<Response, ServerError> {
    Ok(Json(rings::health(&db, &tenant, &ring).await?).into_response())
}

async fn thresholds(
    State(db): State<Db>,
    Path(tenant): Path<String>,
) -> Result<Response, ServerError> {
    Ok(Json(crate::health::thresholds(&db, &tenant).await?).into_response())
}

async fn set_thresholds(
    State(db): State<Db>,
    Extension(who): Extension<Principal>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Result<Response, ServerError> {
    let t: Thresholds = json_body(&body, "health thresholds")?;
    Ok(Json(rings::set_thresholds(&db, &who, &tenant, &t, now()).await?).into_response())
}

async fn tenant_metrics(
    State(db): State<Db>,
    Path(tenant): Path<String>,
) -> Result<Response, ServerError> {
    Ok(Json(metrics::tenant(&db, &tenant).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    after: Option<String>,
    limit: Option<u32>,
}

async fn device_list(
    State(db): State<Db>,
    Path(tenant): Path<String>,
    Query(page): Query<Page>,
) -> Result<Response, ServerError> {
    let limit = page.limit.unwrap_or(200);
    Ok(Json(devices::list(&db, &tenant, page.after.as_deref(), limit).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateQuery {
    state: Option<approvals::State>,
}

async fn approval_list(
    State(db): State<Db>,
    Path(tenant): Path<String>,
    Query(q): Query<StateQuery>,
) -> Result<Response, ServerError> {
    Ok(Json(approvals::list(&db, &tenant, q.state, now()).await?).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    comment: Option<String>,
}

async fn decide(
    db: &Db,
    who: &Principal,
    tenant: &str,
    id: i64,
    decision: approvals::Decision,
    body: &[u8],
) -> Result<Response, ServerError> {
    let b: DecisionBody = if body.is_empty() {
        DecisionBody::default()
    } else {
        json_body(body, "{\"comment\": …}")?
    };
    let r = approvals::decide(db, who, tenant, id, decision, b.comment.as_deref(), now()).await?;
    Ok(Json(r).into_response())
}

async fn approve(
    State(db): State<Db>,
    Extension(who): Extension<Principal>,
    Path((tenant, id)): Path<(String, i64)>,
    body: Bytes,
) -> Result<Response, ServerError> {
    decide(&db, &who, &tenant, id, approvals::Decision::Approve, &body).await
}

async fn reject(
    State(db): State<Db>,
    Extension(who): Extension<Principal>,
    Path((tenant, id)): Path<(String, i64)>,
    body: Bytes,
) -> Result<Response, ServerError> {
    decide(&db, &who, &tenant, id, approvals::Decision::Reject, &body).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Required {
    required: u32,
}

async fn approvals_required(
    State(db): State<Db>,
    Path(tenant): Path<String>,
) -> Result<Response, ServerError> {
    let n = approvals::required(&db, &tenant).await?;
    Ok(Json(serde_json::json!({ "required": n })).into_response())
}

async fn set_approvals_required(
    State(db): State<Db>,
    Extension(who): Extension<Principal>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Result<Response, ServerError> {
    let b: Required = json_body(&body, "{\"required\": N}")?;
    let n = approvals::set_required(&db, &who, &tenant, b.required, now()).await?;
    Ok(Json(serde_json::json!({ "required": n })).into_response())
}

/// A chain's entries with its head (the newest hash), for the API and the console.
async fn chain_page(db: &Db, chain: &str, filter: &audit::Filter) -> Result<Response, ServerError> {
    let entries = audit::entries(db, chain, filter).await?;
    Ok(Json(serde_json::json!({ "chain": chain, "entries": entries })).into_response())
}

async fn server_audit(
    State(db): State<Db>,
    Query(filter): Query<audit::Filter>,
) -> Result<Response, ServerError> {
    chain_page(&db, "", &filter).await
}

async fn tenant_audit(
    State(db): State<Db>,
    Path(tenant): Path<String>,
    Query(filter): Query<audit::Filter>,
) -> Result<Response, ServerError> {
    chain_page(&db, &tenant, &filter).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    cursor: Option<String>,
    limit: Option<u32>,
}

/// JSON lines from a cursor; `hpl-next-cursor` says where the next call starts.
async fn audit_export(
    State(db): State<Db>,
    Path(tenant): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ServerError> {
    let cursor = export::Cursor::parse(q.cursor.as_deref().unwrap_or(""))?;
    let page = export::page(&db, &tenant, cursor, q.limit.unwrap_or(audit::MAX_PAGE)).await?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_string()),
            (
                header::HeaderName::from_static(export::NEXT_CURSOR_HEADER),
                page.next.to_string(),
            ),
        ],
        page.body(),
    )
        .into_response())
}

async fn access(State(db): State<Db>, Path(tenant): Path<String>) -> Result<Response, ServerError> {
    let sso = oidc::sso(&db, &tenant).await?;
    let operators = oidc::operators(&db, &tenant).await?;
    let credentials = auth::credentials(&db, &tenant).await?;
    let required = approvals::required(&db, &tenant).await?;
    Ok(Json(serde_json::json!({
        "sso": sso,
        "operators": operators,
        "credentials": credentials,
        "approvals_required": required,
        "matrix": rbac::matrix(),
    }))
    .into_response())
}

async fn set_sso(
    State(db): State<Db>,
    Extension(who): Extension<Principal>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Result<Response, ServerError> {
    let config: oidc::SsoConfig = json_body(&body, "an SSO configuration")?;
    Ok(Json(oidc::set_sso(&db, &who, &tenant, &config, now()).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialBody {
    role: rbac::Role,
}

async fn issue_credential(
    State(db): State<Db>,
    Extension(who): Extension<Principal>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Result<Response, ServerError> {
    let b: CredentialBody = json_body(&body, "{\"role\": …}")?;
    let (id, token) = auth::issue_api(&db, &who, &tenant, b.role, now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "id": id, "role": b.role, "token": token })),
    )
        .into_response())
}

async fn revoke_credential(
    State(db): State<Db>,
    Extension(who): Extension<Principal>,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Response, ServerError> {
    auth::revoke(&db, &who, Some(&tenant), &id, now()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
