//! The HTTP API (axum). Operators authenticate with a bearer owner token; devices, for now,
//! with their tenant's enrollment token (per-device keys and signed requests are the next part
//! of issue 11). Errors are `{"error": code, "message": …}` with the status the code implies.

use crate::rings;
use crate::{auth, Db, ServerError};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

/// The port `hpl-server serve` listens on by default (on 127.0.0.1).
pub const DEFAULT_PORT: u16 = 8470;

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let status = match &self {
            ServerError::NotFound(_) => StatusCode::NOT_FOUND,
            ServerError::Conflict(_) => StatusCode::CONFLICT,
            ServerError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServerError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ServerError::Db(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // Database errors are not shown to clients (they may name tables or values).
        let message = match &self {
            ServerError::Db(_) => "internal error".to_string(),
            other => other.to_string(),
        };
        (
            status,
            Json(serde_json::json!({ "error": self.code(), "message": message })),
        )
            .into_response()
    }
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
        .route("/v1/tenants/{tenant}/rings/{ring}/manifest", get(manifest))
        .route(
            "/v1/tenants/{tenant}/releases/{version}/bundle",
            get(bundle),
        )
        .route("/v1/audit", get(audit))
        .with_state(db)
}

async fn publish(
    State(db): State<Db>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ServerError> {
    let who = auth::authenticate(&db, bearer(&headers)?).await?;
    let r = rings::publish(&db, &who, &body, now()).await?;
    let status = if r.new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(r)).into_response())
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

/// The request comes from a device of `tenant`.
async fn device_of(db: &Db, headers: &HeaderMap, tenant: &str) -> Result<(), ServerError> {
    if auth::authenticate_device(db, bearer(headers)?).await? == tenant {
        Ok(())
    } else {
        Err(ServerError::Forbidden(format!(
            "not a device of tenant `{tenant}`"
        )))
    }
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

/// A ring's current manifest, for the devices of its tenant. `ETag` is its manifest version:
/// a device that is up to date gets a 304 and nothing else.
async fn manifest(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((tenant, ring)): Path<(String, String)>,
) -> Result<Response, ServerError> {
    device_of(&db, &headers, &tenant).await?;
    let (version, bytes) = rings::current_manifest(&db, &tenant, &ring).await?;
    Ok(conditional(
        &headers,
        format!("\"m{version}\""),
        "application/vnd.hpl.manifest",
        bytes,
    ))
}

/// A bundle a manifest names, for the devices of its tenant. `ETag` is its hash: a device
/// that has it gets a 304.
async fn bundle(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((tenant, version)): Path<(String, u64)>,
) -> Result<Response, ServerError> {
    device_of(&db, &headers, &tenant).await?;
    let (hash, bytes) = rings::release_bundle(&db, &tenant, version).await?;
    Ok(conditional(
        &headers,
        format!("\"{hash}\""),
        "application/vnd.hpl.bundle",
        bytes,
    ))
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
