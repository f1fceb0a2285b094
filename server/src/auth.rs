//! Credentials: random secrets shown once, stored as sha256, turned back into a [`Principal`]
//! on every request. (SSO and roles are issue 12; every mutation already takes a principal.)

use crate::db::{get, Db};
use crate::error::ServerError;
use crate::Principal;
use sha2::{Digest, Sha256};

/// 32 random bytes as hex, with a prefix that says what the secret is.
pub fn secret(prefix: &str) -> Result<String, ServerError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ServerError::Invalid(format!("no randomness: {e}")))?;
    Ok(format!("{prefix}{}", hpl_runtime::load::hex(&bytes)))
}

pub(crate) fn digest(secret: &str) -> String {
    hpl_runtime::load::hex(&Sha256::digest(secret.trim().as_bytes()))
}

/// Stores a new credential of `kind` (for `tenant`, or every tenant) and returns its secret.
pub(crate) async fn issue(
    db: &Db,
    kind: &str,
    tenant: Option<&str>,
    now: i64,
) -> Result<(String, String), ServerError> {
    let token = secret(&format!("hpl-{kind}-"))?;
    let id = format!("{kind}-{}", &digest(&token)[..12]);
    sqlx::query(
        "INSERT INTO credentials (id, kind, tenant, secret_sha256, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(kind)
    .bind(tenant.map(str::to_string))
    .bind(digest(&token))
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok((id, token))
}

/// The principal of an owner credential; enrollment tokens are not operators.
pub async fn authenticate(db: &Db, token: &str) -> Result<Principal, ServerError> {
    let row = sqlx::query(
        "SELECT id, kind, tenant FROM credentials WHERE secret_sha256 = $1 AND revoked_at IS NULL",
    )
    .bind(digest(token))
    .fetch_optional(&db.pool)
    .await?
    .ok_or_else(|| ServerError::Forbidden("unknown or revoked credential".into()))?;
    let kind: String = get(&row, "kind")?;
    if kind != "owner" {
        return Err(ServerError::Forbidden(format!(
            "a {kind} credential cannot operate the control plane"
        )));
    }
    Ok(Principal {
        id: get(&row, "id")?,
        tenant: get(&row, "tenant")?,
    })
}

/// The id and tenant of an enrollment token (what a device enrolls with).
pub async fn authenticate_enrollment(
    db: &Db,
    token: &str,
) -> Result<(String, String), ServerError> {
    let row = sqlx::query(
        "SELECT id, tenant FROM credentials WHERE secret_sha256 = $1 AND kind = 'enrollment' AND revoked_at IS NULL",
    )
    .bind(digest(token))
    .fetch_optional(&db.pool)
    .await?
    .ok_or_else(|| ServerError::Forbidden("unknown or revoked enrollment token".into()))?;
    let tenant = get::<Option<String>>(&row, "tenant")?
        .ok_or_else(|| ServerError::Forbidden("an enrollment token without a tenant".into()))?;
    Ok((get(&row, "id")?, tenant))
}
