//! The HTTP API (axum). Operators authenticate with a bearer owner token; devices enroll with
//! their tenant's enrollment token and sign every later request with their key
//! ([`hpl_runtime::protocol`]). Errors are `{"error": code, "message": …}` with the status the
//! code implies (docs/openapi.json).

use crate::devices::{self, Batch, Device, Enrollment, Signed};
use crate::health::Thresholds;
use crate::membership::Members;
use crate::{auth, metrics, rings, Db, ServerError};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use hpl_runtime::protocol;
use serde::Deserialize;

/// The port `hpl-server serve` listens on by default (on 127.0.0.1).
pub const DEFAULT_PORT: u16 = 8470;

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let status = match &self {
            ServerError::NotFound(_) => StatusCode::NOT_FOUND,
            ServerError::Conflict(_) => StatusCode::CONFLICT,
            ServerError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServerError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ServerError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ServerError::Unhealthy(_) => StatusCode::CONFLICT,
            ServerError::Db(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
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
            ServerError::Forbidden("an `Authorization: Bearer <token>` header is needed".into())
        })
}

use crate::now;

/// Serves the API on `listener` until `shutdown` completes (then lets requests in flight end).
pub async fn serve(
    listener: tokio::net::TcpListener,
    db: Db,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(db))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The API.
pub fn router(db: Db) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/v1/releases",
            post(publish).layer(DefaultBodyLimit::max(
                hpl_runtime::store::MAX_BUNDLE_BYTES as usize,
            )),
        )
        .route("/v1/tenants/{tenant}/rings", get(ring_status))
        .route("/v1/tenants/{tenant}/rings/{ring}/{op}", post(ring_op))
        .route("/v1/tenants/{tenant}/rings/{ring}/members", put(members))
        .route("/v1/tenants/{tenant}/rings/{ring}/health", get(ring_health))
        .route(
            "/v1/tenants/{tenant}/health",
            get(thresholds).put(set_thresholds),
        )
        .route("/v1/tenants/{tenant}/metrics", get(tenant_metrics))
        .route("/v1/audit", get(audit))
        .route("/v1/enroll", post(enroll))
        .route("/v1/device/manifest", get(manifest))
        .route("/v1/device/bundles/{version}", get(bundle))
        .route(
            "/v1/device/reports",
            post(reports).layer(DefaultBodyLimit::max(devices::MAX_BATCH_BYTES)),
        )
        .with_state(db)
}

async fn publish(
    State(db): State<Db>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ServerError> {
    let who = auth::authenticate(&db, bearer(&headers)?).await?;
    let r = rings::publish(&db, &who, &body, now()).await?;
    Ok(created_or_ok(r.new, &r))
}

async fn ring_status(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> Result<Response, ServerError> {
    let who = auth::authenticate(&db, bearer(&headers)?).await?;
    rings::allowed(&who, &tenant)?;
    Ok(Json(rings::rings(&db, &tenant).await?).into_response())
}

#[derive(Deserialize)]
struct ReleaseBody {
    release: u64,
}

async fn ring_op(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((tenant, ring, op)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, ServerError> {
    let who = auth::authenticate(&db, bearer(&headers)?).await?;
    let release = || -> Result<u64, ServerError> {
        serde_json::from_slice::<ReleaseBody>(&body)
            .map(|b| b.release)
            .map_err(|e| ServerError::Invalid(format!("expected {{\"release\": N}}: {e}")))
    };
    let r = match op.as_str() {
        "promote" => rings::promote(&db, &who, &tenant, &ring, release()?, now()).await?,
        "rollback" => rings::rollback(&db, &who, &tenant, &ring, release()?, now()).await?,
        "pause" => rings::set_paused(&db, &who, &tenant, &ring, true, now()).await?,
        "resume" => rings::set_paused(&db, &who, &tenant, &ring, false, now()).await?,
        other => {
            return Err(ServerError::NotFound(format!(
                "no ring operation `{other}` (promote, pause, resume, rollback)"
            )))
        }
    };
    Ok(Json(r).into_response())
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
    headers: HeaderMap,
    Path((tenant, ring)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ServerError> {
    let who = auth::authenticate(&db, bearer(&headers)?).await?;
    let rule: Members = serde_json::from_slice(&body)
        .map_err(|e| ServerError::Invalid(format!("not a membership rule: {e}")))?;
    Ok(Json(rings::set_members(&db, &who, &tenant, &ring, rule, now()).await?).into_response())
}

async fn ring_health(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((tenant, ring)): Path<(String, String)>,
) -> Result<Response, ServerError> {
    let who = auth::authenticate(&db, bearer(&headers)?).await?;
    rings::allowed(&who, &tenant)?;
    Ok(Json(rings::health(&db, &tenant, &ring).await?).into_response())
}

async fn thresholds(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> Result<Response, ServerError> {
    let who = auth::authenticate(&db, bearer(&headers)?).await?;
    rings::allowed(&who, &tenant)?;
    Ok(Json(crate::health::thresholds(&db, &tenant).await?).into_response())
}

async fn set_thresholds(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Result<Response, ServerError> {
    let who = auth::authenticate(&db, bearer(&headers)?).await?;
    let t: Thresholds = serde_json::from_slice(&body)
        .map_err(|e| ServerError::Invalid(format!("not health thresholds: {e}")))?;
    Ok(Json(rings::set_thresholds(&db, &who, &tenant, &t, now()).await?).into_response())
}

async fn tenant_metrics(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> Result<Response, ServerError> {
    let who = auth::authenticate(&db, bearer(&headers)?).await?;
    rings::allowed(&who, &tenant)?;
    Ok(Json(metrics::tenant(&db, &tenant).await?).into_response())
}

async fn audit(State(db): State<Db>, headers: HeaderMap) -> Result<Response, ServerError> {
    let who = auth::authenticate(&db, bearer(&headers)?).await?;
    let trail: Vec<_> = rings::audit_trail(&db)
        .await?
        .into_iter()
        .filter(|e| e.tenant.as_deref().is_none_or(|t| who.may(t)))
        .collect();
    Ok(Json(trail).into_response())
}
